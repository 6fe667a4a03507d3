//! Logs, metrics and the admin endpoints (`/livez`, `/readyz`, `/metrics`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

/// Installs the global tracing subscriber; `RUST_LOG` filters, default `info`.
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

type Labels<const N: usize> = [(&'static str, &'static str); N];
type JurisdictionLabels = Vec<(&'static str, String)>;

/// The operator's metrics. Every label value is one of a fixed set or a jurisdiction code, never
/// an object name or error text, so the number of series stays bounded.
pub struct Metrics {
    registry: Registry,
    writes: Family<Labels<2>, Counter>,
    reconciliations: Family<Labels<1>, Counter>,
    errors: Family<Labels<1>, Counter>,
    duration: Histogram,
    data_centers: Family<JurisdictionLabels, Gauge>,
    violations: Family<JurisdictionLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("domicile");
        let writes = Family::<Labels<2>, Counter>::default();
        registry.register(
            "kubernetes_writes",
            "Write requests the operator sent to the API server, by verb and resource",
            writes.clone(),
        );
        let reconciliations = Family::<Labels<1>, Counter>::default();
        registry.register(
            "reconciliations",
            "Reconciliations of RegionalDataCenters, by result (ok or error)",
            reconciliations.clone(),
        );
        let errors = Family::<Labels<1>, Counter>::default();
        // Every category is exposed from the start, at zero, so that rate() works at once.
        for category in crate::controller::ERROR_CATEGORIES {
            let _ = errors.get_or_create(&[("category", category)]);
        }
        for result in ["ok", "error"] {
            let _ = reconciliations.get_or_create(&[("result", result)]);
        }
        registry.register(
            "reconcile_errors",
            "Failed reconciliations, by category: api, conflict, invalid, forbidden, serialize, finalizer",
            errors.clone(),
        );
        let duration = Histogram::new(exponential_buckets(0.005, 2.0, 12));
        registry.register(
            "reconcile_duration_seconds",
            "How long one reconciliation took",
            duration.clone(),
        );
        let data_centers = Family::<JurisdictionLabels, Gauge>::default();
        registry.register(
            "regional_data_centers",
            "RegionalDataCenters by jurisdiction, phase and residency, as their status says",
            data_centers.clone(),
        );
        let violations = Family::<JurisdictionLabels, Gauge>::default();
        registry.register(
            "violations",
            "Residency violations by jurisdiction and reason, as the statuses say",
            violations.clone(),
        );
        Self {
            registry,
            writes,
            reconciliations,
            errors,
            duration,
            data_centers,
            violations,
        }
    }
}

impl Metrics {
    /// Counts one write request: `verb` is apply, delete, patch or create; `resource` a kind.
    pub fn write(&self, verb: &'static str, resource: &'static str) {
        self.writes
            .get_or_create(&[("verb", verb), ("resource", resource)])
            .inc();
    }

    /// Counts one reconciliation and how long it took; `error` is the category of a failure.
    pub fn reconciled(&self, seconds: f64, error: Option<&'static str>) {
        self.duration.observe(seconds);
        let result = if error.is_some() { "error" } else { "ok" };
        self.reconciliations
            .get_or_create(&[("result", result)])
            .inc();
        if let Some(category) = error {
            self.errors.get_or_create(&[("category", category)]).inc();
        }
    }

