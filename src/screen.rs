//! `domicile status` (and `kubectl domicile status`): one screen on one RegionalDataCenter, from
//! its status and its residency history: where it is, what is wrong, what happened.

use crate::api::{RegionalDataCenter, ResidencyHistoryStatus};
use crate::audit::aligned;

/// The screen of `rdc`, with the summary of its history when there is one.
pub fn status_screen(rdc: &RegionalDataCenter, history: Option<&ResidencyHistoryStatus>) -> String {
    let status = rdc.status.clone().unwrap_or_default();
    let text = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
    let mut out = format!(
        "RegionalDataCenter {}/{}: jurisdiction {}, residency {}, phase {}, ready {}\n",
        rdc.metadata.namespace.as_deref().unwrap_or_default(),
        rdc.metadata.name.as_deref().unwrap_or_default(),
        rdc.spec.jurisdiction,
        text(status.residency.map(|r| format!("{r:?}"))),
        text(status.phase.map(|p| format!("{p:?}"))),
        text(status.ready.clone()),
    );
    if let Some(guard) = status
        .conditions
        .iter()
        .find(|c| c.type_ == "AdmissionGuarded")
    {
        out.push_str(&format!(
            "Admission guard: {} ({})\n",
            guard.reason, guard.message
        ));
    }

    out.push_str("\nPlacements\n");
    let header = [
        "POD",
        "NODE",
        "NODE JURISDICTION",
        "VOLUME",
        "VOLUME NODE",
        "COMPLIANT",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 6]> = status
        .placements
        .iter()
        .map(|p| {
            [
                p.pod.clone(),
                text(p.node.clone()),
                text(p.node_jurisdiction.clone()),
                text(p.volume.clone()),
                text(p.volume_node.clone()),
                if p.compliant { "yes" } else { "NO" }.to_owned(),
            ]
        })
        .collect();
    out.push_str(&aligned(&header, &rows));

    if status.violations.is_empty() {
        out.push_str("\nViolations: none\n");
    } else {
        out.push_str("\nViolations\n");
        for v in &status.violations {
            out.push_str(&format!(
                "{} {} {} since {}: {}\n",
                v.reason,
                v.kind,
                v.name,
                v.since.0.strftime("%Y-%m-%dT%H:%M:%SZ"),
                v.message
            ));
        }
    }

    out.push_str("\nConditions\n");
    for c in &status.conditions {
        out.push_str(&format!(
            "{}={} {}: {}\n",
            c.type_, c.status, c.reason, c.message
        ));
    }

    out.push('\n');
    match history {
        None => out.push_str("History: none recorded yet\n"),
        Some(history) => {
            let open = history.violations.iter().filter(|e| e.to.is_none()).count();
            out.push_str(&format!(
                "History: {} stays, {} violations ({open} open), {} older entries trimmed",
                history.stays.len(),
                history.violations.len(),
                history.trimmed
            ));
            if let Some(last) = history.violations.last() {
                out.push_str(&format!(
                    "; last: {} {} {} from {} to {}",
                    last.reason,
                    last.kind,
                    last.name,
                    last.from.0.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    last.to.as_ref().map_or_else(
                        || "now".to_owned(),
                        |t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
                    )
                ));
            }
            out.push_str(&format!(
                "\n(domicile history {} -n {} shows all of it)\n",
                rdc.metadata.name.as_deref().unwrap_or_default(),
                rdc.metadata.namespace.as_deref().unwrap_or_default()
            ));
        }
    }
    out
}
