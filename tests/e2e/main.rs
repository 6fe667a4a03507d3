//! End-to-end tests against a real API server (see hack/cluster-up.sh); run with `make test`.

mod admin;
mod chart;
mod crd;
mod drift;
mod failover;
mod operator;
mod quiet;
mod support;
mod validation;
