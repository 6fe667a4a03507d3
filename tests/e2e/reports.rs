//! Policy reports as a dashboard reads them: one `wgpolicyk8s.io/v1alpha2` PolicyReport per
//! namespace, a result per pod and per volume, changing when a node is relabelled and back.
//! hack/e2e.sh installs the report CRDs from the Go modules that publish them. Where a report's
//! CRD is absent, see `absent_report_crds_are_harmless` (run with operators of its own).

use std::time::Duration;

use serde_json::Value;

use crate::support::{
    ClusterObject, JURISDICTION_LABEL, OwnOperator, TestNamespace, TestNode, counter_at, env,
    kubectl, kubectl_ok, local_rdc, poll_seen, unique,
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
    // (Until the status names a pod placed a moment ago, the namespace's policy judges it.)
    let report = poll_seen(
        "the data centre's own results",
        Duration::from_secs(30),
        || {
            let report = ns
                .get_json("policyreport", "domicile-residency")
                .unwrap_or_default();
            let own = report["results"].as_array().is_some_and(|all| {
                all.len() == 4 && all.iter().all(|r| r["policy"] == "residency")
            });
            own.then_some(report.clone())
                .ok_or_else(|| report["results"].to_string())
        },
    );
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

    // The data centre goes, its data stays (the claims keep their volumes), and so does the
    // namespace's jurisdiction: the report, no longer the data centre's dependent, shows the
    // volumes under the namespace's own policy.
    ns.kubectl_ok(&["delete", "rdc", "ledger", "--wait=true"], None);
    crate::members::undeclared_in_report(&ns, &[(&pv0, "pass"), (&pv1, "pass")]);
    poll_seen(
        "a report of the two volumes alone, once the pods are gone",
        Duration::from_secs(60),
        || {
            let report = ns
                .get_json("policyreport", "domicile-residency")
                .unwrap_or_default();
            (report["metadata"]["ownerReferences"].is_null() && report["summary"] == summary(2, 0))
                .then_some(())
                .ok_or_else(|| report.to_string())
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

/// Every report of a namespace's split, by part: (name, resourceVersion, results).
fn parts(ns: &TestNamespace) -> Vec<(String, String, Results)> {
    let listed = ns.kubectl_ok(
        &[
            "get",
            "policyreports",
            "-l",
            "app.kubernetes.io/managed-by=domicile",
            "-o",
            "json",
        ],
        None,
    );
    let listed: Value = serde_json::from_str(&listed).expect("JSON");
    let mut parts: Vec<(String, String, Results)> = listed["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|report| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            let results = report["results"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    (
                        text(&r["rule"]),
                        text(&r["resources"][0]["name"]),
                        text(&r["result"]),
                    )
                })
                .collect();
            (
                text(&report["metadata"]["name"]),
                text(&report["metadata"]["resourceVersion"]),
                results,
            )
        })
        .collect();
    // domicile-residency, domicile-residency-2, ...: by the number after the name.
    parts.sort_by_key(|(name, _, _)| {
        name.rsplit_once('-')
            .and_then(|(_, n)| n.parse::<usize>().ok())
            .unwrap_or(1)
    });
    parts
}

