//! The objects the caches hold by the thousand (pods, claims, volumes), in types of the cache's
//! own that keep only the fields the operator reads: the rest of an object is skipped while it is
//! read off the wire and never takes memory (a k8s-openapi `Pod` takes 2.4 KB and a
//! `PersistentVolume` 3.5 KB before the first string of either). The children the operator
//! declares whole keep their spec as JSON text.
//!
//! A reconcile turns the few objects of its own data centre back into the Kubernetes types, with
//! the kept fields, so the audit reads the same types as `domicile audit` does. A field missing
//! from an object is `None`, as in the Kubernetes types.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use k8s_openapi::api::core::v1::{
    LocalVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod, PodCondition,
    VolumeNodeAffinity,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Makes `$cached` a resource of the same API, kind and scope as `$full`, so that it can be
/// listed and watched, and keyed in a cache, like `$full`.
macro_rules! resource_like {
    ([$($generics:tt)*] $cached:ty, $full:ty) => {
        impl<$($generics)*> k8s_openapi::Resource for $cached {
            const API_VERSION: &'static str = <$full as k8s_openapi::Resource>::API_VERSION;
            const GROUP: &'static str = <$full as k8s_openapi::Resource>::GROUP;
            const KIND: &'static str = <$full as k8s_openapi::Resource>::KIND;
            const VERSION: &'static str = <$full as k8s_openapi::Resource>::VERSION;
            const URL_PATH_SEGMENT: &'static str =
                <$full as k8s_openapi::Resource>::URL_PATH_SEGMENT;
            type Scope = <$full as k8s_openapi::Resource>::Scope;
        }

        impl<$($generics)*> k8s_openapi::Metadata for $cached {
            type Ty = ObjectMeta;

            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
    ($cached:ty, $full:ty) => {
        resource_like!([] $cached, $full);
    };
}

/// An object as a cache keeps it: the metadata, and what the operator reads of spec and status.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Kept<Spec, State> {
    pub metadata: ObjectMeta,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<Spec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<State>,
}

/// The Kubernetes type of a kept object: the kept fields, and the others unset.
pub fn full<C: Serialize, K: DeserializeOwned>(kept: &C) -> Result<K, serde_json::Error> {
    serde_json::to_value(kept).and_then(serde_json::from_value)
}

/// A pod: where it runs, whether it could be scheduled, and which claims it mounts.
pub type CachedPod = Kept<PodPlacement, PodState>;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodPlacement {
    pub node_name: Option<String>,
    /// Only volumes of claims, see `trim_pod`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<ClaimVolume>>,
}

/// A pod's volume, of which only a claim is read.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimVolume {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim: Option<ClaimSource>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSource {
    pub claim_name: String,
}

