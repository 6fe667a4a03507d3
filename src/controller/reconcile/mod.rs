//! One reconcile, step by step, each in a file of its own: the namespace's guard (`namespace`);
//! observe its own objects, plan (pure, `plan`) and apply them (`provision`); observe what is
//! really there (`observe`), audit it (pure, `crate::residency`), enforce (`enforce`); derive the
//! status (pure, `super::status`) and write it with the history and the report (`write`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    Event as CoreEvent, Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod,
    Service,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};

use super::apply::{Applied, Eviction};
use super::cached::{self, CachedVolume};
use super::status::{
    ADMISSION_GUARDED, Blocker, Observation, READY, Reason, derive_status, needs_write,
    progress_only,
};
use super::{Context, Error, FINALIZER, cleanup};
use crate::api::jurisdiction::Jurisdiction;
use crate::api::{
    Enforcement, Own, RegionalDataCenter, RegionalDataCenterStatus, Residency, StorageMode,
    Violation,
};
use crate::guard::{self, Assessment, NAMESPACE_LABEL, Standing};
use crate::residency::{self, Observed, ViolationReason};
use crate::resources::{self, FIELD_MANAGER, RDC_LABEL};

mod enforce;
mod namespace;
mod observe;
mod plan;
mod provision;
mod write;

use enforce::*;
use namespace::*;
use observe::*;
use plan::*;
use provision::*;
use write::*;

/// How often a converged data centre is audited again even when no watch says anything changed
/// (jittered by a quarter either way): a safety net, since the watches trigger every change.
const REAUDIT: Duration = Duration::from_secs(300);
/// How long a status that reports progress only (a replica more ready, a claim bound, a pod
/// placed) is held back: a converging data centre is not rewritten at every pod event.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);
/// How soon a data centre is looked at again while something the watches do not see blocks it (a
/// disruption budget refusing an eviction, an object of a child's name that is not the operator's).
const BLOCKED_RETRY: Duration = Duration::from_secs(10);

pub async fn reconcile(rdc: Arc<RegionalDataCenter>, ctx: Arc<Context>) -> Result<Action, Error> {
    let object = ObjectRef::from(rdc.as_ref());
    let started = std::time::Instant::now();
    let result = reconcile_with_finalizer(rdc, &ctx).await;
    let seconds = started.elapsed().as_secs_f64();
    match &result {
        Ok(_) => {
            ctx.writer.metrics().reconciled(seconds, None);
            ctx.backoffs.forget(&object);
        }
        Err(err) => ctx
            .writer
            .metrics()
            .reconciled(seconds, Some(err.category())),
    }
    result
}

pub fn error_policy(rdc: Arc<RegionalDataCenter>, error: &Error, ctx: Arc<Context>) -> Action {
    // Entries of data centres that are gone go with them, so the map stays bounded.
    let data_centers = &ctx.caches.data_centers;
    ctx.backoffs
        .retain(|object| data_centers.get(object).is_some());
    let delay = ctx.backoffs.failed(ObjectRef::from(rdc.as_ref()));
    tracing::warn!(
        rdc = %ObjectRef::from(rdc.as_ref()),
        category = error.category(),
        error = %error,
        retry_in = ?delay,
        "reconcile failed"
    );
    Action::requeue(delay)
}

async fn reconcile_with_finalizer(
    rdc: Arc<RegionalDataCenter>,
    ctx: &Context,
) -> Result<Action, Error> {
    if !ctx.watches.listed() {
        // An audit or a clean-up on half a cache would be wrong; every data centre is
        // reconciled again once all caches are synced.
        return Ok(Action::await_change());
    }
    let api: Api<RegionalDataCenter> =
        Api::namespaced(ctx.client.clone(), &rdc.namespace().unwrap_or_default());
    let finalizers = rdc.finalizers();
    let has_finalizer = finalizers.iter().any(|f| f == FINALIZER);
    if rdc.meta().deletion_timestamp.is_some() {
        if has_finalizer {
            cleanup::cleanup(&rdc, ctx).await?;
            let remaining: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER).collect();
            ctx.writer.set_finalizers(&api, &rdc, &remaining).await?;
            // Its results leave the namespace's report.
            if let Some(reports) = &ctx.reports {
                reports.removed(&rdc.namespace().unwrap_or_default(), &rdc.name_any());
            }
        }
        ctx.backoffs.forget(&ObjectRef::from(rdc.as_ref()));
        return Ok(Action::await_change());
    }
    if !has_finalizer {
        let mut all: Vec<&str> = finalizers.iter().map(String::as_str).collect();
        all.push(FINALIZER);
        ctx.writer.set_finalizers(&api, &rdc, &all).await?;
        // The change to the object triggers the next reconcile.
        return Ok(Action::await_change());
    }
    provision_and_audit(&rdc, ctx).await
}

