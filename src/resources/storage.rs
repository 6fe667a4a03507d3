//! Storage that stays in the jurisdiction: a StorageClass per jurisdiction and, in Local mode,
//! static local PersistentVolumes pre-bound to the replicas' claims, one eligible node each.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    LocalVolumeSource, Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    ObjectReference, PersistentVolume, PersistentVolumeSpec, TopologySelectorLabelRequirement,
    TopologySelectorTerm, VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use super::{NodeLabelKeys, RDC_LABEL, RDC_NAMESPACE_LABEL, claim_name, name, namespace};
use crate::api::jurisdiction::Jurisdiction;
use crate::api::{Own, RegionalDataCenter};

/// Label on a local PersistentVolume: the replica ordinal it serves.
pub const ORDINAL_LABEL: &str = "domicile.dev/ordinal";
/// Label on local volumes: the UID of the data centre they were made for.
pub const UID_LABEL: &str = "domicile.dev/uid";
/// The node label local volumes are pinned by.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

fn class_labels(jurisdiction: &Jurisdiction, keys: &NodeLabelKeys) -> BTreeMap<String, String> {
    // The jurisdiction label on a class declares where its volumes live; the audit reads it.
    let mut labels = BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "domicile".to_owned(),
        ),
        (keys.jurisdiction.clone(), jurisdiction.country().to_owned()),
    ]);
    if let Some(subdivision) = jurisdiction.subdivision() {
        labels.insert(keys.subdivision.clone(), subdivision.to_owned());
    }
    labels
}

/// Whether a class names the jurisdiction labels in `allowedTopologies`.
#[derive(Clone, Copy, PartialEq)]
enum Topology {
    /// The class's volumes are placed by the pod's required node affinity alone. A CSI
    /// external-provisioner refuses topology keys that are not its driver's, and the jurisdiction
    /// keys never are; the audit checks each provisioned volume's own node affinity instead.
    FromThePod,
    /// `allowedTopologies` on the jurisdiction labels: for the local class, which no provisioner
    /// reads.
    Restricted,
}

fn storage_class(
    class_name: String,
    provisioner: &str,
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
    topology: Topology,
) -> StorageClass {
    let allowed_topologies = (topology == Topology::Restricted).then(|| {
        let requirements = keys
            .requirements(jurisdiction)
            .into_iter()
            .map(|r| TopologySelectorLabelRequirement {
                key: r.key,
                values: r.values.unwrap_or_default(),
            })
            .collect();
        vec![TopologySelectorTerm {
            match_label_expressions: Some(requirements),
        }]
    });
    StorageClass {
        metadata: ObjectMeta {
            name: Some(class_name),
            labels: Some(class_labels(jurisdiction, keys)),
            ..Default::default()
        },
        provisioner: provisioner.to_owned(),
        allowed_topologies,
        // Binding waits for the pod, so the scheduler picks node and volume together.
        volume_binding_mode: Some("WaitForFirstConsumer".to_owned()),
        reclaim_policy: Some("Retain".to_owned()),
        ..Default::default()
    }
}

/// The class the operator manages for Dynamic mode, e.g. `domicile-cn-sh`, shared by every
/// RegionalDataCenter of that jurisdiction.
pub fn managed_storage_class(
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
    provisioner: &str,
) -> StorageClass {
    let class_name = format!("domicile-{}", jurisdiction.to_string().to_lowercase());
    storage_class(
        class_name,
        provisioner,
        jurisdiction,
        keys,
        Topology::FromThePod,
    )
}

/// The class of Local-mode volumes, e.g. `domicile-local-cn`: nothing provisions it.
pub fn local_storage_class(jurisdiction: &Jurisdiction, keys: &NodeLabelKeys) -> StorageClass {
    let class_name = format!("domicile-local-{}", jurisdiction.to_string().to_lowercase());
    storage_class(
        class_name,
        "kubernetes.io/no-provisioner",
        jurisdiction,
        keys,
        Topology::Restricted,
    )
}

/// The local volumes a Local-mode RegionalDataCenter needs, and how many could not be placed.
#[derive(Debug, PartialEq)]
pub struct LocalVolumePlan {
    pub volumes: Vec<PersistentVolume>,
    /// Replicas for which no eligible node is free.
    pub unplaced: usize,
}

