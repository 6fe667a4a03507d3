//! One reconcile: validate -> build (pure) -> apply -> observe -> audit (pure) -> status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{EvictParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

use super::status::{Blocker, Observation, READY, derive_status, needs_write};
use super::{Context, Error, FINALIZER, cleanup};
use crate::api::jurisdiction::Jurisdiction;
use crate::api::{
    Enforcement, RegionalDataCenter, RegionalDataCenterStatus, Residency, StorageMode, Violation,
};
use crate::residency::{self, Observed, ViolationReason};
use crate::resources::{self, RDC_LABEL};

/// How often a converged data centre is audited again even when no watch says anything changed.
const REAUDIT: Duration = Duration::from_secs(300);
/// When to try again an eviction that a PodDisruptionBudget refused.
const EVICTION_RETRY: Duration = Duration::from_secs(10);

pub async fn reconcile(rdc: Arc<RegionalDataCenter>, ctx: Arc<Context>) -> Result<Action, Error> {
    let object = ObjectRef::from(rdc.as_ref());
    let started = std::time::Instant::now();
    let result = reconcile_with_finalizer(rdc, &ctx).await;
    let seconds = started.elapsed().as_secs_f64();
    match &result {
        Ok(_) => {
            ctx.writer.metrics().reconciled(seconds, None);
            ctx.backoffs.succeeded(&object);
        }
        Err(err) => ctx
            .writer
            .metrics()
            .reconciled(seconds, Some(err.category())),
    }
    result
}

pub fn error_policy(rdc: Arc<RegionalDataCenter>, error: &Error, ctx: Arc<Context>) -> Action {
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
    if !ctx.synced.synced() {
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
            set_finalizers(&api, &rdc, serde_json::json!(remaining), ctx).await?;
        }
        return Ok(Action::await_change());
    }
    if !has_finalizer {
        let mut all: Vec<&str> = finalizers.iter().map(String::as_str).collect();
        all.push(FINALIZER);
        set_finalizers(&api, &rdc, serde_json::json!(all), ctx).await?;
        // The change to the object triggers the next reconcile.
        return Ok(Action::await_change());
    }
    provision_and_audit(&rdc, ctx).await
}

/// A merge patch guarded by the resourceVersion, so a concurrent change is never overwritten.
async fn set_finalizers(
    api: &Api<RegionalDataCenter>,
    rdc: &RegionalDataCenter,
    finalizers: serde_json::Value,
    ctx: &Context,
) -> Result<(), Error> {
    let patch = serde_json::json!({
        "metadata": {"finalizers": finalizers, "resourceVersion": rdc.resource_version()}
    });
    ctx.writer.metrics().write("patch", "RegionalDataCenter");
    api.patch(
        &rdc.name_any(),
        &PatchParams::default(),
        &Patch::Merge(patch),
    )
    .await?;
    Ok(())
}

fn cloned<K: Clone>(items: Vec<Arc<K>>) -> Vec<K> {
    items.into_iter().map(|item| (*item).clone()).collect()
}

fn no_eligible_nodes(jurisdiction: &Jurisdiction, ctx: &Context) -> Blocker {
    let keys = &ctx.settings.keys;
    let mut selector = format!("{}={}", keys.jurisdiction, jurisdiction.country());
    if let Some(sub) = jurisdiction.subdivision() {
        selector.push_str(&format!(" {}={sub}", keys.subdivision));
    }
    Blocker {
        reason: "NoEligibleNodes",
        message: format!(
            "no node is labelled for jurisdiction {jurisdiction}; label the nodes that are in it: kubectl label node <node> {selector}"
        ),
    }
}

