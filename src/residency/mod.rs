//! The residency audit: what is observed in the cluster in, placements and violations out.
//! Pure code: the same observations always give the same verdict.

pub mod members;
mod selector;

pub use selector::node_matches;

use std::borrow::Borrow;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::api::jurisdiction::Jurisdiction;
use crate::api::{DataCopy, Placement, RegionalDataCenter, Residency};
use crate::copies::{
    self, Backup, BackupLike, BackupStorageLocation, Schedule, VolumeSnapshot, VolumeSnapshotClass,
    VolumeSnapshotLocation,
};
use crate::resources::{DATA_VOLUME, NodeLabelKeys, RDC_LABEL, claim_name, pod_name};

/// Why an object breaks the residency promise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ViolationReason {
    /// A pod runs on a node whose jurisdiction label is missing or different.
    NodeOutsideJurisdiction,
    /// A bound volume's node affinity reaches a node outside the jurisdiction.
    DataOutsideJurisdiction,
    /// A bound volume's location cannot be established.
    Unverifiable,
    /// A pod that is not a replica mounts a replica's data claim.
    ForeignMount,
    /// A replica's pod no longer belongs to the StatefulSet (relabelled, or orphaned): the
    /// fence and the StatefulSet no longer cover it.
    ReplicaDetached,
    /// A copy of the data (a VolumeSnapshot) is kept where its class declares another
    /// jurisdiction.
    CopyOutsideJurisdiction,
}

impl ViolationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NodeOutsideJurisdiction => "NodeOutsideJurisdiction",
            Self::DataOutsideJurisdiction => "DataOutsideJurisdiction",
            Self::Unverifiable => "Unverifiable",
            Self::ForeignMount => "ForeignMount",
            Self::ReplicaDetached => "ReplicaDetached",
            Self::CopyOutsideJurisdiction => "CopyOutsideJurisdiction",
        }
    }
}

/// One finding of the audit; the status adds when it was first seen.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub kind: &'static str,
    pub name: String,
    pub reason: ViolationReason,
    pub message: String,
}

/// What the cluster holds that bears on one RegionalDataCenter.
#[derive(Clone, Copy, Debug, Default)]
pub struct Observed<'a> {
    /// Pods of the RegionalDataCenter: labelled with it, or mounting its data claims (others
    /// are left out by the audit).
    pub pods: &'a [Pod],
    /// Claims labelled with the RegionalDataCenter.
    pub claims: &'a [PersistentVolumeClaim],
    /// Pods and claims that `spec.members` may cover (at least those of the namespace it
    /// selects; the audit picks them, see `members::covered`).
    pub member_pods: &'a [Pod],
    pub member_claims: &'a [PersistentVolumeClaim],
    /// PersistentVolumes (at least those bound to the claims).
    pub volumes: &'a [Arc<PersistentVolume>],
    /// Every node.
    pub nodes: &'a [Arc<Node>],
    /// Every StorageClass (to read which jurisdiction a class declares).
    pub classes: &'a [Arc<StorageClass>],
    /// VolumeSnapshots in the data centre's namespace (those of its claims are audited).
    pub snapshots: &'a [Arc<VolumeSnapshot>],
    /// Every VolumeSnapshotClass (to read which jurisdiction a class declares).
    pub snapshot_classes: &'a [Arc<VolumeSnapshotClass>],
    /// Every Velero Backup and Schedule (those that include the namespace are audited), and
    /// every location they may store to.
    pub backups: &'a [Arc<Backup>],
    pub schedules: &'a [Arc<Schedule>],
    pub storage_locations: &'a [Arc<BackupStorageLocation>],
    pub snapshot_locations: &'a [Arc<VolumeSnapshotLocation>],
}

/// The verdict of one audit.
#[derive(Clone, Debug, PartialEq)]
pub struct Audit {
    pub placements: Vec<Placement>,
    /// The snapshots of its claims, inside or not.
    pub copies: Vec<DataCopy>,
    pub findings: Vec<Finding>,
    pub residency: Residency,
}

