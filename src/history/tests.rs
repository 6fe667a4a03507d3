use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::{DataCopy, Placement, Violation};

fn at(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(seconds).expect("a valid time")
}

fn status(
    node_jurisdiction: &str,
    violations: &[(&str, &str, &str, i64)],
) -> RegionalDataCenterStatus {
    RegionalDataCenterStatus {
        placements: vec![Placement {
            pod: "ledger-0".to_owned(),
            owner: None,
            node: Some("cn-1".to_owned()),
            node_jurisdiction: Some(node_jurisdiction.to_owned()),
            volume: Some("pv-0".to_owned()),
            volume_node: Some("cn-1".to_owned()),
            compliant: violations.is_empty(),
        }],
        violations: violations
            .iter()
            .map(|(kind, name, reason, since)| Violation {
                kind: (*kind).to_owned(),
                name: (*name).to_owned(),
                reason: (*reason).to_owned(),
                message: format!("{name} is {reason}"),
                since: Time(at(*since)),
            })
            .collect(),
        ..RegionalDataCenterStatus::default()
    }
}

/// A stay as (name, jurisdiction, inside, from, to).
type Span = (String, Option<String>, bool, i64, Option<i64>);

fn spans(history: &ResidencyHistoryStatus) -> Vec<Span> {
    history
        .stays
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.jurisdiction.clone(),
                s.inside,
                s.from.0.as_second(),
                s.to.as_ref().map(|t| t.0.as_second()),
            )
        })
        .collect()
}

#[test]
fn a_relabel_and_back_gives_both_intervals_and_the_violations_between() {
    let label = std::cell::RefCell::new("CN".to_owned());
    let node_label = |_: &str| Some(label.borrow().clone());
    let start = record(
        &ResidencyHistoryStatus::default(),
        &status("CN", &[]),
        node_label,
        at(10),
    )
    .expect("the first stays are recorded");
    assert_eq!(
        spans(&start),
        [
            ("ledger-0".to_owned(), Some("CN".to_owned()), true, 10, None),
            ("pv-0".to_owned(), Some("CN".to_owned()), true, 10, None),
        ]
    );
    // Nothing changed: nothing to write.
    assert_eq!(record(&start, &status("CN", &[]), node_label, at(15)), None);

    *label.borrow_mut() = "US".to_owned();
    let outside = status(
        "US",
        &[
            ("Pod", "ledger-0", "NodeOutsideJurisdiction", 19),
            ("PersistentVolume", "pv-0", "DataOutsideJurisdiction", 19),
        ],
    );
    let relabelled = record(&start, &outside, node_label, at(20)).expect("changed");
    *label.borrow_mut() = "CN".to_owned();
    let back = record(&relabelled, &status("CN", &[]), node_label, at(30)).expect("changed");
    let stays = spans(&back);
    let pod: Vec<_> = stays
        .iter()
        .filter(|s| s.0 == "ledger-0")
        .cloned()
        .collect();
    assert_eq!(
        pod,
        [
            (
                "ledger-0".to_owned(),
                Some("CN".to_owned()),
                true,
                10,
                Some(20)
            ),
            (
                "ledger-0".to_owned(),
                Some("US".to_owned()),
                false,
                20,
                Some(30)
            ),
            ("ledger-0".to_owned(), Some("CN".to_owned()), true, 30, None),
        ]
    );
    let episodes: Vec<_> = back
        .violations
        .iter()
        .map(|e| {
            (
                e.kind.as_str(),
                e.reason.as_str(),
                e.from.0.as_second(),
                e.to.as_ref().map(|t| t.0.as_second()),
            )
        })
        .collect();
    assert_eq!(
        episodes,
        [
            ("Pod", "NodeOutsideJurisdiction", 19, Some(30)),
            ("PersistentVolume", "DataOutsideJurisdiction", 19, Some(30)),
        ]
    );
    assert_eq!(
        (back.stay_count, back.violation_count, back.trimmed),
        (6, 2, 0)
    );
}

#[test]
fn a_copy_stays_where_its_class_keeps_it_from_when_it_is_taken_until_it_is_deleted() {
    let node_label = |_: &str| Some("CN".to_owned());
    let start = record(
        &ResidencyHistoryStatus::default(),
        &status("CN", &[]),
        node_label,
        at(10),
    )
    .expect("the first stays");
    let mut taken = status(
        "CN",
        &[("VolumeSnapshot", "nightly", "CopyOutsideJurisdiction", 19)],
    );
    taken.copies = vec![DataCopy {
        kind: "VolumeSnapshot".to_owned(),
        name: "nightly".to_owned(),
        source: "data-ledger-0".to_owned(),
        class: Some("snap-us".to_owned()),
        jurisdiction: Some("US".to_owned()),
        inside: false,
    }];
    let with_copy = record(&start, &taken, node_label, at(20)).expect("the copy is recorded");
    let copy = with_copy
        .stays
        .iter()
        .find(|s| s.kind == "VolumeSnapshot")
        .expect("a stay of the copy");
    assert_eq!(
        (
            copy.name.as_str(),
            copy.class.as_deref(),
            copy.node.as_deref(),
            copy.jurisdiction.as_deref(),
            copy.inside,
            copy.from.0.as_second(),
            copy.to.is_none()
        ),
        (
            "nightly",
            Some("snap-us"),
            None,
            Some("US"),
            false,
            20,
            true
        )
    );
    assert_eq!(record(&with_copy, &taken, node_label, at(25)), None);

    let deleted = record(&with_copy, &status("CN", &[]), node_label, at(30)).expect("changed");
    let ends: Vec<_> = spans(&deleted)
        .into_iter()
        .filter(|s| s.0 == "nightly")
        .collect();
    assert_eq!(
        ends,
        [(
            "nightly".to_owned(),
            Some("US".to_owned()),
            false,
            20,
            Some(30)
        )]
    );
    assert_eq!(
        deleted.violations[0].to.as_ref().map(|t| t.0.as_second()),
        Some(30)
    );
    let table = table("fleet", "ledger", &deleted);
    assert!(table.contains("class snap-us"), "{table}");
}

#[test]
fn beyond_the_bound_the_oldest_closed_entries_go_first() {
    let mut history = ResidencyHistoryStatus::default();
    let mut label = "CN";
    for step in 0..150 {
        label = if label == "CN" { "US" } else { "CN" };
        let current = label.to_owned();
        history = record(
            &history,
            &status(label, &[]),
            |_| Some(current.clone()),
            at(step),
        )
        .expect("every relabel changes the stays");
    }
    assert_eq!(history.stays.len(), MAX_ENTRIES);
    assert_eq!(history.trimmed, 300 - 200);
    // The open stays are the newest, and they were kept.
    assert_eq!(history.stays.iter().filter(|s| s.to.is_none()).count(), 2);
    assert!(history.stays.iter().all(|s| s.from.0.as_second() >= 50));
}
