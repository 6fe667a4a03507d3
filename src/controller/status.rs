//! The status as a pure function of what was observed: same observations, same status, and
//! timestamps that move only when what they date changes.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{Phase, RegionalDataCenterStatus, Residency, Violation};
use crate::guard::{Assessment, Standing};
use crate::residency::Audit;

pub const READY: &str = "Ready";
pub const RESIDENCY_COMPLIANT: &str = "ResidencyCompliant";
pub const STORAGE_PROVISIONED: &str = "StorageProvisioned";
pub const WORKLOAD_AVAILABLE: &str = "WorkloadAvailable";
pub const LABEL_TRUSTED: &str = "LabelTrusted";
pub const ADMISSION_GUARDED: &str = "AdmissionGuarded";

/// Why a condition has its status: every reason the operator writes, in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    // Blockers: nothing is provisioned until the spec or the cluster changes.
    InvalidJurisdiction,
    NoEligibleNodes,
    InsufficientEligibleNodes,
    StorageClassNotFound,
    /// A child the API server would not let the operator update.
    UpdateRefused,
    /// An object of a child's name exists that the operator did not make.
    NameTaken,
    // StorageProvisioned.
    ClaimsBound,
    ClaimsPending,
    // WorkloadAvailable.
    ReplicasReady,
    ReplicasNotReady,
    PodsRefused,
    Unschedulable,
    // ResidencyCompliant.
    Compliant,
    Violated,
    Unverifiable,
    NothingPlaced,
    /// Violated, and Enforce cannot evict the pod outside: a disruption budget refuses.
    EvictionBlocked,
    // Ready.
    Ready,
    // LabelTrusted.
    NodeRestricted,
    KubeletSettableLabel,
    /// AdmissionGuarded: the guard's standing names the reason.
    Guard(Standing),
}

impl Reason {
    /// The CamelCase word written to `reason`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJurisdiction => "InvalidJurisdiction",
            Self::NoEligibleNodes => "NoEligibleNodes",
            Self::InsufficientEligibleNodes => "InsufficientEligibleNodes",
            Self::StorageClassNotFound => "StorageClassNotFound",
            Self::UpdateRefused => "UpdateRefused",
            Self::NameTaken => "NameTaken",
            Self::ClaimsBound => "ClaimsBound",
            Self::ClaimsPending => "ClaimsPending",
            Self::ReplicasReady => "ReplicasReady",
            Self::ReplicasNotReady => "ReplicasNotReady",
            Self::PodsRefused => "PodsRefused",
            Self::Unschedulable => "Unschedulable",
            Self::Compliant => "Compliant",
            Self::Violated => "Violated",
            Self::Unverifiable => "Unverifiable",
            Self::NothingPlaced => "NothingPlaced",
            Self::EvictionBlocked => "EvictionBlocked",
            Self::Ready => "Ready",
            Self::NodeRestricted => "NodeRestricted",
            Self::KubeletSettableLabel => "KubeletSettableLabel",
            Self::Guard(standing) => standing.as_str(),
        }
    }

    /// Reasons of a state that passes by itself, or of violations (announced one by one), for
    /// which Ready turning False raises no Warning Event of its own.
    pub const QUIET: [Self; 5] = [
        Self::ClaimsPending,
        Self::ReplicasNotReady,
        Self::NothingPlaced,
        Self::Violated,
        Self::Unverifiable,
    ];
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something the schema cannot judge that stops provisioning until the cluster or spec changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    pub reason: Reason,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Everything the status is derived from.
#[derive(Clone, Debug)]
pub struct Observation<'a> {
    pub generation: Option<i64>,
    pub blocker: Option<&'a Blocker>,
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
    /// Enforce: a pod outside the jurisdiction that a disruption budget keeps from eviction.
    pub eviction_blocked: Option<&'a str>,
    /// Volumes retained from an earlier data centre of this name, sorted.
    pub retained_volumes: &'a [String],
    /// Replicas that have no pod at all, by the pod's name.
    pub missing_pods: &'a [String],
    /// The admission guard of the namespace, once the jurisdiction is known.
    pub guard: Option<&'a Assessment>,
}

