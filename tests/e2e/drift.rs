//! Residency drift: relabelled nodes, volumes bound by hand, undeclared classes, enforcement, and
//! the read-only `domicile audit`. Every test relabels only nodes it created, in a jurisdiction
//! no other test uses, so the scenarios can run side by side.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    ClusterObject, EVENT_WITHIN, JURISDICTION_LABEL, TestNamespace, TestNode, kubectl_ok,
    local_rdc, poll, unique, violations,
};

/// The status of `rdc` once `accept` holds for it.
fn wait_status(
    ns: &TestNamespace,
    rdc: &str,
    what: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    poll(what, Duration::from_secs(90), || {
        let status = ns.get_json("rdc", rdc)?["status"].clone();
        accept(&status).then_some(status)
    })
}

fn residency_is(expected: &'static str) -> impl Fn(&Value) -> bool {
    move |status| status["residency"] == expected
}

fn relabel(node: &str, value: Option<&str>) {
    let label = match value {
        Some(value) => format!("{JURISDICTION_LABEL}={value}"),
        None => format!("{JURISDICTION_LABEL}-"),
    };
    kubectl_ok(&["label", "node", node, &label, "--overwrite"], None);
}

/// Runs `domicile audit` on one namespace; returns its exit code and output.
fn domicile_audit(ns: &TestNamespace, json: bool) -> (i32, String) {
    let binary = std::env::var("DOMICILE_BIN")
        .expect("DOMICILE_BIN names the domicile binary (hack/e2e.sh sets it)");
    let mut args = vec!["audit", "-n", ns.name.as_str()];
    if json {
        args.extend(["-o", "json"]);
    }
    let out = std::process::Command::new(binary)
        .args(&args)
        .output()
        .expect("domicile runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `domicile audit` says what the status says. The cluster may still be settling (a pod being
/// scheduled), so the two are compared until they agree, within a bound.
fn assert_audit_agrees(ns: &TestNamespace, rdc: &str, expected_exit: i32) {
    let mut last = String::new();
    let agreed = poll_quietly(Duration::from_secs(30), || {
        let status = ns.get_json("rdc", rdc)?["status"].clone();
        let (code, text) = domicile_audit(ns, true);
        let reports: Value = serde_json::from_str(&text).expect("domicile audit prints JSON");
        let report = reports
            .as_array()
            .and_then(|r| r.first())
            .cloned()
            .unwrap_or_default();
        let same = code == expected_exit
            && report["name"] == rdc
            && report["residency"] == status["residency"]
            && violations(&report) == violations(&status)
            && report["placements"] == status["placements"];
        last =
            format!("exit {code}, expected {expected_exit}\naudit: {report:#}\nstatus: {status:#}");
        same.then_some(status)
    });
    let status =
        agreed.unwrap_or_else(|| panic!("domicile audit and the status disagree:\n{last}"));
    let (code, table) = domicile_audit(ns, false);
    assert_eq!(code, expected_exit, "{table}");
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row.get(3).copied(), status["residency"].as_str(), "{table}");
}

/// Like `poll`, but returns None at the deadline instead of failing.
fn poll_quietly<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn warning_reasons(ns: &TestNamespace, rdc: &str) -> Vec<String> {
    ns.events_of(rdc, "")
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["type"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn relabelled_or_unlabelled_node_turns_the_data_centre_violated_and_back() {
    let nodes = [
        TestNode::new("e2e-jp", &[(JURISDICTION_LABEL, "JP")]),
        TestNode::new("e2e-jp", &[(JURISDICTION_LABEL, "JP")]),
    ];
    let ns = TestNamespace::new("relabel");
    ns.create_and_wait_ready(&local_rdc("tokyo", "JP", 1));
    let pod = ns.get_json("pod", "tokyo-0").expect("the pod runs");
    let uid = pod["metadata"]["uid"].clone();
    let node = pod["spec"]["nodeName"]
        .as_str()
        .expect("scheduled")
        .to_owned();
    assert!(nodes.iter().any(|n| n.name == node));
    assert_audit_agrees(&ns, "tokyo", 0);

    for (what, value) in [("a different label", Some("KR")), ("no label", None)] {
        let start = Instant::now();
        relabel(&node, value);
        let status = wait_status(&ns, "tokyo", "residency Violated", residency_is("Violated"));
        let detected = start.elapsed();
        eprintln!("node with {what}: status Violated {detected:?} after the relabel");
        assert_eq!(status["phase"], "Violated");
        let found = violations(&status);
        assert!(
            found.contains(&(
                "NodeOutsideJurisdiction".into(),
                "Pod".into(),
                "tokyo-0".into()
            )),
            "{found:?}"
        );
        let volume = status["placements"][0]["volume"]
            .as_str()
            .expect("a volume")
            .to_owned();
        assert!(
            found.contains(&(
                "DataOutsideJurisdiction".into(),
                "PersistentVolume".into(),
                volume
            )),
            "{found:?}"
        );
        let message = status["violations"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains(&node), "{message}");
        assert_audit_agrees(&ns, "tokyo", 1);

        let start = Instant::now();
        relabel(&node, Some("JP"));
        let status = wait_status(
            &ns,
            "tokyo",
            "residency Compliant again",
            residency_is("Compliant"),
        );
        eprintln!(
            "node relabelled back: status Compliant {:?} after the relabel",
            start.elapsed()
        );
        assert!(violations(&status).is_empty());
        assert_audit_agrees(&ns, "tokyo", 0);
    }

    let reasons = poll("the violation and clearance Events", EVENT_WITHIN, || {
        let reasons = warning_reasons(&ns, "tokyo");
        (reasons.contains(&"Warning/NodeOutsideJurisdiction".to_owned())
            && reasons.contains(&"Warning/DataOutsideJurisdiction".to_owned())
            && reasons.contains(&"Normal/ViolationCleared".to_owned()))
        .then_some(reasons)
    });
    assert!(
        !reasons.iter().any(|r| r.ends_with("/Evicted")),
        "Audit mode evicts nothing: {reasons:?}"
    );
    let pod = ns.get_json("pod", "tokyo-0").expect("the pod still runs");
    assert_eq!(
        pod["metadata"]["uid"], uid,
        "Audit mode must not evict the pod"
    );
    assert_eq!(pod["spec"]["nodeName"], node.as_str());
}

/// A class labelled (or not) with a jurisdiction, whose volumes a test creates by hand.
pub(crate) fn class(name: &str, declared: Option<&str>) -> ClusterObject {
    let labels = declared.map_or(json!({}), |j| json!({ JURISDICTION_LABEL: j }));
    ClusterObject::create(
        "storageclass",
        &json!({
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name, "labels": labels},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "Immediate",
            "reclaimPolicy": "Retain"
        }),
    )
}

/// A volume pre-bound to `claim` in `ns`: network storage without node affinity when `host` is
/// None, else a local volume pinned to `host`.
pub(crate) fn volume(
    class: &str,
    ns: &TestNamespace,
    claim: &str,
    host: Option<&str>,
) -> ClusterObject {
    let mut spec = json!({
        "capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": class,
        "claimRef": {"namespace": ns.name, "name": claim},
    });
    match host {
        None => spec["nfs"] = json!({"server": "192.0.2.10", "path": "/exports/e2e"}),
        Some(host) => {
            spec["local"] = json!({"path": "/mnt/e2e"});
            spec["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}
            ]}]}});
        }
    }
    ClusterObject::create(
        "pv",
        &json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": unique("e2e-pv")}, "spec": spec}),
    )
}

