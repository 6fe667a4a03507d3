//! Policy reports as a dashboard reads them: one `wgpolicyk8s.io/v1alpha2` PolicyReport per
//! namespace, a result per pod and per volume, changing when a node is relabelled and back.
//! hack/e2e.sh installs the report CRDs from the Go modules that publish them. Where a report's
//! CRD is absent, see `absent_report_crds_are_harmless` (run with operators of its own).

use std::time::Duration;

use serde_json::Value;

use crate::support::{
    ClusterObject, JURISDICTION_LABEL, OwnOperator, TestNamespace, TestNode, env, kubectl,
    kubectl_ok, local_rdc, poll_seen, unique,
};

/// The report of `ns` as `(rule, resource name, result)`, sorted, and its summary.
/// A report's results as (rule, resource name, result).
type Results = Vec<(String, String, String)>;

pub(crate) fn report(ns: &TestNamespace, resource: &str) -> Option<(Results, Value)> {
    let report = ns.get_json(resource, "domicile-residency")?;
    let mut results: Results = report["results"]
        .as_array()?
        .iter()
        .map(|r| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (
                text(&r["rule"]),
                text(&r["resources"][0]["name"]),
                text(&r["result"]),
            )
        })
        .collect();
    results.sort();
    Some((results, report["summary"].clone()))
}

fn expect(
    ns: &TestNamespace,
    resource: &str,
    what: &str,
    want: &[(&str, &str, &str)],
    summary: Value,
) {
    let mut want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect();
    want.sort();
    poll_seen(what, Duration::from_secs(60), || {
        match report(ns, resource) {
            Some((results, found)) if results == want && found == summary => Ok(()),
            seen => Err(format!("{seen:?}")),
        }
    });
}

