//! Keeps one policy report per namespace with data centres or labelled with a jurisdiction (see
//! `crate::report`): rebuilt from the statuses by a task of its own once the namespace's verdicts
//! have been still for [`STILL`], or [`LAG_MAX`] after they first changed if they keep changing,
//! and only the parts whose results, or the set of data centres they belong to, changed are
//! written. Each write is paid for in time: the namespace is held back after it in proportion to
//! the bytes written ([`HOLD_RATE`]). The API server parses, validates and stores a report whole,
//! about a millisecond of its time per kilobyte: a namespace of 500 data centres converging, or
//! relabelled node after node, would otherwise spend it on reports rather than on verdicts. Where
//! the report API is not served nothing is written, and the log says why, once.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::runtime::reflector::ObjectRef;

use super::{Context, cached};
use crate::api::RegionalDataCenterStatus;
use crate::api::jurisdiction::Jurisdiction;
use crate::guard::NAMESPACE_LABEL;
use crate::report::{self, Format, ReportResource, ReportResult};
use crate::residency::Observed;
use crate::resources::FIELD_MANAGER;

/// A report as the operator applies it, borrowed from what it keeps.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportPatch<'a> {
    api_version: &'a str,
    kind: &'a str,
    metadata: PatchMeta<'a>,
    results: &'a [ReportResult],
    summary: report::Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PatchMeta<'a> {
    name: &'a str,
    namespace: &'a str,
    labels: std::collections::BTreeMap<&'a str, &'a str>,
    owner_references: &'a [OwnerReference],
}

/// What was last written, or found, in one namespace: what the next rebuild compares with, not
/// the results themselves (see `report::Kept`).
#[derive(Clone, PartialEq)]
struct Written {
    kept: report::Kept,
    /// None for reports found with owners that differ: every part is written again.
    owners: Option<Vec<OwnerReference>>,
    /// The hashes of the results of each report (`report::written_hash`), in the order of their
    /// names (see `report::split`): a part missing among those found is empty.
    parts: Vec<Vec<u64>>,
}

/// How long a namespace's verdicts must have been still before its report is rebuilt, so that
/// the reconciles of its other data centres meanwhile are taken in by the same rebuild.
pub const STILL: Duration = Duration::from_secs(1);

/// How long a report may lag behind verdicts that keep changing (data centres converging one
/// after another, nodes relabelled one after another).
pub const LAG_MAX: Duration = Duration::from_secs(60);

/// Bytes of reports written per second of hold: after a write of `n` bytes its namespace is
/// rebuilt no sooner than `n / HOLD_RATE` later (16 s after the 2 MiB of a namespace of 500
/// data centres), bounded by [`STILL`] and [`LAG_MAX`].
pub const HOLD_RATE: usize = 128 * 1024;

/// A namespace whose report is due: since when, and when its last verdict change put the
/// rebuild off (see [`Reports::refresh`] and [`Reports::touch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Due<T> {
    since: T,
    last: T,
}

/// The wait before a report whose write failed is tried again, doubled each time up to
/// [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);

pub struct Reports {
    resource: ReportResource,
    api_resource: ApiResource,
    /// What was last written in each namespace; only the keeper reads and writes it.
    last: tokio::sync::Mutex<HashMap<String, Written>>,
    /// The namespaces whose report is to be rebuilt.
    due: std::sync::Mutex<HashMap<String, Due<tokio::time::Instant>>>,
    /// The data centres (`namespace/name`) this process has put into a report at least once.
    seen: std::sync::Mutex<HashSet<String>>,
    /// Namespaces where reports of an earlier process were found at start, until rebuilt.
    left: std::sync::Mutex<HashSet<String>>,
    wake: tokio::sync::Notify,
}