/// The results of a namespace too large for one report (here, an operator told to put at most
/// 2 KiB of results in each, as it puts 512 KiB for hundreds of data centres) are split over
/// `domicile-residency`, `-2`, ...: each result in one part. A restarted operator reads every
/// part back and writes only what is not as it would write it: a part someone deleted, and no
/// other (the API server parses and merges every byte written: the three parts of 500 data
/// centres are 1.5 MiB). In a namespace the admission policies skip, so that a part can be
/// deleted. And the report of a namespace labelled with a jurisdiction but without data centres,
/// which has no owner for the garbage collector to follow, goes when the label is removed while
/// no operator runs. hack/e2e.sh runs this with no other operator running.
#[test]
fn split_reports_hold_each_result_once_and_only_a_missing_part_is_written_again() {
    let ns = TestNamespace::exempt("reports-split");
    let admin = 18093;
    let args = ["--report-part-bytes", "2048"];
    let operator = OwnOperator::start("reports-split", &args, admin);
    let lonely = TestNamespace::new("reports-lonely");
    kubectl_ok(
        &[
            "label",
            "namespace",
            &lonely.name,
            "domicile.dev/jurisdiction=CN",
        ],
        None,
    );
    poll_seen(
        "an empty report in the labelled namespace",
        Duration::from_secs(30),
        || match lonely.get_json("policyreport", "domicile-residency") {
            Some(report) if report["results"].as_array().is_none_or(Vec::is_empty) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let names = ["a", "b", "c", "d", "e", "f"];
    for name in names {
        ns.create_and_wait_ready(&local_rdc(name, "CN", 1));
    }
    let mut all: Results = names
        .iter()
        .flat_map(|name| {
            let status = ns.get_json("rdc", name).expect("the resource")["status"].clone();
            let volume = status["placements"][0]["volume"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} has a bound volume: {status}"))
                .to_owned();
            [
                (
                    "pod-node-jurisdiction".to_owned(),
                    format!("{name}-0"),
                    "pass".to_owned(),
                ),
                (
                    "volume-node-jurisdiction".to_owned(),
                    volume,
                    "pass".to_owned(),
                ),
            ]
        })
        .collect();
    all.sort();
    let union = |parts: &[(String, String, Results)]| -> Results {
        let mut results: Results = parts.iter().flat_map(|(_, _, r)| r.clone()).collect();
        results.sort();
        results
    };
    let split = poll_seen(
        "the twelve results split over three reports or more",
        Duration::from_secs(60),
        || {
            let parts = parts(&ns);
            if parts.len() >= 3 && union(&parts) == all {
                Ok(parts)
            } else {
                Err(format!("{parts:?}"))
            }
        },
    );
    let names_of = |parts: &[(String, String, Results)]| -> Vec<String> {
        parts.iter().map(|(name, _, _)| name.clone()).collect()
    };
    let want: Vec<String> = (0..split.len())
        .map(|part| match part {
            0 => "domicile-residency".to_owned(),
            n => format!("domicile-residency-{}", n + 1),
        })
        .collect();
    assert_eq!(names_of(&split), want);
    assert!(
        split.iter().all(|(_, _, results)| !results.is_empty()),
        "{split:?}"
    );

    // While no operator runs, the second part is deleted, and the label of the other namespace.
    drop(operator);
    ns.kubectl_ok(&["delete", "policyreport", "domicile-residency-2"], None);
    kubectl_ok(
        &[
            "label",
            "namespace",
            &lonely.name,
            "domicile.dev/jurisdiction-",
        ],
        None,
    );
    let operator = OwnOperator::start("reports-split-2", &args, admin);
    let metrics = format!("http://127.0.0.1:{admin}/metrics");
    let restored = poll_seen(
        "the deleted part written again",
        Duration::from_secs(60),
        || {
            let parts = parts(&ns);
            if names_of(&parts) == want && union(&parts) == all {
                Ok(parts)
            } else {
                Err(format!("{parts:?}"))
            }
        },
    );
    for ((name, version, results), (_, was_version, was_results)) in restored.iter().zip(&split) {
        assert_eq!(results, was_results, "{name}");
        if name != "domicile-residency-2" {
            assert_eq!(version, was_version, "{name}");
        }
    }
    poll_seen(
        "the report of the namespace no longer labelled gone",
        Duration::from_secs(30),
        || match lonely.get_json("policyreport", "domicile-residency") {
            None => Ok(()),
            Some(report) => Err(report["metadata"].to_string()),
        },
    );
    // Every data centre reconciled; the rebuilds after the first find nothing to write.
    poll_seen(
        "the new operator to reconcile the six data centres",
        Duration::from_secs(60),
        || match counter_at(&metrics, "domicile_reconciliations_total") {
            Some(done) if done >= 6 => Ok(()),
            seen => Err(format!("{seen:?}")),
        },
    );
    // Four times the wait between a reconcile and its rebuild.
    let until = std::time::Instant::now() + Duration::from_secs(4);
    while std::time::Instant::now() < until {
        assert_eq!(parts(&ns), restored, "a report changed again");
        std::thread::sleep(Duration::from_millis(500));
    }
    // What it wrote in the two namespaces (other tests' namespaces may be there too).
    let log = operator.log();
    let writes = |namespace: &str| -> Vec<String> {
        log.lines()
            .filter(|line| {
                line.contains("policy report written")
                    && line.contains(&format!("namespace=\"{namespace}\""))
            })
            .map(|line| {
                let from = line.find("written=").unwrap_or(0);
                line[from..].to_owned()
            })
            .collect()
    };
    assert_eq!(
        writes(&ns.name),
        vec![r#"written=["domicile-residency-2"] deleted=[]"#.to_owned()],
        "the restarted operator wrote the missing part alone: {log}"
    );
    assert_eq!(
        writes(&lonely.name),
        vec![r#"written=[] deleted=["domicile-residency"]"#.to_owned()],
        "{log}"
    );
}

/// A namespace an admin labelled with a jurisdiction, with no data centre in it: what runs there
/// is in its report all the same, judged against the namespace's jurisdiction (a report used to
/// be kept only where data centres were, so such a pod was in no evidence at all), and the report
/// goes with the label. PY is a jurisdiction no other test uses.
#[test]
fn a_labelled_namespace_without_data_centres_is_reported_too() {
    let node = TestNode::new("e2e-py", &[(JURISDICTION_LABEL, "PY")]);
    let ns = TestNamespace::new("reports-labelled");
    kubectl_ok(
        &[
            "label",
            "namespace",
            &ns.name,
            "domicile.dev/jurisdiction=PY",
        ],
        None,
    );
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ledger"},
        "spec": {
            "nodeSelector": {JURISDICTION_LABEL: "PY", "kubernetes.io/hostname": node.name},
            "containers": [{"name": "ledger", "image": "registry.example/ledger:1"}],
        }
    });
    ns.kubectl_ok(&["create", "-f", "-"], Some(&pod.to_string()));
    assert!(ns.rdc_names().is_empty());
    crate::members::undeclared_in_report(&ns, &[("ledger", "pass")]);

    // Its node leaves PY: the report says so.
    kubectl_ok(
        &[
            "label",
            "node",
            &node.name,
            &format!("{JURISDICTION_LABEL}=US"),
            "--overwrite",
        ],
        None,
    );
    crate::members::undeclared_in_report(&ns, &[("ledger", "fail")]);

    // Without the label the namespace holds no jurisdiction's data, and has no report.
    kubectl_ok(
        &["label", "namespace", &ns.name, "domicile.dev/jurisdiction-"],
        None,
    );
    poll_seen(
        "the report gone with the label",
        Duration::from_secs(30),
        || match ns.get_json("policyreport", "domicile-residency") {
            None => Ok(()),
            Some(report) => Err(report["results"].to_string()),
        },
    );
}
