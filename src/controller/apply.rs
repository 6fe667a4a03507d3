//! Every write the operator makes goes through here: server-side apply under one field manager,
//! sent only when the live object in the watch cache does not hold what the operator declares,
//! and counted.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Api, DeleteParams, EvictParams, Patch, PatchParams};
use kube::runtime::events::{Event, Recorder};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::diff::{Difference, changed_by, first_difference, whole_restore};
use super::events::StatusWrites;
use kube::runtime::reflector::ObjectRef;

use crate::api::{RegionalDataCenter, RegionalDataCenterStatus};
use crate::resources::{APPLIED_HASH_ANNOTATION, FIELD_MANAGER};
use crate::telemetry::Metrics;

/// A short, stable digest of the object the operator wants.
pub fn desired_hash<K: Serialize>(desired: &K) -> Result<String, serde_json::Error> {
    let digest = Sha256::digest(serde_json::to_vec(desired)?);
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// Wraps a failed request about `object` with the verb, the kind and the object's name.
fn write_error<K>(
    verb: &'static str,
    object: &K,
) -> impl FnOnce(kube::Error) -> super::Error + use<K>
where
    K: Resource + k8s_openapi::Resource,
{
    let name = match object.namespace() {
        Some(namespace) => format!("{namespace}/{}", object.name_any()),
        None => object.name_any(),
    };
    move |source| super::Error::Write {
        verb,
        kind: <K as k8s_openapi::Resource>::KIND,
        object: name,
        source,
    }
}

/// What an apply did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The live object already holds what is declared: nothing was sent.
    Unchanged,
    /// The object did not exist and was created.
    Created,
    /// The declaration changed (the resource's spec or the operator) and the object follows it.
    Updated,
    /// An object of the child's name exists that the operator did not make for this data
    /// centre (`holder` says whose it looks to be); it was left alone.
    Taken { holder: String },
    /// Someone else changed a declared field, and it was set back.
    Restored {
        field: String,
        manager: Option<String>,
        /// Whether the API server's answer holds the declaration again (it may not, when another
        /// manager owns list items or fields the operator cannot take back by applying).
        complete: bool,
    },
}

/// The labels by which an object without an owner (a volume, a class) is known as the operator's.
const MADE_BY_LABELS: [&str; 3] = [
    "app.kubernetes.io/managed-by",
    crate::resources::RDC_LABEL,
    crate::resources::RDC_NAMESPACE_LABEL,
];

/// Whether `live` is the object the operator made for the declaration `desired`: a namespaced
/// child by its controller (the data centre, by UID), anything without an owner by the labels the
/// operator gives it. The operator never writes into an object that is not: it would merge its
/// fields into a stranger's and take the stranger's for its own.
pub fn made_for(desired: &serde_json::Value, live: &serde_json::Value) -> bool {
    let controller = |object: &serde_json::Value| {
        object
            .pointer("/metadata/ownerReferences")?
            .as_array()?
            .iter()
            .find(|r| r["controller"] == true)
            .and_then(|r| r["uid"].as_str())
            .map(str::to_owned)
    };
    if let Some(owner) = controller(desired) {
        return controller(live).is_some_and(|uid| uid == owner);
    }
    let label = |object: &serde_json::Value, key: &str| {
        object
            .pointer("/metadata/labels")
            .and_then(|labels| labels.get(key))
            .cloned()
    };
    MADE_BY_LABELS
        .iter()
        .filter(|key| label(desired, key).is_some())
        .all(|key| label(desired, key) == label(live, key))
}

/// Whose a live object looks to be, for a message.
fn holder(live: &serde_json::Value) -> String {
    let controller = live
        .pointer("/metadata/ownerReferences")
        .and_then(serde_json::Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true));
    match controller {
        Some(owner) => format!(
            "controlled by {} {} (UID {})",
            owner["kind"].as_str().unwrap_or_default(),
            owner["name"].as_str().unwrap_or_default(),
            owner["uid"].as_str().unwrap_or_default()
        ),
        None => {
            // The first manager of the object itself, not of its status.
            let manager = live
                .pointer("/metadata/managedFields")
                .and_then(serde_json::Value::as_array)
                .and_then(|fields| fields.iter().find(|f| f.get("subresource").is_none()))
                .and_then(|f| f["manager"].as_str());
            match manager {
                Some(manager) => format!("made by field manager {manager:?}, not by domicile"),
                None => "not made by domicile".to_owned(),
            }
        }
    }
}

