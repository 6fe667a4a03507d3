//! Children stay as declared: whoever changes a field the operator sets (kubectl patch, a
//! server-side apply under another field manager with --force-conflicts, a label), sees it set back
//! within seconds, with a ChildRestored Event that names the change and who made it.
//!
//! The managed-objects admission policy refuses such changes to people (tests/e2e/admission.rs);
//! the changes here are made as a Kubernetes controller it must let through, the garbage
//! collector, because what these tests prove is the line behind it: whatever got a change
//! through, the operator sets it back.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    AS_TRUSTED_CONTROLLER, EVENT_WITHIN, JURISDICTION_LABEL, TestNamespace, TestNode, kubectl,
    kubectl_ok, local_rdc, poll,
};

/// How long a tampered child may stay tampered.
const RESTORE_WITHIN: Duration = Duration::from_secs(10);

/// Events of reason `reason` on RegionalDataCenter `rdc`, as their messages.
fn event_messages(ns: &TestNamespace, rdc: &str, reason: &str) -> Vec<String> {
    ns.events_of(rdc, reason)
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits until `restored` holds, then for a ChildRestored Event whose message contains every
/// piece of `says`; returns how long the restore took.
fn assert_restored(
    ns: &TestNamespace,
    rdc: &str,
    what: &str,
    restored: impl Fn() -> bool,
    says: &[&str],
) -> Duration {
    let tampered = Instant::now();
    poll(what, RESTORE_WITHIN, || restored().then_some(()));
    let took = tampered.elapsed();
    let messages = poll("a ChildRestored Event", EVENT_WITHIN, || {
        let messages = event_messages(ns, rdc, "ChildRestored");
        messages
            .iter()
            .any(|m| says.iter().all(|piece| m.contains(piece)))
            .then_some(messages)
    });
    eprintln!("{what}: restored after {took:?}; events: {messages:?}");
    took
}

fn affinity_values(ns: &TestNamespace, sts: &str) -> Value {
    let sts = ns
        .get_json("statefulset", sts)
        .expect("the StatefulSet exists");
    sts["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        .clone()
}

fn only_cn() -> Value {
    json!([{"matchExpressions": [{"key": JURISDICTION_LABEL, "operator": "In", "values": ["CN"]}]}])
}

#[test]
fn statefulset_affinity_widened_by_kubectl_patch_is_restored() {
    let ns = TestNamespace::new("tamper_patch");
    ns.create_and_wait_ready(&local_rdc("patched", "CN", 1));
    let widen = json!([{
        "op": "replace",
        "path": "/spec/template/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchExpressions/0/values",
        "value": ["CN", "US"]
    }]);
    ns.kubectl_ok(
        &[
            "patch",
            AS_TRUSTED_CONTROLLER,
            "statefulset",
            "patched",
            "--type=json",
            "-p",
            &widen.to_string(),
        ],
        None,
    );
    assert_restored(
        &ns,
        "patched",
        "the affinity to require CN only again",
        || affinity_values(&ns, "patched") == only_cn(),
        &["StatefulSet patched", "values", "kubectl-patch"],
    );
}

#[test]
fn statefulset_affinity_widened_by_another_field_manager_is_restored() {
    let ns = TestNamespace::new("tamper_apply");
    ns.create_and_wait_ready(&local_rdc("applied", "CN", 1));
    let intruder = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "applied", "namespace": ns.name},
        "spec": {"template": {"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": JURISDICTION_LABEL, "operator": "In", "values": ["CN", "US"]}]}
            ]}
        }}}}}
    });
    ns.kubectl_ok(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=intruder",
            AS_TRUSTED_CONTROLLER,
            "-f",
            "-",
        ],
        Some(&intruder.to_string()),
    );
    assert_restored(
        &ns,
        "applied",
        "the affinity to require CN only again",
        || affinity_values(&ns, "applied") == only_cn(),
        &["StatefulSet applied", "intruder"],
    );
}

