//! Copies of the data that other controllers make: CSI VolumeSnapshots (snapshot.storage.k8s.io/v1,
//! served once the external-snapshotter's CRDs are installed) and Velero's Backups and Schedules
//! (velero.io/v1) with the locations they store to. Only the fields the audit reads are declared;
//! the rest of each object is ignored when it is read.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

pub const SNAPSHOT_GROUP: &str = "snapshot.storage.k8s.io";
pub const SNAPSHOT_VERSION: &str = "v1";

/// The annotation that makes a VolumeSnapshotClass the default of its driver.
pub const DEFAULT_CLASS_ANNOTATION: &str = "snapshot.storage.kubernetes.io/is-default-class";

/// The key prefix of a VolumeSnapshotClass in the ConfigMap of declared classes (StorageClass
/// names are lowercase DNS names, so the capital keeps the two kinds apart).
pub const SNAPSHOT_CLASS_KEY_PREFIX: &str = "VolumeSnapshotClass.";

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshot {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: VolumeSnapshotSpec,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSpec {
    #[serde(default)]
    pub source: VolumeSnapshotSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_class_name: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_content_name: Option<String>,
}

/// A VolumeSnapshotClass: its labels declare where its snapshots are kept.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotClass {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub driver: String,
}

pub const VELERO_GROUP: &str = "velero.io";
pub const VELERO_VERSION: &str = "v1";

/// A Velero Backup: which namespaces it copies, and where to.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BackupSpec,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Empty: every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included_namespaces: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_namespaces: Option<Vec<String>>,
    /// Empty: the default BackupStorageLocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_snapshot_locations: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_volumes: Option<bool>,
    /// True: cluster-scoped objects too, every PersistentVolume among them, whatever namespace
    /// its claim is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_cluster_resources: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included_cluster_scoped_resources: Option<Vec<String>>,
}

/// A Velero Schedule: Backups made from its template, again and again.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ScheduleSpec,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    #[serde(default)]
    pub template: BackupSpec,
}

/// Where Velero stores backups (an object-store bucket); its labels declare the jurisdiction.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocation {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: BackupStorageLocationSpec,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
}

/// Where Velero keeps the volume snapshots of a backup; its labels declare the jurisdiction.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotLocation {
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: VolumeSnapshotLocationSpec,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSnapshotLocationSpec {
    #[serde(default)]
    pub provider: String,
}

