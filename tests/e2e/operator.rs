//! The operator at work: jurisdiction-pinned storage and workloads, reported on the resource.

use std::time::Duration;

use serde_json::Value;

use crate::support::{
    AS_TRUSTED_CONTROLLER, EVENT_WITHIN, JURISDICTION_LABEL, SUBDIVISION_LABEL, TestNamespace,
    TestNode, kubectl_ok, local_rdc, node_labels, poll,
};

/// The node a local volume is pinned to.
fn volume_node(pv: &Value) -> String {
    let term =
        &pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0];
    assert_eq!(term["key"], "kubernetes.io/hostname", "{pv}");
    term["values"][0].as_str().expect("one node").to_owned()
}

/// Checks that every replica of `rdc` runs on a node of `country` (and `subdivision`), that each
/// claim is bound to a volume on such a node, and that the status names the same places.
fn assert_placed_in(
    ns: &TestNamespace,
    rdc: &str,
    replicas: usize,
    country: &str,
    subdivision: Option<&str>,
) {
    let in_jurisdiction = |node: &str| {
        let labels = node_labels(node);
        labels[JURISDICTION_LABEL] == country
            && subdivision.is_none_or(|s| labels[SUBDIVISION_LABEL] == s)
    };
    let pods = ns.list_of("pods", rdc);
    assert_eq!(pods.len(), replicas, "pods of {rdc}");
    let mut pod_nodes = std::collections::BTreeMap::new();
    for pod in &pods {
        let node = pod["spec"]["nodeName"]
            .as_str()
            .expect("scheduled")
            .to_owned();
        assert!(
            in_jurisdiction(&node),
            "pod {} on {node}, outside {country}",
            pod["metadata"]["name"]
        );
        pod_nodes.insert(
            pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            node,
        );
    }
    let claims = ns.list_of("pvc", rdc);
    assert_eq!(claims.len(), replicas, "claims of {rdc}");
    let mut volume_nodes = std::collections::BTreeMap::new();
    for claim in &claims {
        assert_eq!(claim["status"]["phase"], "Bound", "{claim}");
        let volume = claim["spec"]["volumeName"]
            .as_str()
            .expect("bound to a volume");
        let pv: Value =
            serde_json::from_str(&kubectl_ok(&["get", "pv", volume, "-o", "json"], None))
                .expect("JSON");
        let node = volume_node(&pv);
        assert!(
            in_jurisdiction(&node),
            "volume {volume} on {node}, outside {country}"
        );
        volume_nodes.insert(volume.to_owned(), node);
    }

    let status = ns.get_json("rdc", rdc).expect("the rdc exists")["status"].clone();
    assert_eq!(status["residency"], "Compliant", "{status:#}");
    assert_eq!(status["phase"], "Ready", "{status:#}");
    assert_eq!(status["ready"], format!("{replicas}/{replicas}"));
    let placements = status["placements"].as_array().expect("placements");
    assert_eq!(placements.len(), replicas, "{status:#}");
    for placement in placements {
        let pod = placement["pod"].as_str().expect("a pod");
        assert_eq!(
            placement["node"].as_str(),
            pod_nodes.get(pod).map(String::as_str),
            "{placement}"
        );
        assert_eq!(placement["nodeJurisdiction"], country);
        let volume = placement["volume"].as_str().expect("a volume");
        assert_eq!(
            placement["volumeNode"].as_str(),
            volume_nodes.get(volume).map(String::as_str),
            "{placement}"
        );
        assert_eq!(placement["compliant"], true);
    }
    for condition in status["conditions"].as_array().expect("conditions") {
        assert_eq!(condition["status"], "True", "{condition}");
        assert_eq!(condition["observedGeneration"], 1, "{condition}");
    }
}

#[test]
fn local_cn_data_centre_is_ready_and_compliant_on_cn_nodes() {
    let ns = TestNamespace::new("local_cn");
    ns.create_and_wait_ready(&local_rdc("vehicle-data", "CN", 3));
    assert_placed_in(&ns, "vehicle-data", 3, "CN", None);
    let table = ns.kubectl_ok(&["get", "rdc", "vehicle-data", "--no-headers"], None);
    let row: Vec<_> = table.split_whitespace().collect();
    assert_eq!(
        row[..5],
        ["vehicle-data", "CN", "3/3", "Compliant", "Ready"],
        "{table}"
    );
}

#[test]
fn de_data_centre_in_another_namespace_converges_independently() {
    let cn = TestNamespace::new("independent_cn");
    let de = TestNamespace::new("independent_de");
    cn.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&local_rdc("shared-name", "CN", 2).to_string()),
    );
    de.create_and_wait_ready(&local_rdc("shared-name", "DE", 2));
    assert_placed_in(&de, "shared-name", 2, "DE", None);
    cn.wait_ready("shared-name");
    assert_placed_in(&cn, "shared-name", 2, "CN", None);
}

