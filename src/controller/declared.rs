//! The ConfigMap the claims and snapshots admission policies read: every StorageClass that
//! declares a jurisdiction by its labels, class name to code, and every VolumeSnapshotClass that
//! does, under `VolumeSnapshotClass.<name>`. Kept by the leader, written only when a class's
//! declaration changed or the ConfigMap differs from it.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, ResourceExt};

use super::Context;
use crate::api::jurisdiction::Jurisdiction;
use crate::copies::{BackupStorageLocation, VolumeSnapshotLocation};
use crate::resources::FIELD_MANAGER;

/// The ConfigMap as declared: its labels make the managed-objects policy guard it.
pub fn desired(namespace: &str, name: &str, classes: BTreeMap<String, String>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_owned(),
                    "domicile".to_owned(),
                ),
                (
                    "app.kubernetes.io/name".to_owned(),
                    "declared-storage-classes".to_owned(),
                ),
            ])),
            ..Default::default()
        },
        data: Some(classes),
        ..Default::default()
    }
}

/// Whether `live` already says what `desired` does: the same classes, exactly, and its labels.
pub fn holds(live: Option<&ConfigMap>, desired: &ConfigMap) -> bool {
    live.is_some_and(|live| {
        let labels = live.metadata.labels.clone().unwrap_or_default();
        live.data.clone().unwrap_or_default() == desired.data.clone().unwrap_or_default()
            && desired
                .metadata
                .labels
                .iter()
                .flatten()
                .all(|(key, value)| labels.get(key) == Some(value))
    })
}

/// The ConfigMap of declared classes and what keeps it.
pub struct Declared {
    pub namespace: String,
    pub name: String,
    pub live: Store<ConfigMap>,
    /// One write at a time: the keeper and the reconciles that apply a class.
    writing: tokio::sync::Mutex<()>,
}

/// The longest key a ConfigMap may have.
const MAX_KEY: usize = 253;

impl Declared {
    pub fn new(namespace: String, name: String, live: Store<ConfigMap>) -> Self {
        Self {
            namespace,
            name,
            live,
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// Brings the ConfigMap in line with the classes of the cache and `applied`, a class just
    /// applied that the cache may not show yet; writes only when the ConfigMap differs. A
    /// reconcile calls it between its class and its StatefulSet, so that the claims of a new
    /// jurisdiction's first data centre are not refused for want of a declaration.
    pub async fn sync(&self, ctx: &Context, applied: Option<&StorageClass>) -> kube::Result<()> {
        let _one = self.writing.lock().await;
        let classes = ctx.caches.classes.state();
        let mut declared =
            crate::guard::declared_classes(classes.iter().map(AsRef::as_ref), &ctx.settings.keys);
        if let Some(class) = applied {
            declared.remove(&class.name_any());
            declared.extend(crate::guard::declared_classes([class], &ctx.settings.keys));
        }
        // VolumeSnapshotClasses under keys of their own, for the snapshots policy.
        let snapshot_classes = ctx.caches.snapshot_classes.state();
        declared.extend(
            crate::guard::declared_classes(
                snapshot_classes.iter().map(AsRef::as_ref),
                &ctx.settings.keys,
            )
            .into_iter()
            .map(|(name, code)| (crate::copies::snapshot_class_key(&name), code))
            // A key is at most 253 characters: a class whose key would be longer is left out
            // (its snapshots are refused in jurisdiction namespaces, and the audit still judges
            // them by its label), rather than fail every write of the list.
            .filter(|(key, _)| {
                let fits = key.len() <= MAX_KEY;
                if !fits {
                    tracing::warn!(
                        key = key.as_str(),
                        "a VolumeSnapshotClass name too long to be declared to the snapshots \
                         policy; give the class a name of at most {} characters",
                        MAX_KEY - crate::copies::SNAPSHOT_CLASS_KEY_PREFIX.len()
                    );
                }
                fits
            }),
        );
        // And what the backups policy reads: the jurisdiction namespaces, and Velero's locations.
        declared.extend(
            velero_entries(
                &ctx.caches.namespaces.state(),
                &ctx.caches.storage_locations.state(),
                &ctx.caches.snapshot_locations.state(),
                &ctx.settings.keys,
            )
            .into_iter()
            .filter(|(key, _)| key.len() <= MAX_KEY),
        );
        let desired = desired(&self.namespace, &self.name, declared);
        let key = ObjectRef::new(&self.name).within(&self.namespace);
        if holds(self.live.get(&key).as_deref(), &desired) {
            return Ok(());
        }
        ctx.writer.metrics().write("apply", "ConfigMap");
        let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &self.namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&self.name, &params, &Patch::Apply(&desired))
            .await?;
        tracing::info!(
            configmap = %key,
            classes = desired.data.as_ref().map_or(0, BTreeMap::len),
            "declared storage classes written"
        );
        Ok(())
    }
}

/// What the backups policy reads beside the classes: `Namespace.<name>` for each namespace
/// labelled with a jurisdiction (its code), and `BackupStorageLocation.<namespace>.<name>` and
/// `VolumeSnapshotLocation.<namespace>.<name>` for each of Velero's locations (the jurisdiction
/// its labels declare, or empty). A namespace name holds no dot, so the keys read back one way.
pub fn velero_entries(
    namespaces: &[Arc<Namespace>],
    storage_locations: &[Arc<BackupStorageLocation>],
    snapshot_locations: &[Arc<VolumeSnapshotLocation>],
    keys: &crate::resources::NodeLabelKeys,
) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    for namespace in namespaces {
        // A label that is no code still marks the namespace: no location declares it, so its
        // backups are refused rather than let through.
        if let Some(code) = namespace.labels().get(crate::guard::NAMESPACE_LABEL) {
            let code = Jurisdiction::parse(code).map_or_else(|_| code.clone(), |j| j.to_string());
            entries.insert(format!("Namespace.{}", namespace.name_any()), code);
        }
    }
    let located = |kind: &str, meta: &kube::api::ObjectMeta, declared: Option<String>| {
        (
            format!(
                "{kind}.{}.{}",
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default()
            ),
            declared.unwrap_or_default(),
        )
    };
    for location in storage_locations {
        let declared = crate::guard::declared_classes([location.as_ref()], keys)
            .into_values()
            .next();
        entries.extend([located(
            "BackupStorageLocation",
            &location.metadata,
            declared,
        )]);
    }
    for location in snapshot_locations {
        let declared = crate::guard::declared_classes([location.as_ref()], keys)
            .into_values()
            .next();
        entries.extend([located(
            "VolumeSnapshotLocation",
            &location.metadata,
            declared,
        )]);
    }
    entries
}