/// One condition's verdict before it is dated: True, False or Unknown (`None`), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Verdict {
    ok: Option<bool>,
    reason: Reason,
    message: String,
}

impl Verdict {
    fn holds(reason: Reason, message: String) -> Self {
        Self {
            ok: Some(true),
            reason,
            message,
        }
    }

    fn fails(reason: Reason, message: String) -> Self {
        Self {
            ok: Some(false),
            reason,
            message,
        }
    }

    fn from_blocker(blocker: &Blocker) -> Self {
        Self::fails(blocker.reason, blocker.message.clone())
    }
}

/// StorageProvisioned: every replica's claim is bound, unless something blocks provisioning.
fn storage(o: &Observation<'_>) -> Verdict {
    if let Some(blocker) = o.blocker {
        return Verdict::from_blocker(blocker);
    }
    if o.bound_claims >= o.replicas {
        Verdict::holds(
            Reason::ClaimsBound,
            format!(
                "{} of {} claims are bound to volumes in the jurisdiction",
                o.bound_claims, o.replicas
            ),
        )
    } else {
        Verdict::fails(
            Reason::ClaimsPending,
            format!(
                "{} of {} claims are bound; {}",
                o.bound_claims, o.replicas, o.storage_hint
            ),
        )
    }
}

/// WorkloadAvailable: every replica is ready; if not, whether it will become so by itself.
fn workload(o: &Observation<'_>) -> Verdict {
    let mut ready = format!("{} of {} replicas are ready", o.ready_replicas, o.replicas);
    if !o.missing_pods.is_empty() {
        ready.push_str(&format!("; no pod for {}", o.missing_pods.join(", ")));
    }
    if let Some(refusal) = o.pods_refused {
        Verdict::fails(
            Reason::PodsRefused,
            format!("{ready}; the API server refuses their pods: {refusal}"),
        )
    } else if let Some(unschedulable) = o.unschedulable.filter(|_| o.ready_replicas < o.replicas) {
        Verdict::fails(
            Reason::Unschedulable,
            format!(
                "{ready}; {unschedulable}; it will not start by itself until the cluster changes \
                 (capacity, node labels, or the node its volume is on)"
            ),
        )
    } else if o.ready_replicas >= o.replicas {
        Verdict::holds(Reason::ReplicasReady, ready)
    } else {
        Verdict::fails(Reason::ReplicasNotReady, ready)
    }
}

/// ResidencyCompliant: the audit's verdict.
fn residency(o: &Observation<'_>) -> Verdict {
    let violations = o.audit.findings.len();
    match o.audit.residency {
        Residency::Compliant => Verdict::holds(
            Reason::Compliant,
            "every pod and bound volume is inside the jurisdiction".to_owned(),
        ),
        Residency::Violated => Verdict::fails(
            Reason::Violated,
            format!(
                "{violations} object(s) outside the jurisdiction, or at its data uninvited; see \
                 status.violations"
            ),
        ),
        Residency::Unverifiable => Verdict::fails(
            Reason::Unverifiable,
            format!(
                "the location of {violations} volume(s) cannot be verified; see status.violations"
            ),
        ),
        Residency::Pending => Verdict {
            ok: None,
            reason: Reason::NothingPlaced,
            message:
                "no pod is scheduled and no volume is bound yet (of spec.members: none that it \
                      selects in this namespace)"
                    .to_owned(),
        },
    }
}

