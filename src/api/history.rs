//! The `ResidencyHistory` resource: where each replica and each volume of one RegionalDataCenter
//! lived, from when to when, and every violation with its start and end. Written by the operator
//! alone (the status subresource), append-only and bounded.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Which RegionalDataCenter the history is of.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "domicile.dev",
    version = "v1alpha1",
    kind = "ResidencyHistory",
    plural = "residencyhistories",
    singular = "residencyhistory",
    shortname = "rdchistory",
    category = "domicile",
    namespaced,
    status = "ResidencyHistoryStatus",
    derive = "PartialEq",
    doc = "ResidencyHistory records where the pods and volumes of one RegionalDataCenter (of the same name) lived and every violation, with start and end times. Kept by the operator; it survives the operator's restarts, Event expiry and the RegionalDataCenter itself.",
    printcolumn(
        name = "Stays",
        type_ = "integer",
        json_path = ".status.stayCount",
        description = "Stays recorded"
    ),
    printcolumn(
        name = "Violations",
        type_ = "integer",
        json_path = ".status.violationCount",
        description = "Violations recorded"
    ),
    printcolumn(
        name = "Trimmed",
        type_ = "integer",
        json_path = ".status.trimmed",
        description = "Oldest entries dropped to keep the bound"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ResidencyHistorySpec {
    /// The RegionalDataCenter of the same name and namespace this history is of.
    #[x_kube(validation = ("self == oldSelf", "regionalDataCenter is immutable"))]
    pub regional_data_center: String,
}

/// The record, oldest first.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResidencyHistoryStatus {
    /// Where each pod ran and each volume lived, from when to when (open while it still does).
    #[serde(default)]
    pub stays: Vec<Stay>,
    /// Every violation, from when it was first seen to when it cleared (open while it lasts).
    #[serde(default)]
    pub violations: Vec<Episode>,
    /// Entries dropped, oldest closed ones first, to keep at most 200 stays and 200 violations.
    #[serde(default)]
    pub trimmed: i64,
    /// Entries in `stays`, for the printer column.
    #[serde(default)]
    pub stay_count: i64,
    /// Entries in `violations`, for the printer column.
    #[serde(default)]
    pub violation_count: i64,
}

/// One pod on one node, or one volume pinned to one node, for one span of time.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Stay {
    /// Pod, PersistentVolume, or a copy of the data: VolumeSnapshot, Backup or Schedule.
    pub kind: String,
    /// Name of the pod, volume or snapshot.
    pub name: String,
    /// The node it ran on, or the one node a volume is pinned to (absent when it names none or several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Where a copy is kept: its VolumeSnapshotClass or BackupStorageLocation (absent for pods and
    /// volumes, or when none does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The jurisdiction label of the node, or of a copy's class, during the stay (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// Whether the stay was inside the RegionalDataCenter's jurisdiction.
    pub inside: bool,
    /// When it began, as the operator saw it.
    pub from: Time,
    /// When it ended; absent while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Time>,
}

/// One violation for one span of time.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Episode {
    /// Pod, PersistentVolume or VolumeSnapshot.
    pub kind: String,
    /// Name of the pod, volume or snapshot.
    pub name: String,
    /// NodeOutsideJurisdiction, DataOutsideJurisdiction, Unverifiable, ForeignMount,
    /// ReplicaDetached or CopyOutsideJurisdiction.
    pub reason: String,
    /// The message when it was first seen.
    pub message: String,
    /// When it was first seen.
    pub from: Time,
    /// When it cleared; absent while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Time>,
}