macro_rules! external_resource {
    ($kind:ident, $plural:literal, $scope:ty) => {
        external_resource!($kind, $plural, $scope, SNAPSHOT_GROUP, SNAPSHOT_VERSION);
    };
    ($kind:ident, $plural:literal, $scope:ty, $group:expr, $version:expr) => {
        impl kube::Resource for $kind {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> Cow<'_, str> {
                Cow::Borrowed(stringify!($kind))
            }
            fn group(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($group)
            }
            fn version(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($version)
            }
            fn plural(_: &()) -> Cow<'_, str> {
                Cow::Borrowed($plural)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

external_resource!(VolumeSnapshot, "volumesnapshots", NamespaceResourceScope);
external_resource!(
    VolumeSnapshotClass,
    "volumesnapshotclasses",
    k8s_openapi::ClusterResourceScope
);

external_resource!(
    Backup,
    "backups",
    NamespaceResourceScope,
    VELERO_GROUP,
    VELERO_VERSION
);
external_resource!(
    Schedule,
    "schedules",
    NamespaceResourceScope,
    VELERO_GROUP,
    VELERO_VERSION
);
external_resource!(
    BackupStorageLocation,
    "backupstoragelocations",
    NamespaceResourceScope,
    VELERO_GROUP,
    VELERO_VERSION
);
external_resource!(
    VolumeSnapshotLocation,
    "volumesnapshotlocations",
    NamespaceResourceScope,
    VELERO_GROUP,
    VELERO_VERSION
);

/// Whether a Velero namespace pattern matches `namespace`: a name, or a glob as Velero reads
/// one (`*` any run, `?` one character, `[a-z]` / `[!a-z]` a class).
fn namespace_matches(pattern: &str, namespace: &str) -> bool {
    glob(
        &pattern.chars().collect::<Vec<_>>(),
        &namespace.chars().collect::<Vec<_>>(),
    )
}

fn glob(pattern: &[char], text: &[char]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some(('?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some(('[', rest)) => {
            let Some(end) = rest.iter().skip(1).position(|c| *c == ']').map(|at| at + 1) else {
                // No closing bracket: a literal `[`.
                return text.first() == Some(&'[') && glob(rest, &text[1..]);
            };
            let (class, after) = (&rest[..end], &rest[end + 1..]);
            let (negated, class) = match class.split_first() {
                Some(('!' | '^', class)) => (true, class),
                _ => (false, class),
            };
            let Some(c) = text.first() else {
                return false;
            };
            let mut hit = false;
            let mut at = 0;
            while at < class.len() {
                if at + 2 < class.len() && class[at + 1] == '-' {
                    hit |= (class[at]..=class[at + 2]).contains(c);
                    at += 3;
                } else {
                    hit |= class[at] == *c;
                    at += 1;
                }
            }
            hit != negated && glob(after, &text[1..])
        }
        Some((literal, rest)) => text.first() == Some(literal) && glob(rest, &text[1..]),
    }
}

impl BackupSpec {
    /// Whether a backup of this spec copies `namespace`: included by name, by a pattern, or by
    /// naming none (every namespace), and not excluded; or any namespace at all when it copies
    /// cluster-scoped objects, since every PersistentVolume is one (Velero snapshots each volume
    /// it copies, whichever namespace its claim is in).
    pub fn includes(&self, namespace: &str) -> bool {
        // Velero reads a resource under any spelling or pattern; volume objects without their
        // data (snapshotVolumes: false) copy no namespace's data.
        let volumes = self.snapshot_volumes != Some(false)
            && (self.include_cluster_resources == Some(true)
                || self
                    .included_cluster_scoped_resources
                    .iter()
                    .flatten()
                    .any(|r| {
                        let r = r.to_ascii_lowercase();
                        r.starts_with("persistentvolume")
                            || r == "pv"
                            || r.contains(['*', '?', '['])
                    }));
        if volumes {
            return true;
        }
        let any = |patterns: &Option<Vec<String>>| {
            patterns
                .iter()
                .flatten()
                .any(|p| namespace_matches(p, namespace))
        };
        let everything = self.included_namespaces.as_ref().is_none_or(Vec::is_empty);
        (everything || any(&self.included_namespaces)) && !any(&self.excluded_namespaces)
    }
}

/// A Backup or a Schedule, as the audit judges them alike.
pub struct BackupLike<'a> {
    pub kind: &'static str,
    pub metadata: &'a ObjectMeta,
    pub spec: &'a BackupSpec,
}

impl<'a> From<&'a Backup> for BackupLike<'a> {
    fn from(backup: &'a Backup) -> Self {
        Self {
            kind: "Backup",
            metadata: &backup.metadata,
            spec: &backup.spec,
        }
    }
}

impl<'a> From<&'a Schedule> for BackupLike<'a> {
    fn from(schedule: &'a Schedule) -> Self {
        Self {
            kind: "Schedule",
            metadata: &schedule.metadata,
            spec: &schedule.spec.template,
        }
    }
}

/// The BackupStorageLocation a backup stores to, in its namespace: the one it names, or the
/// default one when exactly one is marked. `Err` as for [`class_of`].
pub fn storage_location_of<'a, L: std::borrow::Borrow<BackupStorageLocation>>(
    backup: &BackupLike<'_>,
    locations: &'a [L],
) -> Result<&'a BackupStorageLocation, String> {
    let mut here = locations
        .iter()
        .map(std::borrow::Borrow::borrow)
        .filter(|l: &&BackupStorageLocation| l.metadata.namespace == backup.metadata.namespace);
    match backup
        .spec
        .storage_location
        .as_deref()
        .filter(|n| !n.is_empty())
    {
        Some(name) => here
            .find(|l| l.metadata.name.as_deref() == Some(name))
            .ok_or_else(|| name.to_owned()),
        None => {
            let defaults: Vec<_> = here.filter(|l| l.spec.default == Some(true)).collect();
            match defaults.as_slice() {
                [only] => Ok(only),
                _ => Err(String::new()),
            }
        }
    }
}

/// The VolumeSnapshotLocations a backup may keep volume snapshots in: the ones it names and, for
/// each provider it names none of, that provider's only location (Velero adds it by itself);
/// every one in its namespace when it names none; none when it takes no volume snapshots. `Err`
/// names one it names that does not exist.
pub fn snapshot_locations_of<'a, L: std::borrow::Borrow<VolumeSnapshotLocation>>(
    backup: &BackupLike<'_>,
    locations: &'a [L],
) -> Result<Vec<&'a VolumeSnapshotLocation>, String> {
    if backup.spec.snapshot_volumes == Some(false) {
        return Ok(Vec::new());
    }
    let here: Vec<&VolumeSnapshotLocation> = locations
        .iter()
        .map(std::borrow::Borrow::borrow)
        .filter(|l| l.metadata.namespace == backup.metadata.namespace)
        .collect();
    match backup.spec.volume_snapshot_locations.as_deref() {
        Some(names) if !names.is_empty() => {
            let mut named: Vec<&VolumeSnapshotLocation> = names
                .iter()
                .map(|name| {
                    here.iter()
                        .copied()
                        .find(|l| l.metadata.name.as_deref() == Some(name.as_str()))
                        .ok_or_else(|| name.clone())
                })
                .collect::<Result<_, _>>()?;
            let of = |provider: &str| here.iter().filter(|l| l.spec.provider == provider).count();
            let added: Vec<&VolumeSnapshotLocation> = here
                .iter()
                .copied()
                .filter(|l| {
                    !named.iter().any(|n| n.spec.provider == l.spec.provider)
                        && of(&l.spec.provider) == 1
                })
                .collect();
            named.extend(added);
            Ok(named)
        }
        _ => Ok(here),
    }
}

