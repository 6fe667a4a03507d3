//! Copies of the data: a VolumeSnapshot of a data claim is the data, kept wherever its class
//! keeps snapshots. Each way out is first tried in an exempt namespace holding the same data
//! centre, where it is admitted (so the test cannot pass because the attack was never possible)
//! and where the operator must then report it; then in a guarded namespace, where the snapshots
//! policy refuses it. No snapshot controller runs: the snapshots are made as a user makes them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    ClusterObject, JURISDICTION_LABEL, TestNamespace, assert_refused, local_rdc, poll_seen, unique,
    violations,
};

const RDC: &str = "vault";
const CLAIM: &str = "data-vault-0";

fn snapshot_class(name: &str, jurisdiction: Option<&str>) -> ClusterObject {
    let labels = jurisdiction.map_or_else(|| json!({}), |code| json!({JURISDICTION_LABEL: code}));
    ClusterObject::create(
        "volumesnapshotclass",
        &json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
            "metadata": {"name": name, "labels": labels},
            "driver": "csi.example.com", "deletionPolicy": "Retain"}),
    )
}

fn snapshot(name: &str, class: Option<&str>) -> Value {
    let mut spec = json!({"source": {"persistentVolumeClaimName": CLAIM}});
    if let Some(class) = class {
        spec["volumeSnapshotClassName"] = json!(class);
    }
    json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "metadata": {"name": name}, "spec": spec})
}

/// The data centre's status once `accept` holds for it.
fn wait_status(ns: &TestNamespace, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
    poll_seen(what, Duration::from_secs(60), || {
        let status = ns.get_json("rdc", RDC).unwrap_or_default()["status"].clone();
        if accept(&status) {
            Ok(status)
        } else {
            Err(status.to_string())
        }
    })
}

fn one_violation(reason: &str, name: &str) -> Vec<(String, String, String)> {
    vec![(
        reason.to_owned(),
        "VolumeSnapshot".to_owned(),
        name.to_owned(),
    )]
}

