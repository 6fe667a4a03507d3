//! The status of a `RegionalDataCenter`, written only by the operator through the status subresource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the operator observed: where the workload and its data really are.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegionalDataCenterStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Lifecycle phase: Pending, Provisioning, Ready, Degraded or Violated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// Residency verdict: Compliant, Violated, Pending or Unverifiable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residency: Option<Residency>,

    /// Desired replicas of the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,

    /// Replicas whose pod is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,

    /// Ready replicas out of desired replicas, as shown in the READY column (e.g. 3/3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,

    /// One entry per replica: where its pod runs and where its data lives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["pod".into()]))]
    pub placements: Vec<Placement>,

    /// Objects that break the residency promise, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,

    /// Copies of the data: the snapshots of its claims and the Velero backups and schedules of its
    /// namespace, and where they are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["kind".into(), "name".into()]))]
    pub copies: Vec<DataCopy>,

    /// When the audit's verdict last changed, and with it this status. The operator audits on
    /// every change the verdict depends on and every few minutes, but writes only what changed,
    /// so an old time on a quiet resource is expected; whether the status is still true,
    /// `domicile audit` tells (it says which statuses are stale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_audit_time: Option<Time>,

    /// The admission guard of the namespace: its jurisdiction label and the policies that
    /// apply to it (AdmissionGuarded says whether they are enough).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardStatus>,

    /// Volumes of an earlier RegionalDataCenter of this name and namespace (another UID),
    /// retained with their data: not this one's, never reused for it. The RetainedVolumes
    /// Event says how to delete them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retained_volumes: Vec<String>,

    /// Ready, ResidencyCompliant, StorageProvisioned, WorkloadAvailable, LabelTrusted and
    /// AdmissionGuarded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

/// Lifecycle phase of a RegionalDataCenter.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, nothing provisioned yet (for example, no node carries the jurisdiction).
    Pending,
    /// Storage and workload are being created or are not yet available.
    Provisioning,
    /// Every replica is available and compliant.
    Ready,
    /// Provisioned, but fewer replicas are available than desired.
    Degraded,
    /// A pod or volume is outside the jurisdiction.
    Violated,
}

/// Residency verdict of a RegionalDataCenter.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residency {
    /// Every pod and every bound volume is inside the jurisdiction.
    Compliant,
    /// At least one pod or volume is outside the jurisdiction.
    Violated,
    /// Nothing is placed yet, so there is nothing to judge.
    Pending,
    /// A volume's location cannot be established (no node affinity, undeclared class).
    Unverifiable,
}

/// Where one pod and its data are: a replica's, or one that spec.members covers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Name of the pod.
    pub pod: String,
    /// What runs the pod, as Kind/name: StatefulSet/<name> for a replica, the controller of a
    /// covered pod (e.g. Cluster/orders), or Pod/<name> for a pod of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Node the pod is bound to, if scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Jurisdiction label of that node, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_jurisdiction: Option<String>,
    /// PersistentVolume bound to the replica's claim, if bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// Node the volume is pinned to by its node affinity, if it names exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_node: Option<String>,
    /// Whether both the pod and its data are inside the jurisdiction.
    pub compliant: bool,
}

/// A copy of the data: a snapshot of one of the claims, or a backup of the namespace, and where
/// it is kept.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct DataCopy {
    /// VolumeSnapshot, Backup or Schedule (Velero's).
    pub kind: String,
    /// Name of a snapshot (in the RegionalDataCenter's namespace), or namespace/name of a
    /// backup or schedule.
    pub name: String,
    /// What it copies: the claim, or "namespace NAME".
    pub source: String,
    /// Where it is kept: the VolumeSnapshotClass a snapshot names (or the default one), or the
    /// BackupStorageLocation of a backup (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The jurisdiction that class or location declares by its label (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// Whether it is kept inside the RegionalDataCenter's jurisdiction (for a backup, its
    /// storage location and every location its volume snapshots may go to).
    pub inside: bool,
}

/// One object that breaks the residency promise.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// Kind of the offending object: Pod, PersistentVolume or VolumeSnapshot.
    pub kind: String,
    /// Name of the offending object.
    pub name: String,
    /// NodeOutsideJurisdiction, DataOutsideJurisdiction, Unverifiable, ForeignMount,
    /// ReplicaDetached or CopyOutsideJurisdiction.
    pub reason: String,
    /// What is wrong and what to do about it.
    pub message: String,
    /// When the operator first saw this violation.
    pub since: Time,
}

/// What the API server refuses in the namespace before it happens.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GuardStatus {
    /// The namespace's domicile.dev/jurisdiction label, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_jurisdiction: Option<String>,
    /// domicile's ValidatingAdmissionPolicies that are bound and apply to the namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<GuardPolicy>,
}

/// One admission policy in force.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GuardPolicy {
    /// What it guards: pods, claims, managed or operator.
    pub guard: String,
    /// Name of the ValidatingAdmissionPolicy.
    pub name: String,
    /// The validationActions of its bindings: Deny, Warn, Audit.
    pub actions: Vec<String>,
}
