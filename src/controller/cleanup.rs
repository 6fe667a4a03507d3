//! What happens when a RegionalDataCenter is deleted. Namespaced children go with it through
//! their owner references; the finalizer handles what they cannot: cluster-scoped volumes and
//! classes. Data is deleted only when `spec.storage.retainOnDelete` is false.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};

use super::{Context, Error, rdc_of_volume};
use crate::api::RegionalDataCenter;
use crate::api::jurisdiction::Jurisdiction;
use crate::resources::{self, RDC_LABEL};

pub async fn cleanup(rdc: &RegionalDataCenter, ctx: &Context) -> Result<(), Error> {
    let me = ObjectRef::from(rdc);
    let pv_api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let mine: Vec<_> = ctx
        .caches
        .volumes
        .state()
        .into_iter()
        .filter(|pv| rdc_of_volume(pv).as_ref() == Some(&me))
        // An earlier data centre's retained volumes are not this one's to delete.
        .filter(|pv| resources::of_this_incarnation(&pv.metadata, rdc))
        .collect();

    if rdc.retains_data() {
        tracing::info!(rdc = %me, volumes = mine.len(), "deleted; its claims and volumes are retained");
    } else {
        for pv in &mine {
            let name = pv.name_any();
            if pv.labels().contains_key(RDC_LABEL) {
                // A local volume the operator made: its object goes; the files stay on the node.
                ctx.writer.delete(&pv_api, Some(pv.as_ref())).await?;
            } else {
                // A provisioned volume: let its provisioner delete the data once the claim is gone.
                let patch =
                    serde_json::json!({"spec": {"persistentVolumeReclaimPolicy": "Delete"}});
                ctx.writer.merge_patch(&pv_api, &name, patch).await?;
            }
        }
        let claims: Api<PersistentVolumeClaim> =
            Api::namespaced(ctx.client.clone(), &rdc.namespace().unwrap_or_default());
        let selector = ListParams::default().labels(&format!("{RDC_LABEL}={}", rdc.name_any()));
        for claim in claims.list(&selector).await?.items {
            ctx.writer.delete(&claims, Some(&claim)).await?;
        }
        tracing::info!(rdc = %me, volumes = mine.len(), "deleted with its claims and volumes, as retainOnDelete: false asks");
    }
    // Namespaced children go with their owner; the writer forgets them, and the volumes.
    let (namespace, name) = (rdc.namespace().unwrap_or_default(), rdc.name_any());
    ctx.writer.forget::<StatefulSet>(&namespace, &name);
    ctx.writer.forget::<Service>(&namespace, &name);
    ctx.writer.forget::<NetworkPolicy>(&namespace, &name);
    ctx.writer.forget_status(rdc);
    for pv in &mine {
        ctx.writer.forget::<PersistentVolume>("", &pv.name_any());
    }
    remove_unused_classes(rdc, ctx).await
}

/// Removes the jurisdiction's managed classes once no other data centre and no volume uses them.
async fn remove_unused_classes(rdc: &RegionalDataCenter, ctx: &Context) -> Result<(), Error> {
    let Ok(jurisdiction) = Jurisdiction::parse(&rdc.spec.jurisdiction) else {
        return Ok(());
    };
    let keys = &ctx.settings.keys;
    let candidates = [
        resources::managed_storage_class(&jurisdiction, keys, &ctx.settings.provisioner).name_any(),
        resources::local_storage_class(&jurisdiction, keys).name_any(),
    ];
    let me = ObjectRef::from(rdc);
    let others_here = ctx.caches.data_centers.state().into_iter().any(|other| {
        ObjectRef::from(other.as_ref()) != me && other.spec.jurisdiction == rdc.spec.jurisdiction
    });
    if others_here {
        return Ok(());
    }
    let classes: Api<StorageClass> = Api::all(ctx.client.clone());
    for class in candidates {
        let in_use = ctx.caches.volumes.state().iter().any(|pv| {
            pv.spec
                .as_ref()
                .and_then(|s| s.storage_class_name.as_deref())
                == Some(class.as_str())
        });
        if !in_use {
            let live = ctx.caches.classes.get(&ObjectRef::new(&class));
            ctx.writer.delete(&classes, live.as_deref()).await?;
        }
    }
    Ok(())
}