fn label<'a>(
    labels: Option<&'a std::collections::BTreeMap<String, String>>,
    key: &str,
) -> Option<&'a str> {
    labels.and_then(|l| l.get(key)).map(String::as_str)
}

/// Whether `node` carries the labels of `jurisdiction`: its country, and its subdivision when the
/// jurisdiction names one. Values are compared exactly: `cn` or an empty value is not `CN`.
pub fn node_in_jurisdiction(
    node: &Node,
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
) -> bool {
    let labels = node.metadata.labels.as_ref();
    label(labels, &keys.jurisdiction) == Some(jurisdiction.country())
        && jurisdiction
            .subdivision()
            .is_none_or(|sub| label(labels, &keys.subdivision) == Some(sub))
}

/// The nodes on which pods and volumes of `jurisdiction` may be placed, by name.
pub fn eligible_nodes<'a, N: Borrow<Node>>(
    nodes: &'a [N],
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
) -> Vec<&'a Node> {
    let mut eligible: Vec<&Node> = nodes
        .iter()
        .map(Borrow::borrow)
        .filter(|node| node_in_jurisdiction(node, jurisdiction, keys))
        .collect();
    eligible.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    eligible
}

fn node_jurisdiction_text(node: &Node, keys: &NodeLabelKeys) -> String {
    let labels = node.metadata.labels.as_ref();
    match (
        label(labels, &keys.jurisdiction),
        label(labels, &keys.subdivision),
    ) {
        (None, _) => "no jurisdiction label".to_owned(),
        (Some(country), Some(sub)) => format!("jurisdiction {country:?}, subdivision {sub:?}"),
        (Some(country), None) => format!("jurisdiction {country:?}"),
    }
}

/// What a class's labels (a StorageClass's, a VolumeSnapshotClass's) declare about `jurisdiction`.
#[derive(Debug, PartialEq, Eq)]
enum Declared {
    /// Its jurisdiction (and subdivision, when the jurisdiction names one).
    Within,
    /// Another one, as its labels say.
    Elsewhere(String),
    /// Nothing.
    Nothing,
}

fn declared(
    labels: Option<&std::collections::BTreeMap<String, String>>,
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
) -> Declared {
    let country = label(labels, &keys.jurisdiction);
    let sub = label(labels, &keys.subdivision);
    match country {
        None => Declared::Nothing,
        Some(country)
            if country == jurisdiction.country()
                && jurisdiction
                    .subdivision()
                    .is_none_or(|want| sub == Some(want)) =>
        {
            Declared::Within
        }
        Some(country) => Declared::Elsewhere(sub.unwrap_or(country).to_owned()),
    }
}

fn find_node<'a>(nodes: &'a [Arc<Node>], name: &str) -> Option<&'a Node> {
    nodes
        .iter()
        .map(AsRef::as_ref)
        .find(|n| n.metadata.name.as_deref() == Some(name))
}

/// The verdict on one pod: `None` while it is not scheduled.
fn audit_pod(
    pod: &Pod,
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
    nodes: &[Arc<Node>],
) -> Option<Result<(), Finding>> {
    let node_name = pod.spec.as_ref()?.node_name.as_deref()?;
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let finding = |detail: String| Finding {
        kind: "Pod",
        name: pod_name.clone(),
        reason: ViolationReason::NodeOutsideJurisdiction,
        message: format!(
            "pod {pod_name} runs on node {node_name}, {detail}, outside {jurisdiction}"
        ),
    };
    Some(match find_node(nodes, node_name) {
        Some(node) if node_in_jurisdiction(node, jurisdiction, keys) => Ok(()),
        Some(node) => Err(finding(format!(
            "which has {}",
            node_jurisdiction_text(node, keys)
        ))),
        None => Err(finding("which no longer exists".to_owned())),
    })
}

