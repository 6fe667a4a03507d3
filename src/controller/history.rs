//! Keeps the `ResidencyHistory` of each data centre (see `crate::history`): after a status is
//! written, the stays and violations that began or ended are appended, in one write of the
//! history's status. The history is not owned by its data centre: it outlives it, as evidence.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::{Context, Error};
use crate::api::{
    RegionalDataCenter, RegionalDataCenterStatus, ResidencyHistory, ResidencyHistoryStatus,
};
use crate::resources::FIELD_MANAGER;

/// The label every history carries, naming its data centre (as the children's label does).
pub const HISTORY_LABEL: &str = "domicile.dev/history-of";

/// What this process last wrote of a history, until the watch shows it.
struct Written {
    status: ResidencyHistoryStatus,
    resource_version: String,
}

pub struct Histories {
    store: Store<ResidencyHistory>,
    written: Mutex<HashMap<ObjectRef<ResidencyHistory>, Written>>,
}

/// Whether resourceVersion `a` comes before `b` (etcd revisions; unparsable ones are not).
fn older(a: &str, b: &str) -> bool {
    matches!((a.parse::<u64>(), b.parse::<u64>()), (Ok(a), Ok(b)) if a < b)
}

impl Histories {
    pub fn new(store: Store<ResidencyHistory>) -> Self {
        Self {
            store,
            written: Mutex::default(),
        }
    }

    /// Whether a ResidencyHistory of the data centre's name exists that the operator did not
    /// make (it lacks the labels the operator gives its histories): it is never written into,
    /// or a tenant's entries would pass for evidence.
    pub fn taken(&self, rdc: &RegionalDataCenter) -> bool {
        let key = ObjectRef::new(&rdc.name_any()).within(&rdc.namespace().unwrap_or_default());
        self.store.get(&key).is_some_and(|history| {
            let labels = history.labels();
            labels
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str)
                != Some("domicile")
                || labels.get(HISTORY_LABEL) != Some(&rdc.name_any())
        })
    }

    /// The history as the API server holds it, as far as this process knows: the cached one,
    /// unless its own last write is newer. None: there is no history yet.
    fn current(&self, key: &ObjectRef<ResidencyHistory>) -> Option<ResidencyHistoryStatus> {
        let cached = self.store.get(key);
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        match (cached, written.get(key)) {
            (Some(cached), Some(own))
                if older(
                    cached.resource_version().as_deref().unwrap_or_default(),
                    &own.resource_version,
                ) =>
            {
                Some(own.status.clone())
            }
            (Some(cached), _) => Some(cached.status.clone().unwrap_or_default()),
            (None, Some(own)) => Some(own.status.clone()),
            (None, None) => None,
        }
    }

    /// Appends to the history of `rdc` what `status` changes in it, if anything.
    pub async fn record(
        &self,
        rdc: &RegionalDataCenter,
        status: &RegionalDataCenterStatus,
        ctx: &Context,
    ) -> Result<(), Error> {
        if self.taken(rdc) {
            return Ok(());
        }
        let name = rdc.name_any();
        let namespace = rdc.namespace().unwrap_or_default();
        let key = ObjectRef::new(&name).within(&namespace);
        let existing = self.current(&key);
        let nodes = &ctx.caches.nodes;
        let keys = &ctx.settings.keys;
        let node_label = |node: &str| {
            nodes
                .get(&ObjectRef::new(node))
                .and_then(|n| n.labels().get(&keys.jurisdiction).cloned())
        };
        let Some(next) = crate::history::record(
            &existing.clone().unwrap_or_default(),
            status,
            node_label,
            jiff::Timestamp::now(),
        ) else {
            return Ok(());
        };
        let api: Api<ResidencyHistory> = Api::namespaced(ctx.client.clone(), &namespace);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        if existing.is_none() {
            let object = json!({
                "apiVersion": ResidencyHistory::api_version(&()),
                "kind": ResidencyHistory::kind(&()),
                "metadata": {
                    "name": name,
                    "labels": {
                        "app.kubernetes.io/managed-by": "domicile",
                        HISTORY_LABEL: name,
                    },
                },
                "spec": {"regionalDataCenter": name},
            });
            ctx.writer.metrics().write("apply", "ResidencyHistory");
            api.patch(&name, &params, &Patch::Apply(&object))
                .await
                .map_err(|source| Error::Write {
                    verb: "apply",
                    kind: "ResidencyHistory",
                    object: name.clone(),
                    source,
                })?;
        }
        let patch = json!({
            "apiVersion": ResidencyHistory::api_version(&()),
            "kind": ResidencyHistory::kind(&()),
            "status": next,
        });
        ctx.writer
            .metrics()
            .write("apply", "ResidencyHistoryStatus");
        let written = match api
            .patch_status(&name, &params, &Patch::Apply(&patch))
            .await
        {
            Ok(written) => written,
            // Gone meanwhile (its namespace deleted and made again, say) while this process still
            // knew its own last write: forgotten, so the next record makes it anew.
            Err(kube::Error::Api(status)) if status.code == 404 => {
                self.written
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                return Err(Error::Write {
                    verb: "apply status of",
                    kind: "ResidencyHistory",
                    object: name.clone(),
                    source: kube::Error::Api(status),
                });
            }
            Err(source) => {
                return Err(Error::Write {
                    verb: "apply status of",
                    kind: "ResidencyHistory",
                    object: name.clone(),
                    source,
                });
            }
        };
        let mut own = self.written.lock().unwrap_or_else(|p| p.into_inner());
        // Entries the watch has caught up with are not needed any more.
        own.retain(|key, w| {
            self.store.get(key).is_none_or(|cached| {
                older(
                    cached.resource_version().as_deref().unwrap_or_default(),
                    &w.resource_version,
                )
            })
        });
        own.insert(
            key,
            Written {
                status: written.status.clone().unwrap_or_default(),
                resource_version: written.resource_version().unwrap_or_default(),
            },
        );
        Ok(())
    }
}
