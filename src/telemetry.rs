//! Logs, metrics and the admin endpoints (`/livez`, `/readyz`, `/metrics`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Every category a failed reconciliation is counted under.
pub const ERROR_CATEGORIES: [&str; 6] = [
    "conflict",
    "invalid",
    "forbidden",
    "api",
    "serialize",
    "finalizer",
];

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
    watch_age: Family<Labels<1>, Gauge<f64, AtomicU64>>,
    watch_healthy: Family<Labels<1>, Gauge>,
    leader: Gauge,
    report_failures: Family<Labels<1>, Counter>,
    /// Held while a scrape replaces the gauges and encodes them, so that two scrapes at once
    /// cannot add up their counts.
    scrape: Mutex<()>,
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
        for category in ERROR_CATEGORIES {
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
        let watch_age = Family::<Labels<1>, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "watch_last_event_age_seconds",
            "Seconds since each watch of the operator last delivered an event (or listed everything)",
            watch_age.clone(),
        );
        let watch_healthy = Family::<Labels<1>, Gauge>::default();
        registry.register(
            "watch_healthy",
            "1 while a watch has listed everything and is connected, 0 while it is down or stale",
            watch_healthy.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica reconciles (it holds the lease, or runs without leader election), 0 while it stands by",
            leader.clone(),
        );
        let report_failures = Family::<Labels<1>, Counter>::default();
        for kind in ["PolicyReport", "Report"] {
            let _ = report_failures.get_or_create(&[("kind", kind)]);
        }
        registry.register(
            "report_write_failures",
            "Policy reports the operator could not write, by kind (PolicyReport or Report)",
            report_failures.clone(),
        );
        Self {
            registry,
            leader,
            report_failures,
            writes,
            reconciliations,
            errors,
            duration,
            data_centers,
            violations,
            watch_age,
            watch_healthy,
            scrape: Mutex::new(()),
        }
    }
}

impl Metrics {
    /// Whether this replica reconciles now.
    pub fn leading(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Counts one policy report that could not be written.
    pub fn report_failed(&self, kind: &'static str) {
        self.report_failures.get_or_create(&[("kind", kind)]).inc();
    }

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

    /// Replaces the watch gauges with what `watches` says at `now`.
    pub fn set_watches(&self, watches: &Watches, now: Instant) {
        for (resource, report) in watches.report(now) {
            let labels = [("resource", resource)];
            self.watch_age
                .get_or_create(&labels)
                .set(report.age.map_or(f64::NAN, |age| age.as_secs_f64()));
            self.watch_healthy
                .get_or_create(&labels)
                .set(i64::from(report.healthy));
        }
    }

    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// How long a failing watch must go without a new error to count as connected again, when no
/// event says so: longer than the watches' longest retry interval, so during an outage, when
/// every retry fails, it never elapses.
pub const WATCH_RECOVERY: Duration = Duration::from_secs(12);

/// The operator's watches, by resource: whether each has listed everything, when it last
/// delivered an event, and whether it is failing. Readiness and two gauges come from here.
#[derive(Default)]
pub struct Watches(Mutex<BTreeMap<&'static str, WatchState>>);

#[derive(Clone, Copy, Debug, Default)]
struct WatchState {
    listed: bool,
    last_event: Option<Instant>,
    last_error: Option<Instant>,
}

/// One watch, as /metrics and /readyz see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WatchReport {
    pub healthy: bool,
    /// Time since the last event, or None before the first.
    pub age: Option<Duration>,
}

impl WatchState {
    fn healthy(&self, now: Instant) -> bool {
        self.listed
            && match (self.last_error, self.last_event) {
                (None, _) => true,
                (Some(error), Some(event)) if event > error => true,
                (Some(error), _) => now.saturating_duration_since(error) >= WATCH_RECOVERY,
            }
    }
}

impl Watches {
    fn update(&self, resource: &'static str, change: impl FnOnce(&mut WatchState)) {
        let mut watches = self.0.lock().unwrap_or_else(|p| p.into_inner());
        change(watches.entry(resource).or_default());
    }

    /// Adds a watch that has not listed yet.
    pub fn register(&self, resource: &'static str) {
        self.update(resource, |_| {});
    }

    /// The watch delivered an event; `listed` when it was the end of a complete listing.
    pub fn event(&self, resource: &'static str, listed: bool, now: Instant) {
        self.update(resource, |state| {
            state.last_event = Some(now);
            state.listed |= listed;
        });
    }

    /// The watch failed (the API server is unreachable, refused, or answered an error).
    pub fn error(&self, resource: &'static str, now: Instant) {
        self.update(resource, |state| state.last_error = Some(now));
    }

    /// Whether every watch has listed everything at least once.
    pub fn listed(&self) -> bool {
        let watches = self.0.lock().unwrap_or_else(|p| p.into_inner());
        watches.values().all(|state| state.listed)
    }

    /// The watches that are not healthy at `now`: not yet listed, or failing.
    pub fn unhealthy(&self, now: Instant) -> Vec<&'static str> {
        self.report(now)
            .into_iter()
            .filter(|(_, report)| !report.healthy)
            .map(|(resource, _)| resource)
            .collect()
    }

    pub fn report(&self, now: Instant) -> Vec<(&'static str, WatchReport)> {
        let watches = self.0.lock().unwrap_or_else(|p| p.into_inner());
        watches
            .iter()
            .map(|(resource, state)| {
                let report = WatchReport {
                    healthy: state.healthy(now),
                    age: state
                        .last_event
                        .map(|event| now.saturating_duration_since(event)),
                };
                (*resource, report)
            })
            .collect()
    }
}

/// What the admin endpoints report on.
#[derive(Clone, Default)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    /// Set once every watch has listed its objects (or while a standby replica waits to lead).
    pub ready: Arc<AtomicBool>,
    /// The watches of the running controller; /readyz fails while one is down.
    pub watches: Arc<Watches>,
    /// The controller's cache of RegionalDataCenters, once it runs; the inventory gauges are
    /// computed from it at each scrape.
    pub data_centers:
        Arc<std::sync::OnceLock<kube::runtime::reflector::Store<crate::api::RegionalDataCenter>>>,
}