async fn provision_and_audit(rdc: &RegionalDataCenter, ctx: &Context) -> Result<Action, Error> {
    let name = rdc.name_any();
    let namespace = rdc.namespace().unwrap_or_default();
    let keys = &ctx.settings.keys;
    let client = &ctx.client;

    let jurisdiction = match Jurisdiction::parse(&rdc.spec.jurisdiction) {
        Ok(jurisdiction) => jurisdiction,
        Err(err) => {
            // Only reachable when the CRD in the cluster is older than this operator.
            let blocker = Blocker {
                reason: "InvalidJurisdiction",
                message: format!(
                    "spec.jurisdiction: {err}; install the current CRD (kubectl apply -f crds/)"
                ),
            };
            let nothing = residency::Audit {
                placements: vec![],
                findings: vec![],
                residency: Residency::Pending,
            };
            let observation = Observation {
                generation: rdc.meta().generation,
                blocker: Some(&blocker),
                eligible_nodes: 0,
                replicas: rdc.spec.workload.replicas,
                ready_replicas: 0,
                bound_claims: 0,
                storage_hint: "",
                audit: &nothing,
                kubelet_settable_keys: &ctx.settings.keys.kubelet_settable(),
            };
            write_status(rdc, &observation, ctx).await?;
            return Ok(Action::await_change());
        }
    };

    let nodes: Vec<Node> = cloned(ctx.nodes.state());
    let volumes: Vec<PersistentVolume> = cloned(ctx.volumes.state());
    let eligible = residency::eligible_nodes(&nodes, &jurisdiction, keys);

    // Build (pure), and find what the schema could not judge.
    let classes_api: Api<StorageClass> = Api::all(client.clone());
    let mut blocker = eligible
        .is_empty()
        .then(|| no_eligible_nodes(&jurisdiction, ctx));
    let mut desired_class = None;
    let mut desired_volumes = Vec::new();
    let class_name = match (rdc.spec.storage.mode, &rdc.spec.storage.storage_class_name) {
        (StorageMode::Dynamic, Some(existing)) => {
            if blocker.is_none() && ctx.classes.get(&ObjectRef::new(existing)).is_none() {
                blocker = Some(Blocker {
                    reason: "StorageClassNotFound",
                    message: format!(
                        "spec.storage.storageClassName names StorageClass {existing:?}, which does not exist; \
                         create it, or remove storageClassName to use the class domicile manages"
                    ),
                });
            }
            existing.clone()
        }
        (StorageMode::Dynamic, None) => {
            let class =
                resources::managed_storage_class(&jurisdiction, keys, &ctx.settings.provisioner);
            let class_name = class.name_any();
            desired_class = Some(class);
            class_name
        }
        (StorageMode::Local, _) => {
            let class = resources::local_storage_class(&jurisdiction, keys);
            let class_name = class.name_any();
            let existing: Vec<PersistentVolume> = volumes
                .iter()
                .filter(|pv| {
                    pv.labels().get(RDC_LABEL) == Some(&name)
                        && pv.labels().get(resources::RDC_NAMESPACE_LABEL) == Some(&namespace)
                })
                .cloned()
                .collect();
            let plan = resources::local_volumes(rdc, &class_name, &eligible, &existing);
            if blocker.is_none() && plan.unplaced > 0 {
                blocker = Some(Blocker {
                    reason: "InsufficientEligibleNodes",
                    message: format!(
                        "Local mode puts each replica's volume on a node of its own: {} replicas need {} nodes \
                         labelled {}={}, but {} are; label more nodes or lower spec.workload.replicas",
                        rdc.spec.workload.replicas,
                        rdc.spec.workload.replicas,
                        keys.jurisdiction,
                        jurisdiction,
                        eligible.len()
                    ),
                });
            }
            desired_class = Some(class);
            desired_volumes = plan.volumes;
            class_name
        }
    };

    // Apply, unless something blocks; what exists already is left alone.
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    if blocker.is_none() {
        if let Some(class) = desired_class {
            ctx.writer.apply(&classes_api, class).await?;
        }
        let pv_api: Api<PersistentVolume> = Api::all(client.clone());
        for pv in desired_volumes {
            ctx.writer.apply(&pv_api, pv).await?;
        }
        ctx.writer
            .apply(
                &Api::<Service>::namespaced(client.clone(), &namespace),
                resources::service(rdc),
            )
            .await?;
        let sts = resources::statefulset(rdc, &jurisdiction, keys, &class_name);
        ctx.writer.apply(&statefulsets, sts).await?;
        let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &namespace);
        match resources::network_policy(rdc) {
            Some(policy) => ctx.writer.apply(&policies, policy).await?,
            None => ctx.writer.delete_if_exists(&policies, &name).await?,
        };
    }

    // Observe what is really there, and audit it.
    let (pods, claims) = pods_and_claims(client, &namespace, &name).await?;
    let classes: Vec<StorageClass> = cloned(ctx.classes.state());
    let observed = Observed {
        pods: &pods,
        claims: &claims,
        volumes: &volumes,
        nodes: &nodes,
        classes: &classes,
    };
    let audit = residency::audit(rdc, &jurisdiction, keys, &observed);
    let evictions_blocked = match rdc.spec.enforcement {
        Enforcement::Enforce => enforce(rdc, &audit, &pods, ctx).await?,
        Enforcement::Audit => false,
    };

    let replicas = rdc.spec.workload.replicas;
    let bound_claims = (0..replicas)
        .filter(|ordinal| {
            let claim_name = resources::claim_name(rdc, *ordinal);
            claims.iter().any(|c| {
                c.metadata.name.as_deref() == Some(claim_name.as_str())
                    && c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
            })
        })
        .count();
    let ready_replicas = statefulsets
        .get_opt(&name)
        .await?
        .and_then(|sts| sts.status)
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let storage_hint = match rdc.spec.storage.mode {
        StorageMode::Local => "local volumes bind when their pods are scheduled".to_owned(),
        StorageMode::Dynamic => {
            format!("waiting for the provisioner of StorageClass {class_name} to create volumes")
        }
    };
    let observation = Observation {
        generation: rdc.meta().generation,
        blocker: blocker.as_ref(),
        eligible_nodes: eligible.len(),
        replicas,
        ready_replicas,
        bound_claims: i32::try_from(bound_claims).unwrap_or(i32::MAX),
        storage_hint: &storage_hint,
        audit: &audit,
        kubelet_settable_keys: &keys.kubelet_settable(),
    };
    write_status(rdc, &observation, ctx).await?;
    // A disruption budget that refuses an eviction today may allow it in a moment.
    Ok(Action::requeue(if evictions_blocked {
        EVICTION_RETRY
    } else {
        REAUDIT
    }))
}

