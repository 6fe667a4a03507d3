//! Write: the status when it says something new, and the Events that tell what changed.

use super::*;

/// Derives the status and writes it if it says something new. A change of progress only (see
/// `progress_only`) is held back for `PROGRESS_INTERVAL`, and the returned delay says when to
/// reconcile again to write it; any other change is written at once.
pub(super) async fn write_status(
    rdc: &RegionalDataCenter,
    observation: &Observation<'_>,
    ctx: &Context,
) -> Result<Option<Duration>, Error> {
    // Against what the API server holds, which may be the operator's own write the cache has
    // not seen yet.
    let current = ctx.writer.current_status(rdc);
    let new_status = derive_status(observation, current.as_ref(), jiff::Timestamp::now());
    if needs_write(current.as_ref(), &new_status) {
        if progress_only(current.as_ref(), &new_status)
            && let Some(wait) = ctx.writer.progress_wait(rdc, PROGRESS_INTERVAL)
        {
            return Ok(Some(wait));
        }
        let api: Api<RegionalDataCenter> =
            Api::namespaced(ctx.client.clone(), &rdc.namespace().unwrap_or_default());
        ctx.writer
            .apply_status(&api, &rdc.name_any(), &new_status)
            .await?;
        tracing::info!(
            rdc = %ObjectRef::from(rdc),
            phase = ?new_status.phase,
            residency = ?new_status.residency,
            ready = new_status.ready.as_deref().unwrap_or_default(),
            "status written"
        );
        announce(rdc, current.as_ref(), &new_status, ctx);
        announce_guard(rdc, current.as_ref(), &new_status, ctx);
        announce_violations(rdc, current.as_ref(), &new_status, ctx);
        announce_retained(rdc, current.as_ref(), &new_status, ctx);
    }
    Ok(None)
}

pub(super) fn ready_condition(
    status: Option<&RegionalDataCenterStatus>,
) -> Option<(String, String, String)> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == READY)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Raises an Event when readiness changes: a Warning with the reason it is not ready, a Normal
/// one when it becomes ready. Each change is announced once, not at every reconcile.
pub(super) fn announce(
    rdc: &RegionalDataCenter,
    old: Option<&RegionalDataCenterStatus>,
    new: &RegionalDataCenterStatus,
    ctx: &Context,
) {
    let (Some((status, reason, message)), old) = (ready_condition(Some(new)), ready_condition(old))
    else {
        return;
    };
    if old
        .as_ref()
        .is_some_and(|(s, r, _)| *s == status && *r == reason)
    {
        return;
    }
    if status == "True" {
        publish(rdc, EventType::Normal, "Ready", &message, ctx);
    } else if !Reason::QUIET.iter().any(|quiet| quiet.as_str() == reason) {
        publish(rdc, EventType::Warning, &reason, &message, ctx);
    }
}

/// A Warning Event when the namespace's guard turns against the data centre itself: a namespace
/// of another or a wider jurisdiction, one shared with another jurisdiction's data centres, or
/// policies that are no longer the chart's.
pub(super) fn announce_guard(
    rdc: &RegionalDataCenter,
    old: Option<&RegionalDataCenterStatus>,
    new: &RegionalDataCenterStatus,
    ctx: &Context,
) {
    let guarded = |status: Option<&RegionalDataCenterStatus>| {
        status?
            .conditions
            .iter()
            .find(|c| c.type_ == ADMISSION_GUARDED)
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    let Some((reason, message)) = guarded(Some(new)) else {
        return;
    };
    let wrong = [
        Standing::JurisdictionConflict,
        Standing::NamespaceJurisdictionMismatch,
        Standing::NamespaceJurisdictionWider,
        Standing::PolicyModified,
    ];
    if wrong.iter().any(|r| r.as_str() == reason)
        && guarded(old).is_none_or(|(old_reason, _)| old_reason != reason)
    {
        publish(rdc, EventType::Warning, &reason, &message, ctx);
    }
}

/// A Warning Event when volumes of an earlier data centre of this name are found: they hold its
/// data, so only a person decides what becomes of them.
pub(super) fn announce_retained(
    rdc: &RegionalDataCenter,
    old: Option<&RegionalDataCenterStatus>,
    new: &RegionalDataCenterStatus,
    ctx: &Context,
) {
    let before = old
        .map(|s| s.retained_volumes.as_slice())
        .unwrap_or_default();
    if new.retained_volumes.is_empty() || new.retained_volumes == before {
        return;
    }
    let names = new.retained_volumes.join(" ");
    let namespace = rdc.namespace().unwrap_or_default();
    let message = format!(
        "{} volume(s) of an earlier RegionalDataCenter {} in namespace {namespace} were retained \
         with their data: {names}. They are not this one's (its UID differs), which never uses \
         them unless an admin says so. To delete them: kubectl delete pv {names}. To give them \
         to this one instead: kubectl label namespace {namespace} {ADOPT_LABEL}=<the earlier \
         UID, their label {}>, then delete this RegionalDataCenter with its new volumes \
         (spec.storage.retainOnDelete: false) and create it again",
        new.retained_volumes.len(),
        rdc.name_any(),
        resources::UID_LABEL,
    );
    publish(rdc, EventType::Warning, "RetainedVolumes", &message, ctx);
}

/// A Warning Event for each new violation, a Normal one for each that cleared.
pub(super) fn announce_violations(
    rdc: &RegionalDataCenter,
    old: Option<&RegionalDataCenterStatus>,
    new: &RegionalDataCenterStatus,
    ctx: &Context,
) {
    let old = old.map(|s| s.violations.as_slice()).unwrap_or_default();
    let same =
        |a: &Violation, b: &Violation| a.kind == b.kind && a.name == b.name && a.reason == b.reason;
    for violation in new
        .violations
        .iter()
        .filter(|v| !old.iter().any(|o| same(o, v)))
    {
        publish_about(
            rdc,
            EventType::Warning,
            &violation.reason,
            &violation.message,
            related(rdc, &violation.kind, &violation.name),
            ctx,
        );
    }
    for cleared in old
        .iter()
        .filter(|o| !new.violations.iter().any(|v| same(o, v)))
    {
        let message = format!(
            "{} {} is no longer {}",
            cleared.kind, cleared.name, cleared.reason
        );
        let about = related(rdc, &cleared.kind, &cleared.name);
        publish_about(
            rdc,
            EventType::Normal,
            "ViolationCleared",
            &message,
            about,
            ctx,
        );
    }
}

/// The pod or volume an Event is about, as its related object. Events of one reason on one
/// resource fold into a series that keeps the first message, unless their related objects
/// differ: so the clearance of a volume does not hide the clearance of a pod, nor a second pod
/// outside the jurisdiction behind the first.
pub(super) fn related(rdc: &RegionalDataCenter, kind: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some(kind.to_owned()),
        name: Some(name.to_owned()),
        // Pods live in the resource's namespace; volumes in none.
        namespace: (kind == "Pod").then(|| rdc.namespace()).flatten(),
        ..ObjectReference::default()
    }
}

