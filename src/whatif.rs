//! `domicile what-if`: what a node change would do to every data centre, computed with the same
//! pure audit as the operator from the cluster as it is, changing nothing. For node-maintenance
//! pipelines: ask before relabelling or draining.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use serde::Serialize;

use crate::api::jurisdiction::Jurisdiction;
use crate::api::{RegionalDataCenter, Residency};
use crate::copies::{
    Backup, BackupStorageLocation, Schedule, VolumeSnapshot, VolumeSnapshotClass,
    VolumeSnapshotLocation,
};
use crate::residency::{self, Observed};
use crate::resources::NodeLabelKeys;

/// One change to ask about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "camelCase")]
pub enum Change {
    /// Set the node's jurisdiction label to `value`, or remove it (None).
    Relabel { node: String, value: Option<String> },
    /// Cordon the node and evict its pods.
    Drain { node: String },
}

impl Change {
    /// `NODE=CODE`, or `NODE=-` to remove the label.
    pub fn parse_relabel(text: &str) -> Result<Self, String> {
        let (node, value) = text
            .split_once('=')
            .filter(|(node, value)| !node.is_empty() && !value.is_empty())
            .ok_or_else(|| {
                format!("--relabel {text:?}: give NODE=CODE, or NODE=- to remove the label")
            })?;
        let value = (value != "-").then(|| value.to_owned());
        if let Some(code) = &value {
            Jurisdiction::parse(code).map_err(|err| format!("--relabel {text:?}: {err}"))?;
        }
        Ok(Self::Relabel {
            node: node.to_owned(),
            value,
        })
    }

    fn node(&self) -> &str {
        match self {
            Self::Relabel { node, .. } | Self::Drain { node } => node,
        }
    }
}

/// The cluster as it is.
pub struct Snapshot {
    pub nodes: Vec<Arc<Node>>,
    pub volumes: Vec<Arc<PersistentVolume>>,
    pub classes: Vec<Arc<StorageClass>>,
    /// VolumeSnapshots (of the namespaces read) and every VolumeSnapshotClass; empty where the
    /// snapshot API is not served.
    pub snapshots: Vec<Arc<VolumeSnapshot>>,
    pub snapshot_classes: Vec<Arc<VolumeSnapshotClass>>,
    /// Velero's objects; empty where Velero's API is not served.
    pub velero: Velero,
    /// The data centres read.
    pub data_centers: Vec<RegionalDataCenter>,
    /// Every pod and claim of the namespaces read (listed once, not per data centre).
    pub pods: Vec<Pod>,
    pub claims: Vec<PersistentVolumeClaim>,
}

/// The pods and claims of a snapshot, by namespace.
#[derive(Default)]
pub struct ByNamespace(BTreeMap<String, (Vec<Pod>, Vec<PersistentVolumeClaim>)>);

impl ByNamespace {
    /// The pods and claims of the namespace of `rdc`.
    pub fn of(&self, rdc: &RegionalDataCenter) -> (&[Pod], &[PersistentVolumeClaim]) {
        self.0
            .get(rdc.metadata.namespace.as_deref().unwrap_or_default())
            .map_or((&[], &[]), |(pods, claims)| {
                (pods.as_slice(), claims.as_slice())
            })
    }
}

/// Velero's Backups, Schedules and the locations they store to.
#[derive(Clone, Debug, Default)]
pub struct Velero {
    pub backups: Vec<Arc<Backup>>,
    pub schedules: Vec<Arc<Schedule>>,
    pub storage_locations: Vec<Arc<BackupStorageLocation>>,
    pub snapshot_locations: Vec<Arc<VolumeSnapshotLocation>>,
}

impl Snapshot {
    /// The pods and claims of each namespace read, grouped once: the audit of a data centre
    /// reads its namespace's (its own among them, and those its `spec.members` may cover), and a
    /// namespace of 500 data centres would otherwise copy its thousands of pods for each.
    pub fn pods_and_claims_by_namespace(&self) -> ByNamespace {
        let mut grouped = ByNamespace::default();
        for pod in &self.pods {
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            grouped.0.entry(namespace).or_default().0.push(pod.clone());
        }
        for claim in &self.claims {
            let namespace = claim.metadata.namespace.clone().unwrap_or_default();
            grouped
                .0
                .entry(namespace)
                .or_default()
                .1
                .push(claim.clone());
        }
        grouped
    }

