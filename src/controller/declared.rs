//! The ConfigMap the claims admission policy reads: every StorageClass that declares a
//! jurisdiction by its labels, class name to code. Kept by the leader, written only when a class's
//! declaration changed or the ConfigMap differs from it.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};

use super::Context;
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

/// Runs until aborted: at each wake-up, once every watch has listed, compares the classes with
/// the ConfigMap and applies the difference.
pub async fn keep(
    ctx: Arc<Context>,
    namespace: String,
    name: String,
    live: Store<ConfigMap>,
    wake: Arc<tokio::sync::Notify>,
) {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = ObjectRef::new(&name).within(&namespace);
    loop {
        wake.notified().await;
        if !ctx.watches.listed() {
            continue;
        }
        let classes = ctx.caches.classes.state();
        let declared =
            crate::guard::declared_classes(classes.iter().map(AsRef::as_ref), &ctx.settings.keys);
        let desired = desired(&namespace, &name, declared);
        if holds(live.get(&key).as_deref(), &desired) {
            continue;
        }
        ctx.writer.metrics().write("apply", "ConfigMap");
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch(&name, &params, &Patch::Apply(&desired)).await {
            Ok(_) => tracing::info!(
                configmap = %key,
                classes = desired.data.as_ref().map_or(0, BTreeMap::len),
                "declared storage classes written"
            ),
            // The next change of a class or of the ConfigMap tries again.
            Err(err) => tracing::error!(
                configmap = %key,
                error = %err,
                "cannot write the declared storage classes; claims in jurisdiction namespaces \
                 are refused until it is written"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
