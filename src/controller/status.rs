//! The status as a pure function of what was observed: same observations, same status, and
//! timestamps that move only when what they date changes.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{Phase, RegionalDataCenterStatus, Residency, Violation};
use crate::residency::Audit;

pub const READY: &str = "Ready";
pub const RESIDENCY_COMPLIANT: &str = "ResidencyCompliant";
pub const STORAGE_PROVISIONED: &str = "StorageProvisioned";
pub const WORKLOAD_AVAILABLE: &str = "WorkloadAvailable";
pub const LABEL_TRUSTED: &str = "LabelTrusted";

/// Something the schema cannot judge that stops provisioning until the cluster or spec changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    /// A CamelCase reason such as `NoEligibleNodes`.
    pub reason: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Everything the status is derived from.
#[derive(Clone, Debug)]
pub struct Observation<'a> {
    pub generation: Option<i64>,
    pub blocker: Option<&'a Blocker>,
    pub eligible_nodes: usize,
    pub replicas: i32,
    pub ready_replicas: i32,
    /// Claims of the replicas that are bound to a volume.
    pub bound_claims: i32,
    /// Why unbound claims are waiting, for the StorageProvisioned message.
    pub storage_hint: &'a str,
    pub audit: &'a Audit,
    /// Label keys the operator reads that kubelets may set on their own Node.
    pub kubelet_settable_keys: &'a [&'a str],
    /// A child the API server would not let the operator update, and what a person does about it.
    pub refused: Option<&'a Blocker>,
    /// Why the StatefulSet controller cannot create the missing pods, in the API server's words.
    pub pods_refused: Option<&'a str>,
    /// A pod the scheduler cannot place, and the scheduler's words.
    pub unschedulable: Option<&'a str>,
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    generation: Option<i64>,
    previous: &[Condition],
    now: Timestamp,
) -> Condition {
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Derives the whole status. `previous` supplies the timestamps of what has not changed.
pub fn derive_status(
    observation: &Observation<'_>,
    previous: Option<&RegionalDataCenterStatus>,
    now: Timestamp,
) -> RegionalDataCenterStatus {
    let o = observation;
    let previous_conditions = previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let cond = |type_, ok: Option<bool>, reason: &str, message: String| {
        let status = match ok {
            Some(true) => "True",
            Some(false) => "False",
            None => "Unknown",
        };
        condition(
            type_,
            status,
            reason,
            message,
            o.generation,
            previous_conditions,
            now,
        )
    };

    let storage = match (o.blocker, o.bound_claims >= o.replicas) {
        (Some(blocker), _) => cond(
            STORAGE_PROVISIONED,
            Some(false),
            blocker.reason,
            blocker.message.clone(),
        ),
        (None, true) => cond(
            STORAGE_PROVISIONED,
            Some(true),
            "ClaimsBound",
            format!(
                "{} of {} claims are bound to volumes in the jurisdiction",
                o.bound_claims, o.replicas
            ),
        ),
        (None, false) => cond(
            STORAGE_PROVISIONED,
            Some(false),
            "ClaimsPending",
            format!(
                "{} of {} claims are bound; {}",
                o.bound_claims, o.replicas, o.storage_hint
            ),
        ),
    };
    let workload = if let Some(refusal) = o.pods_refused {
        cond(
            WORKLOAD_AVAILABLE,
            Some(false),
            "PodsRefused",
            format!(
                "{} of {} replicas are ready; the API server refuses their pods: {refusal}",
                o.ready_replicas, o.replicas
            ),
        )
    } else if let Some(unschedulable) = o.unschedulable.filter(|_| o.ready_replicas < o.replicas) {
        cond(
            WORKLOAD_AVAILABLE,
            Some(false),
            "Unschedulable",
            format!(
                "{} of {} replicas are ready; {unschedulable}; it will not start by itself until \
                 the cluster changes (capacity, node labels, or the node its volume is on)",
                o.ready_replicas, o.replicas
            ),
        )
    } else if o.ready_replicas >= o.replicas {
        cond(
            WORKLOAD_AVAILABLE,
            Some(true),
            "ReplicasReady",
            format!("{} of {} replicas are ready", o.ready_replicas, o.replicas),
        )
    } else {
        cond(
            WORKLOAD_AVAILABLE,
            Some(false),
            "ReplicasNotReady",
            format!("{} of {} replicas are ready", o.ready_replicas, o.replicas),
        )
    };
    let violations = o.audit.findings.len();
    let residency = match o.audit.residency {
        Residency::Compliant => cond(
            RESIDENCY_COMPLIANT,
            Some(true),
            "Compliant",
            "every pod and bound volume is inside the jurisdiction".to_owned(),
        ),
        Residency::Violated => cond(
            RESIDENCY_COMPLIANT,
            Some(false),
            "Violated",
            format!("{violations} object(s) outside the jurisdiction; see status.violations"),
        ),
        Residency::Unverifiable => cond(
            RESIDENCY_COMPLIANT,
            Some(false),
            "Unverifiable",
            format!(
                "the location of {violations} volume(s) cannot be verified; see status.violations"
            ),
        ),
        Residency::Pending => cond(
            RESIDENCY_COMPLIANT,
            None,
            "NothingPlaced",
            "no pod is scheduled and no volume is bound yet".to_owned(),
        ),
    };
    // Ready names the most pressing reason: a blocker, a residency verdict against the promise,
    // a refused update, then residency, storage, workload.
    // Pods the namespace refuses or the scheduler cannot place explain why nothing is placed,
    // so they come before a pending residency.
    let not_ready = [&residency, &workload]
        .into_iter()
        .find(|c| {
            c.status == "False"
                && (c.type_ == RESIDENCY_COMPLIANT
                    || c.reason == "PodsRefused"
                    || c.reason == "Unschedulable")
        })
        .or_else(|| {
            [&residency, &storage, &workload]
                .into_iter()
                .find(|c| c.status != "True")
        });
    let refused = o.refused.filter(|_| residency.status != "False");
    let ready = match (o.blocker.or(refused), not_ready) {
        (Some(blocker), _) => cond(READY, Some(false), blocker.reason, blocker.message.clone()),
        (None, Some(failing)) => cond(READY, Some(false), &failing.reason, failing.message.clone()),
        (None, None) => cond(
            READY,
            Some(true),
            "Ready",
            format!(
                "{} replicas ready, data and pods inside the jurisdiction",
                o.replicas
            ),
        ),
    };

    let label_trusted = if o.kubelet_settable_keys.is_empty() {
        cond(
            LABEL_TRUSTED,
            Some(true),
            "NodeRestricted",
            "jurisdiction labels use keys that kubelets cannot set on their own Node".to_owned(),
        )
    } else {
        cond(
            LABEL_TRUSTED,
            Some(false),
            "KubeletSettableLabel",
            format!(
                "kubelets may set {} on their own Node, so a compromised node could claim any \
                 jurisdiction; run the operator with keys under *.node-restriction.kubernetes.io/",
                o.kubelet_settable_keys.join(" and ")
            ),
        )
    };

    let phase = if o.audit.residency == Residency::Violated {
        Phase::Violated
    } else if o.blocker.is_some() {
        Phase::Pending
    } else if o.refused.is_some() {
        Phase::Degraded
    } else if ready.status == "True" {
        Phase::Ready
    } else if storage.status == "True" && o.ready_replicas > 0 {
        Phase::Degraded
    } else {
        Phase::Provisioning
    };

    let previous_violations = previous
        .map(|s| s.violations.as_slice())
        .unwrap_or_default();
    let violations = o
        .audit
        .findings
        .iter()
        .map(|f| {
            let since = previous_violations
                .iter()
                .find(|v| v.kind == f.kind && v.name == f.name && v.reason == f.reason.as_str())
                .map(|v| v.since.clone())
                .unwrap_or(Time(now));
            Violation {
                kind: f.kind.to_owned(),
                name: f.name.clone(),
                reason: f.reason.as_str().to_owned(),
                message: f.message.clone(),
                since,
            }
        })
        .collect();

    let mut status = RegionalDataCenterStatus {
        observed_generation: o.generation,
        phase: Some(phase),
        residency: Some(o.audit.residency),
        eligible_nodes: Some(i32::try_from(o.eligible_nodes).unwrap_or(i32::MAX)),
        replicas: Some(o.replicas),
        ready_replicas: Some(o.ready_replicas),
        ready: Some(format!("{}/{}", o.ready_replicas, o.replicas)),
        placements: o.audit.placements.clone(),
        violations,
        last_audit_time: previous.and_then(|s| s.last_audit_time.clone()),
        conditions: vec![ready, residency, storage, workload, label_trusted],
    };
    // The audit time moves only with the verdict, so an unchanged cluster is never rewritten.
    if previous != Some(&status) {
        status.last_audit_time = Some(Time(now));
    }
    status
}

/// Whether `new` says anything `old` does not; only then is it written.
pub fn needs_write(old: Option<&RegionalDataCenterStatus>, new: &RegionalDataCenterStatus) -> bool {
    old != Some(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Placement;
    use crate::residency::{Finding, ViolationReason};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("a valid time")
    }

    fn compliant_audit(replicas: i32) -> Audit {
        Audit {
            placements: (0..replicas)
                .map(|i| Placement {
                    pod: format!("vehicle-data-{i}"),
                    node: Some(format!("cn-{i}")),
                    node_jurisdiction: Some("CN".to_owned()),
                    volume: Some(format!("pv-{i}")),
                    volume_node: Some(format!("cn-{i}")),
                    compliant: true,
                })
                .collect(),
            findings: vec![],
            residency: Residency::Compliant,
        }
    }

    fn observation<'a>(audit: &'a Audit, ready: i32) -> Observation<'a> {
        Observation {
            generation: Some(2),
            blocker: None,
            eligible_nodes: 3,
            replicas: 3,
            ready_replicas: ready,
            bound_claims: 3,
            storage_hint: "",
            audit,
            kubelet_settable_keys: &[],
            refused: None,
            pods_refused: None,
            unschedulable: None,
        }
    }

    fn condition_of<'a>(status: &'a RegionalDataCenterStatus, type_: &str) -> &'a Condition {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .expect("the condition is present")
    }

    #[test]
    fn converged_and_compliant_is_ready() {
        let audit = compliant_audit(3);
        let status = derive_status(&observation(&audit, 3), None, at(0));
        assert_eq!(status.phase, Some(Phase::Ready));
        assert_eq!(status.residency, Some(Residency::Compliant));
        assert_eq!(status.ready.as_deref(), Some("3/3"));
        assert_eq!(status.observed_generation, Some(2));
        for type_ in [
            READY,
            RESIDENCY_COMPLIANT,
            STORAGE_PROVISIONED,
            WORKLOAD_AVAILABLE,
        ] {
            let c = condition_of(&status, type_);
            assert_eq!(c.status, "True", "{type_}");
            assert_eq!(c.observed_generation, Some(2), "{type_}");
        }
    }

    #[test]
    fn unchanged_observations_give_an_identical_status_that_is_not_rewritten() {
        let audit = compliant_audit(3);
        let first = derive_status(&observation(&audit, 3), None, at(0));
        let second = derive_status(&observation(&audit, 3), Some(&first), at(600));
        assert_eq!(first, second);
        assert!(!needs_write(Some(&first), &second));
    }

    #[test]
    fn transition_time_moves_only_when_the_condition_flips() {
        let audit = compliant_audit(3);
        let ready = derive_status(&observation(&audit, 3), None, at(0));
        let degraded = derive_status(&observation(&audit, 2), Some(&ready), at(60));
        let workload = condition_of(&degraded, WORKLOAD_AVAILABLE);
        assert_eq!(workload.status, "False");
        assert_eq!(workload.last_transition_time, Time(at(60)));
        let residency = condition_of(&degraded, RESIDENCY_COMPLIANT);
        assert_eq!(
            residency.last_transition_time,
            Time(at(0)),
            "still True since 0"
        );
        assert_eq!(degraded.phase, Some(Phase::Degraded));
        assert_eq!(degraded.last_audit_time, Some(Time(at(60))));
    }

    #[test]
    fn blocker_sets_pending_and_names_its_reason_on_ready() {
        let audit = Audit {
            placements: vec![],
            findings: vec![],
            residency: Residency::Pending,
        };
        let blocker = Blocker {
            reason: "NoEligibleNodes",
            message: "label a node".to_owned(),
        };
        let mut o = observation(&audit, 0);
        o.blocker = Some(&blocker);
        o.bound_claims = 0;
        o.eligible_nodes = 0;
        let status = derive_status(&o, None, at(0));
        assert_eq!(status.phase, Some(Phase::Pending));
        let ready = condition_of(&status, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "NoEligibleNodes")
        );
        assert_eq!(ready.message, "label a node");
        assert_eq!(condition_of(&status, RESIDENCY_COMPLIANT).status, "Unknown");
    }

    #[test]
    fn violation_makes_the_phase_violated_and_keeps_its_first_sighting() {
        let mut audit = compliant_audit(3);
        audit.residency = Residency::Violated;
        audit.findings.push(Finding {
            kind: "Pod",
            name: "vehicle-data-0".to_owned(),
            reason: ViolationReason::NodeOutsideJurisdiction,
            message: "pod on de-1".to_owned(),
        });
        let first = derive_status(&observation(&audit, 3), None, at(0));
        assert_eq!(first.phase, Some(Phase::Violated));
        let ready = condition_of(&first, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Violated")
        );
        let later = derive_status(&observation(&audit, 3), Some(&first), at(30));
        assert_eq!(later.violations[0].since, Time(at(0)));
        assert_eq!(later.violations[0].reason, "NodeOutsideJurisdiction");
    }

    #[test]
    fn label_keys_kubelets_can_set_are_reported_without_blocking_readiness() {
        let audit = compliant_audit(3);
        let mut o = observation(&audit, 3);
        let keys = ["example.com/country"];
        o.kubelet_settable_keys = &keys;
        let status = derive_status(&o, None, at(0));
        let trusted = condition_of(&status, LABEL_TRUSTED);
        assert_eq!(
            (trusted.status.as_str(), trusted.reason.as_str()),
            ("False", "KubeletSettableLabel")
        );
        assert!(trusted.message.contains("example.com/country"));
        assert_eq!(condition_of(&status, READY).status, "True");
    }

    #[test]
    fn unbound_claims_are_provisioning_with_the_hint() {
        let audit = Audit {
            placements: vec![],
            findings: vec![],
            residency: Residency::Pending,
        };
        let mut o = observation(&audit, 0);
        o.bound_claims = 1;
        o.storage_hint = "waiting for provisioner rancher.io/local-path";
        let status = derive_status(&o, None, at(0));
        assert_eq!(status.phase, Some(Phase::Provisioning));
        let storage = condition_of(&status, STORAGE_PROVISIONED);
        assert_eq!(storage.reason, "ClaimsPending");
        assert!(
            storage
                .message
                .contains("1 of 3 claims are bound; waiting for provisioner")
        );
    }

    #[test]
    fn refused_pods_say_so_with_the_api_servers_words() {
        let audit = Audit {
            placements: vec![],
            findings: vec![],
            residency: Residency::Pending,
        };
        let mut o = observation(&audit, 0);
        let words =
            r#"pods "vehicle-data-0" is forbidden: violates PodSecurity "restricted:latest""#;
        o.pods_refused = Some(words);
        let status = derive_status(&o, None, at(0));
        let workload = condition_of(&status, WORKLOAD_AVAILABLE);
        assert_eq!(
            (workload.status.as_str(), workload.reason.as_str()),
            ("False", "PodsRefused")
        );
        assert!(workload.message.contains(words), "{}", workload.message);
        let ready = condition_of(&status, READY);
        assert_eq!(ready.reason, "PodsRefused", "the cause, not NothingPlaced");
    }

    #[test]
    fn a_refused_update_fails_ready_with_the_steps_unless_residency_is_violated() {
        let audit = compliant_audit(3);
        let refused = Blocker {
            reason: "UpdateRefused",
            message: "delete it with --cascade=orphan".to_owned(),
        };
        let mut o = observation(&audit, 3);
        o.refused = Some(&refused);
        let status = derive_status(&o, None, at(0));
        assert_eq!(status.phase, Some(Phase::Degraded));
        let ready = condition_of(&status, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "UpdateRefused")
        );
        assert!(ready.message.contains("--cascade=orphan"));

        let mut violated = compliant_audit(3);
        violated.residency = Residency::Violated;
        o.audit = &violated;
        let status = derive_status(&o, None, at(0));
        assert_eq!(condition_of(&status, READY).reason, "Violated");
        assert_eq!(status.phase, Some(Phase::Violated));
    }

    #[test]
    fn a_pod_the_scheduler_cannot_place_is_unschedulable_with_its_words() {
        let audit = Audit {
            placements: vec![],
            findings: vec![],
            residency: Residency::Pending,
        };
        let mut o = observation(&audit, 0);
        let words = "pod vehicle-data-0: 0/9 nodes are available: 3 Too many pods";
        o.unschedulable = Some(words);
        let status = derive_status(&o, None, at(0));
        let workload = condition_of(&status, WORKLOAD_AVAILABLE);
        assert_eq!(workload.reason, "Unschedulable");
        assert!(
            workload.message.contains("Too many pods"),
            "{}",
            workload.message
        );
        assert!(workload.message.contains("will not start by itself"));
        assert_eq!(condition_of(&status, READY).reason, "Unschedulable");
        // Once every replica is ready, a stale condition on a pod says nothing.
        let status = derive_status(&observation(&compliant_audit(3), 3), None, at(0));
        assert_eq!(
            condition_of(&status, WORKLOAD_AVAILABLE).reason,
            "ReplicasReady"
        );
    }
}