/// What an apply decides from the declared object, the live one and the operator's last apply.
/// What became of an eviction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Eviction {
    Evicted,
    /// The pod was already gone.
    Gone,
    /// A disruption budget refuses it for now (429), in the API server's words, which name the
    /// budget.
    Refused(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    Skip,
    Create,
    Write {
        difference: Difference,
        /// The declaration is the one last applied: someone else changed the object.
        tampered: bool,
    },
}

/// The last apply of an object: the declaration and the resourceVersion it produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastApply {
    pub hash: String,
    pub resource_version: String,
}

/// Decides whether to write. A write is skipped when the live object holds every declared field;
/// and also when it still shows the operator's own last apply (same declaration, and the cache has
/// not yet caught up with that write, or the API server keeps a value that cannot converge, such
/// as a normalised quantity), so a difference that applying cannot remove is no write loop.
pub fn plan(
    desired: &serde_json::Value,
    hash: &str,
    live: Option<&serde_json::Value>,
    last: Option<&LastApply>,
) -> Plan {
    let Some(live) = live else {
        return Plan::Create;
    };
    let Some(difference) = first_difference(desired, live) else {
        return Plan::Skip;
    };
    let live_version = live
        .pointer("/metadata/resourceVersion")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if last.is_some_and(|last| last.settles(hash, live_version)) {
        return Plan::Skip;
    }
    let tampered = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(APPLIED_HASH_ANNOTATION))
        .and_then(serde_json::Value::as_str)
        == Some(hash);
    Plan::Write {
        difference,
        tampered,
    }
}

impl LastApply {
    /// Whether a live object at `live_version` needs no write for the declaration `hash`: the
    /// same declaration was applied (or found held) at that version, or at a later one the cache
    /// has not caught up with.
    pub fn settles(&self, hash: &str, live_version: &str) -> bool {
        self.hash == hash
            && (live_version == self.resource_version
                || older(live_version, &self.resource_version))
    }
}

/// Whether resourceVersion `a` comes before `b`. They are opaque to clients; the API server's are
/// etcd revisions, so an unparsable one is never called older (and the object is compared again).
fn older(a: &str, b: &str) -> bool {
    matches!((a.parse::<u64>(), b.parse::<u64>()), (Ok(a), Ok(b)) if a < b)
}

#[derive(Clone)]
pub struct Writer {
    metrics: Arc<Metrics>,
    last_applies: Arc<Mutex<HashMap<String, LastApply>>>,
    last_statuses: Arc<Mutex<HashMap<ObjectRef<RegionalDataCenter>, WrittenStatus>>>,
    status_writes: StatusWrites,
}