#[test]
fn a_snapshot_is_a_copy_of_the_data_kept_where_its_class_declares() {
    let cn = snapshot_class(&unique("e2e-snap-cn"), Some("CN"));
    let us = snapshot_class(&unique("e2e-snap-us"), Some("US"));
    let bare = snapshot_class(&unique("e2e-snap-bare"), None);
    let open = TestNamespace::exempt("copies_open");
    let guarded = TestNamespace::new("copies");
    for ns in [&open, &guarded] {
        ns.create_and_wait_ready(&local_rdc(RDC, "CN", 1));
    }
    guarded.wait_condition(RDC, "AdmissionGuarded", "Enforced");

    // Unguarded, a snapshot to a class that keeps its copies in the US is admitted ...
    open.kubectl_ok(
        &["create", "-f", "-"],
        Some(&snapshot("to-us", Some(&us.name)).to_string()),
    );
    // ... and reported: Violated, naming the snapshot and its class.
    let status = wait_status(&open, "a copy outside CN", |s| s["residency"] == "Violated");
    assert_eq!(
        violations(&status),
        one_violation("CopyOutsideJurisdiction", "to-us")
    );
    let message = status["violations"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains(&us.name) && message.contains(CLAIM) && message.contains("US"),
        "{message}"
    );
    let report_says = |ns: &TestNamespace, name: &str, expected: &str| {
        poll_seen(
            &format!("{expected} for snapshot {name} in the policy report"),
            Duration::from_secs(30),
            || {
                let (results, summary) =
                    crate::reports::report(ns, "policyreport").unwrap_or_default();
                results
                    .iter()
                    .any(|(rule, object, result)| {
                        rule == "copy-jurisdiction" && object == name && result == expected
                    })
                    .then_some(())
                    .ok_or(format!("{results:?} {summary}"))
            },
        );
    };
    report_says(&open, "to-us", "fail");

    // Deleted, it is cleared, and the history keeps it as a closed violation.
    open.kubectl_ok(&["delete", "volumesnapshot", "to-us"], None);
    wait_status(&open, "Compliant again", |s| s["residency"] == "Compliant");
    poll_seen(
        "the copy in the history, closed",
        Duration::from_secs(30),
        || {
            let history = open.get_json("residencyhistory", RDC).unwrap_or_default();
            history["status"]["violations"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| {
                    v["kind"] == "VolumeSnapshot"
                        && v["name"] == "to-us"
                        && v["reason"] == "CopyOutsideJurisdiction"
                        && !v["to"].is_null()
                })
                .then_some(())
                .ok_or_else(|| history["status"].to_string())
        },
    );

    // A class that declares nothing: where the copy is cannot be verified.
    open.kubectl_ok(
        &["create", "-f", "-"],
        Some(&snapshot("undeclared", Some(&bare.name)).to_string()),
    );
    let status = wait_status(&open, "an unverifiable copy", |s| {
        s["residency"] == "Unverifiable"
    });
    assert_eq!(
        violations(&status),
        one_violation("Unverifiable", "undeclared")
    );
    report_says(&open, "undeclared", "warn");
    // A copy on a class declared CN is no violation: with it there, the data centre is
    // Compliant again once the undeclared one is gone.
    open.kubectl_ok(
        &["create", "-f", "-"],
        Some(&snapshot("in-cn", Some(&cn.name)).to_string()),
    );
    open.kubectl_ok(&["delete", "volumesnapshot", "undeclared"], None);
    let status = wait_status(&open, "Compliant with a copy in CN", |s| {
        s["residency"] == "Compliant"
            && s["copies"]
                .as_array()
                .is_some_and(|c| c.len() == 1 && c[0]["name"] == "in-cn")
    });
    assert_eq!(violations(&status), vec![]);
    let copy = &status["copies"][0];
    assert_eq!(
        (
            &copy["source"],
            &copy["class"],
            &copy["jurisdiction"],
            &copy["inside"]
        ),
        (&json!(CLAIM), &json!(cn.name), &json!("CN"), &json!(true)),
        "{copy}"
    );
    report_says(&open, "in-cn", "pass");
    // The history keeps where each copy was, and for how long: the one abroad, closed.
    let history = open.get_json("residencyhistory", RDC).unwrap_or_default();
    let abroad = history["status"]["stays"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["kind"] == "VolumeSnapshot" && s["name"] == "to-us")
        .unwrap_or_else(|| panic!("no stay of the copy to-us: {history}"));
    assert_eq!(
        (&abroad["class"], &abroad["jurisdiction"], &abroad["inside"]),
        (&json!(us.name), &json!("US"), &json!(false)),
        "{abroad}"
    );
    assert!(!abroad["to"].is_null(), "{abroad}");

    // Guarded: refused with a message that names the rule, for a class declared elsewhere, one
    // that declares nothing, and none at all.
    for (name, class) in [
        ("to-us", Some(us.name.as_str())),
        ("undeclared", Some(bare.name.as_str())),
        ("default", None),
    ] {
        let out = guarded.kubectl(
            &["create", "-f", "-"],
            Some(&snapshot(name, class).to_string()),
        );
        assert_refused(
            &out,
            "domicile-snapshots",
            &[
                name,
                "a snapshot is a copy of the data",
                "belongs to jurisdiction CN",
            ],
        );
    }
    // A class declared CN is admitted (once the operator has listed it for the policy).
    poll_seen(
        "a snapshot on the CN class to be admitted",
        Duration::from_secs(30),
        || {
            let out = guarded.kubectl(
                &["create", "-f", "-"],
                Some(&snapshot("nightly", Some(&cn.name)).to_string()),
            );
            out.success.then_some(()).ok_or(out.stderr)
        },
    );
    // Where a copy is kept was decided when it was taken: renaming its class would only change
    // what the snapshot says. Unguarded the API server lets the class change; guarded, not even
    // to another class declared CN.
    let cn_too = snapshot_class(&unique("e2e-snap-cn"), Some("CN"));
    let rename = json!({"spec": {"volumeSnapshotClassName": cn_too.name}}).to_string();
    open.kubectl_ok(
        &[
            "patch",
            "volumesnapshot",
            "in-cn",
            "--type=merge",
            "-p",
            &rename,
        ],
        None,
    );
    let out = guarded.kubectl(
        &[
            "patch",
            "volumesnapshot",
            "nightly",
            "--type=merge",
            "-p",
            &rename,
        ],
        None,
    );
    assert_refused(
        &out,
        "domicile-snapshots",
        &["nightly", "its class cannot change"],
    );

    // Restoring a copy makes a claim like any other: judged by its own class. Unguarded, a
    // restore onto a class that declares nothing is admitted; guarded, the claims policy refuses it.
    let restore = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "restored"},
        "spec": {"storageClassName": unique("e2e-undeclared"), "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                "name": "nightly"}}});
    open.kubectl_ok(&["create", "-f", "-"], Some(&restore.to_string()));
    let out = guarded.kubectl(&["create", "-f", "-"], Some(&restore.to_string()));
    assert_refused(&out, "domicile-claims", &["restored"]);
}

