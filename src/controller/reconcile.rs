//! One reconcile: validate -> build (pure) -> apply -> observe -> audit (pure) -> status.

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

/// A few cached objects in the Kubernetes types, with the fields the cache kept (the audit reads
/// them as slices).
fn owned<C: serde::Serialize, K: serde::de::DeserializeOwned>(
    objects: Vec<Arc<C>>,
) -> Result<Vec<K>, serde_json::Error> {
    objects
        .iter()
        .map(|object| cached::full(object.as_ref()))
        .collect()
}

/// The volumes the audit reads: the data centre's own (by label or claim reference) and any
/// volume one of its claims is bound to, whatever that volume says.
fn volumes_of(
    mut own: Vec<Arc<PersistentVolume>>,
    claims: &[PersistentVolumeClaim],
    cache: &Store<CachedVolume>,
) -> Result<Vec<Arc<PersistentVolume>>, serde_json::Error> {
    for claim in claims {
        let Some(name) = claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) else {
            continue;
        };
        if !own
            .iter()
            .any(|pv| pv.metadata.name.as_deref() == Some(name))
            && let Some(pv) = cache.get(&ObjectRef::new(name))
        {
            own.push(Arc::new(cached::full(pv.as_ref())?));
        }
    }
    Ok(own)
}

/// Every child the operator declares for one RegionalDataCenter. The apply step destructures it
/// whole, so a child added here cannot be forgotten there.
struct Children {
    class: Option<StorageClass>,
    volumes: Vec<PersistentVolume>,
    service: Service,
    statefulset: StatefulSet,
    network_policy: Option<NetworkPolicy>,
}

/// The storage class claims use, the children, and what keeps them from being applied.
struct Declaration {
    class_name: String,
    children: Children,
    blocker: Option<Blocker>,
}

/// What a data centre already has in the cluster, which its declaration keeps.
#[derive(Default)]
struct Existing<'a> {
    /// Its own volumes.
    volumes: &'a [Arc<PersistentVolume>],
    /// The access modes its StatefulSet's claims were made with, if it has one.
    claim_access_modes: Option<Vec<String>>,
}

/// Build (pure): what the RegionalDataCenter asks for in the cluster as it is, and what the
/// schema could not judge. `load` counts domicile volumes per node, asked only when a new volume
/// is to be placed.
fn declare(
    own: Own<'_>,
    jurisdiction: &Jurisdiction,
    settings: &super::Settings,
    eligible: &[&Node],
    existing: Existing<'_>,
    load: impl FnOnce() -> BTreeMap<String, usize>,
    class_exists: impl Fn(&str) -> bool,
) -> Declaration {
    let rdc = own.rdc;
    let Existing {
        volumes,
        claim_access_modes,
    } = existing;
    let keys = &settings.keys;
    let name = rdc.name_any();
    let namespace = rdc.namespace().unwrap_or_default();
    let mut blocker = None;
    let mut class = None;
    let mut local_volumes = Vec::new();
    // One pod per claim, where domicile chooses the storage (a class of the tenant's may not
    // offer it); a StatefulSet made before keeps what its claims were made with.
    let access_modes = claim_access_modes.unwrap_or_else(|| {
        let mode = match (own.storage.mode, &own.storage.storage_class_name) {
            (StorageMode::Dynamic, Some(_)) => "ReadWriteOnce",
            _ => resources::DATA_ACCESS_MODE,
        };
        vec![mode.to_owned()]
    });
    let class_name = match (own.storage.mode, &own.storage.storage_class_name) {
        (StorageMode::Dynamic, Some(existing)) => {
            if !class_exists(existing) {
                blocker = Some(Blocker {
                    reason: Reason::StorageClassNotFound,
                    message: format!(
                        "spec.storage.storageClassName names StorageClass {existing:?}, which does not exist; \
                         create it, or remove storageClassName to use the class domicile manages"
                    ),
                });
            }
            existing.clone()
        }
        (StorageMode::Dynamic, None) => {
            let managed =
                resources::managed_storage_class(jurisdiction, keys, &settings.provisioner);
            let class_name = managed.name_any();
            class = Some(managed);
            class_name
        }
        (StorageMode::Local, _) => {
            let local = resources::local_storage_class(jurisdiction, keys);
            let class_name = local.name_any();
            let existing: Vec<PersistentVolume> = volumes
                .iter()
                .filter(|pv| {
                    pv.labels().get(RDC_LABEL) == Some(&name)
                        && pv.labels().get(resources::RDC_NAMESPACE_LABEL) == Some(&namespace)
                })
                .map(|pv| (**pv).clone())
                .collect();
            // How many volumes each node holds matters only to place a new one.
            let missing = existing.len() < usize::try_from(own.workload.replicas).unwrap_or(0);
            let load = if missing { load() } else { BTreeMap::new() };
            let plan = resources::local_volumes(
                own,
                &class_name,
                eligible,
                &existing,
                &load,
                &settings.local_root,
                &access_modes,
            );
            if plan.unplaced > 0 {
                blocker = Some(Blocker {
                    reason: Reason::InsufficientEligibleNodes,
                    message: format!(
                        "Local mode puts each replica's volume on a node of its own: {} replicas need {} nodes \
                         labelled {}={}, but {} are; label more nodes or lower spec.workload.replicas",
                        own.workload.replicas,
                        own.workload.replicas,
                        keys.jurisdiction,
                        jurisdiction,
                        eligible.len()
                    ),
                });
            }
            class = Some(local);
            local_volumes = plan.volumes;
            class_name
        }
    };
    if eligible.is_empty() {
        blocker = Some(no_eligible_nodes_blocker(jurisdiction, keys));
    }
    let children = Children {
        class,
        volumes: local_volumes,
        service: resources::service(rdc, own.workload.port),
        statefulset: resources::statefulset(own, jurisdiction, keys, &class_name, &access_modes),
        network_policy: resources::network_policy(rdc, &settings.dns),
    };
    Declaration {
        class_name,
        children,
        blocker,
    }
}