    /// Replaces the inventory gauges with the counts of the RegionalDataCenters given.
    pub fn set_inventory(&self, data_centers: &[Arc<crate::api::RegionalDataCenter>]) {
        self.data_centers.clear();
        self.violations.clear();
        for rdc in data_centers {
            let status = rdc.status.as_ref();
            let text = |value: Option<String>| value.unwrap_or_else(|| "Unknown".to_owned());
            let phase = text(status.and_then(|s| s.phase).map(|p| format!("{p:?}")));
            let residency = text(status.and_then(|s| s.residency).map(|r| format!("{r:?}")));
            let jurisdiction = rdc.spec.jurisdiction.clone();
            let labels = vec![
                ("jurisdiction", jurisdiction.clone()),
                ("phase", phase),
                ("residency", residency),
            ];
            self.data_centers.get_or_create(&labels).inc();
            for violation in status.map(|s| s.violations.as_slice()).unwrap_or_default() {
                let labels = vec![
                    ("jurisdiction", jurisdiction.clone()),
                    ("reason", violation.reason.clone()),
                ];
                self.violations.get_or_create(&labels).inc();
            }
        }
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// What the admin endpoints report on.
#[derive(Clone, Default)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// Set once every watch has listed its objects.
    pub ready: Arc<AtomicBool>,
    /// The controller's cache of RegionalDataCenters, once it runs; the inventory gauges are
    /// computed from it at each scrape.
    pub data_centers:
        Arc<std::sync::OnceLock<kube::runtime::reflector::Store<crate::api::RegionalDataCenter>>>,
}

async fn livez() -> &'static str {
    "ok"
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if health.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not yet synced")
    }
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    if let Some(store) = health.data_centers.get() {
        health.metrics.set_inventory(&store.state());
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        health.metrics.encode(),
    )
}

/// Serves the admin endpoints on `listener` until `shutdown` resolves.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    health: Health,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health);
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "admin endpoints listening");
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Phase, RegionalDataCenterStatus, Residency, Violation};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn inventory_counts_data_centres_and_violations_by_jurisdiction() {
        let rdc = |jurisdiction: &str, phase, residency, violations: usize| {
            let mut rdc = crate::api::RegionalDataCenter::new(
                "x",
                serde_json::from_value(serde_json::json!({
                    "jurisdiction": jurisdiction,
                    "storage": {"size": "1Gi"},
                    "workload": {"image": "i"}
                }))
                .expect("a spec"),
            );
            rdc.status = Some(RegionalDataCenterStatus {
                phase: Some(phase),
                residency: Some(residency),
                violations: (0..violations)
                    .map(|i| Violation {
                        kind: "Pod".to_owned(),
                        name: format!("x-{i}"),
                        reason: "NodeOutsideJurisdiction".to_owned(),
                        message: String::new(),
                        since: Time(jiff::Timestamp::UNIX_EPOCH),
                    })
                    .collect(),
                ..Default::default()
            });
            Arc::new(rdc)
        };
        let metrics = Metrics::default();
        metrics.set_inventory(&[
            rdc("CN", Phase::Ready, Residency::Compliant, 0),
            rdc("CN", Phase::Ready, Residency::Compliant, 0),
            rdc("DE", Phase::Violated, Residency::Violated, 2),
        ]);
        let text = metrics.encode();
        assert!(text.contains(r#"domicile_regional_data_centers{jurisdiction="CN",phase="Ready",residency="Compliant"} 2"#), "{text}");
        assert!(
            text.contains(
                r#"domicile_violations{jurisdiction="DE",reason="NodeOutsideJurisdiction"} 2"#
            ),
            "{text}"
        );
        // A later scrape replaces the counts: nothing lingers for data centres that are gone.
        metrics.set_inventory(&[]);
        assert!(!metrics.encode().contains("jurisdiction=\"DE\""));
    }

    #[test]
    fn writes_are_counted_by_verb_and_resource() {
        let metrics = Metrics::default();
        metrics.write("apply", "StatefulSet");
        metrics.write("apply", "StatefulSet");
        metrics.write("patch", "RegionalDataCenterStatus");
        metrics.reconciled(0.01, None);
        metrics.reconciled(0.02, Some("conflict"));
        let text = metrics.encode();
        assert!(
            text.contains(r#"domicile_reconciliations_total{result="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"domicile_reconcile_errors_total{category="conflict"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("domicile_reconcile_duration_seconds_count 2"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"domicile_kubernetes_writes_total{verb="apply",resource="StatefulSet"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"verb="patch",resource="RegionalDataCenterStatus"} 1"#),
            "{text}"
        );
    }
}