impl Reports {
    /// The reports of `format`, if the API server serves them; otherwise None, and a log line
    /// saying why no report will be written.
    pub async fn discover(client: &Client, format: Format) -> Option<Self> {
        let resource = format.resource()?;
        let served = match client
            .list_api_group_resources(&resource.api_version())
            .await
        {
            Ok(list) => list.resources.iter().any(|r| r.name == resource.plural),
            Err(kube::Error::Api(status)) if status.code == 404 => false,
            Err(err) => {
                tracing::warn!(
                    api = %resource.api_version(),
                    error = %err,
                    "no policy report is written: cannot tell whether the API server serves {}",
                    resource.kind
                );
                return None;
            }
        };
        if !served {
            tracing::info!(
                api = %resource.api_version(),
                "no policy report is written: the API server does not serve {} {}; install the CRD {} \
                 and restart the operator, or choose another --reports format",
                resource.api_version(),
                resource.kind,
                resource.crd()
            );
            return None;
        }
        tracing::info!(api = %resource.api_version(), kind = resource.kind, "writing one policy report per namespace");
        let gvk = GroupVersionKind::gvk(resource.group, resource.version, resource.kind);
        Some(Self {
            resource,
            api_resource: ApiResource::from_gvk_with_plural(&gvk, resource.plural),
            last: tokio::sync::Mutex::default(),
            due: std::sync::Mutex::default(),
            seen: std::sync::Mutex::default(),
            left: std::sync::Mutex::default(),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Marks the report of `namespace` to be rebuilt by the keeper ([`keep`]) once its verdicts
    /// are still: a verdict changed (a status, a data centre come or gone), so a rebuild already
    /// due waits for the next one. It never waits for, nor fails, the reconcile of a data centre.
    pub fn refresh(&self, namespace: &str) {
        self.mark(namespace, true);
    }

    /// Marks the report of `namespace` to be rebuilt, without putting off a rebuild already due:
    /// for an event that may or may not change a verdict (a pod, a claim, a volume or the
    /// namespace itself changed), which a tenant can cause at will. A stream of them has the
    /// report rebuilt once per [`STILL`], written only when it changed.
    pub fn touch(&self, namespace: &str) {
        self.mark(namespace, false);
    }

    fn mark(&self, namespace: &str, postpone: bool) {
        let now = tokio::time::Instant::now();
        let mut due = self
            .due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A namespace already due is rebuilt later: the keeper sees that when it looks again.
        if let Some(due) = due.get_mut(namespace) {
            if postpone {
                due.last = now;
            }
            return;
        }
        due.insert(
            namespace.to_owned(),
            Due {
                since: now,
                last: now,
            },
        );
        drop(due);
        self.wake.notify_one();
    }

    /// After a reconcile of the data centre `namespace/name`: its namespace's report is due when
    /// its status changed, or at its first reconcile in this process (a predecessor may have
    /// stopped between a status and its report). A reconcile that changed nothing, as at rest,
    /// leaves the report alone: it is built from the statuses only.
    pub fn reconciled(&self, namespace: &str, name: &str, status_changed: bool) {
        let first = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(format!("{namespace}/{name}"));
        if first || status_changed {
            self.refresh(namespace);
        }
    }

    /// After the data centre `namespace/name` is gone: its results leave the report.
    pub fn removed(&self, namespace: &str, name: &str) {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&format!("{namespace}/{name}"));
        self.refresh(namespace);
    }

    /// Marks due the namespaces where an earlier process left reports: one that was labelled
    /// without data centres and is not any more has reports that only this removes. False when
    /// they could not be listed.
    async fn sweep(&self, ctx: &Context) -> bool {
        let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &self.api_resource);
        let params = ListParams::default().labels("app.kubernetes.io/managed-by=domicile");
        match api.list_metadata(&params).await {
            Ok(listed) => {
                let namespaces: HashSet<String> = listed
                    .items
                    .into_iter()
                    .filter_map(|report| report.metadata.namespace)
                    .collect();
                for namespace in &namespaces {
                    self.refresh(namespace);
                }
                self.left
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(namespaces);
                true
            }
            Err(err) => {
                tracing::warn!(
                    kind = self.resource.kind,
                    error = %err,
                    "cannot list the policy reports left by an earlier process; tried again later"
                );
                false
            }
        }
    }

    /// Whether reports this process has not written (or not whole) may be in `namespace`.
    fn is_left(&self, namespace: &str) -> bool {
        self.left
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(namespace)
    }

    /// Records whether reports this process has not written (or not whole) may be in
    /// `namespace`.
    fn left(&self, namespace: &str, left: bool) {
        let mut all = self
            .left
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if left {
            all.insert(namespace.to_owned());
        } else {
            all.remove(namespace);
        }
    }

    /// Marks `namespace` due again, as it was, without waking the keeper, which knows when to
    /// look. (Marked since, it is due since the first of the two marks, until the last.)
    fn due_again(&self, namespace: String, was: Due<tokio::time::Instant>) {
        self.due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(namespace)
            .and_modify(|due| {
                due.since = due.since.min(was.since);
                due.last = due.last.max(was.last);
            })
            .or_insert(was);
    }

    /// The namespaces due whose time has come, taken out of those due.
    fn take_ready(
        &self,
        held: &HashMap<String, tokio::time::Instant>,
        now: tokio::time::Instant,
    ) -> Vec<(String, Due<tokio::time::Instant>)> {
        let mut due = self
            .due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut ready: Vec<String> = due
            .iter()
            .filter(|(namespace, due)| ready_at(**due, held.get(*namespace).copied()) <= now)
            .map(|(namespace, _)| namespace.clone())
            .collect();
        ready.sort();
        ready
            .into_iter()
            .filter_map(|namespace| due.remove_entry(&namespace))
            .collect()
    }

    /// Rebuilds the report of `namespace` and writes what changed; returns the bytes of the
    /// reports written, and whether any was written or deleted.
    async fn try_refresh(&self, namespace: &str, ctx: &Context) -> Result<Wrote, kube::Error> {
        let mut last = self.last.lock().await;
        let data_centers: Vec<_> = ctx
            .caches
            .data_centers
            .state()
            .into_iter()
            .filter(|rdc| {
                rdc.namespace().as_deref() == Some(namespace)
                    && rdc.meta().deletion_timestamp.is_none()
            })
            .collect();
        // Reports may be there that this process has not written: left by an earlier one, or
        // by a write of its own that failed halfway.
        let left = self.is_left(namespace);
        let cached = ctx.caches.namespaces.get(&ObjectRef::new(namespace));
        if cached
            .as_ref()
            .is_some_and(|ns| ns.metadata.deletion_timestamp.is_some())
        {
            // A namespace being deleted takes its reports with it, and refuses new ones.
            last.remove(namespace);
            self.left(namespace, false);
            return Ok(Wrote::NOTHING);
        }
        let labelled = cached.is_some_and(|ns| ns.labels().contains_key(NAMESPACE_LABEL));
        if data_centers.is_empty() && !labelled {
            // The garbage collector deletes a report with the last of its owners; the reports
            // of a namespace that was labelled without data centres have none, and go here.
            let previous = match last.remove(namespace) {
                Some(previous) => Some(previous),
                None if left => found(&ctx.client, &self.api_resource, namespace).await?,
                None => None,
            };
            // (Reports of mixed owners are deleted too: none of their owners is left.)
            let Some(previous) = previous.filter(|p| p.owners.as_ref().is_none_or(Vec::is_empty))
            else {
                self.left(namespace, false);
                return Ok(Wrote::NOTHING);
            };
            let parts = 0..previous.parts.len();
            let wrote = match self.write(namespace, &Parts::NONE, &[], parts, ctx).await {
                Ok(wrote) => wrote,
                Err(err) => {
                    last.insert(namespace.to_owned(), previous);
                    return Err(err);
                }
            };
            self.left(namespace, false);
            return Ok(wrote);
        }
        // The last report written, or, at the first rebuild in this process, the ones found.
        let found = match last.get(namespace) {
            Some(_) => None,
            None => found(&ctx.client, &self.api_resource, namespace).await?,
        };
        let previous = last.get(namespace).or(found.as_ref());
        let statuses: Vec<_> = data_centers
            .iter()
            .map(|rdc| ctx.writer.newest(rdc))
            .collect();
        let undeclared = undeclared(namespace, &statuses, ctx);
        let body = report::build(
            data_centers
                .iter()
                .zip(&statuses)
                .map(|(rdc, status)| (rdc.as_ref(), status.as_deref())),
            undeclared,
            previous.map(|p| &p.kept),
            jiff::Timestamp::now(),
        );
        drop(statuses);
        let mut owners: Vec<OwnerReference> = data_centers
            .iter()
            .filter_map(|rdc| rdc.owner_ref(&()))
            .map(|owner| OwnerReference {
                controller: None,
                block_owner_deletion: None,
                ..owner
            })
            .collect();
        owners.sort_by(|a, b| a.name.cmp(&b.name));
        let owners = Some(owners);
        let hashes: Vec<u64> = body.results.iter().map(report::written_hash).collect();
        // Told first from the hashes, before any result is serialized to split the report: most
        // rebuilds find nothing new. Unchanged: every result is in a report, in order, once (a
        // part found missing is empty).
        let same_results = previous.is_some_and(|p| {
            p.owners == owners
                && p.parts.iter().all(|part| !part.is_empty())
                && p.parts.iter().flatten().eq(&hashes)
        });
        let written = (!same_results).then(|| {
            let ranges = report::split(&body.results, ctx.settings.report_part_bytes);
            let written = Written {
                kept: report::Kept::of(&body.results),
                parts: ranges
                    .iter()
                    .map(|range| hashes[range.clone()].to_vec())
                    .collect(),
                owners,
            };
            (written, ranges)
        });
        let Some((written, ranges)) =
            written.filter(|(written, _)| previous.is_none_or(|p| p != written))
        else {
            // Nothing changed since the last write, or since what an earlier process wrote.
            if let Some(found) = found {
                last.insert(namespace.to_owned(), found);
            }
            self.left(namespace, false);
            return Ok(Wrote::NOTHING);
        };
        // Only the parts whose results (or owners) changed are written.
        let changed: Vec<usize> = (0..written.parts.len())
            .filter(|&index| {
                previous.is_none_or(|p| {
                    p.owners != written.owners || p.parts.get(index) != written.parts.get(index)
                })
            })
            .collect();
        // Parts of an earlier, longer report go.
        let stale = written.parts.len()..previous.map_or(0, |p| p.parts.len());
        let parts = Parts {
            results: &body.results,
            ranges: &ranges,
            owners: written.owners.as_deref().unwrap_or_default(),
        };
        drop(found);
        let applied = self.write(namespace, &parts, &changed, stale, ctx).await;
        match applied {
            Ok(wrote) => {
                last.insert(namespace.to_owned(), written);
                self.left(namespace, false);
                Ok(wrote)
            }
            Err(err) => {
                // What the failed write left is found again at the next try.
                last.remove(namespace);
                self.left(namespace, true);
                Err(err)
            }
        }
    }

    /// Applies the parts `changed` of the report, then deletes the parts in `stale` (of an earlier,
    /// longer report). Someone else's write to a report is taken back: force. Each patch is serialized
    /// straight from the results, and the answer (the whole report) is not parsed: for a
    /// namespace of 500 data centres both would be trees of JSON values of megabytes.
    async fn write(
        &self,
        namespace: &str,
        parts: &Parts<'_>,
        changed: &[usize],
        stale: Range<usize>,
        ctx: &Context,
    ) -> Result<Wrote, kube::Error> {
        let mut wrote = Wrote {
            any: !changed.is_empty() || !stale.is_empty(),
            bytes: 0,
        };
        let api_version = self.resource.api_version();
        let url = DynamicObject::url_path(&self.api_resource, Some(namespace));
        for &part in changed {
            let name = report::report_name(part);
            let results = parts
                .ranges
                .get(part)
                .and_then(|range| parts.results.get(range.clone()))
                .unwrap_or_default();
            let patch = ReportPatch {
                api_version: &api_version,
                kind: self.resource.kind,
                metadata: PatchMeta {
                    name: &name,
                    namespace,
                    labels: [("app.kubernetes.io/managed-by", "domicile")].into(),
                    owner_references: parts.owners,
                },
                results,
                summary: report::summarize(results),
                source: (self.resource.group == "openreports.io").then_some(report::SOURCE),
            };
            ctx.writer.metrics().write("apply", self.resource.kind);
            let request = kube::core::Request::new(&url)
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .map_err(kube::Error::BuildRequest)?;
            wrote.bytes += request.body().len();
            ctx.client.request_text(request).await?;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), namespace, &self.api_resource);
        for part in stale.clone() {
            ctx.writer.metrics().write("delete", self.resource.kind);
            match api
                .delete(&report::report_name(part), &Default::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        tracing::info!(
            namespace,
            kind = self.resource.kind,
            written = ?changed.iter().map(|&part| report::report_name(part)).collect::<Vec<_>>(),
            deleted = ?stale.map(report::report_name).collect::<Vec<_>>(),
            "policy report written"
        );
        Ok(wrote)
    }
}

/// The reports to write: the results, each part's range of them, and their owners.
struct Parts<'a> {
    results: &'a [ReportResult],
    ranges: &'a [Range<usize>],
    owners: &'a [OwnerReference],
}

impl Parts<'_> {
    const NONE: Parts<'static> = Parts {
        results: &[],
        ranges: &[],
        owners: &[],
    };
}

