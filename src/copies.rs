//! Copies of the data that other controllers make: CSI VolumeSnapshots (snapshot.storage.k8s.io/v1,
//! served once the external-snapshotter's CRDs are installed). Only the fields the audit reads
//! are declared; the rest of each object is ignored when it is read.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

pub const SNAPSHOT_GROUP: &str = "snapshot.storage.k8s.io";
pub const SNAPSHOT_VERSION: &str = "v1";

/// The annotation that makes a VolumeSnapshotClass the default of its driver.
pub const DEFAULT_CLASS_ANNOTATION: &str = "snapshot.storage.kubernetes.io/is-default-class";

/// The key prefix of a VolumeSnapshotClass in the ConfigMap of declared classes (StorageClass
/// names are lowercase DNS names, so the capital keeps the two kinds apart).
pub const SNAPSHOT_CLASS_KEY_PREFIX: &str = "VolumeSnapshotClass.";

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshot {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: VolumeSnapshotSpec,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSpec {
    #[serde(default)]
    pub source: VolumeSnapshotSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_content_name: Option<String>,
}

/// A VolumeSnapshotClass: its labels declare where its snapshots are kept.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotClass {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub driver: String,
}

macro_rules! external_resource {
    ($kind:ident, $plural:literal, $scope:ty) => {
        impl kube::Resource for $kind {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(stringify!($kind))
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(SNAPSHOT_GROUP)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(SNAPSHOT_VERSION)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

external_resource!(VolumeSnapshot, "volumesnapshots", NamespaceResourceScope);
external_resource!(
    VolumeSnapshotClass,
    "volumesnapshotclasses",
    k8s_openapi::ClusterResourceScope
);

impl VolumeSnapshot {
    /// The claim this snapshot copies, if it was taken from one (not pre-provisioned).
    pub fn source_claim(&self) -> Option<&str> {
        self.spec.source.persistent_volume_claim_name.as_deref()
    }
}

/// The class a snapshot is taken with: the one it names, or else the default class when exactly
/// one is marked (as the snapshot controller chooses it). `Err` carries the name it names that
/// does not exist, or "" when it names none and there is no single default.
pub fn class_of<'a, C: std::borrow::Borrow<VolumeSnapshotClass>>(
    snapshot: &VolumeSnapshot,
    classes: &'a [C],
) -> Result<&'a VolumeSnapshotClass, String> {
    let classes = classes.iter().map(std::borrow::Borrow::borrow);
    match snapshot.spec.volume_snapshot_class_name.as_deref() {
        Some(name) => classes
            .into_iter()
            .find(|c: &&VolumeSnapshotClass| c.metadata.name.as_deref() == Some(name))
            .ok_or_else(|| name.to_owned()),
        None => {
            let defaults: Vec<&VolumeSnapshotClass> = classes
                .filter(|c| {
                    c.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                        .is_some_and(|v| v == "true")
                })
                .collect();
            match defaults.as_slice() {
                [only] => Ok(only),
                _ => Err(String::new()),
            }
        }
    }
}

/// The key of a VolumeSnapshotClass in the ConfigMap of declared classes.
pub fn snapshot_class_key(name: &str) -> String {
    format!("{SNAPSHOT_CLASS_KEY_PREFIX}{name}")
}

/// Whether the API server serves VolumeSnapshots and their classes; if not, the log says once
/// that snapshots are not audited, and how to change that.
pub async fn snapshots_served(client: &kube::Client) -> bool {
    let api_version = format!("{SNAPSHOT_GROUP}/{SNAPSHOT_VERSION}");
    match client.list_api_group_resources(&api_version).await {
        Ok(list) => {
            let served = |plural: &str| list.resources.iter().any(|r| r.name == plural);
            if served("volumesnapshots") && served("volumesnapshotclasses") {
                tracing::info!(api = %api_version, "auditing VolumeSnapshots of the data claims");
                return true;
            }
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(err) => {
            tracing::warn!(api = %api_version, error = %err,
                "VolumeSnapshots are not audited: cannot tell whether the API server serves them");
            return false;
        }
    }
    tracing::info!(
        api = %api_version,
        "VolumeSnapshots are not audited: the API server does not serve {api_version}; install the \
         CSI snapshotter's CRDs and restart the operator to audit them"
    );
    false
}