impl CachedPod {
    /// The names of the claims the pod mounts.
    pub fn claims(&self) -> impl Iterator<Item = &str> {
        self.spec
            .iter()
            .flat_map(|spec| spec.volumes.iter().flatten())
            .filter_map(|v| Some(v.persistent_volume_claim.as_ref()?.claim_name.as_str()))
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct PodState {
    /// Only `PodScheduled` is kept (see `trim_pod`).
    pub conditions: Option<Vec<PodCondition>>,
}

resource_like!(CachedPod, Pod);

/// Drops what the operator never reads of a pod: metadata it does not read (but for its
/// controller and its labels, which `spec.members` selects by), volumes but those of claims, and every condition but `PodScheduled` (which
/// says why a pod cannot be placed).
pub fn trim_pod(pod: &mut CachedPod) {
    let controller = pod
        .metadata
        .owner_references
        .take()
        .into_iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    trim_member_meta(&mut pod.metadata);
    pod.metadata.owner_references = controller.map(|r| vec![r]);
    if let Some(spec) = pod.spec.as_mut() {
        let volumes = spec.volumes.take().unwrap_or_default();
        let claims: Vec<ClaimVolume> = volumes
            .into_iter()
            .filter(|v| v.persistent_volume_claim.is_some())
            .collect();
        spec.volumes = (!claims.is_empty()).then_some(claims);
    }
    if let Some(conditions) = pod.status.as_mut().and_then(|s| s.conditions.as_mut()) {
        conditions.retain(|c| c.type_ == "PodScheduled");
        conditions.shrink_to_fit();
    }
}

/// Drops what the operator never reads of a claim's metadata.
pub fn trim_claim(claim: &mut CachedClaim) {
    trim_member_meta(&mut claim.metadata);
}

/// Of the metadata of a pod or a claim, keeps what the operator reads: name, namespace, version,
/// uid, whether it is being deleted, and the labels (the one naming the data centre, and those
/// `spec.members` selects by).
fn trim_member_meta(meta: &mut ObjectMeta) {
    let labels = meta.labels.take();
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        resource_version: meta.resource_version.take(),
        uid: meta.uid.take(),
        deletion_timestamp: meta.deletion_timestamp.take(),
        labels,
        ..ObjectMeta::default()
    };
}

/// A claim: the volume it is bound to, its class and its phase.
pub type CachedClaim = Kept<ClaimSpec, ClaimState>;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSpec {
    pub volume_name: Option<String>,
    pub storage_class_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ClaimState {
    pub phase: Option<String>,
}

resource_like!(CachedClaim, PersistentVolumeClaim);

/// A volume: where its data can be used (node affinity, class), the claim it serves, and every
/// field the operator declares on the local volumes it makes, so that an apply can tell whether
/// the live volume still holds them. It has no status: nothing reads it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CachedVolume {
    pub metadata: ObjectMeta,
    pub spec: Option<VolumeSpec>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_modes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<BTreeMap<String, Quantity>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_ref: Option<ObjectReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalVolumeSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_affinity: Option<VolumeNodeAffinity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistent_volume_reclaim_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_mode: Option<String>,
}

resource_like!(CachedVolume, PersistentVolume);

/// The JSON of a PersistentVolume with the kept fields, as an apply compares it.
impl Serialize for CachedVolume {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = 3 + usize::from(self.spec.is_some());
        let mut state = serializer.serialize_struct("PersistentVolume", fields)?;
        let api_version = <PersistentVolume as k8s_openapi::Resource>::API_VERSION;
        state.serialize_field("apiVersion", api_version)?;
        state.serialize_field("kind", <PersistentVolume as k8s_openapi::Resource>::KIND)?;
        state.serialize_field("metadata", &self.metadata)?;
        if let Some(spec) = &self.spec {
            state.serialize_field("spec", spec)?;
        }
        state.end()
    }
}

/// A child the operator declares whole (its StatefulSet, Service and NetworkPolicy): the
/// metadata, and the spec as the JSON text the API server sent, which an apply compares with the
/// declaration. Text takes a third of the memory of the Kubernetes types, whose every optional
/// field takes room even when unset (a `Container` takes 2.1 KB before its first string).
#[derive(Clone, Debug, Deserialize)]
#[serde(bound = "")]
pub struct CachedChild<K> {
    pub metadata: ObjectMeta,
    spec: Option<Box<RawValue>>,
    /// Of the status, only the ready replicas of a StatefulSet are read.
    status: Option<ChildStatus>,
    #[serde(skip)]
    kind: PhantomData<fn() -> K>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChildStatus {
    ready_replicas: Option<i32>,
}

impl<K> CachedChild<K> {
    /// The replicas a StatefulSet reports ready.
    pub fn ready_replicas(&self) -> Option<i32> {
        self.status.as_ref()?.ready_replicas
    }

