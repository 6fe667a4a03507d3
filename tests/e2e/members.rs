//! Workloads that others run, covered by a data centre's `spec.members`: a database a
//! StatefulSet runs (labelled as CloudNativePG labels its instances) and a Deployment with a
//! claim, made with kubectl in a guarded namespace. The data centre runs nothing itself; their
//! pods and data are audited, placed with what runs them, recorded, reported and, in Enforce
//! mode, evicted when their node leaves the jurisdiction. The jurisdiction (TH) is one no other
//! test uses, so relabelling the test's node concerns no other test.

use std::time::Duration;

use serde_json::{Value, json};

use crate::drift::{class, volume};
use crate::support::{
    JURISDICTION_LABEL, TestNamespace, TestNode, kubectl_ok, poll, poll_seen, unique, violations,
};

const RDC: &str = "orders";
const CLUSTER_LABEL: &str = "cnpg.io/cluster";

fn status_once(ns: &TestNamespace, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
    poll_seen(what, Duration::from_secs(90), || {
        let status = ns.get_json("rdc", RDC).unwrap_or_default()["status"].clone();
        if accept(&status) {
            Ok(status)
        } else {
            Err(status.to_string())
        }
    })
}

/// A pod template pinned to `node` of TH, labelled as the database's instances are, with its
/// data in volume `pgdata`.
fn template(node: &str, volumes: Value) -> Value {
    json!({
        "metadata": {"labels": {CLUSTER_LABEL: "orders", "app": "orders"}},
        "spec": {
            "nodeSelector": {JURISDICTION_LABEL: "TH", "kubernetes.io/hostname": node},
            "containers": [{"name": "postgres", "image": "registry.example/postgres:17",
                "volumeMounts": [{"name": "pgdata", "mountPath": "/var/lib/postgresql/data"}]}],
            "volumes": volumes,
        }
    })
}