/// Where a volume lives: the verdict, and the one node it is pinned to if there is exactly one.
fn audit_volume(
    pv: &PersistentVolume,
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
    observed: &Observed<'_>,
) -> (Result<(), Finding>, Option<String>) {
    let pv_name = pv.metadata.name.clone().unwrap_or_default();
    let finding = |reason, message| Finding {
        kind: "PersistentVolume",
        name: pv_name.clone(),
        reason,
        message,
    };
    let spec = pv.spec.as_ref();
    let Some(selector) = spec
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        // Network storage: only the class can say where it is.
        let class_name = spec
            .and_then(|s| s.storage_class_name.as_deref())
            .unwrap_or_default();
        let class = observed
            .classes
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(class_name));
        let within = class.is_some_and(|c| {
            declared(c.metadata.labels.as_ref(), jurisdiction, keys) == Declared::Within
        });
        return if within {
            (Ok(()), None)
        } else {
            (
                Err(finding(
                    ViolationReason::Unverifiable,
                    format!(
                        "volume {pv_name} has no node affinity and its StorageClass {class_name:?} does not declare \
                         jurisdiction {jurisdiction}; if the class keeps data there, label it: \
                         kubectl label storageclass {class_name} {}={}",
                        keys.jurisdiction,
                        jurisdiction.country()
                    ),
                )),
                None,
            )
        };
    };
    let reachable: Vec<&Node> = observed
        .nodes
        .iter()
        .map(AsRef::as_ref)
        .filter(|n| node_matches(n, selector))
        .collect();
    let pinned = match reachable.as_slice() {
        [only] => only.metadata.name.clone(),
        _ => None,
    };
    let outside: Vec<String> = reachable
        .iter()
        .filter(|n| !node_in_jurisdiction(n, jurisdiction, keys))
        .map(|n| {
            format!(
                "{} ({})",
                n.metadata.name.as_deref().unwrap_or_default(),
                node_jurisdiction_text(n, keys)
            )
        })
        .collect();
    let verdict = if !outside.is_empty() {
        Err(finding(
            ViolationReason::DataOutsideJurisdiction,
            format!(
                "volume {pv_name} can be used on node {}, outside {jurisdiction}; the data must be moved or the node \
                 relabelled by a person, domicile never moves data",
                outside.join(", ")
            ),
        ))
    } else if reachable.is_empty() && !selector::requires_jurisdiction(selector, jurisdiction, keys)
    {
        Err(finding(
            ViolationReason::Unverifiable,
            format!(
                "the node affinity of volume {pv_name} matches no node, so where its data lives cannot be verified"
            ),
        ))
    } else {
        Ok(())
    };
    (verdict, pinned)
}

/// The code a class's or location's labels declare: the subdivision label (which holds the whole
/// code, CN-SH) or the country's.
fn declared_code(
    labels: Option<&std::collections::BTreeMap<String, String>>,
    keys: &NodeLabelKeys,
) -> Option<String> {
    label(labels, &keys.subdivision)
        .filter(|_| label(labels, &keys.jurisdiction).is_some())
        .or_else(|| label(labels, &keys.jurisdiction))
        .map(str::to_owned)
}

