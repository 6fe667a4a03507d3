//! Which RegionalDataCenters a Node event concerns. Kubelets update their Node all the time
//! (status, heartbeats); the audit reads only a node's name and labels, so an event that changes
//! no label concerns no data centre, and a relabel concerns those with a pod or volume on the
//! node and those of the old and new jurisdiction that are not settled: a Ready data centre in
//! Local mode has every pod and every volume pinned to a node by name, so another node's labels
//! change nothing for it (in Dynamic mode a volume's node affinity may select nodes by any label,
//! the jurisdiction's included, so those are always concerned). The last labels seen are kept per
//! node, because a relabel event carries only the new ones.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::cached::{CachedPod, CachedVolume};
use crate::api::{Phase, RegionalDataCenter, StorageMode};
use crate::resources::{NodeLabelKeys, RDC_LABEL, RDC_NAMESPACE_LABEL};

type Labels = BTreeMap<String, String>;

/// How a watch event came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// Part of a (re)listing.
    Listed,
    Applied,
    Deleted,
}

/// Whom a Node event concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Concern {
    Nobody,
    /// Data centres of these countries that are not settled, and those with a pod or volume on
    /// the node.
    Jurisdictions(BTreeSet<String>),
    /// Every data centre: a node came or went, or a label any volume's node affinity may name
    /// changed.
    Everyone,
}

/// Decides from the labels last seen and now. `old` is None for a node not seen before.
pub fn concern(old: Option<&Labels>, new: &Labels, touch: Touch, keys: &NodeLabelKeys) -> Concern {
    let old = match (old, touch) {
        // The first listing of a node: every data centre is reconciled once the caches synced.
        (None, Touch::Listed) => return Concern::Nobody,
        (None, _) | (_, Touch::Deleted) => return Concern::Everyone,
        (Some(old), _) => old,
    };
    let changed: BTreeSet<&String> = old
        .iter()
        .chain(new.iter())
        .filter(|(key, _)| old.get(*key) != new.get(*key))
        .map(|(key, _)| key)
        .collect();
    if changed.is_empty() {
        return Concern::Nobody;
    }
    if changed
        .iter()
        .any(|key| **key != keys.jurisdiction && **key != keys.subdivision)
    {
        return Concern::Everyone;
    }
    let countries = [old, new]
        .into_iter()
        .filter_map(|labels| labels.get(&keys.jurisdiction).cloned())
        .collect();
    Concern::Jurisdictions(countries)
}

/// The labels last seen per node, and the routing of Node events to data centres.
#[derive(Default)]
pub struct NodeRoutes(Mutex<HashMap<String, Labels>>);

/// What routing reads besides the event.
pub struct RoutingCaches<'a> {
    pub data_centers: &'a Store<RegionalDataCenter>,
    pub pods: &'a Store<CachedPod>,
    pub volumes: &'a Store<CachedVolume>,
    /// The phase of a data centre's newest status (the operator's own last write may be newer
    /// than the cache).
    pub phase: &'a dyn Fn(&RegionalDataCenter) -> Option<Phase>,
}

/// Whether only a change on its own nodes can concern a data centre: it is Ready, every replica
/// running with its data inside, and in Local mode, where each volume is pinned to one node by
/// name (a provisioned volume's affinity may select nodes by the very labels that changed).
pub fn settled(mode: StorageMode, phase: Option<Phase>) -> bool {
    mode == StorageMode::Local && phase == Some(Phase::Ready)
}

impl NodeRoutes {
    /// The data centres a node event concerns, and whether it concerns anyone at all (a
    /// jurisdiction label changed, or the node came or went): what nobody covers on it is
    /// judged anew then too.
    pub fn route(
        &self,
        node: &Node,
        touch: Touch,
        keys: &NodeLabelKeys,
        caches: &RoutingCaches<'_>,
    ) -> (Vec<ObjectRef<RegionalDataCenter>>, bool) {
        let name = node.name_any();
        let new = node.labels().clone();
        let concern = {
            let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let concern = concern(last.get(&name), &new, touch, keys);
            if touch == Touch::Deleted {
                last.remove(&name);
            } else {
                last.insert(name.clone(), new);
            }
            concern
        };
        let all = || caches.data_centers.state().into_iter();
        let anyone = concern != Concern::Nobody;
        let concerned = match concern {
            Concern::Nobody => Vec::new(),
            Concern::Everyone => all().map(|rdc| ObjectRef::from(rdc.as_ref())).collect(),
            Concern::Jurisdictions(countries) => {
                let mut concerned: HashSet<ObjectRef<RegionalDataCenter>> = all()
                    .filter(|rdc| {
                        let country = rdc.spec.jurisdiction.split('-').next().unwrap_or_default();
                        countries.contains(country)
                            // Members are found on a node by selector, not by label.
                            && (rdc.spec.members.is_some()
                                || !settled(rdc.storage_mode(), (caches.phase)(rdc)))
                    })
                    .map(|rdc| ObjectRef::from(rdc.as_ref()))
                    .collect();
                concerned.extend(on_node(node, caches));
                concerned.into_iter().collect()
            }
        };
        (concerned, anyone)
    }
}

/// A node's name, and the hostname local volumes are pinned to (its label, or its name).
fn names_of(node: &Node) -> (String, String) {
    let name = node.name_any();
    let hostname = node
        .labels()
        .get(crate::resources::HOSTNAME_LABEL)
        .cloned()
        .unwrap_or_else(|| name.clone());
    (name, hostname)
}

