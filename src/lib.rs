//! domicile: a Kubernetes operator that keeps data inside the jurisdiction it belongs to.

pub mod api;
pub mod audit;
pub mod controller;
pub mod guard;
pub mod leader;
pub mod residency;
pub mod resources;
pub mod telemetry;
