//! The kube-rs Controller wiring: watches, the reconcile pipeline, finalizer, backoff, events.

mod apply;
mod backoff;
mod cleanup;
mod reconcile;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{StreamExt, future};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

pub use apply::Writer;
use backoff::Backoffs;
pub use reconcile::pods_and_claims;

use crate::api::RegionalDataCenter;
use crate::resources::{DATA_VOLUME, NodeLabelKeys, RDC_LABEL, RDC_NAMESPACE_LABEL};
use crate::telemetry::Health;

/// The finalizer that lets the operator clean cluster-scoped objects before a resource goes.
pub const FINALIZER: &str = "domicile.dev/cleanup";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("serializing an object: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

/// Every value `Error::category` can take.
pub const ERROR_CATEGORIES: [&str; 6] = [
    "conflict",
    "invalid",
    "forbidden",
    "api",
    "serialize",
    "finalizer",
];

impl Error {
    /// A small fixed set of categories (`ERROR_CATEGORIES`), for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Kube(kube::Error::Api(status)) if status.code == 409 => "conflict",
            Self::Kube(kube::Error::Api(status)) if status.code == 422 || status.code == 400 => {
                "invalid"
            }
            Self::Kube(kube::Error::Api(status)) if status.code == 403 => "forbidden",
            Self::Kube(_) => "api",
            Self::Serialize(_) => "serialize",
            Self::Finalizer(_) => "finalizer",
        }
    }
}

/// Operator settings, fixed at start-up; reconcile never reads the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    pub keys: NodeLabelKeys,
    /// Provisioner of the managed StorageClasses in Dynamic mode.
    pub provisioner: String,
    pub concurrency: u16,
    pub admin_address: SocketAddr,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub writer: Writer,
    pub recorder: Recorder,
    pub nodes: Store<Node>,
    pub volumes: Store<PersistentVolume>,
    pub classes: Store<StorageClass>,
    pub data_centers: Store<RegionalDataCenter>,
    backoffs: Backoffs,
    synced: Arc<CacheSync>,
}

/// The caches whose first complete listing makes the operator ready.
#[derive(Clone, Copy, Debug)]
enum Cache {
    Nodes,
    Volumes,
    DataCenters,
    Classes,
}

/// Tracks which caches have listed everything once; sets the readiness flag and fires a
/// one-off signal when all have.
struct CacheSync {
    listed: [AtomicBool; 4],
    ready: Arc<AtomicBool>,
    all_synced: std::sync::Mutex<Option<futures::channel::oneshot::Sender<()>>>,
    all_synced_rx: std::sync::Mutex<Option<futures::channel::oneshot::Receiver<()>>>,
}

impl CacheSync {
    fn new(ready: Arc<AtomicBool>) -> Self {
        let (tx, rx) = futures::channel::oneshot::channel();
        Self {
            listed: Default::default(),
            ready,
            all_synced: std::sync::Mutex::new(Some(tx)),
            all_synced_rx: std::sync::Mutex::new(Some(rx)),
        }
    }

    /// Whether every cache has listed everything, so the audit sees the whole cluster.
    fn synced(&self) -> bool {
        self.listed
            .iter()
            .all(|listed| listed.load(Ordering::Acquire))
    }

    /// A watch-event inspector that records the cache's InitDone.
    fn observer<K>(
        self: &Arc<Self>,
        cache: Cache,
    ) -> impl FnMut(&Result<watcher::Event<K>, watcher::Error>) + use<K> {
        let this = Arc::clone(self);
        move |event| {
            if matches!(event, Ok(watcher::Event::InitDone)) {
                this.listed[cache as usize].store(true, Ordering::Release);
                if this.synced() && !this.ready.swap(true, Ordering::AcqRel) {
                    tracing::info!("caches synced");
                    let sender = this
                        .all_synced
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take();
                    if let Some(sender) = sender {
                        let _ = sender.send(());
                    }
                }
            }
        }
    }

    /// A watch of every `K` that fills a cache and records when it has listed everything.
    fn cached_watch<K>(
        self: &Arc<Self>,
        api: Api<K>,
        cache: Cache,
    ) -> (
        Store<K>,
        impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K>,
    )
    where
        K: kube::Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let (store, writer) = reflector::store();
        let events = watcher(api, watcher::Config::default())
            .default_backoff()
            .inspect(self.observer(cache))
            .reflect(writer);
        (store, events)
    }

    /// Resolves once, when every cache has listed everything for the first time.
    fn all_synced(&self) -> impl std::future::Future<Output = ()> + use<> {
        let receiver = self
            .all_synced_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        async move {
            if let Some(receiver) = receiver {
                let _ = receiver.await;
            }
        }
    }
}

/// The RegionalDataCenter a claim name `data-<rdc>-<ordinal>` belongs to.
fn rdc_of_claim(claim: &str) -> Option<&str> {
    let rest = claim.strip_prefix(DATA_VOLUME)?.strip_prefix('-')?;
    let (rdc, ordinal) = rest.rsplit_once('-')?;
    ordinal.parse::<u32>().ok().map(|_| rdc)
}

/// The RegionalDataCenter a volume serves: by the labels on the volumes the operator makes, or
/// by the claim a provisioned volume is bound to.
fn rdc_of_volume(pv: &PersistentVolume) -> Option<ObjectRef<RegionalDataCenter>> {
    let labels = pv.labels();
    if let (Some(name), Some(namespace)) = (labels.get(RDC_LABEL), labels.get(RDC_NAMESPACE_LABEL))
    {
        return Some(ObjectRef::new(name).within(namespace));
    }
    let claim = pv.spec.as_ref()?.claim_ref.as_ref()?;
    let rdc = rdc_of_claim(claim.name.as_deref()?)?;
    Some(ObjectRef::new(rdc).within(claim.namespace.as_deref()?))
}

