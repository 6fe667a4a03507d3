//! The NetworkPolicy that keeps data pods from sending traffic anywhere but allowed CIDRs and DNS.

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{child_metadata, selector_labels};
use crate::api::RegionalDataCenter;

/// The policy, when `spec.network.restrictEgress` asks for one.
pub fn network_policy(rdc: &RegionalDataCenter) -> Option<NetworkPolicy> {
    let network = rdc.spec.network.as_ref().filter(|n| n.restrict_egress)?;
    let dns = NetworkPolicyEgressRule {
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
        ..Default::default()
    };
    let mut egress = vec![dns];
    if !network.allowed_egress_cidrs.is_empty() {
        egress.push(NetworkPolicyEgressRule {
            to: Some(
                network
                    .allowed_egress_cidrs
                    .iter()
                    .map(|cidr| NetworkPolicyPeer {
                        ip_block: Some(IPBlock {
                            cidr: cidr.clone(),
                            except: None,
                        }),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
    }
    Some(NetworkPolicy {
        metadata: child_metadata(rdc),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(rdc)),
                ..Default::default()
            }),
            policy_types: Some(vec!["Egress".to_owned()]),
            egress: Some(egress),
            ..Default::default()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::NetworkSpec;
    use crate::resources::fixtures::rdc;

    #[test]
    fn no_policy_unless_egress_is_restricted() {
        let mut rdc = rdc("CN", 1);
        assert!(network_policy(&rdc).is_none());
        rdc.spec.network = Some(NetworkSpec {
            restrict_egress: false,
            allowed_egress_cidrs: vec!["10.0.0.0/8".to_owned()],
        });
        assert!(network_policy(&rdc).is_none());
    }

    #[test]
    fn restricted_egress_allows_dns_and_the_listed_cidrs_only() {
        let mut rdc = rdc("CN", 1);
        rdc.spec.network = Some(NetworkSpec {
            restrict_egress: true,
            allowed_egress_cidrs: vec!["10.20.0.0/16".to_owned(), "2001:db8::/32".to_owned()],
        });
        let spec = network_policy(&rdc).and_then(|p| p.spec).expect("a policy");
        assert_eq!(spec.policy_types, Some(vec!["Egress".to_owned()]));
        let egress = spec.egress.expect("egress rules");
        assert_eq!(egress.len(), 2);
        assert!(egress[0].to.is_none(), "DNS goes to any resolver");
        let cidrs: Vec<_> = egress[1]
            .to
            .iter()
            .flatten()
            .filter_map(|peer| peer.ip_block.as_ref().map(|b| b.cidr.as_str()))
            .collect();
        assert_eq!(cidrs, ["10.20.0.0/16", "2001:db8::/32"]);
    }

    #[test]
    fn restricted_egress_without_cidrs_allows_dns_only() {
        let mut rdc = rdc("CN", 1);
        rdc.spec.network = Some(NetworkSpec {
            restrict_egress: true,
            allowed_egress_cidrs: vec![],
        });
        let egress = network_policy(&rdc)
            .and_then(|p| p.spec)
            .and_then(|s| s.egress);
        assert_eq!(egress.map(|e| e.len()), Some(1));
    }
}
