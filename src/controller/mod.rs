//! The kube-rs Controller wiring: watches, the reconcile pipeline, finalizer, backoff, events.

mod apply;
mod backoff;
mod cached;
mod cleanup;
mod declared;
mod diff;
mod events;
mod history;
mod index;
mod reconcile;
mod reports;
mod routing;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::{StreamExt, future};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Namespace, Node, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

pub use apply::Writer;
use backoff::{Backoffs, WatchBackoff};
use cached::{CachedChild, CachedClaim, CachedPod, CachedVolume};
use events::Announcer;
use index::OwnerIndex;
use routing::{NodeRoutes, RoutingCaches, Touch};

use crate::api::{RegionalDataCenter, ResidencyHistory};
use crate::copies::{
    Backup, BackupLike, BackupStorageLocation, Schedule, VolumeSnapshot, VolumeSnapshotClass,
    VolumeSnapshotLocation,
};
use crate::resources::{DATA_VOLUME, DnsPeer, NodeLabelKeys, RDC_LABEL, RDC_NAMESPACE_LABEL};
use crate::telemetry::{Health, Watches};

/// The finalizer that lets the operator clean cluster-scoped objects before a resource goes.
pub const FINALIZER: &str = "domicile.dev/cleanup";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A write the API server refused or did not answer: what, of which object, and why.
    #[error("{verb} {kind} {object}: {source}")]
    Write {
        verb: &'static str,
        kind: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("serializing an object: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// One of a small fixed set of categories (`telemetry::ERROR_CATEGORIES`), for logs and
    /// metrics.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Kube(source) | Self::Write { source, .. } => match source {
                kube::Error::Api(status) if status.code == 409 => "conflict",
                kube::Error::Api(status) if status.code == 422 || status.code == 400 => "invalid",
                kube::Error::Api(status) if status.code == 403 => "forbidden",
                _ => "api",
            },
            Self::Serialize(_) => "serialize",
            Self::Finalizer(_) => "finalizer",
        }
    }

    /// The API server refused to create something because its namespace is being deleted:
    /// nothing to retry, the data centre goes with the namespace.
    pub fn namespace_terminating(&self) -> bool {
        match self {
            Self::Kube(kube::Error::Api(status))
            | Self::Write {
                source: kube::Error::Api(status),
                ..
            } => {
                status.code == 403
                    && status.details.as_ref().is_some_and(|details| {
                        details
                            .causes
                            .iter()
                            .any(|cause| cause.reason == "NamespaceTerminating")
                    })
            }
            _ => false,
        }
    }
}

/// Operator settings, fixed at start-up; reconcile never reads the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    pub keys: NodeLabelKeys,
    /// Provisioner of the managed StorageClasses in Dynamic mode.
    pub provisioner: String,
    /// The directory on the nodes under which every local volume lives.
    pub local_root: String,
    /// The cluster DNS pods the network fence lets data pods query.
    pub dns: DnsPeer,
    pub concurrency: u16,
    pub admin_address: SocketAddr,
    /// Label the namespace of a data centre with its jurisdiction when it has no such label,
    /// where an admin allowed it (`domicile.dev/labelling=allowed`), or anywhere with
    /// `label_any_namespace`.
    pub label_namespaces: bool,
    pub label_any_namespace: bool,
    /// The ConfigMap (namespace, name) the claims admission policy reads the classes that
    /// declare a jurisdiction from, kept by the operator; none, none kept.
    pub declared_classes: Option<(String, String)>,
    /// The namespace label that exempts a namespace from the admission policies.
    pub exempt_label: String,
    /// The policy reports to keep, one per namespace with data centres or a jurisdiction label.
    pub reports: crate::report::Format,
    /// The most results of one report may take, in bytes (see `report::split`).
    pub report_part_bytes: usize,
}