impl Writer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            last_applies: Arc::default(),
            last_statuses: Arc::default(),
            status_writes: StatusWrites::default(),
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The status writes in flight, which Events wait for.
    pub fn status_writes(&self) -> &StatusWrites {
        &self.status_writes
    }

    fn key<K>(object: &K) -> String
    where
        K: Resource + k8s_openapi::Resource,
    {
        format!(
            "{}/{}/{}",
            <K as k8s_openapi::Resource>::KIND,
            object.namespace().unwrap_or_default(),
            object.name_any()
        )
    }

    /// Forgets the last applies of objects that are gone, so the memory stays bounded.
    pub fn forget<K>(&self, namespace: &str, name: &str)
    where
        K: k8s_openapi::Resource,
    {
        let key = format!("{}/{namespace}/{name}", K::KIND);
        self.last_applies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }

    /// Keeps that the declaration `hash` is held by the object `key` at `resource_version`.
    fn remember(&self, key: String, hash: String, resource_version: String) {
        self.last_applies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                key,
                LastApply {
                    hash,
                    resource_version,
                },
            );
    }

    /// Applies `desired` unless `live` (the object in the watch cache, which may keep only the
    /// fields the operator declares and reads) already holds it.
    pub async fn apply<K, L>(
        &self,
        api: &Api<K>,
        mut desired: K,
        live: Option<&L>,
    ) -> Result<Applied, super::Error>
    where
        K: Resource + k8s_openapi::Resource + Clone + Debug + Serialize + DeserializeOwned,
        L: Resource + Serialize,
    {
        let hash = desired_hash(&desired)?;
        desired
            .annotations_mut()
            .insert(APPLIED_HASH_ANNOTATION.to_owned(), hash.clone());
        let key = Self::key(&desired);
        let live_version = live.and_then(|live| live.meta().resource_version.clone());
        let last = self
            .last_applies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        // The same declaration against the same live object: decided before, nothing to compare.
        if let (Some(last), Some(version)) = (&last, &live_version)
            && last.settles(&hash, version)
        {
            return Ok(Applied::Unchanged);
        }
        let desired_json = serde_json::to_value(&desired)?;
        let live_json = live.map(serde_json::to_value).transpose()?;
        if let Some(live) = live_json
            .as_ref()
            .filter(|live| !made_for(&desired_json, live))
        {
            return Ok(Applied::Taken {
                holder: holder(live),
            });
        }
        let plan = plan(&desired_json, &hash, live_json.as_ref(), last.as_ref());
        if plan == Plan::Skip {
            // Remembered, so the next reconcile with nothing changed compares nothing; never in
            // place of a later apply of the same declaration the cache has not shown yet.
            let later_known = |version: &str| {
                last.as_ref()
                    .is_some_and(|l| l.hash == hash && older(version, &l.resource_version))
            };
            if let Some(version) = live_version.filter(|v| !later_known(v)) {
                self.remember(key, hash, version);
            }
            return Ok(Applied::Unchanged);
        }
        let name = desired.name_any();
        // The caches keep no managedFields (they would double the memory of every child); who
        // changed a field is read from the API server, once per restore, before it is set back.
        let manager = match &plan {
            Plan::Write {
                difference,
                tampered: true,
            } => match api.get_opt(&name).await {
                Ok(Some(live)) => serde_json::to_value(&live)
                    .ok()
                    .and_then(|live| changed_by(&live, difference, FIELD_MANAGER)),
                _ => None,
            },
            _ => None,
        };
        // An object the caches do not know may still exist (the caches watch only labelled
        // objects): an apply would merge the declaration into a stranger's object of the same
        // name, so it is looked up first (a create is rare; a stranger's object is left alone).
        if plan == Plan::Create
            && let Some(existing) = api
                .get_opt(&name)
                .await
                .map_err(write_error("get", &desired))?
        {
            let existing = serde_json::to_value(&existing)?;
            if !made_for(&desired_json, &existing) {
                return Ok(Applied::Taken {
                    holder: holder(&existing),
                });
            }
        }
        // What an apply would leave of other managers' fields where the declaration is whole (a
        // fence's spec, a pod template's affinity, security context, volumes and containers) is
        // taken out first by a merge patch: the apply alone would keep them, and the operator's
        // own admission policy refuses a template that holds them.
        if let Some(patch) = live_json
            .as_ref()
            .and_then(|live| whole_restore(&desired_json, live))
        {
            self.metrics
                .write("patch", <K as k8s_openapi::Resource>::KIND);
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_owned()),
                ..PatchParams::default()
            };
            api.patch(&name, &params, &Patch::Merge(&patch))
                .await
                .map_err(write_error("patch", &desired))?;
        }
        self.metrics
            .write("apply", <K as k8s_openapi::Resource>::KIND);
        let written = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&desired),
            )
            .await
            .map_err(write_error("apply", &desired))?;
        let written_json = serde_json::to_value(&written)?;
        let complete = first_difference(&desired_json, &written_json).is_none();
        self.remember(key, hash, written.resource_version().unwrap_or_default());
        let kind = <K as k8s_openapi::Resource>::KIND;
        let applied = match plan {
            Plan::Skip => Applied::Unchanged,
            Plan::Create => Applied::Created,
            Plan::Write {
                difference,
                tampered: true,
            } => Applied::Restored {
                manager,
                field: difference.to_string(),
                complete,
            },
            Plan::Write { .. } => Applied::Updated,
        };
        tracing::info!(%kind, %name, outcome = ?applied, "applied");
        Ok(applied)
    }

    /// Deletes `live`, an object from a cache or a list, if there is one. Returns whether a write
    /// was sent.
    pub async fn delete<K, L>(&self, api: &Api<K>, live: Option<&L>) -> Result<bool, super::Error>
    where
        K: Resource + k8s_openapi::Resource + Clone + Debug + DeserializeOwned,
        L: Resource + k8s_openapi::Resource,
    {
        let Some(live) = live else {
            return Ok(false);
        };
        let name = live.name_any();
        self.metrics
            .write("delete", <K as k8s_openapi::Resource>::KIND);
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => return Err(write_error("delete", live)(err)),
        }
        self.forget::<K>(&live.namespace().unwrap_or_default(), &name);
        tracing::info!(kind = <K as k8s_openapi::Resource>::KIND, %name, "deleted");
        Ok(true)
    }

    /// A merge patch, for the few fields another controller owns (a volume's reclaim policy).
    pub async fn merge_patch<K>(
        &self,
        api: &Api<K>,
        name: &str,
        patch: serde_json::Value,
    ) -> Result<(), super::Error>
    where
        K: Resource + k8s_openapi::Resource + Clone + Debug + DeserializeOwned,
    {
        self.metrics
            .write("patch", <K as k8s_openapi::Resource>::KIND);
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|source| super::Error::Write {
                verb: "patch",
                kind: <K as k8s_openapi::Resource>::KIND,
                object: name.to_owned(),
                source,
            })?;
        Ok(())
    }

    /// Sets the finalizers of `rdc`: a merge patch guarded by its resourceVersion, so a
    /// concurrent change is never overwritten.
    pub async fn set_finalizers<S: Serialize>(
        &self,
        api: &Api<RegionalDataCenter>,
        rdc: &RegionalDataCenter,
        finalizers: &[S],
    ) -> Result<(), super::Error> {
        let patch = serde_json::json!({
            "metadata": {"finalizers": finalizers, "resourceVersion": rdc.resource_version()}
        });
        self.metrics.write("patch", "RegionalDataCenter");
        api.patch(
            &rdc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .map_err(|source| super::Error::Write {
            verb: "set the finalizers of",
            kind: "RegionalDataCenter",
            object: ObjectRef::from(rdc).to_string(),
            source,
        })?;
        Ok(())
    }

    /// Asks the Eviction API to evict `pod`, so that disruption budgets hold.
    pub async fn evict(&self, api: &Api<Pod>, pod: &Pod) -> Result<Eviction, super::Error> {
        self.metrics.write("create", "Eviction");
        match api.evict(&pod.name_any(), &EvictParams::default()).await {
            Ok(_) => Ok(Eviction::Evicted),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(Eviction::Gone),
            Err(kube::Error::Api(status)) if status.code == 429 => {
                let causes: Vec<&str> = status
                    .details
                    .iter()
                    .flat_map(|details| details.causes.iter())
                    .map(|cause| cause.message.as_str())
                    .filter(|message| !message.is_empty())
                    .collect();
                Ok(Eviction::Refused(if causes.is_empty() {
                    status.message.clone()
                } else {
                    causes.join("; ")
                }))
            }
            Err(source) => Err(super::Error::Write {
                verb: "evict",
                kind: "Pod",
                object: ObjectRef::from(pod).to_string(),
                source,
            }),
        }
    }

    /// Publishes an Event about `regarding` (the recorder folds repeats into one Event).
    pub async fn publish(
        &self,
        recorder: &Recorder,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        self.metrics.write("create", "Event");
        recorder.publish(event, regarding).await
    }

    /// Applies the status subresource of a RegionalDataCenter, and remembers what it wrote.
    pub async fn apply_status(
        &self,
        api: &Api<RegionalDataCenter>,
        name: &str,
        status: &RegionalDataCenterStatus,
    ) -> Result<(), super::Error> {
        let patch = serde_json::json!({
            "apiVersion": "domicile.dev/v1alpha1",
            "kind": "RegionalDataCenter",
            "status": status,
        });
        self.metrics.write("apply", "RegionalDataCenterStatus");
        let in_flight = self.status_writes.begin();
        let written = api
            .patch_status(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(|source| super::Error::Write {
                verb: "apply status of",
                kind: "RegionalDataCenter",
                object: name.to_owned(),
                source,
            })?;
        drop(in_flight);
        self.last_statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                ObjectRef::from(&written),
                WrittenStatus {
                    status: written.status.clone().unwrap_or_default(),
                    resource_version: written.resource_version().unwrap_or_default(),
                    progress_held_since: None,
                },
            );
        Ok(())
    }

    /// The status the API server holds for `rdc` as far as the operator knows: the cached one,
    /// unless the operator's own last write is newer than the cache.
    pub fn current_status(&self, rdc: &RegionalDataCenter) -> Option<RegionalDataCenterStatus> {
        self.with_status(rdc, |status| status.cloned())
    }

    /// The status [`Self::current_status`] returns, borrowed from `rdc` where the cache holds the
    /// newest (as it does but for a moment after each write): a report's rebuild asks this of
    /// every data centre of its namespace.
    pub fn newest<'a>(
        &self,
        rdc: &'a RegionalDataCenter,
    ) -> Option<std::borrow::Cow<'a, RegionalDataCenterStatus>> {
        self.with_status(rdc, |newest| {
            let newest = newest?;
            Some(match rdc.status.as_ref() {
                Some(cached) if std::ptr::eq(cached, newest) => std::borrow::Cow::Borrowed(cached),
                _ => std::borrow::Cow::Owned(newest.clone()),
            })
        })
    }

    /// `read` of the status [`Self::current_status`] returns, without a copy of it: routing
    /// asks this of hundreds of data centres at every pod or node event.
    pub fn with_status<R>(
        &self,
        rdc: &RegionalDataCenter,
        read: impl FnOnce(Option<&RegionalDataCenterStatus>) -> R,
    ) -> R {
        let statuses = self.last_statuses.lock().unwrap_or_else(|p| p.into_inner());
        read(newest_status(rdc, statuses.get(&ObjectRef::from(rdc))))
    }

    /// Whether `rdc`, as a watch delivers it, is the echo of the operator's own last status write:
    /// such an event brings nothing to reconcile. A status anyone else wrote is not.
    pub fn is_own_status_echo(&self, rdc: &RegionalDataCenter) -> bool {
        let statuses = self.last_statuses.lock().unwrap_or_else(|p| p.into_inner());
        statuses
            .get(&ObjectRef::from(rdc))
            .is_some_and(|written| rdc.resource_version() == Some(written.resource_version.clone()))
    }

    /// How long a status that only reports progress is held back: until `interval` after the
    /// first progress held since this process last wrote the status of `rdc`, so that progress
    /// comes in one write and none when `Ready` follows within the interval. None: write now
    /// (also when this process has not written the status yet).
    pub fn progress_wait(
        &self,
        rdc: &RegionalDataCenter,
        interval: std::time::Duration,
    ) -> Option<std::time::Duration> {
        let mut statuses = self.last_statuses.lock().unwrap_or_else(|p| p.into_inner());
        let written = statuses.get_mut(&ObjectRef::from(rdc))?;
        let now = std::time::Instant::now();
        let held = *written.progress_held_since.get_or_insert(now);
        (held + interval)
            .checked_duration_since(now)
            .filter(|wait| !wait.is_zero())
    }

    /// Forgets the status written for a data centre that is gone.
    pub fn forget_status(&self, rdc: &RegionalDataCenter) {
        self.last_statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&ObjectRef::from(rdc));
    }
}