    /// The VolumeSnapshots in the namespace of `rdc`.
    pub fn snapshots_of(&self, rdc: &RegionalDataCenter) -> Vec<Arc<VolumeSnapshot>> {
        self.snapshots
            .iter()
            .filter(|s| s.metadata.namespace == rdc.metadata.namespace)
            .cloned()
            .collect()
    }
}

/// What the changes would do to one data centre.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Impact {
    pub namespace: String,
    pub name: String,
    pub jurisdiction: String,
    pub residency: Residency,
    pub residency_after: Residency,
    pub eligible_nodes: usize,
    pub eligible_nodes_after: usize,
    pub replicas: i32,
    /// Pods that would be evicted and could not start anywhere else, and why.
    pub stranded: Vec<String>,
    /// What happens, in words.
    pub effects: Vec<String>,
    /// Whether the change breaks it: newly Violated or Unverifiable, or a pod stranded.
    pub breaks: bool,
}

fn broken(residency: Residency) -> bool {
    matches!(residency, Residency::Violated | Residency::Unverifiable)
}

/// Applies `changes` to the snapshot's nodes and audits every data centre before and after.
/// Returns the data centres the changes touch (any effect), or an error naming a node that
/// does not exist.
pub fn what_if(
    snapshot: &Snapshot,
    changes: &[Change],
    keys: &NodeLabelKeys,
) -> Result<Vec<Impact>, String> {
    for change in changes {
        if !snapshot
            .nodes
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some(change.node()))
        {
            return Err(format!("no node {:?} in the cluster", change.node()));
        }
    }
    let drained: Vec<&str> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Drain { node } => Some(node.as_str()),
            Change::Relabel { .. } => None,
        })
        .collect();
    let after: Vec<Arc<Node>> = snapshot
        .nodes
        .iter()
        .map(|node| {
            let name = node.metadata.name.as_deref().unwrap_or_default();
            let mut changed = None;
            for change in changes {
                if let Change::Relabel {
                    node: target,
                    value,
                } = change
                    && target == name
                {
                    let mut copy = changed.take().unwrap_or_else(|| node.as_ref().clone());
                    let labels = copy.metadata.labels.get_or_insert_with(BTreeMap::new);
                    match value {
                        Some(code) => {
                            labels.insert(keys.jurisdiction.clone(), code.clone());
                        }
                        None => {
                            labels.remove(&keys.jurisdiction);
                        }
                    }
                    changed = Some(copy);
                }
            }
            changed.map_or_else(|| Arc::clone(node), Arc::new)
        })
        .collect();

    let mut impacts = Vec::new();
    let by_namespace = snapshot.pods_and_claims_by_namespace();
    for rdc in &snapshot.data_centers {
        let Ok(jurisdiction) = Jurisdiction::parse(&rdc.spec.jurisdiction) else {
            continue;
        };
        let snapshots = snapshot.snapshots_of(rdc);
        let (pods, claims) = by_namespace.of(rdc);
        let observed = |nodes| Observed {
            pods,
            claims,
            member_pods: pods,
            member_claims: claims,
            volumes: &snapshot.volumes,
            nodes,
            classes: &snapshot.classes,
            snapshots: &snapshots,
            snapshot_classes: &snapshot.snapshot_classes,
            backups: &snapshot.velero.backups,
            schedules: &snapshot.velero.schedules,
            storage_locations: &snapshot.velero.storage_locations,
            snapshot_locations: &snapshot.velero.snapshot_locations,
        };
        let now = residency::audit(rdc, &jurisdiction, keys, &observed(&snapshot.nodes));
        let later = residency::audit(rdc, &jurisdiction, keys, &observed(&after));
        let eligible_now = residency::eligible_nodes(&snapshot.nodes, &jurisdiction, keys);
        let eligible_after: Vec<&Node> = residency::eligible_nodes(&after, &jurisdiction, keys)
            .into_iter()
            .filter(|n| !drained.contains(&n.metadata.name.as_deref().unwrap_or_default()))
            .collect();

        let mut effects = Vec::new();
        for finding in later.findings.iter().filter(|f| !now.findings.contains(f)) {
            effects.push(finding.message.clone());
        }
        let mut stranded = Vec::new();
        for placement in &now.placements {
            let Some(node) = placement.node.as_deref().filter(|n| drained.contains(n)) else {
                continue;
            };
            if placement.volume_node.as_deref() == Some(node) {
                stranded.push(format!(
                    "pod {} would be evicted from {node}, where its data is: it cannot start elsewhere until the \
                     node is back (domicile never moves data)",
                    placement.pod
                ));
            } else if !eligible_after
                .iter()
                .any(|n| n.metadata.name.as_deref() != Some(node))
            {
                stranded.push(format!(
                    "pod {} would be evicted from {node}, and no other node is labelled {jurisdiction}",
                    placement.pod
                ));
            } else {
                effects.push(format!(
                    "pod {} would be evicted from {node} and rescheduled onto another node of {jurisdiction}",
                    placement.pod
                ));
            }
        }
        if eligible_after.len() < eligible_now.len() {
            effects.push(format!(
                "{} of {} eligible nodes left{}",
                eligible_after.len(),
                eligible_now.len(),
                if eligible_after.len() < usize::try_from(rdc.replicas()).unwrap_or(0) {
                    ", fewer than its replicas: a pod that must move may find no place"
                } else {
                    ""
                }
            ));
        } else if eligible_after.len() > eligible_now.len() {
            effects.push(format!(
                "{} eligible nodes instead of {}",
                eligible_after.len(),
                eligible_now.len()
            ));
        }
        if effects.is_empty() && stranded.is_empty() {
            continue;
        }
        let breaks = (broken(later.residency) && !broken(now.residency))
            || (later.residency == Residency::Violated && now.residency != Residency::Violated)
            || !stranded.is_empty();
        impacts.push(Impact {
            namespace: rdc.metadata.namespace.clone().unwrap_or_default(),
            name: rdc.metadata.name.clone().unwrap_or_default(),
            jurisdiction: rdc.spec.jurisdiction.clone(),
            residency: now.residency,
            residency_after: later.residency,
            eligible_nodes: eligible_now.len(),
            eligible_nodes_after: eligible_after.len(),
            replicas: rdc.replicas(),
            stranded,
            effects,
            breaks,
        });
    }
    impacts.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(impacts)
}

