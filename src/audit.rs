//! `domicile audit`: a read-only verdict for auditors and CI, computed from the cluster itself
//! with the same pure audit as the operator, never from the RegionalDataCenters' status.

use std::sync::Arc;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use serde::Serialize;

use crate::api::jurisdiction::Jurisdiction;
use crate::api::{
    GuardStatus, Placement, RegionalDataCenter, Residency, ResidencyHistory, ResidencyHistoryStatus,
};
use crate::copies::{
    Backup, BackupStorageLocation, Schedule, VolumeSnapshot, VolumeSnapshotClass,
    VolumeSnapshotLocation,
};
use crate::guard::{self, GUARD_LABEL};
use crate::residency::{self, Observed};
use crate::resources::NodeLabelKeys;
pub use crate::whatif::Snapshot;

/// Exit code when every data centre is compliant (or has nothing placed yet).
pub const EXIT_COMPLIANT: u8 = 0;
/// Exit code when any violation or unverifiable placement exists.
pub const EXIT_VIOLATIONS: u8 = 1;
/// Exit code when the audit could not be carried out (no cluster, no permission, ...).
pub const EXIT_ERROR: u8 = 2;
/// Exit code when no data centre breaks residency but a status disagrees with the audit: the
/// operator is stalled, or behind, and its statuses cannot be relied on.
pub const EXIT_STALE: u8 = 3;

/// The verdict on one RegionalDataCenter.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub namespace: String,
    pub name: String,
    pub jurisdiction: String,
    /// None when the jurisdiction itself is invalid (a CRD older than this binary let it in).
    pub residency: Option<Residency>,
    pub placements: Vec<Placement>,
    pub violations: Vec<ReportedViolation>,
    /// Prevention beside detection: whether the API server refuses, in the namespace, what
    /// would take the data out. None when the policies or the namespace could not be read.
    pub guard: Option<ReportedGuard>,
    /// Whether the resource's status says what this audit finds (its residency and violations,
    /// for its current generation); None when it does: the operator keeps it. A status that
    /// disagrees for more than a moment means the operator is stalled or behind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale: Option<String>,
    /// Where its pods and volumes have been, and every violation, from its ResidencyHistory.
    /// None when there is none yet, or it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<ResidencyHistoryStatus>,
}

/// The admission guard of a data centre's namespace, judged as the operator judges it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedGuard {
    pub guarded: bool,
    /// Enforced, or why not: the reasons of the AdmissionGuarded condition.
    pub reason: String,
    pub message: String,
    #[serde(flatten)]
    pub status: GuardStatus,
}

/// What the guard is judged from; any of it may be unreadable to the auditor.
struct GuardInputs {
    namespaces: Vec<Namespace>,
    policies: Vec<ValidatingAdmissionPolicy>,
    bindings: Vec<ValidatingAdmissionPolicyBinding>,
}