/// A status the operator wrote, and the resourceVersion the API server gave it.
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenStatus {
    pub status: RegionalDataCenterStatus,
    pub resource_version: String,
    /// Since when a status that reports progress only has been held back, if one has.
    pub progress_held_since: Option<std::time::Instant>,
}

/// Whether to write a status is decided against the newest status known: the cache can lag
/// behind the operator's own last write, and a write skipped because the cache still shows what
/// the new status says would leave the older verdict in place (a stale Compliant).
pub fn newest_status<'a>(
    cached: &'a RegionalDataCenter,
    written: Option<&'a WrittenStatus>,
) -> Option<&'a RegionalDataCenterStatus> {
    match written {
        Some(written)
            if older(
                cached.resource_version().as_deref().unwrap_or_default(),
                &written.resource_version,
            ) =>
        {
            Some(&written.status)
        }
        _ => cached.status.as_ref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_operator_made_for_this_data_centre_is_its_own() {
        let desired = serde_json::json!({"metadata": {"name": "vault", "ownerReferences": [
            {"kind": "RegionalDataCenter", "name": "vault", "uid": "u-new", "controller": true}]}});
        let made = desired.clone();
        assert!(made_for(&desired, &made));
        // A stranger's object of the name, and an earlier data centre's of the same name.
        let stranger = serde_json::json!({"metadata": {"name": "vault", "managedFields": [
            {"manager": "kubectl-create", "operation": "Update"}]}});
        assert!(!made_for(&desired, &stranger));
        assert_eq!(
            holder(&stranger),
            "made by field manager \"kubectl-create\", not by domicile"
        );
        let earlier = serde_json::json!({"metadata": {"ownerReferences": [
            {"kind": "RegionalDataCenter", "name": "vault", "uid": "u-old", "controller": true}]}});
        assert!(!made_for(&desired, &earlier));
        // Without an owner (a volume), by the operator's labels.
        let volume = serde_json::json!({"metadata": {"labels": {
            "app.kubernetes.io/managed-by": "domicile", "domicile.dev/regional-data-center": "vault",
            "domicile.dev/namespace": "fleet-cn", "domicile.dev/uid": "u-new"}}});
        let mut older = volume.clone();
        older["metadata"]["labels"]
            .as_object_mut()
            .expect("labels")
            .remove("domicile.dev/uid");
        assert!(
            made_for(&volume, &older),
            "a volume from before UIDs were labelled"
        );
        let admins = serde_json::json!({"metadata": {"labels": {"team": "storage"}}});
        assert!(!made_for(&volume, &admins));
    }
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn the_hash_is_stable_and_follows_the_content() {
        let mut map = ConfigMap::default();
        map.metadata.name = Some("a".to_owned());
        let first = desired_hash(&map).expect("serializes");
        assert_eq!(first, desired_hash(&map.clone()).expect("serializes"));
        assert_eq!(first.len(), 16);
        map.metadata.name = Some("b".to_owned());
        assert_ne!(first, desired_hash(&map).expect("serializes"));
    }

    fn object(version: &str, hash: Option<&str>, replicas: i64) -> serde_json::Value {
        let mut live = serde_json::json!({
            "metadata": {"name": "a", "resourceVersion": version},
            "spec": {"replicas": replicas, "serviceName": "a"}
        });
        if let Some(hash) = hash {
            live["metadata"]["annotations"] = serde_json::json!({APPLIED_HASH_ANNOTATION: hash});
        }
        live
    }

    fn declared(replicas: i64) -> serde_json::Value {
        serde_json::json!({"metadata": {"name": "a"}, "spec": {"replicas": replicas}})
    }

    #[test]
    fn a_missing_object_is_created_and_a_matching_one_left_alone() {
        assert_eq!(plan(&declared(3), "h", None, None), Plan::Create);
        assert_eq!(
            plan(&declared(3), "h", Some(&object("5", Some("h"), 3)), None),
            Plan::Skip
        );
    }

    #[test]
    fn a_change_by_someone_else_is_written_back_even_under_our_own_annotation() {
        let live = object("9", Some("h"), 5);
        let last = LastApply {
            hash: "h".to_owned(),
            resource_version: "5".to_owned(),
        };
        match plan(&declared(3), "h", Some(&live), Some(&last)) {
            Plan::Write {
                difference,
                tampered,
            } => {
                assert_eq!(difference.to_string(), "spec.replicas");
                assert!(
                    tampered,
                    "the declaration did not change, so someone else did"
                );
            }
            other => panic!("expected a write, got {other:?}"),
        }
        // After a restart the operator remembers nothing, and still writes back.
        assert!(matches!(
            plan(&declared(3), "h", Some(&live), None),
            Plan::Write { tampered: true, .. }
        ));
    }

    #[test]
    fn a_new_declaration_is_an_update_not_a_restore() {
        let live = object("9", Some("old"), 3);
        assert!(matches!(
            plan(&declared(4), "new", Some(&live), None),
            Plan::Write {
                tampered: false,
                ..
            }
        ));
    }

    #[test]
    fn the_operators_own_last_write_is_not_written_again() {
        let last = LastApply {
            hash: "h".to_owned(),
            resource_version: "9".to_owned(),
        };
        // The API server kept a value applying cannot change: no write loop.
        let kept = object("9", Some("h"), 5);
        assert_eq!(
            plan(&declared(3), "h", Some(&kept), Some(&last)),
            Plan::Skip
        );
        // The cache has not yet seen the write.
        let behind = object("8", Some("h"), 5);
        assert_eq!(
            plan(&declared(3), "h", Some(&behind), Some(&last)),
            Plan::Skip
        );
        // A change after it is written back.
        let changed = object("10", Some("h"), 5);
        assert!(matches!(
            plan(&declared(3), "h", Some(&changed), Some(&last)),
            Plan::Write { .. }
        ));
        // So is a new declaration.
        assert!(matches!(
            plan(&declared(3), "other", Some(&kept), Some(&last)),
            Plan::Write { .. }
        ));
    }

    #[test]
    fn progress_is_held_from_the_first_held_change_until_the_next_write() {
        use std::time::Duration;
        let writer = Writer::new(Arc::default());
        let rdc = crate::resources::fixtures::rdc("CN", 3);
        let interval = Duration::from_secs(5);
        assert_eq!(
            writer.progress_wait(&rdc, interval),
            None,
            "nothing written by this process yet: written at once"
        );
        let written = |held: Option<Duration>| WrittenStatus {
            status: RegionalDataCenterStatus::default(),
            resource_version: "1".to_owned(),
            progress_held_since: held.map(|ago| std::time::Instant::now() - ago),
        };
        let remember = |status| {
            writer
                .last_statuses
                .lock()
                .expect("not poisoned")
                .insert(ObjectRef::from(&rdc), status);
        };
        remember(written(None));
        let first = writer.progress_wait(&rdc, interval).expect("held back");
        assert!(
            first > Duration::from_secs(4) && first <= interval,
            "{first:?}"
        );
        // The next change of progress waits for the same deadline, not a new interval.
        remember(written(Some(Duration::from_secs(3))));
        let later = writer.progress_wait(&rdc, interval).expect("still held");
        assert!(later <= Duration::from_secs(2), "{later:?}");
        remember(written(Some(Duration::from_secs(6))));
        assert_eq!(writer.progress_wait(&rdc, interval), None, "due: written");
    }

    #[test]
    fn a_status_write_is_judged_against_the_operators_own_newer_write() {
        let status = |residency| RegionalDataCenterStatus {
            residency: Some(residency),
            ..Default::default()
        };
        let mut cached = crate::resources::fixtures::rdc("CN", 1);
        cached.metadata.resource_version = Some("10".to_owned());
        cached.status = Some(status(crate::api::Residency::Compliant));
        let written = WrittenStatus {
            status: status(crate::api::Residency::Violated),
            resource_version: "11".to_owned(),
            progress_held_since: None,
        };
        // The cache has not seen the write yet: the written Violated is what the server holds.
        assert_eq!(
            newest_status(&cached, Some(&written)),
            Some(&written.status)
        );
        // Once the cache caught up (or passed it), the cache is the truth.
        cached.metadata.resource_version = Some("11".to_owned());
        assert_eq!(
            newest_status(&cached, Some(&written)),
            cached.status.as_ref()
        );
        cached.metadata.resource_version = Some("12".to_owned());
        assert_eq!(
            newest_status(&cached, Some(&written)),
            cached.status.as_ref()
        );
        assert_eq!(newest_status(&cached, None), cached.status.as_ref());
    }

    #[test]
    fn the_newest_status_is_borrowed_from_the_cache_once_it_holds_the_write() {
        let writer = Writer::new(Arc::default());
        let mut cached = crate::resources::fixtures::rdc("CN", 1);
        cached.metadata.resource_version = Some("10".to_owned());
        cached.status = Some(RegionalDataCenterStatus {
            residency: Some(crate::api::Residency::Compliant),
            ..Default::default()
        });
        let violated = RegionalDataCenterStatus {
            residency: Some(crate::api::Residency::Violated),
            ..Default::default()
        };
        writer.last_statuses.lock().expect("not poisoned").insert(
            ObjectRef::from(&cached),
            WrittenStatus {
                status: violated.clone(),
                resource_version: "11".to_owned(),
                progress_held_since: None,
            },
        );
        // The cache lags: the written status is the newest, a copy of it.
        assert_eq!(writer.current_status(&cached), Some(violated.clone()));
        match writer.newest(&cached) {
            Some(std::borrow::Cow::Owned(status)) => assert_eq!(status, violated),
            other => panic!("{other:?}"),
        }
        // The cache caught up: its status is read in place.
        cached.metadata.resource_version = Some("11".to_owned());
        cached.status = Some(violated.clone());
        assert!(matches!(
            writer.newest(&cached),
            Some(std::borrow::Cow::Borrowed(_))
        ));
        assert_eq!(
            writer.with_status(&cached, |status| status.and_then(|s| s.residency)),
            Some(crate::api::Residency::Violated)
        );
    }
}
