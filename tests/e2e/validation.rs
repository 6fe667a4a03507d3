//! Bad input is refused by the API server itself, with a message that names the field, and
//! nothing is stored. Each case changes one thing in an otherwise valid resource.

use serde_json::{Value, json};

use crate::support::{TestNamespace, remove, set, valid_rdc};

/// Applies `manifest` and checks that the API server refused it, naming `field` and saying
/// `says`, and that no RegionalDataCenter exists afterwards.
fn assert_refused(ns: &TestNamespace, manifest: &Value, field: &str, says: &str) {
    let out = ns.kubectl(&["apply", "-f", "-"], Some(&manifest.to_string()));
    assert!(!out.success, "the API server accepted {manifest}");
    assert!(
        out.stderr.contains(&format!("{field}:")),
        "the error does not name {field}:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(says),
        "the error does not say {says:?}:\n{}",
        out.stderr
    );
    assert!(
        ns.rdc_names().is_empty(),
        "a refused RegionalDataCenter was stored"
    );
}

/// One end-to-end test per bad input: `refused!(test_name, "/json/pointer" => value, field, says)`;
/// a value of `None` removes the field.
macro_rules! refused {
    ($name:ident, $pointer:literal => None, $field:literal, $says:literal) => {
        #[test]
        fn $name() {
            let ns = TestNamespace::new(stringify!($name));
            let mut manifest = valid_rdc("bad-input");
            remove(&mut manifest, $pointer);
            assert_refused(&ns, &manifest, $field, $says);
        }
    };
    ($name:ident, $pointer:literal => $value:expr, $field:literal, $says:literal) => {
        #[test]
        fn $name() {
            let ns = TestNamespace::new(stringify!($name));
            let mut manifest = valid_rdc("bad-input");
            set(&mut manifest, $pointer, json!($value));
            assert_refused(&ns, &manifest, $field, $says);
        }
    };
}

refused!(lowercase_jurisdiction, "/spec/jurisdiction" => "cn",
    "spec.jurisdiction", "upper-case ISO 3166-1 alpha-2 country code");
refused!(alpha3_jurisdiction, "/spec/jurisdiction" => "CHN",
    "spec.jurisdiction", "upper-case ISO 3166-1 alpha-2 country code");
refused!(malformed_subdivision, "/spec/jurisdiction" => "CN_SH",
    "spec.jurisdiction", "optionally followed by an ISO 3166-2 subdivision");
refused!(unassigned_country_code, "/spec/jurisdiction" => "XX",
    "spec.jurisdiction", "assigned ISO 3166-1 alpha-2 country code");
refused!(unassigned_country_with_subdivision, "/spec/jurisdiction" => "AA-01",
    "spec.jurisdiction", "assigned ISO 3166-1 alpha-2 country code");
refused!(empty_jurisdiction, "/spec/jurisdiction" => "",
    "spec.jurisdiction", "at least 2 chars long");
refused!(missing_jurisdiction, "/spec/jurisdiction" => None,
    "spec.jurisdiction", "Required value");
refused!(negative_replicas, "/spec/workload/replicas" => -1,
    "spec.workload.replicas", "greater than or equal to 0");
refused!(huge_replicas, "/spec/workload/replicas" => 100000,
    "spec.workload.replicas", "less than or equal to 100");
refused!(size_that_is_not_a_quantity, "/spec/storage/size" => "fifty gigabytes",
    "spec.storage.size", "size must be a Kubernetes quantity");
refused!(zero_size, "/spec/storage/size" => "0Gi",
    "spec.storage.size", "size must be greater than zero");
refused!(unknown_storage_mode, "/spec/storage/mode" => "Remote",
    "spec.storage.mode", "supported values: \"Dynamic\", \"Local\"");
refused!(unknown_enforcement, "/spec/enforcement" => "Evict",
    "spec.enforcement", "supported values: \"Audit\", \"Enforce\"");
refused!(local_mode_without_local_path, "/spec/storage/localPath" => None,
    "spec.storage.localPath", "localPath is required when mode is Local");
refused!(relative_local_path, "/spec/storage/localPath" => "mnt/domicile",
    "spec.storage.localPath", "localPath must be an absolute path");
refused!(local_path_escaping_upwards, "/spec/storage/localPath" => "/mnt/../etc",
    "spec.storage.localPath", "must not contain '..'");
refused!(storage_class_in_local_mode, "/spec/storage/storageClassName" => "fast",
    "spec.storage.storageClassName", "storageClassName applies only to mode Dynamic");
refused!(invalid_cidr, "/spec/network/allowedEgressCIDRs" => ["10.20.0.0/16", "10.0.0.0/33"],
    "spec.network.allowedEgressCIDRs", "must hold CIDRs");
refused!(empty_image, "/spec/workload/image" => "",
    "spec.workload.image", "image must name a container image");
refused!(blank_image, "/spec/workload/image" => "   ",
    "spec.workload.image", "image must name a container image");
refused!(missing_workload, "/spec/workload" => None,
    "spec.workload", "Required value");
refused!(missing_storage, "/spec/storage" => None,
    "spec.storage", "Required value");
refused!(port_out_of_range, "/spec/workload/port" => 70000,
    "spec.workload.port", "less than or equal to 65535");
refused!(relative_mount_path, "/spec/workload/mountPath" => "data",
    "spec.workload.mountPath", "mountPath must be an absolute path");

#[test]
fn jurisdiction_cannot_change_after_creation() {
    let ns = TestNamespace::new("jurisdiction_change");
    let mut manifest = valid_rdc("vehicle-data");
    ns.kubectl_ok(&["apply", "-f", "-"], Some(&manifest.to_string()));

    set(&mut manifest, "/spec/jurisdiction", json!("DE"));
    let out = ns.kubectl(&["apply", "-f", "-"], Some(&manifest.to_string()));
    assert!(
        !out.success,
        "the API server accepted a change of jurisdiction"
    );
    assert!(out.stderr.contains("spec.jurisdiction:"), "{}", out.stderr);
    assert!(
        out.stderr.contains("jurisdiction is immutable"),
        "{}",
        out.stderr
    );

    let stored = ns.kubectl_ok(
        &[
            "get",
            "rdc",
            "vehicle-data",
            "-o",
            "jsonpath={.spec.jurisdiction}",
        ],
        None,
    );
    assert_eq!(stored, "CN", "the stored jurisdiction changed");
}
