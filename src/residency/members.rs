//! Workloads a data centre covers without running them (`spec.members`): the pods of its namespace
//! its selector picks, and the claims those pods mount or the selector picks.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::api::RegionalDataCenter;

use crate::resources::{DATA_VOLUME, RDC_LABEL};

/// Whether `selector` picks an object with `labels`, as the API server reads a label selector:
/// every matchLabels pair and every expression must hold. An empty selector picks nothing here
/// (the CRD refuses one), and so does an expression with an operator the API does not know.
pub fn selects(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let pairs = selector.match_labels.as_ref().filter(|m| !m.is_empty());
    let expressions = selector
        .match_expressions
        .as_deref()
        .filter(|e| !e.is_empty());
    if pairs.is_none() && expressions.is_none() {
        return false;
    }
    let value = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
    pairs
        .into_iter()
        .flatten()
        .all(|(key, wanted)| value(key) == Some(wanted.as_str()))
        && expressions
            .into_iter()
            .flatten()
            .all(|e| requirement_holds(e, value(&e.key)))
}

fn requirement_holds(requirement: &LabelSelectorRequirement, value: Option<&str>) -> bool {
    let values = requirement.values.as_deref().unwrap_or_default();
    let listed = value.is_some_and(|v| values.iter().any(|w| w == v));
    match requirement.operator.as_str() {
        "In" => listed,
        "NotIn" => !listed,
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

/// The pods and claims `rdc` covers through `spec.members`, out of those given (any namespace:
/// only its own counts). A replica of any data centre (its label, or a data claim mounted) is
/// never a member: its own data centre audits it, and a broad selector of another must not
/// judge, let alone evict, it. A claim is covered when the selector picks it or a covered pod
/// mounts it, unless it is a data centre's (its label, or a data claim's name).
pub fn covered<'a>(
    rdc: &RegionalDataCenter,
    pods: impl IntoIterator<Item = &'a Pod>,
    claims: impl IntoIterator<Item = &'a PersistentVolumeClaim>,
) -> (Vec<&'a Pod>, Vec<&'a PersistentVolumeClaim>) {
    let Some(selector) = &rdc.spec.members else {
        return (Vec::new(), Vec::new());
    };
    let namespace = rdc.metadata.namespace.as_deref();
    let pods: Vec<&Pod> = pods
        .into_iter()
        .filter(|pod| pod.metadata.namespace.as_deref() == namespace)
        .filter(|pod| !is_replica_of_any(pod))
        .filter(|pod| selects(selector, pod.metadata.labels.as_ref()))
        .collect();
    let mounted: Vec<&str> = pods.iter().flat_map(|pod| claims_of(pod)).collect();
    let claims = claims
        .into_iter()
        .filter(|claim| claim.metadata.namespace.as_deref() == namespace)
        .filter(|claim| !is_data_centres(claim))
        .filter(|claim| {
            selects(selector, claim.metadata.labels.as_ref())
                || claim
                    .metadata
                    .name
                    .as_deref()
                    .is_some_and(|name| mounted.contains(&name))
        })
        .collect();
    (pods, claims)
}

/// Whether a pod is a data centre's: labelled with one, or mounting a data claim.
fn is_replica_of_any(pod: &Pod) -> bool {
    labelled(pod.metadata.labels.as_ref()) || claims_of(pod).any(is_data_claim_name)
}

/// Whether a claim is a data centre's: labelled with one, or named as its replicas' claims are.
fn is_data_centres(claim: &PersistentVolumeClaim) -> bool {
    labelled(claim.metadata.labels.as_ref())
        || claim
            .metadata
            .name
            .as_deref()
            .is_some_and(is_data_claim_name)
}

fn labelled(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels.is_some_and(|l| l.contains_key(RDC_LABEL))
}

/// `data-<name>-<ordinal>`, as a StatefulSet names the claims of its template `data`.
fn is_data_claim_name(claim: &str) -> bool {
    claim
        .strip_prefix(DATA_VOLUME)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.rsplit_once('-'))
        .is_some_and(|(name, ordinal)| !name.is_empty() && ordinal.parse::<u32>().is_ok())
}

/// The claims a pod mounts, in the order of its volumes.
pub fn claims_of(pod: &Pod) -> impl Iterator<Item = &str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| Some(v.persistent_volume_claim.as_ref()?.claim_name.as_str()))
}