async fn livez() -> &'static str {
    "ok"
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    if !health.ready.load(Ordering::Acquire) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "caches not yet synced".to_owned(),
        );
    }
    let down = health.watches.unhealthy(Instant::now());
    if down.is_empty() {
        (StatusCode::OK, "ok".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("watches down or not synced: {}", down.join(", ")),
        )
    }
}

async fn metrics(State(health): State<Health>) -> impl IntoResponse {
    let text = {
        let _scrape = health
            .metrics
            .scrape
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(store) = health.data_centers.get() {
            health.metrics.set_inventory(&store.state());
        }
        health.metrics.set_watches(&health.watches, Instant::now());
        health.metrics.encode()
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
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

    #[test]
    fn a_watch_is_healthy_once_listed_and_until_it_fails() {
        let watches = Watches::default();
        let t0 = Instant::now();
        watches.register("nodes");
        assert_eq!(watches.unhealthy(t0), ["nodes"], "not listed yet");
        assert!(!watches.listed());
        watches.event("nodes", true, t0);
        assert!(watches.unhealthy(t0).is_empty());
        assert!(watches.listed());
        let t1 = t0 + Duration::from_secs(1);
        watches.error("nodes", t1);
        assert_eq!(watches.unhealthy(t1), ["nodes"], "down after an error");
        // Retries keep failing during an outage: down throughout.
        let t2 = t1 + WATCH_RECOVERY - Duration::from_millis(1);
        watches.error("nodes", t2);
        assert_eq!(watches.unhealthy(t2 + Duration::from_secs(5)), ["nodes"]);
        // An event after the error: up again.
        watches.event("nodes", false, t2 + Duration::from_secs(6));
        assert!(watches.unhealthy(t2 + Duration::from_secs(6)).is_empty());
    }

    #[test]
    fn a_watch_that_stops_failing_recovers_without_an_event() {
        let watches = Watches::default();
        let t0 = Instant::now();
        watches.event("pods", true, t0);
        watches.error("pods", t0 + Duration::from_secs(1));
        assert_eq!(
            watches
                .unhealthy(t0 + Duration::from_secs(1) + WATCH_RECOVERY - Duration::from_millis(1)),
            ["pods"]
        );
        assert!(
            watches
                .unhealthy(t0 + Duration::from_secs(1) + WATCH_RECOVERY)
                .is_empty()
        );
    }

    #[test]
    fn watch_gauges_report_age_and_health_by_resource() {
        let watches = Watches::default();
        let t0 = Instant::now();
        watches.event("nodes", true, t0);
        watches.register("pods");
        let metrics = Metrics::default();
        metrics.set_watches(&watches, t0 + Duration::from_secs(3));
        let text = metrics.encode();
        assert!(
            text.contains(r#"domicile_watch_last_event_age_seconds{resource="nodes"} 3.0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"domicile_watch_healthy{resource="nodes"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"domicile_watch_healthy{resource="pods"} 0"#),
            "{text}"
        );
    }

    /// Every series the chart's dashboard and alerts query is one the operator exposes.
    #[test]
    fn the_dashboard_and_the_alerts_query_only_exposed_families() {
        let metrics = Metrics::default();
        metrics.leading(true);
        metrics.reconciled(0.01, None);
        metrics.write("apply", "StatefulSet");
        let exposed: std::collections::BTreeSet<String> = metrics
            .encode()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split(['{', ' ']).next())
            .map(str::to_owned)
            .chain(
                // Families whose series appear only with data: the inventory and watches.
                [
                    "domicile_regional_data_centers",
                    "domicile_violations",
                    "domicile_watch_healthy",
                ]
                .map(str::to_owned),
            )
            .collect();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/domicile");
        let read = |path: &str| std::fs::read_to_string(root.join(path)).expect("a chart file");
        let dashboard: serde_json::Value =
            serde_json::from_str(&read("files/dashboard.json")).expect("the dashboard is JSON");
        let mut queries: Vec<String> = dashboard["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
            .filter_map(|target| target["expr"].as_str().map(str::to_owned))
            .collect();
        queries.push(read("templates/monitoring.yaml"));
        let mut checked = 0;
        for query in &queries {
            for (at, _) in query.match_indices("domicile_") {
                let name: String = query[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    exposed.contains(&name),
                    "{name} is queried but not exposed: {exposed:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 10, "{checked}");
    }
}