/// One local volume per replica, each on its own eligible node (the least loaded first, by
/// `load`: domicile volumes per hostname) and pre-bound to the replica's claim so that no other
/// claim can take it. Each lives at `<local_root>/<namespace>/<name>/<uid>/<ordinal>`:
/// the operator, not the tenant, chooses the host path. A volume that already exists keeps its
/// node, name and path (all immutable), even if that node is no longer eligible: data is never
/// moved; the audit reports it instead.
pub fn local_volumes(
    own: Own<'_>,
    storage_class: &str,
    eligible_nodes: &[&Node],
    existing: &[PersistentVolume],
    load: &BTreeMap<String, usize>,
    local_root: &str,
    access_modes: &[String],
) -> LocalVolumePlan {
    let rdc = own.rdc;
    let existing_of = |ordinal: i32| existing.iter().find(|pv| ordinal_of(pv) == Some(ordinal));
    let existing_node = |ordinal: i32| existing_of(ordinal).and_then(pinned_hostname);
    let mut used: BTreeSet<String> = (0..own.workload.replicas)
        .filter_map(existing_node)
        .collect();
    // New volumes go to the eligible nodes that hold the fewest domicile volumes, by name among
    // equals, so data spreads over the whole jurisdiction and the same cluster gives the same plan.
    let mut free: Vec<String> = eligible_nodes
        .iter()
        .map(|node| hostname(node))
        .filter(|h| !used.contains(h))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    free.sort_by_key(|host| (load.get(host).copied().unwrap_or(0), host.clone()));
    let mut free = free.into_iter();

    let mut plan = LocalVolumePlan {
        volumes: Vec::new(),
        unplaced: 0,
    };
    for ordinal in 0..own.workload.replicas {
        let node = existing_node(ordinal).or_else(|| free.next());
        let Some(node) = node else {
            plan.unplaced += 1;
            continue;
        };
        used.insert(node.clone());
        let existing = existing_of(ordinal);
        let name = existing
            .and_then(|pv| pv.metadata.name.clone())
            .unwrap_or_else(|| local_volume_name(rdc, ordinal));
        let path = existing
            .and_then(|pv| Some(pv.spec.as_ref()?.local.as_ref()?.path.clone()))
            .unwrap_or_else(|| local_volume_path(rdc, ordinal, local_root));
        let access_modes = existing
            .and_then(|pv| pv.spec.as_ref()?.access_modes.clone())
            .unwrap_or_else(|| access_modes.to_vec());
        plan.volumes.push(local_volume(
            rdc,
            own.storage.size.clone(),
            storage_class,
            ordinal,
            &node,
            VolumeIdentity {
                name,
                path,
                access_modes,
            },
        ));
    }
    plan
}

/// Where a local volume is: its cluster-wide name and its directory on the node.
struct VolumeIdentity {
    name: String,
    path: String,
    /// Those of the claims the StatefulSet makes, which bind only to a volume of the same.
    access_modes: Vec<String>,
}

