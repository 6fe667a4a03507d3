//! A converged operator leaves the cluster alone: no write while nothing changes.
//! hack/e2e.sh runs this module alone, after every other test, so nothing else writes.

use std::time::{Duration, Instant};

use crate::support::{TestNamespace, counter_at, kubectl_ok, local_rdc, poll};

/// The sum of one counter family of the operator's /metrics.
fn counter(family: &str) -> u64 {
    let url = std::env::var("DOMICILE_METRICS_URL")
        .expect("DOMICILE_METRICS_URL names the operator's /metrics (hack/e2e.sh sets it)");
    counter_at(&url, family).unwrap_or_else(|| panic!("cannot read {url}"))
}

fn writes_so_far() -> u64 {
    counter("domicile_kubernetes_writes_total")
}

#[test]
fn converged_operator_issues_no_writes_for_a_minute() {
    let ns = TestNamespace::new("quiet");
    ns.create_and_wait_ready(&local_rdc("steady", "CN", 3));
    // Earlier tests' namespaces are still being deleted; their clean-up writes are expected.
    poll(
        "the other test namespaces to be gone",
        Duration::from_secs(180),
        || {
            let names = kubectl_ok(&["get", "namespaces", "-o", "name"], None);
            names
                .lines()
                .all(|n| !n.starts_with("namespace/e2e-") || n == format!("namespace/{}", ns.name))
                .then_some(())
        },
    );
    // Let the last events of that clean-up reach the operator: wait for five quiet seconds.
    let mut last = (writes_so_far(), Instant::now());
    poll(
        "the clean-up writes to end",
        Duration::from_secs(120),
        || {
            let now = writes_so_far();
            if now != last.0 {
                last = (now, Instant::now());
            }
            (last.1.elapsed() >= Duration::from_secs(5)).then_some(())
        },
    );

    // For a minute, relabel a node with a label no jurisdiction depends on: a change of labels
    // reaches every data centre (a volume's node affinity could name any label), so the operator
    // does reconcile and audit, and must still not write.
    let start = Instant::now();
    let before = writes_so_far();
    let reconciles_before = counter("domicile_reconciliations_total");
    let mut heartbeats = 0;
    while start.elapsed() < Duration::from_secs(60) {
        heartbeats += 1;
        let label = format!("e2e.domicile.dev/heartbeat={heartbeats}");
        kubectl_ok(
            &["label", "node", "cn-beijing-1", &label, "--overwrite"],
            None,
        );
        std::thread::sleep(Duration::from_secs(3));
    }
    let after = writes_so_far();
    let reconciles = counter("domicile_reconciliations_total") - reconciles_before;
    eprintln!(
        "writes by the operator: {before} before, {after} after {:?}, during which {heartbeats} \
         node updates caused {reconciles} reconciliations",
        start.elapsed()
    );
    assert!(
        reconciles >= heartbeats,
        "the node updates did not reach the operator"
    );
    assert_eq!(
        after,
        before,
        "the operator wrote {} times while nothing changed",
        after - before
    );
    let phase = ns.kubectl_ok(
        &["get", "rdc", "steady", "-o", "jsonpath={.status.phase}"],
        None,
    );
    assert_eq!(phase, "Ready");
}