/// What a rebuild wrote: whether any report was written or deleted, and the bytes written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wrote {
    any: bool,
    bytes: usize,
}

impl Wrote {
    const NOTHING: Self = Self {
        any: false,
        bytes: 0,
    };

    /// How long the namespace is held back after this write (see [`HOLD_RATE`]): no longer than
    /// [`LAG_MAX`], so that a report is never more than that behind (a tenant who fills a
    /// namespace with pods makes its report larger).
    fn hold(self) -> Option<Duration> {
        let paid = Duration::from_secs_f64(self.bytes as f64 / HOLD_RATE as f64);
        self.any.then(|| paid.clamp(STILL, LAG_MAX))
    }
}

/// A report as listed: what [`found`] reads of it, straight into its results (a tree of JSON
/// values of a report of 512 KiB would take megabytes).
#[derive(serde::Deserialize)]
struct Listed {
    items: Vec<ListedReport>,
}

#[derive(serde::Deserialize)]
struct ListedReport {
    metadata: kube::api::ObjectMeta,
    #[serde(default)]
    results: Vec<ReportResult>,
}

/// The reports of a namespace that an earlier process wrote, as one: their results in order of
/// their parts, each part's range of them (empty for a part not found). None when there is
/// none. Owners that differ between parts are none (unknown), so that every part is written again.
async fn found(
    client: &Client,
    api_resource: &ApiResource,
    namespace: &str,
) -> Result<Option<Written>, kube::Error> {
    let url = DynamicObject::url_path(api_resource, Some(namespace));
    let request = kube::core::Request::new(&url)
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=domicile"))
        .map_err(kube::Error::BuildRequest)?;
    let listed: Listed = client.request(request).await?;
    let mut parts: Vec<(usize, ListedReport)> = listed
        .items
        .into_iter()
        .filter_map(|report| {
            let part = report::report_part(report.metadata.name.as_deref()?)?;
            Some((part, report))
        })
        .collect();
    if parts.is_empty() {
        return Ok(None);
    }
    parts.sort_by_key(|(part, _)| *part);
    let owners_of =
        |report: &ListedReport| report.metadata.owner_references.clone().unwrap_or_default();
    let first = owners_of(&parts[0].1);
    let owners = parts
        .iter()
        .all(|(_, report)| owners_of(report) == first)
        .then_some(first);
    let mut hashes = Vec::new();
    for (part, report) in &parts {
        hashes.resize(*part, Vec::new());
        hashes.push(report.results.iter().map(report::written_hash).collect());
    }
    let kept = report::Kept::of(parts.iter().flat_map(|(_, report)| &report.results));
    Ok(Some(Written {
        kept,
        owners,
        parts: hashes,
    }))
}