/// The volumes of a data centre's name, split: its own, and those retained from earlier ones.
struct Volumes {
    own: Vec<Arc<PersistentVolume>>,
    /// Names, sorted.
    retained: Vec<String>,
}

/// Its own volumes, and the names of those retained from an earlier data centre of its name,
/// which keep their data and stay out of this one's: unless a claim that one kept
/// (retainOnDelete) still holds them, which this one's replicas mount, or an admin gave them to
/// this one (by that one's UID on the namespace), which frees them for its claims.
async fn volumes_of_this_one(
    rdc: &RegionalDataCenter,
    claims: &[PersistentVolumeClaim],
    ctx: &Context,
) -> Result<Volumes, Error> {
    let caches = &ctx.caches;
    let owner = ObjectRef::from(rdc);
    let claim_uids: Vec<&str> = claims
        .iter()
        .filter_map(|c| c.metadata.uid.as_deref())
        .collect();
    let (mut own, retained): (Vec<Arc<PersistentVolume>>, Vec<Arc<PersistentVolume>>) =
        owned(caches.volumes_by_owner.objects(&caches.volumes, &owner))?
            .into_iter()
            .map(Arc::new)
            .partition(|pv: &Arc<PersistentVolume>| {
                let claimed = pv
                    .spec
                    .as_ref()
                    .and_then(|s| s.claim_ref.as_ref()?.uid.as_deref())
                    .is_some_and(|uid| claim_uids.contains(&uid));
                claimed || resources::of_this_incarnation(&pv.metadata, rdc)
            });
    let adopt_from = caches
        .namespaces
        .get(&ObjectRef::new(&rdc.namespace().unwrap_or_default()))
        .and_then(|ns| ns.labels().get(ADOPT_LABEL).cloned());
    let (adopted, retained) = resources::adoptable(retained, &own, adopt_from.as_deref());
    for pv in &adopted {
        release_to_its_claim_name(pv, &claim_uids, ctx).await?;
    }
    own.extend(adopted);
    let mut retained: Vec<String> = retained.iter().map(|pv| pv.name_any()).collect();
    retained.sort();
    Ok(Volumes { own, retained })
}

/// The namespace label by which an admin gives a data centre the volumes retained from an earlier
/// one of its name: the value is that one's UID (the RetainedVolumes Event names it).
pub const ADOPT_LABEL: &str = "domicile.dev/adopt-volumes-of";

/// Frees an adopted volume that still names the claim of an earlier data centre (by that claim's
/// UID) so that the claim of the same name this one's replica makes binds to it.
async fn release_to_its_claim_name(
    pv: &PersistentVolume,
    claim_uids: &[&str],
    ctx: &Context,
) -> Result<(), Error> {
    let stale = pv
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.as_ref()?.uid.as_deref())
        .is_some_and(|uid| !claim_uids.contains(&uid));
    if stale {
        let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
        let patch =
            serde_json::json!({"spec": {"claimRef": {"uid": null, "resourceVersion": null}}});
        ctx.writer.merge_patch(&api, &pv.name_any(), patch).await?;
        tracing::info!(volume = %pv.name_any(), "an adopted volume is free for its claim again");
    }
    Ok(())
}

/// An object of a child's name that the operator did not make: it is never adopted, so the data
/// centre waits for a person.
fn name_taken(kind: &str, namespace: &str, name: &str, holder: &str) -> Blocker {
    let (place, flag) = if namespace.is_empty() {
        (String::new(), String::new())
    } else {
        (
            format!(" in namespace {namespace}"),
            format!(" -n {namespace}"),
        )
    };
    Blocker {
        reason: Reason::NameTaken,
        message: format!(
            "{kind} {name} already exists{place} and was not made by domicile for this \
             RegionalDataCenter ({holder}); domicile never adopts an object it did not make, nor \
             merges its declaration into one. If it is not needed, delete it (kubectl delete {} \
             {name}{flag}); otherwise create the RegionalDataCenter under another name",
            kind.to_lowercase()
        ),
    }
}

fn no_eligible_nodes_blocker(
    jurisdiction: &Jurisdiction,
    keys: &resources::NodeLabelKeys,
) -> Blocker {
    let mut selector = format!("{}={}", keys.jurisdiction, jurisdiction.country());
    if let Some(sub) = jurisdiction.subdivision() {
        selector.push_str(&format!(" {}={sub}", keys.subdivision));
    }
    Blocker {
        reason: Reason::NoEligibleNodes,
        message: format!(
            "no node is labelled for jurisdiction {jurisdiction}; label the nodes that are in it: kubectl label node <node> {selector}"
        ),
    }
}

/// What a person does when the API server refuses to update a child.
/// `managed_policy` names the admission policy that keeps people from deleting managed objects,
/// and the namespace label that exempts from it, when one is in force for the namespace: the
/// steps then say how to step past it for a moment.
fn refused_update(
    kind: &str,
    namespace: &str,
    name: &str,
    message: &str,
    managed_policy: Option<(&str, &str)>,
) -> Blocker {
    let steps = match kind {
        "StatefulSet" => format!(
            "a StatefulSet's volumeClaimTemplates cannot change; to take the new declaration, delete \
             the StatefulSet but not its pods and claims (kubectl delete statefulset {name} -n {namespace} \
             --cascade=orphan) and domicile recreates it; existing claims keep their data and their size"
        ),
        "PersistentVolume" => format!(
            "a volume's path and node cannot change; inspect it with kubectl get persistentvolume {name} -o yaml. \
             If it is not the volume domicile made, move its data off it, delete it, and domicile recreates it"
        ),
        _ => format!(
            "inspect it with kubectl get {} {name} -n {namespace} -o yaml; delete it and domicile recreates it as declared",
            kind.to_lowercase()
        ),
    };
    let exemption = managed_policy.map_or_else(String::new, |(policy, exempt)| {
        format!(
            " (the admission policy {policy} refuses that to anyone but the operator: first \
             kubectl label namespace {namespace} {exempt}=exempt, and after it \
             kubectl label namespace {namespace} {exempt}-)"
        )
    });
    Blocker {
        reason: Reason::UpdateRefused,
        message: format!(
            "the API server refuses to update {kind} {name}: {message}; {steps}{exemption}"
        ),
    }
}