/// The RegionalDataCenter a labelled pod or claim belongs to.
fn rdc_of_labelled<K: ResourceExt>(object: &K) -> Option<ObjectRef<RegionalDataCenter>> {
    let name = object.labels().get(RDC_LABEL)?;
    Some(ObjectRef::new(name).within(object.namespace().as_deref()?))
}

/// A mapper that sends a change of any `K` to every RegionalDataCenter.
fn all_rdcs<K>(
    store: Store<RegionalDataCenter>,
) -> impl Fn(K) -> Vec<ObjectRef<RegionalDataCenter>> {
    move |_| {
        store
            .state()
            .iter()
            .map(|rdc| ObjectRef::from(rdc.as_ref()))
            .collect()
    }
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(client: Client, settings: Settings, health: Health) -> anyhow::Result<()> {
    let labelled = watcher::Config::default().labels(RDC_LABEL);
    let rdcs: Api<RegionalDataCenter> = Api::all(client.clone());
    // Fail fast with a clear message when the CRD is missing, instead of a watch that retries.
    rdcs.list(&kube::api::ListParams::default().limit(1)).await.map_err(|err| {
        anyhow::anyhow!("cannot list RegionalDataCenters ({err}); is the CRD installed? kubectl apply -f crds/")
    })?;

    // Each cache says when it has listed everything by its watch's InitDone event. Nothing here
    // awaits Store::wait_until_ready: that future wakes only its latest waiter, and the
    // controller already waits on its own store that way.
    let synced = Arc::new(CacheSync::new(health.ready.clone()));
    let (nodes, node_events) = synced.cached_watch(Api::<Node>::all(client.clone()), Cache::Nodes);
    let (volumes, volume_events) =
        synced.cached_watch(Api::<PersistentVolume>::all(client.clone()), Cache::Volumes);
    let (classes, class_events) =
        synced.cached_watch(Api::<StorageClass>::all(client.clone()), Cache::Classes);
    let (data_centers, rdc_events) = synced.cached_watch(rdcs, Cache::DataCenters);
    let (node_events, volume_events, class_events, rdc_events) = (
        node_events.touched_objects(),
        volume_events.touched_objects(),
        class_events.touched_objects(),
        rdc_events.applied_objects(),
    );
    let controller = Controller::for_stream(rdc_events, data_centers.clone())
        .with_config(ControllerConfig::default().concurrency(settings.concurrency));
    let _ = health.data_centers.set(data_centers.clone());
    // Once every cache is synced, every RegionalDataCenter is reconciled once more: a restarted
    // or newly elected operator picks up everything, including what it skipped while syncing.
    let all_synced = synced.all_synced();

    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), Reporter::from("domicile")),
        writer: Writer::new(health.metrics.clone()),
        nodes: nodes.clone(),
        volumes: volumes.clone(),
        classes,
        data_centers: data_centers.clone(),
        backoffs: Backoffs::default(),
        synced: synced.clone(),
        client: client.clone(),
        settings,
    });

    controller
        .owns(Api::<StatefulSet>::all(client.clone()), labelled.clone())
        .owns(Api::<Service>::all(client.clone()), labelled.clone())
        .owns(Api::<NetworkPolicy>::all(client.clone()), labelled.clone())
        .watches(Api::<Pod>::all(client.clone()), labelled.clone(), |pod| {
            rdc_of_labelled(&pod)
        })
        .watches(
            Api::<PersistentVolumeClaim>::all(client.clone()),
            labelled,
            |claim| rdc_of_labelled(&claim),
        )
        .watches_stream(volume_events, |pv| rdc_of_volume(&pv))
        // A node's labels decide eligibility for every data centre of its jurisdiction, and a
        // relabel loses the old value, so a node change concerns every data centre.
        .watches_stream(node_events, all_rdcs(data_centers.clone()))
        .watches_stream(class_events, all_rdcs(data_centers))
        .reconcile_all_on(futures::stream::once(all_synced))
        .shutdown_on_signal()
        .run(reconcile::reconcile, reconcile::error_policy, context)
        .for_each(|result| {
            if let Err(err) = result {
                tracing::debug!(error = %err, "reconcile stream");
            }
            future::ready(())
        })
        .await;
    tracing::info!("controller stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeSpec};

    #[test]
    fn claim_names_map_back_to_their_data_centre() {
        assert_eq!(rdc_of_claim("data-vehicle-data-2"), Some("vehicle-data"));
        assert_eq!(rdc_of_claim("data-a-0"), Some("a"));
        assert_eq!(rdc_of_claim("data-vehicle-data"), None, "no ordinal");
        assert_eq!(
            rdc_of_claim("logs-vehicle-data-0"),
            None,
            "another template"
        );
    }

    #[test]
    fn provisioned_volumes_map_through_their_claim() {
        let pv = PersistentVolume {
            spec: Some(PersistentVolumeSpec {
                claim_ref: Some(ObjectReference {
                    name: Some("data-records-1".to_owned()),
                    namespace: Some("health-de".to_owned()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            rdc_of_volume(&pv),
            Some(ObjectRef::new("records").within("health-de"))
        );
        assert_eq!(rdc_of_volume(&PersistentVolume::default()), None);
    }
}
