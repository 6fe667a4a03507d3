//! Observe: what the caches hold of a data centre's objects, in the Kubernetes types the audit
//! reads.

use super::*;

/// A few cached objects in the Kubernetes types, with the fields the cache kept (the audit reads
/// them as slices).
pub(super) fn owned<C: serde::Serialize, K: serde::de::DeserializeOwned>(
    objects: Vec<Arc<C>>,
) -> Result<Vec<K>, serde_json::Error> {
    objects
        .iter()
        .map(|object| cached::full(object.as_ref()))
        .collect()
}

/// The volumes the audit reads: the data centre's own (by label or claim reference) and any
/// volume one of its claims is bound to, whatever that volume says.
pub(super) fn volumes_of(
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

/// The pods and claims of the data centre's namespace that `spec.members` selects, and the
/// claims those pods mount: what the audit may cover (none without spec.members).
pub(super) fn member_candidates(
    rdc: &RegionalDataCenter,
    caches: &super::super::Caches,
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

/// The first pod (by name) the scheduler reports it cannot place, with the scheduler's message.
pub(super) fn unschedulable_pod(pods: &[Pod]) -> Option<String> {
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
pub(super) fn latest_refusal(uid: &str, refusals: &Store<CoreEvent>) -> Option<String> {
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

/// What the caches hold that bears on one data centre, owned for one reconcile: its own pods,
/// claims and volumes, what its `spec.members` may cover, the nodes and classes, and the copies.
pub(super) struct Seen {
    pub(super) pods: Vec<Pod>,
    pub(super) member_pods: Vec<Pod>,
    claims: Vec<PersistentVolumeClaim>,
    member_claims: Vec<PersistentVolumeClaim>,
    volumes: Vec<Arc<PersistentVolume>>,
    nodes: Vec<Arc<Node>>,
    classes: Vec<Arc<StorageClass>>,
    snapshots: Vec<Arc<crate::copies::VolumeSnapshot>>,
    snapshot_classes: Vec<Arc<crate::copies::VolumeSnapshotClass>>,
    backups: Vec<Arc<crate::copies::Backup>>,
    schedules: Vec<Arc<crate::copies::Schedule>>,
    storage_locations: Vec<Arc<crate::copies::BackupStorageLocation>>,
    snapshot_locations: Vec<Arc<crate::copies::VolumeSnapshotLocation>>,
}

impl Seen {
    /// As the audit reads it.
    pub(super) fn observed(&self) -> Observed<'_> {
        Observed {
            pods: &self.pods,
            claims: &self.claims,
            member_pods: &self.member_pods,
            member_claims: &self.member_claims,
            volumes: &self.volumes,
            nodes: &self.nodes,
            classes: &self.classes,
            snapshots: &self.snapshots,
            snapshot_classes: &self.snapshot_classes,
            backups: &self.backups,
            schedules: &self.schedules,
            storage_locations: &self.storage_locations,
            snapshot_locations: &self.snapshot_locations,
        }
    }
}

/// Observes, from the caches, what is really there for `rdc`, whose own claims and volumes
/// provisioning found.
pub(super) fn observe(
    rdc: &RegionalDataCenter,
    claims: &[PersistentVolumeClaim],
    own_volumes: Vec<Arc<PersistentVolume>>,
    ctx: &Context,
) -> Result<Seen, serde_json::Error> {
    let caches = &ctx.caches;
    let namespace = rdc.namespace();
    let pods: Vec<Pod> = owned(
        caches
            .pods_by_owner
            .objects(&caches.pods, &ObjectRef::from(rdc)),
    )?;
    let (member_pods, member_claims) = member_candidates(rdc, caches)?;
    let all_claims: Vec<PersistentVolumeClaim> =
        claims.iter().chain(&member_claims).cloned().collect();
    let volumes = volumes_of(own_volumes, &all_claims, &caches.volumes)?;
    Ok(Seen {
        pods,
        member_pods,
        claims: claims.to_vec(),
        member_claims,
        volumes,
        nodes: caches.nodes.state(),
        classes: caches.classes.state(),
        snapshots: caches
            .snapshots
            .state()
            .into_iter()
            .filter(|s| s.metadata.namespace == namespace)
            .collect(),
        snapshot_classes: caches.snapshot_classes.state(),
        backups: caches.backups.state(),
        schedules: caches.schedules.state(),
        storage_locations: caches.storage_locations.state(),
        snapshot_locations: caches.snapshot_locations.state(),
    })
}

/// Where its own workload stands: replicas ready, claims bound, pods missing and why.
pub(super) struct WorkloadState {
    pub(super) ready_replicas: i32,
    pub(super) bound_claims: i32,
    pub(super) pods_refused: Option<String>,
    pub(super) unschedulable: Option<String>,
    pub(super) missing_pods: Vec<String>,
}

pub(super) fn workload_state(
    rdc: &RegionalDataCenter,
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
    caches: &super::super::Caches,
) -> WorkloadState {
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
        .get(&ObjectRef::new(&rdc.name_any()).within(&rdc.namespace().unwrap_or_default()));
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
    let missing_pods = (0..replicas)
        .map(|ordinal| resources::pod_name(rdc, ordinal))
        .filter(|name| !pods.iter().any(|p| p.metadata.name.as_ref() == Some(name)))
        .collect();
    WorkloadState {
        ready_replicas,
        bound_claims: i32::try_from(bound_claims).unwrap_or(i32::MAX),
        pods_refused,
        unschedulable: unschedulable_pod(pods),
        missing_pods,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_pod_the_scheduler_cannot_place_is_named_with_its_message() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "vehicle-data-1"},
            "status": {"conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": " 0/3 nodes are available "}]}
        }))
        .expect("a pod");
        let mut other = pod.clone();
        other.metadata.name = Some("vehicle-data-2".to_owned());
        let placed: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "vehicle-data-0"},
            "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}
        }))
        .expect("a pod");
        assert_eq!(
            unschedulable_pod(&[other, placed.clone(), pod]).as_deref(),
            Some("pod vehicle-data-1 cannot be scheduled: 0/3 nodes are available")
        );
        assert_eq!(unschedulable_pod(&[placed]), None);
    }
}
