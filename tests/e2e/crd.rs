//! The CRD as the API server serves it: accepted, documented, printed, defaulted, pruned.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::{
    TestNamespace, install_crd, kubectl, kubectl_ok, poll, remove, set, valid_rdc,
};

#[test]
fn crd_is_accepted_as_a_structural_schema() {
    install_crd();
    let crd: Value = serde_json::from_str(&kubectl_ok(
        &[
            "get",
            "crd",
            "regionaldatacenters.domicile.dev",
            "-o",
            "json",
        ],
        None,
    ))
    .expect("kubectl prints JSON");
    let conditions = crd["status"]["conditions"]
        .as_array()
        .expect("the CRD has conditions");
    let status_of = |kind: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == kind)
            .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        status_of("Established").as_deref(),
        Some("True"),
        "{conditions:#?}"
    );
    assert_eq!(
        status_of("NamesAccepted").as_deref(),
        Some("True"),
        "{conditions:#?}"
    );
    assert_eq!(status_of("NonStructuralSchema"), None, "{conditions:#?}");
}

#[test]
fn kubectl_explain_prints_the_field_documentation() {
    install_crd();
    let explained = poll(
        "kubectl explain to know the resource",
        Duration::from_secs(30),
        || {
            let out = kubectl(&["explain", "rdc.spec.jurisdiction"], None);
            out.success.then_some(out.stdout)
        },
    );
    assert!(
        explained.contains("FIELD: jurisdiction <string>"),
        "{explained}"
    );
    assert!(
        explained.contains("ISO 3166-1 alpha-2 country code"),
        "{explained}"
    );
    assert!(explained.contains("Immutable"), "{explained}");
}

#[test]
fn valid_rdc_is_created_defaulted_and_read_back() {
    let ns = TestNamespace::new("valid_rdc");
    let manifest = valid_rdc("vehicle-data");
    ns.kubectl_ok(&["apply", "-f", "-"], Some(&manifest.to_string()));

    let stored: Value = serde_json::from_str(&ns.kubectl_ok(
        &[
            "get",
            "regionaldatacenters.domicile.dev",
            "vehicle-data",
            "-o",
            "json",
        ],
        None,
    ))
    .expect("kubectl prints JSON");
    let spec = &stored["spec"];
    assert_eq!(spec["jurisdiction"], "CN");
    assert_eq!(spec["storage"]["size"], "50Gi");
    assert!(spec["storage"].get("localPath").is_none());
    assert_eq!(spec["workload"]["replicas"], 3);
    assert_eq!(
        spec["network"]["allowedEgressCIDRs"],
        json!(["10.20.0.0/16"])
    );
    // Defaults come from the schema, so every reader sees the same values the operator uses.
    assert_eq!(spec["enforcement"], "Audit");
    assert_eq!(spec["storage"]["retainOnDelete"], true);
    assert_eq!(spec["workload"]["mountPath"], "/data");
}

#[test]
fn kubectl_get_shows_the_printer_columns() {
    let ns = TestNamespace::new("printer_columns");
    ns.kubectl_ok(
        &["apply", "-f", "-"],
        Some(&valid_rdc("vehicle-data").to_string()),
    );
    let table = ns.kubectl_ok(&["get", "rdc"], None);
    let mut lines = table.lines();
    let header: Vec<_> = lines.next().expect("a header").split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "JURISDICTION", "READY", "RESIDENCY", "PHASE", "AGE"],
        "{table}"
    );
    let row: Vec<_> = lines.next().expect("a row").split_whitespace().collect();
    assert_eq!(row[..2], ["vehicle-data", "CN"], "{table}");
}

#[test]
fn minimal_dynamic_rdc_with_subdivision_numeric_size_and_ipv6_cidr_is_accepted() {
    let ns = TestNamespace::new("minimal_rdc");
    let manifest = json!({
        "apiVersion": "domicile.dev/v1alpha1",
        "kind": "RegionalDataCenter",
        "metadata": {"name": "shanghai"},
        "spec": {
            "jurisdiction": "CN-SH",
            "storage": {"size": 1073741824},
            "workload": {"image": "registry.example/ingest:1.4"},
            "network": {"allowedEgressCIDRs": ["2001:db8::/32"]}
        }
    });
    ns.kubectl_ok(&["apply", "-f", "-"], Some(&manifest.to_string()));
    let spec: Value = serde_json::from_str(
        &ns.kubectl_ok(&["get", "rdc", "shanghai", "-o", "jsonpath={.spec}"], None),
    )
    .expect("kubectl prints JSON");
    assert_eq!(spec["storage"]["mode"], "Dynamic");
    assert_eq!(spec["workload"]["replicas"], 1);
    assert_eq!(spec["network"]["fence"], true, "the fence is on by default");
    assert_eq!(spec["workload"]["runAsUser"], 65532);
}

#[test]
fn status_sent_with_the_object_is_dropped() {
    let ns = TestNamespace::new("status_subresource");
    let mut manifest = valid_rdc("vehicle-data");
    set(
        &mut manifest,
        "/status",
        json!({"phase": "Ready", "residency": "Compliant"}),
    );
    // The response shows what was stored, before the operator writes a status of its own.
    let created: Value = serde_json::from_str(&ns.kubectl_ok(
        &["create", "-o", "json", "-f", "-"],
        Some(&manifest.to_string()),
    ))
    .expect("kubectl prints JSON");
    assert!(
        created.get("status").is_none(),
        "a status sent with the object was stored: {created}"
    );
}

#[test]
fn unknown_fields_are_refused_by_strict_validation_and_pruned_otherwise() {
    let ns = TestNamespace::new("unknown_fields");
    let mut manifest = valid_rdc("vehicle-data");
    set(&mut manifest, "/spec/storage/sizeGb", json!(50));

    let refused = ns.kubectl(&["create", "-f", "-"], Some(&manifest.to_string()));
    assert!(
        !refused.success,
        "strict field validation refuses an unknown field"
    );
    assert!(
        refused.stderr.contains("spec.storage.sizeGb"),
        "{}",
        refused.stderr
    );
    assert!(ns.rdc_names().is_empty());

    ns.kubectl_ok(
        &["create", "--validate=false", "-f", "-"],
        Some(&manifest.to_string()),
    );
    let storage: Value = serde_json::from_str(&ns.kubectl_ok(
        &[
            "get",
            "rdc",
            "vehicle-data",
            "-o",
            "jsonpath={.spec.storage}",
        ],
        None,
    ))
    .expect("kubectl prints JSON");
    assert!(
        storage.get("sizeGb").is_none(),
        "unknown field was stored: {storage}"
    );
    assert_eq!(storage["size"], "50Gi");
}

#[test]
fn examples_are_accepted_by_the_api_server() {
    let ns = TestNamespace::new("examples");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut applied = Vec::new();
    for entry in std::fs::read_dir(dir).expect("examples/ exists") {
        let path = entry.expect("a directory entry").path();
        let text = std::fs::read_to_string(&path).expect("an example is readable");
        for document in serde_yaml::Deserializer::from_str(&text) {
            let mut object = Value::deserialize(document).expect("an example is YAML");
            if object["kind"] != "RegionalDataCenter" {
                continue;
            }
            // Each example brings its own namespace; here it goes into the test's namespace.
            remove(&mut object, "/metadata/namespace");
            ns.kubectl_ok(&["create", "-f", "-"], Some(&object.to_string()));
            applied.push(
                object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    applied.sort();
    assert_eq!(applied, ["patient-records", "telemetry", "vehicle-data"]);
}