pub(super) fn publish(
    rdc: &RegionalDataCenter,
    type_: EventType,
    reason: &str,
    message: &str,
    ctx: &Context,
) {
    publish_as(rdc, type_, reason, message, "Reconcile", None, ctx);
}

pub(super) fn publish_about(
    rdc: &RegionalDataCenter,
    type_: EventType,
    reason: &str,
    message: &str,
    about: ObjectReference,
    ctx: &Context,
) {
    publish_as(rdc, type_, reason, message, "Reconcile", Some(about), ctx);
}

pub(super) fn publish_as(
    rdc: &RegionalDataCenter,
    type_: EventType,
    reason: &str,
    message: &str,
    action: &str,
    related: Option<ObjectReference>,
    ctx: &Context,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(message.chars().take(1000).collect()),
        action: action.chars().take(128).collect(),
        secondary: related,
    };
    ctx.announcer.announce(event, rdc.object_ref(&()));
}

/// Writes the status, then the history and the report that follow it.
pub(super) async fn write_and_record(
    rdc: &RegionalDataCenter,
    observation: &Observation<'_>,
    ctx: &Context,
) -> Result<Option<Duration>, Error> {
    let before = ctx.writer.current_status(rdc);
    let deferred = write_status(rdc, observation, ctx).await?;
    let status = ctx.writer.current_status(rdc);
    if let Some(status) = &status {
        ctx.histories.record(rdc, status, ctx).await?;
    }
    if let Some(reports) = &ctx.reports {
        reports.reconciled(
            &rdc.namespace().unwrap_or_default(),
            &rdc.name_any(),
            before != status,
        );
    }
    Ok(deferred)
}

/// The status of a data centre whose jurisdiction this operator cannot read (a CRD older than
/// it): blocked, with what to do.
pub(super) async fn write_invalid_jurisdiction(
    rdc: &RegionalDataCenter,
    error: &str,
    ctx: &Context,
) -> Result<Action, Error> {
    let blocker = Blocker {
        reason: Reason::InvalidJurisdiction,
        message: format!(
            "spec.jurisdiction: {error}; install the current CRD (kubectl apply -f crds/)"
        ),
    };
    let nothing = residency::Audit {
        placements: vec![],
        copies: vec![],
        findings: vec![],
        residency: Residency::Pending,
    };
    let observation = Observation {
        generation: rdc.meta().generation,
        blocker: Some(&blocker),
        replicas: rdc.replicas(),
        ready_replicas: 0,
        bound_claims: 0,
        storage_hint: "",
        audit: &nothing,
        kubelet_settable_keys: &ctx.settings.keys.kubelet_settable(),
        refused: None,
        pods_refused: None,
        unschedulable: None,
        eviction_blocked: None,
        retained_volumes: &[],
        missing_pods: &[],
        guard: None,
    };
    Ok(match write_status(rdc, &observation, ctx).await? {
        Some(deferred) => Action::requeue(deferred),
        None => Action::await_change(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::rdc;

    #[test]
    fn a_violation_event_is_related_to_the_pod_or_volume_it_is_about() {
        let rdc = rdc("CN", 3);
        let pod = related(&rdc, "Pod", "vehicle-data-1");
        assert_eq!(pod.kind.as_deref(), Some("Pod"));
        assert_eq!(pod.name.as_deref(), Some("vehicle-data-1"));
        assert_eq!(pod.namespace.as_deref(), Some("fleet-cn"));
        let volume = related(&rdc, "PersistentVolume", "domicile-fleet-cn.vehicle-data-1");
        assert_eq!(volume.kind.as_deref(), Some("PersistentVolume"));
        assert_eq!(volume.namespace, None, "a volume is in no namespace");
        assert_ne!(pod, volume, "so the Recorder keeps their Events apart");
    }
}
