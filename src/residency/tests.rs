//! Residency verdicts, case by case, from small fixtures.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolume,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec, Pod, PodSpec,
    VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::resources::fixtures::rdc;

const JURISDICTION: &str = "domicile.node-restriction.kubernetes.io/jurisdiction";
const SUBDIVISION: &str = "domicile.node-restriction.kubernetes.io/subdivision";

fn keys() -> NodeLabelKeys {
    NodeLabelKeys::default()
}

fn j(code: &str) -> Jurisdiction {
    Jurisdiction::parse(code).expect("a valid jurisdiction")
}

fn meta(name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..Default::default()
    }
}

pub(crate) fn node(name: &str, labels: &[(&str, &str)]) -> Node {
    let mut all = vec![("kubernetes.io/hostname", name)];
    all.extend_from_slice(labels);
    Node {
        metadata: meta(name, &all),
        ..Default::default()
    }
}

pub(crate) fn cn(name: &str) -> Node {
    node(name, &[(JURISDICTION, "CN")])
}

pub(crate) fn pod(name: &str, node: Option<&str>) -> Pod {
    Pod {
        metadata: meta(name, &[(RDC_LABEL, "vehicle-data")]),
        spec: Some(PodSpec {
            node_name: node.map(str::to_owned),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn claim(name: &str, volume: Option<&str>) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: meta(name, &[(RDC_LABEL, "vehicle-data")]),
        spec: Some(PersistentVolumeClaimSpec {
            volume_name: volume.map(str::to_owned),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn requirement(key: &str, operator: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

fn selector(requirements: Vec<NodeSelectorRequirement>) -> NodeSelector {
    NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: Some(requirements),
            ..Default::default()
        }],
    }
}

fn pv_with_affinity(name: &str, affinity: Option<NodeSelector>, class: &str) -> PersistentVolume {
    PersistentVolume {
        metadata: meta(name, &[]),
        spec: Some(PersistentVolumeSpec {
            storage_class_name: Some(class.to_owned()),
            node_affinity: affinity.map(|required| VolumeNodeAffinity {
                required: Some(required),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn local_pv(name: &str, host: &str) -> PersistentVolume {
    pv_with_affinity(
        name,
        Some(selector(vec![requirement(
            "kubernetes.io/hostname",
            "In",
            &[host],
        )])),
        "domicile-local-cn",
    )
}

fn class(name: &str, labels: &[(&str, &str)]) -> StorageClass {
    StorageClass {
        metadata: meta(name, labels),
        provisioner: "example.com/nas".to_owned(),
        ..Default::default()
    }
}

/// A CN cluster with `vehicle-data-0` on `cn-1`, its volume pinned to `volume_host`.
struct Cluster {
    nodes: Vec<Node>,
    pods: Vec<Pod>,
    claims: Vec<PersistentVolumeClaim>,
    volumes: Vec<PersistentVolume>,
    classes: Vec<StorageClass>,
}

impl Cluster {
    fn one_replica(pod_node: &str, volume: PersistentVolume) -> Self {
        Self {
            nodes: vec![
                cn("cn-1"),
                cn("cn-2"),
                node("de-1", &[(JURISDICTION, "DE")]),
                node("bare-1", &[]),
            ],
            pods: vec![pod("vehicle-data-0", Some(pod_node))],
            claims: vec![claim(
                "data-vehicle-data-0",
                volume.metadata.name.as_deref(),
            )],
            volumes: vec![volume],
            classes: vec![],
        }
    }

    fn audit(&self, jurisdiction: &str, replicas: i32) -> Audit {
        fn shared<K: Clone>(items: &[K]) -> Vec<Arc<K>> {
            items.iter().cloned().map(Arc::new).collect()
        }
        let (volumes, nodes, classes) = (
            shared(&self.volumes),
            shared(&self.nodes),
            shared(&self.classes),
        );
        let observed = Observed {
            pods: &self.pods,
            claims: &self.claims,
            volumes: &volumes,
            nodes: &nodes,
            classes: &classes,
            ..Default::default()
        };
        audit(
            &rdc(jurisdiction, replicas),
            &j(jurisdiction),
            &keys(),
            &observed,
        )
    }
}

fn reasons(audit: &Audit) -> Vec<(&'static str, String, ViolationReason)> {
    audit
        .findings
        .iter()
        .map(|f| (f.kind, f.name.clone(), f.reason))
        .collect()
}

// --- which nodes belong to a jurisdiction

#[test]
fn node_with_the_country_label_is_in_the_country() {
    assert!(node_in_jurisdiction(&cn("cn-1"), &j("CN"), &keys()));
}

#[test]
fn node_without_a_label_is_in_no_jurisdiction() {
    assert!(!node_in_jurisdiction(&node("bare", &[]), &j("CN"), &keys()));
}

#[test]
fn node_of_another_country_is_outside() {
    assert!(!node_in_jurisdiction(
        &node("de", &[(JURISDICTION, "DE")]),
        &j("CN"),
        &keys()
    ));
}

#[test]
fn lower_case_or_empty_label_values_do_not_count() {
    for value in ["cn", "Cn", "", " CN", "CN "] {
        assert!(
            !node_in_jurisdiction(&node("n", &[(JURISDICTION, value)]), &j("CN"), &keys()),
            "{value:?}"
        );
    }
}

#[test]
fn a_label_under_another_key_does_not_count() {
    let node = node(
        "n",
        &[
            ("topology.kubernetes.io/region", "CN"),
            ("jurisdiction", "CN"),
        ],
    );
    assert!(!node_in_jurisdiction(&node, &j("CN"), &keys()));
}

#[test]
fn subdivision_rdc_needs_the_subdivision_label() {
    let no_subdivision = cn("cn-1");
    let other = node("cn-bj", &[(JURISDICTION, "CN"), (SUBDIVISION, "CN-BJ")]);
    let lower = node(
        "cn-sh-lower",
        &[(JURISDICTION, "CN"), (SUBDIVISION, "cn-sh")],
    );
    let right = node("cn-sh", &[(JURISDICTION, "CN"), (SUBDIVISION, "CN-SH")]);
    let wrong_country = node("de-sh", &[(JURISDICTION, "DE"), (SUBDIVISION, "CN-SH")]);
    let sh = j("CN-SH");
    assert!(!node_in_jurisdiction(&no_subdivision, &sh, &keys()));
    assert!(!node_in_jurisdiction(&other, &sh, &keys()));
    assert!(!node_in_jurisdiction(&lower, &sh, &keys()));
    assert!(!node_in_jurisdiction(&wrong_country, &sh, &keys()));
    assert!(node_in_jurisdiction(&right, &sh, &keys()));
}

#[test]
fn country_rdc_accepts_nodes_of_any_subdivision() {
    let sh = node("cn-sh", &[(JURISDICTION, "CN"), (SUBDIVISION, "CN-SH")]);
    assert!(node_in_jurisdiction(&sh, &j("CN"), &keys()));
}

#[test]
fn custom_label_keys_are_honoured() {
    let keys = NodeLabelKeys {
        jurisdiction: "example.com/country".to_owned(),
        subdivision: "example.com/sub".to_owned(),
    };
    assert!(node_in_jurisdiction(
        &node("n", &[("example.com/country", "CN")]),
        &j("CN"),
        &keys
    ));
    assert!(!node_in_jurisdiction(&cn("n"), &j("CN"), &keys));
}

#[test]
fn eligible_nodes_are_the_labelled_ones_sorted_by_name() {
    let nodes = [
        cn("cn-2"),
        node("de-1", &[(JURISDICTION, "DE")]),
        cn("cn-1"),
        node("bare", &[]),
    ];
    let names: Vec<_> = eligible_nodes(&nodes, &j("CN"), &keys())
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    assert_eq!(names, ["cn-1", "cn-2"]);
}

// --- node selectors

#[test]
fn selector_operators_match_as_the_scheduler_does() {
    let n = node("n", &[(JURISDICTION, "CN"), ("disks", "4")]);
    let matches = |r: NodeSelectorRequirement| node_matches(&n, &selector(vec![r]));
    assert!(matches(requirement(JURISDICTION, "In", &["CN", "DE"])));
    assert!(!matches(requirement(JURISDICTION, "In", &["DE"])));
    assert!(matches(requirement(JURISDICTION, "NotIn", &["DE"])));
    assert!(!matches(requirement(JURISDICTION, "NotIn", &["CN"])));
    assert!(matches(requirement("missing", "NotIn", &["CN"])));
    assert!(matches(requirement(JURISDICTION, "Exists", &[])));
    assert!(matches(requirement("missing", "DoesNotExist", &[])));
    assert!(matches(requirement("disks", "Gt", &["3"])));
    assert!(!matches(requirement("disks", "Lt", &["3"])));
    assert!(!matches(requirement(JURISDICTION, "Gt", &["3"])));
    assert!(
        !matches(requirement(JURISDICTION, "Resembles", &["CN"])),
        "unknown operators fail closed"
    );
}

#[test]
fn selector_terms_are_ored_and_empty_terms_match_nothing() {
    let n = cn("cn-1");
    let either = NodeSelector {
        node_selector_terms: vec![
            NodeSelectorTerm {
                match_expressions: Some(vec![requirement(JURISDICTION, "In", &["DE"])]),
                ..Default::default()
            },
            NodeSelectorTerm {
                match_fields: Some(vec![requirement("metadata.name", "In", &["cn-1"])]),
                ..Default::default()
            },
        ],
    };
    assert!(node_matches(&n, &either));
    assert!(!node_matches(
        &n,
        &NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm::default()]
        }
    ));
    assert!(!node_matches(
        &n,
        &NodeSelector {
            node_selector_terms: vec![]
        }
    ));
}

// --- the audit

#[test]
fn pod_and_volume_on_jurisdiction_nodes_are_compliant() {
    let cluster = Cluster::one_replica("cn-1", local_pv("pv-0", "cn-1"));
    let audit = cluster.audit("CN", 1);
    assert_eq!(audit.residency, Residency::Compliant);
    assert!(audit.findings.is_empty());
    assert_eq!(
        audit.placements,
        [Placement {
            pod: "vehicle-data-0".to_owned(),
            owner: Some("StatefulSet/vehicle-data".to_owned()),
            node: Some("cn-1".to_owned()),
            node_jurisdiction: Some("CN".to_owned()),
            volume: Some("pv-0".to_owned()),
            volume_node: Some("cn-1".to_owned()),
            compliant: true,
        }]
    );
}

#[test]
fn pod_on_another_countrys_node_is_node_outside_jurisdiction() {
    let cluster = Cluster::one_replica("de-1", local_pv("pv-0", "cn-1"));
    let audit = cluster.audit("CN", 1);
    assert_eq!(audit.residency, Residency::Violated);
    assert_eq!(
        reasons(&audit),
        [(
            "Pod",
            "vehicle-data-0".to_owned(),
            ViolationReason::NodeOutsideJurisdiction
        )]
    );
    assert!(
        audit.findings[0].message.contains("de-1"),
        "{}",
        audit.findings[0].message
    );
    assert!(!audit.placements[0].compliant);
    assert_eq!(audit.placements[0].node_jurisdiction.as_deref(), Some("DE"));
}

#[test]
fn pod_on_an_unlabelled_node_is_node_outside_jurisdiction() {
    let audit = Cluster::one_replica("bare-1", local_pv("pv-0", "cn-1")).audit("CN", 1);
    assert_eq!(
        reasons(&audit),
        [(
            "Pod",
            "vehicle-data-0".to_owned(),
            ViolationReason::NodeOutsideJurisdiction
        )]
    );
    assert!(audit.findings[0].message.contains("no jurisdiction label"));
}

#[test]
fn pod_on_a_deleted_node_is_node_outside_jurisdiction() {
    let audit = Cluster::one_replica("gone-1", local_pv("pv-0", "cn-1")).audit("CN", 1);
    assert_eq!(
        reasons(&audit),
        [(
            "Pod",
            "vehicle-data-0".to_owned(),
            ViolationReason::NodeOutsideJurisdiction
        )]
    );
}

#[test]
fn volume_pinned_outside_is_data_outside_jurisdiction() {
    let audit = Cluster::one_replica("cn-1", local_pv("pv-0", "de-1")).audit("CN", 1);
    assert_eq!(audit.residency, Residency::Violated);
    assert_eq!(
        reasons(&audit),
        [(
            "PersistentVolume",
            "pv-0".to_owned(),
            ViolationReason::DataOutsideJurisdiction
        )]
    );
    assert_eq!(audit.placements[0].volume_node.as_deref(), Some("de-1"));
}

#[test]
fn volume_whose_affinity_reaches_any_node_outside_is_data_outside_jurisdiction() {
    let wide = pv_with_affinity(
        "pv-0",
        Some(selector(vec![requirement(
            JURISDICTION,
            "In",
            &["CN", "DE"],
        )])),
        "c",
    );
    let audit = Cluster::one_replica("cn-1", wide).audit("CN", 1);
    assert_eq!(
        reasons(&audit),
        [(
            "PersistentVolume",
            "pv-0".to_owned(),
            ViolationReason::DataOutsideJurisdiction
        )]
    );
    assert_eq!(
        audit.placements[0].volume_node, None,
        "it reaches several nodes"
    );
}

#[test]
fn volume_confined_by_the_jurisdiction_label_is_compliant() {
    let confined = pv_with_affinity(
        "pv-0",
        Some(selector(vec![requirement(JURISDICTION, "In", &["CN"])])),
        "c",
    );
    assert_eq!(
        Cluster::one_replica("cn-1", confined)
            .audit("CN", 1)
            .residency,
        Residency::Compliant
    );
}

#[test]
fn volume_pinned_to_a_missing_node_is_unverifiable() {
    let audit = Cluster::one_replica("cn-1", local_pv("pv-0", "gone-1")).audit("CN", 1);
    assert_eq!(audit.residency, Residency::Unverifiable);
    assert_eq!(
        reasons(&audit),
        [(
            "PersistentVolume",
            "pv-0".to_owned(),
            ViolationReason::Unverifiable
        )]
    );
}

#[test]
fn network_volume_on_an_undeclared_class_is_unverifiable() {
    let mut cluster = Cluster::one_replica("cn-1", pv_with_affinity("pv-0", None, "nas"));
    cluster.classes.push(class("nas", &[]));
    let audit = cluster.audit("CN", 1);
    assert_eq!(audit.residency, Residency::Unverifiable);
    assert!(
        audit.findings[0]
            .message
            .contains("kubectl label storageclass nas"),
        "{}",
        audit.findings[0].message
    );
}

#[test]
fn network_volume_on_a_class_declared_elsewhere_is_unverifiable() {
    let mut cluster = Cluster::one_replica("cn-1", pv_with_affinity("pv-0", None, "nas"));
    cluster.classes.push(class("nas", &[(JURISDICTION, "DE")]));
    assert_eq!(cluster.audit("CN", 1).residency, Residency::Unverifiable);
}

#[test]
fn network_volume_on_a_declared_class_is_compliant() {
    let mut cluster = Cluster::one_replica("cn-1", pv_with_affinity("pv-0", None, "nas"));
    cluster.classes.push(class("nas", &[(JURISDICTION, "CN")]));
    assert_eq!(cluster.audit("CN", 1).residency, Residency::Compliant);
}

#[test]
fn subdivision_rdc_on_a_node_of_the_country_without_the_subdivision_is_violated() {
    let mut cluster = Cluster::one_replica("cn-1", local_pv("pv-0", "cn-sh"));
    cluster.nodes.push(node(
        "cn-sh",
        &[(JURISDICTION, "CN"), (SUBDIVISION, "CN-SH")],
    ));
    let audit = cluster.audit("CN-SH", 1);
    assert_eq!(
        reasons(&audit),
        [(
            "Pod",
            "vehicle-data-0".to_owned(),
            ViolationReason::NodeOutsideJurisdiction
        )]
    );
}

#[test]
fn nothing_placed_yet_is_pending() {
    let cluster = Cluster {
        nodes: vec![cn("cn-1")],
        pods: vec![pod("vehicle-data-0", None)],
        claims: vec![claim("data-vehicle-data-0", None)],
        volumes: vec![],
        classes: vec![],
    };
    let audit = cluster.audit("CN", 1);
    assert_eq!(audit.residency, Residency::Pending);
    assert!(!audit.placements[0].compliant);
    assert_eq!(audit.placements[0].node, None);
}

#[test]
fn zero_replicas_is_compliant_with_no_placements() {
    let cluster = Cluster {
        nodes: vec![cn("cn-1")],
        pods: vec![],
        claims: vec![],
        volumes: vec![],
        classes: vec![],
    };
    let audit = cluster.audit("CN", 0);
    assert_eq!(audit.residency, Residency::Compliant);
    assert!(audit.placements.is_empty());
}

#[test]
fn pods_of_other_data_centres_are_not_audited() {
    let mut cluster = Cluster::one_replica("cn-1", local_pv("pv-0", "cn-1"));
    let mut stranger = pod("stranger-0", Some("de-1"));
    stranger.metadata.labels = Some(BTreeMap::from([(RDC_LABEL.to_owned(), "other".to_owned())]));
    cluster.pods.push(stranger);
    assert_eq!(cluster.audit("CN", 1).residency, Residency::Compliant);
}

#[test]
fn jurisdiction_requirement_in_every_term_confines_a_selector() {
    let k = keys();
    assert!(selector::requires_jurisdiction(
        &selector(vec![requirement(JURISDICTION, "In", &["CN"])]),
        &j("CN"),
        &k
    ));
    assert!(!selector::requires_jurisdiction(
        &selector(vec![requirement(JURISDICTION, "In", &["CN", "DE"])]),
        &j("CN"),
        &k
    ));
    assert!(!selector::requires_jurisdiction(
        &selector(vec![requirement(JURISDICTION, "In", &["CN"])]),
        &j("CN-SH"),
        &k
    ));
    assert!(!selector::requires_jurisdiction(
        &NodeSelector {
            node_selector_terms: vec![]
        },
        &j("CN"),
        &k
    ));
}

// --- who mounts the data

fn mounting(mut pod: Pod, claim: &str) -> Pod {
    if let Some(spec) = pod.spec.as_mut() {
        spec.volumes = Some(vec![k8s_openapi::api::core::v1::Volume {
            name: "data".to_owned(),
            persistent_volume_claim: Some(
                k8s_openapi::api::core::v1::PersistentVolumeClaimVolumeSource {
                    claim_name: claim.to_owned(),
                    read_only: None,
                },
            ),
            ..Default::default()
        }]);
    }
    pod
}

fn controlled_by_the_statefulset(mut pod: Pod) -> Pod {
    pod.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "apps/v1".to_owned(),
            kind: "StatefulSet".to_owned(),
            name: "vehicle-data".to_owned(),
            uid: "u1".to_owned(),
            controller: Some(true),
            block_owner_deletion: None,
        },
    ]);
    pod
}

#[test]
fn the_replica_mounting_its_own_claim_is_compliant() {
    let mut cluster = Cluster::one_replica("cn-1", local_pv("pv-0", "cn-1"));
    cluster.pods = vec![controlled_by_the_statefulset(mounting(
        pod("vehicle-data-0", Some("cn-1")),
        "data-vehicle-data-0",
    ))];
    let audit = cluster.audit("CN", 1);
    assert_eq!(
        audit.residency,
        Residency::Compliant,
        "{:?}",
        audit.findings
    );
}

#[test]
fn a_stranger_mounting_a_data_claim_is_a_member_and_reported() {
    let mut cluster = Cluster::one_replica("cn-1", local_pv("pv-0", "cn-1"));
    // Unlabelled, on a CN node: no label makes it the data centre's, the claim it mounts does.
    let mut reader = mounting(pod("reader", Some("cn-1")), "data-vehicle-data-0");
    reader.metadata.labels = None;
    assert!(is_member(&reader, &rdc("CN", 1)));
    cluster.pods.push(reader);
    let audit = cluster.audit("CN", 1);
    assert_eq!(
        reasons(&audit),
        [("Pod", "reader".to_owned(), ViolationReason::ForeignMount)]
    );
    assert_eq!(audit.residency, Residency::Violated);
    assert!(
        audit.findings[0]
            .message
            .contains("kubectl delete pod reader"),
        "{}",
        audit.findings[0].message
    );
    // And abroad, it is outside the jurisdiction too.
    cluster.pods[1].spec.as_mut().expect("spec").node_name = Some("de-1".to_owned());
    let reasons = reasons(&cluster.audit("CN", 1));
    assert!(reasons.contains(&(
        "Pod",
        "reader".to_owned(),
        ViolationReason::NodeOutsideJurisdiction
    )));
}

#[test]
fn a_relabelled_replica_is_detached_and_still_judged_where_it_runs() {
    let mut cluster = Cluster::one_replica("de-1", local_pv("pv-0", "cn-1"));
    // Its label removed: the StatefulSet let it go, the fence no longer selects it.
    let mut replica = mounting(pod("vehicle-data-0", Some("de-1")), "data-vehicle-data-0");
    replica.metadata.labels = None;
    cluster.pods = vec![replica];
    let reasons = reasons(&cluster.audit("CN", 1));
    assert!(
        reasons.contains(&(
            "Pod",
            "vehicle-data-0".to_owned(),
            ViolationReason::ReplicaDetached
        )),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&(
            "Pod",
            "vehicle-data-0".to_owned(),
            ViolationReason::NodeOutsideJurisdiction
        )),
        "a label removed does not hide where it runs: {reasons:?}"
    );
}

#[test]
fn a_claim_of_another_name_or_ordinal_shape_is_not_a_data_claim() {
    let data_centre = rdc("CN", 1);
    for claim in [
        "data-vehicle-data-01",
        "data-vehicle-data-x",
        "data-vehicle-data",
        "uploads",
    ] {
        let mut other = mounting(pod("other", Some("cn-1")), claim);
        other.metadata.labels = None;
        assert!(!is_member(&other, &data_centre), "{claim}");
    }
}

// --- copies of the data: snapshots

fn snapshot(name: &str, namespace: &str, claim: &str, class: Option<&str>) -> VolumeSnapshot {
    let mut metadata = meta(name, &[]);
    metadata.namespace = Some(namespace.to_owned());
    VolumeSnapshot {
        metadata,
        spec: crate::copies::VolumeSnapshotSpec {
            source: crate::copies::VolumeSnapshotSource {
                persistent_volume_claim_name: Some(claim.to_owned()),
                volume_snapshot_content_name: None,
            },
            volume_snapshot_class_name: class.map(str::to_owned),
        },
    }
}

fn snapshot_class(name: &str, labels: &[(&str, &str)], default: bool) -> VolumeSnapshotClass {
    let mut metadata = meta(name, labels);
    if default {
        metadata.annotations = Some(BTreeMap::from([(
            crate::copies::DEFAULT_CLASS_ANNOTATION.to_owned(),
            "true".to_owned(),
        )]));
    }
    VolumeSnapshotClass {
        metadata,
        driver: "example.com/csi".to_owned(),
    }
}

/// The audit of a CN data centre in `fleet-cn` with one replica placed on `cn-1`, and whatever
/// copies of its data `copies` holds.
fn audit_one_replica(copies: Observed<'_>) -> Audit {
    let cluster = Cluster::one_replica("cn-1", local_pv("pv-0", "cn-1"));
    let volumes: Vec<_> = cluster.volumes.iter().cloned().map(Arc::new).collect();
    let nodes: Vec<_> = cluster.nodes.iter().cloned().map(Arc::new).collect();
    let observed = Observed {
        pods: &cluster.pods,
        claims: &cluster.claims,
        volumes: &volumes,
        nodes: &nodes,
        ..copies
    };
    audit(&rdc("CN", 1), &j("CN"), &keys(), &observed)
}

/// The audit of the compliant one-replica cluster with `snapshots` and the snapshot classes
/// `snap-cn` (declared CN), `snap-us` (declared US) and `snap-bare` (declared nothing).
fn audit_with_snapshots(snapshots: Vec<VolumeSnapshot>, default_class: Option<&str>) -> Audit {
    let classes: Vec<Arc<VolumeSnapshotClass>> = [
        ("snap-cn", vec![(JURISDICTION, "CN")]),
        ("snap-us", vec![(JURISDICTION, "US")]),
        ("snap-bare", vec![]),
    ]
    .into_iter()
    .map(|(name, labels)| Arc::new(snapshot_class(name, &labels, default_class == Some(name))))
    .collect();
    let snapshots: Vec<Arc<VolumeSnapshot>> = snapshots.into_iter().map(Arc::new).collect();
    audit_one_replica(Observed {
        snapshots: &snapshots,
        snapshot_classes: &classes,
        ..Default::default()
    })
}

#[test]
fn a_snapshot_on_a_class_declared_for_the_jurisdiction_is_compliant() {
    let audit = audit_with_snapshots(
        vec![snapshot(
            "s",
            "fleet-cn",
            "data-vehicle-data-0",
            Some("snap-cn"),
        )],
        None,
    );
    assert_eq!(reasons(&audit), vec![]);
    assert_eq!(audit.residency, Residency::Compliant);
    assert_eq!(
        audit.copies,
        [DataCopy {
            kind: "VolumeSnapshot".to_owned(),
            name: "s".to_owned(),
            source: "data-vehicle-data-0".to_owned(),
            class: Some("snap-cn".to_owned()),
            jurisdiction: Some("CN".to_owned()),
            inside: true,
        }]
    );
}

#[test]
fn a_snapshot_on_a_class_declared_elsewhere_is_a_copy_outside() {
    let audit = audit_with_snapshots(
        vec![snapshot(
            "s",
            "fleet-cn",
            "data-vehicle-data-0",
            Some("snap-us"),
        )],
        None,
    );
    assert_eq!(
        reasons(&audit),
        vec![(
            "VolumeSnapshot",
            "s".to_owned(),
            ViolationReason::CopyOutsideJurisdiction
        )]
    );
    assert_eq!(audit.residency, Residency::Violated);
    let copy = &audit.copies[0];
    assert_eq!(
        (
            copy.class.as_deref(),
            copy.jurisdiction.as_deref(),
            copy.inside
        ),
        (Some("snap-us"), Some("US"), false)
    );
    let message = &audit.findings[0].message;
    assert!(
        message.contains("snap-us")
            && message.contains("US")
            && message.contains("data-vehicle-data-0"),
        "{message}"
    );
}

#[test]
fn a_snapshot_on_an_undeclared_missing_or_unnamed_class_is_unverifiable() {
    for (class, default) in [
        (Some("snap-bare"), None),
        (Some("gone"), None),
        (None, None),
        (None, Some("snap-bare")),
    ] {
        let audit = audit_with_snapshots(
            vec![snapshot("s", "fleet-cn", "data-vehicle-data-0", class)],
            default,
        );
        assert_eq!(
            reasons(&audit),
            vec![(
                "VolumeSnapshot",
                "s".to_owned(),
                ViolationReason::Unverifiable
            )],
            "class {class:?}, default {default:?}"
        );
        assert_eq!(audit.residency, Residency::Unverifiable);
        assert!(
            audit.copies.len() == 1 && !audit.copies[0].inside,
            "{:?}",
            audit.copies
        );
    }
}

#[test]
fn a_snapshot_naming_no_class_takes_the_single_default() {
    let audit = audit_with_snapshots(
        vec![snapshot("s", "fleet-cn", "data-vehicle-data-0", None)],
        Some("snap-us"),
    );
    assert_eq!(
        reasons(&audit),
        vec![(
            "VolumeSnapshot",
            "s".to_owned(),
            ViolationReason::CopyOutsideJurisdiction
        )]
    );
    let audit = audit_with_snapshots(
        vec![snapshot("s", "fleet-cn", "data-vehicle-data-0", None)],
        Some("snap-cn"),
    );
    assert_eq!(reasons(&audit), vec![]);
}

#[test]
fn snapshots_of_other_claims_or_namespaces_are_not_this_data_centres() {
    let audit = audit_with_snapshots(
        vec![
            snapshot("other-claim", "fleet-cn", "scratch", Some("snap-us")),
            snapshot("other-rdc", "fleet-cn", "data-telemetry-0", Some("snap-us")),
            snapshot(
                "other-ns",
                "fleet-us",
                "data-vehicle-data-0",
                Some("snap-us"),
            ),
        ],
        None,
    );
    assert_eq!(reasons(&audit), vec![]);
    assert_eq!(audit.residency, Residency::Compliant);
    assert_eq!(audit.copies, []);
}

#[test]
fn a_snapshot_class_of_a_subdivision_keeps_copies_of_that_subdivision_only() {
    let classes = [Arc::new(snapshot_class(
        "snap-sh",
        &[(JURISDICTION, "CN"), (SUBDIVISION, "CN-SH")],
        false,
    ))];
    let taken = snapshot("s", "fleet-cn", "data-vehicle-data-0", Some("snap-sh"));
    let (copy, verdict) = audit_snapshot(
        &taken,
        "data-vehicle-data-0",
        &j("CN-SH"),
        &keys(),
        &classes,
    );
    assert!(verdict.is_ok(), "{verdict:?}");
    assert_eq!(
        (copy.jurisdiction.as_deref(), copy.inside),
        (Some("CN-SH"), true)
    );

    let (copy, verdict) = audit_snapshot(
        &taken,
        "data-vehicle-data-0",
        &j("CN-BJ"),
        &keys(),
        &classes,
    );
    let finding = verdict.expect_err("kept in another subdivision");
    assert_eq!(finding.reason, ViolationReason::CopyOutsideJurisdiction);
    assert!(
        finding
            .message
            .contains("declares jurisdiction CN-SH, outside CN-BJ"),
        "{}",
        finding.message
    );
    assert!(!copy.inside);
}

fn velero_meta(name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some("velero".to_owned()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..ObjectMeta::default()
    }
}

fn backup(name: &str, included: &[&str], location: &str) -> Backup {
    Backup {
        metadata: velero_meta(name, &[]),
        spec: copies::BackupSpec {
            included_namespaces: Some(included.iter().map(|n| (*n).to_owned()).collect()),
            storage_location: Some(location.to_owned()),
            ..copies::BackupSpec::default()
        },
    }
}

/// A data centre of CN in `fleet-cn` and these backups and schedules, with the locations `cn`
/// (declared CN), `us` (declared US) and `bare` (declared nothing), and the volume snapshot
/// locations `vsl-cn` and `vsl-us`.
fn audit_with_backups(backups: Vec<Backup>, schedules: Vec<Schedule>, vsl: &[&str]) -> Audit {
    let storage: Vec<Arc<BackupStorageLocation>> = [
        ("cn", vec![(JURISDICTION, "CN")]),
        ("us", vec![(JURISDICTION, "US")]),
        ("bare", vec![]),
    ]
    .into_iter()
    .map(|(name, labels)| {
        Arc::new(BackupStorageLocation {
            metadata: velero_meta(name, &labels),
            ..BackupStorageLocation::default()
        })
    })
    .collect();
    let snapshot_locations: Vec<Arc<VolumeSnapshotLocation>> = [
        ("vsl-cn", (JURISDICTION, "CN")),
        ("vsl-us", (JURISDICTION, "US")),
    ]
    .into_iter()
    .filter(|(name, _)| vsl.contains(name))
    .map(|(name, label)| {
        Arc::new(VolumeSnapshotLocation {
            metadata: velero_meta(name, &[label]),
            spec: copies::VolumeSnapshotLocationSpec {
                provider: "aws".to_owned(),
            },
        })
    })
    .collect();
    let backups: Vec<Arc<Backup>> = backups.into_iter().map(Arc::new).collect();
    let schedules: Vec<Arc<Schedule>> = schedules.into_iter().map(Arc::new).collect();
    audit_one_replica(Observed {
        backups: &backups,
        schedules: &schedules,
        storage_locations: &storage,
        snapshot_locations: &snapshot_locations,
        ..Default::default()
    })
}

#[test]
fn a_backup_of_the_namespace_to_a_location_declared_elsewhere_is_a_copy_outside() {
    let audit = audit_with_backups(vec![backup("nightly", &["fleet-cn"], "us")], vec![], &[]);
    assert_eq!(
        reasons(&audit),
        vec![(
            "Backup",
            "velero/nightly".to_owned(),
            ViolationReason::CopyOutsideJurisdiction
        )]
    );
    assert_eq!(audit.residency, Residency::Violated);
    let message = &audit.findings[0].message;
    assert!(
        message.contains("BackupStorageLocation us declares jurisdiction US, outside CN")
            && message.contains("of namespace fleet-cn"),
        "{message}"
    );
    assert_eq!(
        audit
            .copies
            .iter()
            .map(|c| (c.kind.as_str(), c.class.as_deref(), c.inside))
            .collect::<Vec<_>>(),
        [("Backup", Some("us"), false)]
    );
}

#[test]
fn a_backup_to_a_location_declared_for_the_jurisdiction_is_compliant_and_listed() {
    let audit = audit_with_backups(
        vec![backup("nightly", &["fleet-cn"], "cn")],
        vec![],
        &["vsl-cn"],
    );
    assert_eq!(reasons(&audit), vec![]);
    assert_eq!(audit.residency, Residency::Compliant);
    let copy = &audit.copies[0];
    assert_eq!(
        (
            copy.source.as_str(),
            copy.jurisdiction.as_deref(),
            copy.inside
        ),
        ("namespace fleet-cn", Some("CN"), true)
    );
}

#[test]
fn a_backup_whose_volume_snapshots_may_go_elsewhere_is_a_copy_outside() {
    let audit = audit_with_backups(
        vec![backup("nightly", &["fleet-cn"], "cn")],
        vec![],
        &["vsl-cn", "vsl-us"],
    );
    assert_eq!(
        reasons(&audit),
        vec![(
            "Backup",
            "velero/nightly".to_owned(),
            ViolationReason::CopyOutsideJurisdiction
        )]
    );
    assert!(
        audit.findings[0]
            .message
            .contains("VolumeSnapshotLocation vsl-us")
    );
    // Without volume snapshots, only the storage location counts.
    let mut no_snapshots = backup("nightly", &["fleet-cn"], "cn");
    no_snapshots.spec.snapshot_volumes = Some(false);
    let audit = audit_with_backups(vec![no_snapshots], vec![], &["vsl-us"]);
    assert_eq!(reasons(&audit), vec![]);
}

#[test]
fn a_backup_to_an_undeclared_or_missing_location_is_unverifiable() {
    for location in ["bare", "gone"] {
        let audit = audit_with_backups(
            vec![backup("nightly", &["fleet-cn"], location)],
            vec![],
            &[],
        );
        assert_eq!(
            reasons(&audit),
            vec![(
                "Backup",
                "velero/nightly".to_owned(),
                ViolationReason::Unverifiable
            )],
            "{location}"
        );
    }
}

#[test]
fn a_schedule_of_every_namespace_counts_and_other_namespaces_do_not() {
    let schedule = Schedule {
        metadata: velero_meta("hourly", &[]),
        spec: copies::ScheduleSpec {
            template: backup("", &["*"], "us").spec,
        },
    };
    let audit = audit_with_backups(
        vec![backup("other", &["fleet-us"], "us")],
        vec![schedule],
        &[],
    );
    assert_eq!(
        reasons(&audit),
        vec![(
            "Schedule",
            "velero/hourly".to_owned(),
            ViolationReason::CopyOutsideJurisdiction
        )]
    );
    assert_eq!(audit.copies.len(), 1);
}

// --- workloads others run, covered by spec.members

/// A CN data centre in `fleet-cn` that runs nothing itself and covers `cnpg.io/cluster: orders`.
fn covering_orders() -> RegionalDataCenter {
    let mut data_centre = rdc("CN", 0);
    data_centre.spec.workload = None;
    data_centre.spec.storage = None;
    data_centre.spec.members = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some(BTreeMap::from([(
                "cnpg.io/cluster".to_owned(),
                "orders".to_owned(),
            )])),
            match_expressions: None,
        },
    );
    data_centre
}

/// A pod of the orders database (run by its Cluster) on `node`, mounting claim `orders-1`; or,
/// unlabelled, a pod nobody covers.
fn orders_pod(name: &str, node: &str, labelled: bool) -> Pod {
    let labels: &[(&str, &str)] = if labelled {
        &[("cnpg.io/cluster", "orders")]
    } else {
        &[("app", "stray")]
    };
    let mut pod = mounting(
        Pod {
            metadata: meta(name, labels),
            spec: Some(PodSpec {
                node_name: Some(node.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        "orders-1",
    );
    pod.metadata.namespace = Some("fleet-cn".to_owned());
    pod.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            kind: "Cluster".to_owned(),
            name: "orders".to_owned(),
            controller: Some(true),
            ..Default::default()
        },
    ]);
    pod
}

/// Its claim `orders-1`, bound to `volume`, without a label of its own (the pod brings it in).
fn orders_claim(volume: &str) -> PersistentVolumeClaim {
    let mut claim = claim("orders-1", Some(volume));
    claim.metadata.labels = None;
    claim.metadata.namespace = Some("fleet-cn".to_owned());
    claim
}

fn audit_members(
    data_centre: &RegionalDataCenter,
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
    volumes: Vec<PersistentVolume>,
    snapshots: Vec<VolumeSnapshot>,
) -> Audit {
    let cluster = Cluster::one_replica("cn-1", local_pv("pv-0", "cn-1"));
    let nodes: Vec<_> = cluster.nodes.into_iter().map(Arc::new).collect();
    let volumes: Vec<_> = volumes.into_iter().map(Arc::new).collect();
    let snapshots: Vec<_> = snapshots.into_iter().map(Arc::new).collect();
    let classes = vec![Arc::new(snapshot_class(
        "snap-us",
        &[(JURISDICTION, "US")],
        false,
    ))];
    let observed = Observed {
        member_pods: pods,
        member_claims: claims,
        volumes: &volumes,
        nodes: &nodes,
        snapshots: &snapshots,
        snapshot_classes: &classes,
        ..Default::default()
    };
    audit(data_centre, &j("CN"), &keys(), &observed)
}

#[test]
fn a_covered_pod_and_its_data_inside_are_compliant_and_placed_with_their_owner() {
    let audit = audit_members(
        &covering_orders(),
        &[orders_pod("orders-1", "cn-1", true)],
        &[orders_claim("pv-o")],
        vec![local_pv("pv-o", "cn-2")],
        vec![],
    );
    assert_eq!(reasons(&audit), vec![]);
    assert_eq!(audit.residency, Residency::Compliant);
    assert_eq!(
        audit.placements,
        [Placement {
            pod: "orders-1".to_owned(),
            owner: Some("Cluster/orders".to_owned()),
            node: Some("cn-1".to_owned()),
            node_jurisdiction: Some("CN".to_owned()),
            volume: Some("pv-o".to_owned()),
            volume_node: Some("cn-2".to_owned()),
            compliant: true,
        }]
    );
}

#[test]
fn a_covered_pod_outside_is_violated_and_named_with_what_runs_it() {
    let audit = audit_members(
        &covering_orders(),
        &[orders_pod("orders-1", "de-1", true)],
        &[orders_claim("pv-o")],
        vec![local_pv("pv-o", "cn-2")],
        vec![],
    );
    assert_eq!(
        reasons(&audit),
        vec![(
            "Pod",
            "orders-1".to_owned(),
            ViolationReason::NodeOutsideJurisdiction
        )]
    );
    assert!(
        audit.findings[0].message.contains("Cluster/orders"),
        "{}",
        audit.findings[0].message
    );
    assert_eq!(audit.residency, Residency::Violated);
    assert!(!audit.placements[0].compliant);
}

#[test]
fn the_data_of_a_covered_claim_outside_is_violated() {
    let audit = audit_members(
        &covering_orders(),
        &[orders_pod("orders-1", "cn-1", true)],
        &[orders_claim("pv-o")],
        vec![local_pv("pv-o", "de-1")],
        vec![],
    );
    assert_eq!(
        reasons(&audit),
        vec![(
            "PersistentVolume",
            "pv-o".to_owned(),
            ViolationReason::DataOutsideJurisdiction
        )]
    );
}

#[test]
fn pods_the_selector_does_not_pick_or_of_other_namespaces_are_not_covered() {
    let mut elsewhere = orders_pod("orders-2", "de-1", true);
    elsewhere.metadata.namespace = Some("fleet-us".to_owned());
    let audit = audit_members(
        &covering_orders(),
        &[orders_pod("stray", "de-1", false), elsewhere],
        &[],
        vec![],
        vec![],
    );
    assert_eq!(reasons(&audit), vec![]);
    assert!(audit.placements.is_empty());
    // Covering nothing is not evidence of anything.
    assert_eq!(audit.residency, Residency::Pending);
}

#[test]
fn a_snapshot_of_a_covered_claim_is_a_copy_of_the_data() {
    let audit = audit_members(
        &covering_orders(),
        &[orders_pod("orders-1", "cn-1", true)],
        &[orders_claim("pv-o")],
        vec![local_pv("pv-o", "cn-2")],
        vec![snapshot(
            "orders-s",
            "fleet-cn",
            "orders-1",
            Some("snap-us"),
        )],
    );
    assert_eq!(
        reasons(&audit),
        vec![(
            "VolumeSnapshot",
            "orders-s".to_owned(),
            ViolationReason::CopyOutsideJurisdiction
        )]
    );
}

// --- what nobody declared in a jurisdiction namespace

#[test]
fn an_undeclared_pod_and_volume_are_judged_by_the_same_rules_and_covered_ones_skipped() {
    let cluster = Cluster::one_replica("cn-1", local_pv("pv-0", "cn-1"));
    let nodes: Vec<_> = cluster.nodes.into_iter().map(Arc::new).collect();
    let volumes: Vec<_> = [local_pv("pv-stray", "de-1"), local_pv("pv-0", "cn-1")]
        .into_iter()
        .map(Arc::new)
        .collect();
    let stray = orders_pod("stray", "de-1", false);
    let unscheduled = {
        let mut pod = orders_pod("waiting", "cn-1", false);
        pod.spec.as_mut().expect("a spec").node_name = None;
        pod
    };
    let replica = pod("vehicle-data-0", Some("cn-1"));
    let claims = [
        claim("stray-data", Some("pv-stray")),
        claim("data-vehicle-data-0", Some("pv-0")),
        claim("unbound", None),
    ];
    let covered =
        std::collections::HashSet::from([("Pod", "vehicle-data-0"), ("PersistentVolume", "pv-0")]);
    let observed = Observed {
        volumes: &volumes,
        nodes: &nodes,
        ..Default::default()
    };
    let found = audit_namespace(
        &j("CN"),
        &keys(),
        &[stray, unscheduled, replica],
        &claims,
        &covered,
        &observed,
    );
    let verdicts: Vec<(&str, &str, Option<ViolationReason>)> = found
        .iter()
        .map(|u| {
            (
                u.kind,
                u.name.as_str(),
                u.verdict.as_ref().err().map(|f| f.reason),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            (
                "PersistentVolume",
                "pv-stray",
                Some(ViolationReason::DataOutsideJurisdiction)
            ),
            (
                "Pod",
                "stray",
                Some(ViolationReason::NodeOutsideJurisdiction)
            ),
        ]
    );
    assert_eq!(found[0].claim.as_deref(), Some("stray-data"));
    assert_eq!(found[1].node.as_deref(), Some("de-1"));
}
