//! `domicile what-if` against the live cluster, and the same binary as the kubectl plugin
//! `kubectl domicile`. Read-only: the test checks nothing changed.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{TestNamespace, env, kubectl, local_rdc, poll_seen};

/// Runs `program ARGS...` with `path_first` at the head of PATH: exit code, stdout, stderr.
fn run(
    program: &str,
    args: &[&str],
    path_first: Option<&std::path::Path>,
) -> (i32, String, String) {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = path_first {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        command.env("PATH", std::env::join_paths(dirs).expect("a PATH"));
    }
    let out = command.output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn what_if(ns: &TestNamespace, change: &[&str]) -> (i32, Value) {
    let mut args = vec!["what-if", "-n", ns.name.as_str(), "-o", "json"];
    args.extend_from_slice(change);
    let (code, stdout, stderr) = run(&env("DOMICILE_BIN"), &args, None);
    let answer = serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("what-if printed no JSON ({err}): {stdout}{stderr}"));
    (code, answer)
}

/// (name, residencyAfter, breaks) of each data centre named.
fn named(answer: &Value) -> Vec<(String, String, bool)> {
    answer["impacts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap_or_default().to_owned(),
                i["residencyAfter"].as_str().unwrap_or_default().to_owned(),
                i["breaks"] == true,
            )
        })
        .collect()
}

#[test]
fn what_if_names_the_data_centres_a_relabel_or_drain_would_break_and_changes_nothing() {
    let ns = TestNamespace::new("what-if");
    // Local mode puts each replica on a node of its own: three replicas of CN use every CN node
    // (cn-beijing-1, cn-beijing-2, cn-shanghai-1), so one of them is on cn-beijing-1; the one
    // replica of `single` may or may not be.
    ns.create_and_wait_ready(&local_rdc("everywhere", "CN", 3));
    ns.create_and_wait_ready(&local_rdc("single", "CN", 1));
    let there: Vec<String> = ["everywhere", "single"]
        .into_iter()
        .filter(|rdc| {
            ns.list_of("pod", rdc)
                .iter()
                .any(|p| p["spec"]["nodeName"] == "cn-beijing-1")
        })
        .map(str::to_owned)
        .collect();
    assert!(there.contains(&"everywhere".to_owned()), "{there:?}");
    let before = kubectl(&["get", "nodes", "-o", "json"], None).stdout;
    let labels = |nodes: &str| -> Vec<Value> {
        serde_json::from_str::<Value>(nodes).expect("JSON")["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|n| n["metadata"]["labels"].clone())
            .collect()
    };

    // Exactly the data centres with a pod or a volume on the node would break (the others of CN
    // are named too, with one eligible node less, but do not break).
    let (code, answer) = what_if(&ns, &["--relabel", "cn-beijing-1=US"]);
    assert_eq!(code, 1, "{answer}");
    let breaking: Vec<String> = named(&answer)
        .into_iter()
        .filter(|(_, after, breaks)| *breaks && after == "Violated")
        .map(|(name, _, _)| name)
        .collect();
    assert_eq!(breaking, there, "{answer}");
    assert!(
        named(&answer)
            .iter()
            .all(|(name, _, breaks)| *breaks == there.contains(name)),
        "{answer}"
    );
    assert_eq!(answer["breaks"], true);
    // What a person reads: the table says the same.
    let (code, table, _) = run(
        &env("DOMICILE_BIN"),
        &["what-if", "-n", &ns.name, "--relabel", "cn-beijing-1=US"],
        None,
    );
    eprintln!("{table}");
    assert_eq!(code, 1);
    assert!(
        table.contains(&format!(
            "{} data centre(s) affected, {} would break",
            named(&answer).len(),
            there.len()
        )),
        "{table}"
    );

    let (code, answer) = what_if(&ns, &["--relabel", "unlabelled-1=CN"]);
    assert_eq!(code, 0, "{answer}");
    let impacts = &answer["impacts"];
    assert_eq!(impacts[0]["name"], "everywhere", "{answer}");
    assert_eq!(impacts[0]["breaks"], false);
    assert_eq!(
        impacts[0]["eligibleNodesAfter"], 4,
        "one eligible node more: {answer}"
    );

    // Draining the node of a local volume strands its pod: its data cannot follow.
    let (code, answer) = what_if(&ns, &["--drain", "cn-beijing-1"]);
    assert_eq!(code, 1, "{answer}");
    let stranded = answer["impacts"][0]["stranded"].to_string();
    assert!(stranded.contains("where its data is"), "{answer}");

    // A node that does not exist, or a bad code: exit 2 with the reason.
    let (code, _, stderr) = run(
        &env("DOMICILE_BIN"),
        &["what-if", "--relabel", "nowhere-1=CN"],
        None,
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("no node \"nowhere-1\""), "{stderr}");
    let (code, _, stderr) = run(
        &env("DOMICILE_BIN"),
        &["what-if", "--relabel", "cn-beijing-1=ZZ"],
        None,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--relabel \"cn-beijing-1=ZZ\""), "{stderr}");

    // It asked, and changed nothing.
    let after = kubectl(&["get", "nodes", "-o", "json"], None).stdout;
    assert_eq!(labels(&before), labels(&after));
}

#[test]
fn the_binary_is_also_the_kubectl_plugin() {
    let ns = TestNamespace::new("plugin");
    ns.create_and_wait_ready(&local_rdc("vault", "CN", 1));
    let dir = std::env::temp_dir().join(format!("domicile-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let plugin = dir.join("kubectl-domicile");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(env("DOMICILE_BIN"), &plugin).expect("a link");
    let kubectl_bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned());

    let (code, listed, _) = run(&kubectl_bin, &["plugin", "list"], Some(&dir));
    assert_eq!(code, 0);
    assert!(listed.contains("kubectl-domicile"), "{listed}");

    let (code, help, _) = run(&kubectl_bin, &["domicile", "--help"], Some(&dir));
    assert_eq!(code, 0);
    assert!(help.contains("Usage: kubectl domicile"), "{help}");

    // The history is written right after the status that says Ready.
    let screen = poll_seen(
        "kubectl domicile status with the history",
        Duration::from_secs(30),
        || {
            let (code, screen, stderr) = run(
                &kubectl_bin,
                &["domicile", "status", "vault", "-n", &ns.name],
                Some(&dir),
            );
            (code == 0 && screen.contains("History: 2 stays"))
                .then_some(screen.clone())
                .ok_or(format!("exit {code}: {screen}{stderr}"))
        },
    );
    eprintln!("{screen}");
    assert!(
        screen.starts_with(&format!(
            "RegionalDataCenter {}/vault: jurisdiction CN, residency Compliant, phase Ready, ready 1/1",
            ns.name
        )),
        "{screen}"
    );
    assert!(screen.contains("vault-0"), "{screen}");
    assert!(screen.contains("Violations: none"), "{screen}");

    for args in [
        vec!["domicile", "audit", "-n", ns.name.as_str()],
        vec!["domicile", "history", "vault", "-n", ns.name.as_str()],
        vec![
            "domicile",
            "what-if",
            "-n",
            ns.name.as_str(),
            "--relabel",
            "unlabelled-1=CN",
        ],
    ] {
        let (code, out, stderr) = run(&kubectl_bin, &args, Some(&dir));
        assert_eq!(code, 0, "kubectl {}: {out}{stderr}", args.join(" "));
    }
    let (code, _, stderr) = run(
        &kubectl_bin,
        &["domicile", "status", "missing", "-n", &ns.name],
        Some(&dir),
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("no RegionalDataCenter"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