/// The namespaces of the pods scheduled on `node` and of the claims of the volumes pinned to it.
pub fn namespaces_on(node: &Node, caches: &RoutingCaches<'_>) -> Vec<String> {
    let (name, hostname) = names_of(node);
    let pods = caches.pods.state().into_iter().filter_map(|pod| {
        let scheduled = pod.spec.as_ref()?.node_name.as_deref() == Some(name.as_str());
        scheduled.then(|| pod.namespace()).flatten()
    });
    let volumes = caches.volumes.state().into_iter().filter_map(|pv| {
        let spec = pv.spec.as_ref()?;
        let pinned = crate::resources::pinned_host(spec.node_affinity.as_ref()?)? == hostname;
        pinned
            .then(|| spec.claim_ref.as_ref()?.namespace.clone())
            .flatten()
    });
    pods.chain(volumes).collect()
}

/// Data centres with a pod scheduled on `node`, or a local volume pinned to it.
fn on_node(node: &Node, caches: &RoutingCaches<'_>) -> Vec<ObjectRef<RegionalDataCenter>> {
    let (name, hostname) = names_of(node);
    let pods = caches.pods.state().into_iter().filter_map(|pod| {
        let scheduled = pod.spec.as_ref()?.node_name.as_deref() == Some(name.as_str());
        let rdc = pod.labels().get(RDC_LABEL)?;
        scheduled.then(|| ObjectRef::new(rdc).within(pod.namespace().as_deref().unwrap_or("")))
    });
    let volumes = caches.volumes.state().into_iter().filter_map(|pv| {
        let affinity = pv.spec.as_ref()?.node_affinity.as_ref()?;
        let pinned = crate::resources::pinned_host(affinity)? == hostname;
        let labels = pv.labels();
        let rdc = labels.get(RDC_LABEL)?;
        let namespace = labels.get(RDC_NAMESPACE_LABEL)?;
        pinned.then(|| ObjectRef::new(rdc).within(namespace))
    });
    pods.chain(volumes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn keys() -> NodeLabelKeys {
        NodeLabelKeys::default()
    }

    fn cn() -> Labels {
        labels(&[
            ("kubernetes.io/hostname", "n1"),
            (&keys().jurisdiction, "CN"),
        ])
    }

    #[test]
    fn a_heartbeat_or_status_change_concerns_nobody() {
        assert_eq!(
            concern(Some(&cn()), &cn(), Touch::Applied, &keys()),
            Concern::Nobody
        );
        assert_eq!(
            concern(Some(&cn()), &cn(), Touch::Listed, &keys()),
            Concern::Nobody,
            "a relisting after an outage that finds nothing new"
        );
    }

    #[test]
    fn a_relabel_concerns_the_old_and_the_new_jurisdiction() {
        let mut us = cn();
        us.insert(keys().jurisdiction, "US".to_owned());
        assert_eq!(
            concern(Some(&cn()), &us, Touch::Applied, &keys()),
            Concern::Jurisdictions(["CN".to_owned(), "US".to_owned()].into())
        );
        let mut unlabelled = cn();
        unlabelled.remove(&keys().jurisdiction);
        assert_eq!(
            concern(Some(&cn()), &unlabelled, Touch::Applied, &keys()),
            Concern::Jurisdictions(["CN".to_owned()].into())
        );
        // A relabel made while the watch was down shows up in the relisting.
        assert_eq!(
            concern(Some(&cn()), &us, Touch::Listed, &keys()),
            Concern::Jurisdictions(["CN".to_owned(), "US".to_owned()].into())
        );
        let mut shanghai = cn();
        shanghai.insert(keys().subdivision, "CN-SH".to_owned());
        assert_eq!(
            concern(Some(&cn()), &shanghai, Touch::Applied, &keys()),
            Concern::Jurisdictions(["CN".to_owned()].into())
        );
    }

    #[test]
    fn only_a_ready_local_data_centre_is_settled() {
        assert!(settled(StorageMode::Local, Some(Phase::Ready)));
        for phase in [
            Phase::Pending,
            Phase::Provisioning,
            Phase::Degraded,
            Phase::Violated,
        ] {
            assert!(!settled(StorageMode::Local, Some(phase)), "{phase:?}");
        }
        assert!(!settled(StorageMode::Local, None), "never audited yet");
        assert!(
            !settled(StorageMode::Dynamic, Some(Phase::Ready)),
            "a provisioned volume may be selected by the labels that changed"
        );
    }

    #[test]
    fn other_labels_new_and_deleted_nodes_concern_everyone() {
        // A volume's node affinity may name any label, such as a zone.
        let mut zoned = cn();
        zoned.insert("topology.kubernetes.io/zone".to_owned(), "z1".to_owned());
        assert_eq!(
            concern(Some(&cn()), &zoned, Touch::Applied, &keys()),
            Concern::Everyone
        );
        assert_eq!(
            concern(None, &cn(), Touch::Applied, &keys()),
            Concern::Everyone
        );
        assert_eq!(
            concern(Some(&cn()), &cn(), Touch::Deleted, &keys()),
            Concern::Everyone
        );
        assert_eq!(
            concern(None, &cn(), Touch::Listed, &keys()),
            Concern::Nobody,
            "the first listing: all are reconciled once synced"
        );
    }
}
