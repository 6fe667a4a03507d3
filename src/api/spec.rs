//! The `RegionalDataCenter` resource: what the user asks for, and the rules the API server enforces.

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
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
#[x_kube(
    validation = allowed_ingress_namespaces_rule(),
    validation = kube::core::Rule::new("has(self.workload) || has(self.members)")
        .message("a RegionalDataCenter needs spec.workload (a workload domicile runs), spec.members (workloads of others it covers, e.g. matchLabels {cnpg.io/cluster: orders}), or both")
        .reason(kube::core::Reason::FieldValueRequired),
    validation = kube::core::Rule::new("has(self.workload) == has(self.storage)")
        .message("spec.storage and spec.workload go together: storage is that of the workload domicile runs; give both, or neither with spec.members")
        .reason(kube::core::Reason::FieldValueRequired),
    validation = kube::core::Rule::new("has(self.workload) == has(oldSelf.workload)")
        .message("spec.workload cannot be added or removed: it decides whether domicile runs a StatefulSet with its own data; create a new RegionalDataCenter instead"),
)]
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

    /// Where and how the data of the workload is stored (with spec.workload only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,

    /// The workload that reads and writes the data, run as a StatefulSet pinned to the
    /// jurisdiction. Optional when spec.members covers workloads that others run; it cannot be
    /// added or removed later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadSpec>,

    /// Workloads that others run (another operator's database, a Deployment with a claim),
    /// covered like the data centre's own: the pods and claims of its namespace this selects,
    /// the claims those pods mount and the volumes bound to them are audited, recorded in the
    /// history, reported, and in Enforce mode evicted when outside. Must select something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new(
        "(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)")
        .message("members must select something: give matchLabels (e.g. {cnpg.io/cluster: orders}) or matchExpressions; an empty selector would cover every pod of the namespace")
        .reason(kube::core::Reason::FieldValueRequired),
        validation = kube::core::Rule::new(
        "!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])")
        .message("members.matchExpressions[].operator must be In, NotIn, Exists or DoesNotExist (as in any label selector); another would select nothing")
        .reason(kube::core::Reason::FieldValueInvalid),
        validation = kube::core::Rule::new(
        "!has(self.matchExpressions) || self.matchExpressions.all(e, (e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0))")
        .message("members.matchExpressions[].values: In and NotIn need at least one value, Exists and DoesNotExist take none")
        .reason(kube::core::Reason::FieldValueInvalid))]
    pub members: Option<LabelSelector>,

    /// What the operator does about misplaced pods. Audit (default) only reports violations;
    /// Enforce also evicts pods that run outside the jurisdiction. Data is never moved.
    #[serde(default)]
    pub enforcement: Enforcement,

    /// The network fence around the data pods (on by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSpec>,
}

/// Storage of the data.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
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
    /// PersistentVolumes on eligible nodes, under the operator's local root.
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

    /// Removed: tenants do not choose host paths. Local volumes live under the operator's
    /// `--local-root`, at `<root>/<namespace>/<name>/<ordinal>`; remove this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = kube::core::Rule::new("false")
        .message("localPath was removed: tenants do not choose host paths; local volumes live under the operator's --local-root at <root>/<namespace>/<name>/<ordinal>. Remove spec.storage.localPath")
        .reason(kube::core::Reason::FieldValueForbidden))]
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

    /// User the container runs as: never root (default 65532). Pods pass the restricted Pod
    /// Security Standard: non-root, RuntimeDefault seccomp, no capabilities, no privilege escalation.
    #[serde(default = "default_unprivileged_id")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub run_as_user: i64,

    /// Group the container runs as, and the fsGroup that makes the data volume writable to it
    /// (default 65532; never 0).
    #[serde(default = "default_unprivileged_id")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub run_as_group: i64,
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

/// The network fence around the data pods: a NetworkPolicy, on unless `fence: false`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("!has(self.restrictEgress)")
        .message("restrictEgress was replaced by fence, which is on by default and also restricts ingress: remove restrictEgress (set fence: false to opt out)")
        .field_path(".restrictEgress")
        .reason(kube::core::Reason::FieldValueForbidden),
)]
pub struct NetworkSpec {
    /// Fence the data pods with a NetworkPolicy (default true): egress only to cluster DNS, to
    /// the data centre's own pods and to allowedEgressCIDRs; ingress only from its own pods and
    /// from allowedIngress. false leaves the pods open to and from anywhere.
    #[serde(default = "default_true")]
    pub fence: bool,

    /// Removed: replaced by fence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restrict_egress: Option<bool>,

    /// CIDRs inside the jurisdiction that data pods may send traffic to, e.g. 10.20.0.0/16.
    /// Catch-all ranges are refused: an IPv4 prefix must be /8 or longer, an IPv6 one /16 or longer.
    #[serde(default, rename = "allowedEgressCIDRs")]
    #[schemars(length(max = 64), inner(length(max = 64)))]
    #[x_kube(
        validation = kube::core::Rule::new("self.all(c, isCIDR(c))")
            .message("allowedEgressCIDRs must hold CIDRs such as 10.20.0.0/16 or 2001:db8::/32"),
        validation = catch_all_rule("allowedEgressCIDRs"),
        validation = network_address_rule("allowedEgressCIDRs"),
    )]
    pub allowed_egress_cidrs: Vec<String>,

    /// Who may connect to the data pods besides their own replicas: each entry names either a
    /// cidr, or pods by namespaceSelector and/or podSelector (as in a NetworkPolicy peer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub allowed_ingress: Vec<IngressPeer>,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        Self {
            fence: true,
            restrict_egress: None,
            allowed_egress_cidrs: Vec::new(),
            allowed_ingress: Vec::new(),
        }
    }
}