fn placements(status: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = status["placements"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (text(&p["pod"]), text(&p["owner"]))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn workloads_others_run_are_covered_like_its_own() {
    let node = TestNode::new("e2e-th", &[(JURISDICTION_LABEL, "TH")]);
    let ns = TestNamespace::new("members");
    let class_name = unique("e2e-local-th");
    let _class = class(&class_name, Some("TH"));
    // Their data: local volumes on the node, for the claims the StatefulSet and the tenant make.
    // (A template named `data` would make claims named as a data centre's replicas' are, which
    // the admission policies keep for them.)
    let db_volume = volume(&class_name, &ns, "pgdata-orders-db-0", Some(&node.name));
    let cache_volume = volume(&class_name, &ns, "orders-cache", Some(&node.name));

    // The data centre covers what the database's label selects, and runs nothing itself.
    let rdc = json!({
        "apiVersion": "domicile.dev/v1alpha1", "kind": "RegionalDataCenter",
        "metadata": {"name": RDC},
        "spec": {"jurisdiction": "TH", "enforcement": "Enforce",
            "members": {"matchLabels": {CLUSTER_LABEL: "orders"}}}
    });
    ns.kubectl_ok(&["apply", "-f", "-"], Some(&rdc.to_string()));
    ns.wait_condition(RDC, "AdmissionGuarded", "Enforced");
    assert!(
        ns.get_json("statefulset", RDC).is_none(),
        "a data centre without a workload runs none"
    );

    // The database, as its operator would make it, and a Deployment with a claim of its own.
    let claim = |name: &str, labels: Value| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": labels},
            "spec": {"storageClassName": class_name, "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}})
    };
    let statefulset = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "orders-db"},
        "spec": {"serviceName": "orders-db", "replicas": 1,
            "selector": {"matchLabels": {CLUSTER_LABEL: "orders", "app": "orders"}},
            "template": template(&node.name, json!([])),
            "volumeClaimTemplates": [claim("pgdata", json!({CLUSTER_LABEL: "orders"}))]}
    });
    // The tenant's claim is admitted once the operator has declared the class to the policy.
    poll_seen(
        "the claim on the TH class to be admitted",
        Duration::from_secs(30),
        || {
            let out = ns.kubectl(
                &["create", "-f", "-"],
                Some(&claim("orders-cache", json!({})).to_string()),
            );
            out.success.then_some(()).ok_or(out.stderr)
        },
    );
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "orders-cache"},
        "spec": {"replicas": 1,
            "selector": {"matchLabels": {CLUSTER_LABEL: "orders", "app": "orders"}},
            "template": template(&node.name, json!([
                {"name": "pgdata", "persistentVolumeClaim": {"claimName": "orders-cache"}}]))}
    });
    for workload in [&statefulset, &deployment] {
        ns.kubectl_ok(&["create", "-f", "-"], Some(&workload.to_string()));
    }
    // And a pod with a claim that nobody declared: no data centre covers it.
    let stray_volume = volume(&class_name, &ns, "stray-data", Some(&node.name));
    ns.kubectl_ok(
        &["create", "-f", "-"],
        Some(&claim("stray-data", json!({})).to_string()),
    );
    let mut stray = template(
        &node.name,
        json!([{"name": "pgdata", "persistentVolumeClaim": {"claimName": "stray-data"}}]),
    );
    stray["metadata"] = json!({"name": "stray", "labels": {"app": "stray"}});
    stray["apiVersion"] = json!("v1");
    stray["kind"] = json!("Pod");
    ns.kubectl_ok(&["create", "-f", "-"], Some(&stray.to_string()));

    // Both are placed, with what runs them, and inside: Ready, Compliant.
    let status = status_once(&ns, "both covered, Ready and Compliant", |s| {
        s["phase"] == "Ready" && s["placements"].as_array().is_some_and(|p| p.len() == 2)
    });
    let found = placements(&status);
    assert!(
        found[0].0.starts_with("orders-cache-")
            && found[0].1.starts_with("ReplicaSet/orders-cache-"),
        "{found:?}"
    );
    assert_eq!(
        found[1],
        ("orders-db-0".to_owned(), "StatefulSet/orders-db".to_owned())
    );
    let volumes: Vec<&str> = status["placements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["volume"].as_str())
        .collect();
    assert!(
        volumes.contains(&db_volume.name.as_str()) && volumes.contains(&cache_volume.name.as_str()),
        "{volumes:?}"
    );
    let pod_uid =
        |name: &str| ns.get_json("pod", name).expect("the pod")["metadata"]["uid"].clone();
    let (cache_pod, db_pod) = (found[0].0.clone(), found[1].0.clone());
    let uids = [pod_uid(&db_pod), pod_uid(&cache_pod)];

    // Their node leaves the jurisdiction: Violated, naming each pod, what runs it, and each volume.
    kubectl_ok(
        &[
            "label",
            "node",
            &node.name,
            &format!("{JURISDICTION_LABEL}=VN"),
            "--overwrite",
        ],
        None,
    );
    // Their data stays where it is, outside now: Violated, naming each volume.
    let status = status_once(&ns, "Violated, naming the covered volumes", |s| {
        let found = violations(s);
        [&db_volume.name, &cache_volume.name].iter().all(|pv| {
            found.contains(&(
                "DataOutsideJurisdiction".to_owned(),
                "PersistentVolume".to_owned(),
                (*pv).clone(),
            ))
        })
    });
    assert_eq!(status["residency"], "Violated");

    // Enforce evicts both pods at once (so a status naming them may never be seen): their
    // controllers make new pods, which cannot start off TH. Each eviction says which pod, why,
    // and what runs it.
    for (name, uid) in [(&db_pod, &uids[0]), (&cache_pod, &uids[1])] {
        poll(
            &format!("{name} to be evicted"),
            Duration::from_secs(60),
            || {
                let gone = ns.get_json("pod", name).is_none_or(|pod| {
                    pod["metadata"]["uid"] != *uid
                        || !pod["metadata"]["deletionTimestamp"].is_null()
                });
                gone.then_some(())
            },
        );
    }
    let evictions = poll(
        "Normal Events Evicted for both",
        crate::support::EVENT_WITHIN,
        || {
            let messages: Vec<String> = ns
                .events_of(RDC, "Evicted")
                .iter()
                .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                .collect();
            let named = |pod: &str| messages.iter().any(|m| m.contains(pod));
            (named(&db_pod) && named(&cache_pod)).then_some(messages)
        },
    );
    assert!(
        evictions.iter().any(|m| m.contains(&db_pod)
            && m.contains("outside TH")
            && m.contains("run by StatefulSet/orders-db, covered by spec.members")),
        "{evictions:?}"
    );

    // The history keeps where each was, and the report names them.
    poll_seen(
        "the covered pods and their violations in the history",
        Duration::from_secs(30),
        || {
            let history = ns.get_json("residencyhistory", RDC).unwrap_or_default();
            let stays = history["status"]["stays"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let kept = |name: &str| {
                stays
                    .iter()
                    .any(|s| s["kind"] == "Pod" && s["name"] == name)
            };
            let violated = |name: &str| {
                history["status"]["violations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|v| {
                        v["kind"] == "Pod"
                            && v["name"] == name
                            && v["reason"] == "NodeOutsideJurisdiction"
                    })
            };
            (kept(&db_pod) && kept(&cache_pod) && violated(&db_pod) && violated(&cache_pod))
                .then_some(())
                .ok_or_else(|| history["status"].to_string())
        },
    );
    poll_seen(
        "the violations in the policy report",
        Duration::from_secs(30),
        || {
            let (results, summary) =
                crate::reports::report(&ns, "policyreport").unwrap_or_default();
            let failed = |name: &str| {
                results
                    .iter()
                    .any(|(_, object, result)| object == name && result == "fail")
            };
            (failed(&db_volume.name) && failed(&cache_volume.name))
                .then_some(())
                .ok_or(format!("{results:?} {summary}"))
        },
    );

    // The pod nobody declared is in the report too, under its own policy: outside now.
    undeclared_in_report(&ns, &[("stray", "fail"), (&stray_volume.name, "fail")]);

    // Back in TH, they run again with their data, and it is Ready and Compliant again.
    kubectl_ok(
        &[
            "label",
            "node",
            &node.name,
            &format!("{JURISDICTION_LABEL}=TH"),
            "--overwrite",
        ],
        None,
    );
    let status = status_once(&ns, "Ready and Compliant again", |s| {
        s["phase"] == "Ready"
            && s["residency"] == "Compliant"
            && s["placements"].as_array().is_some_and(|p| p.len() == 2)
    });
    assert_eq!(violations(&status), vec![]);
    undeclared_in_report(&ns, &[("stray", "pass"), (&stray_volume.name, "pass")]);
    assert!(
        !placements(&status).iter().any(|(pod, _)| pod == "stray"),
        "a pod the selector does not pick is not covered"
    );
}

/// Waits until the namespace's report has, under policy `namespace-residency`, the result
/// `expected` for each named pod or volume (and no data centre's result for them).
pub(crate) fn undeclared_in_report(ns: &TestNamespace, expected: &[(&str, &str)]) {
    poll_seen(
        &format!("{expected:?} under namespace-residency in the report"),
        Duration::from_secs(30),
        || {
            let report = ns
                .get_json("policyreport", "domicile-residency")
                .unwrap_or_default();
            let results = report["results"].as_array().cloned().unwrap_or_default();
            let holds = expected.iter().all(|(name, result)| {
                let about: Vec<&Value> = results
                    .iter()
                    .filter(|r| r["resources"][0]["name"] == *name)
                    .collect();
                about.len() == 1
                    && about[0]["policy"] == "namespace-residency"
                    && about[0]["result"] == *result
            });
            holds
                .then_some(())
                .ok_or_else(|| report["results"].to_string())
        },
    );
}
