//! domicile: a Kubernetes operator that keeps data inside the jurisdiction it belongs to.

pub mod api;
pub mod audit;
pub mod controller;
pub mod copies;
pub mod guard;
pub mod history;
pub mod leader;
pub mod report;
pub mod residency;
pub mod resources;
pub mod screen;
pub mod telemetry;
pub mod whatif;
