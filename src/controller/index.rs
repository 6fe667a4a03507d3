//! Which cached objects belong to which RegionalDataCenter, kept beside a watch's cache, so that a
//! reconcile reads its own pods, claims and volumes by key instead of scanning every object of
//! the cluster (at 500 data centres, scans were most of a reconcile's time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use crate::api::RegionalDataCenter;

type Owner = ObjectRef<RegionalDataCenter>;

/// The objects of one watch grouped by the data centre they belong to, updated from the same
/// events as the watch's cache. It mirrors the cache: a relist replaces it whole once done.
pub struct OwnerIndex<K: Resource<DynamicType = ()>> {
    owner_of: fn(&K) -> Option<Owner>,
    state: Mutex<State<K>>,
}

struct State<K: Resource<DynamicType = ()>> {
    owners: HashMap<ObjectRef<K>, Owner>,
    members: HashMap<Owner, Vec<ObjectRef<K>>>,
    /// Owners of the objects listed so far while the watch relists.
    relisted: Option<HashMap<ObjectRef<K>, Owner>>,
}

impl<K: Resource<DynamicType = ()>> State<K> {
    fn remove(&mut self, key: &ObjectRef<K>) {
        let Some(owner) = self.owners.remove(key) else {
            return;
        };
        if let Some(members) = self.members.get_mut(&owner) {
            members.retain(|member| member != key);
            if members.is_empty() {
                self.members.remove(&owner);
            }
        }
    }

    fn insert(&mut self, key: ObjectRef<K>, owner: Owner) {
        self.members
            .entry(owner.clone())
            .or_default()
            .push(key.clone());
        self.owners.insert(key, owner);
    }
}

/// The cache key of `object`, without the version and uid that `ObjectRef::from_obj` keeps
/// (they take no part in lookups, and would only take memory).
fn key<K: Resource<DynamicType = ()>>(object: &K) -> ObjectRef<K> {
    let meta = object.meta();
    let key = ObjectRef::new(meta.name.as_deref().unwrap_or_default());
    match meta.namespace.as_deref() {
        Some(namespace) => key.within(namespace),
        None => key,
    }
}

impl<K: Resource<DynamicType = ()>> OwnerIndex<K> {
    pub fn new(owner_of: fn(&K) -> Option<Owner>) -> Self {
        Self {
            owner_of,
            state: Mutex::new(State {
                owners: HashMap::new(),
                members: HashMap::new(),
                relisted: None,
            }),
        }
    }

    /// Takes in one event of the watch, after the cache took it.
    pub fn apply(&self, event: &watcher::Event<K>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Init => state.relisted = Some(HashMap::new()),
            watcher::Event::InitApply(object) => {
                if let Some(owner) = (self.owner_of)(object) {
                    state
                        .relisted
                        .get_or_insert_default()
                        .insert(key(object), owner);
                }
            }
            watcher::Event::InitDone => {
                let owners = state.relisted.take().unwrap_or_default();
                state.members.clear();
                state.owners.clear();
                for (key, owner) in owners {
                    state.insert(key, owner);
                }
            }
            watcher::Event::Apply(object) => {
                let key = key(object);
                state.remove(&key);
                if let Some(owner) = (self.owner_of)(object) {
                    state.insert(key, owner);
                }
            }
            watcher::Event::Delete(object) => state.remove(&key(object)),
        }
    }

    /// The cached objects that belong to `owner`. One the cache no longer holds is left out.
    pub fn objects(&self, store: &Store<K>, owner: &Owner) -> Vec<Arc<K>>
    where
        K: Clone,
    {
        let keys = {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.members.get(owner).cloned().unwrap_or_default()
        };
        keys.iter().filter_map(|key| store.get(key)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ObjectMeta;

    fn pod(name: &str, owner: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("fleet-cn".to_owned()),
                labels: Some([("owner".to_owned(), owner.to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    fn owner_of(pod: &Pod) -> Option<Owner> {
        let owner = pod.metadata.labels.as_ref()?.get("owner")?;
        Some(ObjectRef::new(owner).within("fleet-cn"))
    }

    /// A cache and its index, fed the same events, as a watch feeds them.
    struct Watched {
        store: Store<Pod>,
        writer: kube::runtime::reflector::store::Writer<Pod>,
        index: OwnerIndex<Pod>,
    }

    impl Watched {
        fn new() -> Self {
            let (store, writer) = kube::runtime::reflector::store();
            Self {
                store,
                writer,
                index: OwnerIndex::new(owner_of),
            }
        }

        fn feed(&mut self, event: watcher::Event<Pod>) {
            self.writer.apply_watcher_event(&event);
            self.index.apply(&event);
        }

        fn names(&self, owner: &str) -> Vec<String> {
            let owner = ObjectRef::new(owner).within("fleet-cn");
            let mut names: Vec<String> = self
                .index
                .objects(&self.store, &owner)
                .iter()
                .filter_map(|pod| pod.metadata.name.clone())
                .collect();
            names.sort();
            names
        }
    }

    #[test]
    fn objects_follow_their_owner_label_and_leave_when_deleted() {
        let mut watched = Watched::new();
        watched.feed(watcher::Event::Apply(pod("a-0", "a")));
        watched.feed(watcher::Event::Apply(pod("a-1", "a")));
        watched.feed(watcher::Event::Apply(pod("b-0", "b")));
        assert_eq!(watched.names("a"), ["a-0", "a-1"]);
        // Relabelled: it moves, and is not counted twice.
        watched.feed(watcher::Event::Apply(pod("a-1", "b")));
        watched.feed(watcher::Event::Apply(pod("a-1", "b")));
        assert_eq!(watched.names("a"), ["a-0"]);
        assert_eq!(watched.names("b"), ["a-1", "b-0"]);
        watched.feed(watcher::Event::Delete(pod("b-0", "b")));
        assert_eq!(watched.names("b"), ["a-1"]);
        watched.feed(watcher::Event::Delete(pod("a-0", "a")));
        assert!(watched.names("a").is_empty());
        let state = watched.index.state.lock().expect("lock");
        assert_eq!(state.members.len(), 1, "no empty group is kept");
    }

    #[test]
    fn a_relist_replaces_everything_once_done() {
        let mut watched = Watched::new();
        watched.feed(watcher::Event::Apply(pod("a-0", "a")));
        watched.feed(watcher::Event::Apply(pod("gone-0", "gone")));
        watched.feed(watcher::Event::Init);
        watched.feed(watcher::Event::InitApply(pod("a-0", "a")));
        watched.feed(watcher::Event::InitApply(pod("a-1", "a")));
        // Until the relist is done, lookups see what was there before, as the cache does.
        assert_eq!(watched.names("a"), ["a-0"]);
        assert_eq!(watched.names("gone"), ["gone-0"]);
        watched.feed(watcher::Event::InitDone);
        assert_eq!(watched.names("a"), ["a-0", "a-1"]);
        assert!(
            watched.names("gone").is_empty(),
            "deleted while the watch was down"
        );
    }

    #[test]
    fn objects_without_an_owner_are_not_indexed() {
        let mut watched = Watched::new();
        let mut stray = pod("stray", "x");
        stray.metadata.labels = None;
        watched.feed(watcher::Event::Apply(stray));
        assert!(watched.index.state.lock().expect("lock").owners.is_empty());
    }
}