#[test]
fn subdivision_data_centre_lands_only_on_the_subdivision_node() {
    let ns = TestNamespace::new("subdivision");
    ns.create_and_wait_ready(&local_rdc("telemetry", "CN-SH", 1));
    assert_placed_in(&ns, "telemetry", 1, "CN", Some("CN-SH"));
}

#[test]
fn data_centre_without_nodes_waits_for_a_label_and_then_converges() {
    let ns = TestNamespace::new("no_nodes");
    // A node of the test's own, still without a jurisdiction; FR is used by no other test.
    let node = TestNode::new("e2e-fr", &[]);
    ns.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&local_rdc("paris", "FR", 1).to_string()),
    );

    let ready = poll(
        "Ready=False with reason NoEligibleNodes",
        Duration::from_secs(60),
        || {
            let rdc = ns.get_json("rdc", "paris")?;
            let conditions = rdc["status"]["conditions"].as_array()?.clone();
            conditions
                .into_iter()
                .find(|c| c["type"] == "Ready" && c["reason"] == "NoEligibleNodes")
        },
    );
    assert_eq!(ready["status"], "False");
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "kubectl label node <node> {JURISDICTION_LABEL}=FR"
        )),
        "{message}"
    );
    let rdc = ns.get_json("rdc", "paris").expect("exists");
    assert_eq!(rdc["status"]["phase"], "Pending");
    assert!(
        ns.get_json("statefulset", "paris").is_none(),
        "nothing is provisioned without a node"
    );

    let events = poll("a Warning Event NoEligibleNodes", EVENT_WITHIN, || {
        let out = ns.kubectl_ok(
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=paris,type=Warning",
                "-o",
                "json",
            ],
            None,
        );
        let events: Value = serde_json::from_str(&out).expect("JSON");
        let items = events["items"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .any(|e| e["reason"] == "NoEligibleNodes")
            .then_some(items)
    });
    assert_eq!(
        events
            .iter()
            .filter(|e| e["reason"] == "NoEligibleNodes")
            .count(),
        1,
        "announced once"
    );

    kubectl_ok(
        &[
            "label",
            "node",
            &node.name,
            &format!("{JURISDICTION_LABEL}=FR"),
        ],
        None,
    );
    ns.wait_ready("paris");
    assert_placed_in(&ns, "paris", 1, "FR", None);
    assert_eq!(
        ns.get_json("rdc", "paris").expect("exists")["metadata"]["generation"],
        1,
        "the RDC was not edited"
    );
}

#[test]
fn deleting_a_data_centre_keeps_its_claims_and_volumes() {
    let ns = TestNamespace::new("delete_keeps_data");
    ns.create_and_wait_ready(&local_rdc("ledger", "CN", 2));
    let claims = ["data-ledger-0", "data-ledger-1"];
    let volumes: Vec<String> = claims
        .iter()
        .map(|claim| {
            let pvc = ns.get_json("pvc", claim).expect("the claim exists");
            pvc["spec"]["volumeName"]
                .as_str()
                .expect("bound")
                .to_owned()
        })
        .collect();
    // Named by namespace, name, the first group of the resource's UID and the ordinal.
    let uid = ns.get_json("rdc", "ledger").expect("the RDC")["metadata"]["uid"]
        .as_str()
        .expect("a uid")
        .to_owned();
    let group = uid.split('-').next().expect("a group");
    assert_eq!(
        volumes,
        [
            format!("domicile-{}.ledger-{group}-0", ns.name),
            format!("domicile-{}.ledger-{group}-1", ns.name)
        ]
    );

    // `kubectl delete` waits until the finalizer is done and the object is gone.
    ns.kubectl_ok(&["delete", "rdc", "ledger", "--timeout=60s"], None);
    assert!(ns.get_json("rdc", "ledger").is_none());
    poll(
        "the garbage collector to remove the StatefulSet and Service",
        Duration::from_secs(60),
        || {
            (ns.get_json("statefulset", "ledger").is_none()
                && ns.get_json("service", "ledger").is_none())
            .then_some(())
        },
    );
    for claim in claims {
        assert!(
            ns.get_json("pvc", claim).is_some(),
            "claim {claim} was deleted"
        );
    }
    for volume in &volumes {
        let pv: Value =
            serde_json::from_str(&kubectl_ok(&["get", "pv", volume, "-o", "json"], None))
                .expect("JSON");
        assert!(
            pv["metadata"]["deletionTimestamp"].is_null(),
            "volume {volume} is being deleted"
        );
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    }
}

