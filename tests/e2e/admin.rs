//! The admin endpoints: /readyz tells whether the caches synced, /metrics has every family.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    ClusterObject, TestNamespace, http_status, kubectl_ok, local_rdc, poll, unique,
};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (hack/e2e.sh sets it)"))
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binding(name: &str, role: &str, ns: &TestNamespace, account: &str) -> ClusterObject {
    ClusterObject::create(
        "clusterrolebinding",
        &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": ns.name}]
        }),
    )
}

/// Runs alone (hack/e2e.sh), because once ready this operator reconciles like the main one.
#[test]
fn readyz_answers_503_until_every_cache_synced_and_200_after() {
    let ns = TestNamespace::new("readyz");
    // The chart's rules without nodes: the node watch cannot list, so its cache never syncs.
    let chart_role: Value = serde_json::from_str(&kubectl_ok(
        &["get", "clusterrole", "domicile", "-o", "json"],
        None,
    ))
    .expect("JSON");
    let rules: Vec<Value> = chart_role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|rule| {
            let mut rule = rule.clone();
            let resources: Vec<Value> = rule["resources"]
                .as_array()?
                .iter()
                .filter(|r| *r != "nodes")
                .cloned()
                .collect();
            rule["resources"] = json!(resources);
            (!resources.is_empty()).then_some(rule)
        })
        .collect();
    let partial = ClusterObject::create(
        "clusterrole",
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": unique("e2e-no-nodes")}, "rules": rules}),
    );
    ns.kubectl_ok(&["create", "serviceaccount", "readyz"], None);
    let _partial_binding = binding(&unique("e2e-no-nodes"), &partial.name, &ns, "readyz");
    let token = ns.kubectl_ok(&["create", "token", "readyz", "--duration=1h"], None);
    let server = kubectl_ok(
        &[
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ],
        None,
    );
    let ca = kubectl_ok(
        &[
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority}",
        ],
        None,
    );
    let kubeconfig = std::env::temp_dir().join(format!("{}.kubeconfig", ns.name));
    let config = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": "u", "user": {"token": token.trim()}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]
    });
    std::fs::write(&kubeconfig, config.to_string()).expect("a kubeconfig is written");

    let address = "127.0.0.1:18093";
    let _operator = Process(
        Command::new(env("DOMICILE_BIN"))
            .args(["run", "--admin-address", address])
            .env("KUBECONFIG", &kubeconfig)
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(std::env::temp_dir().join("domicile-e2e-readyz.log"))
                    .expect("a log file"),
            )
            .spawn()
            .expect("the operator starts"),
    );
    poll("/livez to answer", Duration::from_secs(30), || {
        (http_status(&format!("http://{address}/livez"))? == 200).then_some(())
    });
    let watching = Instant::now();
    while watching.elapsed() < Duration::from_secs(3) {
        assert_eq!(
            http_status(&format!("http://{address}/readyz")),
            Some(503),
            "ready although nodes cannot be listed"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let _full_binding = binding(&unique("e2e-full"), "domicile", &ns, "readyz");
    let synced = Instant::now();
    poll(
        "/readyz to answer 200 once the caches sync",
        Duration::from_secs(90),
        || (http_status(&format!("http://{address}/readyz"))? == 200).then_some(()),
    );
    eprintln!(
        "/readyz: 503 while nodes could not be listed, 200 {:?} after the permission was granted",
        synced.elapsed()
    );
    let _ = std::fs::remove_file(kubeconfig);
}

#[test]
fn metrics_expose_every_family_with_bounded_labels() {
    let ns = TestNamespace::new("metrics");
    ns.create_and_wait_ready(&local_rdc("counted", "CN", 1));
    // And one in violation: a volume on the US node bound by hand to its claim.
    let class_name = unique("e2e-metrics-cn");
    let _class = crate::drift::class(&class_name, Some("CN"));
    let _pv = crate::drift::volume(&class_name, &ns, "data-misplaced-0", Some("us-east-1"));
    let misplaced = crate::drift::dynamic_rdc("misplaced", "CN", &class_name, "Audit");
    ns.kubectl_ok(&["apply", "-f", "-"], Some(&misplaced.to_string()));

    let url = env("DOMICILE_METRICS_URL");
    let scrape = || {
        let out = Command::new("curl")
            .args(["-fsS", &url])
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let violation = r#"domicile_violations{jurisdiction="CN",reason="DataOutsideJurisdiction"}"#;
    let text = poll(
        "the violation to be counted",
        Duration::from_secs(60),
        || {
            let text = scrape();
            text.contains(violation).then_some(text)
        },
    );
    for family in [
        "domicile_reconciliations",
        "domicile_reconcile_duration_seconds",
        "domicile_reconcile_errors",
        "domicile_regional_data_centers",
        "domicile_violations",
        "domicile_kubernetes_writes",
        "domicile_watch_last_event_age_seconds",
        "domicile_watch_healthy",
        "domicile_leader",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "no {family} in:\n{text}"
        );
    }
    for resource in [
        "nodes",
        "pods",
        "statefulsets",
        "regionaldatacenters",
        "events",
    ] {
        assert!(
            text.contains(&format!(
                "domicile_watch_healthy{{resource=\"{resource}\"}} 1"
            )),
            "the {resource} watch is not reported healthy:\n{text}"
        );
    }
    assert!(
        text.contains("\ndomicile_leader 1\n"),
        "the operator reconciles, so it says it leads:\n{text}"
    );
    let compliant =
        r#"domicile_regional_data_centers{jurisdiction="CN",phase="Ready",residency="Compliant"}"#;
    assert!(text.contains(compliant), "{text}");
    // No object name in any label.
    assert!(
        !text.contains("counted") && !text.contains("misplaced"),
        "an object name leaked:\n{text}"
    );
    assert!(!text.contains(&ns.name), "a namespace leaked into a label");
}
