use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::{DataCopy, Placement, Violation};
use crate::resources::fixtures::rdc;

fn at(seconds: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(seconds).expect("a valid time")
}

fn placement(ordinal: u8, node: &str, volume_node: Option<&str>) -> Placement {
    Placement {
        pod: format!("vehicle-data-{ordinal}"),
        owner: None,
        node: Some(node.to_owned()),
        node_jurisdiction: Some("CN".to_owned()),
        volume: Some(format!("pv-{ordinal}")),
        volume_node: volume_node.map(str::to_owned),
        compliant: true,
    }
}

fn violation(kind: &str, name: &str, reason: &str) -> Violation {
    Violation {
        kind: kind.to_owned(),
        name: name.to_owned(),
        reason: reason.to_owned(),
        message: format!("{kind} {name} is {reason}"),
        since: Time(at(1)),
    }
}

fn status(placements: Vec<Placement>, violations: Vec<Violation>) -> RegionalDataCenterStatus {
    RegionalDataCenterStatus {
        placements,
        violations,
        ..RegionalDataCenterStatus::default()
    }
}

fn verdicts(report: &ReportBody) -> Vec<(String, String, String)> {
    report
        .results
        .iter()
        .map(|r| {
            (
                r.rule.clone(),
                r.resources[0].name.clone(),
                r.result.clone(),
            )
        })
        .collect()
}