/// The verdict on a Velero Backup or Schedule that copies the data centre's `namespace`: where
/// its storage location, and each location its volume snapshots may go to, declare they keep it.
/// At most one finding: the first location outside, else the first that cannot be verified.
fn audit_backup(
    backup: &BackupLike<'_>,
    namespace: &str,
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
    observed: &Observed<'_>,
) -> (DataCopy, Option<Finding>) {
    let name = format!(
        "{}/{}",
        backup.metadata.namespace.as_deref().unwrap_or_default(),
        backup.metadata.name.as_deref().unwrap_or_default()
    );
    let kind = backup.kind;
    let what = format!("{} {name} of namespace {namespace}", kind.to_lowercase());
    let namespace_of_backup = backup.metadata.namespace.as_deref().unwrap_or_default();
    // What one location declares: None inside, else (outside, why).
    let judge = |location_kind: &str, location: &str, labels| match declared(
        labels,
        jurisdiction,
        keys,
    ) {
        Declared::Within => None,
        Declared::Elsewhere(there) => Some((
            true,
            format!(
                "{location_kind} {location} declares jurisdiction {there}, outside {jurisdiction}"
            ),
        )),
        Declared::Nothing => Some((
            false,
            format!(
                "{location_kind} {location} declares no jurisdiction (if it keeps its data in \
                 {jurisdiction}, label it: kubectl label {} {location} -n {namespace_of_backup} \
                 {}={})",
                location_kind.to_lowercase(),
                keys.jurisdiction,
                jurisdiction.country()
            ),
        )),
    };
    let mut verdicts = Vec::new();
    let storage = copies::storage_location_of(backup, observed.storage_locations);
    verdicts.push(match &storage {
        Ok(location) => judge(
            "BackupStorageLocation",
            location.metadata.name.as_deref().unwrap_or_default(),
            location.metadata.labels.as_ref(),
        ),
        Err(missing) if missing.is_empty() => Some((
            false,
            "it names no BackupStorageLocation and there is no single default".to_owned(),
        )),
        Err(missing) => Some((
            false,
            format!("BackupStorageLocation {missing} does not exist"),
        )),
    });
    match copies::snapshot_locations_of(backup, observed.snapshot_locations) {
        Ok(locations) => verdicts.extend(locations.into_iter().map(|location| {
            judge(
                "VolumeSnapshotLocation",
                location.metadata.name.as_deref().unwrap_or_default(),
                location.metadata.labels.as_ref(),
            )
        })),
        Err(missing) => verdicts.push(Some((
            false,
            format!("VolumeSnapshotLocation {missing} does not exist"),
        ))),
    }
    let (outside, unverifiable): (Vec<_>, Vec<_>) =
        verdicts.into_iter().flatten().partition(|(out, _)| *out);
    let outside: Vec<String> = outside.into_iter().map(|(_, why)| why).collect();
    let unverifiable: Vec<String> = unverifiable.into_iter().map(|(_, why)| why).collect();
    let storage = storage.ok();
    let copy = DataCopy {
        kind: kind.to_owned(),
        name: name.clone(),
        source: format!("namespace {namespace}"),
        class: storage.and_then(|l| l.metadata.name.clone()),
        jurisdiction: storage.and_then(|l| declared_code(l.metadata.labels.as_ref(), keys)),
        inside: outside.is_empty() && unverifiable.is_empty(),
    };
    let finding = if !outside.is_empty() {
        Some(Finding {
            kind,
            name,
            reason: ViolationReason::CopyOutsideJurisdiction,
            message: format!(
                "{what} is a copy of the data kept outside {jurisdiction}: {}; delete it \
                 (velero backup delete, or velero schedule delete), or store it to a location \
                 declared for {jurisdiction}",
                outside.join("; ")
            ),
        })
    } else if !unverifiable.is_empty() {
        Some(Finding {
            kind,
            name,
            reason: ViolationReason::Unverifiable,
            message: format!(
                "{what} is a copy of the data, and where it is kept cannot be verified: {}",
                unverifiable.join("; ")
            ),
        })
    } else {
        None
    };
    (copy, finding)
}

/// The verdict on a copy of the data: where its class declares it is kept.
fn audit_snapshot(
    snapshot: &VolumeSnapshot,
    claim: &str,
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
    classes: &[Arc<VolumeSnapshotClass>],
) -> (DataCopy, Result<(), Finding>) {
    let name = snapshot.metadata.name.clone().unwrap_or_default();
    let class = copies::class_of(snapshot, classes).ok();
    let labels = class.and_then(|c| c.metadata.labels.as_ref());
    let copy = DataCopy {
        kind: "VolumeSnapshot".to_owned(),
        name: name.clone(),
        source: claim.to_owned(),
        class: class.and_then(|c| c.metadata.name.clone()),
        jurisdiction: declared_code(labels, keys),
        inside: class.is_some() && matches!(declared(labels, jurisdiction, keys), Declared::Within),
    };
    (
        copy,
        snapshot_verdict(snapshot, &name, claim, jurisdiction, keys, classes),
    )
}