#[test]
fn a_sidecar_and_a_host_volume_added_to_the_pod_template_are_taken_out() {
    // Fields the operator never declares, added under a field manager of their own: an apply
    // alone would leave them (they are another manager's), so they are compared and set back
    // as a whole.
    let ns = TestNamespace::new("tamper_sidecar");
    ns.create_and_wait_ready(&local_rdc("sidecar", "CN", 1));
    let intruder = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "sidecar", "namespace": ns.name},
        "spec": {"template": {"spec": {
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
            "containers": [{"name": "exfil", "image": "registry.example/exfil:1",
                            "volumeMounts": [{"name": "root", "mountPath": "/host"}]}]
        }}}
    });
    let applied = ns.kubectl_ok(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=intruder",
            AS_TRUSTED_CONTROLLER,
            "-o",
            "json",
            "-f",
            "-",
        ],
        Some(&intruder.to_string()),
    );
    // What the API server stored: the sidecar was in.
    let tampered: Value = serde_json::from_str(&applied).expect("JSON");
    assert_eq!(
        tampered["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{tampered}"
    );
    let pod_template = || {
        ns.get_json("statefulset", "sidecar")
            .expect("the StatefulSet")["spec"]["template"]["spec"]
            .clone()
    };
    assert_restored(
        &ns,
        "sidecar",
        "the sidecar and the host volume to be gone",
        || {
            let template = pod_template();
            template.get("volumes").is_none()
                && template["containers"]
                    .as_array()
                    .is_some_and(|c| c.len() == 1 && c[0]["name"] == "workload")
        },
        &["StatefulSet sidecar"],
    );
}

#[test]
fn network_policy_rules_removed_or_opened_are_restored() {
    let ns = TestNamespace::new("tamper_fence");
    ns.create_and_wait_ready(&local_rdc("fenced", "CN", 1));
    let declared = ns.get_json("networkpolicy", "fenced").expect("the fence")["spec"].clone();
    assert!(declared["ingress"].is_array() && declared["egress"].is_array());
    let spec_is_declared = || {
        ns.get_json("networkpolicy", "fenced")
            .is_some_and(|p| p["spec"] == declared)
    };

    let remove = json!([
        {"op": "remove", "path": "/spec/ingress"},
        {"op": "remove", "path": "/spec/egress"}
    ]);
    ns.kubectl_ok(
        &[
            "patch",
            AS_TRUSTED_CONTROLLER,
            "networkpolicy",
            "fenced",
            "--type=json",
            "-p",
            &remove.to_string(),
        ],
        None,
    );
    assert_restored(
        &ns,
        "fenced",
        "the removed rules to come back",
        spec_is_declared,
        &["NetworkPolicy fenced", "spec.egress"],
    );

    // Ingress from anywhere: one empty rule.
    let open = json!([{"op": "replace", "path": "/spec/ingress", "value": [{}]}]);
    ns.kubectl_ok(
        &[
            "patch",
            AS_TRUSTED_CONTROLLER,
            "networkpolicy",
            "fenced",
            "--type=json",
            "-p",
            &open.to_string(),
        ],
        None,
    );
    assert_restored(
        &ns,
        "fenced",
        "ingress to be fenced again",
        spec_is_declared,
        &["NetworkPolicy fenced", "spec.ingress", "kubectl-patch"],
    );
}

#[test]
fn service_selector_changed_is_restored() {
    let ns = TestNamespace::new("tamper_service");
    ns.create_and_wait_ready(&local_rdc("served", "CN", 1));
    let selector = |ns: &TestNamespace| {
        ns.get_json("service", "served").expect("the Service")["spec"]["selector"].clone()
    };
    let declared = selector(&ns);
    let steal = json!({"spec": {"selector": {"domicile.dev/regional-data-center": "intruder"}}});
    ns.kubectl_ok(
        &[
            "patch",
            AS_TRUSTED_CONTROLLER,
            "service",
            "served",
            "-p",
            &steal.to_string(),
        ],
        None,
    );
    assert_restored(
        &ns,
        "served",
        "the selector to select the data pods again",
        || selector(&ns) == declared,
        &["Service served", "spec.selector", "kubectl-patch"],
    );
}