/// Enforce mode: evicts, through the Eviction API so disruption budgets hold, every pod that
/// runs on a node outside the jurisdiction. Its StatefulSet recreates it, and the required node
/// affinity lets it start only inside; a pod whose volume is pinned outside therefore cannot start
/// anywhere, which is the point: data is never moved, a person must act on the violation.
/// Returns whether a disruption budget refused an eviction.
async fn enforce(
    rdc: &RegionalDataCenter,
    audit: &residency::Audit,
    pods: &[Pod],
    ctx: &Context,
) -> Result<bool, Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &rdc.namespace().unwrap_or_default());
    let mut blocked = false;
    for finding in audit
        .findings
        .iter()
        .filter(|f| f.reason == ViolationReason::NodeOutsideJurisdiction)
    {
        let Some(pod) = pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(finding.name.as_str()))
        else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        ctx.writer.metrics().write("create", "Eviction");
        match api.evict(&finding.name, &EvictParams::default()).await {
            Ok(_) => {
                tracing::info!(rdc = %ObjectRef::from(rdc), pod = %finding.name, "evicted a pod outside the jurisdiction");
                let message = format!("evicted: {}", finding.message);
                publish(rdc, EventType::Normal, "Evicted", &message, ctx).await;
            }
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(kube::Error::Api(status)) if status.code == 429 => {
                tracing::warn!(rdc = %ObjectRef::from(rdc), pod = %finding.name, "a disruption budget refuses the eviction for now");
                blocked = true;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(blocked)
}

/// The pods and claims of the RegionalDataCenter `name`, found by their label.
pub async fn pods_and_claims(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(Vec<Pod>, Vec<PersistentVolumeClaim>), kube::Error> {
    let selector = ListParams::default().labels(&format!("{RDC_LABEL}={name}"));
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&selector)
        .await?
        .items;
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .list(&selector)
        .await?
        .items;
    Ok((pods, claims))
}

/// Derives the status and writes it only if it says something new.
async fn write_status(
    rdc: &RegionalDataCenter,
    observation: &Observation<'_>,
    ctx: &Context,
) -> Result<(), Error> {
    let new_status = derive_status(observation, rdc.status.as_ref(), jiff::Timestamp::now());
    if needs_write(rdc.status.as_ref(), &new_status) {
        let api: Api<RegionalDataCenter> =
            Api::namespaced(ctx.client.clone(), &rdc.namespace().unwrap_or_default());
        ctx.writer
            .apply_status(&api, &rdc.name_any(), &new_status)
            .await?;
        announce(rdc, rdc.status.as_ref(), &new_status, ctx).await;
        announce_violations(rdc, rdc.status.as_ref(), &new_status, ctx).await;
    }
    Ok(())
}

fn ready_condition(status: Option<&RegionalDataCenterStatus>) -> Option<(String, String, String)> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Raises an Event when readiness changes: a Warning with the reason it is not ready, a Normal
/// one when it becomes ready. Each change is announced once, not at every reconcile.
async fn announce(
    rdc: &RegionalDataCenter,
    old: Option<&RegionalDataCenterStatus>,
    new: &RegionalDataCenterStatus,
    ctx: &Context,
) {
    let (Some((status, reason, message)), old) = (ready_condition(Some(new)), ready_condition(old))
    else {
        return;
    };
    if old
        .as_ref()
        .is_some_and(|(s, r, _)| *s == status && *r == reason)
    {
        return;
    }
    // Violations are announced one by one, by announce_violations.
    let waiting = [
        "ClaimsPending",
        "ReplicasNotReady",
        "NothingPlaced",
        "Violated",
        "Unverifiable",
    ];
    if status == "True" {
        publish(rdc, EventType::Normal, "Ready", &message, ctx).await;
    } else if !waiting.contains(&reason.as_str()) {
        publish(rdc, EventType::Warning, &reason, &message, ctx).await;
    }
}

/// A Warning Event for each new violation, a Normal one for each that cleared.
async fn announce_violations(
    rdc: &RegionalDataCenter,
    old: Option<&RegionalDataCenterStatus>,
    new: &RegionalDataCenterStatus,
    ctx: &Context,
) {
    let old = old.map(|s| s.violations.as_slice()).unwrap_or_default();
    let same =
        |a: &Violation, b: &Violation| a.kind == b.kind && a.name == b.name && a.reason == b.reason;
    for violation in new
        .violations
        .iter()
        .filter(|v| !old.iter().any(|o| same(o, v)))
    {
        publish(
            rdc,
            EventType::Warning,
            &violation.reason,
            &violation.message,
            ctx,
        )
        .await;
    }
    for cleared in old
        .iter()
        .filter(|o| !new.violations.iter().any(|v| same(o, v)))
    {
        let message = format!(
            "{} {} is no longer {}",
            cleared.kind, cleared.name, cleared.reason
        );
        publish(rdc, EventType::Normal, "ViolationCleared", &message, ctx).await;
    }
}

async fn publish(
    rdc: &RegionalDataCenter,
    type_: EventType,
    reason: &str,
    message: &str,
    ctx: &Context,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(message.chars().take(1000).collect()),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    ctx.writer.metrics().write("create", "Event");
    if let Err(err) = ctx.recorder.publish(&event, &rdc.object_ref(&())).await {
        tracing::warn!(rdc = %ObjectRef::from(rdc), error = %err, "cannot publish an event");
    }
}
