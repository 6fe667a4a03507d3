//! Apply: a data centre's volumes (own, retained, adopted) and its children, each against its
//! live object.

use super::*;

/// The volumes of a data centre's name, split: its own, and those retained from earlier ones.
pub(super) struct Volumes {
    pub(super) own: Vec<Arc<PersistentVolume>>,
    /// Names, sorted.
    pub(super) retained: Vec<String>,
}

/// Its own volumes, and the names of those retained from an earlier data centre of its name,
/// which keep their data and stay out of this one's: unless a claim that one kept
/// (retainOnDelete) still holds them, which this one's replicas mount, or an admin gave them to
/// this one (by that one's UID on the namespace), which frees them for its claims.
pub(super) async fn volumes_of_this_one(
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
pub(super) async fn release_to_its_claim_name(
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

/// Applies every child, each compared with its live object in the watch caches. A change the
/// API server refuses is returned as a blocker for the status, after the other children were
/// applied; any other error ends the reconcile.
pub(super) async fn apply_children(
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
pub(super) struct Applier<'a> {
    pub(super) rdc: &'a RegionalDataCenter,
    pub(super) ctx: &'a Context,
    /// The admission policy that keeps people from changing managed objects here, if any.
    pub(super) managed_policy: Option<&'a str>,
    pub(super) refused: &'a mut Option<Blocker>,
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

/// Observes its own claims and volumes, plans (pure) what it declares and applies it, unless
/// something blocks. None when its namespace is being deleted: nothing more is created in it.
pub(super) async fn provision(
    rdc: &RegionalDataCenter,
    jurisdiction: &Jurisdiction,
    guard: &Assessment,
    ctx: &Context,
) -> Result<Option<Provisioned>, Error> {
    let (name, namespace) = (rdc.name_any(), rdc.namespace().unwrap_or_default());
    let keys = &ctx.settings.keys;
    let caches = &ctx.caches;
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
    let eligible = residency::eligible_nodes(&nodes, jurisdiction, keys);
    // A data centre that only covers members has nothing of its own to declare.
    let Some(own) = rdc.own() else {
        // Claims labelled with it (by an admin) are still its own, and audited as such.
        let provisioned = Provisioned {
            claims,
            own_volumes,
            retained_volumes,
            ..Provisioned::default()
        };
        return Ok(Some(provisioned));
    };
    let Declaration {
        class_name,
        children,
        blocker,
    } = declare(
        own,
        jurisdiction,
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
            Err(error) if error.namespace_terminating() => return Ok(None),
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
    Ok(Some(provisioned))
}