#[test]
fn children_deleted_by_hand_are_recreated() {
    let ns = TestNamespace::new("recreate_children");
    ns.create_and_wait_ready(&local_rdc("orders", "DE", 1));
    for kind in ["statefulset", "service"] {
        let before =
            ns.get_json(kind, "orders").expect("the child exists")["metadata"]["uid"].clone();
        // As a controller the managed-objects policy trusts (it refuses a person).
        ns.kubectl_ok(
            &[
                "delete",
                AS_TRUSTED_CONTROLLER,
                kind,
                "orders",
                "--wait=true",
                "--timeout=60s",
            ],
            None,
        );
        poll(
            &format!("the {kind} to be recreated"),
            Duration::from_secs(60),
            || {
                let uid = ns.get_json(kind, "orders")?["metadata"]["uid"].clone();
                (uid != before).then_some(())
            },
        );
    }
    ns.wait_ready("orders");
}

/// Waits until the Ready condition of `rdc` is False with `reason`, and returns its message.
fn wait_not_ready(ns: &TestNamespace, rdc: &str, reason: &str) -> String {
    let ready = poll(
        &format!("Ready=False with reason {reason}"),
        Duration::from_secs(60),
        || {
            let object = ns.get_json("rdc", rdc)?;
            let conditions = object["status"]["conditions"].as_array()?.clone();
            conditions
                .into_iter()
                .find(|c| c["type"] == "Ready" && c["reason"] == reason)
        },
    );
    assert_eq!(ready["status"], "False", "{ready}");
    ready["message"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn local_mode_with_more_replicas_than_eligible_nodes_waits_and_says_why() {
    let ns = TestNamespace::new("too_few_nodes");
    // Two nodes carry DE; Local mode needs a node per replica.
    ns.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&local_rdc("archive", "DE", 3).to_string()),
    );
    let message = wait_not_ready(&ns, "archive", "InsufficientEligibleNodes");
    assert!(message.contains("3 replicas need 3 nodes"), "{message}");
    assert!(message.contains("but 2 are"), "{message}");
    assert!(
        ns.get_json("statefulset", "archive").is_none(),
        "nothing is provisioned half-way"
    );

    ns.kubectl_ok(
        &[
            "patch",
            "rdc",
            "archive",
            "--type=merge",
            "-p",
            r#"{"spec":{"workload":{"replicas":2}}}"#,
        ],
        None,
    );
    ns.wait_ready("archive");
    assert_placed_in_generation(&ns, "archive", 2);
}

/// After an edit the conditions must describe the new generation.
fn assert_placed_in_generation(ns: &TestNamespace, rdc: &str, generation: i64) {
    let object = ns.get_json("rdc", rdc).expect("exists");
    assert_eq!(object["status"]["observedGeneration"], generation);
    for condition in object["status"]["conditions"]
        .as_array()
        .expect("conditions")
    {
        assert_eq!(condition["observedGeneration"], generation, "{condition}");
    }
}

#[test]
fn missing_storage_class_waits_and_says_how_to_fix_it() {
    let ns = TestNamespace::new("missing_class");
    let manifest = serde_json::json!({
        "apiVersion": "domicile.dev/v1alpha1",
        "kind": "RegionalDataCenter",
        "metadata": {"name": "records"},
        "spec": {
            "jurisdiction": "DE",
            "storage": {"size": "1Gi", "storageClassName": "e2e-absent-class"},
            "workload": {"image": "registry.example/records:2.0"}
        }
    });
    ns.kubectl_ok(&["apply", "-f", "-"], Some(&manifest.to_string()));
    let message = wait_not_ready(&ns, "records", "StorageClassNotFound");
    assert!(
        message.contains("\"e2e-absent-class\", which does not exist"),
        "{message}"
    );
    let events = poll("a Warning Event StorageClassNotFound", EVENT_WITHIN, || {
        let selector = "involvedObject.name=records,reason=StorageClassNotFound,type=Warning";
        let names = ns.kubectl_ok(
            &["get", "events", "--field-selector", selector, "-o", "name"],
            None,
        );
        (!names.trim().is_empty()).then_some(names)
    });
    assert_eq!(events.lines().count(), 1, "announced once: {events}");
}

#[test]
fn deleting_a_data_centre_that_asked_for_it_deletes_its_claims_and_volumes() {
    let ns = TestNamespace::new("delete_data");
    let mut manifest = local_rdc("scratch", "DE", 1);
    manifest["spec"]["storage"]["retainOnDelete"] = serde_json::json!(false);
    ns.create_and_wait_ready(&manifest);
    let volume = ns
        .get_json("pvc", "data-scratch-0")
        .expect("the claim exists")["spec"]["volumeName"]
        .as_str()
        .expect("bound")
        .to_owned();

    ns.kubectl_ok(&["delete", "rdc", "scratch", "--timeout=60s"], None);
    poll(
        "the claim and the volume to be deleted",
        Duration::from_secs(90),
        || {
            let claim_gone = ns.get_json("pvc", "data-scratch-0").is_none();
            let volume_gone = !crate::support::kubectl(&["get", "pv", &volume], None).success;
            (claim_gone && volume_gone).then_some(())
        },
    );
}
