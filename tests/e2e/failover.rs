//! Leader election end to end: two operator processes, the leader killed, the other takes over
//! and reconciles a change made after the kill. hack/e2e.sh runs this alone, with its own
//! operators only.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TestNamespace, kubectl, local_rdc, poll};

const LEASE: &str = "domicile-e2e-failover";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set (hack/e2e.sh sets it)"))
}

/// An operator process with leader election, stopped when dropped.
struct Operator {
    identity: String,
    child: Child,
}

impl Operator {
    fn start(identity: &str, admin_port: u16) -> Self {
        let account = env("DOMICILE_OPERATOR_ACCOUNT");
        let namespace = account
            .split(':')
            .nth(2)
            .expect("system:serviceaccount:NAMESPACE:NAME");
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("domicile-{identity}.log")))
                .expect("a log file");
        let child = Command::new(env("DOMICILE_BIN"))
            .args(["run", "--leader-election", "--leader-election-lease", LEASE])
            .args([
                "--leader-election-namespace",
                namespace,
                "--leader-election-identity",
                identity,
            ])
            .args(["--admin-address", &format!("127.0.0.1:{admin_port}")])
            .env("KUBECONFIG", env("DOMICILE_OPERATOR_KUBECONFIG"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the operator starts");
        Self {
            identity: identity.to_owned(),
            child,
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn holder() -> Option<String> {
    let account = env("DOMICILE_OPERATOR_ACCOUNT");
    let namespace = account.split(':').nth(2).unwrap_or_default();
    let out = kubectl(
        &[
            "get",
            "lease",
            LEASE,
            "-n",
            namespace,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
        None,
    );
    out.success
        .then(|| out.stdout.trim().to_owned())
        .filter(|h| !h.is_empty())
}

#[test]
fn a_standby_takes_over_when_the_leader_dies_and_reconciles_what_changed() {
    let ns = TestNamespace::new("failover");
    let mut first = Operator::start("e2e-first", 18091);
    poll(
        "the first operator to lead",
        Duration::from_secs(30),
        || (holder()? == first.identity).then_some(()),
    );
    let second = Operator::start("e2e-second", 18092);
    ns.create_and_wait_ready(&local_rdc("orders", "DE", 1));
    assert_eq!(
        holder().as_deref(),
        Some("e2e-first"),
        "the standby must not take the lease"
    );

    // SIGKILL: no chance to release the lease, as when a node dies.
    first.child.kill().expect("the leader is killed");
    let killed = Instant::now();
    ns.kubectl_ok(
        &[
            "patch",
            "rdc",
            "orders",
            "--type=merge",
            "-p",
            r#"{"spec":{"workload":{"replicas":2}}}"#,
        ],
        None,
    );

    poll(
        "the standby to take the lease",
        Duration::from_secs(60),
        || (holder()? == second.identity).then_some(()),
    );
    let takeover = killed.elapsed();
    let status = poll(
        "the change made after the kill to be reconciled",
        Duration::from_secs(60),
        || {
            let status = ns.get_json("rdc", "orders")?["status"].clone();
            (status["observedGeneration"] == 2
                && status["ready"] == "2/2"
                && status["phase"] == "Ready")
                .then_some(status)
        },
    );
    eprintln!(
        "leader killed: the standby took the lease after {takeover:?} and reconciled the change after {:?}",
        killed.elapsed()
    );
    assert_eq!(status["residency"], "Compliant");
    assert!(
        takeover < Duration::from_secs(30),
        "takeover took {takeover:?}"
    );
}