/// Applies every child, each compared with its live object in the watch caches. A change the
/// API server refuses is returned as a blocker for the status, after the other children were
/// applied; any other error ends the reconcile.
async fn apply_children(
    rdc: &RegionalDataCenter,
    children: Children,
    managed_policy: Option<&str>,
    ctx: &Context,
) -> Result<Option<Blocker>, Error> {
    let Children {
        class,
        volumes,
        service,
        statefulset,
        network_policy,
    } = children;
    let caches = &ctx.caches;
    let client = &ctx.client;
    let namespace = rdc.namespace().unwrap_or_default();
    let mut refused = None;
    let mut applier = Applier {
        rdc,
        ctx,
        managed_policy,
        refused: &mut refused,
    };
    if let Some(class) = class {
        let declared = class.clone();
        applier
            .apply(Api::all(client.clone()), class, &caches.classes)
            .await?;
        // Declared to the claims policy before the StatefulSet's claims ask for it.
        if let Some(list) = &ctx.declared
            && let Err(err) = list.sync(ctx, Some(&declared)).await
        {
            tracing::error!(rdc = %ObjectRef::from(rdc), error = %err, "cannot declare the StorageClass to the claims admission policy; its claims are refused until it is");
        }
    }
    for pv in volumes {
        applier
            .apply(Api::all(client.clone()), pv, &caches.volumes)
            .await?;
    }
    applier
        .apply(
            Api::namespaced(client.clone(), &namespace),
            service,
            &caches.services,
        )
        .await?;
    applier
        .apply(
            Api::namespaced(client.clone(), &namespace),
            statefulset,
            &caches.statefulsets,
        )
        .await?;
    match network_policy {
        Some(policy) => {
            applier
                .apply(
                    Api::namespaced(client.clone(), &namespace),
                    policy,
                    &caches.network_policies,
                )
                .await?;
        }
        None => {
            let fence =
                ObjectRef::new(&rdc.name_any()).within(&rdc.namespace().unwrap_or_default());
            let live = caches.network_policies.get(&fence);
            let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &namespace);
            ctx.writer.delete(&policies, live.as_deref()).await?;
        }
    }
    Ok(refused)
}

/// Applies the children of one data centre, and keeps the first update the API server refuses.
struct Applier<'a> {
    rdc: &'a RegionalDataCenter,
    ctx: &'a Context,
    /// The admission policy that keeps people from changing managed objects here, if any.
    managed_policy: Option<&'a str>,
    refused: &'a mut Option<Blocker>,
}

impl Applier<'_> {
    /// Applies one child against its live object in `cache` (of the child's type, or of the
    /// cache's own type for it), and reports what that did: an Event for a restored child; a
    /// refusal kept for the status.
    async fn apply<K, L>(&mut self, api: Api<K>, desired: K, cache: &Store<L>) -> Result<(), Error>
    where
        K: Resource<DynamicType = ()>
            + k8s_openapi::Resource
            + Clone
            + std::fmt::Debug
            + serde::Serialize
            + serde::de::DeserializeOwned,
        L: Resource<DynamicType = ()> + Clone + serde::Serialize,
    {
        let (rdc, ctx) = (self.rdc, self.ctx);
        let kind = <K as k8s_openapi::Resource>::KIND;
        let child = desired.name_any();
        let key = ObjectRef::<L>::new(&child);
        let key = match desired.namespace() {
            Some(namespace) => key.within(&namespace),
            None => key,
        };
        let live = cache.get(&key);
        let desired_namespace = desired.namespace();
        match ctx.writer.apply(&api, desired, live.as_deref()).await {
            Ok(Applied::Restored {
                field,
                manager,
                complete,
            }) => {
                // A removed field belongs to nobody, so no manager may be on record.
                let manager = manager.map_or_else(
                    || "a field manager the API server does not record".to_owned(),
                    |m| format!("field manager {m:?}"),
                );
                let message = if complete {
                    format!(
                        "{kind} {child}: {field} was changed by {manager}; restored to what domicile declares"
                    )
                } else {
                    format!(
                        "{kind} {child}: {field} was changed by {manager}; domicile applied its declaration \
                     again, but fields another manager owns remain; remove them, and edit the \
                     RegionalDataCenter instead"
                    )
                };
                tracing::warn!(rdc = %ObjectRef::from(rdc), %kind, %child, %field, %manager, complete, "a child was changed by someone else");
                let reason = if complete {
                    "ChildRestored"
                } else {
                    "ChildNotRestored"
                };
                // Events of one reason on one resource fold into a series that keeps the first
                // message; each restored field gets its own action, so none is folded away.
                let action = format!("Restore {kind} {field}");
                publish_as(
                    rdc,
                    EventType::Warning,
                    reason,
                    &message,
                    &action,
                    None,
                    ctx,
                );
                Ok(())
            }
            Ok(Applied::Taken { holder }) => {
                let namespace = desired_namespace.unwrap_or_default();
                tracing::warn!(rdc = %ObjectRef::from(rdc), %kind, %child, %holder, "an object of a child's name is not the operator's");
                self.refused
                    .get_or_insert_with(|| name_taken(kind, &namespace, &child, &holder));
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(Error::Write {
                source: kube::Error::Api(status),
                ..
            }) if status.code == 422 => {
                let namespace = rdc.namespace().unwrap_or_default();
                tracing::warn!(rdc = %ObjectRef::from(rdc), %kind, message = %status.message, "the API server refuses an update");
                self.refused.get_or_insert_with(|| {
                    refused_update(
                        kind,
                        &namespace,
                        &child,
                        &status.message,
                        self.managed_policy
                            .map(|policy| (policy, self.ctx.settings.exempt_label.as_str())),
                    )
                });
                Ok(())
            }
            Err(err) => Err(err),
        }
    }
}

