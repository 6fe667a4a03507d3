//! The headless Service that gives each replica a stable DNS name.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{child_metadata, selector_labels};
use crate::api::RegionalDataCenter;

/// `port` is the workload's, published under the name `service`.
pub fn service(rdc: &RegionalDataCenter, port: Option<i32>) -> Service {
    Service {
        metadata: child_metadata(rdc),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(selector_labels(rdc)),
            publish_not_ready_addresses: Some(true),
            ports: port.map(|port| {
                vec![ServicePort {
                    name: Some("service".to_owned()),
                    port,
                    target_port: Some(IntOrString::String("service".to_owned())),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::fixtures::rdc;

    #[test]
    fn service_is_headless_and_selects_the_replicas() {
        let svc = service(&rdc("CN", 3), Some(8080));
        let spec = svc.spec.expect("a spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.selector, Some(selector_labels(&rdc("CN", 3))));
        assert_eq!(spec.ports.expect("a port")[0].port, 8080);
    }

    #[test]
    fn service_without_port_has_no_ports() {
        let mut rdc = rdc("CN", 1);
        rdc.spec.workload.as_mut().expect("its own").port = None;
        assert_eq!(service(&rdc, None).spec.and_then(|s| s.ports), None);
    }
}
