//! Plan (pure): what a data centre declares in the cluster as it is, and what keeps it from
//! being applied.

use super::*;

/// Every child the operator declares for one RegionalDataCenter. The apply step destructures it
/// whole, so a child added here cannot be forgotten there.
pub(super) struct Children {
    pub(super) class: Option<StorageClass>,
    pub(super) volumes: Vec<PersistentVolume>,
    pub(super) service: Service,
    pub(super) statefulset: StatefulSet,
    pub(super) network_policy: Option<NetworkPolicy>,
}

/// The storage class claims use, the children, and what keeps them from being applied.
pub(super) struct Declaration {
    pub(super) class_name: String,
    pub(super) children: Children,
    pub(super) blocker: Option<Blocker>,
}

/// What a data centre already has in the cluster, which its declaration keeps.
#[derive(Default)]
pub(super) struct Existing<'a> {
    /// Its own volumes.
    pub(super) volumes: &'a [Arc<PersistentVolume>],
    /// The access modes its StatefulSet's claims were made with, if it has one.
    pub(super) claim_access_modes: Option<Vec<String>>,
}

/// Build (pure): what the RegionalDataCenter asks for in the cluster as it is, and what the
/// schema could not judge. `load` counts domicile volumes per node, asked only when a new volume
/// is to be placed.
pub(super) fn declare(
    own: Own<'_>,
    jurisdiction: &Jurisdiction,
    settings: &super::super::Settings,
    eligible: &[&Node],
    existing: Existing<'_>,
    load: impl FnOnce() -> BTreeMap<String, usize>,
    class_exists: impl Fn(&str) -> bool,
) -> Declaration {
    let rdc = own.rdc;
    let Existing {
        volumes,
        claim_access_modes,
    } = existing;
    let keys = &settings.keys;
    let name = rdc.name_any();
    let namespace = rdc.namespace().unwrap_or_default();
    let mut blocker = None;
    let mut class = None;
    let mut local_volumes = Vec::new();
    // One pod per claim, where domicile chooses the storage (a class of the tenant's may not
    // offer it); a StatefulSet made before keeps what its claims were made with.
    let access_modes = claim_access_modes.unwrap_or_else(|| {
        let mode = match (own.storage.mode, &own.storage.storage_class_name) {
            (StorageMode::Dynamic, Some(_)) => "ReadWriteOnce",
            _ => resources::DATA_ACCESS_MODE,
        };
        vec![mode.to_owned()]
    });
    let class_name = match (own.storage.mode, &own.storage.storage_class_name) {
        (StorageMode::Dynamic, Some(existing)) => {
            if !class_exists(existing) {
                blocker = Some(Blocker {
                    reason: Reason::StorageClassNotFound,
                    message: format!(
                        "spec.storage.storageClassName names StorageClass {existing:?}, which does not exist; \
                         create it, or remove storageClassName to use the class domicile manages"
                    ),
                });
            }
            existing.clone()
        }
        (StorageMode::Dynamic, None) => {
            let managed =
                resources::managed_storage_class(jurisdiction, keys, &settings.provisioner);
            let class_name = managed.name_any();
            class = Some(managed);
            class_name
        }
        (StorageMode::Local, _) => {
            let local = resources::local_storage_class(jurisdiction, keys);
            let class_name = local.name_any();
            let existing: Vec<PersistentVolume> = volumes
                .iter()
                .filter(|pv| {
                    pv.labels().get(RDC_LABEL) == Some(&name)
                        && pv.labels().get(resources::RDC_NAMESPACE_LABEL) == Some(&namespace)
                })
                .map(|pv| (**pv).clone())
                .collect();
            // How many volumes each node holds matters only to place a new one.
            let missing = existing.len() < usize::try_from(own.workload.replicas).unwrap_or(0);
            let load = if missing { load() } else { BTreeMap::new() };
            let plan = resources::local_volumes(
                own,
                &class_name,
                eligible,
                &existing,
                &load,
                &settings.local_root,
                &access_modes,
            );
            if plan.unplaced > 0 {
                blocker = Some(Blocker {
                    reason: Reason::InsufficientEligibleNodes,
                    message: format!(
                        "Local mode puts each replica's volume on a node of its own: {} replicas need {} nodes \
                         labelled {}={}, but {} are; label more nodes or lower spec.workload.replicas",
                        own.workload.replicas,
                        own.workload.replicas,
                        keys.jurisdiction,
                        jurisdiction,
                        eligible.len()
                    ),
                });
            }
            class = Some(local);
            local_volumes = plan.volumes;
            class_name
        }
    };
    if eligible.is_empty() {
        blocker = Some(no_eligible_nodes_blocker(jurisdiction, keys));
    }
    let children = Children {
        class,
        volumes: local_volumes,
        service: resources::service(rdc, own.workload.port),
        statefulset: resources::statefulset(own, jurisdiction, keys, &class_name, &access_modes),
        network_policy: resources::network_policy(rdc, &settings.dns),
    };
    Declaration {
        class_name,
        children,
        blocker,
    }
}