async fn provision_and_audit(rdc: &RegionalDataCenter, ctx: &Context) -> Result<Action, Error> {
    let name = rdc.name_any();
    let namespace = rdc.namespace().unwrap_or_default();
    let keys = &ctx.settings.keys;
    let caches = &ctx.caches;

    let jurisdiction = match Jurisdiction::parse(&rdc.spec.jurisdiction) {
        Ok(jurisdiction) => jurisdiction,
        Err(err) => {
            // Only reachable when the CRD in the cluster is older than this operator.
            let blocker = Blocker {
                reason: Reason::InvalidJurisdiction,
                message: format!(
                    "spec.jurisdiction: {err}; install the current CRD (kubectl apply -f crds/)"
                ),
            };
            let nothing = residency::Audit {
                placements: vec![],
                copies: vec![],
                findings: vec![],
                residency: Residency::Pending,
            };
            let observation = Observation {
                generation: rdc.meta().generation,
                blocker: Some(&blocker),
                replicas: rdc.replicas(),
                ready_replicas: 0,
                bound_claims: 0,
                storage_hint: "",
                audit: &nothing,
                kubelet_settable_keys: &ctx.settings.keys.kubelet_settable(),
                refused: None,
                pods_refused: None,
                unschedulable: None,
                eviction_blocked: None,
                retained_volumes: &[],
                missing_pods: &[],
                guard: None,
            };
            return Ok(match write_status(rdc, &observation, ctx).await? {
                Some(deferred) => Action::requeue(deferred),
                None => Action::await_change(),
            });
        }
    };

    // The namespace is labelled, where that is asked for, before any pod is created in it.
    let guard = guard_namespace(rdc, &jurisdiction, ctx).await?;

    // Shared references into the caches: nothing of the cluster is copied, and of pods, claims
    // and volumes only this data centre's are looked at.
    let owner = ObjectRef::from(rdc);
    let nodes = caches.nodes.state();
    let claims: Vec<PersistentVolumeClaim> =
        owned(caches.claims_by_owner.objects(&caches.claims, &owner))?;
    let Volumes {
        own: own_volumes,
        retained: retained_volumes,
    } = volumes_of_this_one(rdc, &claims, ctx).await?;
    let eligible = residency::eligible_nodes(&nodes, &jurisdiction, keys);
    // A data centre that only covers members has nothing of its own to declare.
    let Some(own) = rdc.own() else {
        // Claims labelled with it (by an admin) are still its own, and audited as such.
        let provisioned = Provisioned {
            claims,
            own_volumes,
            retained_volumes,
            ..Provisioned::default()
        };
        return audit_and_report(rdc, &jurisdiction, guard, provisioned, ctx).await;
    };
    let Declaration {
        class_name,
        children,
        blocker,
    } = declare(
        own,
        &jurisdiction,
        &ctx.settings,
        &eligible,
        Existing {
            volumes: &own_volumes,
            claim_access_modes: caches
                .statefulsets
                .get(&ObjectRef::new(&name).within(&namespace))
                .and_then(|live| live.claim_access_modes()),
        },
        || {
            let volumes = caches.volumes.state();
            resources::volumes_per_node(volumes.iter().map(|pv| {
                let affinity = pv.spec.as_ref().and_then(|s| s.node_affinity.as_ref());
                (pv.labels(), affinity)
            }))
        },
        |class| caches.classes.get(&ObjectRef::new(class)).is_some(),
    );
    // Apply, unless something blocks; what exists already is left alone.
    let refused = match blocker {
        None => match apply_children(rdc, children, guard.managed_policy(), ctx).await {
            Err(error) if error.namespace_terminating() => {
                tracing::info!(rdc = %ObjectRef::from(rdc), "its namespace is being deleted; nothing more is created in it");
                return Ok(Action::await_change());
            }
            applied => applied?,
        },
        Some(_) => None,
    };

    let provisioned = Provisioned {
        claims,
        own_volumes,
        retained_volumes,
        class_name: Some(class_name),
        blocker,
        refused,
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
    /// An update of a child the API server refused.
    refused: Option<Blocker>,
}

/// Observe (from the caches), audit (pure), enforce, and write the status, the history and the
/// report.
async fn audit_and_report(
    rdc: &RegionalDataCenter,
    jurisdiction: &Jurisdiction,
    guard: Assessment,
    provisioned: Provisioned,
    ctx: &Context,
) -> Result<Action, Error> {
    let Provisioned {
        claims,
        own_volumes,
        retained_volumes,
        class_name,
        blocker,
        refused,
    } = provisioned;
    let (name, namespace) = (rdc.name_any(), rdc.namespace().unwrap_or_default());
    let keys = &ctx.settings.keys;
    let caches = &ctx.caches;
    let owner = ObjectRef::from(rdc);
    let nodes = caches.nodes.state();
    // Observe what is really there, from the caches, and audit it.
    let pods: Vec<Pod> = owned(caches.pods_by_owner.objects(&caches.pods, &owner))?;
    let (member_pods, member_claims) = member_candidates(rdc, caches)?;
    let all_claims: Vec<PersistentVolumeClaim> =
        claims.iter().chain(&member_claims).cloned().collect();
    let volumes = volumes_of(own_volumes, &all_claims, &caches.volumes)?;
    let classes = caches.classes.state();
    let snapshots: Vec<_> = caches
        .snapshots
        .state()
        .into_iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .collect();
    let snapshot_classes = caches.snapshot_classes.state();
    let (backups, schedules) = (caches.backups.state(), caches.schedules.state());
    let storage_locations = caches.storage_locations.state();
    let snapshot_locations = caches.snapshot_locations.state();
    let observed = Observed {
        pods: &pods,
        claims: &claims,
        member_pods: &member_pods,
        member_claims: &member_claims,
        volumes: &volumes,
        nodes: &nodes,
        classes: &classes,
        snapshots: &snapshots,
        snapshot_classes: &snapshot_classes,
        backups: &backups,
        schedules: &schedules,
        storage_locations: &storage_locations,
        snapshot_locations: &snapshot_locations,
    };
    let audit = residency::audit(rdc, jurisdiction, keys, &observed);
    let eviction_blocked = match rdc.spec.enforcement {
        Enforcement::Enforce => enforce(rdc, &audit, pods.iter().chain(&member_pods), ctx).await?,
        Enforcement::Audit => None,
    };

    let replicas = rdc.replicas();
    let bound_claims = (0..replicas)
        .filter(|ordinal| {
            let claim_name = resources::claim_name(rdc, *ordinal);
            claims.iter().any(|c| {
                c.metadata.name.as_deref() == Some(claim_name.as_str())
                    && c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
            })
        })
        .count();
    let statefulset = caches
        .statefulsets
        .get(&ObjectRef::new(&name).within(&namespace));
    let ready_replicas = statefulset
        .as_ref()
        .and_then(|sts| sts.ready_replicas())
        .unwrap_or(0);
    let pods_refused = statefulset.as_deref().and_then(|sts| {
        let missing = usize::try_from(replicas).unwrap_or(0) > pods.len();
        missing
            .then(|| latest_refusal(sts.metadata.uid.as_deref()?, &caches.refusals))
            .flatten()
    });
    let unschedulable = unschedulable_pod(&pods);
    let missing_pods: Vec<String> = (0..replicas)
        .map(|ordinal| resources::pod_name(rdc, ordinal))
        .filter(|name| !pods.iter().any(|p| p.metadata.name.as_ref() == Some(name)))
        .collect();
    let refused = refused.or_else(|| {
        ctx.histories.taken(rdc).then(|| {
            name_taken(
                "ResidencyHistory",
                &namespace,
                &name,
                "without the labels domicile gives the histories it keeps",
            )
        })
    });
    let storage_hint = match (rdc.storage_mode(), class_name) {
        (StorageMode::Local, _) => "local volumes bind when their pods are scheduled".to_owned(),
        (StorageMode::Dynamic, Some(class_name)) => {
            format!("waiting for the provisioner of StorageClass {class_name} to create volumes")
        }
        (StorageMode::Dynamic, None) => String::new(),
    };
    let observation = Observation {
        generation: rdc.meta().generation,
        blocker: blocker.as_ref(),
        replicas,
        ready_replicas,
        bound_claims: i32::try_from(bound_claims).unwrap_or(i32::MAX),
        storage_hint: &storage_hint,
        audit: &audit,
        kubelet_settable_keys: &keys.kubelet_settable(),
        refused: refused.as_ref(),
        pods_refused: pods_refused.as_deref(),
        unschedulable: unschedulable.as_deref(),
        eviction_blocked: eviction_blocked.as_deref(),
        retained_volumes: &retained_volumes,
        missing_pods: &missing_pods,
        guard: Some(&guard),
    };
    let before = ctx.writer.current_status(rdc);
    let deferred = write_status(rdc, &observation, ctx).await?;
    let status = ctx.writer.current_status(rdc);
    if let Some(status) = &status {
        ctx.histories.record(rdc, status, ctx).await?;
    }
    if let Some(reports) = &ctx.reports {
        reports.reconciled(&namespace, &rdc.name_any(), before != status);
    }
    // A disruption budget that refuses an eviction today may allow it in a moment; an object of
    // a child's name may be deleted without a word to the caches, which watch only the
    // operator's own.
    let taken = refused
        .as_ref()
        .is_some_and(|r| r.reason == Reason::NameTaken);
    let next = if eviction_blocked.is_some() || taken {
        BLOCKED_RETRY
    } else {
        super::backoff::spread(REAUDIT)
    };
    Ok(Action::requeue(deferred.map_or(next, |d| d.min(next))))
}

/// The pods and claims of the data centre's namespace that `spec.members` selects, and the
/// claims those pods mount: what the audit may cover (none without spec.members).
fn member_candidates(
    rdc: &RegionalDataCenter,
    caches: &super::Caches,
) -> Result<(Vec<Pod>, Vec<PersistentVolumeClaim>), serde_json::Error> {
    let Some(selector) = &rdc.spec.members else {
        return Ok((Vec::new(), Vec::new()));
    };
    let namespace = rdc.namespace();
    let in_namespace = |meta: &kube::api::ObjectMeta| meta.namespace == namespace;
    let pods: Vec<_> = caches
        .pods
        .state()
        .into_iter()
        .filter(|pod| in_namespace(&pod.metadata))
        .filter(|pod| residency::members::selects(selector, pod.metadata.labels.as_ref()))
        .collect();
    let mounted: Vec<&str> = pods.iter().flat_map(|pod| pod.claims()).collect();
    let claims: Vec<_> = caches
        .claims
        .state()
        .into_iter()
        .filter(|claim| in_namespace(&claim.metadata))
        .filter(|claim| {
            residency::members::selects(selector, claim.metadata.labels.as_ref())
                || mounted.contains(&claim.name_any().as_str())
        })
        .collect();
    Ok((owned(pods)?, owned(claims)?))
}

/// The admission guard of the data centre's namespace. When the operator labels namespaces, one
/// without the label gets its jurisdiction first, unless its data centres disagree.
async fn guard_namespace(
    rdc: &RegionalDataCenter,
    jurisdiction: &Jurisdiction,
    ctx: &Context,
) -> Result<Assessment, Error> {
    let namespace = rdc.namespace().unwrap_or_default();
    let caches = &ctx.caches;
    let mut neighbours: Vec<(String, Jurisdiction)> = caches
        .data_centers
        .state()
        .iter()
        .filter(|other| other.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|other| other.meta().deletion_timestamp.is_none() && other.uid() != rdc.uid())
        .filter_map(|other| {
            let jurisdiction = Jurisdiction::parse(&other.spec.jurisdiction).ok()?;
            Some((other.name_any(), jurisdiction))
        })
        .collect();
    neighbours.push((rdc.name_any(), jurisdiction.clone()));
    neighbours.sort_by(|a, b| a.0.cmp(&b.0));
    let mut labels = caches
        .namespaces
        .get(&ObjectRef::new(&namespace))
        .and_then(|ns| ns.metadata.labels.clone())
        .unwrap_or_default();
    let labelling = guard::Labelling::of(
        ctx.settings.label_namespaces,
        ctx.settings.label_any_namespace,
        &labels,
    );
    if labelling == guard::Labelling::Allowed
        && !labels.contains_key(NAMESPACE_LABEL)
        && let Ok(Some(code)) = guard::namespace_code(neighbours.iter().map(|(_, j)| j))
        && label_namespace(&namespace, &code, ctx).await?
    {
        labels.insert(NAMESPACE_LABEL.to_owned(), code);
    }
    let policies = caches.policies.state();
    let bindings = caches.bindings.state();
    let policies: Vec<_> = policies.iter().map(AsRef::as_ref).collect();
    let bindings: Vec<_> = bindings.iter().map(AsRef::as_ref).collect();
    Ok(guard::assess(&guard::Inputs {
        namespace: &namespace,
        namespace_labels: Some(&labels),
        jurisdiction,
        neighbours: &neighbours,
        policies: &policies,
        bindings: &bindings,
        exempt_label: &ctx.settings.exempt_label,
        labelling,
    }))
}

/// Sets the jurisdiction label of a namespace that has none; true when it was set. Never taken
/// from another manager (no force), and a namespace the operator may not label is not tried
/// again until it restarts, so a refusal costs one request, not one per reconcile.
async fn label_namespace(namespace: &str, code: &str, ctx: &Context) -> Result<bool, Error> {
    if ctx
        .unlabellable
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(namespace)
    {
        return Ok(false);
    }
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(ctx.client.clone());
    let patch = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": {NAMESPACE_LABEL: code}},
    });
    ctx.writer.metrics().write("apply", "Namespace");
    match api
        .patch(
            namespace,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&patch),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(%namespace, %code, "namespace labelled with its jurisdiction");
            Ok(true)
        }
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 403 => {
            tracing::error!(%namespace, %code, message = %status.message, "cannot label the namespace with its jurisdiction; label it by hand");
            ctx.unlabellable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(namespace.to_owned());
            Ok(false)
        }
        Err(source) => Err(Error::Write {
            verb: "apply",
            kind: "Namespace",
            object: namespace.to_owned(),
            source,
        }),
    }
}

