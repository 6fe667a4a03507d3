//! The NetworkPolicy fence around the data pods: egress only to cluster DNS, to the data centre's
//! own pods and to the CIDRs it allows; ingress only from its own pods and the peers it allows.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{child_metadata, selector_labels};
use crate::api::{NetworkSpec, RegionalDataCenter};

/// Label every namespace carries with its own name (set by the API server).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The cluster DNS pods the fence lets data pods query (an operator setting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsPeer {
    pub namespace: String,
    pub pod_labels: BTreeMap<String, String>,
}

impl Default for DnsPeer {
    fn default() -> Self {
        Self {
            namespace: "kube-system".to_owned(),
            pod_labels: BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())]),
        }
    }
}

/// The fence, unless the data centre opts out with `spec.network.fence: false`.
pub fn network_policy(rdc: &RegionalDataCenter, dns: &DnsPeer) -> Option<NetworkPolicy> {
    let default = NetworkSpec::default();
    let network = rdc.spec.network.as_ref().unwrap_or(&default);
    if !network.fence {
        return None;
    }
    let own_pods = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(selector_labels(rdc)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut egress = vec![dns_rule(dns), peers_rule(vec![own_pods.clone()])];
    if !network.allowed_egress_cidrs.is_empty() {
        egress.push(peers_rule(
            network
                .allowed_egress_cidrs
                .iter()
                .map(|cidr| ip_block(cidr))
                .collect(),
        ));
    }
    let mut from = vec![own_pods];
    from.extend(network.allowed_ingress.iter().map(|peer| match &peer.cidr {
        Some(cidr) => ip_block(cidr),
        None => NetworkPolicyPeer {
            namespace_selector: peer.namespace_selector.clone(),
            pod_selector: peer.pod_selector.clone(),
            ..Default::default()
        },
    }));
    Some(NetworkPolicy {
        metadata: child_metadata(rdc),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(rdc)),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned(), "Egress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from),
                ports: None,
            }]),
            egress: Some(egress),
        }),
    })
}

