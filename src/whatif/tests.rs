use super::*;
use crate::residency::tests::{claim, cn, local_pv, node, pod};
use crate::resources::claim_name;
use crate::resources::fixtures::rdc;

/// Two CN nodes with a replica and its local volume on each, and a node without a label.
fn snapshot() -> Snapshot {
    let mut rdc = rdc("CN", 2);
    rdc.metadata.namespace = Some("fleet-cn".to_owned());
    let in_namespace = |mut meta: kube::api::ObjectMeta| {
        meta.namespace = Some("fleet-cn".to_owned());
        meta
    };
    let claims = (0..2)
        .map(|ordinal| {
            let mut claim = claim(&claim_name(&rdc, ordinal), Some(&format!("pv-{ordinal}")));
            claim.metadata = in_namespace(claim.metadata);
            claim
        })
        .collect();
    let pods = [("vehicle-data-0", "cn-1"), ("vehicle-data-1", "cn-2")]
        .map(|(name, node)| {
            let mut pod = pod(name, Some(node));
            pod.metadata = in_namespace(pod.metadata);
            pod
        })
        .to_vec();
    Snapshot {
        nodes: [cn("cn-1"), cn("cn-2"), node("unlabelled-1", &[])]
            .map(Arc::new)
            .to_vec(),
        volumes: [local_pv("pv-0", "cn-1"), local_pv("pv-1", "cn-2")]
            .map(Arc::new)
            .to_vec(),
        classes: vec![],
        snapshots: vec![],
        snapshot_classes: vec![],
        velero: super::Velero::default(),
        data_centers: vec![rdc],
        pods,
        claims,
    }
}

fn ask(changes: &[Change]) -> Result<Vec<Impact>, String> {
    what_if(&snapshot(), changes, &NodeLabelKeys::default())
}

#[test]
fn relabelling_a_node_with_a_replica_breaks_it() {
    let impacts = ask(&[Change::parse_relabel("cn-1=US").expect("valid")]).expect("known node");
    let [impact] = impacts.as_slice() else {
        panic!("{impacts:?}")
    };
    assert!(impact.breaks);
    assert_eq!(
        (impact.residency, impact.residency_after),
        (Residency::Compliant, Residency::Violated)
    );
    assert_eq!((impact.eligible_nodes, impact.eligible_nodes_after), (2, 1));
    assert!(
        impact
            .effects
            .iter()
            .any(|e| e.contains("vehicle-data-0") && e.contains("\"US\"")),
        "{:?}",
        impact.effects
    );
    let text = table(
        &[Change::parse_relabel("cn-1=US").expect("valid")],
        &impacts,
    );
    assert!(
        text.starts_with("What if: relabel cn-1 US. 1 data centre(s) affected, 1 would break."),
        "{text}"
    );
}

#[test]
fn labelling_a_new_node_breaks_nothing() {
    let impacts = ask(&[Change::parse_relabel("unlabelled-1=CN").expect("valid")]).expect("known");
    let [impact] = impacts.as_slice() else {
        panic!("{impacts:?}")
    };
    assert!(!impact.breaks);
    assert_eq!((impact.eligible_nodes, impact.eligible_nodes_after), (2, 3));
    // Another jurisdiction's label on it concerns nobody.
    assert_eq!(
        ask(&[Change::parse_relabel("unlabelled-1=DE").expect("valid")]),
        Ok(vec![])
    );
}

#[test]
fn draining_the_node_of_local_data_strands_its_pod() {
    let impacts = ask(&[Change::Drain {
        node: "cn-1".to_owned(),
    }])
    .expect("known node");
    let [impact] = impacts.as_slice() else {
        panic!("{impacts:?}")
    };
    assert!(impact.breaks);
    assert_eq!(impact.residency_after, Residency::Compliant);
    assert_eq!(impact.stranded.len(), 1);
    assert!(
        impact.stranded[0].contains("vehicle-data-0"),
        "{:?}",
        impact.stranded
    );
    assert_eq!(impact.eligible_nodes_after, 1);
}

#[test]
fn unknown_nodes_and_bad_labels_are_refused_with_the_fix() {
    assert_eq!(
        ask(&[Change::Drain {
            node: "nowhere".to_owned()
        }]),
        Err("no node \"nowhere\" in the cluster".to_owned())
    );
    assert_eq!(
        Change::parse_relabel("cn-1=-"),
        Ok(Change::Relabel {
            node: "cn-1".to_owned(),
            value: None
        })
    );
    for bad in ["cn-1", "=CN", "cn-1=", "cn-1=XX"] {
        let err = Change::parse_relabel(bad).expect_err(bad);
        assert!(err.starts_with(&format!("--relabel {bad:?}")), "{err}");
    }
}