/// The first pod (by name) the scheduler reports it cannot place, with the scheduler's message.
fn unschedulable_pod(pods: &[Pod]) -> Option<String> {
    let mut stuck: Vec<(String, String)> = pods
        .iter()
        .filter_map(|pod| {
            let condition = pod
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "PodScheduled")?;
            (condition.status == "False" && condition.reason.as_deref() == Some("Unschedulable"))
                .then(|| {
                    (
                        pod.name_any(),
                        condition.message.clone().unwrap_or_default(),
                    )
                })
        })
        .collect();
    stuck.sort();
    let (pod, message) = stuck.into_iter().next()?;
    Some(format!("pod {pod} cannot be scheduled: {}", message.trim()))
}

/// The message of the newest Event saying that the StatefulSet `uid` could not create a pod.
fn latest_refusal(uid: &str, refusals: &Store<CoreEvent>) -> Option<String> {
    refusals
        .state()
        .into_iter()
        .filter(|event| event.involved_object.uid.as_deref() == Some(uid))
        .max_by_key(|event| {
            event
                .last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or(event.event_time.as_ref().map(|t| t.0))
        })
        .and_then(|event| event.message.clone())
}

/// Enforce mode: evicts, through the Eviction API so disruption budgets hold, every pod that
/// runs on a node outside the jurisdiction. Its StatefulSet recreates it, and the required node
/// affinity lets it start only inside; a pod whose volume is pinned outside therefore cannot start
/// anywhere, which is the point: data is never moved, a person must act on the violation.
/// Returns why a disruption budget refused an eviction, naming the pod and the budget.
async fn enforce<'a>(
    rdc: &RegionalDataCenter,
    audit: &residency::Audit,
    pods: impl Iterator<Item = &'a Pod> + Clone,
    ctx: &Context,
) -> Result<Option<String>, Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &rdc.namespace().unwrap_or_default());
    let mut blocked = None;
    for finding in audit
        .findings
        .iter()
        .filter(|f| f.reason == ViolationReason::NodeOutsideJurisdiction)
    {
        let Some(pod) = pods
            .clone()
            .find(|p| p.metadata.name.as_deref() == Some(finding.name.as_str()))
        else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match ctx.writer.evict(&api, pod).await? {
            Eviction::Evicted => {
                tracing::info!(rdc = %ObjectRef::from(rdc), pod = %finding.name, "evicted a pod outside the jurisdiction");
                let message = format!("evicted: {}", finding.message);
                let evicted = related(rdc, "Pod", &finding.name);
                publish_about(rdc, EventType::Normal, "Evicted", &message, evicted, ctx);
            }
            Eviction::Gone => {}
            Eviction::Refused(why) => {
                tracing::warn!(rdc = %ObjectRef::from(rdc), pod = %finding.name, %why, "a disruption budget refuses the eviction for now");
                blocked.get_or_insert_with(|| {
                    format!(
                        "Enforce cannot evict pod {}: {why}; the pod stays outside the jurisdiction \
                         until the budget allows it (kubectl get pdb -n {} names it; relax it, or \
                         delete the pod by hand)",
                        finding.name,
                        rdc.namespace().unwrap_or_default()
                    )
                });
            }
        }
    }
    Ok(blocked)
}