fn snapshot_verdict(
    snapshot: &VolumeSnapshot,
    name: &str,
    claim: &str,
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
    classes: &[Arc<VolumeSnapshotClass>],
) -> Result<(), Finding> {
    let name = name.to_owned();
    let finding = |reason, message| Finding {
        kind: "VolumeSnapshot",
        name: name.clone(),
        reason,
        message,
    };
    let class = match copies::class_of(snapshot, classes) {
        Ok(class) => class,
        Err(missing) => {
            let which = if missing.is_empty() {
                "names no VolumeSnapshotClass and there is no single default class".to_owned()
            } else {
                format!("names VolumeSnapshotClass {missing}, which does not exist")
            };
            return Err(finding(
                ViolationReason::Unverifiable,
                format!(
                    "snapshot {name} of claim {claim} {which}, so where this copy of the data is kept \
                     cannot be verified"
                ),
            ));
        }
    };
    let class_name = class.metadata.name.as_deref().unwrap_or_default();
    match declared(class.metadata.labels.as_ref(), jurisdiction, keys) {
        Declared::Within => Ok(()),
        Declared::Elsewhere(there) => Err(finding(
            ViolationReason::CopyOutsideJurisdiction,
            format!(
                "snapshot {name} of claim {claim} is a copy of the data kept by VolumeSnapshotClass \
                 {class_name}, which declares jurisdiction {there}, outside {jurisdiction}; delete \
                 the snapshot, or take it with a class declared for {jurisdiction}"
            ),
        )),
        Declared::Nothing => Err(finding(
            ViolationReason::Unverifiable,
            format!(
                "snapshot {name} of claim {claim} is a copy of the data kept by VolumeSnapshotClass \
                 {class_name}, which does not declare a jurisdiction; if it keeps its snapshots in \
                 {jurisdiction}, label it: kubectl label volumesnapshotclass {class_name} {}={}",
                keys.jurisdiction,
                jurisdiction.country()
            ),
        )),
    }
}

fn has_rdc_label(
    labels: Option<&std::collections::BTreeMap<String, String>>,
    rdc: &RegionalDataCenter,
) -> bool {
    label(labels, RDC_LABEL) == rdc.metadata.name.as_deref()
}

/// The data claims of `rdc` (`data-<rdc>-<ordinal>`) that `pod` mounts, with their ordinals.
fn data_claims_mounted(pod: &Pod, rdc: &RegionalDataCenter) -> Vec<(String, i32)> {
    let prefix = format!(
        "{DATA_VOLUME}-{}-",
        rdc.metadata.name.as_deref().unwrap_or_default()
    );
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default();
    volumes
        .iter()
        .filter_map(|v| Some(v.persistent_volume_claim.as_ref()?.claim_name.clone()))
        .filter_map(|claim| {
            // Ordinals past the replicas count too: a claim kept from a larger scale.
            let ordinal: i32 = claim.strip_prefix(&prefix)?.parse().ok()?;
            (claim_name(rdc, ordinal) == claim).then_some((claim, ordinal))
        })
        .collect()
}

/// Whether `claim` is named as a data claim of `rdc` (`data-<rdc>-<ordinal>`).
fn is_data_claim_of(claim: &str, rdc: &RegionalDataCenter) -> bool {
    let prefix = format!(
        "{DATA_VOLUME}-{}-",
        rdc.metadata.name.as_deref().unwrap_or_default()
    );
    claim
        .strip_prefix(&prefix)
        .and_then(|ordinal| ordinal.parse::<i32>().ok())
        .is_some_and(|ordinal| claim_name(rdc, ordinal) == claim)
}

