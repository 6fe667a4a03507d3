//! The StatefulSet that runs the workload, pinned by required node affinity to the jurisdiction.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, NodeAffinity, NodeSelector,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec,
    SeccompProfile, SecurityContext, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::{NodeLabelKeys, child_metadata, labels, name, selector_labels};
use crate::api::jurisdiction::Jurisdiction;
use crate::api::{Own, RegionalDataCenter, WorkloadSpec};

/// Name of the volume claim template, and so the prefix of every claim: `data-<rdc>-<ordinal>`.
pub const DATA_VOLUME: &str = "data";
/// The access mode of a new data centre's claims: one pod, its replica, mounts each (the
/// scheduler refuses a second pod even where admission did not see it).
pub const DATA_ACCESS_MODE: &str = "ReadWriteOncePod";

/// Name of the pod of replica `ordinal`; the StatefulSet is named after the RegionalDataCenter.
pub fn pod_name(rdc: &RegionalDataCenter, ordinal: i32) -> String {
    format!("{}-{ordinal}", name(rdc))
}

/// Name of the claim of replica `ordinal`, as the StatefulSet controller creates it.
pub fn claim_name(rdc: &RegionalDataCenter, ordinal: i32) -> String {
    format!("{DATA_VOLUME}-{}-{ordinal}", name(rdc))
}