/// Derives the status and writes it if it says something new. A change of progress only (see
/// `progress_only`) is held back for `PROGRESS_INTERVAL`, and the returned delay says when to
/// reconcile again to write it; any other change is written at once.
async fn write_status(
    rdc: &RegionalDataCenter,
    observation: &Observation<'_>,
    ctx: &Context,
) -> Result<Option<Duration>, Error> {
    // Against what the API server holds, which may be the operator's own write the cache has
    // not seen yet.
    let current = ctx.writer.current_status(rdc);
    let new_status = derive_status(observation, current.as_ref(), jiff::Timestamp::now());
    if needs_write(current.as_ref(), &new_status) {
        if progress_only(current.as_ref(), &new_status)
            && let Some(wait) = ctx.writer.progress_wait(rdc, PROGRESS_INTERVAL)
        {
            return Ok(Some(wait));
        }
        let api: Api<RegionalDataCenter> =
            Api::namespaced(ctx.client.clone(), &rdc.namespace().unwrap_or_default());
        ctx.writer
            .apply_status(&api, &rdc.name_any(), &new_status)
            .await?;
        tracing::info!(
            rdc = %ObjectRef::from(rdc),
            phase = ?new_status.phase,
            residency = ?new_status.residency,
            ready = new_status.ready.as_deref().unwrap_or_default(),
            "status written"
        );
        announce(rdc, current.as_ref(), &new_status, ctx);
        announce_guard(rdc, current.as_ref(), &new_status, ctx);
        announce_violations(rdc, current.as_ref(), &new_status, ctx);
        announce_retained(rdc, current.as_ref(), &new_status, ctx);
    }
    Ok(None)
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
fn announce(
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
    if status == "True" {
        publish(rdc, EventType::Normal, "Ready", &message, ctx);
    } else if !Reason::QUIET.iter().any(|quiet| quiet.as_str() == reason) {
        publish(rdc, EventType::Warning, &reason, &message, ctx);
    }
}

/// A Warning Event when the namespace's guard turns against the data centre itself: a namespace
/// of another or a wider jurisdiction, one shared with another jurisdiction's data centres, or
/// policies that are no longer the chart's.
fn announce_guard(
    rdc: &RegionalDataCenter,
    old: Option<&RegionalDataCenterStatus>,
    new: &RegionalDataCenterStatus,
    ctx: &Context,
) {
    let guarded = |status: Option<&RegionalDataCenterStatus>| {
        status?
            .conditions
            .iter()
            .find(|c| c.type_ == ADMISSION_GUARDED)
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    let Some((reason, message)) = guarded(Some(new)) else {
        return;
    };
    let wrong = [
        Standing::JurisdictionConflict,
        Standing::NamespaceJurisdictionMismatch,
        Standing::NamespaceJurisdictionWider,
        Standing::PolicyModified,
    ];
    if wrong.iter().any(|r| r.as_str() == reason)
        && guarded(old).is_none_or(|(old_reason, _)| old_reason != reason)
    {
        publish(rdc, EventType::Warning, &reason, &message, ctx);
    }
}

/// A Warning Event when volumes of an earlier data centre of this name are found: they hold its
/// data, so only a person decides what becomes of them.
fn announce_retained(
    rdc: &RegionalDataCenter,
    old: Option<&RegionalDataCenterStatus>,
    new: &RegionalDataCenterStatus,
    ctx: &Context,
) {
    let before = old
        .map(|s| s.retained_volumes.as_slice())
        .unwrap_or_default();
    if new.retained_volumes.is_empty() || new.retained_volumes == before {
        return;
    }
    let names = new.retained_volumes.join(" ");
    let namespace = rdc.namespace().unwrap_or_default();
    let message = format!(
        "{} volume(s) of an earlier RegionalDataCenter {} in namespace {namespace} were retained \
         with their data: {names}. They are not this one's (its UID differs), which never uses \
         them unless an admin says so. To delete them: kubectl delete pv {names}. To give them \
         to this one instead: kubectl label namespace {namespace} {ADOPT_LABEL}=<the earlier \
         UID, their label {}>, then delete this RegionalDataCenter with its new volumes \
         (spec.storage.retainOnDelete: false) and create it again",
        new.retained_volumes.len(),
        rdc.name_any(),
        resources::UID_LABEL,
    );
    publish(rdc, EventType::Warning, "RetainedVolumes", &message, ctx);
}

/// A Warning Event for each new violation, a Normal one for each that cleared.
fn announce_violations(
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
        publish_about(
            rdc,
            EventType::Warning,
            &violation.reason,
            &violation.message,
            related(rdc, &violation.kind, &violation.name),
            ctx,
        );
    }
    for cleared in old
        .iter()
        .filter(|o| !new.violations.iter().any(|v| same(o, v)))
    {
        let message = format!(
            "{} {} is no longer {}",
            cleared.kind, cleared.name, cleared.reason
        );
        let about = related(rdc, &cleared.kind, &cleared.name);
        publish_about(
            rdc,
            EventType::Normal,
            "ViolationCleared",
            &message,
            about,
            ctx,
        );
    }
}

/// The pod or volume an Event is about, as its related object. Events of one reason on one
/// resource fold into a series that keeps the first message, unless their related objects
/// differ: so the clearance of a volume does not hide the clearance of a pod, nor a second pod
/// outside the jurisdiction behind the first.
fn related(rdc: &RegionalDataCenter, kind: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some(kind.to_owned()),
        name: Some(name.to_owned()),
        // Pods live in the resource's namespace; volumes in none.
        namespace: (kind == "Pod").then(|| rdc.namespace()).flatten(),
        ..ObjectReference::default()
    }
}