/// The watch caches every reconcile reads instead of asking the API server.
pub struct Caches {
    pub nodes: Store<Node>,
    pub volumes: Store<CachedVolume>,
    /// Volumes by the data centre whose labels or claim they carry.
    pub volumes_by_owner: Arc<OwnerIndex<CachedVolume>>,
    pub classes: Store<StorageClass>,
    /// VolumeSnapshots and their classes; empty where the snapshot API is not served.
    pub snapshots: Store<VolumeSnapshot>,
    pub snapshot_classes: Store<VolumeSnapshotClass>,
    /// Velero's Backups, Schedules and locations; empty where Velero's API is not served.
    pub backups: Store<Backup>,
    pub schedules: Store<Schedule>,
    pub storage_locations: Store<BackupStorageLocation>,
    pub snapshot_locations: Store<VolumeSnapshotLocation>,
    pub data_centers: Store<RegionalDataCenter>,
    pub statefulsets: Store<CachedChild<StatefulSet>>,
    pub services: Store<CachedChild<Service>>,
    pub network_policies: Store<CachedChild<NetworkPolicy>>,
    pub pods: Store<CachedPod>,
    pub pods_by_owner: Arc<OwnerIndex<CachedPod>>,
    pub claims: Store<CachedClaim>,
    pub claims_by_owner: Arc<OwnerIndex<CachedClaim>>,
    /// Events of StatefulSets that could not create a pod (FailedCreate).
    pub refusals: Store<CoreEvent>,
    /// Namespaces, for their jurisdiction label (nothing else is kept).
    pub namespaces: Store<Namespace>,
    /// domicile's admission policies and their bindings (labelled `domicile.dev/guard`).
    pub policies: Store<ValidatingAdmissionPolicy>,
    pub bindings: Store<ValidatingAdmissionPolicyBinding>,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub writer: Writer,
    pub announcer: Announcer,
    pub caches: Caches,
    backoffs: Backoffs,
    watches: Arc<Watches>,
    /// The ConfigMap of declared classes the claims admission policy reads, when kept.
    declared: Option<Arc<declared::Declared>>,
    /// Namespaces the operator was refused labelling (by RBAC, or another label manager).
    unlabellable: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The policy reports, when their API is served.
    reports: Option<reports::Reports>,
    /// The residency history of each data centre.
    histories: history::Histories,
}

impl Context {
    /// A pod or claim of `namespace` changed: where the namespace belongs to a jurisdiction, its
    /// report is rebuilt, for what no data centre covers.
    fn undeclared_may_change(&self, namespace: Option<&str>) {
        let (Some(reports), Some(namespace)) = (&self.reports, namespace) else {
            return;
        };
        let labelled = self
            .caches
            .namespaces
            .get(&ObjectRef::new(namespace))
            .is_some_and(|ns| ns.labels().contains_key(crate::guard::NAMESPACE_LABEL));
        if labelled {
            reports.touch(namespace);
        }
    }
}

/// How long the Events still queued when the controller stops may take to be published.
const EVENTS_AT_EXIT: Duration = Duration::from_secs(5);

/// The field selector of the Events that say a StatefulSet could not create a pod.
pub const REFUSAL_EVENTS: &str = "involvedObject.kind=StatefulSet,reason=FailedCreate";

/// A watch that fills a cache, driven by a task of its own, so that it keeps reading, notices a
/// lost API server and reconnects even while every reconcile is busy (a watch polled only by the
/// controller stalls with it, and its connection sits in CLOSE-WAIT). The controller gets the
/// objects it touches through a channel.
struct CachedWatch<K: kube::Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    /// Every object an event listed, applied or deleted (for the RegionalDataCenters, not
    /// deleted), and how.
    touched: futures::channel::mpsc::UnboundedReceiver<(K, Touch)>,
    /// The cached objects by the data centre they belong to.
    index: Arc<OwnerIndex<K>>,
    task: tokio::task::JoinHandle<()>,
}

/// What a watch keeps and passes on.
struct WatchOptions<K> {
    /// Pass deleted objects on to the controller.
    deleted_too: bool,
    /// Drops what the operator never reads before an object reaches the cache.
    trim: fn(&mut K),
    /// The data centre an object belongs to, for the watch's index.
    owner: fn(&K) -> Option<ObjectRef<RegionalDataCenter>>,
    /// Pass the objects of a (re)listing on only once it is complete. The cache takes a
    /// listing's objects in all at once at its end, and the controller reconciles only what its
    /// cache holds: an object created while the watch relisted (after an API server restart)
    /// would otherwise be dropped by the controller and never reconciled.
    hold_listed: bool,
}

impl<K> WatchOptions<K> {
    fn plain() -> Self {
        Self {
            deleted_too: true,
            trim: |_| {},
            owner: |_| None,
            hold_listed: false,
        }
    }
}