    /// The access modes of a StatefulSet's first claim template, which cannot change once made.
    pub fn claim_access_modes(&self) -> Option<Vec<String>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Spec {
            volume_claim_templates: Vec<Template>,
        }
        #[derive(Deserialize)]
        struct Template {
            spec: TemplateSpec,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct TemplateSpec {
            access_modes: Vec<String>,
        }
        let spec: Spec = serde_json::from_str(self.spec.as_ref()?.get()).ok()?;
        Some(
            spec.volume_claim_templates
                .into_iter()
                .next()?
                .spec
                .access_modes,
        )
    }
}

resource_like!([K: k8s_openapi::Resource] CachedChild<K>, K);

/// The JSON of the child without its status, as an apply compares it.
impl<K: k8s_openapi::Resource> Serialize for CachedChild<K> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = 3 + usize::from(self.spec.is_some());
        let mut state = serializer.serialize_struct(K::KIND, fields)?;
        state.serialize_field("apiVersion", K::API_VERSION)?;
        state.serialize_field("kind", K::KIND)?;
        state.serialize_field("metadata", &self.metadata)?;
        if let Some(spec) = &self.spec {
            state.serialize_field("spec", spec)?;
        }
        state.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::RDC_LABEL;

    /// A volume as the API server sends it: status, managedFields and a volume source the
    /// operator never declares.
    const LIVE_VOLUME: &str = r#"{
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "domicile-fleet-cn.vehicle-data-0", "resourceVersion": "42",
            "labels": {"domicile.dev/regional-data-center": "vehicle-data"},
            "managedFields": [{"manager": "domicile", "operation": "Apply"}]},
        "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "fleet-cn",
                "name": "data-vehicle-data-0"},
            "local": {"path": "/var/lib/domicile/fleet-cn/vehicle-data/0"},
            "nfs": {"server": "nfs.example", "path": "/export"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": ["cn-1"]}]}]}},
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "domicile-local-cn",
            "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"}
    }"#;

    #[test]
    fn a_cached_volume_keeps_what_the_audit_and_an_apply_read() {
        let cached: CachedVolume = serde_json::from_str(LIVE_VOLUME).expect("a volume");
        let sent: PersistentVolume = serde_json::from_str(LIVE_VOLUME).expect("a volume");
        let mut kept = serde_json::to_value(&sent).expect("json");
        kept["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("nfs")
            .expect("nfs");
        kept.as_object_mut()
            .expect("object")
            .remove("status")
            .expect("status");
        assert_eq!(serde_json::to_value(&cached).expect("json"), kept);
        // Back to the Kubernetes type: the same, but for the fields that were not kept.
        let back: PersistentVolume = full(&cached).expect("a volume");
        let back = serde_json::to_value(back).expect("json");
        assert_eq!(back, kept);
    }

    #[test]
    fn a_cached_pod_and_claim_keep_placement_and_phase() {
        let mut pod: CachedPod = serde_json::from_str(
            r#"{"metadata": {"name": "vehicle-data-0", "namespace": "fleet-cn",
                    "labels": {"domicile.dev/regional-data-center": "vehicle-data", "app": "ingest"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                        "name": "vehicle-data", "uid": "u1"}]},
                "spec": {"nodeName": "cn-1", "containers": [{"name": "ingest", "image": "x"}]},
                "status": {"phase": "Pending", "podIP": "10.0.0.1", "conditions": [
                    {"type": "Initialized", "status": "True"},
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": "0/3 nodes are available"}]}}"#,
        )
        .expect("a pod");
        trim_pod(&mut pod);
        let pod: Pod = full(&pod).expect("a pod");
        assert_eq!(pod.metadata.namespace.as_deref(), Some("fleet-cn"));
        assert_eq!(
            pod.metadata.labels,
            Some(
                [
                    (RDC_LABEL.to_owned(), "vehicle-data".to_owned()),
                    ("app".to_owned(), "ingest".to_owned())
                ]
                .into()
            ),
            "its labels, which spec.members selects by"
        );
        // Its controller is kept (the audit asks whether the StatefulSet still owns it).
        assert_eq!(
            pod.metadata.owner_references, None,
            "not a controller reference"
        );
        let spec = pod.spec.expect("spec");
        assert_eq!(spec.node_name.as_deref(), Some("cn-1"));
        assert!(spec.containers.is_empty());
        let conditions = pod.status.and_then(|s| s.conditions).expect("conditions");
        assert_eq!(conditions.len(), 1, "{conditions:?}");
        assert_eq!(conditions[0].reason.as_deref(), Some("Unschedulable"));

        let mut replica: CachedPod = serde_json::from_str(
            r#"{"metadata": {"name": "vehicle-data-0", "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Other", "name": "x", "uid": "u0"},
                    {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "vehicle-data",
                     "uid": "u1", "controller": true}]},
                "spec": {"containers": [], "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data-vehicle-data-0"}},
                    {"name": "scratch", "emptyDir": {}},
                    {"name": "other", "persistentVolumeClaim": {"claimName": "uploads"}}]}}"#,
        )
        .expect("a pod");
        trim_pod(&mut replica);
        assert_eq!(
            replica.claims().collect::<Vec<_>>(),
            ["data-vehicle-data-0", "uploads"]
        );
        let replica: Pod = full(&replica).expect("a pod");
        let owners = replica.metadata.owner_references.expect("its controller");
        assert_eq!((owners.len(), owners[0].kind.as_str()), (1, "StatefulSet"));
        let volumes = replica.spec.and_then(|s| s.volumes).expect("volumes");
        assert_eq!(
            volumes[0]
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some("data-vehicle-data-0")
        );

        let claim: CachedClaim = serde_json::from_str(
            r#"{"metadata": {"name": "data-vehicle-data-0"},
                "spec": {"volumeName": "pv-1", "storageClassName": "local",
                    "resources": {"requests": {"storage": "1Gi"}}},
                "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}"#,
        )
        .expect("a claim");
        let claim: PersistentVolumeClaim = full(&claim).expect("a claim");
        let spec = claim.spec.expect("spec");
        assert_eq!(spec.volume_name.as_deref(), Some("pv-1"));
        assert_eq!(spec.storage_class_name.as_deref(), Some("local"));
        assert_eq!(spec.resources, None);
        assert_eq!(claim.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
    }

    #[test]
    fn a_cached_child_compares_as_the_api_server_sent_it_without_status() {
        use k8s_openapi::api::apps::v1::StatefulSet;
        let live = r#"{"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "vehicle-data", "namespace": "fleet-cn", "resourceVersion": "7"},
            "spec": {"replicas": 3, "serviceName": "vehicle-data",
                "template": {"spec": {"containers": [{"name": "ingest", "image": "x",
                    "terminationMessagePath": "/dev/termination-log"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2}}"#;
        let cached: CachedChild<StatefulSet> = serde_json::from_str(live).expect("a child");
        assert_eq!(cached.ready_replicas(), Some(2));
        let mut expected: serde_json::Value = serde_json::from_str(live).expect("json");
        expected
            .as_object_mut()
            .expect("object")
            .remove("status")
            .expect("status");
        assert_eq!(serde_json::to_value(&cached).expect("json"), expected);
        // The same through a watch event and a list, as the watch reads them.
        let event = format!(r#"{{"type": "MODIFIED", "object": {live}}}"#);
        let event: kube::api::WatchEvent<CachedChild<StatefulSet>> =
            serde_json::from_str(&event).expect("an event");
        let kube::api::WatchEvent::Modified(cached) = event else {
            panic!("not a modification");
        };
        assert_eq!(serde_json::to_value(&cached).expect("json"), expected);
        let list = format!(r#"{{"metadata": {{}}, "items": [{live}]}}"#);
        let list: kube::core::ObjectList<CachedChild<StatefulSet>> =
            serde_json::from_str(&list).expect("a list");
        assert_eq!(
            serde_json::to_value(&list.items[0]).expect("json"),
            expected
        );
    }
}