/// The object that runs a pod, as `Kind/name` (its controller), or the pod itself.
pub fn owner_of(pod: &Pod) -> String {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map_or_else(
            || format!("Pod/{}", pod.metadata.name.as_deref().unwrap_or_default()),
            |r| format!("{}/{}", r.kind, r.name),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::rdc;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, PodSpec, Volume};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector {
            match_labels: Some(labels(pairs)),
            match_expressions: None,
        }
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.to_owned(),
            operator: operator.to_owned(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    fn pod(namespace: &str, name: &str, pairs: &[(&str, &str)], claims: &[&str]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                labels: Some(labels(pairs)),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                volumes: Some(
                    claims
                        .iter()
                        .map(|claim| Volume {
                            name: format!("v-{claim}"),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: (*claim).to_owned(),
                                read_only: None,
                            }),
                            ..Volume::default()
                        })
                        .collect(),
                ),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn claim(namespace: &str, name: &str, pairs: &[(&str, &str)]) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(namespace.to_owned()),
                labels: Some(labels(pairs)),
                ..ObjectMeta::default()
            },
            ..PersistentVolumeClaim::default()
        }
    }

    fn names<'a, T: kube::ResourceExt + 'a>(
        objects: impl IntoIterator<Item = &'a T>,
    ) -> Vec<String> {
        objects
            .into_iter()
            .map(kube::ResourceExt::name_any)
            .collect()
    }

    #[test]
    fn match_labels_and_every_operator_read_as_the_api_server_reads_them() {
        let orders = labels(&[("cnpg.io/cluster", "orders"), ("role", "primary")]);
        assert!(selects(
            &selector(&[("cnpg.io/cluster", "orders")]),
            Some(&orders)
        ));
        assert!(!selects(
            &selector(&[("cnpg.io/cluster", "billing")]),
            Some(&orders)
        ));
        assert!(!selects(&selector(&[("cnpg.io/cluster", "orders")]), None));
        let with = |e: LabelSelectorRequirement| LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![e]),
        };
        assert!(selects(
            &with(expression("role", "In", &["primary", "replica"])),
            Some(&orders)
        ));
        assert!(!selects(
            &with(expression("role", "NotIn", &["primary"])),
            Some(&orders)
        ));
        assert!(selects(
            &with(expression("tier", "NotIn", &["web"])),
            Some(&orders)
        ));
        assert!(selects(
            &with(expression("role", "Exists", &[])),
            Some(&orders)
        ));
        assert!(!selects(
            &with(expression("role", "DoesNotExist", &[])),
            Some(&orders)
        ));
        assert!(
            !selects(
                &with(expression("role", "Matches", &["p.*"])),
                Some(&orders)
            ),
            "unknown operator"
        );
        // Both parts must hold.
        let both = LabelSelector {
            match_labels: Some(labels(&[("cnpg.io/cluster", "orders")])),
            match_expressions: Some(vec![expression("role", "In", &["replica"])]),
        };
        assert!(!selects(&both, Some(&orders)));
        assert!(
            !selects(&LabelSelector::default(), Some(&orders)),
            "empty picks nothing"
        );
    }

    #[test]
    fn covered_pods_are_picked_in_its_namespace_and_bring_the_claims_they_mount() {
        let mut dc = rdc("CN", 1);
        dc.spec.members = Some(selector(&[("cnpg.io/cluster", "orders")]));
        let db = [("cnpg.io/cluster", "orders")];
        let pods = [
            pod("fleet-cn", "orders-1", &db, &["orders-1"]),
            pod("fleet-cn", "web", &[("app", "web")], &["web-cache"]),
            pod("fleet-de", "orders-1", &db, &["orders-1"]),
            // Its own replica, labelled like a member too: audited as a replica, not twice.
            pod(
                "fleet-cn",
                "vehicle-data-0",
                &[("domicile.dev/regional-data-center", "vehicle-data"), db[0]],
                &["data-vehicle-data-0"],
            ),
            // Another data centre's replica, and a pod at its data: theirs, never a member.
            pod(
                "fleet-cn",
                "ledger-0",
                &[("domicile.dev/regional-data-center", "ledger"), db[0]],
                &[],
            ),
            pod("fleet-cn", "reader", &db, &["data-ledger-0"]),
        ];
        let claims = [
            claim("fleet-cn", "orders-1", &[]),
            claim("fleet-cn", "orders-wal", &db),
            claim("fleet-cn", "web-cache", &[]),
            claim("fleet-de", "orders-wal", &db),
            claim("fleet-cn", "data-ledger-0", &db),
            claim(
                "fleet-cn",
                "ledger-extra",
                &[("domicile.dev/regional-data-center", "ledger"), db[0]],
            ),
        ];
        let (covered_pods, covered_claims) = covered(&dc, &pods, &claims);
        assert_eq!(names(covered_pods.iter().copied()), ["orders-1"]);
        assert_eq!(
            covered_pods[0].metadata.namespace.as_deref(),
            Some("fleet-cn")
        );
        assert_eq!(
            names(covered_claims.iter().copied()),
            ["orders-1", "orders-wal"]
        );
        assert!(
            covered_claims
                .iter()
                .all(|c| c.metadata.namespace.as_deref() == Some("fleet-cn"))
        );

        dc.spec.members = None;
        let (none, nothing) = covered(&dc, &pods, &claims);
        assert!(none.is_empty() && nothing.is_empty());
    }

    #[test]
    fn the_owner_is_the_controller_or_the_pod_itself() {
        let mut member = pod("fleet-cn", "orders-1", &[], &[]);
        assert_eq!(owner_of(&member), "Pod/orders-1");
        member.metadata.owner_references = Some(vec![OwnerReference {
            kind: "Cluster".to_owned(),
            name: "orders".to_owned(),
            controller: Some(true),
            ..OwnerReference::default()
        }]);
        assert_eq!(owner_of(&member), "Cluster/orders");
    }
}