fn local_volume(
    rdc: &RegionalDataCenter,
    size: Quantity,
    storage_class: &str,
    ordinal: i32,
    host: &str,
    identity: VolumeIdentity,
) -> PersistentVolume {
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(identity.name),
            labels: Some(
                BTreeMap::from([
                    (
                        "app.kubernetes.io/managed-by".to_owned(),
                        "domicile".to_owned(),
                    ),
                    (RDC_LABEL.to_owned(), name(rdc).to_owned()),
                    (RDC_NAMESPACE_LABEL.to_owned(), namespace(rdc).to_owned()),
                    (ORDINAL_LABEL.to_owned(), ordinal.to_string()),
                ])
                .into_iter()
                .chain(uid(rdc).map(|uid| (UID_LABEL.to_owned(), uid.to_owned())))
                .collect(),
            ),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(BTreeMap::from([("storage".to_owned(), size)])),
            access_modes: Some(identity.access_modes),
            persistent_volume_reclaim_policy: Some("Retain".to_owned()),
            storage_class_name: Some(storage_class.to_owned()),
            volume_mode: Some("Filesystem".to_owned()),
            local: Some(LocalVolumeSource {
                path: identity.path,
                fs_type: None,
            }),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("PersistentVolumeClaim".to_owned()),
                namespace: Some(namespace(rdc).to_owned()),
                name: Some(claim_name(rdc, ordinal)),
                ..Default::default()
            }),
            node_affinity: Some(VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: HOSTNAME_LABEL.to_owned(),
                            operator: "In".to_owned(),
                            values: Some(vec![host.to_owned()]),
                        }]),
                        ..Default::default()
                    }],
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// How many local volumes domicile made are pinned to each hostname, from the labels and the
/// node affinity of every volume.
pub fn volumes_per_node<'a>(
    volumes: impl IntoIterator<Item = (&'a BTreeMap<String, String>, Option<&'a VolumeNodeAffinity>)>,
) -> BTreeMap<String, usize> {
    let mut load = BTreeMap::new();
    for host in volumes
        .into_iter()
        .filter(|(labels, _)| labels.contains_key(RDC_LABEL))
        .filter_map(|(_, affinity)| pinned_host(affinity?))
    {
        *load.entry(host).or_insert(0) += 1;
    }
    load
}

/// `<local_root>/<namespace>/<name>/<uid>/<ordinal>`: a new data centre of an old one's name
/// never gets the old one's directory, and so never its files. Namespace and name are DNS names
/// and the UID is the API server's (no `/`, no `..`), so the path cannot leave the root.
pub fn local_volume_path(rdc: &RegionalDataCenter, ordinal: i32, local_root: &str) -> String {
    let incarnation = uid(rdc).map(|uid| format!("{uid}/")).unwrap_or_default();
    format!(
        "{}/{}/{}/{incarnation}{ordinal}",
        local_root.trim_end_matches('/'),
        namespace(rdc),
        name(rdc)
    )
}

fn uid(rdc: &RegionalDataCenter) -> Option<&str> {
    rdc.metadata.uid.as_deref().filter(|uid| !uid.is_empty())
}

/// Of the volumes retained from earlier data centres of a name, those an admin gave this one (by
/// the earlier one's UID, `adopt_from`), for ordinals this one has no volume of: (adopted, still
/// retained). Volumes from before UIDs were labelled cannot be named, so stay retained.
pub fn adoptable<V: std::ops::Deref<Target = PersistentVolume>>(
    retained: Vec<V>,
    own: &[V],
    adopt_from: Option<&str>,
) -> (Vec<V>, Vec<V>) {
    let ordinal = |pv: &PersistentVolume| ordinal_of(pv);
    let taken: BTreeSet<i32> = own.iter().filter_map(|pv| ordinal(pv)).collect();
    retained.into_iter().partition(|pv| {
        let uid = pv.metadata.labels.as_ref().and_then(|l| l.get(UID_LABEL));
        adopt_from.is_some_and(|from| uid.map(String::as_str) == Some(from))
            && ordinal(pv).is_some_and(|o| !taken.contains(&o))
    })
}

/// Whether a volume of `rdc`'s name and namespace (by its labels or its claim) is this data
/// centre's, or was retained from an earlier one of the same name: one labelled with another UID,
/// or made before this one existed. Such a volume keeps its data and is never taken, changed or
/// deleted for this one.
pub fn of_this_incarnation(pv: &ObjectMeta, rdc: &RegionalDataCenter) -> bool {
    match (pv.labels.as_ref().and_then(|l| l.get(UID_LABEL)), uid(rdc)) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => match (&pv.creation_timestamp, &rdc.metadata.creation_timestamp) {
            (Some(made), Some(born)) => made.0 >= born.0,
            _ => true,
        },
    }
}

/// The longest name a PersistentVolume may have.
const MAX_VOLUME_NAME: usize = 253;