/// Whether the API server serves Velero's Backups, Schedules and locations.
pub async fn velero_served(client: &kube::Client) -> bool {
    served(
        client,
        VELERO_GROUP,
        VELERO_VERSION,
        &[
            "backups",
            "schedules",
            "backupstoragelocations",
            "volumesnapshotlocations",
        ],
        "Velero Backups and Schedules",
    )
    .await
}

impl VolumeSnapshot {
    /// The claim this snapshot copies, if it was taken from one (not pre-provisioned).
    pub fn source_claim(&self) -> Option<&str> {
        self.spec.source.persistent_volume_claim_name.as_deref()
    }
}

/// The class a snapshot is taken with: the one it names, or else the default class when exactly
/// one is marked (as the snapshot controller chooses it). `Err` carries the name it names that
/// does not exist, or "" when it names none and there is no single default.
pub fn class_of<'a, C: std::borrow::Borrow<VolumeSnapshotClass>>(
    snapshot: &VolumeSnapshot,
    classes: &'a [C],
) -> Result<&'a VolumeSnapshotClass, String> {
    let classes = classes.iter().map(std::borrow::Borrow::borrow);
    match snapshot.spec.volume_snapshot_class_name.as_deref() {
        Some(name) => classes
            .into_iter()
            .find(|c: &&VolumeSnapshotClass| c.metadata.name.as_deref() == Some(name))
            .ok_or_else(|| name.to_owned()),
        None => {
            let defaults: Vec<&VolumeSnapshotClass> = classes
                .filter(|c| {
                    c.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                        .is_some_and(|v| v == "true")
                })
                .collect();
            match defaults.as_slice() {
                [only] => Ok(only),
                _ => Err(String::new()),
            }
        }
    }
}

/// The key of a VolumeSnapshotClass in the ConfigMap of declared classes.
pub fn snapshot_class_key(name: &str) -> String {
    format!("{SNAPSHOT_CLASS_KEY_PREFIX}{name}")
}

/// Whether the API server serves VolumeSnapshots and their classes; if not, the log says once
/// that snapshots are not audited, and how to change that.
pub async fn snapshots_served(client: &kube::Client) -> bool {
    served(
        client,
        SNAPSHOT_GROUP,
        SNAPSHOT_VERSION,
        &["volumesnapshots", "volumesnapshotclasses"],
        "VolumeSnapshots",
    )
    .await
}