/// Ready names the most pressing reason: a blocker; a residency verdict against the promise;
/// a refused update; pods the namespace refuses or the scheduler cannot place (they explain why
/// nothing is placed, so they come before a pending residency); then residency, storage,
/// workload.
fn ready(
    o: &Observation<'_>,
    residency: &Verdict,
    storage: &Verdict,
    workload: &Verdict,
) -> Verdict {
    if let Some(blocker) = o.blocker {
        return Verdict::from_blocker(blocker);
    }
    let against_promise = residency.ok == Some(false);
    if against_promise {
        return match o.eviction_blocked {
            Some(blocked) => Verdict::fails(
                Reason::EvictionBlocked,
                format!("{}; {blocked}", residency.message),
            ),
            None => Verdict::fails(residency.reason, residency.message.clone()),
        };
    }
    if let Some(refused) = o.refused {
        return Verdict::from_blocker(refused);
    }
    let stuck = matches!(workload.reason, Reason::PodsRefused | Reason::Unschedulable);
    let failing = stuck.then_some(workload).or_else(|| {
        [residency, storage, workload]
            .into_iter()
            .find(|v| v.ok != Some(true))
    });
    match failing {
        Some(failing) => Verdict::fails(failing.reason, failing.message.clone()),
        None => {
            let covered = o
                .audit
                .placements
                .len()
                .saturating_sub(usize::try_from(o.replicas).unwrap_or(0));
            let what = if covered == 0 {
                format!("{} replicas ready", o.replicas)
            } else if o.replicas == 0 {
                format!("{covered} pod(s) covered by spec.members")
            } else {
                format!(
                    "{} replicas ready and {covered} pod(s) covered by spec.members",
                    o.replicas
                )
            };
            Verdict::holds(
                Reason::Ready,
                format!("{what}, data and pods inside the jurisdiction"),
            )
        }
    }
}

/// LabelTrusted: the jurisdiction labels are keys no kubelet can set on its own Node.
fn label_trusted(o: &Observation<'_>) -> Verdict {
    if o.kubelet_settable_keys.is_empty() {
        Verdict::holds(
            Reason::NodeRestricted,
            "jurisdiction labels use keys that kubelets cannot set on their own Node".to_owned(),
        )
    } else {
        Verdict::fails(
            Reason::KubeletSettableLabel,
            format!(
                "kubelets may set {} on their own Node, so a compromised node could claim any \
                 jurisdiction; run the operator with keys under *.node-restriction.kubernetes.io/",
                o.kubelet_settable_keys.join(" and ")
            ),
        )
    }
}

/// AdmissionGuarded: the API server refuses, in this namespace, what would take data out.
fn admission_guarded(guard: &Assessment) -> Verdict {
    let (reason, message) = (Reason::Guard(guard.standing), guard.message.clone());
    if guard.standing == Standing::Enforced {
        Verdict::holds(reason, message)
    } else {
        Verdict::fails(reason, message)
    }
}

fn phase(o: &Observation<'_>, ready: &Verdict, storage: &Verdict) -> Phase {
    if o.audit.residency == Residency::Violated {
        Phase::Violated
    } else if o.blocker.is_some() {
        Phase::Pending
    } else if o.refused.is_some() {
        Phase::Degraded
    } else if ready.ok == Some(true) {
        Phase::Ready
    } else if storage.ok == Some(true) && o.ready_replicas > 0 {
        Phase::Degraded
    } else {
        Phase::Provisioning
    }
}

/// A dated condition: its transition time moves only when its status does.
fn condition(
    type_: &str,
    verdict: Verdict,
    generation: Option<i64>,
    previous: &[Condition],
    now: Timestamp,
) -> Condition {
    let status = match verdict.ok {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: verdict.reason.as_str().to_owned(),
        message: verdict.message,
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
    let (storage, workload, residency) = (storage(o), workload(o), residency(o));
    let ready = ready(o, &residency, &storage, &workload);
    let phase = phase(o, &ready, &storage);
    let previous_conditions = previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let conditions = [
        (READY, ready),
        (RESIDENCY_COMPLIANT, residency),
        (STORAGE_PROVISIONED, storage),
        (WORKLOAD_AVAILABLE, workload),
        (LABEL_TRUSTED, label_trusted(o)),
    ]
    .into_iter()
    .chain(
        o.guard
            .map(|guard| (ADMISSION_GUARDED, admission_guarded(guard))),
    )
    .map(|(type_, verdict)| condition(type_, verdict, o.generation, previous_conditions, now))
    .collect();

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
        replicas: Some(o.replicas),
        ready_replicas: Some(o.ready_replicas),
        ready: Some(format!("{}/{}", o.ready_replicas, o.replicas)),
        placements: o.audit.placements.clone(),
        violations,
        copies: o.audit.copies.clone(),
        last_audit_time: previous.and_then(|s| s.last_audit_time.clone()),
        guard: o.guard.map(|guard| guard.status.clone()),
        retained_volumes: o.retained_volumes.to_vec(),
        conditions,
    };
    // The audit time moves only with the verdict, so an unchanged cluster is never rewritten.
    if previous != Some(&status) {
        status.last_audit_time = Some(Time(now));
    }
    status
}