/// The impacts as a table, then each effect on a line of its own.
pub fn table(changes: &[Change], impacts: &[Impact]) -> String {
    let asked: Vec<String> = changes
        .iter()
        .map(|c| match c {
            Change::Relabel { node, value } => {
                format!(
                    "relabel {node} {}",
                    value.as_deref().unwrap_or("(no label)")
                )
            }
            Change::Drain { node } => format!("drain {node}"),
        })
        .collect();
    let breaking = impacts.iter().filter(|i| i.breaks).count();
    let mut out = format!(
        "What if: {}. {} data centre(s) affected, {breaking} would break.\n",
        asked.join(", "),
        impacts.len()
    );
    if impacts.is_empty() {
        return out;
    }
    out.push('\n');
    let header = [
        "NAMESPACE",
        "NAME",
        "JURISDICTION",
        "RESIDENCY",
        "AFTER",
        "ELIGIBLE",
        "BREAKS",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 7]> = impacts
        .iter()
        .map(|i| {
            [
                i.namespace.clone(),
                i.name.clone(),
                i.jurisdiction.clone(),
                format!("{:?}", i.residency),
                format!("{:?}", i.residency_after),
                format!("{}->{}", i.eligible_nodes, i.eligible_nodes_after),
                if i.breaks { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    out.push_str(&crate::audit::aligned(&header, &rows));
    for i in impacts {
        for line in i.stranded.iter().chain(&i.effects) {
            out.push_str(&format!("{}/{}: {line}\n", i.namespace, i.name));
        }
    }
    out
}

#[cfg(test)]
mod tests;
