//! Pure builders: a RegionalDataCenter in, the Kubernetes objects that carry out its promise out.

mod network_policy;
mod service;
mod statefulset;
mod storage;

pub use network_policy::{DnsPeer, network_policy};
pub use service::service;
pub use statefulset::{DATA_ACCESS_MODE, DATA_VOLUME, claim_name, pod_name, statefulset};
pub use storage::{
    HOSTNAME_LABEL, LocalVolumePlan, UID_LABEL, adoptable, local_storage_class, local_volumes,
    managed_storage_class, of_this_incarnation, pinned_host, pinned_hostname, volumes_per_node,
};

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use crate::api::RegionalDataCenter;
use crate::api::jurisdiction::Jurisdiction;

/// Label on every object made for a RegionalDataCenter; its value is the resource's name.
pub const RDC_LABEL: &str = "domicile.dev/regional-data-center";
/// Label on cluster-scoped objects made for a RegionalDataCenter: the resource's namespace.
pub const RDC_NAMESPACE_LABEL: &str = "domicile.dev/namespace";
/// Annotation holding a hash of what the operator last applied. It never decides whether to
/// write (the live fields do); it only tells a restore (same declaration, changed object) from an
/// update (a new declaration).
pub const APPLIED_HASH_ANNOTATION: &str = "domicile.dev/applied-hash";
/// The one field manager under which every object is applied.
pub const FIELD_MANAGER: &str = "domicile";

/// The node label keys that carry jurisdictions (an operator flag, so not constants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLabelKeys {
    /// e.g. `domicile.node-restriction.kubernetes.io/jurisdiction`, valued `CN`.
    pub jurisdiction: String,
    /// e.g. `domicile.node-restriction.kubernetes.io/subdivision`, valued `CN-SH`.
    pub subdivision: String,
}

impl Default for NodeLabelKeys {
    fn default() -> Self {
        Self {
            jurisdiction: "domicile.node-restriction.kubernetes.io/jurisdiction".to_owned(),
            subdivision: "domicile.node-restriction.kubernetes.io/subdivision".to_owned(),
        }
    }
}

/// The domain the NodeRestriction admission plugin keeps kubelets from labelling their own Node with.
pub const NODE_RESTRICTION_DOMAIN: &str = "node-restriction.kubernetes.io";

/// Whether a kubelet is kept from setting `key` on its own Node: true only for keys in
/// `node-restriction.kubernetes.io/` or a subdomain of it.
pub fn kubelet_cannot_set(key: &str) -> bool {
    key.split_once('/').is_some_and(|(domain, _)| {
        domain == NODE_RESTRICTION_DOMAIN
            || domain
                .strip_suffix(NODE_RESTRICTION_DOMAIN)
                .is_some_and(|sub| sub.ends_with('.'))
    })
}

impl NodeLabelKeys {
    /// The keys a compromised kubelet could set on its own Node to claim a jurisdiction.
    pub fn kubelet_settable(&self) -> Vec<&str> {
        [self.jurisdiction.as_str(), self.subdivision.as_str()]
            .into_iter()
            .filter(|key| !kubelet_cannot_set(key))
            .collect()
    }

    /// The node selector requirements that admit exactly the nodes of `jurisdiction`.
    pub fn requirements(&self, jurisdiction: &Jurisdiction) -> Vec<NodeSelectorRequirement> {
        let mut requirements = vec![NodeSelectorRequirement {
            key: self.jurisdiction.clone(),
            operator: "In".to_owned(),
            values: Some(vec![jurisdiction.country().to_owned()]),
        }];
        if let Some(subdivision) = jurisdiction.subdivision() {
            requirements.push(NodeSelectorRequirement {
                key: self.subdivision.clone(),
                operator: "In".to_owned(),
                values: Some(vec![subdivision.to_owned()]),
            });
        }
        requirements
    }

    pub fn node_selector_term(&self, jurisdiction: &Jurisdiction) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(self.requirements(jurisdiction)),
            ..Default::default()
        }
    }
}

/// Labels that tie an object to its RegionalDataCenter; also the StatefulSet's selector.
pub fn selector_labels(rdc: &RegionalDataCenter) -> BTreeMap<String, String> {
    BTreeMap::from([(RDC_LABEL.to_owned(), name(rdc).to_owned())])
}