/// `domicile-<namespace>.<name>-<uid's first group>-<ordinal>`. PV names are cluster-wide; a
/// namespace never holds a
/// dot, so the first dot separates it from the name and no two data centres share a volume name
/// (`fleet-cn/vehicle-data` and `fleet/cn-vehicle-data` differ). Names too long for that get a
/// digest of `<namespace>/<name>` instead.
pub fn local_volume_name(rdc: &RegionalDataCenter, ordinal: i32) -> String {
    // The UID's first group tells incarnations of one name apart; the digest takes all of it.
    let incarnation = uid(rdc)
        .and_then(|uid| uid.split('-').next())
        .map(|group| format!("{group}-"))
        .unwrap_or_default();
    let readable = format!(
        "domicile-{}.{}-{incarnation}{ordinal}",
        namespace(rdc),
        name(rdc)
    );
    if readable.len() <= MAX_VOLUME_NAME {
        return readable;
    }
    let digest = Sha256::digest(format!(
        "{}/{}/{}",
        namespace(rdc),
        name(rdc),
        uid(rdc).unwrap_or_default()
    ));
    let short: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("domicile-{short}-{ordinal}")
}

fn ordinal_of(pv: &PersistentVolume) -> Option<i32> {
    pv.metadata
        .labels
        .as_ref()?
        .get(ORDINAL_LABEL)?
        .parse()
        .ok()
}

fn hostname(node: &Node) -> String {
    node.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HOSTNAME_LABEL))
        .or(node.metadata.name.as_ref())
        .cloned()
        .unwrap_or_default()
}

/// The hostname a local volume is pinned to, when its node affinity names exactly one.
pub fn pinned_hostname(pv: &PersistentVolume) -> Option<String> {
    pinned_host(pv.spec.as_ref()?.node_affinity.as_ref()?)
}