/// An object of a child's name that the operator did not make: it is never adopted, so the data
/// centre waits for a person.
pub(super) fn name_taken(kind: &str, namespace: &str, name: &str, holder: &str) -> Blocker {
    let (place, flag) = if namespace.is_empty() {
        (String::new(), String::new())
    } else {
        (
            format!(" in namespace {namespace}"),
            format!(" -n {namespace}"),
        )
    };
    Blocker {
        reason: Reason::NameTaken,
        message: format!(
            "{kind} {name} already exists{place} and was not made by domicile for this \
             RegionalDataCenter ({holder}); domicile never adopts an object it did not make, nor \
             merges its declaration into one. If it is not needed, delete it (kubectl delete {} \
             {name}{flag}); otherwise create the RegionalDataCenter under another name",
            kind.to_lowercase()
        ),
    }
}

pub(super) fn no_eligible_nodes_blocker(
    jurisdiction: &Jurisdiction,
    keys: &resources::NodeLabelKeys,
) -> Blocker {
    let mut selector = format!("{}={}", keys.jurisdiction, jurisdiction.country());
    if let Some(sub) = jurisdiction.subdivision() {
        selector.push_str(&format!(" {}={sub}", keys.subdivision));
    }
    Blocker {
        reason: Reason::NoEligibleNodes,
        message: format!(
            "no node is labelled for jurisdiction {jurisdiction}; label the nodes that are in it: kubectl label node <node> {selector}"
        ),
    }
}