/// Runs until aborted: at each wake-up (a class or the ConfigMap changed, or every watch has
/// listed), brings the ConfigMap in line.
pub async fn keep(ctx: Arc<Context>, declared: Arc<Declared>, wake: Arc<tokio::sync::Notify>) {
    loop {
        wake.notified().await;
        if !ctx.watches.listed() {
            continue;
        }
        // The next change of a class or of the ConfigMap tries again.
        if let Err(err) = declared.sync(&ctx, None).await {
            tracing::error!(
                configmap = %format!("{}/{}", declared.namespace, declared.name),
                error = %err,
                "cannot write the declared storage classes; claims in jurisdiction namespaces \
                 are refused until it is written"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backups_policy_reads_jurisdiction_namespaces_and_every_location() {
        let meta = |namespace: Option<&str>, name: &str, labels: &[(&str, &str)]| ObjectMeta {
            name: Some(name.to_owned()),
            namespace: namespace.map(str::to_owned),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        };
        let keys = crate::resources::NodeLabelKeys::default();
        let namespaces = [
            meta(None, "fleet-cn", &[(crate::guard::NAMESPACE_LABEL, "CN")]),
            meta(
                None,
                "plant-sh",
                &[(crate::guard::NAMESPACE_LABEL, "CN-SH")],
            ),
            meta(None, "web", &[]),
            meta(
                None,
                "odd",
                &[(crate::guard::NAMESPACE_LABEL, "not a code")],
            ),
        ]
        .map(|metadata| {
            Arc::new(Namespace {
                metadata,
                ..Namespace::default()
            })
        });
        let storage: Vec<BackupStorageLocation> = serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "s3-cn", "namespace": "velero",
                "labels": {keys.jurisdiction.clone(): "CN"}},
             "spec": {"provider": "aws"}},
            {"metadata": {"name": "s3-bare", "namespace": "velero"}, "spec": {"provider": "aws"}}
        ]))
        .expect("locations");
        let snapshots: Vec<VolumeSnapshotLocation> = serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "ebs-us", "namespace": "velero",
                "labels": {keys.jurisdiction.clone(): "US"}},
             "spec": {"provider": "aws"}}
        ]))
        .expect("locations");
        let (storage, snapshots): (Vec<_>, Vec<_>) = (
            storage.into_iter().map(Arc::new).collect(),
            snapshots.into_iter().map(Arc::new).collect(),
        );
        let entries = velero_entries(&namespaces, &storage, &snapshots, &keys);
        let entries: Vec<(&str, &str)> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            entries,
            [
                ("BackupStorageLocation.velero.s3-bare", ""),
                ("BackupStorageLocation.velero.s3-cn", "CN"),
                ("Namespace.fleet-cn", "CN"),
                ("Namespace.odd", "not a code"),
                ("Namespace.plant-sh", "CN-SH"),
                ("VolumeSnapshotLocation.velero.ebs-us", "US"),
            ]
        );
    }

    #[test]
    fn only_the_exact_classes_and_the_labels_hold() {
        let classes = BTreeMap::from([("cn".to_owned(), "CN".to_owned())]);
        let want = desired("domicile-system", "declared", classes.clone());
        assert!(holds(Some(&want), &want));
        assert!(!holds(None, &want));
        let mut extra = want.clone();
        extra
            .data
            .get_or_insert_default()
            .insert("abroad".to_owned(), "CN".to_owned());
        assert!(!holds(Some(&extra), &want), "an added class is taken out");
        let mut unlabelled = want.clone();
        unlabelled.metadata.labels = None;
        assert!(!holds(Some(&unlabelled), &want));
        let empty = desired("domicile-system", "declared", BTreeMap::new());
        let mut none = empty.clone();
        none.data = None;
        assert!(holds(Some(&none), &empty));
    }
}