#[test]
fn managed_storage_class_and_local_volume_changed_are_restored() {
    let _node = TestNode::new("e2e-no", &[(JURISDICTION_LABEL, "NO")]);
    let ns = TestNamespace::new("tamper_storage");
    ns.create_and_wait_ready(&local_rdc("oslo", "NO", 1));
    let class_jurisdiction = || {
        let labels = kubectl_ok(
            &[
                "get",
                "storageclass",
                "domicile-local-no",
                "-o",
                "jsonpath={.metadata.labels}",
            ],
            None,
        );
        serde_json::from_str::<Value>(&labels).expect("JSON")[JURISDICTION_LABEL].clone()
    };
    assert_eq!(class_jurisdiction(), "NO");
    kubectl_ok(
        &[
            "label",
            AS_TRUSTED_CONTROLLER,
            "storageclass",
            "domicile-local-no",
            &format!("{JURISDICTION_LABEL}=US"),
            "--overwrite",
        ],
        None,
    );
    assert_restored(
        &ns,
        "oslo",
        "the class to declare NO again",
        || class_jurisdiction() == "NO",
        &["StorageClass domicile-local-no", "kubectl-label"],
    );

    let volume = ns.list_of("pvc", "oslo")[0]["spec"]["volumeName"]
        .as_str()
        .expect("the claim is bound")
        .to_owned();
    let reclaim = || {
        kubectl_ok(
            &[
                "get",
                "pv",
                &volume,
                "-o",
                "jsonpath={.spec.persistentVolumeReclaimPolicy}",
            ],
            None,
        )
    };
    kubectl_ok(
        &[
            "patch",
            AS_TRUSTED_CONTROLLER,
            "pv",
            &volume,
            "-p",
            r#"{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}"#,
        ],
        None,
    );
    assert_restored(
        &ns,
        "oslo",
        "the volume to be retained again",
        || reclaim() == "Retain",
        &[
            "PersistentVolume",
            "persistentVolumeReclaimPolicy",
            "kubectl-patch",
        ],
    );
}

#[test]
fn an_update_the_api_server_refuses_is_reported_with_the_steps_that_fix_it() {
    let ns = TestNamespace::new("refused_update");
    ns.create_and_wait_ready(&local_rdc("resized", "CN", 1));
    // volumeClaimTemplates of a StatefulSet are immutable.
    ns.kubectl_ok(
        &[
            "patch",
            "rdc",
            "resized",
            "--type=merge",
            "-p",
            r#"{"spec":{"storage":{"size":"2Gi"}}}"#,
        ],
        None,
    );
    let message = poll("Ready=False UpdateRefused", Duration::from_secs(60), || {
        let rdc = ns.get_json("rdc", "resized")?;
        let ready = rdc["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?
            .clone();
        (ready["reason"] == "UpdateRefused")
            .then(|| ready["message"].as_str().unwrap_or_default().to_owned())
    });
    assert!(message.contains("StatefulSet resized"), "{message}");
    assert!(message.contains("--cascade=orphan"), "{message}");
    let exempt = format!(
        "kubectl label namespace {} domicile.dev/admission=exempt",
        ns.name
    );
    assert!(message.contains(&exempt), "{message}");
    poll("a Warning Event UpdateRefused too", EVENT_WITHIN, || {
        ns.kubectl_ok(
            &["get", "events", "-o", "jsonpath={.items[*].reason}"],
            None,
        )
        .contains("UpdateRefused")
        .then_some(())
    });
    // The steps the message gives, as a person would take them: the managed-objects policy
    // refuses the deletion until the namespace is exempt for the moment.
    let refused = ns.kubectl(
        &["delete", "statefulset", "resized", "--cascade=orphan"],
        None,
    );
    assert!(
        refused.stderr.contains("managed by domicile"),
        "{}",
        refused.stderr
    );
    let label = |change: &str| {
        kubectl_ok(&["label", "namespace", &ns.name, change], None);
    };
    label("domicile.dev/admission=exempt");
    ns.kubectl_ok(
        &["delete", "statefulset", "resized", "--cascade=orphan"],
        None,
    );
    label("domicile.dev/admission-");
    ns.wait_ready("resized");
    let template =
        ns.get_json("statefulset", "resized").expect("recreated")["spec"]["volumeClaimTemplates"]
            [0]["spec"]["resources"]["requests"]["storage"]
            .clone();
    assert_eq!(template, "2Gi");
    assert!(
        kubectl(&["-n", &ns.name, "get", "pvc", "data-resized-0"], None).success,
        "the claim and its data stay"
    );
}

#[test]
fn a_status_rewritten_by_someone_else_is_set_back() {
    let ns = TestNamespace::new("tamper_status");
    ns.create_and_wait_ready(&local_rdc("reported", "CN", 1));
    // Someone with rights on the status subresource claims a verdict the cluster does not show.
    ns.kubectl_ok(
        &[
            "patch",
            "rdc",
            "reported",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"residency":"Unverifiable","phase":"Degraded"}}"#,
        ],
        None,
    );
    let tampered = Instant::now();
    poll("the status to say Compliant again", RESTORE_WITHIN, || {
        let status = ns.get_json("rdc", "reported")?["status"].clone();
        (status["residency"] == "Compliant" && status["phase"] == "Ready").then_some(())
    });
    eprintln!("status set back after {:?}", tampered.elapsed());
}