#[test]
fn the_policy_report_follows_each_pod_and_volume_through_a_relabel_and_back() {
    let nodes = [
        TestNode::new("e2e-lu", &[(JURISDICTION_LABEL, "LU")]),
        TestNode::new("e2e-lu", &[(JURISDICTION_LABEL, "LU")]),
    ];
    let ns = TestNamespace::new("reports");
    ns.create_and_wait_ready(&local_rdc("ledger", "LU", 2));
    let status = ns.get_json("rdc", "ledger").expect("the resource")["status"].clone();
    let placement = |ordinal: usize, field: &str| {
        status["placements"][ordinal][field]
            .as_str()
            .unwrap_or_else(|| panic!("placement {ordinal} has a {field}: {status}"))
            .to_owned()
    };
    let (pv0, pv1) = (placement(0, "volume"), placement(1, "volume"));
    let node0 = placement(0, "node");
    assert!(nodes.iter().any(|n| n.name == node0));
    let all_pass = [
        ("pod-node-jurisdiction", "ledger-0", "pass"),
        ("pod-node-jurisdiction", "ledger-1", "pass"),
        ("volume-node-jurisdiction", pv0.as_str(), "pass"),
        ("volume-node-jurisdiction", pv1.as_str(), "pass"),
    ];
    let summary = |pass: u32, fail: u32| serde_json::json!({"pass": pass, "fail": fail, "warn": 0, "error": 0, "skip": 0});
    expect(
        &ns,
        "policyreport",
        "a report with four passes",
        &all_pass,
        summary(4, 0),
    );

    // What a dashboard shows of a result: the source, the policy, the message, the resource.
    let report = ns
        .get_json("policyreport", "domicile-residency")
        .expect("the report");
    let pod = report["results"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["resources"][0]["name"] == "ledger-0"))
        .expect("a result for ledger-0")
        .clone();
    assert_eq!(pod["source"], "domicile");
    assert_eq!(pod["policy"], "residency");
    assert_eq!(pod["resources"][0]["kind"], "Pod");
    assert_eq!(pod["resources"][0]["namespace"], ns.name.as_str());
    assert_eq!(
        pod["message"],
        format!("pod ledger-0 runs on node {node0}, inside LU")
    );
    assert_eq!(pod["properties"]["regionalDataCenter"], "ledger");
    assert_eq!(
        report["metadata"]["ownerReferences"][0]["kind"],
        "RegionalDataCenter"
    );
    let other_passed_at = report["results"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["resources"][0]["name"] == "ledger-1"))
        .expect("a result for ledger-1")["timestamp"]
        .clone();

    // Nobody else rewrites the verdicts: the managed-objects admission policy covers the report.
    let forged = ns.kubectl(
        &[
            "patch",
            "policyreport",
            "domicile-residency",
            "--type=merge",
            "-p",
            r#"{"summary": {"fail": 0, "pass": 99}}"#,
        ],
        None,
    );
    assert!(
        !forged.success && forged.stderr.contains("managed by domicile"),
        "{}{}",
        forged.stdout,
        forged.stderr
    );

    // The node of replica 0 is relabelled: its pod and its volume fail, replica 1 still passes.
    kubectl_ok(
        &[
            "label",
            "node",
            &node0,
            &format!("{JURISDICTION_LABEL}=US"),
            "--overwrite",
        ],
        None,
    );
    expect(
        &ns,
        "policyreport",
        "replica 0's pod and volume to fail",
        &[
            ("pod-node-jurisdiction", "ledger-0", "fail"),
            ("pod-node-jurisdiction", "ledger-1", "pass"),
            ("volume-node-jurisdiction", pv0.as_str(), "fail"),
            ("volume-node-jurisdiction", pv1.as_str(), "pass"),
        ],
        summary(2, 2),
    );
    let report = ns
        .get_json("policyreport", "domicile-residency")
        .expect("the report");
    let results = report["results"].as_array().cloned().unwrap_or_default();
    let of = |name: &str| {
        results
            .iter()
            .find(|r| r["resources"][0]["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        of("ledger-0")["properties"]["reason"],
        "NodeOutsideJurisdiction"
    );
    assert!(
        of("ledger-0")["message"]
            .as_str()
            .is_some_and(|m| m.contains(&node0) && m.contains("outside LU")),
        "{}",
        of("ledger-0")
    );
    assert_eq!(of(&pv0)["properties"]["reason"], "DataOutsideJurisdiction");
    // The result that did not change keeps the time it last changed.
    assert_eq!(of("ledger-1")["timestamp"], other_passed_at);

    kubectl_ok(
        &[
            "label",
            "node",
            &node0,
            &format!("{JURISDICTION_LABEL}=LU"),
            "--overwrite",
        ],
        None,
    );
    expect(
        &ns,
        "policyreport",
        "four passes again",
        &all_pass,
        summary(4, 0),
    );

    // The report goes with the namespace's last data centre (it is their dependent).
    ns.kubectl_ok(&["delete", "rdc", "ledger", "--wait=true"], None);
    poll_seen(
        "the report to be deleted",
        Duration::from_secs(60),
        || match ns.get_json("policyreport", "domicile-residency") {
            None => Ok(()),
            Some(left) => Err(left["metadata"].to_string()),
        },
    );
}

/// Without the report CRD the operator works as before and says once why no report is written;
/// with the CRD installed (and the operator restarted) the OpenReports format is written.
/// hack/e2e.sh runs this with no other operator running.
#[test]
fn absent_report_crds_are_harmless_and_openreports_is_written_once_installed() {
    let crd = env("DOMICILE_OPENREPORTS_CRD");
    let _ = kubectl(
        &["delete", "-f", &crd, "--ignore-not-found", "--wait=true"],
        None,
    );
    let ns = TestNamespace::new("reports-absent");
    let operator = OwnOperator::start("reports-openreports", &["--reports", "openreports"], 18091);
    ns.create_and_wait_ready(&local_rdc("vault", "CN", 1));
    let said = operator
        .log()
        .lines()
        .filter(|l| l.contains("no policy report is written"))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert_eq!(
        said.len(),
        1,
        "said once why no report is written: {said:?}"
    );
    assert!(
        said[0].contains("openreports.io/v1alpha1") && said[0].contains("reports.openreports.io"),
        "{}",
        said[0]
    );
    drop(operator);

    // The rights the chart grants with reports.format=openreports, from the chart itself.
    let rules = crate::chart::helm_template(
        "domicile",
        "domicile-system",
        &[
            "--set",
            "reports.format=openreports",
            "--show-only",
            "templates/rbac.yaml",
        ],
    );
    let role = unique("e2e-openreports");
    let mut granted = rules
        .into_iter()
        .find(|o| o["kind"] == "ClusterRole")
        .expect("the chart's ClusterRole");
    granted["metadata"] = serde_json::json!({"name": role});
    let account = env("DOMICILE_OPERATOR_ACCOUNT");
    let (namespace, name) = account
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        .expect("system:serviceaccount:NAMESPACE:NAME");
    let binding = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    });
    let _granted = (
        ClusterObject::create("clusterrole", &granted),
        ClusterObject::create("clusterrolebinding", &binding),
    );
    kubectl_ok(&["apply", "--server-side", "-f", &crd], None);
    kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/reports.openreports.io",
        ],
        None,
    );
    let operator = OwnOperator::start("reports-openreports", &["--reports", "openreports"], 18091);
    let status = ns.get_json("rdc", "vault").expect("the resource")["status"].clone();
    let volume = status["placements"][0]["volume"]
        .as_str()
        .expect("a bound volume");
    expect(
        &ns,
        "reports.openreports.io",
        "an OpenReports report once its CRD is installed",
        &[
            ("pod-node-jurisdiction", "vault-0", "pass"),
            ("volume-node-jurisdiction", volume, "pass"),
        ],
        serde_json::json!({"pass": 2, "fail": 0, "warn": 0, "error": 0, "skip": 0}),
    );
    let report = ns
        .get_json("reports.openreports.io", "domicile-residency")
        .expect("the report");
    assert_eq!(report["source"], "domicile");
    assert!(!operator.log().contains("no policy report is written"));
}