pub(crate) fn dynamic_rdc(name: &str, jurisdiction: &str, class: &str, enforcement: &str) -> Value {
    json!({
        "apiVersion": "domicile.dev/v1alpha1",
        "kind": "RegionalDataCenter",
        "metadata": {"name": name},
        "spec": {
            "jurisdiction": jurisdiction,
            "storage": {"size": "1Gi", "storageClassName": class},
            "workload": {"image": "registry.example/ingest:1.4", "replicas": 1},
            "enforcement": enforcement
        }
    })
}

#[test]
fn volume_pinned_outside_the_jurisdiction_is_data_outside_jurisdiction() {
    let ns = TestNamespace::new("data_outside");
    let class_name = unique("e2e-declared-cn");
    let _class = class(&class_name, Some("CN"));
    // A volume on the US node, bound by hand to the claim of replica 0.
    let pv = volume(&class_name, &ns, "data-ledger-0", Some("us-east-1"));
    ns.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&dynamic_rdc("ledger", "CN", &class_name, "Audit").to_string()),
    );
    let status = wait_status(
        &ns,
        "ledger",
        "residency Violated",
        residency_is("Violated"),
    );
    let found = violations(&status);
    assert_eq!(
        found,
        [(
            "DataOutsideJurisdiction".to_owned(),
            "PersistentVolume".to_owned(),
            pv.name.clone()
        )]
    );
    assert!(
        status["violations"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("us-east-1")
    );
    assert_eq!(status["placements"][0]["volumeNode"], "us-east-1");
    assert_audit_agrees(&ns, "ledger", 1);
}