/// The results of the pods and bound claims of `namespace` that no data centre's status names,
/// judged against the jurisdiction the namespace is labelled with (none without the label).
fn undeclared(
    namespace: &str,
    statuses: &[Option<std::borrow::Cow<'_, RegionalDataCenterStatus>>],
    ctx: &Context,
) -> Vec<ReportResult> {
    let caches = &ctx.caches;
    let Some(code) = caches
        .namespaces
        .get(&ObjectRef::new(namespace))
        .and_then(|ns| ns.labels().get(NAMESPACE_LABEL).cloned())
    else {
        return Vec::new();
    };
    let Ok(jurisdiction) = Jurisdiction::parse(&code) else {
        return Vec::new();
    };
    // By kind and name: a pod named as a volume is not covered by that volume.
    let mut covered: HashSet<(&str, &str)> = HashSet::new();
    for status in statuses.iter().flatten() {
        for placement in &status.placements {
            // A replica not placed yet covers no pod of its name.
            if placement.node.is_some() {
                covered.insert(("Pod", &placement.pod));
            }
            if let Some(volume) = &placement.volume {
                covered.insert(("PersistentVolume", volume));
            }
        }
        covered.extend(
            status
                .violations
                .iter()
                .map(|v| (v.kind.as_str(), v.name.as_str())),
        );
    }
    let in_namespace = |meta: &kube::api::ObjectMeta| meta.namespace.as_deref() == Some(namespace);
    let pods: Vec<Pod> = caches
        .pods
        .state()
        .iter()
        .filter(|p| in_namespace(&p.metadata))
        .filter(|p| !covered.contains(&("Pod", p.metadata.name.as_deref().unwrap_or_default())))
        .filter_map(|p| cached::full(p.as_ref()).ok())
        .collect();
    let claims: Vec<PersistentVolumeClaim> = caches
        .claims
        .state()
        .iter()
        .filter(|c| in_namespace(&c.metadata))
        .filter(|c| {
            c.spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .is_some_and(|volume| !covered.contains(&("PersistentVolume", volume)))
        })
        .filter_map(|c| cached::full(c.as_ref()).ok())
        .collect();
    let volumes: Vec<Arc<PersistentVolume>> = claims
        .iter()
        .filter_map(|c| c.spec.as_ref()?.volume_name.as_deref())
        .filter(|name| !covered.contains(&("PersistentVolume", *name)))
        .filter_map(|name| caches.volumes.get(&ObjectRef::new(name)))
        .filter_map(|pv| cached::full(pv.as_ref()).ok().map(Arc::new))
        .collect();
    let (nodes, classes) = (caches.nodes.state(), caches.classes.state());
    let observed = Observed {
        volumes: &volumes,
        nodes: &nodes,
        classes: &classes,
        ..Observed::default()
    };
    let found = crate::residency::audit_namespace(
        &jurisdiction,
        &ctx.settings.keys,
        &pods,
        &claims,
        &covered,
        &observed,
    );
    report::namespace_results(namespace, &code, &found)
}

/// When the keeper looks at the namespaces due again.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// When woken: nothing is due.
    Woken,
    /// Now: a namespace's time has come.
    Now,
    /// When woken or after this wait, when the first namespace's time comes.
    Within(Duration),
}

