//! What a tenant cannot do through the operator: choose a host path, take another namespace's
//! volume, escape the network fence, or run pods that the restricted Pod Security Standard refuses.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{EVENT_WITHIN, TestNamespace, kubectl, kubectl_ok, local_rdc, poll, unique};

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
    let uid = |ns: &TestNamespace, name: &str| {
        ns.get_json("rdc", name).expect("the RDC")["metadata"]["uid"]
            .as_str()
            .expect("a uid")
            .to_owned()
    };
    assert_eq!(
        a["spec"]["local"]["path"],
        format!(
            "/var/lib/domicile/{}/vehicle-data/{}/0",
            first.name,
            uid(&first, "vehicle-data")
        )
    );
    assert_eq!(
        b["spec"]["local"]["path"],
        format!(
            "/var/lib/domicile/{}/cn-vehicle-data/{}/0",
            second.name,
            uid(&second, "cn-vehicle-data")
        )
    );
}

#[test]
fn a_data_centre_of_an_old_name_never_gets_the_old_ones_volume() {
    // A namespace deleted with its data centre (whose volume is retained), then made again with
    // a data centre of the same name: before, the new one waited for ever on the old volume,
    // still bound to a claim that was gone, and would have had the old directory.
    let name = unique("e2e-reborn");
    let first = TestNamespace::named(name.clone());
    first.create_and_wait_ready(&local_rdc("ledger", "CN", 1));
    let old = bound_volume(&first, "ledger");
    let old_name = old["metadata"]["name"].as_str().expect("a name").to_owned();
    drop(first);
    poll("the namespace to go", Duration::from_secs(120), || {
        (!kubectl(&["get", "namespace", &name], None).success).then_some(())
    });
    poll(
        "the old volume to be released",
        Duration::from_secs(60),
        || {
            let pv: Value =
                serde_json::from_str(&kubectl_ok(&["get", "pv", &old_name, "-o", "json"], None))
                    .ok()?;
            (pv["status"]["phase"] == "Released").then_some(())
        },
    );

    let again = TestNamespace::named(name);
    again.create_and_wait_ready(&local_rdc("ledger", "CN", 1));
    let new = bound_volume(&again, "ledger");
    assert_ne!(new["metadata"]["name"], old["metadata"]["name"]);
    assert_ne!(new["spec"]["local"]["path"], old["spec"]["local"]["path"]);
    let status = poll(
        "the retained volume to be listed",
        Duration::from_secs(30),
        || {
            let status = again.get_json("rdc", "ledger")?["status"].clone();
            (status["retainedVolumes"] == json!([old_name])).then_some(status)
        },
    );
    eprintln!("retained: {}", status["retainedVolumes"]);
    let event = poll("a RetainedVolumes Event", EVENT_WITHIN, || {
        again
            .events_of("ledger", "RetainedVolumes")
            .into_iter()
            .next()
    });
    assert!(
        event["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("kubectl delete pv {old_name}"))),
        "{event}"
    );
    // The admin may delete it without an exemption: its claim is gone, the managed policy lets it.
    kubectl_ok(&["delete", "pv", &old_name, "--dry-run=server"], None);
    // Or give it to the new one: the earlier one's UID on the namespace, then the new one again
    // without its new (empty) volume.
    let old_uid = old["metadata"]["labels"]["domicile.dev/uid"]
        .as_str()
        .expect("the earlier one's UID")
        .to_owned();
    kubectl_ok(
        &[
            "label",
            "namespace",
            &again.name,
            &format!("domicile.dev/adopt-volumes-of={old_uid}"),
        ],
        None,
    );
    again.kubectl_ok(
        &[
            "patch",
            "rdc",
            "ledger",
            "--type=merge",
            "-p",
            r#"{"spec":{"storage":{"retainOnDelete":false}}}"#,
        ],
        None,
    );
    again.kubectl_ok(&["delete", "rdc", "ledger", "--timeout=60s"], None);
    poll("its new claim to go", Duration::from_secs(60), || {
        again
            .get_json("pvc", "data-ledger-0")
            .is_none()
            .then_some(())
    });
    again.create_and_wait_ready(&local_rdc("ledger", "CN", 1));
    let adopted = bound_volume(&again, "ledger");
    assert_eq!(adopted["metadata"]["name"], old["metadata"]["name"]);
    assert_eq!(
        adopted["spec"]["local"]["path"],
        old["spec"]["local"]["path"]
    );
    let status = again.get_json("rdc", "ledger").expect("the RDC")["status"].clone();
    assert!(status["retainedVolumes"].is_null(), "{status}");
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

    // The fence goes only where an admin allowed it: the data centres policy refuses the tenant's
    // spec until the namespace says so.
    let no_fence = [
        "patch",
        "rdc",
        "fenced",
        "--type=merge",
        "-p",
        r#"{"spec":{"network":{"fence":false}}}"#,
    ];
    let refused = ns.kubectl(&no_fence, None);
    assert!(
        !refused.success,
        "fence: false admitted without the namespace's opt-out"
    );
    assert!(
        refused.stderr.contains("domicile.dev/fence=optional"),
        "{}",
        refused.stderr
    );
    kubectl_ok(
        &[
            "label",
            "namespace",
            &ns.name,
            "domicile.dev/fence=optional",
        ],
        None,
    );
    ns.kubectl_ok(&no_fence, None);
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