/// The hostname a node affinity pins a volume to, when it names exactly one.
pub fn pinned_host(affinity: &VolumeNodeAffinity) -> Option<String> {
    let terms = &affinity.required.as_ref()?.node_selector_terms;
    match terms.as_slice() {
        [term] => term
            .match_expressions
            .iter()
            .flatten()
            .find(|r| r.key == HOSTNAME_LABEL && r.operator == "In")
            .and_then(|r| match r.values.as_deref() {
                Some([host]) => Some(host.clone()),
                _ => None,
            }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::rdc;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn modes() -> Vec<String> {
        vec![crate::resources::DATA_ACCESS_MODE.to_owned()]
    }

    const ROOT: &str = "/var/lib/domicile";

    fn node(name: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(BTreeMap::from([(
                    HOSTNAME_LABEL.to_owned(),
                    name.to_owned(),
                )])),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn hosts(plan: &LocalVolumePlan) -> Vec<String> {
        plan.volumes.iter().filter_map(pinned_hostname).collect()
    }

    #[test]
    fn each_replica_gets_a_volume_on_its_own_eligible_node() {
        let nodes = [node("cn-3"), node("cn-1"), node("cn-2")];
        let eligible: Vec<&Node> = nodes.iter().collect();
        let plan = local_volumes(
            rdc("CN", 3).own().expect("its own"),
            "domicile-local-cn",
            &eligible,
            &[],
            &BTreeMap::new(),
            ROOT,
            &modes(),
        );
        assert_eq!(plan.unplaced, 0);
        assert_eq!(hosts(&plan), ["cn-1", "cn-2", "cn-3"]);
        let pv = &plan.volumes[1];
        assert_eq!(
            pv.metadata.name.as_deref(),
            Some("domicile-fleet-cn.vehicle-data-0f1e2d3c-1")
        );
        let spec = pv.spec.as_ref().expect("a spec");
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        assert_eq!(
            spec.storage_class_name.as_deref(),
            Some("domicile-local-cn")
        );
        let claim = spec.claim_ref.as_ref().expect("pre-bound");
        assert_eq!(claim.name.as_deref(), Some("data-vehicle-data-1"));
        assert_eq!(claim.namespace.as_deref(), Some("fleet-cn"));
        assert_eq!(
            spec.local.as_ref().map(|l| l.path.as_str()),
            Some("/var/lib/domicile/fleet-cn/vehicle-data/0f1e2d3c-0000-4000-8000-000000000001/1")
        );
    }

    #[test]
    fn too_few_eligible_nodes_leaves_replicas_unplaced() {
        let nodes = [node("cn-1"), node("cn-2")];
        let eligible: Vec<&Node> = nodes.iter().collect();
        let plan = local_volumes(
            rdc("CN", 3).own().expect("its own"),
            "c",
            &eligible,
            &[],
            &BTreeMap::new(),
            ROOT,
            &modes(),
        );
        assert_eq!(plan.volumes.len(), 2);
        assert_eq!(plan.unplaced, 1);
    }

    #[test]
    fn existing_volumes_keep_their_node_even_when_it_is_no_longer_eligible() {
        let nodes = [node("cn-1"), node("cn-2"), node("cn-3")];
        let eligible: Vec<&Node> = nodes.iter().collect();
        let rdc = rdc("CN", 2);
        let mut existing = local_volumes(
            rdc.own().expect("its own"),
            "c",
            &eligible,
            &[],
            &BTreeMap::new(),
            ROOT,
            &modes(),
        )
        .volumes;
        assert_eq!(
            existing
                .iter()
                .filter_map(pinned_hostname)
                .collect::<Vec<_>>(),
            ["cn-1", "cn-2"]
        );
        existing.truncate(1); // replica 0 on cn-1 exists; cn-1 has since lost its label
        let now_eligible: Vec<&Node> = nodes[1..].iter().collect();
        let plan = local_volumes(
            rdc.own().expect("its own"),
            "c",
            &now_eligible,
            &existing,
            &BTreeMap::new(),
            ROOT,
            &modes(),
        );
        assert_eq!(hosts(&plan), ["cn-1", "cn-2"]);
    }

    #[test]
    fn classes_declare_and_restrict_their_jurisdiction() {
        let keys = NodeLabelKeys::default();
        let j = Jurisdiction::parse("CN-SH").expect("valid");
        let class = managed_storage_class(&j, &keys, "rancher.io/local-path");
        assert_eq!(class.metadata.name.as_deref(), Some("domicile-cn-sh"));
        assert_eq!(class.provisioner, "rancher.io/local-path");
        assert_eq!(
            class.volume_binding_mode.as_deref(),
            Some("WaitForFirstConsumer")
        );
        assert_eq!(class.reclaim_policy.as_deref(), Some("Retain"));
        let labels = class.metadata.labels.expect("labels");
        assert_eq!(
            labels.get(&keys.jurisdiction).map(String::as_str),
            Some("CN")
        );
        assert_eq!(
            labels.get(&keys.subdivision).map(String::as_str),
            Some("CN-SH")
        );
        // A CSI provisioner refuses topology keys that are not its driver's.
        assert_eq!(class.allowed_topologies, None);

        let local = local_storage_class(&j, &keys);
        assert_eq!(local.metadata.name.as_deref(), Some("domicile-local-cn-sh"));
        assert_eq!(local.provisioner, "kubernetes.io/no-provisioner");
        let topology = local.allowed_topologies.expect("topologies")[0]
            .match_label_expressions
            .clone()
            .expect("requirements");
        assert_eq!(topology.len(), 2);
        assert_eq!(topology[0].values, ["CN"]);
        assert_eq!(topology[1].values, ["CN-SH"]);
    }

    #[test]
    fn volume_names_never_collide_across_namespaces() {
        let mut a = rdc("CN", 1);
        a.metadata.namespace = Some("fleet-cn".to_owned());
        a.metadata.name = Some("vehicle-data".to_owned());
        let mut b = rdc("CN", 1);
        b.metadata.namespace = Some("fleet".to_owned());
        b.metadata.name = Some("cn-vehicle-data".to_owned());
        assert_ne!(local_volume_name(&a, 0), local_volume_name(&b, 0));
        assert_ne!(
            local_volume_path(&a, 0, ROOT),
            local_volume_path(&b, 0, ROOT)
        );
        let mut long = rdc("CN", 1);
        long.metadata.name = Some("x".repeat(250));
        let name = local_volume_name(&long, 7);
        assert!(
            name.len() <= MAX_VOLUME_NAME && name.ends_with("-7"),
            "{name}"
        );
    }

    #[test]
    fn the_operator_chooses_the_host_path_under_its_root() {
        let nodes = [node("cn-1")];
        let eligible: Vec<&Node> = nodes.iter().collect();
        let mut rdc = rdc("CN", 1);
        // A value left from the removed field is ignored, whatever it says.
        rdc.spec.storage.as_mut().expect("its own").local_path = Some("/".to_owned());
        let plan = local_volumes(
            rdc.own().expect("its own"),
            "c",
            &eligible,
            &[],
            &BTreeMap::new(),
            "/srv/domicile/",
            &modes(),
        );
        let path = plan.volumes[0]
            .spec
            .as_ref()
            .and_then(|s| s.local.as_ref())
            .map(|l| l.path.clone());
        assert_eq!(
            path.as_deref(),
            Some("/srv/domicile/fleet-cn/vehicle-data/0f1e2d3c-0000-4000-8000-000000000001/0")
        );
    }

    #[test]
    fn an_earlier_data_centres_volume_is_adopted_only_by_its_uid_and_for_a_free_ordinal() {
        let nodes = [node("cn-1"), node("cn-2")];
        let eligible: Vec<&Node> = nodes.iter().collect();
        let old = rdc("CN", 2);
        let old_volumes = local_volumes(
            old.own().expect("its own"),
            "c",
            &eligible,
            &[],
            &BTreeMap::new(),
            ROOT,
            &modes(),
        )
        .volumes;
        assert_eq!(old_volumes.len(), 2);
        let old_uid = old.metadata.uid.clone().expect("a uid");
        let ordinals = |volumes: &[&PersistentVolume]| {
            volumes
                .iter()
                .filter_map(|pv| ordinal_of(pv))
                .collect::<Vec<_>>()
        };
        // Not named, or named by another UID: retained.
        for named in [None, Some("another")] {
            let (adopted, kept) = adoptable(old_volumes.iter().collect(), &[], named);
            assert!(adopted.is_empty(), "{named:?}");
            assert_eq!(ordinals(&kept), [0, 1]);
        }
        // Named by its UID: adopted, but not for an ordinal the new one already has a volume of.
        let mut new = old.clone();
        new.metadata.uid = Some("9a8b7c6d-0000-4000-8000-000000000002".to_owned());
        let mut new_volumes = local_volumes(
            new.own().expect("its own"),
            "c",
            &eligible,
            &[],
            &BTreeMap::new(),
            ROOT,
            &modes(),
        )
        .volumes;
        new_volumes.truncate(1);
        let (adopted, kept) = adoptable(
            old_volumes.iter().collect(),
            &new_volumes.iter().collect::<Vec<_>>(),
            Some(&old_uid),
        );
        assert_eq!(ordinals(&adopted), [1]);
        assert_eq!(ordinals(&kept), [0]);
    }

    #[test]
    fn a_new_data_centre_of_an_old_name_gets_new_volumes_and_never_the_old_ones() {
        let nodes = [node("cn-1")];
        let eligible: Vec<&Node> = nodes.iter().collect();
        let mut old = rdc("CN", 1);
        old.metadata.creation_timestamp =
            Some(Time(jiff::Timestamp::from_second(1_000).expect("a time")));
        let mut new = old.clone();
        new.metadata.uid = Some("9a8b7c6d-0000-4000-8000-000000000002".to_owned());
        new.metadata.creation_timestamp =
            Some(Time(jiff::Timestamp::from_second(2_000).expect("a time")));
        let plan = |rdc: &RegionalDataCenter| {
            local_volumes(
                rdc.own().expect("its own"),
                "c",
                &eligible,
                &[],
                &BTreeMap::new(),
                ROOT,
                &modes(),
            )
            .volumes
        };
        let (old_volume, new_volume) = (plan(&old).remove(0), plan(&new).remove(0));
        assert_ne!(old_volume.metadata.name, new_volume.metadata.name);
        assert_ne!(old_volume.spec, new_volume.spec, "the same directory");
        assert_eq!(
            new_volume.metadata.name.as_deref(),
            Some("domicile-fleet-cn.vehicle-data-9a8b7c6d-0")
        );

        // By its UID label: the old one's volume is not the new one's, and its own is.
        assert!(of_this_incarnation(&new_volume.metadata, &new));
        assert!(!of_this_incarnation(&old_volume.metadata, &new));
        assert!(of_this_incarnation(&old_volume.metadata, &old));
        // A volume from before UIDs were labelled: by whether it is older than the data centre.
        let mut unlabelled = old_volume.metadata.clone();
        unlabelled
            .labels
            .as_mut()
            .expect("labels")
            .remove(UID_LABEL);
        unlabelled.creation_timestamp =
            Some(Time(jiff::Timestamp::from_second(1_500).expect("a time")));
        assert!(
            of_this_incarnation(&unlabelled, &old),
            "made after the old one"
        );
        assert!(
            !of_this_incarnation(&unlabelled, &new),
            "made before the new one"
        );
    }

    #[test]
    fn an_existing_volume_keeps_its_name_and_path() {
        let nodes = [node("cn-1"), node("cn-2")];
        let eligible: Vec<&Node> = nodes.iter().collect();
        let rdc = rdc("CN", 1);
        let mut old = local_volumes(
            rdc.own().expect("its own"),
            "c",
            &eligible[1..],
            &[],
            &BTreeMap::new(),
            "/mnt/old",
            &modes(),
        )
        .volumes;
        old[0].metadata.name = Some("domicile-fleet-cn-vehicle-data-0".to_owned());
        let plan = local_volumes(
            rdc.own().expect("its own"),
            "c",
            &eligible,
            &old,
            &BTreeMap::new(),
            ROOT,
            &modes(),
        );
        assert_eq!(plan.volumes[0].metadata.name, old[0].metadata.name);
        assert_eq!(plan.volumes[0].spec, old[0].spec);
    }

    #[test]
    fn new_volumes_go_to_the_least_loaded_nodes_and_existing_ones_stay() {
        let nodes = [node("cn-1"), node("cn-2"), node("cn-3"), node("cn-4")];
        let eligible: Vec<&Node> = nodes.iter().collect();
        let load = BTreeMap::from([
            ("cn-1".to_owned(), 5),
            ("cn-2".to_owned(), 1),
            ("cn-3".to_owned(), 3),
        ]);
        let plan = local_volumes(
            rdc("CN", 2).own().expect("its own"),
            "c",
            &eligible,
            &[],
            &load,
            ROOT,
            &modes(),
        );
        assert_eq!(
            hosts(&plan),
            ["cn-4", "cn-2"],
            "empty first, then the lightest"
        );
        // An existing volume keeps its node, however loaded.
        let mut existing = plan.volumes.clone();
        existing.truncate(1);
        let heavier = BTreeMap::from([("cn-4".to_owned(), 50)]);
        let again = local_volumes(
            rdc("CN", 2).own().expect("its own"),
            "c",
            &eligible,
            &existing,
            &heavier,
            ROOT,
            &modes(),
        );
        assert_eq!(hosts(&again)[0], "cn-4");
        assert_ne!(hosts(&again)[1], "cn-4", "replicas stay on distinct nodes");
    }

    fn load_of(volumes: &[PersistentVolume]) -> BTreeMap<String, usize> {
        use kube::ResourceExt;
        volumes_per_node(volumes.iter().map(|pv| {
            let affinity = pv.spec.as_ref().and_then(|s| s.node_affinity.as_ref());
            (pv.labels(), affinity)
        }))
    }

    #[test]
    fn many_data_centres_spread_over_every_eligible_node() {
        let nodes: Vec<Node> = (1..=33).map(|i| node(&format!("cn-{i:02}"))).collect();
        let eligible: Vec<&Node> = nodes.iter().collect();
        let mut all: Vec<PersistentVolume> = Vec::new();
        for i in 0..500 {
            let mut rdc = rdc("CN", 3);
            rdc.metadata.name = Some(format!("rdc-{i}"));
            let load = load_of(&all);
            all.extend(
                local_volumes(
                    rdc.own().expect("its own"),
                    "c",
                    &eligible,
                    &[],
                    &load,
                    ROOT,
                    &modes(),
                )
                .volumes,
            );
        }
        let load = load_of(&all);
        assert_eq!(load.len(), 33, "every eligible node holds data");
        let mean = 1500 / 33;
        assert!(load.values().all(|n| *n <= 2 * mean), "{load:?}");
    }
}