fn storage_location(velero: &TestNamespace, name: &str, jurisdiction: Option<&str>) {
    let labels = jurisdiction.map_or_else(|| json!({}), |code| json!({JURISDICTION_LABEL: code}));
    velero.kubectl_ok(
        &["create", "-f", "-"],
        Some(
            &json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
                "metadata": {"name": name, "labels": labels},
                "spec": {"provider": "aws", "objectStorage": {"bucket": name}}})
            .to_string(),
        ),
    );
}

/// A Backup as `velero backup create NAME --include-namespaces ... --storage-location ...`
/// makes it.
fn velero_backup(kind: &str, name: &str, namespaces: &[&str], location: &str) -> Value {
    let template = json!({"includedNamespaces": namespaces, "storageLocation": location,
        "snapshotVolumes": false});
    let spec = if kind == "Schedule" {
        json!({"schedule": "@every 1h", "template": template})
    } else {
        template
    };
    json!({"apiVersion": "velero.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec})
}

#[test]
fn a_velero_backup_of_the_namespace_is_a_copy_kept_where_its_location_declares() {
    let velero = TestNamespace::new("velero");
    let ns = TestNamespace::new("backups");
    ns.create_and_wait_ready(&local_rdc(RDC, "CN", 1));
    storage_location(&velero, "bucket-us", Some("US"));
    storage_location(&velero, "bucket-cn", Some("CN"));
    storage_location(&velero, "bucket-bare", None);

    // Nothing in the namespace stops a backup made elsewhere: Velero's namespace is not the
    // tenant's. The data centre says where its copy went, and so does the report.
    velero.kubectl_ok(
        &["create", "-f", "-"],
        Some(&velero_backup("Backup", "to-us", &[&ns.name], "bucket-us").to_string()),
    );
    let name = format!("{}/to-us", velero.name);
    let status = wait_status(&ns, "Violated by the backup", |s| {
        s["residency"] == "Violated"
    });
    assert_eq!(
        violations(&status),
        vec![(
            "CopyOutsideJurisdiction".to_owned(),
            "Backup".to_owned(),
            name.clone()
        )]
    );
    let message = status["violations"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("BackupStorageLocation bucket-us declares jurisdiction US, outside CN"),
        "{message}"
    );
    poll_seen(
        "the backup in the policy report",
        Duration::from_secs(30),
        || {
            let (results, summary) =
                crate::reports::report(&ns, "policyreport").unwrap_or_default();
            results
                .iter()
                .any(|(rule, object, result)| {
                    rule == "copy-jurisdiction" && object == "to-us" && result == "fail"
                })
                .then_some(())
                .ok_or(format!("{results:?} {summary}"))
        },
    );
    velero.kubectl_ok(&["delete", "backup", "to-us"], None);
    wait_status(&ns, "Compliant once the backup is deleted", |s| {
        s["residency"] == "Compliant"
    });

    // A schedule counts as the backups it will make; a pattern of namespaces includes this one
    // (["*"] would too, and would touch every other test's data centres: see the unit tests).
    let pattern = format!("{}*", &ns.name[..ns.name.len() - 2]);
    velero.kubectl_ok(
        &["create", "-f", "-"],
        Some(&velero_backup("Schedule", "hourly", &[&pattern], "bucket-bare").to_string()),
    );
    let status = wait_status(&ns, "Unverifiable by the schedule", |s| {
        s["residency"] == "Unverifiable"
    });
    assert_eq!(
        violations(&status),
        vec![(
            "Unverifiable".to_owned(),
            "Schedule".to_owned(),
            format!("{}/hourly", velero.name)
        )]
    );
    velero.kubectl_ok(&["delete", "schedule", "hourly"], None);

    // To a location declared CN: Compliant, and listed among the copies.
    velero.kubectl_ok(
        &["create", "-f", "-"],
        Some(&velero_backup("Backup", "to-cn", &[&ns.name], "bucket-cn").to_string()),
    );
    let status = wait_status(&ns, "Compliant with the backup listed", |s| {
        s["residency"] == "Compliant"
            && s["copies"]
                .as_array()
                .is_some_and(|c| c.len() == 1 && c[0]["kind"] == "Backup")
    });
    let copy = &status["copies"][0];
    assert_eq!(
        (
            &copy["name"],
            &copy["class"],
            &copy["jurisdiction"],
            &copy["inside"]
        ),
        (
            &json!(format!("{}/to-cn", velero.name)),
            &json!("bucket-cn"),
            &json!("CN"),
            &json!(true)
        ),
        "{copy}"
    );
}
