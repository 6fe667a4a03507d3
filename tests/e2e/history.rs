//! Residency history: a relabel and back leaves both intervals and the violation between them in
//! the ResidencyHistory, as `domicile history` and `domicile audit -o json` show it, and an
//! operator restart changes none of it. hack/e2e.sh runs this with no other operator running.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    JURISDICTION_LABEL, OwnOperator, TestNamespace, TestNode, counter_at, env, kubectl_ok,
    local_rdc, poll_seen,
};

/// `domicile ARGS...`: exit code and stdout.
fn domicile(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env("DOMICILE_BIN"))
        .args(args)
        .output()
        .expect("domicile runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn history_json(ns: &TestNamespace, rdc: &str) -> Value {
    let (code, stdout, stderr) = domicile(&["history", rdc, "-n", &ns.name, "-o", "json"]);
    assert_eq!(code, 0, "domicile history failed: {stderr}");
    serde_json::from_str(&stdout).expect("JSON")
}

/// The pod's stays as (jurisdiction, inside, open).
fn pod_stays(history: &Value, pod: &str) -> Vec<(String, bool, bool)> {
    history["stays"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|s| s["kind"] == "Pod" && s["name"] == pod)
        .map(|s| {
            (
                s["jurisdiction"].as_str().unwrap_or("-").to_owned(),
                s["inside"] == true,
                s["to"].is_null(),
            )
        })
        .collect()
}

fn relabel(node: &str, code: &str) {
    kubectl_ok(
        &[
            "label",
            "node",
            node,
            &format!("{JURISDICTION_LABEL}={code}"),
            "--overwrite",
        ],
        None,
    );
}

#[test]
fn a_relabel_and_back_stays_in_the_history_across_an_operator_restart() {
    let _node = TestNode::new("e2e-mt", &[(JURISDICTION_LABEL, "MT")]);
    let ns = TestNamespace::new("history");
    let operator = OwnOperator::start("history-1", &[], 18092);
    ns.create_and_wait_ready(&local_rdc("archive", "MT", 1));
    let node = ns.get_json("pod", "archive-0").expect("the pod")["spec"]["nodeName"]
        .as_str()
        .expect("scheduled")
        .to_owned();
    let first = poll_seen("the first stays", Duration::from_secs(60), || {
        let history = history_json(&ns, "archive");
        (pod_stays(&history, "archive-0") == [("MT".to_owned(), true, true)])
            .then_some(history.clone())
            .ok_or_else(|| history.to_string())
    });
    assert_eq!(first["violations"], serde_json::json!([]));

    relabel(&node, "US");
    poll_seen("the stay outside MT", Duration::from_secs(60), || {
        let history = history_json(&ns, "archive");
        let stays = pod_stays(&history, "archive-0");
        (stays.last() == Some(&("US".to_owned(), false, true)))
            .then_some(())
            .ok_or_else(|| history.to_string())
    });
    relabel(&node, "MT");
    let want = [
        ("MT".to_owned(), true, false),
        ("US".to_owned(), false, false),
        ("MT".to_owned(), true, true),
    ];
    let after = poll_seen(
        "both intervals and the return",
        Duration::from_secs(60),
        || {
            let history = history_json(&ns, "archive");
            let closed = history["violations"]
                .as_array()
                .is_some_and(|v| !v.is_empty() && v.iter().all(|e| !e["to"].is_null()));
            (pod_stays(&history, "archive-0") == want && closed)
                .then_some(history.clone())
                .ok_or_else(|| history.to_string())
        },
    );
    let reasons: Vec<&str> = after["violations"]
        .as_array()
        .map(|v| v.iter().filter_map(|e| e["reason"].as_str()).collect())
        .unwrap_or_default();
    assert!(reasons.contains(&"NodeOutsideJurisdiction"), "{reasons:?}");
    assert!(reasons.contains(&"DataOutsideJurisdiction"), "{reasons:?}");

    // The table a person reads: both stays of the pod, the violation with its end.
    let (code, table, stderr) = domicile(&["history", "archive", "-n", &ns.name]);
    assert_eq!(code, 0, "{stderr}");
    eprintln!("{table}");
    assert!(table.contains("NodeOutsideJurisdiction"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("Pod") && l.contains(" US ") && l.contains(" NO ")),
        "{table}"
    );

    // A restarted operator finds the history in the cluster and adds nothing to it.
    drop(operator);
    let operator = OwnOperator::start("history-2", &[], 18092);
    poll_seen(
        "the new operator to reconcile the resource",
        Duration::from_secs(60),
        || match counter_at(
            "http://127.0.0.1:18092/metrics",
            "domicile_reconciliations_total",
        ) {
            Some(done) if done > 0 => Ok(()),
            _ => Err(operator.log().lines().last().unwrap_or_default().to_owned()),
        },
    );
    assert_eq!(history_json(&ns, "archive"), after);

    // The audit's JSON carries the same history, beside the verdict of now.
    let (code, audit, stderr) = domicile(&["audit", "-n", &ns.name, "-o", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let audit: Value = serde_json::from_str(&audit).expect("JSON");
    assert_eq!(audit[0]["history"], after);

    // Unknown names are a clear error, exit 2.
    let (code, _, stderr) = domicile(&["history", "nothing-here", "-n", &ns.name]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no residency history of"), "{stderr}");
}