/// Starts the watch of `K`: it reports to `watches` under `resource`, retries within seconds
/// after the API server went away, and signals `synced` once every watch has listed everything.
fn cached_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    resource: &'static str,
    watches: &Arc<Watches>,
    synced: &Arc<SyncSignal>,
    options: WatchOptions<K>,
) -> CachedWatch<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    watches.register(resource);
    let (store, writer) = reflector::store();
    let (watches, synced) = (Arc::clone(watches), Arc::clone(synced));
    let (sender, touched) = futures::channel::mpsc::unbounded();
    let WatchOptions {
        deleted_too,
        trim,
        owner,
        hold_listed,
    } = options;
    let index = Arc::new(OwnerIndex::new(owner));
    let indexed = Arc::clone(&index);
    let events = watcher(api, config)
        .inspect(move |event| {
            let now = Instant::now();
            match event {
                Ok(event) => {
                    let listed = matches!(event, watcher::Event::InitDone);
                    watches.event(resource, listed, now);
                    if listed {
                        synced.check(&watches);
                    }
                }
                Err(err) => {
                    tracing::warn!(%resource, error = %err, "watch failed; retrying");
                    watches.error(resource, now);
                }
            }
        })
        .backoff(WatchBackoff::default())
        .modify(move |object: &mut K| {
            // Nothing the operator reads; on children the largest part of the object.
            object.meta_mut().managed_fields = None;
            trim(object);
        })
        .reflect(writer);
    let mut held = Vec::new();
    let task = tokio::spawn(events.for_each(move |event| {
        // Before the trigger goes out, so the reconcile it starts finds the object.
        if let Ok(event) = &event {
            indexed.apply(event);
        }
        let touched = match event {
            Ok(watcher::Event::Init) => {
                held.clear();
                None
            }
            Ok(watcher::Event::InitApply(object)) if hold_listed => {
                held.push(object);
                None
            }
            Ok(watcher::Event::InitApply(object)) => Some((object, Touch::Listed)),
            Ok(watcher::Event::InitDone) => {
                // The cache holds the listing now.
                for object in held.drain(..) {
                    let _ = sender.unbounded_send((object, Touch::Listed));
                }
                None
            }
            Ok(watcher::Event::Apply(object)) => Some((object, Touch::Applied)),
            Ok(watcher::Event::Delete(object)) if deleted_too => Some((object, Touch::Deleted)),
            _ => None,
        };
        if let Some(object) = touched {
            // The receiver goes only when the controller stops, and this task with it.
            let _ = sender.unbounded_send(object);
        }
        future::ready(())
    }));
    CachedWatch {
        store,
        touched,
        index,
        task,
    }
}

/// Stops the watch tasks when the controller stops (a clean shutdown or a lost lease).
struct WatchTasks(Vec<tokio::task::AbortHandle>);

impl Drop for WatchTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Fires once, when every watch has listed everything for the first time, and sets readiness.
struct SyncSignal {
    ready: Arc<std::sync::atomic::AtomicBool>,
    /// Every watch is registered: until then a watch not yet started would count as listed (the
    /// snapshot and Velero watches start after their APIs are discovered).
    sealed: std::sync::atomic::AtomicBool,
    sender: std::sync::Mutex<Option<futures::channel::oneshot::Sender<()>>>,
    /// Woken too once everything is listed (the keepers of the declared classes and of the
    /// reports wait for it).
    also: Vec<Arc<tokio::sync::Notify>>,
}

impl SyncSignal {
    fn new(
        ready: Arc<std::sync::atomic::AtomicBool>,
        also: Vec<Arc<tokio::sync::Notify>>,
    ) -> (Arc<Self>, futures::channel::oneshot::Receiver<()>) {
        let (sender, receiver) = futures::channel::oneshot::channel();
        let signal = Self {
            ready,
            sealed: std::sync::atomic::AtomicBool::new(false),
            sender: std::sync::Mutex::new(Some(sender)),
            also,
        };
        (Arc::new(signal), receiver)
    }

    /// Every watch is registered: the signal fires once they have all listed, maybe now.
    fn seal(&self, watches: &Watches) {
        self.sealed.store(true, Ordering::Release);
        self.check(watches);
    }

    fn check(&self, watches: &Watches) {
        if self.sealed.load(Ordering::Acquire)
            && watches.listed()
            && !self.ready.swap(true, Ordering::AcqRel)
        {
            tracing::info!("caches synced");
            let sender = self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(sender) = sender {
                let _ = sender.send(());
            }
            for also in &self.also {
                also.notify_one();
            }
        }
    }
}

/// The RegionalDataCenters in the namespaces a Velero backup or schedule copies.
fn rdcs_copied_by(
    data_centers: &Store<RegionalDataCenter>,
    backup: &BackupLike<'_>,
) -> Vec<ObjectRef<RegionalDataCenter>> {
    data_centers
        .state()
        .iter()
        .filter(|rdc| {
            rdc.namespace()
                .is_some_and(|namespace| backup.spec.includes(&namespace))
        })
        .map(|rdc| ObjectRef::from(rdc.as_ref()))
        .collect()
}

/// The data centres of an object's namespace with `spec.members` for which `concerns` holds.
fn covering<K: ResourceExt>(
    data_centers: &Store<RegionalDataCenter>,
    object: &K,
    concerns: impl Fn(&RegionalDataCenter) -> bool,
) -> Vec<ObjectRef<RegionalDataCenter>> {
    covering_in(data_centers, object.namespace(), concerns)
}

/// The data centres of `namespace` with `spec.members` for which `concerns` holds.
fn covering_in(
    data_centers: &Store<RegionalDataCenter>,
    namespace: Option<String>,
    concerns: impl Fn(&RegionalDataCenter) -> bool,
) -> Vec<ObjectRef<RegionalDataCenter>> {
    if namespace.is_none() {
        return Vec::new();
    }
    data_centers
        .state()
        .iter()
        .filter(|rdc| rdc.spec.members.is_some() && rdc.metadata.namespace == namespace)
        .filter(|rdc| concerns(rdc))
        .map(|rdc| ObjectRef::from(rdc.as_ref()))
        .collect()
}

