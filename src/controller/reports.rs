//! Keeps one policy report per namespace with data centres (see `crate::report`): rebuilt after
//! each reconcile from the statuses, written only when a result, or the set of data centres it
//! belongs to, changed. Where the report API is not served nothing is written, and the log says
//! why, once.

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use super::Context;
use crate::report::{self, Format, REPORT_NAME, ReportBody, ReportResource};
use crate::resources::FIELD_MANAGER;

/// What was last written, or found, in one namespace.
#[derive(Clone, PartialEq)]
struct Written {
    body: ReportBody,
    owners: Vec<OwnerReference>,
}

pub struct Reports {
    resource: ReportResource,
    api_resource: ApiResource,
    /// Serialises the rebuilds: the data centres of one namespace may be reconciled at once,
    /// and each rebuild must see the statuses the other wrote.
    last: tokio::sync::Mutex<HashMap<String, Written>>,
}

impl Reports {
    /// The reports of `format`, if the API server serves them; otherwise None, and a log line
    /// saying why no report will be written.
    pub async fn discover(client: &Client, format: Format) -> Option<Self> {
        let resource = format.resource()?;
        let served = match client
            .list_api_group_resources(&resource.api_version())
            .await
        {
            Ok(list) => list.resources.iter().any(|r| r.name == resource.plural),
            Err(kube::Error::Api(status)) if status.code == 404 => false,
            Err(err) => {
                tracing::warn!(
                    api = %resource.api_version(),
                    error = %err,
                    "no policy report is written: cannot tell whether the API server serves {}",
                    resource.kind
                );
                return None;
            }
        };
        if !served {
            tracing::info!(
                api = %resource.api_version(),
                "no policy report is written: the API server does not serve {} {}; install the CRD {} \
                 and restart the operator, or choose another --reports format",
                resource.api_version(),
                resource.kind,
                resource.crd()
            );
            return None;
        }
        tracing::info!(api = %resource.api_version(), kind = resource.kind, "writing one policy report per namespace");
        let gvk = GroupVersionKind::gvk(resource.group, resource.version, resource.kind);
        Some(Self {
            resource,
            api_resource: ApiResource::from_gvk_with_plural(&gvk, resource.plural),
            last: tokio::sync::Mutex::default(),
        })
    }

    /// Rebuilds the report of `namespace` and writes it if it changed. A failed write is logged
    /// and counted, and tried again at the next reconcile in the namespace; it never fails the
    /// reconcile of a data centre.
    pub async fn refresh(&self, namespace: &str, ctx: &Context) {
        if let Err(err) = self.try_refresh(namespace, ctx).await {
            ctx.writer.metrics().report_failed(self.resource.kind);
            tracing::warn!(namespace, kind = self.resource.kind, error = %err, "cannot write the policy report");
        }
    }

    async fn try_refresh(&self, namespace: &str, ctx: &Context) -> Result<(), kube::Error> {
        let mut last = self.last.lock().await;
        let data_centers: Vec<_> = ctx
            .caches
            .data_centers
            .state()
            .into_iter()
            .filter(|rdc| {
                rdc.namespace().as_deref() == Some(namespace)
                    && rdc.meta().deletion_timestamp.is_none()
            })
            .collect();
        if data_centers.is_empty() {
            // The garbage collector deletes the report with its last owner.
            last.remove(namespace);
            return Ok(());
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), namespace, &self.api_resource);
        let previous = match last.get(namespace) {
            Some(written) => Some(written.clone()),
            None => api.get_opt(REPORT_NAME).await?.map(|found| Written {
                body: serde_json::from_value(serde_json::Value::Object(
                    found.data.as_object().cloned().unwrap_or_default(),
                ))
                .unwrap_or_default(),
                owners: found.metadata.owner_references.unwrap_or_default(),
            }),
        };
        let statuses: Vec<_> = data_centers
            .iter()
            .map(|rdc| ctx.writer.current_status(rdc))
            .collect();
        let body = report::build(
            data_centers
                .iter()
                .zip(&statuses)
                .map(|(rdc, status)| (rdc.as_ref(), status.as_ref())),
            previous.as_ref().map(|p| &p.body),
            jiff::Timestamp::now(),
        );
        let mut owners: Vec<OwnerReference> = data_centers
            .iter()
            .filter_map(|rdc| rdc.owner_ref(&()))
            .map(|owner| OwnerReference {
                controller: None,
                block_owner_deletion: None,
                ..owner
            })
            .collect();
        owners.sort_by(|a, b| a.name.cmp(&b.name));
        let written = Written { body, owners };
        if previous.as_ref() == Some(&written) {
            last.insert(namespace.to_owned(), written);
            return Ok(());
        }
        let mut patch = json!({
            "apiVersion": self.resource.api_version(),
            "kind": self.resource.kind,
            "metadata": {
                "name": REPORT_NAME,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "domicile"},
                "ownerReferences": written.owners,
            },
            "results": written.body.results,
            "summary": written.body.summary,
        });
        if self.resource.group == "openreports.io" {
            patch["source"] = json!(report::SOURCE);
        }
        ctx.writer.metrics().write("apply", self.resource.kind);
        // Someone else's write to the report is taken back: force.
        let applied = api
            .patch(
                REPORT_NAME,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await;
        match applied {
            Ok(_) => {
                last.insert(namespace.to_owned(), written);
                Ok(())
            }
            Err(err) => {
                last.remove(namespace);
                Err(err)
            }
        }
    }
}