/// Whether `pod` is one of `rdc`'s: it carries its label, or it mounts its data. Membership
/// goes by what a pod does, not only by a label its owner may change.
pub fn is_member(pod: &Pod, rdc: &RegionalDataCenter) -> bool {
    has_rdc_label(pod.metadata.labels.as_ref(), rdc) || !data_claims_mounted(pod, rdc).is_empty()
}

/// Whether `pod` is the StatefulSet's replica `ordinal` of `rdc`: its name, its label, and the
/// StatefulSet as its controller.
fn is_replica(pod: &Pod, rdc: &RegionalDataCenter, ordinal: i32) -> bool {
    let controlled = pod.metadata.owner_references.iter().flatten().any(|r| {
        r.kind == "StatefulSet"
            && Some(r.name.as_str()) == rdc.metadata.name.as_deref()
            && r.controller == Some(true)
    });
    pod.metadata.name.as_deref() == Some(pod_name(rdc, ordinal).as_str())
        && has_rdc_label(pod.metadata.labels.as_ref(), rdc)
        && controlled
}

/// Who mounts a replica's data: a stranger, or the replica's own pod gone astray.
fn mount_findings(pod: &Pod, rdc: &RegionalDataCenter) -> Vec<Finding> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = rdc.metadata.namespace.as_deref().unwrap_or_default();
    data_claims_mounted(pod, rdc)
        .into_iter()
        .filter(|(_, ordinal)| !is_replica(pod, rdc, *ordinal))
        .map(|(claim, ordinal)| {
            let replica = pod_name(rdc, ordinal);
            if name == replica {
                Finding {
                    kind: "Pod",
                    name: name.clone(),
                    reason: ViolationReason::ReplicaDetached,
                    message: format!(
                        "pod {name} holds the data of replica {ordinal} (claim {claim}) but no longer \
                         belongs to StatefulSet {}: its label {RDC_LABEL} was changed or removed, or it \
                         lost its controller, so the fence and the StatefulSet no longer cover it; \
                         delete it and the StatefulSet makes it again (kubectl delete pod {name} -n \
                         {namespace})",
                        rdc.metadata.name.as_deref().unwrap_or_default()
                    ),
                }
            } else {
                Finding {
                    kind: "Pod",
                    name: name.clone(),
                    reason: ViolationReason::ForeignMount,
                    message: format!(
                        "pod {name} mounts claim {claim}, the data of replica {replica}, which only \
                         that replica may mount; delete it (kubectl delete pod {name} -n {namespace})"
                    ),
                }
            }
        })
        .collect()
}

/// The verdict on one pod or bound volume of a jurisdiction namespace that no data centre covers.
#[derive(Clone, Debug, PartialEq)]
pub struct Uncovered {
    /// Pod or PersistentVolume.
    pub kind: &'static str,
    pub name: String,
    /// For a volume, the claim bound to it.
    pub claim: Option<String>,
    /// The node a pod runs on, or the one node a volume is pinned to.
    pub node: Option<String>,
    pub verdict: Result<(), Finding>,
}

/// Audits what nobody declared in a namespace that belongs to `jurisdiction`: each scheduled pod
/// and each bound claim's volume of `pods` and `claims` that are not in `covered` (kind and name
/// of the pods and volumes the data centres' statuses name), judged by the same rules as a data centre's own.
pub fn audit_namespace(
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
    covered: &std::collections::HashSet<(&str, &str)>,
    observed: &Observed<'_>,
) -> Vec<Uncovered> {
    let mut found = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if covered.contains(&("Pod", name.as_str())) {
            continue;
        }
        if let Some(verdict) = audit_pod(pod, jurisdiction, keys, observed.nodes) {
            found.push(Uncovered {
                kind: "Pod",
                name,
                claim: None,
                node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                verdict,
            });
        }
    }
    for claim in claims {
        let Some(volume) = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) else {
            continue;
        };
        if covered.contains(&("PersistentVolume", volume)) {
            continue;
        }
        let Some(pv) = observed
            .volumes
            .iter()
            .find(|pv| pv.metadata.name.as_deref() == Some(volume))
        else {
            continue;
        };
        let (verdict, node) = audit_volume(pv, jurisdiction, keys, observed);
        found.push(Uncovered {
            kind: "PersistentVolume",
            name: volume.to_owned(),
            claim: claim.metadata.name.clone(),
            node,
            verdict,
        });
    }
    found.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    found
}