#[test]
fn one_result_per_pod_and_volume_with_pass_fail_and_warn() {
    let mut cn = rdc("CN", 2);
    cn.metadata.namespace = Some("fleet".to_owned());
    let status = status(
        vec![
            placement(0, "cn-1", Some("cn-1")),
            placement(1, "us-1", None),
        ],
        vec![
            violation("Pod", "vehicle-data-1", "NodeOutsideJurisdiction"),
            violation("PersistentVolume", "pv-1", "Unverifiable"),
            // A volume no replica's claim is bound to.
            violation("PersistentVolume", "stray", "DataOutsideJurisdiction"),
        ],
    );
    let report = build([(&cn, Some(&status))], vec![], None, at(100));
    assert_eq!(
        verdicts(&report),
        [
            ("pod-node-jurisdiction", "vehicle-data-0", "pass"),
            ("pod-node-jurisdiction", "vehicle-data-1", "fail"),
            ("volume-node-jurisdiction", "pv-0", "pass"),
            ("volume-node-jurisdiction", "pv-1", "warn"),
            ("volume-node-jurisdiction", "stray", "fail"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    assert_eq!(
        report.summary,
        Summary {
            pass: 2,
            fail: 2,
            warn: 1,
            ..Summary::default()
        }
    );
    let pod = &report.results[1];
    assert_eq!(pod.message, "Pod vehicle-data-1 is NodeOutsideJurisdiction");
    assert_eq!(pod.resources[0].namespace.as_deref(), Some("fleet"));
    assert_eq!(pod.properties["reason"], "NodeOutsideJurisdiction");
    assert_eq!(pod.properties["regionalDataCenter"], "vehicle-data");
    assert_eq!(report.results[2].resources[0].namespace, None);
    assert_eq!(
        report.results[0].message,
        "pod vehicle-data-0 runs on node cn-1, inside CN"
    );
    assert!(report.results.iter().all(|r| r.timestamp.seconds == 100));
}

#[test]
fn unchanged_results_keep_their_time_so_a_rebuilt_report_is_equal() {
    let cn = rdc("CN", 1);
    let compliant = status(vec![placement(0, "cn-1", Some("cn-1"))], vec![]);
    let first = build([(&cn, Some(&compliant))], vec![], None, at(100));
    let again = build(
        [(&cn, Some(&compliant))],
        vec![],
        Some(&Kept::of(&first.results)),
        at(200),
    );
    assert_eq!(again, first);

    // The pod's node turns out of the jurisdiction: only its result changes, and its time.
    let violated = status(
        vec![placement(0, "cn-1", Some("cn-1"))],
        vec![violation(
            "Pod",
            "vehicle-data-0",
            "NodeOutsideJurisdiction",
        )],
    );
    let changed = build(
        [(&cn, Some(&violated))],
        vec![],
        Some(&Kept::of(&again.results)),
        at(300),
    );
    assert_eq!(changed.results[0].result, "fail");
    assert_eq!(changed.results[0].timestamp.seconds, 300);
    assert_eq!(changed.results[1].timestamp.seconds, 100);
    // And back: a pass again, at the time it came back.
    let back = build(
        [(&cn, Some(&compliant))],
        vec![],
        Some(&Kept::of(&changed.results)),
        at(400),
    );
    assert_eq!(back.results[0].result, "pass");
    assert_eq!(back.results[0].timestamp.seconds, 400);
}

#[test]
fn data_centres_without_status_or_placement_give_no_result() {
    let cn = rdc("CN", 1);
    let unplaced = status(
        vec![Placement {
            pod: "vehicle-data-0".to_owned(),
            owner: None,
            node: None,
            node_jurisdiction: None,
            volume: None,
            volume_node: None,
            compliant: false,
        }],
        vec![],
    );
    assert_eq!(
        build([(&cn, None)], vec![], None, at(1)),
        ReportBody::default()
    );
    assert_eq!(
        build([(&cn, Some(&unplaced))], vec![], None, at(1)),
        ReportBody::default()
    );
}

#[test]
fn a_copy_of_the_data_outside_or_unverifiable_is_a_result_of_its_own_rule() {
    let mut cn = rdc("CN", 1);
    cn.metadata.namespace = Some("fleet".to_owned());
    let status = status(
        vec![placement(0, "cn-1", Some("cn-1"))],
        vec![
            violation("VolumeSnapshot", "nightly", "CopyOutsideJurisdiction"),
            violation("VolumeSnapshot", "adhoc", "Unverifiable"),
        ],
    );
    let report = build([(&cn, Some(&status))], vec![], None, at(100));
    assert_eq!(
        verdicts(&report),
        [
            ("copy-jurisdiction", "adhoc", "warn"),
            ("copy-jurisdiction", "nightly", "fail"),
            ("pod-node-jurisdiction", "vehicle-data-0", "pass"),
            ("volume-node-jurisdiction", "pv-0", "pass"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    let copy = &report.results[1].resources[0];
    assert_eq!(copy.api_version, "snapshot.storage.k8s.io/v1");
    assert_eq!(copy.kind, "VolumeSnapshot");
    assert_eq!(copy.namespace.as_deref(), Some("fleet"));
    assert_eq!(
        report.results[1].properties["reason"],
        "CopyOutsideJurisdiction"
    );
}

#[test]
fn a_copy_kept_inside_passes_and_one_outside_is_reported_once() {
    let cn = rdc("CN", 1);
    let copy = |name: &str, class: &str, jurisdiction: &str| DataCopy {
        kind: "VolumeSnapshot".to_owned(),
        name: name.to_owned(),
        source: "data-vehicle-data-0".to_owned(),
        class: Some(class.to_owned()),
        jurisdiction: Some(jurisdiction.to_owned()),
        inside: jurisdiction == "CN",
    };
    let mut status = status(
        vec![placement(0, "cn-1", Some("cn-1"))],
        vec![violation(
            "VolumeSnapshot",
            "nightly",
            "CopyOutsideJurisdiction",
        )],
    );
    status.copies = vec![
        copy("daily", "snap-cn", "CN"),
        copy("nightly", "snap-us", "US"),
    ];
    let report = build([(&cn, Some(&status))], vec![], None, at(100));
    let copies: Vec<_> = verdicts(&report)
        .into_iter()
        .filter(|(rule, _, _)| rule == COPY_RULE)
        .collect();
    assert_eq!(
        copies,
        [("daily", "pass"), ("nightly", "fail")].map(|(n, r)| (
            COPY_RULE.to_owned(),
            n.to_owned(),
            r.to_owned()
        ))
    );
    let daily = report
        .results
        .iter()
        .find(|r| r.resources[0].name == "daily")
        .expect("the copy kept inside");
    assert!(
        daily.message.contains("snap-cn") && daily.message.contains("inside CN"),
        "{}",
        daily.message
    );
}

#[test]
fn a_backup_of_the_namespace_is_a_result_about_the_backup_in_its_own_namespace() {
    let cn = rdc("CN", 1);
    let mut status = status(
        vec![placement(0, "cn-1", Some("cn-1"))],
        vec![violation(
            "Backup",
            "velero/nightly",
            "CopyOutsideJurisdiction",
        )],
    );
    status.copies = vec![
        DataCopy {
            kind: "Backup".to_owned(),
            name: "velero/nightly".to_owned(),
            source: "namespace fleet-cn".to_owned(),
            class: Some("us".to_owned()),
            jurisdiction: Some("US".to_owned()),
            inside: false,
        },
        DataCopy {
            kind: "Schedule".to_owned(),
            name: "velero/hourly".to_owned(),
            source: "namespace fleet-cn".to_owned(),
            class: Some("cn".to_owned()),
            jurisdiction: Some("CN".to_owned()),
            inside: true,
        },
    ];
    let report = build([(&cn, Some(&status))], vec![], None, at(100));
    let copies: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.rule == COPY_RULE)
        .map(|r| {
            let about = &r.resources[0];
            (
                about.api_version.as_str(),
                about.kind.as_str(),
                about.namespace.as_deref(),
                about.name.as_str(),
                r.result.as_str(),
            )
        })
        .collect();
    assert_eq!(
        copies,
        [
            ("velero.io/v1", "Backup", Some("velero"), "nightly", "fail"),
            ("velero.io/v1", "Schedule", Some("velero"), "hourly", "pass"),
        ]
    );
    let hourly = report
        .results
        .iter()
        .find(|r| r.resources[0].name == "hourly")
        .expect("the schedule");
    assert!(
        hourly.message.contains(
            "schedule velero/hourly of namespace fleet-cn is kept by BackupStorageLocation cn"
        ),
        "{}",
        hourly.message
    );
}

#[test]
fn what_nobody_declared_is_reported_under_its_own_policy() {
    use crate::residency::{Finding, Uncovered, ViolationReason};
    let uncovered = [
        Uncovered {
            kind: "Pod",
            name: "stray".to_owned(),
            claim: None,
            node: Some("cn-1".to_owned()),
            verdict: Ok(()),
        },
        Uncovered {
            kind: "PersistentVolume",
            name: "pv-stray".to_owned(),
            claim: Some("stray-data".to_owned()),
            node: Some("de-1".to_owned()),
            verdict: Err(Finding {
                kind: "PersistentVolume",
                name: "pv-stray".to_owned(),
                reason: ViolationReason::DataOutsideJurisdiction,
                message: "volume pv-stray can be used on node de-1".to_owned(),
            }),
        },
    ];
    let results = namespace_results("fleet-cn", "CN", &uncovered);
    let seen: Vec<(&str, &str, &str, &str)> = results
        .iter()
        .map(|r| {
            (
                r.policy.as_str(),
                r.rule.as_str(),
                r.resources[0].name.as_str(),
                r.result.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (NAMESPACE_POLICY, POD_RULE, "stray", "pass"),
            (NAMESPACE_POLICY, VOLUME_RULE, "pv-stray", "fail"),
        ]
    );
    assert_eq!(results[0].message, "pod stray runs on node cn-1, inside CN");
    assert_eq!(
        results[0].resources[0].namespace.as_deref(),
        Some("fleet-cn")
    );
    assert_eq!(results[1].properties["claim"], "stray-data");
    assert_eq!(results[1].properties["reason"], "DataOutsideJurisdiction");
    // Built into the report beside the data centres' results, and counted.
    let body = build(
        std::iter::empty(),
        results,
        None,
        jiff::Timestamp::UNIX_EPOCH,
    );
    assert_eq!((body.summary.pass, body.summary.fail), (1, 1));
}

#[test]
fn an_object_two_data_centres_judge_keeps_the_worse_verdict_in_any_order() {
    use crate::residency::{Finding, Uncovered, ViolationReason};
    let judged = |verdict: Result<(), Finding>| {
        namespace_results(
            "fleet-cn",
            "CN",
            &[Uncovered {
                kind: "Pod",
                name: "shared".to_owned(),
                claim: None,
                node: Some("us-1".to_owned()),
                verdict,
            }],
        )
    };
    let failed = judged(Err(Finding {
        kind: "Pod",
        name: "shared".to_owned(),
        reason: ViolationReason::NodeOutsideJurisdiction,
        message: "pod shared runs on node us-1, outside CN".to_owned(),
    }));
    let passed = judged(Ok(()));
    for results in [
        [passed.clone(), failed.clone()].concat(),
        [failed.clone(), passed.clone()].concat(),
    ] {
        let body = build(
            std::iter::empty(),
            results,
            None,
            jiff::Timestamp::UNIX_EPOCH,
        );
        assert_eq!(body.results.len(), 1);
        assert_eq!(body.results[0].result, "fail");
    }
}

fn result_about(pod: &str) -> ReportResult {
    ReportResult {
        source: SOURCE.to_owned(),
        policy: "data-residency".to_owned(),
        rule: "pod-jurisdiction".to_owned(),
        result: "pass".to_owned(),
        severity: "high".to_owned(),
        category: "Data residency".to_owned(),
        scored: true,
        message: format!("{pod} runs in CN"),
        resources: vec![ResourceRef {
            api_version: "v1".to_owned(),
            kind: "Pod".to_owned(),
            name: pod.to_owned(),
            namespace: Some("fleet-cn".to_owned()),
        }],
        timestamp: Timestamp::of(at(100)),
        properties: Properties::default(),
    }
}

#[test]
fn a_large_report_is_split_in_order_into_parts_within_the_budget() {
    let results: Vec<ReportResult> = (0..50)
        .map(|i| result_about(&format!("pod-{i:03}")))
        .collect();
    let one = serde_json::to_vec(&results[0]).expect("serializes").len() + 1;
    // Ten results and their array's brackets, exactly.
    let budget = one * 10 + 1;
    let parts = split(&results, budget);
    assert_eq!(parts, vec![0..10, 10..20, 20..30, 30..40, 40..50]);
    for part in &parts {
        let bytes = serde_json::to_vec(&results[part.clone()])
            .expect("serializes")
            .len();
        assert_eq!(bytes, budget, "a part of {bytes} bytes");
    }
    assert_eq!(split(&results, budget - 1)[0], 0..9);
    // Small enough: one part; nothing: one empty part; a result over the budget: a part alone.
    assert_eq!(split(&results, one * 50 + 1), vec![0..50]);
    assert_eq!(split(&[], one), vec![0..0]);
    assert_eq!(split(&results[..2], 1), vec![0..1, 1..2]);
    let summary = summarize(&results[..10]);
    assert_eq!((summary.pass, summary.fail, summary.warn), (10, 0, 0));
}

#[test]
fn the_parts_of_a_report_are_named_after_the_first() {
    assert_eq!(report_name(0), "domicile-residency");
    assert_eq!(report_name(1), "domicile-residency-2");
    assert_eq!(report_part("domicile-residency"), Some(0));
    assert_eq!(report_part("domicile-residency-2"), Some(1));
    assert_eq!(report_part("domicile-residency-12"), Some(11));
    for other in [
        "domicile-residency-1",
        "domicile-residency-02",
        "domicile-residency-x",
        "other",
    ] {
        assert_eq!(report_part(other), None, "{other}");
    }
}

#[test]
fn what_is_kept_of_a_report_gives_each_unchanged_result_its_time() {
    let mut older = result_about("a");
    older.timestamp = Timestamp::of(at(50));
    let mut failed = result_about("a");
    failed.result = "fail".to_owned();
    failed.timestamp = Timestamp::of(at(60));
    // Written by someone else: the same pod twice, once passed and once failed, and passed
    // again at another time: the earliest time of the same verdict is kept.
    let kept = Kept::of([&result_about("a"), &failed, &older, &result_about("b")]);
    assert_eq!(
        kept.timestamp(&result_about("a")),
        Some(Timestamp::of(at(50)))
    );
    assert_eq!(kept.timestamp(&failed), Some(Timestamp::of(at(60))));
    assert_eq!(
        kept.timestamp(&result_about("b")),
        Some(Timestamp::of(at(100)))
    );
    // Another message is another verdict; another pod is unknown.
    let mut reworded = result_about("b");
    reworded.message = "b runs in CN, node cn-2".to_owned();
    assert_eq!(kept.timestamp(&reworded), None);
    assert_eq!(kept.timestamp(&result_about("c")), None);
    // The written hash sees every field, the timestamp too.
    assert_ne!(written_hash(&older), written_hash(&result_about("a")));
    assert_eq!(
        written_hash(&result_about("a")),
        written_hash(&result_about("a"))
    );
}

#[test]
fn properties_are_a_map_in_the_order_of_their_keys() {
    let mut properties =
        Properties::from([("node", "cn-1".to_owned()), ("claim", "data".to_owned())]);
    properties.insert("reason", "Unverifiable".to_owned());
    properties.insert("node", "cn-2".to_owned());
    let json = serde_json::to_string(&properties).expect("properties serialize");
    assert_eq!(
        json,
        r#"{"claim":"data","node":"cn-2","reason":"Unverifiable"}"#
    );
    let back: Properties = serde_json::from_str(&json).expect("properties deserialize");
    assert_eq!(back, properties);
    assert_eq!(back["node"], "cn-2");
    assert_eq!(back.get("jurisdiction"), None);
}
