//! Pure builders: a RegionalDataCenter in, the Kubernetes objects that carry out its promise out.

mod network_policy;
mod service;
mod statefulset;
mod storage;

pub use network_policy::network_policy;
pub use service::service;
pub use statefulset::{DATA_VOLUME, claim_name, pod_name, statefulset};
pub use storage::{LocalVolumePlan, local_storage_class, local_volumes, managed_storage_class};

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use crate::api::RegionalDataCenter;
use crate::api::jurisdiction::Jurisdiction;

/// Label on every object made for a RegionalDataCenter; its value is the resource's name.
pub const RDC_LABEL: &str = "domicile.dev/regional-data-center";
/// Label on cluster-scoped objects made for a RegionalDataCenter: the resource's namespace.
pub const RDC_NAMESPACE_LABEL: &str = "domicile.dev/namespace";
/// Annotation holding a hash of what the operator applied, so unchanged objects are not rewritten.
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

impl NodeLabelKeys {
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
                storage: StorageSpec {
                    size: Quantity("50Gi".to_owned()),
                    mode: StorageMode::Local,
                    storage_class_name: None,
                    local_path: Some("/mnt/domicile".to_owned()),
                    retain_on_delete: true,
                },
                workload: WorkloadSpec {
                    image: "registry.example/ingest:1.4".to_owned(),
                    replicas,
                    port: Some(8080),
                    command: None,
                    args: None,
                    env: None,
                    resources: None,
                    mount_path: "/data".to_owned(),
                },
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
