//! Copies of the data: a VolumeSnapshot of a data claim is the data, kept wherever its class
//! keeps snapshots. Each way out is first tried in an exempt namespace holding the same data
//! centre, where it is admitted (so the test cannot pass because the attack was never possible)
//! and where the operator must then report it; then in a guarded namespace, where the snapshots
//! policy refuses it. No snapshot controller runs: the snapshots are made as a user makes them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    ClusterObject, JURISDICTION_LABEL, TestNamespace, assert_refused, kubectl_ok, local_rdc,
    poll_seen, unique, violations,
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

/// A Velero namespace where the chart's backups policy only warns: exempt from the installed
/// (Deny) one, with a copy of it rendered on Warn for this namespace alone, reading the
/// operator's ConfigMap. Returns the namespace and the copy (deleted with it).
fn warned_velero_namespace() -> (TestNamespace, Vec<ClusterObject>) {
    let velero = TestNamespace::exempt("velero_warn");
    let installed = kubectl_ok(
        &[
            "get",
            "validatingadmissionpolicybinding",
            "-l",
            "domicile.dev/guard=backups",
            "-o",
            "json",
        ],
        None,
    );
    let installed: Value = serde_json::from_str(&installed).expect("kubectl prints JSON");
    let param_ref = installed["items"][0]["spec"]["paramRef"].clone();
    assert!(
        !param_ref.is_null(),
        "the backups policy is installed: {installed}"
    );
    let rendered = crate::chart::helm_template(
        &unique("warn"),
        "domicile-system",
        &[
            "--show-only",
            "templates/admission-policies.yaml",
            "--set",
            "admission.backups.validationActions={Warn}",
            "--set",
            "admission.exemptLabel=e2e.domicile.dev/warn-exempt",
            "--set",
            "admission.pods.enabled=false,admission.claims.enabled=false,\
             admission.snapshots.enabled=false,admission.managed.enabled=false,\
             admission.operator.enabled=false,admission.network.enabled=false,\
             admission.connect.enabled=false,admission.datacenters.enabled=false",
        ],
    );
    let mut objects = Vec::new();
    for mut object in rendered {
        // Not one of the policies the operator reports on, and for this namespace only.
        object["metadata"]["labels"]
            .as_object_mut()
            .expect("labels")
            .remove("domicile.dev/guard");
        let kind = if object["kind"] == "ValidatingAdmissionPolicy" {
            object["spec"]["matchConstraints"]["namespaceSelector"]["matchLabels"] =
                json!({"kubernetes.io/metadata.name": velero.name});
            "validatingadmissionpolicy"
        } else {
            object["spec"]["paramRef"] = param_ref.clone();
            "validatingadmissionpolicybinding"
        };
        objects.push(ClusterObject::create(kind, &object));
    }
    assert_eq!(objects.len(), 2, "a policy and its binding");
    (velero, objects)
}

#[test]
fn a_velero_backup_of_the_namespace_is_a_copy_kept_where_its_location_declares() {
    let ns = TestNamespace::new("backups");
    ns.create_and_wait_ready(&local_rdc(RDC, "CN", 1));

    // Where the backups policy is in force (Deny, as the chart installs it), a backup or a
    // schedule of the namespace to a location that does not declare CN is refused, and one to
    // a location declared CN is admitted.
    let guarded = TestNamespace::new("velero");
    storage_location(&guarded, "bucket-us", Some("US"));
    storage_location(&guarded, "bucket-cn", Some("CN"));
    storage_location(&guarded, "bucket-bare", None);
    let dry_run = |kind: &str, name: &str, namespaces: &[&str], location: &str| {
        guarded.kubectl(
            &["create", "--dry-run=server", "-f", "-"],
            Some(&velero_backup(kind, name, namespaces, location).to_string()),
        )
    };
    let out = poll_seen(
        "the backups policy to know the namespace",
        Duration::from_secs(30),
        || {
            let out = dry_run("Backup", "to-us", &[&ns.name], "bucket-us");
            (!out.success)
                .then_some(out)
                .ok_or_else(|| "admitted".to_owned())
        },
    );
    assert_refused(
        &out,
        "domicile-backups",
        &[
            &format!("Backup to-us copies namespace {}", ns.name),
            "belongs to jurisdiction CN",
            "a backup is a copy of the data",
        ],
    );
    for (kind, name, namespaces, location) in [
        ("Schedule", "everything", vec!["*"], "bucket-us"),
        (
            "Backup",
            "undeclared",
            vec![ns.name.as_str()],
            "bucket-bare",
        ),
    ] {
        let out = dry_run(kind, name, &namespaces, location);
        assert_refused(
            &out,
            "domicile-backups",
            &[&format!("{kind} {name} copies")],
        );
    }
    poll_seen(
        "a backup to the CN location to be admitted",
        Duration::from_secs(30),
        || {
            let out = dry_run("Backup", "to-cn", &[&ns.name], "bucket-cn");
            out.success.then_some(()).ok_or(out.stderr)
        },
    );

    // With the policy on Warn the backup is made; the data centre says where its copy went
    // within seconds, and so does the report.
    let (velero, _warn_policy) = warned_velero_namespace();
    storage_location(&velero, "bucket-us", Some("US"));
    storage_location(&velero, "bucket-cn", Some("CN"));
    storage_location(&velero, "bucket-bare", None);
    let out = poll_seen("the Warn policy to answer", Duration::from_secs(30), || {
        let out = velero.kubectl(
            &["create", "--dry-run=server", "-f", "-"],
            Some(&velero_backup("Backup", "to-us", &[&ns.name], "bucket-us").to_string()),
        );
        assert!(out.success, "{}", out.stderr);
        out.stderr
            .contains("Warning:")
            .then_some(out)
            .ok_or_else(|| "no warning yet".to_owned())
    });
    assert!(
        out.stderr.contains("a backup is a copy of the data"),
        "{}",
        out.stderr
    );
    velero.kubectl_ok(
        &["create", "-f", "-"],
        Some(&velero_backup("Backup", "to-us", &[&ns.name], "bucket-us").to_string()),
    );
    let made = std::time::Instant::now();
    let name = format!("{}/to-us", velero.name);
    let status = poll_seen(
        "Violated by the backup within 5 s",
        Duration::from_secs(5),
        || {
            let status = ns.get_json("rdc", RDC).unwrap_or_default()["status"].clone();
            (status["residency"] == "Violated")
                .then_some(status.clone())
                .ok_or_else(|| status.to_string())
        },
    );
    eprintln!("Violated {:?} after the backup was made", made.elapsed());
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