async fn guard_inputs(client: &Client, namespace: Option<&str>) -> kube::Result<GuardInputs> {
    let namespaces = Api::<Namespace>::all(client.clone());
    let namespaces = match namespace {
        Some(name) => namespaces.get_opt(name).await?.into_iter().collect(),
        None => namespaces.list(&ListParams::default()).await?.items,
    };
    let guarded = ListParams::default().labels(GUARD_LABEL);
    Ok(GuardInputs {
        namespaces,
        policies: Api::all(client.clone()).list(&guarded).await?.items,
        bindings: Api::all(client.clone()).list(&guarded).await?.items,
    })
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportedViolation {
    pub kind: String,
    pub name: String,
    pub reason: String,
    pub message: String,
}

impl Report {
    /// Where the status of `rdc` disagrees with this audit's verdict, said in words.
    fn staleness(&self, rdc: &crate::api::RegionalDataCenter) -> Option<String> {
        let Some(status) = rdc.status.as_ref() else {
            return Some("the operator has written no status".to_owned());
        };
        let generation = rdc.metadata.generation;
        if status.observed_generation != generation {
            return Some(format!(
                "the status describes generation {}, the resource is at {}",
                status.observed_generation.unwrap_or_default(),
                generation.unwrap_or_default()
            ));
        }
        if status.residency != self.residency {
            let word = |r: Option<Residency>| r.map_or("nothing".to_owned(), |r| format!("{r:?}"));
            return Some(format!(
                "the status says {}, the audit finds {}",
                word(status.residency),
                word(self.residency)
            ));
        }
        let key = |kind: &str, name: &str, reason: &str| format!("{kind} {name} {reason}");
        let mut said: Vec<String> = status
            .violations
            .iter()
            .map(|v| key(&v.kind, &v.name, &v.reason))
            .collect();
        let mut found: Vec<String> = self
            .violations
            .iter()
            .map(|v| key(&v.kind, &v.name, &v.reason))
            .collect();
        said.sort();
        found.sort();
        (said != found).then(|| {
            format!(
                "the status lists the violations [{}], the audit finds [{}]",
                said.join(", "),
                found.join(", ")
            )
        })
    }

    fn breaks_residency(&self) -> bool {
        matches!(
            self.residency,
            Some(Residency::Violated | Residency::Unverifiable) | None
        )
    }
}

/// Reads the cluster as the audit sees it: every node, volume and class, and every
/// RegionalDataCenter (of `namespace`, or of all namespaces) with its pods and claims.
pub async fn snapshot(client: &Client, namespace: Option<&str>) -> anyhow::Result<Snapshot> {
    let rdcs: Api<RegionalDataCenter> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let all = ListParams::default();
    let nodes = shared(Api::<Node>::all(client.clone()).list(&all).await?.items);
    let volumes = shared(
        Api::<PersistentVolume>::all(client.clone())
            .list(&all)
            .await?
            .items,
    );
    let classes = shared(
        Api::<StorageClass>::all(client.clone())
            .list(&all)
            .await?
            .items,
    );
    let data_centers = rdcs.list(&all).await?.items;
    // Each kind is listed once, whatever the number of data centres.
    let (pods, claims) = match namespace {
        Some(namespace) => (
            Api::<Pod>::namespaced(client.clone(), namespace)
                .list(&all)
                .await?
                .items,
            Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
                .list(&all)
                .await?
                .items,
        ),
        None => (
            Api::<Pod>::all(client.clone()).list(&all).await?.items,
            Api::<PersistentVolumeClaim>::all(client.clone())
                .list(&all)
                .await?
                .items,
        ),
    };
    let snapshot_api: Api<VolumeSnapshot> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let snapshots = shared(served_or_empty(snapshot_api.list(&all).await)?);
    let snapshot_classes = shared(served_or_empty(
        Api::<VolumeSnapshotClass>::all(client.clone())
            .list(&all)
            .await,
    )?);
    // Velero's objects, wherever they are: a backup in its own namespace may copy any other.
    let velero = crate::whatif::Velero {
        backups: shared(served_or_empty(
            Api::<Backup>::all(client.clone()).list(&all).await,
        )?),
        schedules: shared(served_or_empty(
            Api::<Schedule>::all(client.clone()).list(&all).await,
        )?),
        storage_locations: shared(served_or_empty(
            Api::<BackupStorageLocation>::all(client.clone())
                .list(&all)
                .await,
        )?),
        snapshot_locations: shared(served_or_empty(
            Api::<VolumeSnapshotLocation>::all(client.clone())
                .list(&all)
                .await,
        )?),
    };
    Ok(Snapshot {
        nodes,
        volumes,
        classes,
        snapshots,
        snapshot_classes,
        velero,
        data_centers,
        pods,
        claims,
    })
}

/// The items of a list of a kind the API server may not serve (its CRD not installed): none then.
fn served_or_empty<K: Clone>(
    listed: Result<kube::core::ObjectList<K>, kube::Error>,
) -> Result<Vec<K>, kube::Error> {
    match listed {
        Ok(list) => Ok(list.items),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(vec![]),
        Err(err) => Err(err),
    }
}

/// Reads every RegionalDataCenter (of `namespace`, or of all namespaces) and audits it.
pub async fn audit_cluster(
    client: Client,
    keys: &NodeLabelKeys,
    exempt_label: &str,
    namespace: Option<&str>,
) -> anyhow::Result<Vec<Report>> {
    let all = ListParams::default();
    let cluster = snapshot(&client, namespace).await?;
    let guards = match guard_inputs(&client, namespace).await {
        Ok(inputs) => Some(inputs),
        Err(err) => {
            eprintln!("the admission guard is not judged: {err}");
            None
        }
    };
    let histories: Api<ResidencyHistory> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let histories = match histories.list(&all).await {
        Ok(list) => list.items,
        Err(err) => {
            eprintln!("the residency histories are not included: {err}");
            vec![]
        }
    };
    let jurisdictions: Vec<(String, String, Jurisdiction)> = cluster
        .data_centers
        .iter()
        .filter_map(|rdc| {
            let jurisdiction = Jurisdiction::parse(&rdc.spec.jurisdiction).ok()?;
            Some((rdc.namespace()?, rdc.name_any(), jurisdiction))
        })
        .collect();
    let mut reports = Vec::new();
    let by_namespace = cluster.pods_and_claims_by_namespace();
    for rdc in &cluster.data_centers {
        let (pods, claims) = by_namespace.of(rdc);
        let namespace = rdc.namespace().unwrap_or_default();
        let name = rdc.name_any();
        let mut report = Report {
            namespace: namespace.clone(),
            name: name.clone(),
            jurisdiction: rdc.spec.jurisdiction.clone(),
            residency: None,
            placements: vec![],
            violations: vec![],
            guard: None,
            stale: None,
            history: histories
                .iter()
                .find(|h| h.namespace().as_deref() == Some(&namespace) && h.name_any() == name)
                .and_then(|h| h.status.clone()),
        };
        if let Ok(jurisdiction) = Jurisdiction::parse(&rdc.spec.jurisdiction) {
            report.guard = guards.as_ref().map(|inputs| {
                let labels = inputs
                    .namespaces
                    .iter()
                    .find(|ns| ns.name_any() == namespace)
                    .and_then(|ns| ns.metadata.labels.as_ref());
                let neighbours: Vec<(String, Jurisdiction)> = jurisdictions
                    .iter()
                    .filter(|(ns, _, _)| *ns == namespace)
                    .map(|(_, name, j)| (name.clone(), j.clone()))
                    .collect();
                let policies: Vec<_> = inputs.policies.iter().collect();
                let bindings: Vec<_> = inputs.bindings.iter().collect();
                let assessment = guard::assess(&guard::Inputs {
                    namespace: &namespace,
                    namespace_labels: labels,
                    jurisdiction: &jurisdiction,
                    neighbours: &neighbours,
                    policies: &policies,
                    bindings: &bindings,
                    exempt_label,
                    labelling: guard::Labelling::Off,
                });
                ReportedGuard {
                    guarded: assessment.standing == guard::Standing::Enforced,
                    reason: assessment.standing.as_str().to_owned(),
                    message: assessment.message,
                    status: assessment.status,
                }
            });
            let observed = Observed {
                pods,
                claims,
                member_pods: pods,
                member_claims: claims,
                volumes: &cluster.volumes,
                nodes: &cluster.nodes,
                classes: &cluster.classes,
                snapshots: &cluster.snapshots_of(rdc),
                snapshot_classes: &cluster.snapshot_classes,
                backups: &cluster.velero.backups,
                schedules: &cluster.velero.schedules,
                storage_locations: &cluster.velero.storage_locations,
                snapshot_locations: &cluster.velero.snapshot_locations,
            };
            let audit = residency::audit(rdc, &jurisdiction, keys, &observed);
            report.residency = Some(audit.residency);
            report.placements = audit.placements;
            report.violations = audit
                .findings
                .into_iter()
                .map(|f| ReportedViolation {
                    kind: f.kind.to_owned(),
                    name: f.name,
                    reason: f.reason.as_str().to_owned(),
                    message: f.message,
                })
                .collect();
            report.stale = report.staleness(rdc);
        }
        reports.push(report);
    }
    reports.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(reports)
}

/// The exit code the reports call for.
pub fn exit_code(reports: &[Report]) -> u8 {
    if reports.iter().any(Report::breaks_residency) {
        EXIT_VIOLATIONS
    } else if reports.iter().any(|r| r.stale.is_some()) {
        EXIT_STALE
    } else {
        EXIT_COMPLIANT
    }
}

const COLUMNS: [&str; 7] = [
    "NAMESPACE",
    "NAME",
    "JURISDICTION",
    "RESIDENCY",
    "COMPLIANT",
    "VIOLATIONS",
    "GUARD",
];

/// One report as a row of the table.
fn row(r: &Report) -> [String; 7] {
    let compliant = r.placements.iter().filter(|p| p.compliant).count();
    [
        r.namespace.clone(),
        r.name.clone(),
        r.jurisdiction.clone(),
        r.residency
            .map_or("InvalidJurisdiction".to_owned(), |v| format!("{v:?}")),
        format!("{compliant}/{}", r.placements.len()),
        r.violations.len().to_string(),
        r.guard
            .as_ref()
            .map_or("Unknown".to_owned(), |g| g.reason.clone()),
    ]
}

/// The lines under the table about one report: each violation, and a guard not in force.
fn notes(r: &Report) -> Vec<String> {
    let mut lines: Vec<String> = r
        .violations
        .iter()
        .map(|v| {
            format!(
                "{}/{}: {} {} {}: {}",
                r.namespace, r.name, v.reason, v.kind, v.name, v.message
            )
        })
        .collect();
    if let Some(guard) = r.guard.as_ref().filter(|g| !g.guarded) {
        lines.push(format!(
            "{}/{}: guard {}: {}",
            r.namespace, r.name, guard.reason, guard.message
        ));
    }
    if let Some(stale) = &r.stale {
        lines.push(format!(
            "{}/{}: status stale: {stale}; if that lasts, the operator is stalled or behind (its \
             /readyz, its log, the DomicileReconcileStalled alert)",
            r.namespace, r.name
        ));
    }
    lines
}

/// A table in the manner of kubectl, then one line per violation.
pub fn table(reports: &[Report]) -> String {
    let rows: Vec<[String; 7]> = reports.iter().map(row).collect();
    let mut out = aligned(&COLUMNS.map(str::to_owned), &rows);
    for line in reports.iter().flat_map(notes) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The audit of one cluster of a fleet: its reports, or why it could not be audited.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterAudit {
    /// The kubeconfig context.
    pub cluster: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reports: Option<Vec<Report>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The exit code of a fleet: 2 when any cluster could not be audited, else that of all reports.
pub fn fleet_exit_code(clusters: &[ClusterAudit]) -> u8 {
    if clusters.iter().any(|c| c.reports.is_none()) {
        return EXIT_ERROR;
    }
    let all: Vec<Report> = clusters
        .iter()
        .flat_map(|c| c.reports.clone().unwrap_or_default())
        .collect();
    exit_code(&all)
}

/// One table across clusters, with a CLUSTER column; then the violations, and each cluster that
/// could not be audited with the reason.
pub fn fleet_table(clusters: &[ClusterAudit]) -> String {
    let header: [String; 8] =
        std::array::from_fn(|i| if i == 0 { "CLUSTER" } else { COLUMNS[i - 1] }.to_owned());
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for cluster in clusters {
        match &cluster.reports {
            Some(reports) => {
                for r in reports {
                    let [a, b, c, d, e, f, g] = row(r);
                    rows.push([cluster.cluster.clone(), a, b, c, d, e, f, g]);
                    lines.extend(
                        notes(r)
                            .into_iter()
                            .map(|l| format!("{}: {l}", cluster.cluster)),
                    );
                }
            }
            None => lines.push(format!(
                "{}: not audited: {}",
                cluster.cluster,
                cluster.error.as_deref().unwrap_or("unknown error")
            )),
        }
    }
    let mut out = aligned(&header, &rows);
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Rows under a header, in columns three spaces apart, as kubectl prints them.
pub fn aligned<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> String {
    let mut widths = header.clone().map(|h| h.len());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

fn shared<K>(items: Vec<K>) -> Vec<Arc<K>> {
    items.into_iter().map(Arc::new).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(residency: Option<Residency>, violations: usize) -> Report {
        Report {
            namespace: "fleet-cn".to_owned(),
            name: "vehicle-data".to_owned(),
            jurisdiction: "CN".to_owned(),
            residency,
            placements: vec![Placement {
                pod: "vehicle-data-0".to_owned(),
                owner: None,
                node: Some("cn-1".to_owned()),
                node_jurisdiction: Some("CN".to_owned()),
                volume: None,
                volume_node: None,
                compliant: violations == 0,
            }],
            violations: (0..violations)
                .map(|i| ReportedViolation {
                    kind: "Pod".to_owned(),
                    name: format!("vehicle-data-{i}"),
                    reason: "NodeOutsideJurisdiction".to_owned(),
                    message: "pod on de-1".to_owned(),
                })
                .collect(),
            guard: Some(ReportedGuard {
                guarded: false,
                reason: "NamespaceNotLabelled".to_owned(),
                message: "label it".to_owned(),
                status: GuardStatus::default(),
            }),
            stale: None,
            history: None,
        }
    }

    #[test]
    fn a_status_that_disagrees_with_the_audit_is_called_stale() {
        use crate::api::{RegionalDataCenterStatus, Violation};
        use crate::resources::fixtures::rdc;
        let audited = report(Some(Residency::Violated), 1);
        let mut resource = rdc("CN", 1);
        assert_eq!(
            audited.staleness(&resource).as_deref(),
            Some("the operator has written no status")
        );
        // A quiet operator: the status says what the audit finds.
        let current = RegionalDataCenterStatus {
            observed_generation: Some(1),
            residency: Some(Residency::Violated),
            violations: vec![Violation {
                kind: "Pod".to_owned(),
                name: "vehicle-data-0".to_owned(),
                reason: "NodeOutsideJurisdiction".to_owned(),
                message: "on de-1".to_owned(),
                since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    jiff::Timestamp::UNIX_EPOCH,
                ),
            }],
            ..Default::default()
        };
        resource.status = Some(current.clone());
        assert_eq!(audited.staleness(&resource), None);
        // A stalled one: the status still says Compliant, or describes an older generation.
        resource.status = Some(RegionalDataCenterStatus {
            residency: Some(Residency::Compliant),
            violations: vec![],
            ..current.clone()
        });
        assert_eq!(
            audited.staleness(&resource).as_deref(),
            Some("the status says Compliant, the audit finds Violated")
        );
        resource.metadata.generation = Some(2);
        resource.status = Some(current);
        assert!(
            audited
                .staleness(&resource)
                .is_some_and(|s| s.contains("generation 1, the resource is at 2"))
        );
        let stale = Report {
            stale: Some("the status says Compliant, the audit finds Compliant".to_owned()),
            ..report(Some(Residency::Compliant), 0)
        };
        assert_eq!(exit_code(std::slice::from_ref(&stale)), EXIT_STALE);
        assert_eq!(
            exit_code(&[stale, report(Some(Residency::Violated), 1)]),
            EXIT_VIOLATIONS
        );
    }

    #[test]
    fn compliant_and_pending_exit_zero() {
        assert_eq!(exit_code(&[]), EXIT_COMPLIANT);
        assert_eq!(
            exit_code(&[
                report(Some(Residency::Compliant), 0),
                report(Some(Residency::Pending), 0)
            ]),
            EXIT_COMPLIANT
        );
    }

    #[test]
    fn violated_unverifiable_or_invalid_exit_non_zero() {
        for residency in [
            Some(Residency::Violated),
            Some(Residency::Unverifiable),
            None,
        ] {
            assert_eq!(
                exit_code(&[report(Some(Residency::Compliant), 0), report(residency, 1)]),
                EXIT_VIOLATIONS
            );
        }
    }

    #[test]
    fn table_has_a_row_per_data_centre_and_a_line_per_violation_and_unguarded_namespace() {
        let text = table(&[report(Some(Residency::Violated), 1)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("NAMESPACE"), "{text}");
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            row,
            [
                "fleet-cn",
                "vehicle-data",
                "CN",
                "Violated",
                "0/1",
                "1",
                "NamespaceNotLabelled"
            ]
        );
        assert_eq!(
            lines[2],
            "fleet-cn/vehicle-data: NodeOutsideJurisdiction Pod vehicle-data-0: pod on de-1"
        );
        assert_eq!(
            lines[3],
            "fleet-cn/vehicle-data: guard NamespaceNotLabelled: label it"
        );
        let guarded = Report {
            guard: None,
            ..report(Some(Residency::Compliant), 0)
        };
        let text = table(&[guarded]);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.lines().nth(1).is_some_and(|l| l.ends_with("Unknown")));
    }

    #[test]
    fn a_fleet_table_names_each_cluster_and_an_unreachable_one_exits_2() {
        let audited = |cluster: &str, residency| ClusterAudit {
            cluster: cluster.to_owned(),
            reports: Some(vec![report(Some(residency), 0)]),
            error: None,
        };
        let gone = ClusterAudit {
            cluster: "gone".to_owned(),
            reports: None,
            error: Some("connection refused".to_owned()),
        };
        let fleet = [
            audited("cn", Residency::Compliant),
            audited("de", Residency::Compliant),
        ];
        assert_eq!(fleet_exit_code(&fleet), EXIT_COMPLIANT);
        let text = fleet_table(&fleet);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("CLUSTER   NAMESPACE"), "{text}");
        assert!(lines[1].starts_with("cn        fleet-cn"), "{text}");
        assert!(lines[2].starts_with("de        fleet-cn"), "{text}");
        assert_eq!(
            fleet_exit_code(&[audited("cn", Residency::Violated), fleet[1].clone()]),
            EXIT_VIOLATIONS
        );
        let with_gone = [audited("cn", Residency::Violated), gone];
        assert_eq!(fleet_exit_code(&with_gone), EXIT_ERROR);
        let text = fleet_table(&with_gone);
        assert!(
            text.contains("gone: not audited: connection refused"),
            "{text}"
        );
        assert!(
            text.lines().nth(1).is_some_and(|l| l.starts_with("cn ")),
            "{text}"
        );
    }
}