/// Labels of every namespaced object made for `rdc`.
pub fn labels(rdc: &RegionalDataCenter) -> BTreeMap<String, String> {
    let mut labels = selector_labels(rdc);
    labels.insert(
        "app.kubernetes.io/managed-by".to_owned(),
        "domicile".to_owned(),
    );
    labels.insert(
        "app.kubernetes.io/name".to_owned(),
        "regional-data-center".to_owned(),
    );
    labels.insert(
        "app.kubernetes.io/instance".to_owned(),
        name(rdc).to_owned(),
    );
    labels
}

/// Metadata of a namespaced child: named after `rdc`, in its namespace, labelled and owned by it.
pub fn child_metadata(rdc: &RegionalDataCenter) -> ObjectMeta {
    ObjectMeta {
        name: Some(name(rdc).to_owned()),
        namespace: Some(namespace(rdc).to_owned()),
        labels: Some(labels(rdc)),
        owner_references: owner_reference(rdc).map(|owner| vec![owner]),
        ..Default::default()
    }
}

/// The owner reference that makes `rdc` the controller of a namespaced child.
pub fn owner_reference(rdc: &RegionalDataCenter) -> Option<OwnerReference> {
    rdc.controller_owner_ref(&())
}

pub(crate) fn name(rdc: &RegionalDataCenter) -> &str {
    rdc.metadata.name.as_deref().unwrap_or_default()
}

pub(crate) fn namespace(rdc: &RegionalDataCenter) -> &str {
    rdc.metadata.namespace.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_node_restriction_keys_are_out_of_a_kubelets_reach() {
        assert!(kubelet_cannot_set(
            "node-restriction.kubernetes.io/jurisdiction"
        ));
        assert!(kubelet_cannot_set(
            "domicile.node-restriction.kubernetes.io/jurisdiction"
        ));
        assert!(!kubelet_cannot_set("example.com/jurisdiction"));
        assert!(!kubelet_cannot_set("topology.kubernetes.io/region"));
        assert!(!kubelet_cannot_set(
            "evilnode-restriction.kubernetes.io/jurisdiction"
        ));
        assert!(!kubelet_cannot_set(
            "node-restriction.kubernetes.io.example.com/jurisdiction"
        ));
        assert!(!kubelet_cannot_set("jurisdiction"));
    }

    #[test]
    fn default_keys_are_trusted_and_custom_ones_named() {
        assert!(NodeLabelKeys::default().kubelet_settable().is_empty());
        let keys = NodeLabelKeys {
            jurisdiction: "example.com/country".to_owned(),
            subdivision: "domicile.node-restriction.kubernetes.io/subdivision".to_owned(),
        };
        assert_eq!(keys.kubelet_settable(), ["example.com/country"]);
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::api::{
        Enforcement, RegionalDataCenter, RegionalDataCenterSpec, StorageMode, StorageSpec,
        WorkloadSpec,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    /// A Local-mode RDC for `jurisdiction` with `replicas` replicas, as the API server stores it.
    pub fn rdc(jurisdiction: &str, replicas: i32) -> RegionalDataCenter {
        let mut rdc = RegionalDataCenter::new(
            "vehicle-data",
            RegionalDataCenterSpec {
                jurisdiction: jurisdiction.to_owned(),
                storage: Some(StorageSpec {
                    size: Quantity("50Gi".to_owned()),
                    mode: StorageMode::Local,
                    storage_class_name: None,
                    local_path: None,
                    retain_on_delete: true,
                }),
                workload: Some(WorkloadSpec {
                    image: "registry.example/ingest:1.4".to_owned(),
                    replicas,
                    port: Some(8080),
                    command: None,
                    args: None,
                    env: None,
                    resources: None,
                    mount_path: "/data".to_owned(),
                    run_as_user: 65532,
                    run_as_group: 65532,
                }),
                members: None,
                enforcement: Enforcement::Audit,
                network: None,
            },
        );
        rdc.metadata.namespace = Some("fleet-cn".to_owned());
        rdc.metadata.uid = Some("0f1e2d3c-0000-4000-8000-000000000001".to_owned());
        rdc.metadata.generation = Some(1);
        rdc
    }
}
