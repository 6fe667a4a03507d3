//! Enforce mode: evictions of pods outside the jurisdiction.

use super::*;

/// Enforce mode: evicts, through the Eviction API so disruption budgets hold, every pod that
/// runs on a node outside the jurisdiction. Its StatefulSet recreates it, and the required node
/// affinity lets it start only inside; a pod whose volume is pinned outside therefore cannot start
/// anywhere, which is the point: data is never moved, a person must act on the violation.
/// Returns why a disruption budget refused an eviction, naming the pod and the budget.
pub(super) async fn enforce<'a>(
    rdc: &RegionalDataCenter,
    audit: &residency::Audit,
    pods: impl Iterator<Item = &'a Pod> + Clone,
    ctx: &Context,
) -> Result<Option<String>, Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &rdc.namespace().unwrap_or_default());
    let mut blocked = None;
    for finding in audit
        .findings
        .iter()
        .filter(|f| f.reason == ViolationReason::NodeOutsideJurisdiction)
    {
        let Some(pod) = pods
            .clone()
            .find(|p| p.metadata.name.as_deref() == Some(finding.name.as_str()))
        else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match ctx.writer.evict(&api, pod).await? {
            Eviction::Evicted => {
                tracing::info!(rdc = %ObjectRef::from(rdc), pod = %finding.name, "evicted a pod outside the jurisdiction");
                let message = format!("evicted: {}", finding.message);
                let evicted = related(rdc, "Pod", &finding.name);
                publish_about(rdc, EventType::Normal, "Evicted", &message, evicted, ctx);
            }
            Eviction::Gone => {}
            Eviction::Refused(why) => {
                tracing::warn!(rdc = %ObjectRef::from(rdc), pod = %finding.name, %why, "a disruption budget refuses the eviction for now");
                blocked.get_or_insert_with(|| {
                    format!(
                        "Enforce cannot evict pod {}: {why}; the pod stays outside the jurisdiction \
                         until the budget allows it (kubectl get pdb -n {} names it; relax it, or \
                         delete the pod by hand)",
                        finding.name,
                        rdc.namespace().unwrap_or_default()
                    )
                });
            }
        }
    }
    Ok(blocked)
}
