//! Residency history: from one status to the next, which stays and violations began and which
//! ended. Pure code; `controller::history` writes the result.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{Episode, RegionalDataCenterStatus, ResidencyHistoryStatus, Stay};

/// At most this many stays and this many violations are kept; beyond, the oldest closed entries
/// go first (then, if every entry is open, the oldest), and `trimmed` counts them.
pub const MAX_ENTRIES: usize = 200;

/// A stay as the current status shows it, without its times.
#[derive(Clone, Debug, PartialEq)]
struct Current {
    kind: &'static str,
    name: String,
    node: Option<String>,
    class: Option<String>,
    jurisdiction: Option<String>,
    inside: bool,
}

fn same_place(stay: &Stay, current: &Current) -> bool {
    stay.kind == current.kind
        && stay.name == current.name
        && stay.node == current.node
        && stay.class == current.class
        && stay.jurisdiction == current.jurisdiction
        && stay.inside == current.inside
}

/// The history after `status`, seen at `now`: stays no longer true end, new ones begin; the
/// same for violations (a new one begins when the status says it was first seen). `node_label`
/// gives a node's jurisdiction label now. None when nothing changed, so nothing is written.
pub fn record(
    history: &ResidencyHistoryStatus,
    status: &RegionalDataCenterStatus,
    node_label: impl Fn(&str) -> Option<String>,
    now: jiff::Timestamp,
) -> Option<ResidencyHistoryStatus> {
    let violated = |kind: &str, name: &str| {
        status
            .violations
            .iter()
            .any(|v| v.kind == kind && v.name == name)
    };
    let mut current = Vec::new();
    for placement in &status.placements {
        if let Some(node) = &placement.node {
            current.push(Current {
                kind: "Pod",
                name: placement.pod.clone(),
                node: Some(node.clone()),
                class: None,
                jurisdiction: placement.node_jurisdiction.clone(),
                inside: !violated("Pod", &placement.pod),
            });
        }
        if let Some(volume) = &placement.volume {
            current.push(Current {
                kind: "PersistentVolume",
                name: volume.clone(),
                node: placement.volume_node.clone(),
                class: None,
                jurisdiction: placement.volume_node.as_deref().and_then(&node_label),
                inside: !violated("PersistentVolume", volume),
            });
        }
    }
    // Copies of the data stay where their class keeps them, from when they are taken until they
    // are deleted.
    for copy in &status.copies {
        current.push(Current {
            kind: match copy.kind.as_str() {
                "Backup" => "Backup",
                "Schedule" => "Schedule",
                _ => "VolumeSnapshot",
            },
            name: copy.name.clone(),
            node: None,
            class: copy.class.clone(),
            jurisdiction: copy.jurisdiction.clone(),
            inside: copy.inside && !violated(&copy.kind, &copy.name),
        });
    }

    let mut next = history.clone();
    let now = Time(now);
    for stay in next.stays.iter_mut().filter(|s| s.to.is_none()) {
        if !current.iter().any(|c| same_place(stay, c)) {
            stay.to = Some(now.clone());
        }
    }
    for place in current {
        let open = next
            .stays
            .iter()
            .any(|s| s.to.is_none() && same_place(s, &place));
        if !open {
            next.stays.push(Stay {
                kind: place.kind.to_owned(),
                name: place.name,
                node: place.node,
                class: place.class,
                jurisdiction: place.jurisdiction,
                inside: place.inside,
                from: now.clone(),
                to: None,
            });
        }
    }

    let same = |episode: &Episode, v: &crate::api::Violation| {
        episode.kind == v.kind && episode.name == v.name && episode.reason == v.reason
    };
    for episode in next.violations.iter_mut().filter(|e| e.to.is_none()) {
        if !status.violations.iter().any(|v| same(episode, v)) {
            episode.to = Some(now.clone());
        }
    }
    for violation in &status.violations {
        let open = next
            .violations
            .iter()
            .any(|e| e.to.is_none() && same(e, violation));
        if !open {
            next.violations.push(Episode {
                kind: violation.kind.clone(),
                name: violation.name.clone(),
                reason: violation.reason.clone(),
                message: violation.message.clone(),
                from: violation.since.clone(),
                to: None,
            });
        }
    }

    next.trimmed += trim(&mut next.stays, |s| s.to.is_some(), |s| &s.from)
        + trim(&mut next.violations, |e| e.to.is_some(), |e| &e.from);
    next.stay_count = i64::try_from(next.stays.len()).unwrap_or(i64::MAX);
    next.violation_count = i64::try_from(next.violations.len()).unwrap_or(i64::MAX);
    (next != *history).then_some(next)
}

/// Drops entries beyond `MAX_ENTRIES`: the oldest closed ones first, then the oldest. Returns
/// how many went.
fn trim<T>(entries: &mut Vec<T>, closed: impl Fn(&T) -> bool, from: impl Fn(&T) -> &Time) -> i64 {
    let mut dropped = 0;
    while entries.len() > MAX_ENTRIES {
        let oldest = |only_closed: bool| {
            entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !only_closed || closed(e))
                .min_by_key(|(_, e)| from(e).0)
                .map(|(i, _)| i)
        };
        let Some(index) = oldest(true).or_else(|| oldest(false)) else {
            break;
        };
        entries.remove(index);
        dropped += 1;
    }
    dropped
}

/// A time as the tables print it: RFC 3339 in UTC, to the second.
pub fn time_text(time: &Time) -> String {
    time.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The end of a span: its time, or `now` while it lasts.
pub fn until_text(time: Option<&Time>) -> String {
    time.map_or_else(|| "now".to_owned(), time_text)
}

/// `domicile history`: the stays, then the violations, oldest first, as kubectl prints tables.
pub fn table(namespace: &str, name: &str, history: &ResidencyHistoryStatus) -> String {
    let time = time_text;
    let until = |t: &Option<Time>| until_text(t.as_ref());
    let mut out = format!(
        "ResidencyHistory {namespace}/{name}: {} stays, {} violations, {} older entries trimmed\n\n",
        history.stays.len(),
        history.violations.len(),
        history.trimmed
    );
    let header = [
        "KIND",
        "NAME",
        "NODE",
        "JURISDICTION",
        "INSIDE",
        "FROM",
        "TO",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 7]> = history
        .stays
        .iter()
        .map(|s| {
            [
                s.kind.clone(),
                s.name.clone(),
                match (&s.node, &s.class) {
                    (Some(node), _) => node.clone(),
                    (None, Some(class)) => format!("class {class}"),
                    (None, None) => "-".to_owned(),
                },
                s.jurisdiction.clone().unwrap_or_else(|| "-".to_owned()),
                if s.inside { "yes" } else { "NO" }.to_owned(),
                time(&s.from),
                until(&s.to),
            ]
        })
        .collect();
    out.push_str(&crate::audit::aligned(&header, &rows));
    if history.violations.is_empty() {
        out.push_str("\nNo violation recorded.\n");
        return out;
    }
    out.push('\n');
    let header = ["KIND", "NAME", "REASON", "FROM", "TO"].map(str::to_owned);
    let rows: Vec<[String; 5]> = history
        .violations
        .iter()
        .map(|e| {
            [
                e.kind.clone(),
                e.name.clone(),
                e.reason.clone(),
                time(&e.from),
                until(&e.to),
            ]
        })
        .collect();
    out.push_str(&crate::audit::aligned(&header, &rows));
    for e in &history.violations {
        out.push_str(&format!(
            "{} {} ({}): {}\n",
            e.kind,
            e.name,
            time(&e.from),
            e.message
        ));
    }
    out
}

#[cfg(test)]
mod tests;