/// What a person does when the API server refuses to update a child.
/// `managed_policy` names the admission policy that keeps people from deleting managed objects,
/// and the namespace label that exempts from it, when one is in force for the namespace: the
/// steps then say how to step past it for a moment.
pub(super) fn refused_update(
    kind: &str,
    namespace: &str,
    name: &str,
    message: &str,
    managed_policy: Option<(&str, &str)>,
) -> Blocker {
    let steps = match kind {
        "StatefulSet" => format!(
            "a StatefulSet's volumeClaimTemplates cannot change; to take the new declaration, delete \
             the StatefulSet but not its pods and claims (kubectl delete statefulset {name} -n {namespace} \
             --cascade=orphan) and domicile recreates it; existing claims keep their data and their size"
        ),
        "PersistentVolume" => format!(
            "a volume's path and node cannot change; inspect it with kubectl get persistentvolume {name} -o yaml. \
             If it is not the volume domicile made, move its data off it, delete it, and domicile recreates it"
        ),
        _ => format!(
            "inspect it with kubectl get {} {name} -n {namespace} -o yaml; delete it and domicile recreates it as declared",
            kind.to_lowercase()
        ),
    };
    let exemption = managed_policy.map_or_else(String::new, |(policy, exempt)| {
        format!(
            " (the admission policy {policy} refuses that to anyone but the operator: first \
             kubectl label namespace {namespace} {exempt}=exempt, and after it \
             kubectl label namespace {namespace} {exempt}-)"
        )
    });
    Blocker {
        reason: Reason::UpdateRefused,
        message: format!(
            "the API server refuses to update {kind} {name}: {message}; {steps}{exemption}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::rdc;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn settings() -> super::super::super::Settings {
        super::super::super::Settings {
            keys: resources::NodeLabelKeys::default(),
            provisioner: "rancher.io/local-path".to_owned(),
            local_root: "/var/lib/domicile".to_owned(),
            dns: resources::DnsPeer::default(),
            concurrency: 1,
            admin_address: ([127, 0, 0, 1], 0).into(),
            label_namespaces: false,
            label_any_namespace: false,
            declared_classes: None,
            exempt_label: "domicile.dev/admission".to_owned(),
            report_part_bytes: crate::report::REPORT_BYTES,
            reports: crate::report::Format::None,
        }
    }

    fn node(name: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn declared(rdc: &RegionalDataCenter, nodes: &[Node], class_exists: bool) -> Declaration {
        let eligible: Vec<&Node> = nodes.iter().collect();
        let cn = Jurisdiction::parse("CN").expect("valid");
        declare(
            rdc.own().expect("its own"),
            &cn,
            &settings(),
            &eligible,
            Existing::default(),
            BTreeMap::new,
            |_| class_exists,
        )
    }

    #[test]
    fn a_new_data_centres_claims_are_for_one_pod_and_an_old_ones_keep_theirs() {
        let nodes = [node("cn-1")];
        let eligible: Vec<&Node> = nodes.iter().collect();
        let cn = Jurisdiction::parse("CN").expect("valid");
        let modes = |live: Option<Vec<String>>| {
            let existing = Existing {
                volumes: &[],
                claim_access_modes: live,
            };
            let one = rdc("CN", 1);
            let children = declare(
                one.own().expect("its own"),
                &cn,
                &settings(),
                &eligible,
                existing,
                BTreeMap::new,
                |_| true,
            )
            .children;
            let template = children
                .statefulset
                .spec
                .expect("a spec")
                .volume_claim_templates;
            let claim = template.expect("a template")[0]
                .spec
                .clone()
                .expect("a spec");
            let volume = children.volumes[0].spec.clone().expect("a spec");
            (
                claim.access_modes.expect("modes"),
                volume.access_modes.expect("modes"),
            )
        };
        let once_pod = vec!["ReadWriteOncePod".to_owned()];
        assert_eq!(modes(None), (once_pod.clone(), once_pod));
        // Claim templates are immutable: a StatefulSet made with ReadWriteOnce keeps it, and so
        // do the volumes its new claims bind to.
        let once = vec!["ReadWriteOnce".to_owned()];
        assert_eq!(modes(Some(once.clone())), (once.clone(), once));
    }

    #[test]
    fn a_local_data_centre_declares_every_child_with_the_fence() {
        let nodes = [node("cn-1"), node("cn-2"), node("cn-3")];
        let Declaration {
            class_name,
            children,
            blocker,
        } = declared(&rdc("CN", 3), &nodes, true);
        assert_eq!(blocker, None);
        assert_eq!(class_name, "domicile-local-cn");
        assert_eq!(children.volumes.len(), 3);
        assert!(children.class.is_some());
        assert!(children.network_policy.is_some(), "fenced by default");
    }

    #[test]
    fn no_eligible_node_blocks_before_anything_else() {
        let mut dynamic = rdc("CN", 1);
        dynamic.spec.storage.as_mut().expect("its own").mode = StorageMode::Dynamic;
        dynamic
            .spec
            .storage
            .as_mut()
            .expect("its own")
            .storage_class_name = Some("missing".to_owned());
        let blocker = declared(&dynamic, &[], false).blocker.expect("blocked");
        assert_eq!(blocker.reason, Reason::NoEligibleNodes);
        assert!(blocker.message.contains("kubectl label node"));
        let blocker = declared(&dynamic, &[node("cn-1")], false)
            .blocker
            .expect("blocked");
        assert_eq!(blocker.reason, Reason::StorageClassNotFound);
    }

    #[test]
    fn local_mode_with_too_few_nodes_says_how_many_are_missing() {
        let blocker = declared(&rdc("CN", 3), &[node("cn-1")], true)
            .blocker
            .expect("blocked");
        assert_eq!(blocker.reason, Reason::InsufficientEligibleNodes);
        assert!(blocker.message.contains("3 replicas need 3 nodes"));
    }

    #[test]
    fn refused_updates_carry_the_steps_that_fix_them() {
        let refused = refused_update("StatefulSet", "fleet-cn", "vehicle-data", "Forbidden", None);
        assert_eq!(refused.reason, Reason::UpdateRefused);
        assert!(
            refused
                .message
                .contains("kubectl delete statefulset vehicle-data -n fleet-cn --cascade=orphan")
        );
        assert!(!refused.message.contains("admission"));
        let guarded = refused_update(
            "StatefulSet",
            "fleet-cn",
            "vehicle-data",
            "Forbidden",
            Some(("domicile-managed", "domicile.dev/admission")),
        );
        assert!(
            guarded.message.contains(
                "first kubectl label namespace fleet-cn domicile.dev/admission=exempt, and after it"
            ),
            "{}",
            guarded.message
        );
        let other = refused_update("Service", "fleet-cn", "vehicle-data", "Invalid", None);
        assert!(
            other
                .message
                .contains("kubectl get service vehicle-data -n fleet-cn")
        );
    }
}