/// The RegionalDataCenter whose data claim a snapshot copies.
fn rdc_of_snapshot(snapshot: &VolumeSnapshot) -> Option<ObjectRef<RegionalDataCenter>> {
    let rdc = rdc_of_claim(snapshot.source_claim()?)?;
    Some(ObjectRef::new(rdc).within(snapshot.namespace().as_deref()?))
}

/// The RegionalDataCenter a claim name `data-<rdc>-<ordinal>` belongs to.
fn rdc_of_claim(claim: &str) -> Option<&str> {
    let rest = claim.strip_prefix(DATA_VOLUME)?.strip_prefix('-')?;
    let (rdc, ordinal) = rest.rsplit_once('-')?;
    ordinal.parse::<u32>().ok().map(|_| rdc)
}

/// The RegionalDataCenter a volume serves: by the labels on the volumes the operator makes, or
/// by the claim a provisioned volume is bound to.
fn rdc_of_volume(pv: &CachedVolume) -> Option<ObjectRef<RegionalDataCenter>> {
    let labels = pv.labels();
    if let (Some(name), Some(namespace)) = (labels.get(RDC_LABEL), labels.get(RDC_NAMESPACE_LABEL))
    {
        return Some(ObjectRef::new(name).within(namespace));
    }
    let claim = pv.spec.as_ref()?.claim_ref.as_ref()?;
    let rdc = rdc_of_claim(claim.name.as_deref()?)?;
    Some(ObjectRef::new(rdc).within(claim.namespace.as_deref()?))
}

/// The RegionalDataCenter a pod belongs to: by the data claim it mounts, or else by its label
/// (whose data it reads counts first: a label is the pod's owner's to choose).
fn rdc_of_pod(pod: &CachedPod) -> Option<ObjectRef<RegionalDataCenter>> {
    let by_claim = pod
        .claims()
        .find_map(rdc_of_claim)
        .and_then(|rdc| Some(ObjectRef::new(rdc).within(pod.namespace().as_deref()?)));
    by_claim.or_else(|| rdc_of_labelled(pod))
}

/// The RegionalDataCenter a labelled pod or claim belongs to.
fn rdc_of_labelled<K: ResourceExt>(object: &K) -> Option<ObjectRef<RegionalDataCenter>> {
    let name = object.labels().get(RDC_LABEL)?;
    Some(ObjectRef::new(name).within(object.namespace().as_deref()?))
}

