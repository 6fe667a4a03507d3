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
// No spec field lets a tenant choose a host path: the old localPath is refused, whatever it says.
refused!(local_path_of_the_node_root, "/spec/storage/localPath" => "/",
    "spec.storage.localPath", "localPath was removed: tenants do not choose host paths");
refused!(local_path_of_the_kubelet, "/spec/storage/localPath" => "/var/lib/kubelet",
    "spec.storage.localPath", "local volumes live under the operator's --local-root");
refused!(restrict_egress_replaced_by_the_fence, "/spec/network/restrictEgress" => false,
    "spec.network.restrictEgress", "restrictEgress was replaced by fence");
refused!(egress_to_everywhere, "/spec/network/allowedEgressCIDRs" => ["0.0.0.0/0"],
    "spec.network.allowedEgressCIDRs", "0.0.0.0/0, ::/0 and other catch-all ranges are refused");
refused!(egress_to_everywhere_over_ipv6, "/spec/network/allowedEgressCIDRs" => ["10.20.0.0/16", "::/0"],
    "spec.network.allowedEgressCIDRs", "must not open the fence to everything");
refused!(egress_to_half_the_internet, "/spec/network/allowedEgressCIDRs" => ["0.0.0.0/1", "128.0.0.0/1"],
    "spec.network.allowedEgressCIDRs", "IPv4 prefixes must be /8 or longer");
refused!(egress_cidr_that_is_not_a_network_address, "/spec/network/allowedEgressCIDRs" => ["10.20.0.1/16"],
    "spec.network.allowedEgressCIDRs", "must hold network addresses");
refused!(ingress_from_everywhere, "/spec/network/allowedIngress" => json!([{"cidr": "0.0.0.0/0"}]),
    "spec.network.allowedIngress[0].cidr", "must not open the fence to everything");
refused!(ingress_peer_with_cidr_and_selector, "/spec/network/allowedIngress" => json!([{"cidr": "10.1.0.0/16", "podSelector": {}}]),
    "spec.network.allowedIngress[0]", "names either a cidr, or a namespaceSelector");
refused!(root_user, "/spec/workload/runAsUser" => 0,
    "spec.workload.runAsUser", "greater than or equal to 1");
refused!(root_group, "/spec/workload/runAsGroup" => 0,
    "spec.workload.runAsGroup", "greater than or equal to 1");
refused!(storage_class_in_local_mode, "/spec/storage/storageClassName" => "fast",
    "spec.storage.storageClassName", "storageClassName applies only to mode Dynamic");
refused!(invalid_cidr, "/spec/network/allowedEgressCIDRs" => ["10.20.0.0/16", "10.0.0.0/33"],
    "spec.network.allowedEgressCIDRs", "must hold CIDRs");
refused!(empty_image, "/spec/workload/image" => "",
    "spec.workload.image", "image must name a container image");
refused!(blank_image, "/spec/workload/image" => "   ",
    "spec.workload.image", "image must name a container image");
refused!(missing_workload, "/spec/workload" => None,
    "spec", "spec.storage and spec.workload go together");
refused!(missing_storage, "/spec/storage" => None,
    "spec", "spec.storage and spec.workload go together");
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

refused!(members_that_select_nothing, "/spec/members" => serde_json::Map::new(),
    "spec.members", "members must select something");
refused!(members_with_an_unknown_operator, "/spec/members" =>
    json!({"matchExpressions": [{"key": "cnpg.io/cluster", "operator": "Equals", "values": ["orders"]}]}),
    "spec.members", "operator must be In, NotIn, Exists or DoesNotExist");
refused!(members_in_without_values, "/spec/members" =>
    json!({"matchExpressions": [{"key": "cnpg.io/cluster", "operator": "In"}]}),
    "spec.members", "In and NotIn need at least one value");

#[test]
fn neither_a_workload_nor_members() {
    let ns = TestNamespace::new("neither_workload_nor_members");
    let mut manifest = valid_rdc("bad-input");
    remove(&mut manifest, "/spec/workload");
    remove(&mut manifest, "/spec/storage");
    assert_refused(&ns, &manifest, "spec", "needs spec.workload");
}

#[test]
fn a_workload_cannot_be_added_or_removed_later() {
    let ns = TestNamespace::new("workload_added_or_removed");
    let mut covering = valid_rdc("covering");
    remove(&mut covering, "/spec/workload");
    remove(&mut covering, "/spec/storage");
    set(
        &mut covering,
        "/spec/members",
        json!({"matchLabels": {"cnpg.io/cluster": "orders"}}),
    );
    ns.kubectl_ok(&["apply", "-f", "-"], Some(&covering.to_string()));
    let out = ns.kubectl(
        &["apply", "-f", "-"],
        Some(&valid_rdc("covering").to_string()),
    );
    assert!(!out.success, "a workload was added");
    assert!(
        out.stderr
            .contains("spec.workload cannot be added or removed"),
        "{}",
        out.stderr
    );
}