/// DNS queries, to the cluster DNS pods only: port 53 open to any address would be a channel out.
fn dns_rule(dns: &DnsPeer) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    NAMESPACE_NAME_LABEL.to_owned(),
                    dns.namespace.clone(),
                )])),
                ..Default::default()
            }),
            pod_selector: Some(LabelSelector {
                match_labels: Some(dns.pod_labels.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ports: Some(
            ["UDP", "TCP"]
                .into_iter()
                .map(|protocol| NetworkPolicyPort {
                    protocol: Some(protocol.to_owned()),
                    port: Some(IntOrString::Int(53)),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

fn peers_rule(to: Vec<NetworkPolicyPeer>) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(to),
        ports: None,
    }
}

fn ip_block(cidr: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: cidr.to_owned(),
            except: None,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::IngressPeer;
    use crate::resources::fixtures::rdc;

    fn fenced(network: Option<NetworkSpec>) -> NetworkPolicySpec {
        let mut rdc = rdc("CN", 1);
        rdc.spec.network = network;
        network_policy(&rdc, &DnsPeer::default())
            .and_then(|p| p.spec)
            .expect("a fence")
    }

    fn own_pods() -> NetworkPolicyPeer {
        NetworkPolicyPeer {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&rdc("CN", 1))),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_default_data_centre_is_fenced_both_ways() {
        let spec = fenced(None);
        assert_eq!(
            spec.policy_types,
            Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
        );
        assert_eq!(
            spec.pod_selector
                .and_then(|s| s.match_labels)
                .expect("selects"),
            selector_labels(&rdc("CN", 1))
        );
        assert_eq!(fenced(Some(NetworkSpec::default())), fenced(None));
    }

    #[test]
    fn opting_out_removes_the_fence() {
        let mut rdc = rdc("CN", 1);
        rdc.spec.network = Some(NetworkSpec {
            fence: false,
            allowed_egress_cidrs: vec!["10.0.0.0/8".to_owned()],
            ..Default::default()
        });
        assert!(network_policy(&rdc, &DnsPeer::default()).is_none());
    }

    #[test]
    fn dns_goes_only_to_the_cluster_dns_pods() {
        let egress = fenced(None).egress.expect("egress rules");
        let dns = &egress[0];
        let peers = dns
            .to
            .as_ref()
            .expect("DNS has a destination, not any address");
        assert_eq!(peers.len(), 1);
        assert!(peers[0].ip_block.is_none());
        assert_eq!(
            peers[0]
                .namespace_selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .and_then(|l| l.get(NAMESPACE_NAME_LABEL))
                .map(String::as_str),
            Some("kube-system")
        );
        assert_eq!(
            peers[0]
                .pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.as_ref())
                .and_then(|l| l.get("k8s-app"))
                .map(String::as_str),
            Some("kube-dns")
        );
        let ports: Vec<_> = dns
            .ports
            .iter()
            .flatten()
            .map(|p| (p.protocol.clone().unwrap_or_default(), p.port.clone()))
            .collect();
        assert_eq!(
            ports,
            [
                ("UDP".to_owned(), Some(IntOrString::Int(53))),
                ("TCP".to_owned(), Some(IntOrString::Int(53)))
            ]
        );
    }

    #[test]
    fn the_dns_selector_follows_the_operator_setting() {
        let dns = DnsPeer {
            namespace: "dns".to_owned(),
            pod_labels: BTreeMap::from([("app".to_owned(), "coredns".to_owned())]),
        };
        let spec = network_policy(&rdc("CN", 1), &dns)
            .and_then(|p| p.spec)
            .expect("a fence");
        let peer = &spec.egress.expect("egress")[0].to.clone().expect("peers")[0];
        assert_eq!(
            peer.pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.clone()),
            Some(dns.pod_labels.clone())
        );
    }

    #[test]
    fn replicas_reach_each_other_both_ways() {
        let spec = fenced(None);
        let egress = spec.egress.expect("egress");
        assert_eq!(egress[1].to, Some(vec![own_pods()]));
        assert!(egress[1].ports.is_none(), "on every port");
        let ingress = spec.ingress.expect("ingress");
        assert_eq!(ingress.len(), 1);
        assert_eq!(ingress[0].from, Some(vec![own_pods()]));
    }

    #[test]
    fn egress_reaches_the_listed_cidrs_and_nothing_else() {
        let spec = fenced(Some(NetworkSpec {
            allowed_egress_cidrs: vec!["10.20.0.0/16".to_owned(), "2001:db8::/32".to_owned()],
            ..Default::default()
        }));
        let egress = spec.egress.expect("egress rules");
        assert_eq!(egress.len(), 3, "DNS, own pods, the CIDRs");
        let cidrs: Vec<_> = egress[2]
            .to
            .iter()
            .flatten()
            .filter_map(|peer| peer.ip_block.as_ref().map(|b| b.cidr.as_str()))
            .collect();
        assert_eq!(cidrs, ["10.20.0.0/16", "2001:db8::/32"]);
        assert!(
            egress.iter().all(|rule| rule.to.is_some()),
            "no rule lets traffic go to any address"
        );
    }

    #[test]
    fn ingress_admits_the_listed_peers_besides_own_pods() {
        let team = LabelSelector {
            match_labels: Some(BTreeMap::from([("team".to_owned(), "ingest".to_owned())])),
            ..Default::default()
        };
        let spec = fenced(Some(NetworkSpec {
            allowed_ingress: vec![
                IngressPeer {
                    namespace_selector: Some(team.clone()),
                    pod_selector: Some(team.clone()),
                    ..Default::default()
                },
                IngressPeer {
                    cidr: Some("10.30.0.0/16".to_owned()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }));
        let from = spec.ingress.expect("ingress")[0]
            .from
            .clone()
            .expect("sources");
        assert_eq!(from.len(), 3);
        assert_eq!(from[0], own_pods());
        assert_eq!(from[1].namespace_selector, Some(team.clone()));
        assert_eq!(from[1].pod_selector, Some(team));
        assert_eq!(
            from[2].ip_block.as_ref().map(|b| b.cidr.as_str()),
            Some("10.30.0.0/16")
        );
        assert!(from[2].pod_selector.is_none() && from[2].namespace_selector.is_none());
    }
}