#[test]
fn network_volume_on_an_undeclared_class_is_unverifiable_until_the_class_is_declared() {
    // The claims policy would refuse the claim on an undeclared class: the namespace is exempt.
    let ns = TestNamespace::exempt("unverifiable");
    let class_name = unique("e2e-nas");
    let _class = class(&class_name, None);
    let pv = volume(&class_name, &ns, "data-archive-0", None);
    ns.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&dynamic_rdc("archive", "CN", &class_name, "Audit").to_string()),
    );
    let status = wait_status(
        &ns,
        "archive",
        "residency Unverifiable",
        residency_is("Unverifiable"),
    );
    assert_eq!(
        violations(&status),
        [(
            "Unverifiable".to_owned(),
            "PersistentVolume".to_owned(),
            pv.name.clone()
        )]
    );
    let message = status["violations"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains(&format!("kubectl label storageclass {class_name}")),
        "{message}"
    );
    assert_audit_agrees(&ns, "archive", 1);
    // The policy report says warn for the volume (Unverifiable), not fail; pass once declared.
    let volume_result = |expected: &str| {
        crate::support::poll_seen(
            &format!("{expected} for the volume in the policy report"),
            Duration::from_secs(60),
            || {
                let (results, summary) =
                    crate::reports::report(&ns, "policyreport").unwrap_or_default();
                results
                    .iter()
                    .any(|(rule, name, result)| {
                        rule == "volume-node-jurisdiction" && *name == pv.name && result == expected
                    })
                    .then_some(())
                    .ok_or(format!("{results:?} {summary}"))
            },
        );
    };
    volume_result("warn");

    kubectl_ok(
        &[
            "label",
            "storageclass",
            &class_name,
            &format!("{JURISDICTION_LABEL}=CN"),
        ],
        None,
    );
    ns.wait_ready("archive");
    let status = ns.get_json("rdc", "archive").expect("exists")["status"].clone();
    assert_eq!(status["residency"], "Compliant");
    assert_audit_agrees(&ns, "archive", 0);
    volume_result("pass");
}

