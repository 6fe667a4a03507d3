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

/// The operator's metrics. Every label value is one of a fixed set, never a name or error text.
pub struct Metrics {
    registry: Registry,
    writes: Family<Labels<2>, Counter>,
    reconciliations: Family<Labels<1>, Counter>,
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
        Self {
            registry,
            writes,
            reconciliations,
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

    pub fn reconciled(&self, result: &'static str) {
        self.reconciliations
            .get_or_create(&[("result", result)])
            .inc();
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

    #[test]
    fn writes_are_counted_by_verb_and_resource() {
        let metrics = Metrics::default();
        metrics.write("apply", "StatefulSet");
        metrics.write("apply", "StatefulSet");
        metrics.write("patch", "RegionalDataCenterStatus");
        let text = metrics.encode();
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
