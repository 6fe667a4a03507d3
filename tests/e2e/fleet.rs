//! The fleet audit: `domicile audit --context ... | --all-contexts` across two local clusters at
//! once, CN data in one and DE data in the other, and a third context that answers nothing.
//! hack/fleet.sh starts the second cluster and runs this with no other operator running.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{OwnOperator, TestNamespace, env, local_rdc, poll_seen};

/// kubectl against the second cluster.
fn two(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut command =
        Command::new(std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned()));
    command
        .args(["--kubeconfig", &env("DOMICILE_TWO_ADMIN_KUBECONFIG")])
        .args(args);
    let out = if let Some(input) = stdin {
        let path = std::env::temp_dir().join(format!("domicile-fleet-{}.json", std::process::id()));
        std::fs::write(&path, input).expect("a manifest");
        command
            .args(["-f", path.to_str().unwrap_or_default()])
            .output()
    } else {
        command.output()
    }
    .expect("kubectl runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The same-named namespace in the second cluster, deleted at the end.
struct SecondNamespace(String);

impl Drop for SecondNamespace {
    fn drop(&mut self) {
        two(&["delete", "namespace", &self.0, "--wait=false"], None);
    }
}

/// `domicile audit -n NAMESPACE ARGS...` with the fleet's kubeconfig: exit code and stdout.
fn audit(namespace: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env("DOMICILE_BIN"))
        .args(["audit", "-n", namespace])
        .args(args)
        .env("KUBECONFIG", env("DOMICILE_FLEET_KUBECONFIG"))
        .output()
        .expect("domicile runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (cluster, name, residency) of each report, and the clusters not audited.
fn verdicts(json: &str) -> (Vec<(String, String, String)>, Vec<String>) {
    let clusters: Value = serde_json::from_str(json).expect("JSON");
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for cluster in clusters.as_array().cloned().unwrap_or_default() {
        let name = cluster["cluster"].as_str().unwrap_or_default().to_owned();
        match cluster["reports"].as_array() {
            Some(reports) => rows.extend(reports.iter().map(|r| {
                (
                    name.clone(),
                    r["name"].as_str().unwrap_or_default().to_owned(),
                    r["residency"].as_str().unwrap_or_default().to_owned(),
                )
            })),
            None => {
                assert!(cluster["error"].is_string(), "{cluster}");
                failed.push(name);
            }
        }
    }
    (rows, failed)
}

fn row(cluster: &str, name: &str, residency: &str) -> (String, String, String) {
    (cluster.to_owned(), name.to_owned(), residency.to_owned())
}

#[test]
fn one_audit_across_clusters_names_each_and_reports_the_unreachable_one() {
    let _one = OwnOperator::start("fleet-one", &[], 18095);
    let _two = OwnOperator::start_in(
        &env("DOMICILE_TWO_OPERATOR_KUBECONFIG"),
        "fleet-two",
        &[],
        18096,
    );
    let ns = TestNamespace::new("fleet");
    let second = SecondNamespace(ns.name.clone());
    let (created, out) = two(&["create", "namespace", &second.0], None);
    assert!(created, "{out}");
    ns.create_and_wait_ready(&local_rdc("cars", "CN", 1));
    let (applied, out) = two(
        &["apply", "-n", &second.0],
        Some(&local_rdc("health", "DE", 1).to_string()),
    );
    assert!(applied, "{out}");
    let (ready, out) = two(
        &[
            "wait",
            "-n",
            &second.0,
            "--for=condition=Ready",
            "--timeout=90s",
            "rdc/health",
        ],
        None,
    );
    assert!(ready, "{out}");

    // Both clusters, one table.
    let (code, table, stderr) = audit(&ns.name, &["--context", "one", "--context", "two"]);
    eprintln!("{table}{stderr}");
    assert_eq!(code, 0, "{table}{stderr}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("CLUSTER   NAMESPACE"), "{table}");
    assert!(
        lines[1].starts_with("one ") && lines[1].contains(" cars ") && lines[1].contains(" CN "),
        "{table}"
    );
    assert!(
        lines[2].starts_with("two ") && lines[2].contains(" health ") && lines[2].contains(" DE "),
        "{table}"
    );
    let (code, json, _) = audit(
        &ns.name,
        &["--context", "one", "--context", "two", "-o", "json"],
    );
    assert_eq!(code, 0);
    assert_eq!(
        verdicts(&json),
        (
            vec![
                row("one", "cars", "Compliant"),
                row("two", "health", "Compliant")
            ],
            vec![]
        )
    );

    // A cluster that answers nothing is reported, exit 2, and the others are still audited.
    let (code, table, _) = audit(
        &ns.name,
        &["--context", "one", "--context", "gone", "--context", "two"],
    );
    eprintln!("{table}");
    assert_eq!(code, 2, "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("gone: not audited: ")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("two ") && l.contains(" health ")),
        "{table}"
    );
    let (code, json, _) = audit(&ns.name, &["--all-contexts", "-o", "json"]);
    assert_eq!(code, 2);
    assert_eq!(
        verdicts(&json),
        (
            vec![
                row("one", "cars", "Compliant"),
                row("two", "health", "Compliant")
            ],
            vec!["gone".to_owned()]
        )
    );

    // A violation in one cluster is the fleet's: exit 1.
    let (_, node) = two(
        &[
            "get",
            "pod",
            "-n",
            &second.0,
            "health-0",
            "-o",
            "jsonpath={.spec.nodeName}",
        ],
        None,
    );
    let (relabelled, out) = two(
        &[
            "label",
            "node",
            node.trim(),
            "domicile.node-restriction.kubernetes.io/jurisdiction=US",
            "--overwrite",
        ],
        None,
    );
    assert!(relabelled, "{out}");
    poll_seen(
        "the fleet to see the violation",
        Duration::from_secs(30),
        || {
            let (code, json, stderr) = audit(
                &ns.name,
                &["--context", "one", "--context", "two", "-o", "json"],
            );
            let seen = verdicts(&json);
            (code == 1
                && seen
                    == (
                        vec![
                            row("one", "cars", "Compliant"),
                            row("two", "health", "Violated"),
                        ],
                        vec![],
                    ))
                .then_some(())
                .ok_or(format!("exit {code}: {seen:?} {stderr}"))
        },
    );
}