fn publish(rdc: &RegionalDataCenter, type_: EventType, reason: &str, message: &str, ctx: &Context) {
    publish_as(rdc, type_, reason, message, "Reconcile", None, ctx);
}

fn publish_about(
    rdc: &RegionalDataCenter,
    type_: EventType,
    reason: &str,
    message: &str,
    about: ObjectReference,
    ctx: &Context,
) {
    publish_as(rdc, type_, reason, message, "Reconcile", Some(about), ctx);
}

fn publish_as(
    rdc: &RegionalDataCenter,
    type_: EventType,
    reason: &str,
    message: &str,
    action: &str,
    related: Option<ObjectReference>,
    ctx: &Context,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(message.chars().take(1000).collect()),
        action: action.chars().take(128).collect(),
        secondary: related,
    };
    ctx.announcer.announce(event, rdc.object_ref(&()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::rdc;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    #[test]
    fn a_violation_event_is_related_to_the_pod_or_volume_it_is_about() {
        let rdc = rdc("CN", 3);
        let pod = related(&rdc, "Pod", "vehicle-data-1");
        assert_eq!(pod.kind.as_deref(), Some("Pod"));
        assert_eq!(pod.name.as_deref(), Some("vehicle-data-1"));
        assert_eq!(pod.namespace.as_deref(), Some("fleet-cn"));
        let volume = related(&rdc, "PersistentVolume", "domicile-fleet-cn.vehicle-data-1");
        assert_eq!(volume.kind.as_deref(), Some("PersistentVolume"));
        assert_eq!(volume.namespace, None, "a volume is in no namespace");
        assert_ne!(pod, volume, "so the Recorder keeps their Events apart");
    }

    fn settings() -> super::super::Settings {
        super::super::Settings {
            keys: resources::NodeLabelKeys::default(),
            provisioner: "rancher.io/local-path".to_owned(),
            local_root: "/var/lib/domicile".to_owned(),
            dns: resources::DnsPeer::default(),
            concurrency: 1,
            admin_address: ([127, 0, 0, 1], 0).into(),
            label_namespaces: false,
            label_any_namespace: false,
            declared_classes: None,
            exempt_label: "domicile.dev/admission".to_owned(),
            reports: crate::report::Format::None,
        }
    }

    fn node(name: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn declared(rdc: &RegionalDataCenter, nodes: &[Node], class_exists: bool) -> Declaration {
        let eligible: Vec<&Node> = nodes.iter().collect();
        let cn = Jurisdiction::parse("CN").expect("valid");
        declare(
            rdc.own().expect("its own"),
            &cn,
            &settings(),
            &eligible,
            Existing::default(),
            BTreeMap::new,
            |_| class_exists,
        )
    }

    #[test]
    fn a_new_data_centres_claims_are_for_one_pod_and_an_old_ones_keep_theirs() {
        let nodes = [node("cn-1")];
        let eligible: Vec<&Node> = nodes.iter().collect();
        let cn = Jurisdiction::parse("CN").expect("valid");
        let modes = |live: Option<Vec<String>>| {
            let existing = Existing {
                volumes: &[],
                claim_access_modes: live,
            };
            let one = rdc("CN", 1);
            let children = declare(
                one.own().expect("its own"),
                &cn,
                &settings(),
                &eligible,
                existing,
                BTreeMap::new,
                |_| true,
            )
            .children;
            let template = children
                .statefulset
                .spec
                .expect("a spec")
                .volume_claim_templates;
            let claim = template.expect("a template")[0]
                .spec
                .clone()
                .expect("a spec");
            let volume = children.volumes[0].spec.clone().expect("a spec");
            (
                claim.access_modes.expect("modes"),
                volume.access_modes.expect("modes"),
            )
        };
        let once_pod = vec!["ReadWriteOncePod".to_owned()];
        assert_eq!(modes(None), (once_pod.clone(), once_pod));
        // Claim templates are immutable: a StatefulSet made with ReadWriteOnce keeps it, and so
        // do the volumes its new claims bind to.
        let once = vec!["ReadWriteOnce".to_owned()];
        assert_eq!(modes(Some(once.clone())), (once.clone(), once));
    }

    #[test]
    fn a_local_data_centre_declares_every_child_with_the_fence() {
        let nodes = [node("cn-1"), node("cn-2"), node("cn-3")];
        let Declaration {
            class_name,
            children,
            blocker,
        } = declared(&rdc("CN", 3), &nodes, true);
        assert_eq!(blocker, None);
        assert_eq!(class_name, "domicile-local-cn");
        assert_eq!(children.volumes.len(), 3);
        assert!(children.class.is_some());
        assert!(children.network_policy.is_some(), "fenced by default");
    }

    #[test]
    fn no_eligible_node_blocks_before_anything_else() {
        let mut dynamic = rdc("CN", 1);
        dynamic.spec.storage.as_mut().expect("its own").mode = StorageMode::Dynamic;
        dynamic
            .spec
            .storage
            .as_mut()
            .expect("its own")
            .storage_class_name = Some("missing".to_owned());
        let blocker = declared(&dynamic, &[], false).blocker.expect("blocked");
        assert_eq!(blocker.reason, Reason::NoEligibleNodes);
        assert!(blocker.message.contains("kubectl label node"));
        let blocker = declared(&dynamic, &[node("cn-1")], false)
            .blocker
            .expect("blocked");
        assert_eq!(blocker.reason, Reason::StorageClassNotFound);
    }

    #[test]
    fn local_mode_with_too_few_nodes_says_how_many_are_missing() {
        let blocker = declared(&rdc("CN", 3), &[node("cn-1")], true)
            .blocker
            .expect("blocked");
        assert_eq!(blocker.reason, Reason::InsufficientEligibleNodes);
        assert!(blocker.message.contains("3 replicas need 3 nodes"));
    }

    #[test]
    fn refused_updates_carry_the_steps_that_fix_them() {
        let refused = refused_update("StatefulSet", "fleet-cn", "vehicle-data", "Forbidden", None);
        assert_eq!(refused.reason, Reason::UpdateRefused);
        assert!(
            refused
                .message
                .contains("kubectl delete statefulset vehicle-data -n fleet-cn --cascade=orphan")
        );
        assert!(!refused.message.contains("admission"));
        let guarded = refused_update(
            "StatefulSet",
            "fleet-cn",
            "vehicle-data",
            "Forbidden",
            Some(("domicile-managed", "domicile.dev/admission")),
        );
        assert!(
            guarded.message.contains(
                "first kubectl label namespace fleet-cn domicile.dev/admission=exempt, and after it"
            ),
            "{}",
            guarded.message
        );
        let other = refused_update("Service", "fleet-cn", "vehicle-data", "Invalid", None);
        assert!(
            other
                .message
                .contains("kubectl get service vehicle-data -n fleet-cn")
        );
    }
}