/// A finding about a pod that `spec.members` covers names the object that runs it.
fn covered_finding(mut finding: Finding, pod: &Pod) -> Finding {
    finding.message = format!(
        "{} (run by {}, covered by spec.members)",
        finding.message,
        members::owner_of(pod)
    );
    finding
}

/// Audits `rdc`: one placement per replica and per covered pod, and every pod or volume of it outside `jurisdiction`.
pub fn audit(
    rdc: &RegionalDataCenter,
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
    observed: &Observed<'_>,
) -> Audit {
    let mut findings = Vec::new();
    let mut anything_placed = false;

    for pod in observed.pods.iter().filter(|p| is_member(p, rdc)) {
        if let Some(verdict) = audit_pod(pod, jurisdiction, keys, observed.nodes) {
            anything_placed = true;
            findings.extend(verdict.err());
        }
        findings.extend(mount_findings(pod, rdc));
    }
    let volume_of = |claim: &PersistentVolumeClaim| {
        let volume_name = claim.spec.as_ref()?.volume_name.as_deref()?;
        observed
            .volumes
            .iter()
            .map(AsRef::as_ref)
            .find(|pv| pv.metadata.name.as_deref() == Some(volume_name))
    };
    let (covered_pods, covered_claims) =
        members::covered(rdc, observed.member_pods, observed.member_claims);
    for pod in &covered_pods {
        if let Some(verdict) = audit_pod(pod, jurisdiction, keys, observed.nodes) {
            anything_placed = true;
            findings.extend(verdict.err().map(|f| covered_finding(f, pod)));
        }
    }
    let own_claims = observed
        .claims
        .iter()
        .filter(|c| has_rdc_label(c.metadata.labels.as_ref(), rdc));
    for claim in own_claims.chain(covered_claims.iter().copied()) {
        if let Some(pv) = volume_of(claim) {
            anything_placed = true;
            findings.extend(audit_volume(pv, jurisdiction, keys, observed).0.err());
        }
    }
    // Copies of its claims, whoever took them.
    let mut data_copies = Vec::new();
    for snapshot in observed.snapshots.iter() {
        let Some(claim) = snapshot.source_claim() else {
            continue;
        };
        let of_this = observed.claims.iter().any(|c| {
            c.metadata.name.as_deref() == Some(claim)
                && has_rdc_label(c.metadata.labels.as_ref(), rdc)
        }) || is_data_claim_of(claim, rdc)
            || covered_claims
                .iter()
                .any(|c| c.metadata.name.as_deref() == Some(claim));
        if of_this && snapshot.metadata.namespace == rdc.metadata.namespace {
            let (copy, verdict) = audit_snapshot(
                snapshot,
                claim,
                jurisdiction,
                keys,
                observed.snapshot_classes,
            );
            data_copies.push(copy);
            findings.extend(verdict.err());
        }
    }
    // And the Velero backups and schedules that copy its namespace, whoever asked for them.
    let namespace = rdc.metadata.namespace.as_deref().unwrap_or_default();
    let backups = observed
        .backups
        .iter()
        .map(|b| BackupLike::from(b.as_ref()))
        .chain(
            observed
                .schedules
                .iter()
                .map(|s| BackupLike::from(s.as_ref())),
        );
    for backup in backups.filter(|b| b.spec.includes(namespace)) {
        let (copy, finding) = audit_backup(&backup, namespace, jurisdiction, keys, observed);
        data_copies.push(copy);
        findings.extend(finding);
    }
    data_copies.sort();
    findings.sort();
    findings.dedup();

    let own_placements = (0..rdc.replicas()).map(|ordinal| {
        let pod_name = pod_name(rdc, ordinal);
        let pod = observed
            .pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(pod_name.as_str()));
        let node = pod
            .and_then(|p| p.spec.as_ref())
            .and_then(|s| s.node_name.clone());
        let node_jurisdiction = node
            .as_deref()
            .and_then(|n| find_node(observed.nodes, n))
            .and_then(|n| label(n.metadata.labels.as_ref(), &keys.jurisdiction))
            .map(str::to_owned);
        let pod_ok = pod
            .and_then(|p| audit_pod(p, jurisdiction, keys, observed.nodes))
            .is_some_and(|v| v.is_ok());
        let claim_name = claim_name(rdc, ordinal);
        let pv = observed
            .claims
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(claim_name.as_str()))
            .and_then(volume_of);
        let (volume_ok, volume_node) = match pv {
            Some(pv) => {
                let (verdict, pinned) = audit_volume(pv, jurisdiction, keys, observed);
                (verdict.is_ok(), pinned)
            }
            None => (false, None),
        };
        Placement {
            pod: pod_name,
            owner: Some(format!(
                "StatefulSet/{}",
                rdc.metadata.name.as_deref().unwrap_or_default()
            )),
            node,
            node_jurisdiction,
            volume: pv.and_then(|pv| pv.metadata.name.clone()),
            volume_node,
            compliant: pod_ok && volume_ok,
        }
    });
    // A covered pod, with the first covered claim it mounts and where that claim's data is.
    let mut covered_placements: Vec<Placement> = covered_pods
        .iter()
        .map(|pod| {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            let node_jurisdiction = node
                .as_deref()
                .and_then(|n| find_node(observed.nodes, n))
                .and_then(|n| label(n.metadata.labels.as_ref(), &keys.jurisdiction))
                .map(str::to_owned);
            let pod_ok =
                audit_pod(pod, jurisdiction, keys, observed.nodes).is_some_and(|v| v.is_ok());
            let mounted: Vec<&PersistentVolumeClaim> = members::claims_of(pod)
                .filter_map(|name| {
                    covered_claims
                        .iter()
                        .copied()
                        .find(|c| c.metadata.name.as_deref() == Some(name))
                })
                .collect();
            let pv = mounted.iter().find_map(|claim| volume_of(claim));
            // Every bound claim it mounts must have its volume known and inside (their findings
            // are the claims' own, above).
            let volumes_ok = mounted.iter().all(|claim| {
                let bound = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref());
                match (bound, volume_of(claim)) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(_), Some(pv)) => audit_volume(pv, jurisdiction, keys, observed).0.is_ok(),
                }
            });
            let (volume_ok, volume_node) = match pv {
                Some(pv) => (volumes_ok, audit_volume(pv, jurisdiction, keys, observed).1),
                // A pod without data of its own is judged by where it runs.
                None => (volumes_ok, None),
            };
            Placement {
                pod: pod.metadata.name.clone().unwrap_or_default(),
                owner: Some(members::owner_of(pod)),
                node,
                node_jurisdiction,
                volume: pv.and_then(|pv| pv.metadata.name.clone()),
                volume_node,
                compliant: pod_ok && volume_ok,
            }
        })
        .collect();
    covered_placements.sort_by(|a, b| a.pod.cmp(&b.pod));
    let placements = own_placements.chain(covered_placements).collect();

    let residency = if findings
        .iter()
        .any(|f| f.reason != ViolationReason::Unverifiable)
    {
        Residency::Violated
    } else if !findings.is_empty() {
        Residency::Unverifiable
    } else if anything_placed || (rdc.replicas() == 0 && rdc.spec.members.is_none()) {
        Residency::Compliant
    } else {
        Residency::Pending
    };
    Audit {
        placements,
        copies: data_copies,
        findings,
        residency,
    }
}

#[cfg(test)]
pub(crate) mod tests;
