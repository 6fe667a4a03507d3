//! Policy reports: the residency verdict of every pod and volume of a namespace's data centres
//! in the format policy dashboards read (`wgpolicyk8s.io/v1alpha2` PolicyReport, or its successor
//! `openreports.io/v1alpha1` Report; both have the same results and summary). Pure code: the
//! same statuses and the same previous report always give the same report.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::{RegionalDataCenter, RegionalDataCenterStatus};

/// The name of a namespace's report (of its first part, see `split`).
pub const REPORT_NAME: &str = "domicile-residency";

/// The most one report holds, serialized. etcd refuses a write of more than 1.5 MiB, and the
/// report of a namespace of hundreds of data centres holds thousands of results: such a
/// namespace's results are split over `domicile-residency`, `domicile-residency-2`, ...
pub const REPORT_BYTES: usize = 512 * 1024;

/// The name of a namespace's report `part` (from 0): the first keeps the plain name.
pub fn report_name(part: usize) -> String {
    if part == 0 {
        REPORT_NAME.to_owned()
    } else {
        format!("{REPORT_NAME}-{}", part + 1)
    }
}

/// The part a report of this name is (from 0), if it is one of domicile's.
pub fn report_part(name: &str) -> Option<usize> {
    if name == REPORT_NAME {
        return Some(0);
    }
    let number: usize = name
        .strip_prefix(REPORT_NAME)?
        .strip_prefix('-')?
        .parse()
        .ok()?;
    (number >= 2 && name == report_name(number - 1)).then_some(number - 1)
}

/// The results split, in order, into parts of at most `budget` bytes each as JSON (a result
/// larger than the budget is a part of its own); always at least one part, maybe empty.
pub fn split(results: &[ReportResult], budget: usize) -> Vec<std::ops::Range<usize>> {
    // A part is a JSON array: each result and a comma or the closing bracket, and the opening
    // bracket.
    let mut parts = Vec::new();
    let (mut start, mut bytes) = (0, 1);
    for (index, result) in results.iter().enumerate() {
        let size = serde_json::to_vec(result).map_or(0, |json| json.len()) + 1;
        if index > start && bytes + size > budget {
            parts.push(start..index);
            (start, bytes) = (index, 1);
        }
        bytes += size;
    }
    parts.push(start..results.len());
    parts
}

/// The counts of each verdict among `results`.
pub fn summarize(results: &[ReportResult]) -> Summary {
    let mut summary = Summary::default();
    for result in results {
        match result.result.as_str() {
            "pass" => summary.pass += 1,
            "fail" => summary.fail += 1,
            "warn" => summary.warn += 1,
            "error" => summary.error += 1,
            _ => summary.skip += 1,
        }
    }
    summary
}

pub const SOURCE: &str = "domicile";
pub const POLICY: &str = "residency";
pub const POD_RULE: &str = "pod-node-jurisdiction";
pub const VOLUME_RULE: &str = "volume-node-jurisdiction";
/// A copy of the data (a VolumeSnapshot of a data claim) kept where its class declares.
pub const COPY_RULE: &str = "copy-jurisdiction";
/// The policy of the pods and volumes of a jurisdiction namespace that no data centre covers:
/// judged by the same rules, so an auditor sees data that nobody declared.
pub const NAMESPACE_POLICY: &str = "namespace-residency";

/// Which report API the operator writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport (Kyverno, Trivy, Policy Reporter).
    Wgpolicy,
    /// `openreports.io/v1alpha1` Report.
    Openreports,
    /// No report.
    None,
}