/// The reconcile of a live data centre: its namespace's guard; observe its own objects, plan
/// (pure) and apply them; observe what is there, audit (pure), enforce; the status (pure), its
/// write, the history and the report.
async fn provision_and_audit(rdc: &RegionalDataCenter, ctx: &Context) -> Result<Action, Error> {
    let jurisdiction = match Jurisdiction::parse(&rdc.spec.jurisdiction) {
        Ok(jurisdiction) => jurisdiction,
        // Only reachable when the CRD in the cluster is older than this operator.
        Err(err) => return write_invalid_jurisdiction(rdc, &err.to_string(), ctx).await,
    };
    // The namespace is labelled, where that is asked for, before any pod is created in it.
    let guard = guard_namespace(rdc, &jurisdiction, ctx).await?;
    let Some(provisioned) = provision(rdc, &jurisdiction, &guard, ctx).await? else {
        tracing::info!(rdc = %ObjectRef::from(rdc), "its namespace is being deleted; nothing more is created in it");
        return Ok(Action::await_change());
    };
    audit_and_report(rdc, &jurisdiction, guard, provisioned, ctx).await
}

/// What provisioning found and did, for the audit and the status.
#[derive(Default)]
struct Provisioned {
    /// The claims labelled with the data centre (its replicas').
    claims: Vec<PersistentVolumeClaim>,
    own_volumes: Vec<Arc<PersistentVolume>>,
    /// Volumes retained from an earlier data centre of its name, by name.
    retained_volumes: Vec<String>,
    /// The StorageClass of its own claims, when it runs a workload.
    class_name: Option<String>,
    /// What keeps its declaration from being applied.
    blocker: Option<Blocker>,
    /// An update of a child the API server refused, or a history of its name not the operator's.
    refused: Option<Blocker>,
}

/// Observe (from the caches), audit (pure), enforce, derive the status (pure) and write it, with
/// the history and the report.
async fn audit_and_report(
    rdc: &RegionalDataCenter,
    jurisdiction: &Jurisdiction,
    guard: Assessment,
    mut provisioned: Provisioned,
    ctx: &Context,
) -> Result<Action, Error> {
    let own_volumes = std::mem::take(&mut provisioned.own_volumes);
    let seen = observe(rdc, &provisioned.claims, own_volumes, ctx)?;
    let audit = residency::audit(rdc, jurisdiction, &ctx.settings.keys, &seen.observed());
    let eviction_blocked = match rdc.spec.enforcement {
        Enforcement::Enforce => {
            let pods = seen.pods.iter().chain(&seen.member_pods);
            enforce(rdc, &audit, pods, ctx).await?
        }
        Enforcement::Audit => None,
    };
    let workload = workload_state(rdc, &seen.pods, &provisioned.claims, &ctx.caches);
    provisioned.refused = provisioned
        .refused
        .take()
        .or_else(|| history_taken(rdc, ctx));
    let storage_hint = storage_hint(rdc, provisioned.class_name.as_deref());
    let settable = ctx.settings.keys.kubelet_settable();
    let observation = Observation {
        generation: rdc.meta().generation,
        blocker: provisioned.blocker.as_ref(),
        replicas: rdc.replicas(),
        ready_replicas: workload.ready_replicas,
        bound_claims: workload.bound_claims,
        storage_hint: &storage_hint,
        audit: &audit,
        kubelet_settable_keys: &settable,
        refused: provisioned.refused.as_ref(),
        pods_refused: workload.pods_refused.as_deref(),
        unschedulable: workload.unschedulable.as_deref(),
        eviction_blocked: eviction_blocked.as_deref(),
        retained_volumes: &provisioned.retained_volumes,
        missing_pods: &workload.missing_pods,
        guard: Some(&guard),
    };
    let deferred = write_and_record(rdc, &observation, ctx).await?;
    // A disruption budget that refuses an eviction today may allow it in a moment; an object of
    // a child's name may be deleted without a word to the caches, which watch only the
    // operator's own.
    let taken = provisioned
        .refused
        .as_ref()
        .is_some_and(|r| r.reason == Reason::NameTaken);
    let next = if eviction_blocked.is_some() || taken {
        BLOCKED_RETRY
    } else {
        super::backoff::spread(REAUDIT)
    };
    Ok(Action::requeue(deferred.map_or(next, |d| d.min(next))))
}

/// A ResidencyHistory of its name that the operator did not make.
fn history_taken(rdc: &RegionalDataCenter, ctx: &Context) -> Option<Blocker> {
    ctx.histories.taken(rdc).then(|| {
        name_taken(
            "ResidencyHistory",
            &rdc.namespace().unwrap_or_default(),
            &rdc.name_any(),
            "without the labels domicile gives the histories it keeps",
        )
    })
}

/// What the status says claims wait for.
fn storage_hint(rdc: &RegionalDataCenter, class_name: Option<&str>) -> String {
    match (rdc.storage_mode(), class_name) {
        (StorageMode::Local, _) => "local volumes bind when their pods are scheduled".to_owned(),
        (StorageMode::Dynamic, Some(class_name)) => {
            format!("waiting for the provisioner of StorageClass {class_name} to create volumes")
        }
        (StorageMode::Dynamic, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::rdc;

    #[test]
    fn the_storage_hint_names_what_claims_wait_for() {
        let mut dynamic = rdc("CN", 1);
        dynamic.spec.storage.as_mut().expect("its own").mode = StorageMode::Dynamic;
        assert_eq!(
            storage_hint(&dynamic, Some("csi-cn")),
            "waiting for the provisioner of StorageClass csi-cn to create volumes"
        );
        assert!(storage_hint(&rdc("CN", 1), Some("domicile-local-cn")).contains("local volumes"));
        assert_eq!(storage_hint(&dynamic, None), "");
    }
}
