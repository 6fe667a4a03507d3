//! The `RegionalDataCenter` resource: what the user asks for, and the rules the API server enforces.

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::jurisdiction;
use super::status::RegionalDataCenterStatus;

/// Desired state of a RegionalDataCenter: the jurisdiction, the storage and the workload.
// The printer columns repeat `type_ = "string"`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "domicile.dev",
    version = "v1alpha1",
    kind = "RegionalDataCenter",
    plural = "regionaldatacenters",
    singular = "regionaldatacenter",
    shortname = "rdc",
    category = "domicile",
    namespaced,
    status = "RegionalDataCenterStatus",
    derive = "PartialEq",
    doc = "RegionalDataCenter keeps a data store, its storage and its workload inside one jurisdiction, and reports where its pods and data really are.",
    printcolumn(
        name = "Jurisdiction",
        type_ = "string",
        json_path = ".spec.jurisdiction",
        description = "ISO 3166 code of the jurisdiction the data must stay in"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.ready",
        description = "Ready replicas out of desired replicas"
    ),
    printcolumn(
        name = "Residency",
        type_ = "string",
        json_path = ".status.residency",
        description = "Whether every pod and volume is inside the jurisdiction"
    ),
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Lifecycle phase"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RegionalDataCenterSpec {
    /// Jurisdiction the data must stay in: an ISO 3166-1 alpha-2 country code (CN, DE, IN),
    /// optionally narrowed to an ISO 3166-2 subdivision (CN-SH). Pods and volumes are placed
    /// only on nodes labelled with it. Immutable: create a new RegionalDataCenter to change it.
    #[schemars(length(min = 2, max = jurisdiction::MAX_LENGTH))]
    #[x_kube(
        validation = jurisdiction::shape_rule(),
        validation = jurisdiction::assigned_country_rule(),
        validation = jurisdiction::immutable_rule()
    )]
    pub jurisdiction: String,

    /// Where and how the data is stored.
    pub storage: StorageSpec,

    /// The workload that reads and writes the data, run as a StatefulSet pinned to the jurisdiction.
    pub workload: WorkloadSpec,

    /// What the operator does about misplaced pods. Audit (default) only reports violations;
    /// Enforce also evicts pods that run outside the jurisdiction. Data is never moved.
    #[serde(default)]
    pub enforcement: Enforcement,

    /// Network restrictions for the data pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSpec>,
}

/// Storage of the data.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("self.mode != 'Local' || has(self.localPath)")
        .message("localPath is required when mode is Local: set it to an absolute directory on the nodes, e.g. /mnt/domicile")
        .field_path(".localPath")
        .reason(kube::core::Reason::FieldValueRequired),
    validation = kube::core::Rule::new("self.mode == 'Local' || !has(self.localPath)")
        .message("localPath applies only to mode Local: remove it or set mode to Local")
        .field_path(".localPath"),
    validation = kube::core::Rule::new("self.mode == 'Dynamic' || !has(self.storageClassName)")
        .message("storageClassName applies only to mode Dynamic: in Local mode the operator manages the class; remove it or set mode to Dynamic")
        .field_path(".storageClassName"),
)]
pub struct StorageSpec {
    /// Capacity of each replica's volume, as a Kubernetes quantity such as 50Gi.
    #[schemars(extend("maxLength" = 64))]
    #[x_kube(
        validation = kube::core::Rule::new("isQuantity(string(self))")
            .message("size must be a Kubernetes quantity such as 50Gi or 500Mi"),
        validation = kube::core::Rule::new("!isQuantity(string(self)) || quantity(string(self)).isGreaterThan(quantity('0'))")
            .message("size must be greater than zero"),
    )]
    pub size: Quantity,

    /// How volumes are provided. Dynamic (default): claims of a StorageClass restricted to the
    /// jurisdiction, the operator's own or storageClassName. Local: static local
    /// PersistentVolumes under localPath on each eligible node.
    #[serde(default)]
    pub mode: StorageMode,

    /// Dynamic mode only: an existing StorageClass to use instead of the one the operator manages.
    /// It must keep volumes inside the jurisdiction; the audit checks that it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub storage_class_name: Option<String>,

    /// Local mode only (and required there): absolute directory on each eligible node under
    /// which the local volumes live, e.g. /mnt/domicile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(
        validation = kube::core::Rule::new("self.startsWith('/')")
            .message("localPath must be an absolute path such as /mnt/domicile"),
        validation = kube::core::Rule::new("!self.matches('(^|/)[.][.](/|$)')")
            .message("localPath must not contain '..' segments"),
    )]
    pub local_path: Option<String>,

    /// Keep claims, volumes and data when the RegionalDataCenter is deleted (default true).
    /// Set false only if deleting the resource should also delete its data.
    #[serde(default = "default_true")]
    pub retain_on_delete: bool,
}

/// How volumes are provided.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StorageMode {
    /// Claims of a StorageClass restricted to the jurisdiction, provisioned on demand.
    #[default]
    Dynamic,
    /// Static local PersistentVolumes, each with node affinity to one eligible node.
    Local,
}

/// The workload that reads and writes the data.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// Container image of the workload, e.g. registry.example/ingest:1.4.
    #[schemars(length(max = 1024))]
    #[x_kube(validation = kube::core::Rule::new("self.trim() != ''")
        .message("image must name a container image, e.g. registry.example/ingest:1.4")
        .reason(kube::core::Reason::FieldValueRequired))]
    pub image: String,

    /// Number of replicas, each with its own volume (0 to 100, default 1).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,

    /// Port the workload listens on, published by the headless Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,

    /// Entrypoint override for the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,

    /// Arguments for the container's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,

    /// Environment variables for the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,

    /// Compute resources for the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Where the data volume is mounted in the container (default /data).
    #[serde(default = "default_mount_path")]
    #[schemars(length(min = 1, max = 1024))]
    #[x_kube(validation = kube::core::Rule::new("self.startsWith('/')")
        .message("mountPath must be an absolute path such as /data"))]
    pub mount_path: String,
}

/// What the operator does about misplaced pods.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Enforcement {
    /// Report violations on the status and as Events; change nothing.
    #[default]
    Audit,
    /// Also evict pods that run outside the jurisdiction (never moves or deletes data).
    Enforce,
}

/// Network restrictions for the data pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// Apply a NetworkPolicy so that data pods may send traffic only to allowedEgressCIDRs and DNS.
    #[serde(default)]
    pub restrict_egress: bool,

    /// CIDRs inside the jurisdiction that data pods may reach when restrictEgress is true,
    /// e.g. 10.20.0.0/16.
    #[serde(default, rename = "allowedEgressCIDRs")]
    #[schemars(length(max = 64), inner(length(max = 64)))]
    #[x_kube(validation = kube::core::Rule::new("self.all(c, isCIDR(c))")
        .message("allowedEgressCIDRs must hold CIDRs such as 10.20.0.0/16 or 2001:db8::/32"))]
    pub allowed_egress_cidrs: Vec<String>,
}

fn default_true() -> bool {
    true
}

fn default_replicas() -> i32 {
    1
}

fn default_mount_path() -> String {
    "/data".to_owned()
}
