//! `domicile status` (and `kubectl domicile status`): one screen on one RegionalDataCenter, from
//! its status and its residency history: where it is, what is wrong, what happened.

use crate::api::{RegionalDataCenter, ResidencyHistoryStatus};
use crate::audit::aligned;
use crate::history::{time_text, until_text};

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
                time_text(&v.since),
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
                    time_text(&last.from),
                    until_text(last.to.as_ref())
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

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::api::{Episode, Placement, RegionalDataCenterStatus, Residency, Violation};
    use crate::resources::fixtures::rdc;

    #[test]
    fn one_screen_says_where_it_is_what_is_wrong_and_what_happened() {
        let at = |s| Time(jiff::Timestamp::from_second(s).expect("a time"));
        let mut cn = rdc("CN", 1);
        cn.metadata.namespace = Some("fleet-cn".to_owned());
        cn.status = Some(RegionalDataCenterStatus {
            residency: Some(Residency::Violated),
            ready: Some("1/1".to_owned()),
            placements: vec![Placement {
                pod: "vehicle-data-0".to_owned(),
                owner: None,
                node: Some("cn-1".to_owned()),
                node_jurisdiction: Some("US".to_owned()),
                volume: None,
                volume_node: None,
                compliant: false,
            }],
            violations: vec![Violation {
                kind: "Pod".to_owned(),
                name: "vehicle-data-0".to_owned(),
                reason: "NodeOutsideJurisdiction".to_owned(),
                message: "pod on cn-1, outside CN".to_owned(),
                since: at(60),
            }],
            ..RegionalDataCenterStatus::default()
        });
        let history = ResidencyHistoryStatus {
            violations: vec![Episode {
                kind: "Pod".to_owned(),
                name: "vehicle-data-0".to_owned(),
                reason: "NodeOutsideJurisdiction".to_owned(),
                message: String::new(),
                from: at(60),
                to: None,
            }],
            ..ResidencyHistoryStatus::default()
        };
        let screen = status_screen(&cn, Some(&history));
        let lines: Vec<&str> = screen.lines().collect();
        assert_eq!(
            lines[0],
            "RegionalDataCenter fleet-cn/vehicle-data: jurisdiction CN, residency Violated, phase -, ready 1/1"
        );
        assert!(
            lines
                .contains(&"vehicle-data-0   cn-1   US                  -        -             NO"),
            "{screen}"
        );
        assert!(
            lines.contains(
                &"NodeOutsideJurisdiction Pod vehicle-data-0 since 1970-01-01T00:01:00Z: pod on cn-1, outside CN"
            ),
            "{screen}"
        );
        assert!(
            screen.contains(
                "History: 0 stays, 1 violations (1 open), 0 older entries trimmed; last: NodeOutsideJurisdiction \
                 Pod vehicle-data-0 from 1970-01-01T00:01:00Z to now"
            ),
            "{screen}"
        );
        assert!(status_screen(&cn, None).contains("History: none recorded yet"));
    }
}
