//! The API server crashes (SIGKILL) or restarts gracefully (SIGTERM) under the running operator:
//! /readyz says 503 while it is gone, and once it is back the operator sees a relabel and
//! converges a new data centre within 30 s of the cluster's own components being back, without
//! being restarted. hack/e2e.sh runs these alone,
//! one at a time, since every other test would fail while the API server is down.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    JURISDICTION_LABEL, TestNamespace, TestNode, http_status, kubectl_ok, local_rdc, poll,
    poll_seen,
};

const DOWN_FOR: Duration = Duration::from_secs(20);
const CONVERGE_WITHIN: Duration = Duration::from_secs(30);

fn component(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/component.sh");
    let status = Command::new(script)
        .args(args)
        .status()
        .expect("hack/component.sh runs");
    assert!(
        status.success(),
        "hack/component.sh {} failed",
        args.join(" ")
    );
}

/// The API server, stopped until this is dropped: a failing test leaves a running cluster behind.
struct Stopped;

impl Stopped {
    fn by(signal: &str) -> Self {
        component(&["stop", "kube-apiserver", signal]);
        Self
    }

    /// Starts the API server again, and restarts the cluster's own controllers, scheduler and
    /// kwok: their client-go watches back off up to 30 s after an outage, and the time they take
    /// is theirs, not the operator's, which is never restarted. Returns when the API server was
    /// back (answering /readyz), and when the cluster's components were too: the operator's
    /// time to converge counts from there.
    fn restart(self) -> (Instant, Instant) {
        std::mem::forget(self);
        component(&["start", "kube-apiserver"]);
        let back = Instant::now();
        for name in ["kube-controller-manager", "kube-scheduler", "kwok"] {
            component(&["stop", name, "TERM"]);
            component(&["start", name]);
        }
        (back, Instant::now())
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        component(&["start", "kube-apiserver"]);
    }
}

fn readyz() -> Option<u16> {
    let url = std::env::var("DOMICILE_METRICS_URL")
        .expect("DOMICILE_METRICS_URL names the operator's /metrics (hack/e2e.sh sets it)")
        .replace("/metrics", "/readyz");
    http_status(&url)
}

fn status(ns: &TestNamespace, rdc: &str) -> Option<Value> {
    let out = ns.kubectl(&["get", "rdc", rdc, "-o", "json"], None);
    out.success
        .then(|| serde_json::from_str::<Value>(&out.stdout).ok())
        .flatten()
        .map(|rdc| rdc["status"].clone())
}

/// A status in one line: its residency and each condition's reason and message.
fn describe(status: &Value) -> String {
    let conditions = status["conditions"]
        .as_array()
        .map_or_else(Vec::new, |all| {
            all.iter()
                .map(|c| {
                    format!(
                        "{}={} {}: {}",
                        c["type"].as_str().unwrap_or_default(),
                        c["status"].as_str().unwrap_or_default(),
                        c["reason"].as_str().unwrap_or_default(),
                        c["message"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        });
    format!(
        "residency {}; {}",
        status["residency"].as_str().unwrap_or("unset"),
        conditions.join("; ")
    )
}

fn ready(status: &Value) -> bool {
    status["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Three outages in a row, each followed by a relabel and a new data centre.
fn survive_outages(signal: &str) {
    // The relabelled node and the new data centres' node are not the same: right after the
    // restart the scheduler may still place pods by labels it saw before the outage.
    let relabelled = TestNode::new("e2e-is", &[(JURISDICTION_LABEL, "IS")]);
    let _spare = TestNode::new("e2e-gl", &[(JURISDICTION_LABEL, "GL")]);
    let ns = TestNamespace::new(&format!("outage_{}", signal.to_lowercase()));
    // The new data centres are of another jurisdiction, so of another namespace: a namespace
    // belongs to one jurisdiction, and the claims policy refuses the others' claims.
    let fresh_ns = TestNamespace::new(&format!("outage_{}_gl", signal.to_lowercase()));
    ns.create_and_wait_ready(&local_rdc("before", "IS", 1));
    let pod = ns.get_json("pod", "before-0").expect("the pod runs");
    let node = pod["spec"]["nodeName"]
        .as_str()
        .expect("scheduled")
        .to_owned();
    assert_eq!(node, relabelled.name);
    poll("/readyz to answer 200", Duration::from_secs(30), || {
        (readyz()? == 200).then_some(())
    });

    for round in 1..=3 {
        let stopped = Stopped::by(signal);
        let down = Instant::now();
        let mut answers = Vec::new();
        while down.elapsed() < DOWN_FOR {
            answers.push(readyz());
            std::thread::sleep(Duration::from_millis(500));
        }
        let (back, cluster_back) = stopped.restart();
        let unready = answers.iter().filter(|a| **a == Some(503)).count();
        assert!(
            answers.iter().rev().take(10).all(|a| *a == Some(503)),
            "round {round}: /readyz did not answer 503 for the last 5 s of the outage: {answers:?}"
        );

        // What the operator must notice: a relabel of the node under `before`, and a new one.
        let (label, expected) = if round % 2 == 1 {
            ("US", "Violated")
        } else {
            ("IS", "Compliant")
        };
        let relabelled_at = Instant::now();
        kubectl_ok(
            &[
                "label",
                "node",
                &node,
                &format!("{JURISDICTION_LABEL}={label}"),
                "--overwrite",
            ],
            None,
        );
        let fresh = format!("after-{round}");
        fresh_ns.kubectl_ok(
            &["apply", "-f", "-"],
            Some(&local_rdc(&fresh, "GL", 1).to_string()),
        );
        let deadline = CONVERGE_WITHIN.saturating_sub(cluster_back.elapsed());
        let seen = poll_seen(
            &format!("round {round}: residency {expected} after SIG{signal}"),
            deadline,
            || {
                let status = status(&ns, "before").unwrap_or_default();
                if status["residency"] == expected {
                    Ok((back.elapsed(), relabelled_at.elapsed()))
                } else {
                    Err(describe(&status))
                }
            },
        );
        let deadline = CONVERGE_WITHIN.saturating_sub(cluster_back.elapsed());
        let converged = poll_seen(
            &format!("round {round}: {fresh} Ready after SIG{signal}"),
            deadline,
            || {
                let status = status(&fresh_ns, &fresh).unwrap_or_default();
                if ready(&status) {
                    Ok(back.elapsed())
                } else {
                    Err(describe(&status))
                }
            },
        );
        let healthy = poll(
            &format!("round {round}: /readyz 200 again"),
            CONVERGE_WITHIN,
            || (readyz()? == 200).then(|| back.elapsed()),
        );
        eprintln!(
            "SIG{signal} round {round}: /readyz 503 in {unready} of {} probes while down; after the API \
             server was back (its controllers, scheduler and kwok {:?} later): relabel seen in {:?} ({:?} after \
             the relabel), new data centre Ready in {converged:?}, /readyz 200 in {healthy:?}",
            answers.len(),
            cluster_back - back,
            seen.0,
            seen.1
        );
    }
}

#[test]
fn the_operator_survives_an_api_server_crash() {
    survive_outages("KILL");
}

#[test]
fn the_operator_survives_a_graceful_api_server_restart() {
    survive_outages("TERM");
}