/// A source allowed to connect to the data pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("has(self.cidr) != (has(self.namespaceSelector) || has(self.podSelector))")
        .message("an allowedIngress entry names either a cidr, or a namespaceSelector and/or a podSelector, not both and not neither"),
)]
pub struct IngressPeer {
    /// Addresses allowed to connect, e.g. 10.20.0.0/16. Catch-all ranges are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(
        validation = kube::core::Rule::new("isCIDR(self)")
            .message("cidr must be a CIDR such as 10.20.0.0/16 or 2001:db8::/32"),
        validation = catch_all_rule_single(),
        validation = kube::core::Rule::new("!isCIDR(self) || cidr(self) == cidr(self).masked()")
            .message("cidr must be a network address, e.g. 10.20.0.0/16 rather than 10.20.0.1/16"),
    )]
    pub cidr: Option<String>,

    /// Namespaces whose pods may connect (all pods in them, unless podSelector narrows it).
    /// It must select namespaces of the data centre's own jurisdiction by matchLabels
    /// {domicile.dev/jurisdiction: <the jurisdiction>}; without it, pods of this namespace only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Pods that may connect: in the data centre's own namespace, or in the namespaces of
    /// namespaceSelector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
}

/// The shortest prefixes accepted: anything shorter is a catch-all in disguise (0.0.0.0/1).
pub const MIN_IPV4_PREFIX: u32 = 8;
pub const MIN_IPV6_PREFIX: u32 = 16;

fn catch_all_condition(var: &str) -> String {
    format!(
        "!isCIDR({var}) || cidr({var}).prefixLength() >= (cidr({var}).ip().family() == 4 ? {MIN_IPV4_PREFIX} : {MIN_IPV6_PREFIX})"
    )
}

fn catch_all_message(field: &str) -> String {
    format!(
        "{field} must not open the fence to everything: 0.0.0.0/0, ::/0 and other catch-all ranges are refused \
         (IPv4 prefixes must be /{MIN_IPV4_PREFIX} or longer, IPv6 /{MIN_IPV6_PREFIX} or longer); list the networks inside \
         the jurisdiction, or set fence: false to opt out of the fence"
    )
}

fn catch_all_rule(field: &str) -> kube::core::Rule {
    kube::core::Rule::new(format!("self.all(c, {})", catch_all_condition("c")))
        .message(kube::core::Message::Message(catch_all_message(field)))
}

fn catch_all_rule_single() -> kube::core::Rule {
    kube::core::Rule::new(catch_all_condition("self"))
        .message(kube::core::Message::Message(catch_all_message("cidr")))
}

fn network_address_rule(field: &str) -> kube::core::Rule {
    kube::core::Rule::new("self.all(c, !isCIDR(c) || cidr(c) == cidr(c).masked())").message(
        kube::core::Message::Message(format!(
            "{field} must hold network addresses, e.g. 10.20.0.0/16 rather than 10.20.0.1/16"
        )),
    )
}

/// allowedIngress may name namespaces of the data centre's own jurisdiction only: a namespace
/// selector must pin `domicile.dev/jurisdiction` to it (matchLabels; more labels and expressions
/// only narrow it). An empty selector would let every namespace in.
fn allowed_ingress_namespaces_rule() -> kube::core::Rule {
    kube::core::Rule::new(
        "!has(self.network) || !has(self.network.allowedIngress) || \
         self.network.allowedIngress.all(p, !has(p.namespaceSelector) || \
         (has(p.namespaceSelector.matchLabels) && \
         'domicile.dev/jurisdiction' in p.namespaceSelector.matchLabels && \
         p.namespaceSelector.matchLabels['domicile.dev/jurisdiction'] == self.jurisdiction))",
    )
    .message(kube::core::Message::Expression(
        "'allowedIngress lets in namespaces outside ' + self.jurisdiction + ': a namespaceSelector \
         must select namespaces of this jurisdiction with matchLabels {domicile.dev/jurisdiction: ' \
         + self.jurisdiction + '} (an empty selector selects every namespace); leave \
         namespaceSelector out to let in pods of this namespace only'"
            .to_owned(),
    ))
    .field_path(".network.allowedIngress")
    .reason(kube::core::Reason::FieldValueForbidden)
}

fn default_true() -> bool {
    true
}

fn default_replicas() -> i32 {
    1
}

fn default_unprivileged_id() -> i64 {
    65532
}

fn default_mount_path() -> String {
    "/data".to_owned()
}

/// The workload a data centre runs itself, with its storage.
#[derive(Clone, Copy, Debug)]
pub struct Own<'a> {
    pub rdc: &'a RegionalDataCenter,
    pub storage: &'a StorageSpec,
    pub workload: &'a WorkloadSpec,
}

impl RegionalDataCenter {
    /// Its own workload and storage, when it runs one (the CRD has both or neither).
    pub fn own(&self) -> Option<Own<'_>> {
        Some(Own {
            rdc: self,
            storage: self.spec.storage.as_ref()?,
            workload: self.spec.workload.as_ref()?,
        })
    }

    /// Replicas of its own workload; 0 for a data centre that only covers members.
    pub fn replicas(&self) -> i32 {
        self.spec.workload.as_ref().map_or(0, |w| w.replicas)
    }

    /// How its own volumes are provided (Dynamic when it has none).
    pub fn storage_mode(&self) -> StorageMode {
        self.spec
            .storage
            .as_ref()
            .map_or_else(StorageMode::default, |s| s.mode)
    }

    /// Whether its own claims and volumes outlive it (always, when it has none).
    pub fn retains_data(&self) -> bool {
        self.spec
            .storage
            .as_ref()
            .is_none_or(|s| s.retain_on_delete)
    }
}
