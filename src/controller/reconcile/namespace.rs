//! The namespace's admission guard, and its jurisdiction label where the operator sets it.

use super::*;

/// The admission guard of the data centre's namespace. When the operator labels namespaces, one
/// without the label gets its jurisdiction first, unless its data centres disagree.
pub(super) async fn guard_namespace(
    rdc: &RegionalDataCenter,
    jurisdiction: &Jurisdiction,
    ctx: &Context,
) -> Result<Assessment, Error> {
    let namespace = rdc.namespace().unwrap_or_default();
    let caches = &ctx.caches;
    let mut neighbours: Vec<(String, Jurisdiction)> = caches
        .data_centers
        .state()
        .iter()
        .filter(|other| other.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|other| other.meta().deletion_timestamp.is_none() && other.uid() != rdc.uid())
        .filter_map(|other| {
            let jurisdiction = Jurisdiction::parse(&other.spec.jurisdiction).ok()?;
            Some((other.name_any(), jurisdiction))
        })
        .collect();
    neighbours.push((rdc.name_any(), jurisdiction.clone()));
    neighbours.sort_by(|a, b| a.0.cmp(&b.0));
    let mut labels = caches
        .namespaces
        .get(&ObjectRef::new(&namespace))
        .and_then(|ns| ns.metadata.labels.clone())
        .unwrap_or_default();
    let labelling = guard::Labelling::of(
        ctx.settings.label_namespaces,
        ctx.settings.label_any_namespace,
        &labels,
    );
    if labelling == guard::Labelling::Allowed
        && !labels.contains_key(NAMESPACE_LABEL)
        && let Ok(Some(code)) = guard::namespace_code(neighbours.iter().map(|(_, j)| j))
        && label_namespace(&namespace, &code, ctx).await?
    {
        labels.insert(NAMESPACE_LABEL.to_owned(), code);
    }
    let policies = caches.policies.state();
    let bindings = caches.bindings.state();
    let policies: Vec<_> = policies.iter().map(AsRef::as_ref).collect();
    let bindings: Vec<_> = bindings.iter().map(AsRef::as_ref).collect();
    Ok(guard::assess(&guard::Inputs {
        namespace: &namespace,
        namespace_labels: Some(&labels),
        jurisdiction,
        neighbours: &neighbours,
        policies: &policies,
        bindings: &bindings,
        exempt_label: &ctx.settings.exempt_label,
        labelling,
    }))
}

/// Sets the jurisdiction label of a namespace that has none; true when it was set. Never taken
/// from another manager (no force), and a namespace the operator may not label is not tried
/// again until it restarts, so a refusal costs one request, not one per reconcile.
pub(super) async fn label_namespace(
    namespace: &str,
    code: &str,
    ctx: &Context,
) -> Result<bool, Error> {
    if ctx
        .unlabellable
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(namespace)
    {
        return Ok(false);
    }
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(ctx.client.clone());
    let patch = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": {NAMESPACE_LABEL: code}},
    });
    ctx.writer.metrics().write("apply", "Namespace");
    match api
        .patch(
            namespace,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&patch),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(%namespace, %code, "namespace labelled with its jurisdiction");
            Ok(true)
        }
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 403 => {
            tracing::error!(%namespace, %code, message = %status.message, "cannot label the namespace with its jurisdiction; label it by hand");
            ctx.unlabellable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(namespace.to_owned());
            Ok(false)
        }
        Err(source) => Err(Error::Write {
            verb: "apply",
            kind: "Namespace",
            object: namespace.to_owned(),
            source,
        }),
    }
}