/// When a namespace due is rebuilt: once its verdicts have been still for [`STILL`], or
/// [`LAG_MAX`] after they first changed, and not while it is `held` back.
fn ready_at<T: Ord + Copy + std::ops::Add<Duration, Output = T>>(
    due: Due<T>,
    held: Option<T>,
) -> T {
    let at = (due.last + STILL).min(due.since + LAG_MAX);
    held.map_or(at, |until| at.max(until))
}

/// When to look again, given the namespaces `due` and those `held` back until a time.
fn next<T>(due: &HashMap<String, Due<T>>, held: &HashMap<String, T>, now: T) -> Next
where
    T: Ord + Copy + std::ops::Add<Duration, Output = T> + std::ops::Sub<Output = Duration>,
{
    let soonest = due
        .iter()
        .map(|(namespace, due)| ready_at(*due, held.get(namespace).copied()))
        .min();
    match soonest {
        None => Next::Woken,
        Some(at) if at <= now => Next::Now,
        Some(at) => Next::Within(at - now),
    }
}

/// Rebuilds the reports of the namespaces due when their time comes (see [`ready_at`]): a
/// namespace of 500 data centres has four reports of 512 KiB, each parsed, validated and stored
/// whole by the API server, and verdicts that change for minutes (a converge, nodes relabelled
/// one after another) would otherwise have them rewritten every second or two. After a write the
/// namespace is held back for a time in proportion to the bytes written ([`HOLD_RATE`]). A failed
/// write is logged and counted, and its namespace tried again after a wait that doubles up to
/// five minutes.
pub async fn keep(ctx: Arc<Context>, synced: Arc<tokio::sync::Notify>) {
    let Some(reports) = ctx.reports.as_ref() else {
        return;
    };
    // Nothing is rebuilt from half a cache. The namespaces' first events have marked each due.
    synced.notified().await;
    let mut sweep_retry = RETRY_FIRST;
    let mut sweep_at =
        (!reports.sweep(&ctx).await).then(|| tokio::time::Instant::now() + sweep_retry);
    // Namespaces held back, until when: after a write, or a failure.
    let mut held: HashMap<String, tokio::time::Instant> = HashMap::new();
    // The wait before the next try of each namespace whose write failed.
    let mut retries: HashMap<String, Duration> = HashMap::new();
    loop {
        let now = tokio::time::Instant::now();
        held.retain(|_, until| *until > now);
        let next = next(
            &reports
                .due
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            &held,
            now,
        );
        // A sweep that failed is tried again in its time.
        let next = match (next, sweep_at) {
            (next, None) | (next @ Next::Now, _) => next,
            (Next::Woken, Some(at)) => Next::Within(at.saturating_duration_since(now)),
            (Next::Within(wait), Some(at)) => {
                Next::Within(wait.min(at.saturating_duration_since(now)))
            }
        };
        match next {
            Next::Now => {}
            // Woken by a namespace newly due, or when the wait is over: the loop looks again.
            Next::Within(wait) => {
                let _ = tokio::time::timeout(wait, reports.wake.notified()).await;
            }
            Next::Woken => reports.wake.notified().await,
        }
        if sweep_at.is_some_and(|at| at <= tokio::time::Instant::now()) {
            sweep_retry = (sweep_retry * 2).min(RETRY_MAX);
            sweep_at =
                (!reports.sweep(&ctx).await).then(|| tokio::time::Instant::now() + sweep_retry);
        }
        for (namespace, due) in reports.take_ready(&held, tokio::time::Instant::now()) {
            match reports.try_refresh(&namespace, &ctx).await {
                Ok(wrote) => {
                    retries.remove(&namespace);
                    if let Some(hold) = wrote.hold() {
                        held.insert(namespace, tokio::time::Instant::now() + hold);
                    }
                }
                Err(err) => {
                    let retry = retries
                        .get(&namespace)
                        .map_or(RETRY_FIRST, |last| (*last * 2).min(RETRY_MAX));
                    retries.insert(namespace.clone(), retry);
                    ctx.writer.metrics().report_failed(reports.resource.kind);
                    tracing::warn!(
                        namespace,
                        kind = reports.resource.kind,
                        error = %err,
                        "cannot write the policy report; tried again in {}s",
                        retry.as_secs()
                    );
                    held.insert(namespace.clone(), tokio::time::Instant::now() + retry);
                    reports.due_again(namespace, due);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_waits_for_its_verdicts_to_be_still_for_at_most_a_minute() {
        let now = std::time::Instant::now();
        let secs = Duration::from_secs;
        let due = |entries: &[(&str, u64, u64)]| -> HashMap<String, Due<std::time::Instant>> {
            entries
                .iter()
                .map(|(name, since, last)| {
                    let due = Due {
                        since: now + secs(*since),
                        last: now + secs(*last),
                    };
                    ((*name).to_owned(), due)
                })
                .collect()
        };
        let mut held: HashMap<String, std::time::Instant> = HashMap::new();
        assert_eq!(next(&due(&[]), &held, now), Next::Woken, "nothing due");
        // Marked once: rebuilt when still for a second.
        assert_eq!(next(&due(&[("a", 0, 0)]), &held, now), Next::Within(STILL));
        assert_eq!(next(&due(&[("a", 0, 0)]), &held, now + STILL), Next::Now);
        // Marked again and again: each mark puts it off, up to a minute after the first.
        assert_eq!(
            next(&due(&[("a", 0, 30)]), &held, now + secs(30)),
            Next::Within(STILL)
        );
        assert_eq!(
            next(&due(&[("a", 0, 59)]), &held, now + secs(59)),
            Next::Within(secs(1))
        );
        assert_eq!(
            next(&due(&[("a", 0, 60)]), &held, now + secs(60)),
            Next::Now
        );
        // The first namespace whose time comes sets the wait.
        assert_eq!(
            next(&due(&[("a", 0, 5), ("b", 0, 0)]), &held, now),
            Next::Within(STILL)
        );
        // Held back after a write: not before the hold is over, however still.
        held.insert("a".to_owned(), now + secs(16));
        assert_eq!(
            next(&due(&[("a", 0, 0)]), &held, now + secs(2)),
            Next::Within(secs(14))
        );
        assert_eq!(next(&due(&[("a", 0, 0)]), &held, now + secs(16)), Next::Now);
        // One due and not held is rebuilt in its time, whatever else is held.
        assert_eq!(
            next(&due(&[("a", 0, 0), ("c", 0, 0)]), &held, now + STILL),
            Next::Now
        );
        // Held but not due: nothing to look at.
        assert_eq!(next(&due(&[]), &held, now), Next::Woken);
    }

    #[tokio::test(start_paused = true)]
    async fn a_verdict_change_puts_a_rebuild_off_and_a_mere_touch_does_not() {
        let format = Format::Wgpolicy.resource().expect("a report kind");
        let gvk = GroupVersionKind::gvk(format.group, format.version, format.kind);
        let reports = Reports {
            resource: format,
            api_resource: ApiResource::from_gvk_with_plural(&gvk, format.plural),
            last: tokio::sync::Mutex::default(),
            due: std::sync::Mutex::default(),
            seen: std::sync::Mutex::default(),
            left: std::sync::Mutex::default(),
            wake: tokio::sync::Notify::new(),
        };
        let due = |namespace: &str| reports.due.lock().expect("due")[namespace];
        let start = tokio::time::Instant::now();
        reports.touch("ns");
        assert_eq!(
            due("ns"),
            Due {
                since: start,
                last: start
            }
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        // A pod annotated again and again leaves the rebuild where it was.
        reports.touch("ns");
        assert_eq!(due("ns").last, start);
        // A status that changed puts it off, to take in the others that follow.
        reports.refresh("ns");
        let later = start + Duration::from_millis(500);
        assert_eq!(
            due("ns"),
            Due {
                since: start,
                last: later
            }
        );
        // Taken for a rebuild that fails, while marked again: due since the first mark.
        let held = HashMap::new();
        tokio::time::advance(STILL).await;
        let taken = reports.take_ready(&held, tokio::time::Instant::now());
        assert_eq!(
            taken,
            vec![(
                "ns".to_owned(),
                Due {
                    since: start,
                    last: later
                }
            )]
        );
        reports.refresh("ns");
        let (namespace, was) = taken.into_iter().next().expect("taken");
        reports.due_again(namespace, was);
        let now = tokio::time::Instant::now();
        assert_eq!(
            due("ns"),
            Due {
                since: start,
                last: now
            }
        );
    }

    #[test]
    fn a_write_holds_its_namespace_back_in_proportion_to_its_bytes() {
        assert_eq!(Wrote::NOTHING.hold(), None);
        let wrote = |bytes| Wrote { any: true, bytes };
        // A small write, or a delete, holds for the still time.
        assert_eq!(wrote(0).hold(), Some(STILL));
        assert_eq!(wrote(4096).hold(), Some(STILL));
        // The four parts of a namespace of 500 data centres: 16 s.
        assert_eq!(wrote(2 * 1024 * 1024).hold(), Some(Duration::from_secs(16)));
        // However large, no longer than a report may lag.
        assert_eq!(wrote(64 * 1024 * 1024).hold(), Some(LAG_MAX));
    }
}
