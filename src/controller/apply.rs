//! Every write the operator makes goes through here: server-side apply under one field manager,
//! skipped when the object already carries the hash of what would be applied, and counted.

use std::fmt::Debug;
use std::sync::Arc;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::resources::{APPLIED_HASH_ANNOTATION, FIELD_MANAGER};
use crate::telemetry::Metrics;

/// A short, stable digest of the object the operator wants.
pub fn desired_hash<K: Serialize>(desired: &K) -> Result<String, serde_json::Error> {
    let digest = Sha256::digest(serde_json::to_vec(desired)?);
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

#[derive(Clone)]
pub struct Writer {
    metrics: Arc<Metrics>,
}

impl Writer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Applies `desired` unless the live object was applied from the same desired state.
    /// Returns whether a write was sent.
    pub async fn apply<K>(&self, api: &Api<K>, mut desired: K) -> Result<bool, super::Error>
    where
        K: Resource + k8s_openapi::Resource + Clone + Debug + Serialize + DeserializeOwned,
    {
        let hash = desired_hash(&desired)?;
        let name = desired.name_any();
        if let Some(live) = api.get_opt(&name).await?
            && live.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&hash)
        {
            return Ok(false);
        }
        desired
            .annotations_mut()
            .insert(APPLIED_HASH_ANNOTATION.to_owned(), hash);
        self.metrics
            .write("apply", <K as k8s_openapi::Resource>::KIND);
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await?;
        tracing::info!(kind = <K as k8s_openapi::Resource>::KIND, %name, "applied");
        Ok(true)
    }

    /// Deletes `name` if it exists. Returns whether a write was sent.
    pub async fn delete_if_exists<K>(&self, api: &Api<K>, name: &str) -> Result<bool, super::Error>
    where
        K: Resource + k8s_openapi::Resource + Clone + Debug + DeserializeOwned,
    {
        if api.get_opt(name).await?.is_none() {
            return Ok(false);
        }
        self.metrics
            .write("delete", <K as k8s_openapi::Resource>::KIND);
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => return Err(err.into()),
        }
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
            .await?;
        Ok(())
    }

    /// Applies the status subresource of a RegionalDataCenter.
    pub async fn apply_status(
        &self,
        api: &Api<crate::api::RegionalDataCenter>,
        name: &str,
        status: &crate::api::RegionalDataCenterStatus,
    ) -> Result<(), super::Error> {
        let patch = serde_json::json!({
            "apiVersion": "domicile.dev/v1alpha1",
            "kind": "RegionalDataCenter",
            "status": status,
        });
        self.metrics.write("apply", "RegionalDataCenterStatus");
        api.patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