/// Whether `group/version` serves every one of `plurals`; if not, the log says once that `what`
/// is not audited, and how to change that.
async fn served(
    client: &kube::Client,
    group: &str,
    version: &str,
    plurals: &[&str],
    what: &str,
) -> bool {
    let api_version = format!("{group}/{version}");
    match client.list_api_group_resources(&api_version).await {
        Ok(list) => {
            if plurals
                .iter()
                .all(|plural| list.resources.iter().any(|r| r.name == *plural))
            {
                tracing::info!(api = %api_version, "auditing {what} as copies of the data");
                return true;
            }
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(err) => {
            tracing::warn!(api = %api_version, error = %err,
                "{what} are not audited: cannot tell whether the API server serves them");
            return false;
        }
    }
    tracing::info!(
        api = %api_version,
        "{what} are not audited: the API server does not serve {api_version}; install its CRDs \
         and restart the operator to audit them"
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(included: &[&str], excluded: &[&str]) -> BackupSpec {
        let list = |names: &[&str]| Some(names.iter().map(|n| (*n).to_owned()).collect());
        BackupSpec {
            included_namespaces: list(included),
            excluded_namespaces: list(excluded),
            ..BackupSpec::default()
        }
    }

    #[test]
    fn a_backup_includes_named_matched_or_all_namespaces_but_the_excluded() {
        assert!(spec(&["fleet-cn"], &[]).includes("fleet-cn"));
        assert!(!spec(&["fleet-cn"], &[]).includes("fleet-cn-2"));
        assert!(spec(&["*"], &[]).includes("fleet-cn"));
        assert!(
            spec(&[], &[]).includes("fleet-cn"),
            "none named: every namespace"
        );
        assert!(BackupSpec::default().includes("fleet-cn"));
        assert!(spec(&["fleet-*"], &[]).includes("fleet-cn"));
        assert!(spec(&["*-cn"], &[]).includes("fleet-cn"));
        assert!(!spec(&["*-us"], &[]).includes("fleet-cn"));
        assert!(spec(&["f*t-c*"], &[]).includes("fleet-cn"));
        assert!(!spec(&["*"], &["fleet-cn"]).includes("fleet-cn"));
        assert!(!spec(&["*"], &["fleet-*"]).includes("fleet-cn"));
        assert!(
            !spec(&["ab*ab"], &[]).includes("ab"),
            "the parts may not overlap"
        );
        assert!(spec(&["fleet-c?"], &[]).includes("fleet-cn"));
        assert!(!spec(&["fleet-c?"], &[]).includes("fleet-c"));
        assert!(spec(&["fleet-[a-d]n"], &[]).includes("fleet-cn"));
        assert!(!spec(&["fleet-[!c]n"], &[]).includes("fleet-cn"));
        assert!(!spec(&["*"], &["fleet-[cd]?"]).includes("fleet-cn"));
    }

    #[test]
    fn a_backup_of_cluster_resources_copies_every_namespaces_volumes() {
        let mut other = spec(&["other"], &[]);
        assert!(!other.includes("fleet-cn"));
        other.include_cluster_resources = Some(true);
        assert!(other.includes("fleet-cn"));
        let mut excluded = spec(&["*"], &["fleet-cn"]);
        excluded.included_cluster_scoped_resources = Some(vec!["persistentvolumes".to_owned()]);
        assert!(excluded.includes("fleet-cn"));
        // Under any spelling Velero reads, or a pattern.
        for spelling in [
            "PersistentVolume",
            "persistentvolume",
            "pv",
            "persistent*",
            "p?",
        ] {
            let mut other = spec(&["other"], &[]);
            other.included_cluster_scoped_resources = Some(vec![spelling.to_owned()]);
            assert!(other.includes("fleet-cn"), "{spelling}");
        }
        // The volume objects without their data copy no namespace's data.
        other.snapshot_volumes = Some(false);
        assert!(!other.includes("fleet-cn"));
    }

    #[test]
    fn a_backup_naming_locations_also_gets_each_other_providers_only_one() {
        let vsl = |name: &str, provider: &str| VolumeSnapshotLocation {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("velero".to_owned()),
                ..ObjectMeta::default()
            },
            spec: VolumeSnapshotLocationSpec {
                provider: provider.to_owned(),
            },
        };
        let locations = [
            vsl("ebs-cn", "aws"),
            vsl("ebs-cn-2", "aws"),
            vsl("gcp-us", "gcp"),
        ];
        let backup = Backup {
            metadata: ObjectMeta {
                namespace: Some("velero".to_owned()),
                ..ObjectMeta::default()
            },
            spec: BackupSpec {
                volume_snapshot_locations: Some(vec!["ebs-cn".to_owned()]),
                ..BackupSpec::default()
            },
        };
        let names: Vec<_> = snapshot_locations_of(&BackupLike::from(&backup), &locations)
            .expect("all exist")
            .into_iter()
            .filter_map(|l| l.metadata.name.clone())
            .collect();
        assert_eq!(names, ["ebs-cn", "gcp-us"]);
    }

    fn location(name: &str, namespace: &str, default: bool) -> BackupStorageLocation {
        BackupStorageLocation {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            spec: BackupStorageLocationSpec {
                default: Some(default),
            },
        }
    }

    #[test]
    fn a_backup_stores_to_the_location_it_names_or_the_single_default_of_its_namespace() {
        let backup = |location: Option<&str>| Backup {
            metadata: ObjectMeta {
                name: Some("nightly".to_owned()),
                namespace: Some("velero".to_owned()),
                ..ObjectMeta::default()
            },
            spec: BackupSpec {
                storage_location: location.map(str::to_owned),
                ..BackupSpec::default()
            },
        };
        let locations = [
            location("eu", "velero", false),
            location("us", "velero", true),
            location("cn", "elsewhere", true),
        ];
        let named = backup(Some("eu"));
        let name_of = |b: &Backup, l: &[BackupStorageLocation]| {
            storage_location_of(&BackupLike::from(b), l).map(|l| l.metadata.name.clone())
        };
        assert_eq!(name_of(&named, &locations), Ok(Some("eu".to_owned())));
        assert_eq!(
            name_of(&backup(None), &locations),
            Ok(Some("us".to_owned()))
        );
        assert_eq!(
            name_of(&backup(Some("gone")), &locations),
            Err("gone".to_owned())
        );
        let two_defaults = [location("a", "velero", true), location("b", "velero", true)];
        assert_eq!(name_of(&backup(None), &two_defaults), Err(String::new()));
    }
}
