//! End-to-end tests against a real API server (see hack/cluster-up.sh); run with `make test`.

mod admin;
mod admission;
mod chart;
mod copies;
mod crd;
mod drift;
mod failover;
mod fleet;
mod history;
mod isolation;
mod members;
mod operator;
mod outage;
mod quiet;
mod real_node;
mod reports;
mod support;
mod tamper;
mod tenant;
mod tour;
mod validation;
mod whatif;