/// The objects of a watch, for the controller's triggers.
fn objects<K>(
    touched: impl futures::Stream<Item = (K, Touch)>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> {
    touched.map(|(object, _)| Ok(object))
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

/// The RegionalDataCenter whose StatefulSet an Event is about (they share the name).
fn rdc_of_refusal(event: &CoreEvent) -> Option<ObjectRef<RegionalDataCenter>> {
    let regarding = &event.involved_object;
    Some(ObjectRef::new(regarding.name.as_deref()?).within(regarding.namespace.as_deref()?))
}

/// Objects per list request when a watch (re)lists. Each page is held whole, managedFields and
/// all, until its objects are trimmed for the cache: at the client's default of 500 pods the
/// pages, not the caches, set the operator's peak memory.
const LIST_PAGE: u32 = 100;

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(client: Client, settings: Settings, health: Health) -> anyhow::Result<()> {
    let labelled = watcher::Config::default()
        .page_size(LIST_PAGE)
        .labels(RDC_LABEL);
    let rdcs: Api<RegionalDataCenter> = Api::all(client.clone());
    // Fail fast with a clear message when the CRD is missing, instead of a watch that retries.
    rdcs.list(&kube::api::ListParams::default().limit(1)).await.map_err(|err| {
        anyhow::anyhow!("cannot list RegionalDataCenters ({err}); is the CRD installed? kubectl apply -f crds/")
    })?;
    Api::<ResidencyHistory>::all(client.clone())
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map_err(|err| {
            anyhow::anyhow!("cannot list ResidencyHistories ({err}); is the CRD installed? kubectl apply -f crds/")
        })?;

    // Each watch says when it has listed everything by its InitDone event. Nothing here awaits
    // Store::wait_until_ready: that future wakes only its latest waiter.
    let watches = Arc::clone(&health.watches);
    // Wakes the keeper of the declared classes: a class changed, its ConfigMap did, or every
    // watch has listed.
    let classes_changed = Arc::new(tokio::sync::Notify::new());
    // Wakes the keeper of the reports once every watch has listed.
    let reports_synced = Arc::new(tokio::sync::Notify::new());
    let (synced, all_synced) = SyncSignal::new(
        health.ready.clone(),
        vec![Arc::clone(&classes_changed), Arc::clone(&reports_synced)],
    );
    let all = || watcher::Config::default().page_size(LIST_PAGE);
    macro_rules! watch {
        ($kind:ty, $config:expr, $resource:literal) => {
            watch!($kind, $config, $resource, WatchOptions::plain())
        };
        ($kind:ty, $config:expr, $resource:literal, $options:expr) => {
            cached_watch(
                Api::<$kind>::all(client.clone()),
                $config,
                $resource,
                &watches,
                &synced,
                $options,
            )
        };
    }
    // Of a Node only its name and labels matter (jurisdiction, hostname): its status, rewritten
    // by every heartbeat, its spec and its annotations are dropped before they reach the cache.
    let nodes = watch!(
        Node,
        all(),
        "nodes",
        WatchOptions {
            trim: |node| {
                node.metadata.annotations = None;
                node.spec = None;
                node.status = None;
            },
            ..WatchOptions::plain()
        }
    );
    let volumes = watch!(
        CachedVolume,
        all(),
        "persistentvolumes",
        WatchOptions {
            owner: rdc_of_volume,
            ..WatchOptions::plain()
        }
    );
    let classes = watch!(StorageClass, all(), "storageclasses");
    let data_centers = watch!(
        RegionalDataCenter,
        all(),
        "regionaldatacenters",
        WatchOptions {
            deleted_too: false,
            hold_listed: true,
            ..WatchOptions::plain()
        }
    );
    let statefulsets = watch!(CachedChild<StatefulSet>, labelled.clone(), "statefulsets");
    let services = watch!(CachedChild<Service>, labelled.clone(), "services");
    let network_policies = watch!(
        CachedChild<NetworkPolicy>,
        labelled.clone(),
        "networkpolicies"
    );
    // Of pods and claims, only what the audit and the status read (see `cached`).
    // Every pod, not only the labelled ones: a pod of anyone's that mounts a data claim is a
    // data centre's too (kept trimmed to a few fields each).
    let pods = watch!(
        CachedPod,
        all(),
        "pods",
        WatchOptions {
            trim: cached::trim_pod,
            owner: rdc_of_pod,
            ..WatchOptions::plain()
        }
    );
    // Every claim, for the same reason, and for the claims spec.members covers.
    let claims = watch!(
        CachedClaim,
        all(),
        "persistentvolumeclaims",
        WatchOptions {
            trim: cached::trim_claim,
            owner: rdc_of_labelled,
            ..WatchOptions::plain()
        }
    );
    let refusals = watch!(CoreEvent, all().fields(REFUSAL_EVENTS), "events");
    // Of a namespace only its labels matter (its jurisdiction, its exemption).
    let namespaces = watch!(
        Namespace,
        all(),
        "namespaces",
        WatchOptions {
            trim: |namespace| {
                namespace.metadata.annotations = None;
                namespace.spec = None;
                namespace.status = None;
            },
            ..WatchOptions::plain()
        }
    );
    let histories = watch!(ResidencyHistory, all(), "residencyhistories");
    let guarded = || all().labels(crate::guard::GUARD_LABEL);
    let policies = watch!(
        ValidatingAdmissionPolicy,
        guarded(),
        "validatingadmissionpolicies"
    );
    let bindings = watch!(
        ValidatingAdmissionPolicyBinding,
        guarded(),
        "validatingadmissionpolicybindings"
    );
    // Snapshots are watched where their API is served (the CSI snapshotter's CRDs installed).
    let (snapshots, snapshot_classes) = if crate::copies::snapshots_served(&client).await {
        (
            Some(watch!(
                VolumeSnapshot,
                all(),
                "volumesnapshots",
                WatchOptions {
                    owner: rdc_of_snapshot,
                    ..WatchOptions::plain()
                }
            )),
            Some(watch!(VolumeSnapshotClass, all(), "volumesnapshotclasses")),
        )
    } else {
        (None, None)
    };
    // And Velero's, where its CRDs are installed.
    let velero = if crate::copies::velero_served(&client).await {
        Some((
            watch!(Backup, all(), "backups"),
            watch!(Schedule, all(), "schedules"),
            watch!(BackupStorageLocation, all(), "backupstoragelocations"),
            watch!(VolumeSnapshotLocation, all(), "volumesnapshotlocations"),
        ))
    } else {
        None
    };
    let declared = settings.declared_classes.clone().map(|(namespace, name)| {
        let watch = cached_watch(
            Api::<ConfigMap>::namespaced(client.clone(), &namespace),
            all().fields(&format!("metadata.name={name}")),
            "configmaps",
            &watches,
            &synced,
            WatchOptions::plain(),
        );
        (namespace, name, watch)
    });
    // Every watch is registered; the caches are synced once they have all listed.
    synced.seal(&watches);
    let _tasks = WatchTasks(
        [
            nodes.task.abort_handle(),
            volumes.task.abort_handle(),
            classes.task.abort_handle(),
            data_centers.task.abort_handle(),
            statefulsets.task.abort_handle(),
            services.task.abort_handle(),
            network_policies.task.abort_handle(),
            pods.task.abort_handle(),
            claims.task.abort_handle(),
            refusals.task.abort_handle(),
            namespaces.task.abort_handle(),
            policies.task.abort_handle(),
            bindings.task.abort_handle(),
            histories.task.abort_handle(),
            // Nothing follows a change of a history: only the operator writes them.
            tokio::spawn(histories.touched.for_each(|_| future::ready(()))).abort_handle(),
        ]
        .into_iter()
        .chain(
            declared
                .as_ref()
                .map(|(_, _, watch)| watch.task.abort_handle()),
        )
        .chain(snapshots.as_ref().map(|watch| watch.task.abort_handle()))
        .chain(
            snapshot_classes
                .as_ref()
                .map(|watch| watch.task.abort_handle()),
        )
        .chain(velero.iter().flat_map(|(b, s, l, v)| {
            [
                b.task.abort_handle(),
                s.task.abort_handle(),
                l.task.abort_handle(),
                v.task.abort_handle(),
            ]
        }))
        .collect(),
    );

    // The operator's own status writes come back through the watch; they trigger nothing.
    let writer = Writer::new(health.metrics.clone());
    let own_writes = writer.clone();
    let data_center_changes = objects(data_centers.touched).filter(move |rdc| {
        future::ready(
            !rdc.as_ref()
                .is_ok_and(|rdc| own_writes.is_own_status_echo(rdc)),
        )
    });
    let controller = Controller::for_stream(data_center_changes, data_centers.store.clone())
        .with_config(ControllerConfig::default().concurrency(settings.concurrency));
    let _ = health.data_centers.set(data_centers.store.clone());
    // Once every cache is synced, every RegionalDataCenter is reconciled once more: a restarted
    // or newly elected operator picks up everything, including what it skipped while syncing.
    let all_synced = async move {
        let _ = all_synced.await;
    };

    let declared_classes = declared.as_ref().map(|(namespace, name, watch)| {
        Arc::new(declared::Declared::new(
            namespace.clone(),
            name.clone(),
            watch.store.clone(),
        ))
    });
    let (announcer, publisher) = Announcer::start(
        writer.clone(),
        Recorder::new(client.clone(), Reporter::from("domicile")),
    );
    let context = Arc::new(Context {
        announcer,
        writer,
        caches: Caches {
            nodes: nodes.store,
            volumes: volumes.store,
            volumes_by_owner: volumes.index,
            classes: classes.store,
            snapshots: snapshots
                .as_ref()
                .map_or_else(|| reflector::store().0, |watch| watch.store.clone()),
            snapshot_classes: snapshot_classes
                .as_ref()
                .map_or_else(|| reflector::store().0, |watch| watch.store.clone()),
            backups: velero
                .as_ref()
                .map_or_else(|| reflector::store().0, |(b, ..)| b.store.clone()),
            schedules: velero
                .as_ref()
                .map_or_else(|| reflector::store().0, |(_, s, ..)| s.store.clone()),
            storage_locations: velero
                .as_ref()
                .map_or_else(|| reflector::store().0, |(_, _, l, _)| l.store.clone()),
            snapshot_locations: velero
                .as_ref()
                .map_or_else(|| reflector::store().0, |(.., v)| v.store.clone()),
            data_centers: data_centers.store.clone(),
            statefulsets: statefulsets.store,
            services: services.store,
            network_policies: network_policies.store,
            pods: pods.store,
            pods_by_owner: pods.index,
            claims: claims.store,
            claims_by_owner: claims.index,
            refusals: refusals.store,
            namespaces: namespaces.store,
            policies: policies.store,
            bindings: bindings.store,
        },
        backoffs: Backoffs::default(),
        unlabellable: std::sync::Mutex::default(),
        declared: declared_classes.clone(),
        reports: reports::Reports::discover(&client, settings.reports).await,
        histories: history::Histories::new(histories.store),
        watches: watches.clone(),
        client: client.clone(),
        settings,
    });

    // The list of declared classes the claims admission policy reads, kept by a task of its own.
    let _keeper = declared.map(|(_, _, watch)| {
        let wake = Arc::clone(&classes_changed);
        let echoes = watch.touched.for_each(move |_| {
            wake.notify_one();
            future::ready(())
        });
        let keeper = declared::keep(
            Arc::clone(&context),
            context.declared.clone().expect("kept when watched"),
            Arc::clone(&classes_changed),
        );
        WatchTasks(vec![
            tokio::spawn(echoes).abort_handle(),
            tokio::spawn(keeper).abort_handle(),
        ])
    });
    // The policy reports, rebuilt by a task of their own (see reports::keep).
    let _report_keeper = WatchTasks(vec![
        tokio::spawn(reports::keep(Arc::clone(&context), reports_synced)).abort_handle(),
    ]);
    let class_wake = Arc::clone(&classes_changed);
    let snapshot_class_wake = Arc::clone(&classes_changed);
    // The backups policy reads the jurisdiction namespaces and Velero's locations from the same
    // ConfigMap.
    let (namespace_wake, location_wake, snapshot_location_wake) = (
        Arc::clone(&classes_changed),
        Arc::clone(&classes_changed),
        Arc::clone(&classes_changed),
    );
    // Where snapshots are not served, streams that end at once.
    let snapshots_touched = snapshots.map_or_else(
        || futures::channel::mpsc::unbounded().1,
        |watch| watch.touched,
    );
    let snapshot_classes_touched = snapshot_classes.map_or_else(
        || futures::channel::mpsc::unbounded().1,
        |watch| watch.touched,
    );
    // Where Velero is not served, streams that end at once.
    let (backups_touched, schedules_touched, locations_touched, snapshot_locations_touched) =
        match velero {
            Some((b, s, l, v)) => (b.touched, s.touched, l.touched, v.touched),
            None => (
                futures::channel::mpsc::unbounded().1,
                futures::channel::mpsc::unbounded().1,
                futures::channel::mpsc::unbounded().1,
                futures::channel::mpsc::unbounded().1,
            ),
        };
    let rdcs_of_backups = data_centers.store.clone();
    let rdcs_of_schedules = data_centers.store.clone();
    let rdcs_by_namespace = data_centers.store.clone();
    let routing_context = Arc::clone(&context);
    let pod_routes = Arc::clone(&context);
    let namespace_reports = Arc::clone(&context);
    let rdcs_of_claims = data_centers.store.clone();
    let claim_routes = Arc::clone(&context);
    let volume_routes = Arc::clone(&context);
    let rdcs_of_snapshots = data_centers.store.clone();
    let node_routes = NodeRoutes::default();
    controller
        .owns_stream(objects(statefulsets.touched))
        .owns_stream(objects(services.touched))
        .owns_stream(objects(network_policies.touched))
        .reconcile_on(pods.touched.flat_map(move |(pod, _)| {
            let mut concerned = covering(&pod_routes.caches.data_centers, &pod, |rdc| {
                let listed = pod_routes.writer.with_status(rdc, |status| {
                    status.is_some_and(|s| {
                        s.placements
                            .iter()
                            .any(|p| Some(&p.pod) == pod.metadata.name.as_ref())
                    })
                });
                listed
                    || rdc.spec.members.as_ref().is_some_and(|selector| {
                        crate::residency::members::selects(selector, pod.metadata.labels.as_ref())
                    })
            });
            concerned.extend(rdc_of_pod(&pod));
            // Any pod of a jurisdiction namespace is in its report, covered or not.
            pod_routes.undeclared_may_change(pod.namespace().as_deref());
            futures::stream::iter(concerned)
        }))
        // A claim concerns its own data centre, and those covering members in its namespace (a
        // covered pod may mount it whatever its labels say).
        .reconcile_on(claims.touched.flat_map(move |(claim, _)| {
            let mut concerned = covering(&rdcs_of_claims, &claim, |_| true);
            concerned.extend(rdc_of_labelled(&claim));
            claim_routes.undeclared_may_change(claim.namespace().as_deref());
            futures::stream::iter(concerned)
        }))
        .watches_stream(objects(refusals.touched), |event| rdc_of_refusal(&event))
        // A volume concerns its own data centre, and, through the claim it is bound to, those
        // covering members in that claim's namespace (and its report).
        .reconcile_on(volumes.touched.flat_map(move |(pv, _)| {
            let namespace = pv
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref()?.namespace.clone());
            let mut concerned = covering_in(
                &volume_routes.caches.data_centers,
                namespace.clone(),
                |_| true,
            );
            concerned.extend(rdc_of_volume(&pv));
            volume_routes.undeclared_may_change(namespace.as_deref());
            futures::stream::iter(concerned)
        }))
        // A Node event reaches only the data centres it concerns (none for a heartbeat).
        .reconcile_on(nodes.touched.flat_map(move |(node, touch)| {
            let caches = &routing_context.caches;
            let writer = &routing_context.writer;
            let routing = RoutingCaches {
                data_centers: &caches.data_centers,
                pods: &caches.pods,
                volumes: &caches.volumes,
                phase: &|rdc| writer.with_status(rdc, |status| status?.phase),
            };
            let (concerned, anyone) =
                node_routes.route(&node, touch, &routing_context.settings.keys, &routing);
            if anyone {
                // The pods on it, and the volumes pinned to it, that no data centre covers are
                // judged anew in their namespaces' reports.
                let mut namespaces = routing::namespaces_on(&node, &routing);
                namespaces.sort();
                namespaces.dedup();
                for namespace in namespaces {
                    routing_context.undeclared_may_change(Some(&namespace));
                }
            }
            futures::stream::iter(concerned)
        }))
        .watches_stream(
            objects(classes.touched.inspect(move |_| class_wake.notify_one())),
            all_rdcs(data_centers.store.clone()),
        )
        // A namespace's labels decide its guard, for its data centres, and whether what runs in
        // it is reported when no data centre is there.
        .reconcile_on(
            namespaces
                .touched
                .inspect(move |_| namespace_wake.notify_one())
                .flat_map(move |(namespace, _)| {
                    let name = namespace.name_any();
                    if let Some(reports) = &namespace_reports.reports {
                        reports.touch(&name);
                    }
                    let concerned: Vec<ObjectRef<RegionalDataCenter>> = rdcs_by_namespace
                        .state()
                        .iter()
                        .filter(|rdc| rdc.namespace().as_deref() == Some(name.as_str()))
                        .map(|rdc| ObjectRef::from(rdc.as_ref()))
                        .collect();
                    futures::stream::iter(concerned)
                }),
        )
        .watches_stream(
            objects(policies.touched),
            all_rdcs(data_centers.store.clone()),
        )
        .watches_stream(
            objects(bindings.touched),
            all_rdcs(data_centers.store.clone()),
        )
        // A snapshot concerns the data centre of the claim it copies, and those covering
        // members in its namespace.
        .reconcile_on(snapshots_touched.flat_map(move |(snapshot, _)| {
            let mut concerned = covering(&rdcs_of_snapshots, &snapshot, |_| true);
            concerned.extend(rdc_of_snapshot(&snapshot));
            futures::stream::iter(concerned)
        }))
        .watches_stream(
            objects(snapshot_classes_touched.inspect(move |_| snapshot_class_wake.notify_one())),
            all_rdcs(data_centers.store.clone()),
        )
        // A backup or a schedule concerns the data centres of the namespaces it copies.
        .reconcile_on(backups_touched.flat_map(move |(backup, _)| {
            futures::stream::iter(rdcs_copied_by(&rdcs_of_backups, &BackupLike::from(&backup)))
        }))
        .reconcile_on(schedules_touched.flat_map(move |(schedule, _)| {
            futures::stream::iter(rdcs_copied_by(
                &rdcs_of_schedules,
                &BackupLike::from(&schedule),
            ))
        }))
        .watches_stream(
            objects(locations_touched.inspect(move |_| location_wake.notify_one())),
            all_rdcs(data_centers.store.clone()),
        )
        .watches_stream(
            objects(
                snapshot_locations_touched.inspect(move |_| snapshot_location_wake.notify_one()),
            ),
            all_rdcs(data_centers.store),
        )
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
    // The reconciles are gone, and with them the announcer: the Events still queued are
    // published before the operator exits, for a few seconds at most.
    if !publisher.drain(EVENTS_AT_EXIT).await {
        tracing::warn!("Events still queued at exit were not published");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;

    #[test]
    fn a_namespace_being_deleted_is_told_from_other_refusals() {
        let status = |causes: serde_json::Value| {
            let status: kube::core::Status = serde_json::from_value(serde_json::json!({
                "status": "Failure", "code": 403, "reason": "Forbidden",
                "message": "unable to create new content in namespace fleet-cn because it is being terminated",
                "details": {"name": "vehicle-data", "kind": "statefulsets", "causes": causes}
            }))
            .expect("a Status");
            Error::Write {
                verb: "apply",
                kind: "StatefulSet",
                object: "fleet-cn/vehicle-data".to_owned(),
                source: kube::Error::Api(Box::new(status)),
            }
        };
        let terminating = status(serde_json::json!([{
            "reason": "NamespaceTerminating", "field": "metadata.namespace"
        }]));
        assert!(terminating.namespace_terminating());
        assert_eq!(terminating.category(), "forbidden");
        assert!(!status(serde_json::json!([])).namespace_terminating());
    }

    #[test]
    fn a_failed_write_names_what_and_whom_and_keeps_its_category() {
        let refused = kube::Error::Api(Box::new(
            kube::core::Status::failure(
                "spec: Forbidden: updates to statefulset spec for fields other than ...",
                "Invalid",
            )
            .with_code(422),
        ));
        let error = Error::Write {
            verb: "apply",
            kind: "StatefulSet",
            object: "fleet-cn/vehicle-data".to_owned(),
            source: refused,
        };
        assert_eq!(error.category(), "invalid");
        let text = error.to_string();
        assert!(
            text.starts_with("apply StatefulSet fleet-cn/vehicle-data: "),
            "{text}"
        );
        assert!(crate::telemetry::ERROR_CATEGORIES.contains(&error.category()));
    }

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
        let pv = CachedVolume {
            spec: Some(cached::VolumeSpec {
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
        assert_eq!(rdc_of_volume(&CachedVolume::default()), None);
    }
}