impl Format {
    /// Group, version, kind and plural of the report, or None for `none`.
    pub fn resource(self) -> Option<ReportResource> {
        match self {
            Self::Wgpolicy => Some(ReportResource {
                group: "wgpolicyk8s.io",
                version: "v1alpha2",
                kind: "PolicyReport",
                plural: "policyreports",
            }),
            Self::Openreports => Some(ReportResource {
                group: "openreports.io",
                version: "v1alpha1",
                kind: "Report",
                plural: "reports",
            }),
            Self::None => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportResource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

impl ReportResource {
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// The CRD that serves it, as `kubectl get crd` names it.
    pub fn crd(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

/// When a result last changed, as the report APIs write it.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanos: i32,
}

impl Timestamp {
    pub fn of(time: jiff::Timestamp) -> Self {
        Self {
            seconds: time.as_second(),
            nanos: 0,
        }
    }
}

/// The object a result is about.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One result: the verdict on one pod or one volume.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    pub source: String,
    pub policy: String,
    pub rule: String,
    /// pass, fail (a violation) or warn (Unverifiable).
    pub result: String,
    pub severity: String,
    pub category: String,
    pub scored: bool,
    pub message: String,
    pub resources: Vec<ResourceRef>,
    /// When this result last changed.
    pub timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Properties::is_empty")]
    pub properties: Properties,
}

impl ReportResult {
    fn key(&self) -> (&str, &[ResourceRef]) {
        (&self.rule, &self.resources)
    }

    fn key_hash(&self) -> u64 {
        hash(&self.key())
    }

    /// A hash of what, when it changes, gives the result a new timestamp.
    fn verdict_hash(&self) -> u64 {
        hash(&(&self.result, &self.message, &self.properties))
    }
}

fn hash(value: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// A result's properties, by key, in the order of their keys. A few per result, so a vector and
/// not a map: a map's node is over half a kilobyte, and a namespace of 500 data centres has
/// thousands of results.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Properties(Vec<(Cow<'static, str>, String)>);

impl Properties {
    pub fn insert(&mut self, key: &'static str, value: String) {
        match self.0.binary_search_by(|(k, _)| k.as_ref().cmp(key)) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => self.0.insert(at, (Cow::Borrowed(key), value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        let at = self.0.binary_search_by(|(k, _)| k.as_ref().cmp(key)).ok()?;
        Some(&self.0[at].1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<const N: usize> From<[(&'static str, String); N]> for Properties {
    fn from(pairs: [(&'static str, String); N]) -> Self {
        let mut properties = Self(Vec::with_capacity(N + 2));
        for (key, value) in pairs {
            properties.insert(key, value);
        }
        properties
    }
}

impl std::ops::Index<&str> for Properties {
    type Output = String;

    fn index(&self, key: &str) -> &String {
        self.get(key)
            .unwrap_or_else(|| panic!("no property {key:?}"))
    }
}

impl Serialize for Properties {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, value)| (key.as_ref(), value)))
    }
}

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        Ok(Self(
            map.into_iter()
                .map(|(key, value)| (Cow::Owned(key), value))
                .collect(),
        ))
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub pass: u32,
    pub fail: u32,
    pub warn: u32,
    pub error: u32,
    pub skip: u32,
}

/// What domicile writes of a report: its results and their summary.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ReportBody {
    #[serde(default)]
    pub results: Vec<ReportResult>,
    #[serde(default)]
    pub summary: Summary,
}

/// The object a result is about. A Velero backup or schedule is named `namespace/name`, in its
/// own namespace; a pod or a snapshot is in the data centre's; a volume is cluster-scoped.
fn resource_ref(kind: &str, object: &str, namespace: Option<&str>) -> ResourceRef {
    let (api_version, namespace, name) = match kind {
        "Pod" => ("v1", namespace, object),
        "VolumeSnapshot" => ("snapshot.storage.k8s.io/v1", namespace, object),
        "Backup" | "Schedule" => match object.split_once('/') {
            Some((namespace, name)) => ("velero.io/v1", Some(namespace), name),
            None => ("velero.io/v1", None, object),
        },
        _ => ("v1", None, object),
    };
    ResourceRef {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        namespace: namespace.map(str::to_owned),
    }
}

/// The results of one data centre, from its status: one per placed pod, one per bound volume and
/// one per copy of the data, and one for any other pod or volume its violations name.
fn results_of(rdc: &RegionalDataCenter, status: &RegionalDataCenterStatus) -> Vec<ReportResult> {
    let name = rdc.metadata.name.clone().unwrap_or_default();
    let namespace = rdc.metadata.namespace.clone();
    let jurisdiction = &rdc.spec.jurisdiction;
    let violation = |kind: &str, object: &str| {
        status
            .violations
            .iter()
            .find(|v| v.kind == kind && v.name == object)
    };
    let result = |rule: &str, kind: &str, object: &str, passed: String, node: Option<&str>| {
        let found = violation(kind, object);
        let (verdict, severity, message) = match found {
            None => ("pass", "info", passed),
            Some(v) if v.reason == "Unverifiable" => ("warn", "medium", v.message.clone()),
            Some(v) => ("fail", "high", v.message.clone()),
        };
        let mut properties = Properties::from([
            ("regionalDataCenter", name.clone()),
            ("jurisdiction", jurisdiction.clone()),
        ]);
        if let Some(node) = node {
            properties.insert("node", node.to_owned());
        }
        if let Some(v) = found {
            properties.insert("reason", v.reason.clone());
        }
        ReportResult {
            source: SOURCE.to_owned(),
            policy: POLICY.to_owned(),
            rule: rule.to_owned(),
            result: verdict.to_owned(),
            severity: severity.to_owned(),
            category: "Data residency".to_owned(),
            scored: true,
            message,
            resources: vec![resource_ref(kind, object, namespace.as_deref())],
            timestamp: Timestamp::default(),
            properties,
        }
    };
    let mut results = Vec::new();
    for placement in &status.placements {
        if let Some(node) = &placement.node {
            results.push(result(
                POD_RULE,
                "Pod",
                &placement.pod,
                format!(
                    "pod {} runs on node {node}, inside {jurisdiction}",
                    placement.pod
                ),
                Some(node),
            ));
        }
        if let Some(volume) = &placement.volume {
            let passed = match &placement.volume_node {
                Some(node) => {
                    format!("volume {volume} is pinned to node {node}, inside {jurisdiction}")
                }
                None => format!("volume {volume} can be used only inside {jurisdiction}"),
            };
            results.push(result(
                VOLUME_RULE,
                "PersistentVolume",
                volume,
                passed,
                placement.volume_node.as_deref(),
            ));
        }
    }
    for copy in &status.copies {
        let (what, keeper) = match copy.kind.as_str() {
            "VolumeSnapshot" => (
                format!("snapshot {} of claim {}", copy.name, copy.source),
                "VolumeSnapshotClass",
            ),
            kind => (
                format!("{} {} of {}", kind.to_lowercase(), copy.name, copy.source),
                "BackupStorageLocation",
            ),
        };
        let passed = format!(
            "{what} is kept by {keeper} {}, which declares {}, inside {jurisdiction}",
            copy.class.as_deref().unwrap_or("-"),
            copy.jurisdiction.as_deref().unwrap_or("-")
        );
        results.push(result(COPY_RULE, &copy.kind, &copy.name, passed, None));
    }
    // Pods beyond the replicas, volumes not bound to a replica's claim, and copies of the data,
    // that break the promise.
    for v in &status.violations {
        let rule = match v.kind.as_str() {
            "Pod" => POD_RULE,
            "VolumeSnapshot" | "Backup" | "Schedule" => COPY_RULE,
            _ => VOLUME_RULE,
        };
        let about = resource_ref(&v.kind, &v.name, namespace.as_deref());
        let known = results
            .iter()
            .any(|r| r.rule == rule && r.resources[0] == about);
        if !known {
            results.push(result(rule, &v.kind, &v.name, String::new(), None));
        }
    }
    results
}

/// The results of what no data centre covers in `namespace`, which belongs to `jurisdiction`:
/// one per scheduled pod and per bound claim's volume, under [`NAMESPACE_POLICY`].
pub fn namespace_results(
    namespace: &str,
    jurisdiction: &str,
    uncovered: &[crate::residency::Uncovered],
) -> Vec<ReportResult> {
    uncovered
        .iter()
        .map(|object| {
            let (rule, passed) = match (object.kind, &object.node) {
                ("Pod", Some(node)) => (
                    POD_RULE,
                    format!(
                        "pod {} runs on node {node}, inside {jurisdiction}",
                        object.name
                    ),
                ),
                ("Pod", None) => (POD_RULE, String::new()),
                (_, Some(node)) => (
                    VOLUME_RULE,
                    format!(
                        "volume {} is pinned to node {node}, inside {jurisdiction}",
                        object.name
                    ),
                ),
                (_, None) => (
                    VOLUME_RULE,
                    format!(
                        "volume {} can be used only inside {jurisdiction}",
                        object.name
                    ),
                ),
            };
            let (verdict, severity, message) = match &object.verdict {
                Ok(()) => ("pass", "info", passed),
                Err(f) if f.reason == crate::residency::ViolationReason::Unverifiable => {
                    ("warn", "medium", f.message.clone())
                }
                Err(f) => ("fail", "high", f.message.clone()),
            };
            let mut properties = Properties::from([
                ("jurisdiction", jurisdiction.to_owned()),
                ("coveredBy", "no RegionalDataCenter (undeclared)".to_owned()),
            ]);
            if let Some(node) = &object.node {
                properties.insert("node", node.clone());
            }
            if let Some(claim) = &object.claim {
                properties.insert("claim", claim.clone());
            }
            if let Err(f) = &object.verdict {
                properties.insert("reason", f.reason.as_str().to_owned());
            }
            ReportResult {
                source: SOURCE.to_owned(),
                policy: NAMESPACE_POLICY.to_owned(),
                rule: rule.to_owned(),
                result: verdict.to_owned(),
                severity: severity.to_owned(),
                category: "Data residency".to_owned(),
                scored: true,
                message,
                resources: vec![resource_ref(object.kind, &object.name, Some(namespace))],
                timestamp: Timestamp::default(),
                properties,
            }
        })
        .collect()
}

/// How bad a verdict is: the lower, the worse.
fn rank(result: &str) -> u8 {
    match result {
        "fail" => 0,
        "error" => 1,
        "warn" => 2,
        "pass" => 3,
        _ => 4,
    }
}

/// What is kept of results once written: for each, a hash of what it is about (its rule and
/// resources), a hash of its verdict (result, message and properties) and its timestamp, sorted.
/// Enough for the next [`build`] to give a result that did not change its timestamp again,
/// without keeping the results: a namespace of 500 data centres has thousands, megabytes of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kept {
    results: Vec<(u64, u64, Timestamp)>,
}

impl Kept {
    pub fn of<'a>(results: impl IntoIterator<Item = &'a ReportResult>) -> Self {
        let mut kept: Vec<_> = results
            .into_iter()
            .map(|r| (r.key_hash(), r.verdict_hash(), r.timestamp))
            .collect();
        kept.sort_unstable();
        Self { results: kept }
    }

    /// The timestamp of the result kept about the same object with the same verdict, if any
    /// (the earliest, of a report written by someone else that holds it twice).
    fn timestamp(&self, result: &ReportResult) -> Option<Timestamp> {
        let (key, verdict) = (result.key_hash(), result.verdict_hash());
        let at = self
            .results
            .partition_point(|(k, v, _)| (*k, *v) < (key, verdict));
        self.results
            .get(at)
            .filter(|(k, v, _)| (*k, *v) == (key, verdict))
            .map(|(_, _, timestamp)| *timestamp)
    }
}

/// A hash of a result as written, its timestamp included: two parts with the same hashes in the
/// same order are the same report.
pub fn written_hash(result: &ReportResult) -> u64 {
    hash(result)
}

/// The report of a namespace whose data centres have these statuses, with the results of what
/// none of them covers (see [`namespace_results`]). A result that is the same
/// as one `previous` kept (verdict, message and properties) keeps its timestamp; a new or changed
/// one gets `now`. So a report rebuilt with nothing changed equals the previous one, and is not
/// written.
pub fn build<'a>(
    data_centers: impl IntoIterator<
        Item = (&'a RegionalDataCenter, Option<&'a RegionalDataCenterStatus>),
    >,
    undeclared: Vec<ReportResult>,
    previous: Option<&Kept>,
    now: jiff::Timestamp,
) -> ReportBody {
    let mut results: Vec<ReportResult> = data_centers
        .into_iter()
        .filter_map(|(rdc, status)| Some(results_of(rdc, status?)))
        .flatten()
        .chain(undeclared)
        .collect();
    // An object two data centres judge keeps the worse verdict, whatever order they came in.
    results.sort_by(|a, b| {
        a.key()
            .cmp(&b.key())
            .then_with(|| rank(&a.result).cmp(&rank(&b.result)))
            .then_with(|| a.message.cmp(&b.message))
    });
    results.dedup_by(|a, b| a.key() == b.key());
    for result in &mut results {
        result.timestamp = previous
            .and_then(|kept| kept.timestamp(result))
            .unwrap_or_else(|| Timestamp::of(now));
    }
    let summary = summarize(&results);
    ReportBody { results, summary }
}

#[cfg(test)]
mod tests;
