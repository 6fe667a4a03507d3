//! `domicile audit`: a read-only verdict for auditors and CI, computed from the cluster itself
//! with the same pure audit as the operator, never from the RegionalDataCenters' status.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use serde::Serialize;

use crate::api::jurisdiction::Jurisdiction;
use crate::api::{Placement, RegionalDataCenter, Residency};
use crate::controller::pods_and_claims;
use crate::residency::{self, Observed};
use crate::resources::NodeLabelKeys;

/// Exit code when every data centre is compliant (or has nothing placed yet).
pub const EXIT_COMPLIANT: u8 = 0;
/// Exit code when any violation or unverifiable placement exists.
pub const EXIT_VIOLATIONS: u8 = 1;
/// Exit code when the audit could not be carried out (no cluster, no permission, ...).
pub const EXIT_ERROR: u8 = 2;

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
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportedViolation {
    pub kind: String,
    pub name: String,
    pub reason: String,
    pub message: String,
}

impl Report {
    fn breaks_residency(&self) -> bool {
        matches!(
            self.residency,
            Some(Residency::Violated | Residency::Unverifiable) | None
        )
    }
}

/// Reads every RegionalDataCenter (of `namespace`, or of all namespaces) and audits it.
pub async fn audit_cluster(
    client: Client,
    keys: &NodeLabelKeys,
    namespace: Option<&str>,
) -> anyhow::Result<Vec<Report>> {
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
    let mut reports = Vec::new();
    for rdc in rdcs.list(&all).await?.items {
        let namespace = rdc.namespace().unwrap_or_default();
        let name = rdc.name_any();
        let mut report = Report {
            namespace: namespace.clone(),
            name: name.clone(),
            jurisdiction: rdc.spec.jurisdiction.clone(),
            residency: None,
            placements: vec![],
            violations: vec![],
        };
        if let Ok(jurisdiction) = Jurisdiction::parse(&rdc.spec.jurisdiction) {
            let (pods, claims) = pods_and_claims(&client, &namespace, &name).await?;
            let observed = Observed {
                pods: &pods,
                claims: &claims,
                volumes: &volumes,
                nodes: &nodes,
                classes: &classes,
            };
            let audit = residency::audit(&rdc, &jurisdiction, keys, &observed);
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
    } else {
        EXIT_COMPLIANT
    }
}

/// A table in the manner of kubectl, then one line per violation.
pub fn table(reports: &[Report]) -> String {
    let residency = |r: &Report| {
        r.residency
            .map_or("InvalidJurisdiction".to_owned(), |v| format!("{v:?}"))
    };
    let rows: Vec<[String; 6]> = reports
        .iter()
        .map(|r| {
            let compliant = r.placements.iter().filter(|p| p.compliant).count();
            [
                r.namespace.clone(),
                r.name.clone(),
                r.jurisdiction.clone(),
                residency(r),
                format!("{compliant}/{}", r.placements.len()),
                r.violations.len().to_string(),
            ]
        })
        .collect();
    let header = [
        "NAMESPACE",
        "NAME",
        "JURISDICTION",
        "RESIDENCY",
        "COMPLIANT",
        "VIOLATIONS",
    ]
    .map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    for r in reports {
        for v in &r.violations {
            out.push_str(&format!(
                "{}/{}: {} {} {}: {}\n",
                r.namespace, r.name, v.reason, v.kind, v.name, v.message
            ));
        }
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
        }
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
    fn table_has_a_row_per_data_centre_and_a_line_per_violation() {
        let text = table(&[report(Some(Residency::Violated), 1)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("NAMESPACE"), "{text}");
        let row: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            row,
            ["fleet-cn", "vehicle-data", "CN", "Violated", "0/1", "1"]
        );
        assert_eq!(
            lines[2],
            "fleet-cn/vehicle-data: NodeOutsideJurisdiction Pod vehicle-data-0: pod on de-1"
        );
    }
}
