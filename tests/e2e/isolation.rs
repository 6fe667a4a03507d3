//! What a tenant cannot do through the operator: choose a host path, take another namespace's
//! volume, escape the network fence, or run pods that the restricted Pod Security Standard refuses.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{EVENT_WITHIN, TestNamespace, local_rdc, poll, unique};

fn bound_volume(ns: &TestNamespace, rdc: &str) -> Value {
    let claim = &ns.list_of("pvc", rdc)[0];
    let volume = claim["spec"]["volumeName"]
        .as_str()
        .expect("bound")
        .to_owned();
    serde_json::from_str(&crate::support::kubectl_ok(
        &["get", "pv", &volume, "-o", "json"],
        None,
    ))
    .expect("JSON")
}

#[test]
fn names_that_used_to_collide_get_their_own_volumes_under_the_local_root() {
    // fleet-cn/vehicle-data and fleet/cn-vehicle-data, in namespaces of this run.
    let base = unique("e2e-fleet");
    let first = TestNamespace::named(format!("{base}-cn"));
    let second = TestNamespace::named(base.clone());
    first.create_and_wait_ready(&local_rdc("vehicle-data", "CN", 1));
    second.create_and_wait_ready(&local_rdc("cn-vehicle-data", "CN", 1));
    let a = bound_volume(&first, "vehicle-data");
    let b = bound_volume(&second, "cn-vehicle-data");
    assert_ne!(a["metadata"]["name"], b["metadata"]["name"]);
    assert_eq!(a["spec"]["claimRef"]["namespace"], first.name.as_str());
    assert_eq!(b["spec"]["claimRef"]["namespace"], second.name.as_str());
    assert_eq!(
        a["spec"]["local"]["path"],
        format!("/var/lib/domicile/{}/vehicle-data/0", first.name)
    );
    assert_eq!(
        b["spec"]["local"]["path"],
        format!("/var/lib/domicile/{}/cn-vehicle-data/0", second.name)
    );
}

#[test]
fn the_default_data_centre_is_fenced_and_can_opt_out() {
    let ns = TestNamespace::new("default_fence");
    ns.create_and_wait_ready(&local_rdc("fenced", "CN", 1));
    let policy = ns
        .get_json("networkpolicy", "fenced")
        .expect("a fence by default");
    let spec = &policy["spec"];
    assert_eq!(spec["policyTypes"], json!(["Ingress", "Egress"]));
    let own =
        json!({"podSelector": {"matchLabels": {"domicile.dev/regional-data-center": "fenced"}}});
    assert_eq!(spec["ingress"], json!([{"from": [own.clone()]}]));
    let dns = &spec["egress"][0];
    assert_eq!(
        dns["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "kube-system"
    );
    assert_eq!(
        dns["to"][0]["podSelector"]["matchLabels"]["k8s-app"],
        "kube-dns"
    );
    assert_eq!(spec["egress"][1], json!({"to": [own]}));
    assert_eq!(
        spec["egress"].as_array().map(Vec::len),
        Some(2),
        "nothing else goes out"
    );

    ns.kubectl_ok(
        &[
            "patch",
            "rdc",
            "fenced",
            "--type=merge",
            "-p",
            r#"{"spec":{"network":{"fence":false}}}"#,
        ],
        None,
    );
    poll("the fence to go", Duration::from_secs(30), || {
        ns.get_json("networkpolicy", "fenced")
            .is_none()
            .then_some(())
    });
}

#[test]
fn pods_are_created_in_a_namespace_that_enforces_restricted() {
    let ns = TestNamespace::new("restricted");
    ns.kubectl_ok(
        &[
            "label",
            "namespace",
            &ns.name,
            "pod-security.kubernetes.io/enforce=restricted",
        ],
        None,
    );
    ns.create_and_wait_ready(&local_rdc("regulated", "CN", 2));
    let pod = ns.get_json("pod", "regulated-0").expect("the pod exists");
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["spec"]["securityContext"]["fsGroup"], 65532);
}

#[test]
fn pods_the_namespace_refuses_are_reported_with_the_api_servers_words() {
    let ns = TestNamespace::new("pods_refused");
    ns.kubectl_ok(&["create", "quota", "no-pods", "--hard=pods=0"], None);
    ns.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&local_rdc("refused", "CN", 1).to_string()),
    );
    let condition = poll(
        "WorkloadAvailable=False PodsRefused",
        Duration::from_secs(60),
        || {
            let rdc = ns.get_json("rdc", "refused")?;
            let condition = rdc["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "WorkloadAvailable")?
                .clone();
            (condition["reason"] == "PodsRefused").then_some(condition)
        },
    );
    let message = condition["message"].as_str().unwrap_or_default();
    assert_eq!(condition["status"], "False");
    assert!(message.contains("exceeded quota"), "{message}");
    assert!(message.contains("refused-0"), "{message}");
    poll("a Warning Event PodsRefused", EVENT_WITHIN, || {
        let selector = "involvedObject.name=refused,reason=PodsRefused,type=Warning";
        let events = ns.kubectl_ok(
            &["get", "events", "--field-selector", selector, "-o", "name"],
            None,
        );
        (!events.trim().is_empty()).then_some(())
    });

    // Once the namespace lets the pod in, the data centre converges.
    ns.kubectl_ok(&["delete", "quota", "no-pods"], None);
    ns.wait_ready("refused");
}