/// The workload: one pod and one claim per replica, on nodes of `jurisdiction` only.
pub fn statefulset(
    own: Own<'_>,
    jurisdiction: &Jurisdiction,
    keys: &NodeLabelKeys,
    storage_class: &str,
    access_modes: &[String],
) -> StatefulSet {
    let Own {
        rdc,
        storage,
        workload,
    } = own;
    let retention = if storage.retain_on_delete {
        "Retain"
    } else {
        "Delete"
    };
    let container = Container {
        name: "workload".to_owned(),
        image: Some(workload.image.clone()),
        command: workload.command.clone(),
        args: workload.args.clone(),
        env: workload.env.clone(),
        resources: workload.resources.clone(),
        ports: workload.port.map(|port| {
            vec![ContainerPort {
                name: Some("service".to_owned()),
                container_port: port,
                ..Default::default()
            }]
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: DATA_VOLUME.to_owned(),
            mount_path: workload.mount_path.clone(),
            ..Default::default()
        }]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            run_as_non_root: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let claim_template = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.to_owned()),
            labels: Some(labels(rdc)),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(access_modes.to_vec()),
            storage_class_name: Some(storage_class.to_owned()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    storage.size.clone(),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    StatefulSet {
        metadata: child_metadata(rdc),
        spec: Some(StatefulSetSpec {
            replicas: Some(workload.replicas),
            service_name: Some(name(rdc).to_owned()),
            selector: LabelSelector {
                match_labels: Some(selector_labels(rdc)),
                ..Default::default()
            },
            // Replicas hold independent data; none waits for another to start.
            pod_management_policy: Some("Parallel".to_owned()),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(retention.to_owned()),
                    when_scaled: Some("Retain".to_owned()),
                },
            ),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(rdc)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    affinity: Some(Affinity {
                        node_affinity: Some(NodeAffinity {
                            required_during_scheduling_ignored_during_execution: Some(
                                NodeSelector {
                                    node_selector_terms: vec![
                                        keys.node_selector_term(jurisdiction),
                                    ],
                                },
                            ),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    containers: vec![container],
                    security_context: Some(pod_security_context(workload)),
                    // The workload never talks to the API server, so it gets no token to leak.
                    automount_service_account_token: Some(false),
                    ..Default::default()
                }),
            },
            volume_claim_templates: Some(vec![claim_template]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What the restricted Pod Security Standard asks of a pod, with the data volume writable by the
/// workload's group.
fn pod_security_context(workload: &WorkloadSpec) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(workload.run_as_user),
        run_as_group: Some(workload.run_as_group),
        fs_group: Some(workload.run_as_group),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::rdc;

    fn required_terms(sts: &StatefulSet) -> Vec<(String, String, Vec<String>)> {
        let spec = sts
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .expect("a pod spec");
        let selector = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .expect("required node affinity");
        assert_eq!(
            selector.node_selector_terms.len(),
            1,
            "one term: all requirements ANDed"
        );
        selector.node_selector_terms[0]
            .match_expressions
            .iter()
            .flatten()
            .map(|r| {
                (
                    r.key.clone(),
                    r.operator.clone(),
                    r.values.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn country_rdc_requires_the_country_label() {
        let rdc = rdc("CN", 3);
        let j = Jurisdiction::parse("CN").expect("valid");
        let sts = statefulset(
            rdc.own().expect("its own"),
            &j,
            &NodeLabelKeys::default(),
            "domicile-local-cn",
            &[DATA_ACCESS_MODE.to_owned()],
        );
        assert_eq!(
            required_terms(&sts),
            [(
                "domicile.node-restriction.kubernetes.io/jurisdiction".to_owned(),
                "In".to_owned(),
                vec!["CN".to_owned()]
            )]
        );
    }

    #[test]
    fn subdivision_rdc_requires_country_and_subdivision_labels() {
        let rdc = rdc("CN-SH", 1);
        let j = Jurisdiction::parse("CN-SH").expect("valid");
        let sts = statefulset(
            rdc.own().expect("its own"),
            &j,
            &NodeLabelKeys::default(),
            "domicile-local-cn-sh",
            &[DATA_ACCESS_MODE.to_owned()],
        );
        let terms = required_terms(&sts);
        assert_eq!(terms.len(), 2);
        assert_eq!(terms[0].2, ["CN"]);
        assert_eq!(
            terms[1].0,
            "domicile.node-restriction.kubernetes.io/subdivision"
        );
        assert_eq!(terms[1].2, ["CN-SH"]);
    }

    #[test]
    fn claims_are_retained_by_default_and_deleted_only_when_asked() {
        let j = Jurisdiction::parse("CN").expect("valid");
        let keys = NodeLabelKeys::default();
        let mut rdc = rdc("CN", 3);
        let policy = |rdc: &RegionalDataCenter| {
            statefulset(
                rdc.own().expect("its own"),
                &j,
                &keys,
                "c",
                &[DATA_ACCESS_MODE.to_owned()],
            )
            .spec
            .and_then(|s| s.persistent_volume_claim_retention_policy)
            .expect("a retention policy")
        };
        assert_eq!(policy(&rdc).when_deleted.as_deref(), Some("Retain"));
        assert_eq!(policy(&rdc).when_scaled.as_deref(), Some("Retain"));
        rdc.spec.storage.as_mut().expect("its own").retain_on_delete = false;
        assert_eq!(policy(&rdc).when_deleted.as_deref(), Some("Delete"));
        assert_eq!(policy(&rdc).when_scaled.as_deref(), Some("Retain"));
    }

    #[test]
    fn statefulset_is_owned_sized_and_labelled() {
        let rdc = rdc("CN", 3);
        let j = Jurisdiction::parse("CN").expect("valid");
        let sts = statefulset(
            rdc.own().expect("its own"),
            &j,
            &NodeLabelKeys::default(),
            "domicile-local-cn",
            &[DATA_ACCESS_MODE.to_owned()],
        );
        let owner = &sts.metadata.owner_references.as_ref().expect("owned")[0];
        assert_eq!(owner.kind, "RegionalDataCenter");
        assert_eq!(owner.controller, Some(true));
        let spec = sts.spec.expect("a spec");
        assert_eq!(spec.replicas, Some(3));
        let claim = &spec.volume_claim_templates.expect("a claim template")[0];
        let claim_spec = claim.spec.as_ref().expect("a claim spec");
        assert_eq!(
            claim_spec.storage_class_name.as_deref(),
            Some("domicile-local-cn")
        );
        let requests = claim_spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref());
        assert_eq!(
            requests
                .and_then(|r| r.get("storage"))
                .map(|q| q.0.as_str()),
            Some("50Gi")
        );
        let claim_labels = claim.metadata.labels.as_ref().expect("claim labels");
        assert_eq!(
            claim_labels
                .get(crate::resources::RDC_LABEL)
                .map(String::as_str),
            Some("vehicle-data")
        );
        assert_eq!(pod_name(&rdc, 2), "vehicle-data-2");
        assert_eq!(claim_name(&rdc, 2), "data-vehicle-data-2");
    }

    #[test]
    fn pods_meet_the_restricted_pod_security_standard() {
        let mut rdc = rdc("CN", 1);
        let j = Jurisdiction::parse("CN").expect("valid");
        let keys = NodeLabelKeys::default();
        let pod = |rdc: &RegionalDataCenter| {
            statefulset(
                rdc.own().expect("its own"),
                &j,
                &keys,
                "c",
                &[DATA_ACCESS_MODE.to_owned()],
            )
            .spec
            .and_then(|s| s.template.spec)
            .expect("a pod spec")
        };
        let spec = pod(&rdc);
        let security = spec
            .security_context
            .as_ref()
            .expect("a pod security context");
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(security.run_as_user, Some(65532));
        assert_eq!(security.fs_group, Some(65532), "the volume is writable");
        assert_eq!(
            security.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
            Some("RuntimeDefault")
        );
        let container = spec.containers[0]
            .security_context
            .as_ref()
            .expect("a container security context");
        assert_eq!(container.allow_privilege_escalation, Some(false));
        assert_eq!(
            container.capabilities.as_ref().and_then(|c| c.drop.clone()),
            Some(vec!["ALL".to_owned()])
        );
        assert_eq!(
            container.capabilities.as_ref().and_then(|c| c.add.clone()),
            None
        );
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert!(
            spec.volumes.is_none(),
            "no volume but the claim: no hostPath"
        );

        rdc.spec.workload.as_mut().expect("its own").run_as_user = 1000;
        rdc.spec.workload.as_mut().expect("its own").run_as_group = 2000;
        let security = pod(&rdc).security_context.expect("a pod security context");
        assert_eq!(
            (
                security.run_as_user,
                security.run_as_group,
                security.fs_group
            ),
            (Some(1000), Some(2000), Some(2000))
        );
    }
}