/// Whether `new` differs from `old` in progress only, so its write may wait a moment: either the
/// same generation, phase, verdict, conditions (type, status, reason) and violations (kind, name,
/// reason), with only counts, placements, messages or times differing; or a data centre on its
/// way to Ready (see `converging`).
pub fn progress_only(
    old: Option<&RegionalDataCenterStatus>,
    new: &RegionalDataCenterStatus,
) -> bool {
    let Some(old) = old else {
        return false;
    };
    let conditions = |s: &RegionalDataCenterStatus| {
        s.conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect::<Vec<_>>()
    };
    let violations = |s: &RegionalDataCenterStatus| {
        s.violations
            .iter()
            .map(|v| (v.kind.clone(), v.name.clone(), v.reason.clone()))
            .collect::<Vec<_>>()
    };
    old.observed_generation == new.observed_generation
        && ((old.phase == new.phase
            && old.residency == new.residency
            && conditions(old) == conditions(new)
            && violations(old) == violations(new))
            || converging(old, new))
}

/// Reasons of a condition on the way to Ready: waiting for something that comes by itself, or
/// done.
const ON_THE_WAY: [Reason; 6] = [
    Reason::NothingPlaced,
    Reason::ClaimsPending,
    Reason::ClaimsBound,
    Reason::ReplicasNotReady,
    Reason::ReplicasReady,
    Reason::Compliant,
];