#[test]
fn enforce_evicts_a_misplaced_pod_which_restarts_inside_with_its_data() {
    let _nodes = [
        TestNode::new("e2e-sg", &[(JURISDICTION_LABEL, "SG")]),
        TestNode::new("e2e-sg", &[(JURISDICTION_LABEL, "SG")]),
    ];
    let ns = TestNamespace::new("enforce_moves_pod");
    let class_name = unique("e2e-nas-sg");
    let _class = class(&class_name, Some("SG"));
    let pv = volume(&class_name, &ns, "data-payments-0", None);
    ns.create_and_wait_ready(&dynamic_rdc("payments", "SG", &class_name, "Enforce"));
    let before = ns.get_json("pod", "payments-0").expect("the pod runs");
    let node = before["spec"]["nodeName"]
        .as_str()
        .expect("scheduled")
        .to_owned();

    relabel(&node, Some("MY"));
    let after = poll(
        "the pod to run again on another node",
        Duration::from_secs(90),
        || {
            let pod = ns.get_json("pod", "payments-0")?;
            let moved = pod["metadata"]["uid"] != before["metadata"]["uid"]
                && pod["spec"]["nodeName"].as_str().is_some_and(|n| n != node)
                && pod["status"]["phase"] == "Running";
            moved.then_some(pod)
        },
    );
    let new_node = after["spec"]["nodeName"].as_str().unwrap_or_default();
    assert_eq!(
        crate::support::node_labels(new_node)[JURISDICTION_LABEL],
        "SG"
    );
    let status = wait_status(&ns, "payments", "Ready and Compliant again", |s| {
        s["residency"] == "Compliant" && s["phase"] == "Ready"
    });
    assert!(violations(&status).is_empty());
    let claim = ns
        .get_json("pvc", "data-payments-0")
        .expect("the claim is kept");
    assert_eq!(
        claim["spec"]["volumeName"],
        pv.name.as_str(),
        "the same volume, the same data"
    );
    poll("a Normal Event Evicted", EVENT_WITHIN, || {
        let reasons = warning_reasons(&ns, "payments");
        reasons.contains(&"Normal/Evicted".to_owned()).then_some(())
    });
}

#[test]
fn enforce_never_starts_a_pod_away_from_its_data_and_says_why() {
    let node = TestNode::new("e2e-br", &[(JURISDICTION_LABEL, "BR")]);
    let ns = TestNamespace::new("enforce_data_stays");
    let mut manifest = local_rdc("saopaulo", "BR", 1);
    manifest["spec"]["enforcement"] = json!("Enforce");
    ns.create_and_wait_ready(&manifest);
    let before = ns.get_json("pod", "saopaulo-0").expect("the pod runs");
    let volume =
        ns.get_json("pvc", "data-saopaulo-0").expect("claim")["spec"]["volumeName"].clone();

    relabel(&node.name, Some("AR"));
    // Evicted, recreated, and left unscheduled: its volume lives only on the relabelled node.
    let pending = poll(
        "the recreated pod to be unschedulable",
        Duration::from_secs(90),
        || {
            let pod = ns.get_json("pod", "saopaulo-0")?;
            let unschedulable = pod["metadata"]["uid"] != before["metadata"]["uid"]
                && pod["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "PodScheduled" && c["reason"] == "Unschedulable")
                });
            unschedulable.then_some(pod)
        },
    );
    assert!(
        pending["spec"]["nodeName"].is_null(),
        "the pod started away from its data: {pending}"
    );
    let status = wait_status(&ns, "saopaulo", "the violation on the data", |s| {
        violations(s)
            .iter()
            .any(|(reason, _, _)| reason == "DataOutsideJurisdiction")
    });
    assert_eq!(status["phase"], "Violated");
    let data = status["violations"]
        .as_array()
        .and_then(|v| {
            v.iter()
                .find(|v| v["reason"] == "DataOutsideJurisdiction")
                .cloned()
        })
        .expect("a data violation");
    assert_eq!(data["name"], volume);
    assert!(
        data["message"]
            .as_str()
            .unwrap_or_default()
            .contains("by a person"),
        "{data}"
    );
    assert!(
        ns.get_json("pvc", "data-saopaulo-0").is_some(),
        "the claim is kept"
    );
    // The workload says why the pod waits, in the scheduler's words, and that it will not
    // start by itself.
    let status = wait_status(&ns, "saopaulo", "WorkloadAvailable Unschedulable", |s| {
        s["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "WorkloadAvailable" && c["reason"] == "Unschedulable")
        })
    });
    let workload = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "WorkloadAvailable").cloned())
        .expect("the condition");
    let message = workload["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("saopaulo-0 cannot be scheduled"),
        "{message}"
    );
    assert!(message.contains("node"), "the scheduler's words: {message}");
    assert!(message.contains("will not start by itself"), "{message}");

    relabel(&node.name, Some("BR"));
    ns.wait_ready("saopaulo");
}