/// A data centre that is not Ready before nor after, with no violation and a verdict of Pending
/// or Compliant, whose changed conditions all moved to a reason on the way to Ready: a converge
/// that moves on (claims bound, pods placed, replicas ready). Ready itself, a blocker, a refusal,
/// an unschedulable pod or anything against the promise is never this.
fn converging(old: &RegionalDataCenterStatus, new: &RegionalDataCenterStatus) -> bool {
    let not_ready = |s: &RegionalDataCenterStatus| {
        s.conditions
            .iter()
            .any(|c| c.type_ == READY && c.status == "False")
    };
    let harmless = |s: &RegionalDataCenterStatus| {
        s.violations.is_empty()
            && matches!(s.residency, Some(Residency::Pending | Residency::Compliant))
    };
    let unchanged = |c: &Condition| {
        old.conditions
            .iter()
            .any(|o| o.type_ == c.type_ && o.status == c.status && o.reason == c.reason)
    };
    not_ready(old)
        && not_ready(new)
        && harmless(old)
        && harmless(new)
        && new
            .conditions
            .iter()
            .all(|c| unchanged(c) || ON_THE_WAY.iter().any(|r| r.as_str() == c.reason))
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
            copies: vec![],
            placements: (0..replicas)
                .map(|i| Placement {
                    pod: format!("vehicle-data-{i}"),
                    owner: None,
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
            replicas: 3,
            ready_replicas: ready,
            bound_claims: 3,
            storage_hint: "",
            audit,
            kubelet_settable_keys: &[],
            refused: None,
            pods_refused: None,
            unschedulable: None,
            eviction_blocked: None,
            retained_volumes: &[],
            missing_pods: &[],
            guard: None,
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
            copies: vec![],
            placements: vec![],
            findings: vec![],
            residency: Residency::Pending,
        };
        let blocker = Blocker {
            reason: Reason::NoEligibleNodes,
            message: "label a node".to_owned(),
        };
        let mut o = observation(&audit, 0);
        o.blocker = Some(&blocker);
        o.bound_claims = 0;
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
    fn a_replica_without_a_pod_is_named() {
        let audit = compliant_audit(3);
        let mut o = observation(&audit, 2);
        let missing = ["vehicle-data-2".to_owned()];
        o.missing_pods = &missing;
        let status = derive_status(&o, None, at(0));
        let workload = condition_of(&status, WORKLOAD_AVAILABLE);
        assert_eq!(workload.reason, "ReplicasNotReady");
        assert!(
            workload.message.ends_with("; no pod for vehicle-data-2"),
            "{}",
            workload.message
        );
    }

    #[test]
    fn an_eviction_a_disruption_budget_refuses_is_named_on_ready() {
        let mut audit = compliant_audit(3);
        audit.residency = Residency::Violated;
        audit.findings.push(Finding {
            kind: "Pod",
            name: "vehicle-data-0".to_owned(),
            reason: ViolationReason::NodeOutsideJurisdiction,
            message: "pod on de-1".to_owned(),
        });
        let mut o = observation(&audit, 3);
        o.eviction_blocked = Some("Enforce cannot evict pod vehicle-data-0: budget hold");
        let status = derive_status(&o, None, at(0));
        assert_eq!(status.phase, Some(Phase::Violated));
        let ready = condition_of(&status, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "EvictionBlocked")
        );
        assert!(ready.message.contains("budget hold"), "{}", ready.message);
        assert!(
            !Reason::QUIET.contains(&Reason::EvictionBlocked),
            "a blocked eviction raises a Warning Event"
        );
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
    fn the_admission_guard_is_a_condition_of_its_own_that_never_blocks_readiness() {
        let audit = compliant_audit(3);
        let o = observation(&audit, 3);
        let status = derive_status(&o, None, at(0));
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.type_ != ADMISSION_GUARDED),
            "not judged, not reported"
        );
        assert_eq!(status.guard, None);

        let guard = Assessment {
            status: crate::api::GuardStatus {
                namespace_jurisdiction: None,
                policies: vec![],
            },
            standing: Standing::NamespaceNotLabelled,
            message: "kubectl label namespace fleet-cn domicile.dev/jurisdiction=CN".to_owned(),
        };
        let mut o = observation(&audit, 3);
        o.guard = Some(&guard);
        let status = derive_status(&o, None, at(0));
        let guarded = condition_of(&status, ADMISSION_GUARDED);
        assert_eq!(
            (guarded.status.as_str(), guarded.reason.as_str()),
            ("False", "NamespaceNotLabelled")
        );
        assert!(guarded.message.contains("kubectl label namespace"));
        assert_eq!(status.guard, Some(guard.status.clone()));
        assert_eq!(condition_of(&status, READY).status, "True");

        let enforced = Assessment {
            standing: Standing::Enforced,
            ..guard.clone()
        };
        o.guard = Some(&enforced);
        let status = derive_status(&o, None, at(0));
        let guarded = condition_of(&status, ADMISSION_GUARDED);
        assert_eq!(
            (guarded.status.as_str(), guarded.reason.as_str()),
            ("True", "Enforced")
        );
    }

    #[test]
    fn unbound_claims_are_provisioning_with_the_hint() {
        let audit = Audit {
            copies: vec![],
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
            copies: vec![],
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
            reason: Reason::UpdateRefused,
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
            copies: vec![],
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

    /// Each rule on its own, by reason.
    fn reason(verdict: &Verdict) -> (Option<bool>, Reason) {
        (verdict.ok, verdict.reason)
    }

    #[test]
    fn storage_rule_blocker_then_bound_claims() {
        let audit = compliant_audit(3);
        let mut o = observation(&audit, 3);
        assert_eq!(reason(&storage(&o)), (Some(true), Reason::ClaimsBound));
        o.bound_claims = 2;
        assert_eq!(reason(&storage(&o)), (Some(false), Reason::ClaimsPending));
        let blocker = Blocker {
            reason: Reason::StorageClassNotFound,
            message: "create it".to_owned(),
        };
        o.blocker = Some(&blocker);
        assert_eq!(
            reason(&storage(&o)),
            (Some(false), Reason::StorageClassNotFound)
        );
    }

    #[test]
    fn workload_rule_refused_then_unschedulable_then_ready_count() {
        let audit = compliant_audit(3);
        let mut o = observation(&audit, 2);
        assert_eq!(
            reason(&workload(&o)),
            (Some(false), Reason::ReplicasNotReady)
        );
        o.unschedulable = Some("0/3 nodes are available");
        assert_eq!(reason(&workload(&o)), (Some(false), Reason::Unschedulable));
        o.pods_refused = Some("exceeded quota");
        assert_eq!(reason(&workload(&o)), (Some(false), Reason::PodsRefused));
        let o = Observation {
            unschedulable: Some("stale"),
            ..observation(&audit, 3)
        };
        assert_eq!(reason(&workload(&o)), (Some(true), Reason::ReplicasReady));
    }

    #[test]
    fn residency_rule_maps_each_verdict() {
        for (verdict, expected) in [
            (Residency::Compliant, (Some(true), Reason::Compliant)),
            (Residency::Violated, (Some(false), Reason::Violated)),
            (Residency::Unverifiable, (Some(false), Reason::Unverifiable)),
            (Residency::Pending, (None, Reason::NothingPlaced)),
        ] {
            let audit = Audit {
                residency: verdict,
                ..compliant_audit(3)
            };
            assert_eq!(reason(&residency(&observation(&audit, 3))), expected);
        }
    }

    #[test]
    fn ready_rule_in_order_of_urgency() {
        let violated = Audit {
            residency: Residency::Violated,
            ..compliant_audit(3)
        };
        let pending = Audit {
            residency: Residency::Pending,
            ..compliant_audit(3)
        };
        let blocker = Blocker {
            reason: Reason::NoEligibleNodes,
            message: "label a node".to_owned(),
        };
        let refused = Blocker {
            reason: Reason::UpdateRefused,
            message: "delete it with --cascade=orphan".to_owned(),
        };
        let judge = |o: &Observation<'_>| {
            let (r, s, w) = (residency(o), storage(o), workload(o));
            reason(&ready(o, &r, &s, &w))
        };
        let fails = |r| (Some(false), r);
        // A blocker first, even over a violation.
        let o = Observation {
            blocker: Some(&blocker),
            refused: Some(&refused),
            ..observation(&violated, 0)
        };
        assert_eq!(judge(&o), fails(Reason::NoEligibleNodes));
        // Then a violation, over a refused update.
        let o = Observation {
            refused: Some(&refused),
            ..observation(&violated, 3)
        };
        assert_eq!(judge(&o), fails(Reason::Violated));
        // Then a refused update, over pods that cannot start.
        let o = Observation {
            refused: Some(&refused),
            pods_refused: Some("quota"),
            ..observation(&pending, 0)
        };
        assert_eq!(judge(&o), fails(Reason::UpdateRefused));
        // Pods that cannot start explain a pending residency.
        let o = Observation {
            unschedulable: Some("too many pods"),
            ..observation(&pending, 0)
        };
        assert_eq!(judge(&o), fails(Reason::Unschedulable));
        // Then residency, storage, workload.
        assert_eq!(
            judge(&observation(&pending, 0)),
            fails(Reason::NothingPlaced)
        );
        let compliant = compliant_audit(3);
        let o = Observation {
            bound_claims: 1,
            ..observation(&compliant, 0)
        };
        assert_eq!(judge(&o), fails(Reason::ClaimsPending));
        assert_eq!(
            judge(&observation(&compliant_audit(3), 1)),
            fails(Reason::ReplicasNotReady)
        );
        assert_eq!(
            judge(&observation(&compliant_audit(3), 3)),
            (Some(true), Reason::Ready)
        );
    }

    #[test]
    fn phase_rule() {
        let audit = compliant_audit(3);
        let judge = |o: &Observation<'_>| {
            let (r, s, w) = (residency(o), storage(o), workload(o));
            phase(o, &ready(o, &r, &s, &w), &s)
        };
        assert_eq!(judge(&observation(&audit, 3)), Phase::Ready);
        assert_eq!(judge(&observation(&audit, 1)), Phase::Degraded);
        assert_eq!(judge(&observation(&audit, 0)), Phase::Provisioning);
        let refused = Blocker {
            reason: Reason::UpdateRefused,
            message: String::new(),
        };
        let o = Observation {
            refused: Some(&refused),
            ..observation(&audit, 3)
        };
        assert_eq!(judge(&o), Phase::Degraded);
        let o = Observation {
            blocker: Some(&refused),
            ..observation(&audit, 0)
        };
        assert_eq!(judge(&o), Phase::Pending);
        let violated = Audit {
            residency: Residency::Violated,
            ..compliant_audit(3)
        };
        assert_eq!(judge(&observation(&violated, 3)), Phase::Violated);
    }

    #[test]
    fn progress_only_changes_are_told_from_verdict_changes() {
        let audit = compliant_audit(3);
        let two = derive_status(&observation(&audit, 2), None, at(0));
        assert!(!progress_only(None, &two), "a first status is no progress");
        // One more ready replica: the same reasons, only counts and messages move.
        let one = derive_status(&observation(&audit, 1), None, at(0));
        let two_of_one = derive_status(&observation(&audit, 2), Some(&one), at(1));
        assert_ne!(one, two_of_one);
        assert!(progress_only(Some(&one), &two_of_one));
        // Ready, a verdict or a violation are never progress only.
        let ready = derive_status(&observation(&audit, 3), Some(&two), at(1));
        assert!(!progress_only(Some(&two), &ready));
        let violated = Audit {
            residency: Residency::Violated,
            ..compliant_audit(3)
        };
        let violated = derive_status(&observation(&violated, 2), Some(&two), at(1));
        assert!(!progress_only(Some(&two), &violated));
    }

    #[test]
    fn a_converge_moving_on_is_progress_and_anything_else_is_not() {
        let nothing = Audit {
            copies: vec![],
            placements: vec![],
            findings: vec![],
            residency: Residency::Pending,
        };
        let unbound = Observation {
            bound_claims: 0,
            ..observation(&nothing, 0)
        };
        let created = derive_status(&unbound, None, at(0));
        // Claims bound and pods placed inside: verdicts move, but towards Ready.
        let compliant = compliant_audit(3);
        let placed = derive_status(&observation(&compliant, 0), Some(&created), at(1));
        assert_ne!(created.residency, placed.residency);
        assert!(progress_only(Some(&created), &placed));
        // Ready is written at once.
        let ready = derive_status(&observation(&compliant, 3), Some(&placed), at(2));
        assert!(!progress_only(Some(&placed), &ready));
        // So is a blocker, an unschedulable pod, and a violation.
        let blocker = Blocker {
            reason: Reason::InsufficientEligibleNodes,
            message: String::new(),
        };
        let blocked = Observation {
            blocker: Some(&blocker),
            ..observation(&nothing, 0)
        };
        let blocked = derive_status(&blocked, Some(&created), at(1));
        assert!(!progress_only(Some(&created), &blocked));
        let stuck = Observation {
            unschedulable: Some("pod vehicle-data-0 cannot be scheduled: 0/3 nodes are available"),
            ..observation(&compliant, 0)
        };
        let stuck = derive_status(&stuck, Some(&placed), at(2));
        assert!(!progress_only(Some(&placed), &stuck));
        let violated = Audit {
            residency: Residency::Violated,
            ..compliant_audit(3)
        };
        let violated = derive_status(&observation(&violated, 0), Some(&created), at(1));
        assert!(!progress_only(Some(&created), &violated));
        // A new generation is never progress.
        let edited = Observation {
            generation: Some(3),
            ..observation(&compliant, 1)
        };
        let edited = derive_status(&edited, Some(&placed), at(2));
        assert!(!progress_only(Some(&placed), &edited));
    }
}
