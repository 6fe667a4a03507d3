//! `make bench` (hack/bench.sh, which starts the cluster): the operator at scale.
//!
//! In one run, on the cluster hack/bench.sh starts (33 CN nodes and 1 US node, kwok, 110 pods
//! each), with the operator's release build run out-of-cluster under the chart's ServiceAccount:
//!
//! - converge: N data centres (Local mode, 3 replicas) through the operator, against applying the
//!   same children (built by the operator's own builders) with a plain client while the operator
//!   is stopped, alternated, for each N of `DOMICILE_BENCH_SIZES`;
//! - at rest, after the largest run: the operator's requests per minute, counted by the API
//!   server itself (priority-and-fairness FlowSchemas that match the operator's ServiceAccount,
//!   one per kind of request), its reconciles, writes, CPU and memory;
//! - drift: relabel a node hosting data CN -> US and back, `DOMICILE_BENCH_RELABELS` times, and
//!   time the verdict of every affected data centre (first and last);
//! - restart, once the operator wrote nothing for 10 s: time to `/readyz` and what the new
//!   process writes in its first minute;
//! - placement: how the volumes spread over the eligible nodes;
//! - memory once every data centre is deleted.
//!
//! Prints the figures and writes them to `DOMICILE_BENCH_OUT` (BENCHMARKS.md).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use domicile::api::RegionalDataCenter;
use domicile::api::jurisdiction::Jurisdiction;
use domicile::resources::{self, DnsPeer, NodeLabelKeys, RDC_LABEL, RDC_NAMESPACE_LABEL};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolume, Pod};
use k8s_openapi::api::flowcontrol::v1::FlowSchema;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REPLICAS: i32 = 3;
const ROOT: &str = "/var/lib/domicile";
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(1200);
const REST_WINDOW: Duration = Duration::from_secs(60);
const STALE_AFTER: Duration = Duration::from_secs(5);
const VERDICT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the operator must have written nothing before the restart, so that what the new
/// process writes is the restart's doing and not the tail of the last relabel.
const QUIET_BEFORE_RESTART: Duration = Duration::from_secs(10);
const ADMIN: &str = "127.0.0.1:28080";
/// The kinds of request the FlowSchemas tell apart, in the order the API server matches them.
const KINDS: [&str; 4] = ["watch", "lease", "read", "write"];
/// One data centre in `COVERING_EVERY` also covers, through `spec.members`, a database that
/// another operator runs (a StatefulSet of one instance with a claim, labelled as CloudNativePG
/// labels its instances), and a VolumeSnapshot of that database's claim.
const COVERING_EVERY: usize = 5;
const FOREIGN_LABEL: &str = "cnpg.io/cluster";
/// The databases' storage class and snapshot class, both declared CN.
const FOREIGN_CLASS: &str = "bench-foreign-cn";
const SNAPSHOT_CLASS: &str = "bench-snapshots-cn";
/// On the databases' volumes (made by the benchmark, as an admin makes local volumes): the run
/// and the data centre.
const RUN_LABEL: &str = "domicile-bench/run";
const RDC_OF_VOLUME: &str = "domicile-bench/rdc";
const CN_NODES: usize = 33;

fn env(name: &str) -> Result<String> {
    std::env::var(name)
        .with_context(|| format!("{name} is not set; run the benchmark with make bench"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let sizes: Vec<usize> = std::env::var("DOMICILE_BENCH_SIZES")
        .unwrap_or_else(|_| "100,500".to_owned())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .context("DOMICILE_BENCH_SIZES: numbers separated by commas")
        })
        .collect::<Result<_>>()?;
    let relabels: usize = std::env::var("DOMICILE_BENCH_RELABELS")
        .unwrap_or_else(|_| "20".to_owned())
        .parse()
        .context("DOMICILE_BENCH_RELABELS: a number")?;
    let out = env("DOMICILE_BENCH_OUT")?;
    let bench = Bench::new().await?;
    bench.install_flow_schemas().await?;
    bench.install_foreign_classes().await?;

    let mut report = Report::default();
    let mut operator = Operator::start().await?;
    // Settle before the empty figure: the first listings are done and the caches are empty.
    tokio::time::sleep(Duration::from_secs(10)).await;
    report.memory_empty = operator.memory()?;

    let largest = sizes.iter().copied().max().unwrap_or(0);
    let mut converges = Vec::new();
    let mut last_namespace = String::new();
    for &n in &sizes {
        operator.stop().await?;
        let raw = bench.converge_raw(n).await?;
        println!("raw apply, N = {n}: {:.1} s", raw.seconds);
        bench.clean(&raw.namespace).await?;
        operator = Operator::start().await?;
        let op = bench.converge_operator(n, &operator).await?;
        println!(
            "operator, N = {n}: {:.1} s, {} requests",
            op.seconds, op.requests
        );
        let audit = bench.audit(n, &operator).await?;
        println!(
            "domicile audit, N = {n}: {:.2} s, {} requests, {} data centres",
            audit.seconds, audit.requests, audit.data_centres
        );
        report.audits.push(audit);
        if n == largest {
            last_namespace = op.namespace.clone();
        } else {
            bench.clean(&op.namespace).await?;
        }
        converges.push((n, raw, op));
    }
    report.converges = converges;
    if last_namespace.is_empty() {
        bail!("DOMICILE_BENCH_SIZES is empty");
    }
    report.largest = largest;
    report.placement = bench.placement(&last_namespace).await?;
    report.rest = bench.at_rest(&operator).await?;
    report.drift = bench.drift(&last_namespace, relabels).await?;
    report.memory_full = operator.memory()?;

    operator.wait_quiet(QUIET_BEFORE_RESTART).await?;
    operator.stop().await?;
    let (restarted, ready, minute) = bench.restart().await?;
    operator = restarted;
    report.restart_ready = ready;
    report.restart_minute = minute;
    report.restart_writes = operator.writes().await?;

    bench.clean(&last_namespace).await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    report.memory_deleted = operator.memory()?;
    operator.stop().await?;

    let text = report.render()?;
    println!("\n{text}");
    std::fs::write(&out, text).with_context(|| format!("writing {out}"))?;
    println!("written to {out}");
    Ok(())
}

// --- The operator process -----------------------------------------------------------------------

struct Operator {
    child: tokio::process::Child,
    pid: u32,
}

impl Operator {
    async fn start() -> Result<Self> {
        Ok(Self::start_timed().await?.0)
    }

    /// Starts the operator as the chart would (leader election on) and waits until it leads and
    /// is ready (a standby replica is ready too, before it leads; a leader only once synced).
    async fn start_timed() -> Result<(Self, Duration)> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(env("DOMICILE_BENCH_LOG")?)?;
        let started = Instant::now();
        let child = tokio::process::Command::new(env("DOMICILE_BIN")?)
            .args(["run", "--leader-election", "--admin-address", ADMIN])
            // As the chart with namespaces.label and the admission policies runs it.
            .args(["--label-namespaces", "--label-any-namespace"])
            .arg(format!(
                "--declared-classes={}/domicile-storage-classes",
                env("DOMICILE_OPERATOR_NAMESPACE")?
            ))
            .env("KUBECONFIG", env("DOMICILE_OPERATOR_KUBECONFIG")?)
            .env("POD_NAMESPACE", env("DOMICILE_OPERATOR_NAMESPACE")?)
            .env("POD_NAME", "domicile-bench")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting the operator")?;
        let pid = child.id().context("the operator exited at once")?;
        let mut operator = Self { child, pid };
        loop {
            if let Ok((200, _)) = http_get("/readyz").await
                && operator.counter("domicile_leader").await.ok() == Some(1.0)
                && let Ok((200, _)) = http_get("/readyz").await
            {
                return Ok((operator, started.elapsed()));
            }
            if let Some(status) = operator.child.try_wait()? {
                bail!("the operator exited ({status}); see DOMICILE_BENCH_LOG");
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("the operator was not ready within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, as Kubernetes stops a pod, and wait for the exit (which releases the lease).
    async fn stop(mut self) -> Result<()> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("could not signal the operator");
        }
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .context("the operator did not stop within 60 s of SIGTERM")??;
        Ok(())
    }

    /// (VmRSS, VmHWM) in MiB.
    fn memory(&self) -> Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let field = |name: &str| -> Result<f64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("{name} missing from /proc status"))?;
            let kib: f64 = line
                .split_whitespace()
                .nth(1)
                .context("malformed /proc status")?
                .parse()?;
            Ok(kib / 1024.0)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// User and system CPU seconds so far.
    fn cpu_seconds(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the command (which may hold spaces) start at the state, field 3.
        let rest = stat.rsplit_once(')').context("malformed /proc stat")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
        Ok(ticks / 100.0)
    }

    /// The operator's writes so far by verb and kind, from its own counter.
    async fn writes(&self) -> Result<BTreeMap<String, f64>> {
        let (_, body) = http_get("/metrics").await?;
        Ok(body
            .lines()
            .filter_map(|line| line.strip_prefix("domicile_kubernetes_writes_total{"))
            .filter_map(|line| {
                let (labels, value) = line.rsplit_once("} ")?;
                Some((labels.replace('"', ""), value.parse().ok()?))
            })
            .collect())
    }

    /// Waits until the operator has written nothing (statuses, Events, children) for `quiet`,
    /// two minutes at most.
    async fn wait_quiet(&self, quiet: Duration) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut writes = self.counter("domicile_kubernetes_writes_total").await?;
        let mut since = Instant::now();
        while since.elapsed() < quiet {
            if Instant::now() > deadline {
                bail!("the operator was still writing two minutes after the last relabel");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.counter("domicile_kubernetes_writes_total").await?;
            if now != writes {
                (writes, since) = (now, Instant::now());
            }
        }
        Ok(())
    }

    /// Sum of a counter of the operator's own /metrics over all its label sets.
    async fn counter(&self, name: &str) -> Result<f64> {
        let (status, body) = http_get("/metrics").await?;
        if status != 200 {
            bail!("operator /metrics answered {status}");
        }
        Ok(sample_sum(&body, name, &[]))
    }
}

/// A GET against the operator's admin address (HTTP/1.0: the answer ends with the connection).
async fn http_get(path: &str) -> Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(ADMIN).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {ADMIN}\r\n\r\n").as_bytes())
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no HTTP status")?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Sum of the samples of `name` whose labels include every pair of `labels`.
fn sample_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let wanted = metric == name
                && labels
                    .iter()
                    .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
            wanted.then(|| value.parse::<f64>().ok()).flatten()
        })
        .fold(0.0, |sum, value| sum + value)
}

// --- The cluster -------------------------------------------------------------------------------

struct Bench {
    client: Client,
    keys: NodeLabelKeys,
    cn: Jurisdiction,
}

/// One converge run.
struct Converge {
    namespace: String,
    seconds: f64,
    /// API server CPU seconds during the run.
    apiserver_cpu: f64,
    /// Of which judging requests by the admission policies (their own time, as the API server
    /// measures it).
    admission: f64,
    /// Requests by the operator (reads and writes; none for the raw run).
    requests: f64,
    /// The operator's own count of its writes so far, by verb and kind.
    writes: BTreeMap<String, f64>,
}

/// `domicile audit` over the data centres of one size.
struct AuditRun {
    n: usize,
    seconds: f64,
    requests: f64,
    data_centres: usize,
}

/// What happened over a window of time, from the API server's and the operator's counters.
#[derive(Default)]
struct Window {
    seconds: f64,
    requests: BTreeMap<&'static str, f64>,
    reconciles: f64,
    writes: f64,
    operator_cpu: f64,
    apiserver_cpu: f64,
}

/// How the volumes of the largest run spread over the eligible nodes.
#[derive(Default)]
struct Placement {
    eligible: usize,
    used: usize,
    max: usize,
    mean: f64,
}

/// One relabel: the affected data centres and when each showed the new verdict.
struct Relabel {
    node: String,
    to: &'static str,
    /// Sent right after a change that makes every data centre reconcile.
    under_load: bool,
    affected: usize,
    first: Option<Duration>,
    last: Option<Duration>,
    /// Data centres without the new verdict after STALE_AFTER, and whether they got it later.
    late: Vec<(String, Option<Duration>)>,
    /// Unaffected data centres whose verdict changed.
    spurious: Vec<String>,
}

impl Bench {
    async fn new() -> Result<Self> {
        Ok(Self {
            client: Client::try_default()
                .await
                .context("connecting with KUBECONFIG")?,
            keys: NodeLabelKeys::default(),
            cn: Jurisdiction::parse("CN").map_err(|e| anyhow::anyhow!("{e}"))?,
        })
    }

    /// FlowSchemas matching the operator's ServiceAccount, one per kind of request, so that the
    /// API server's own `apiserver_flowcontrol_dispatched_requests_total` counts each kind.
    async fn install_flow_schemas(&self) -> Result<()> {
        let api: Api<FlowSchema> = Api::all(self.client.clone());
        let account = json!({"kind": "ServiceAccount", "serviceAccount": {
            "name": "domicile", "namespace": env("DOMICILE_OPERATOR_NAMESPACE")?}});
        let rule = |verbs: Value, groups: Value, kinds: Value| {
            json!({"verbs": verbs, "apiGroups": groups, "resources": kinds,
                   "clusterScope": true, "namespaces": ["*"]})
        };
        let rules = [
            vec![rule(json!(["watch"]), json!(["*"]), json!(["*"]))],
            vec![rule(
                json!(["*"]),
                json!(["coordination.k8s.io"]),
                json!(["leases"]),
            )],
            vec![rule(json!(["get", "list"]), json!(["*"]), json!(["*"]))],
            vec![rule(json!(["*"]), json!(["*"]), json!(["*"]))],
        ];
        for (precedence, (kind, resource_rules)) in KINDS.iter().zip(rules).enumerate() {
            let name = format!("domicile-bench-{kind}");
            let mut subject = json!({"subjects": [account], "resourceRules": resource_rules});
            if *kind == "write" {
                subject["nonResourceRules"] = json!([{"verbs": ["*"], "nonResourceURLs": ["*"]}]);
            }
            let schema = json!({
                "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
                "metadata": {"name": name},
                "spec": {"matchingPrecedence": 50 + precedence,
                         "priorityLevelConfiguration": {"name": "workload-low"},
                         "rules": [subject]}
            });
            api.patch(
                &name,
                &PatchParams::apply("domicile-bench").force(),
                &Patch::Apply(&schema),
            )
            .await?;
        }
        // The API server picks FlowSchemas up asynchronously; the first window starts later.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(())
    }

    async fn apiserver_metrics(&self) -> Result<String> {
        let request = http::Request::get("/metrics").body(Vec::new())?;
        Ok(self.client.request_text(request).await?)
    }

    /// The operator's requests of each kind and the API server's CPU seconds, so far.
    async fn apiserver_counters(&self) -> Result<(BTreeMap<&'static str, f64>, f64)> {
        let text = self.apiserver_metrics().await?;
        let requests = KINDS
            .iter()
            .map(|kind| {
                let schema = format!("domicile-bench-{kind}");
                let count = sample_sum(
                    &text,
                    "apiserver_flowcontrol_dispatched_requests_total",
                    &[("flow_schema", &schema)],
                );
                (*kind, count)
            })
            .collect();
        Ok((
            requests,
            sample_sum(&text, "process_cpu_seconds_total", &[]),
        ))
    }

    /// Seconds the API server spent so far judging requests by the ValidatingAdmissionPolicies
    /// (its admission plugin, all policies together).
    async fn admission_seconds(&self) -> Result<f64> {
        let text = self.apiserver_metrics().await?;
        Ok(sample_sum(
            &text,
            "apiserver_admission_controller_admission_duration_seconds_sum",
            &[("name", "ValidatingAdmissionPolicy")],
        ))
    }

    async fn create_namespace(&self, name: &str) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        api.create(&PostParams::default(), &namespace).await?;
        Ok(())
    }

    fn data_centre(&self, namespace: &str, index: usize) -> Result<RegionalDataCenter> {
        let mut rdc = json!({
            "apiVersion": "domicile.dev/v1alpha1", "kind": "RegionalDataCenter",
            "metadata": {"name": format!("dc-{index:04}"), "namespace": namespace},
            "spec": {"jurisdiction": "CN", "storage": {"size": "1Gi", "mode": "Local"},
                     "workload": {"image": "registry.example/ingest:1.4", "replicas": REPLICAS,
                                  "port": 8080}}
        });
        if covering(index) {
            rdc["spec"]["members"] = json!({"matchLabels": {FOREIGN_LABEL: database(index)}});
        }
        Ok(serde_json::from_value(rdc)?)
    }

    /// The classes the databases and their snapshots use, both declared CN by the label an
    /// admin sets.
    async fn install_foreign_classes(&self) -> Result<()> {
        let declared = json!({ self.keys.jurisdiction.clone(): "CN" });
        let class = json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": FOREIGN_CLASS, "labels": declared},
            "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate",
            "reclaimPolicy": "Retain"
        });
        let snapshots = json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
            "metadata": {"name": SNAPSHOT_CLASS, "labels": declared},
            "driver": "bench.csi.example", "deletionPolicy": "Retain"
        });
        for object in [class, snapshots] {
            apply_value(&self.client, None, &object).await?;
        }
        Ok(())
    }

    /// Data centre `index`'s database, as its operator and an admin make it: the volume (local,
    /// on a CN node, pre-bound to the claim), the StatefulSet, and a snapshot of its claim.
    fn foreign(&self, namespace: &str, index: usize) -> [Value; 3] {
        let name = database(index);
        let claim = format!("pgdata-{name}-0");
        let host = format!("cn-bench-{:02}", (index / COVERING_EVERY) % CN_NODES + 1);
        let labels = json!({ FOREIGN_LABEL: name });
        let volume = json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": format!("{namespace}-{name}"),
                         "labels": {RUN_LABEL: namespace, RDC_OF_VOLUME: format!("dc-{index:04}")}},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": FOREIGN_CLASS,
                     "claimRef": {"namespace": namespace, "name": claim},
                     "local": {"path": format!("/mnt/databases/{name}")},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}}
        });
        let statefulset = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"serviceName": name, "replicas": 1,
                     "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "nodeSelector": { self.keys.jurisdiction.clone(): "CN" },
                         "containers": [{"name": "postgres", "image": "registry.example/postgres:17",
                             "volumeMounts": [{"name": "pgdata",
                                               "mountPath": "/var/lib/postgresql/data"}]}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "pgdata", "labels": labels},
                         "spec": {"storageClassName": FOREIGN_CLASS,
                                  "accessModes": ["ReadWriteOnce"],
                                  "resources": {"requests": {"storage": "1Gi"}}}}]}
        });
        let snapshot = json!({
            "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
            "metadata": {"name": format!("{name}-nightly"), "namespace": namespace},
            "spec": {"volumeSnapshotClassName": SNAPSHOT_CLASS,
                     "source": {"persistentVolumeClaimName": claim}}
        });
        [volume, statefulset, snapshot]
    }

    /// Applies data centre `index`'s database when it has one.
    async fn apply_foreign(&self, namespace: &str, index: usize) -> Result<()> {
        if covering(index) {
            for object in self.foreign(namespace, index) {
                let scope = object["metadata"]["namespace"].as_str().map(str::to_owned);
                apply_value(&self.client, scope.as_deref(), &object).await?;
            }
        }
        Ok(())
    }

    /// `domicile audit` over every data centre, with the operator's credentials while it rests
    /// (it sends nothing then but its lease renewals, so what is counted is the audit's): its
    /// time and requests (lists, gets and discovery).
    async fn audit(&self, n: usize, operator: &Operator) -> Result<AuditRun> {
        operator.wait_quiet(Duration::from_secs(5)).await?;
        let (before, _) = self.apiserver_counters().await?;
        let started = Instant::now();
        let out = tokio::process::Command::new(env("DOMICILE_BIN")?)
            .args(["audit", "-o", "json"])
            .env("KUBECONFIG", env("DOMICILE_OPERATOR_KUBECONFIG")?)
            .stdin(Stdio::null())
            .output()
            .await
            .context("running domicile audit")?;
        let seconds = started.elapsed().as_secs_f64();
        let (after, _) = self.apiserver_counters().await?;
        if out.status.code() != Some(0) {
            bail!(
                "domicile audit over N = {n} did not find every data centre compliant ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let audited: Value = serde_json::from_slice(&out.stdout).context("audit -o json")?;
        Ok(AuditRun {
            n,
            seconds,
            requests: ["read", "write"]
                .iter()
                .map(|kind| after[kind] - before[kind])
                .sum(),
            data_centres: audited.as_array().map_or(0, Vec::len),
        })
    }

    /// N data centres through the operator: from the first create to every one Ready.
    async fn converge_operator(&self, n: usize, operator: &Operator) -> Result<Converge> {
        let namespace = format!("bench-operator-{n}");
        self.create_namespace(&namespace).await?;
        let api: Api<RegionalDataCenter> = Api::namespaced(self.client.clone(), &namespace);
        let ready = count_until(api.clone(), n, |rdc: &RegionalDataCenter| {
            rdc.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
        });
        let databases = count_until(
            Api::<StatefulSet>::namespaced(self.client.clone(), &namespace),
            (0..n).filter(|i| covering(*i)).count(),
            |sts: &StatefulSet| sts.labels().contains_key(FOREIGN_LABEL) && all_ready(sts),
        );
        let (requests_before, cpu_before) = self.apiserver_counters().await?;
        let admission_before = self.admission_seconds().await?;
        let started = Instant::now();
        let creates = (0..n).map(|i| {
            let api = api.clone();
            let rdc = self.data_centre(&namespace, i);
            let namespace = &namespace;
            async move {
                api.create(&PostParams::default(), &rdc?).await?;
                self.apply_foreign(namespace, i).await
            }
        });
        eight_at_a_time(creates).await?;
        ready.await??;
        databases.await??;
        let seconds = started.elapsed().as_secs_f64();
        let (requests_after, cpu_after) = self.apiserver_counters().await?;
        let admission = self.admission_seconds().await? - admission_before;
        let requests = ["read", "write"]
            .iter()
            .map(|k| requests_after[k] - requests_before[k])
            .sum();
        Ok(Converge {
            namespace,
            seconds,
            apiserver_cpu: cpu_after - cpu_before,
            admission,
            requests,
            writes: operator.writes().await?,
        })
    }

    /// The same children, built by the operator's own builders for the same cluster, applied
    /// directly: from the first apply to every StatefulSet ready.
    async fn converge_raw(&self, n: usize) -> Result<Converge> {
        let namespace = format!("bench-raw-{n}");
        self.create_namespace(&namespace).await?;
        let nodes: Vec<Node> = Api::<Node>::all(self.client.clone())
            .list(&ListParams::default())
            .await?
            .items;
        let eligible: Vec<&Node> = nodes
            .iter()
            .filter(|node| {
                node.labels()
                    .get(&self.keys.jurisdiction)
                    .map(String::as_str)
                    == Some("CN")
            })
            .collect();
        let statefulsets: Api<StatefulSet> = Api::namespaced(self.client.clone(), &namespace);
        let databases = (0..n).filter(|i| covering(*i)).count();
        let ready = count_until(statefulsets, n + databases, all_ready);
        let (_, cpu_before) = self.apiserver_counters().await?;
        let admission_before = self.admission_seconds().await?;
        let started = Instant::now();
        let params = PatchParams::apply("domicile-bench-raw").force();
        let class = resources::local_storage_class(&self.cn, &self.keys);
        let class_name = class.name_any();
        apply(&Api::all(self.client.clone()), &class, &params).await?;
        // Placement is planned as the operator does it: least-loaded eligible nodes first.
        let mut load = BTreeMap::new();
        let mut plans = Vec::new();
        let modes = [resources::DATA_ACCESS_MODE.to_owned()];
        for i in 0..n {
            let rdc = self.data_centre(&namespace, i)?;
            let own = rdc
                .own()
                .ok_or_else(|| anyhow::anyhow!("the bench's data centres run a workload"))?;
            let plan =
                resources::local_volumes(own, &class_name, &eligible, &[], &load, ROOT, &modes);
            for pv in &plan.volumes {
                if let Some(host) = resources::pinned_hostname(pv) {
                    *load.entry(host).or_insert(0) += 1;
                }
            }
            plans.push((i, rdc, plan.volumes));
        }
        let volumes: Api<PersistentVolume> = Api::all(self.client.clone());
        let client = &self.client;
        let namespace = namespace.as_str();
        let applies = plans.iter().map(|(index, rdc, plan)| {
            let (params, class_name, volumes, modes) = (&params, &class_name, &volumes, &modes);
            async move {
                let own = rdc
                    .own()
                    .ok_or_else(|| anyhow::anyhow!("the bench's data centres run a workload"))?;
                for pv in plan {
                    apply(volumes, pv, params).await?;
                }
                apply(
                    &Api::namespaced(client.clone(), namespace),
                    &resources::service(rdc, own.workload.port),
                    params,
                )
                .await?;
                if let Some(policy) = resources::network_policy(rdc, &DnsPeer::default()) {
                    apply(&Api::namespaced(client.clone(), namespace), &policy, params).await?;
                }
                let sts = resources::statefulset(own, &self.cn, &self.keys, class_name, modes);
                apply(&Api::namespaced(client.clone(), namespace), &sts, params).await?;
                self.apply_foreign(namespace, *index).await
            }
        });
        eight_at_a_time(applies).await?;
        ready.await??;
        let seconds = started.elapsed().as_secs_f64();
        let (_, cpu_after) = self.apiserver_counters().await?;
        let admission = self.admission_seconds().await? - admission_before;
        Ok(Converge {
            namespace: namespace.to_owned(),
            seconds,
            apiserver_cpu: cpu_after - cpu_before,
            admission,
            requests: 0.0,
            writes: BTreeMap::new(),
        })
    }

    /// Deletes a run's namespace and volumes and waits until both are gone, pods included.
    async fn clean(&self, namespace: &str) -> Result<()> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let mut attempts = 0;
        loop {
            match namespaces.delete(namespace, &DeleteParams::default()).await {
                Ok(_) => break,
                Err(kube::Error::Api(status)) if status.code == 404 => break,
                // A connection the API server closed under load is tried again, not fatal.
                Err(err) if !matches!(err, kube::Error::Api(_)) && attempts < 5 => {
                    attempts += 1;
                    eprintln!("deleting {namespace}: {err}; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
        let started = Instant::now();
        let volumes: Api<PersistentVolume> = Api::all(self.client.clone());
        // The data centres' volumes and the databases'.
        let of_run = [
            ListParams::default().labels(&format!("{RDC_NAMESPACE_LABEL}={namespace}")),
            ListParams::default().labels(&format!("{RUN_LABEL}={namespace}")),
        ];
        loop {
            // The operator (or nobody, after a raw run) leaves the volumes: data is never
            // deleted unless asked; the benchmark asks.
            let round = async {
                let mut left = 0;
                for selector in &of_run {
                    let found = volumes.list_metadata(selector).await?.items.len();
                    if found > 0 {
                        volumes
                            .delete_collection(&DeleteParams::default(), selector)
                            .await?;
                    }
                    left += found;
                }
                Ok::<bool, kube::Error>(namespaces.get_opt(namespace).await?.is_none() && left == 0)
            };
            match round.await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                // A connection the API server closed under load is tried again, not fatal.
                Err(kube::Error::Api(status)) => return Err(kube::Error::Api(status).into()),
                Err(err) => eprintln!("cleaning {namespace}: {err}; trying again"),
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("namespace {namespace} and its volumes were not gone within 600 s");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn placement(&self, namespace: &str) -> Result<Placement> {
        let volumes: Api<PersistentVolume> = Api::all(self.client.clone());
        let of_run = ListParams::default().labels(&format!("{RDC_NAMESPACE_LABEL}={namespace}"));
        let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
        for pv in volumes.list(&of_run).await? {
            if let Some(host) = resources::pinned_hostname(&pv) {
                *per_node.entry(host).or_insert(0) += 1;
            }
        }
        let eligible = Api::<Node>::all(self.client.clone())
            .list_metadata(&ListParams::default().labels(&format!("{}=CN", self.keys.jurisdiction)))
            .await?
            .items
            .len();
        let total: usize = per_node.values().sum();
        Ok(Placement {
            eligible,
            used: per_node.len(),
            max: per_node.values().copied().max().unwrap_or(0),
            mean: total as f64 / eligible.max(1) as f64,
        })
    }

    /// After the largest run has settled: one window of the operator at rest.
    async fn at_rest(&self, operator: &Operator) -> Result<Window> {
        tokio::time::sleep(Duration::from_secs(30)).await;
        self.window(operator, REST_WINDOW).await
    }

    /// Starts the operator again with data centres present: time to `/readyz`, and its first
    /// minute from the moment the process starts (the first reconciles included).
    async fn restart(&self) -> Result<(Operator, Duration, Window)> {
        let (requests_before, apiserver_before) = self.apiserver_counters().await?;
        let started = Instant::now();
        let (operator, ready) = Operator::start_timed().await?;
        tokio::time::sleep(REST_WINDOW.saturating_sub(started.elapsed())).await;
        let (requests_after, apiserver_after) = self.apiserver_counters().await?;
        let minute = Window {
            seconds: started.elapsed().as_secs_f64(),
            requests: KINDS
                .iter()
                .map(|k| (*k, requests_after[k] - requests_before[k]))
                .collect(),
            // A new process: its counters start at zero.
            reconciles: operator.counter("domicile_reconciliations_total").await?,
            writes: operator.counter("domicile_kubernetes_writes_total").await?,
            operator_cpu: operator.cpu_seconds()?,
            apiserver_cpu: apiserver_after - apiserver_before,
        };
        Ok((operator, ready, minute))
    }

    async fn window(&self, operator: &Operator, length: Duration) -> Result<Window> {
        let (requests_before, apiserver_before) = self.apiserver_counters().await?;
        let reconciles_before = operator.counter("domicile_reconciliations_total").await?;
        let writes_before = operator.counter("domicile_kubernetes_writes_total").await?;
        let cpu_before = operator.cpu_seconds()?;
        let started = Instant::now();
        tokio::time::sleep(length).await;
        let (requests_after, apiserver_after) = self.apiserver_counters().await?;
        Ok(Window {
            seconds: started.elapsed().as_secs_f64(),
            requests: KINDS
                .iter()
                .map(|k| (*k, requests_after[k] - requests_before[k]))
                .collect(),
            reconciles: operator.counter("domicile_reconciliations_total").await?
                - reconciles_before,
            writes: operator.counter("domicile_kubernetes_writes_total").await? - writes_before,
            operator_cpu: operator.cpu_seconds()? - cpu_before,
            apiserver_cpu: apiserver_after - apiserver_before,
        })
    }

    /// Relabels nodes that host data CN -> US and back, and times each affected verdict.
    async fn drift(&self, namespace: &str, relabels: usize) -> Result<Vec<Relabel>> {
        let rdcs: Api<RegionalDataCenter> = Api::namespaced(self.client.clone(), namespace);
        let (verdicts, mut changes) = futures::channel::mpsc::unbounded();
        let watch = tokio::spawn(async move {
            let stream = watcher(rdcs, watcher::Config::default())
                .default_backoff()
                .applied_objects();
            futures::pin_mut!(stream);
            while let Some(Ok(rdc)) = stream.next().await {
                let verdict = rdc
                    .status
                    .as_ref()
                    .and_then(|s| s.residency)
                    .map(|r| format!("{r:?}"))
                    .unwrap_or_default();
                if verdicts
                    .unbounded_send((rdc.name_any(), verdict, Instant::now()))
                    .is_err()
                {
                    break;
                }
            }
        });
        let mut current: HashMap<String, String> = HashMap::new();
        // The first listing: every data centre's verdict now.
        let listed = Instant::now();
        while current.len() < self.count(namespace).await? {
            match tokio::time::timeout(Duration::from_secs(30), changes.next()).await {
                Ok(Some((name, verdict, _))) => {
                    current.insert(name, verdict);
                }
                _ => bail!(
                    "the RegionalDataCenter watch listed {} after {:?}",
                    current.len(),
                    listed.elapsed()
                ),
            }
        }
        let hosts = self.hosts(namespace).await?;
        let mut order: Vec<&String> = hosts.keys().collect();
        order.sort_by_key(|node| std::cmp::Reverse(hosts[*node].len()));
        if order.is_empty() && relabels > 0 {
            bail!("no node hosts a pod or volume of {namespace}; nothing to relabel");
        }
        let nodes = Api::<Node>::all(self.client.clone());
        let mut results = Vec::new();
        for i in 0..relabels {
            let node = order[(i / 2) % order.len()].clone();
            let (to, verdict) = if i % 2 == 0 {
                ("US", "Violated")
            } else {
                ("CN", "Compliant")
            };
            let affected = &hosts[&node];
            // Every other pair of relabels comes right after a label change on another node
            // that no jurisdiction depends on, which makes every data centre reconcile: the
            // verdicts that matter must not wait behind them.
            let under_load = (i / 2) % 2 == 1;
            if under_load {
                let churn =
                    json!({"metadata": {"labels": {"bench.domicile.dev/churn": i.to_string()}}});
                nodes
                    .patch("us-bench-1", &PatchParams::default(), &Patch::Merge(&churn))
                    .await?;
            }
            let patch = json!({"metadata": {"labels": {self.keys.jurisdiction.clone(): to}}});
            let sent = Instant::now();
            nodes
                .patch(&node, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            let mut seen: BTreeMap<String, Duration> = BTreeMap::new();
            let mut spurious = BTreeSet::new();
            while seen.len() < affected.len() && sent.elapsed() < VERDICT_TIMEOUT {
                let left = VERDICT_TIMEOUT.saturating_sub(sent.elapsed());
                let Ok(Some((name, now, at))) = tokio::time::timeout(left, changes.next()).await
                else {
                    break;
                };
                let was = current.insert(name.clone(), now.clone());
                if affected.contains(&name) {
                    if now == verdict {
                        seen.entry(name).or_insert(at.duration_since(sent));
                    }
                } else if was.as_deref() != Some(now.as_str()) {
                    spurious.insert(name);
                }
            }
            let late = affected
                .iter()
                .filter(|name| seen.get(*name).is_none_or(|t| *t > STALE_AFTER))
                .map(|name| (name.clone(), seen.get(name).copied()))
                .collect();
            let relabel = Relabel {
                node,
                to,
                under_load,
                affected: affected.len(),
                first: seen.values().min().copied(),
                last: (seen.len() == affected.len())
                    .then(|| seen.values().max().copied())
                    .flatten(),
                late,
                spurious: spurious.into_iter().collect(),
            };
            println!(
                "relabel {} -> {}: {} affected, first {:?}, last {:?}, late {:?}",
                relabel.node,
                relabel.to,
                relabel.affected,
                relabel.first,
                relabel.last,
                relabel.late
            );
            results.push(relabel);
        }
        watch.abort();
        Ok(results)
    }

    async fn count(&self, namespace: &str) -> Result<usize> {
        let api: Api<RegionalDataCenter> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.list_metadata(&ListParams::default()).await?.items.len())
    }

    /// For each node, the data centres with a pod or a volume on it.
    async fn hosts(&self, namespace: &str) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let mut hosts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        for pod in pods.list(&ListParams::default().labels(RDC_LABEL)).await? {
            if let (Some(node), Some(rdc)) = (
                pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                pod.labels().get(RDC_LABEL),
            ) {
                hosts.entry(node).or_default().insert(rdc.clone());
            }
        }
        // The databases the data centres cover, and their volumes.
        for pod in pods
            .list(&ListParams::default().labels(FOREIGN_LABEL))
            .await?
        {
            if let (Some(node), Some(rdc)) = (
                pod.spec.as_ref().and_then(|s| s.node_name.clone()),
                pod.labels()
                    .get(FOREIGN_LABEL)
                    .and_then(|db| db.strip_suffix("-db")),
            ) {
                hosts.entry(node).or_default().insert(rdc.to_owned());
            }
        }
        let volumes: Api<PersistentVolume> = Api::all(self.client.clone());
        for (selector, owner) in [
            (format!("{RDC_NAMESPACE_LABEL}={namespace}"), RDC_LABEL),
            (format!("{RUN_LABEL}={namespace}"), RDC_OF_VOLUME),
        ] {
            for pv in volumes
                .list(&ListParams::default().labels(&selector))
                .await?
            {
                if let (Some(node), Some(rdc)) =
                    (resources::pinned_hostname(&pv), pv.labels().get(owner))
                {
                    hosts.entry(node).or_default().insert(rdc.clone());
                }
            }
        }
        Ok(hosts)
    }
}

fn covering(index: usize) -> bool {
    index.is_multiple_of(COVERING_EVERY)
}

/// The name of data centre `index`'s database (its StatefulSet and the value of its label).
fn database(index: usize) -> String {
    format!("dc-{index:04}-db")
}

fn all_ready(sts: &StatefulSet) -> bool {
    let wanted = sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    sts.status.as_ref().and_then(|s| s.ready_replicas) == Some(wanted)
}

/// Server-side apply of an object given as JSON (a kind the benchmark has no type for),
/// cluster-scoped when `namespace` is None.
async fn apply_value(client: &Client, namespace: Option<&str>, object: &Value) -> Result<()> {
    let api_version = object["apiVersion"].as_str().context("apiVersion")?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().context("kind")?;
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let kind_lower = kind.to_lowercase();
    let plural = if kind_lower.ends_with('s') {
        format!("{kind_lower}es")
    } else {
        format!("{kind_lower}s")
    };
    let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, &plural);
    let api: Api<kube::api::DynamicObject> = match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    let name = object["metadata"]["name"]
        .as_str()
        .context("metadata.name")?;
    api.patch(
        name,
        &PatchParams::apply("domicile-bench-databases").force(),
        &Patch::Apply(object),
    )
    .await?;
    Ok(())
}

/// Runs the requests eight at a time, as a client that creates many objects would; the first
/// error ends the run.
async fn eight_at_a_time<T>(
    requests: impl Iterator<Item = impl std::future::Future<Output = Result<T>>>,
) -> Result<()> {
    futures::stream::iter(requests)
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Server-side apply of one object under the raw run's field manager.
async fn apply<K>(api: &Api<K>, object: &K, params: &PatchParams) -> Result<()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let mut value = serde_json::to_value(object)?;
    value["apiVersion"] = json!(K::api_version(&()));
    value["kind"] = json!(K::kind(&()));
    api.patch(&object.name_any(), params, &Patch::Apply(&value))
        .await?;
    Ok(())
}

/// A watch of `api` that resolves once `n` distinct objects satisfy `done`.
fn count_until<K>(
    api: Api<K>,
    n: usize,
    done: impl Fn(&K) -> bool + Send + 'static,
) -> tokio::task::JoinHandle<Result<()>>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    tokio::spawn(async move {
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        futures::pin_mut!(stream);
        let mut satisfied = BTreeSet::new();
        let deadline = tokio::time::Instant::now() + CONVERGE_TIMEOUT;
        while satisfied.len() < n {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(Ok(object))) => {
                    if done(&object) {
                        satisfied.insert(object.name_any());
                    } else {
                        satisfied.remove(&object.name_any());
                    }
                }
                Ok(Some(Err(error))) => tracing_free_log(&format!("watch error: {error}")),
                Ok(None) => bail!("the watch ended"),
                Err(_) => bail!(
                    "{} of {n} ready after {CONVERGE_TIMEOUT:?}",
                    satisfied.len()
                ),
            }
        }
        Ok(())
    })
}

fn tracing_free_log(message: &str) {
    eprintln!("bench: {message}");
}

// --- The report --------------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    memory_empty: (f64, f64),
    memory_full: (f64, f64),
    memory_deleted: (f64, f64),
    converges: Vec<(usize, Converge, Converge)>,
    largest: usize,
    placement: Placement,
    rest: Window,
    drift: Vec<Relabel>,
    restart_ready: Duration,
    restart_minute: Window,
    restart_writes: BTreeMap<String, f64>,
    audits: Vec<AuditRun>,
}

fn percentile(mut values: Vec<Duration>, p: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("never".to_owned(), |d| format!("{} ms", d.as_millis()))
}

fn per_minute(count: f64, window: &Window) -> f64 {
    count * 60.0 / window.seconds.max(1.0)
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kib: f64 = m.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib / 1024.0 / 1024.0)
        })
        .unwrap_or(0.0);
    format!("{cores} cores, {memory:.0} GiB")
}

impl Report {
    fn render(&self) -> Result<String> {
        let mut s = String::new();
        let date = jiff::Zoned::now().strftime("%Y-%m-%d %H:%M %Z");
        let versions = std::env::var("DOMICILE_BENCH_VERSIONS").unwrap_or_default();
        let commit = std::env::var("DOMICILE_BENCH_COMMIT").unwrap_or_default();
        writeln!(s, "# Benchmarks\n")?;
        writeln!(
            s,
            "Written by `make bench` (hack/bench.sh, benches/scale.rs) at commit {commit} on {date}: \
             {}, {versions}; \
             operator release build, out-of-cluster, leader election on, the chart's RBAC, \
             policy reports written, the chart's admission policies on Deny, namespaces labelled \
             by the operator (so the namespace policies judge every pod and claim of its runs; \
             the raw baseline's namespaces have no jurisdiction). \
             Cluster: 33 CN nodes and 1 US node played by kwok, 110 pods each. Every data centre: \
             Local mode, 3 replicas, jurisdiction CN; one in {COVERING_EVERY} also covers, through \
             `spec.members`, a database another operator runs (a StatefulSet of one instance \
             labelled `{FOREIGN_LABEL}`, its claim on a local volume of a class declared CN) and \
             a VolumeSnapshot of its claim on a snapshot class declared CN; the raw baseline \
             applies the same databases and snapshots.\n",
            machine()
        )?;
        writeln!(s, "## Converge\n")?;
        writeln!(
            s,
            "From the first create to every data centre `Ready`, against applying the same children \
             (the operator's builders, the same placement) with a plain client while the operator \
             is stopped, to every StatefulSet ready. Alternated: raw, then operator, per size. \
             The admission policies' time is the API server's own measure of its \
             ValidatingAdmissionPolicy plugin (wall time, summed over requests): the raw run's \
             namespaces have no jurisdiction, so the namespace policies let its objects through \
             at their first match condition.\n"
        )?;
        writeln!(
            s,
            "| N | raw apply | operator | ratio | API server CPU raw / operator | ratio | admission policies' time, raw / operator | operator requests |"
        )?;
        writeln!(s, "| --- | --- | --- | --- | --- | --- | --- | --- |")?;
        for (n, raw, op) in &self.converges {
            writeln!(
                s,
                "| {n} | {:.1} s | {:.1} s | {:.2} | {:.1} s / {:.1} s | {:.2} | {:.1} s / {:.1} s | {:.0} ({:.1} per data centre) |",
                raw.seconds,
                op.seconds,
                op.seconds / raw.seconds,
                raw.apiserver_cpu,
                op.apiserver_cpu,
                op.apiserver_cpu / raw.apiserver_cpu.max(0.001),
                raw.admission,
                op.admission,
                op.requests,
                op.requests / *n as f64
            )?;
        }
        if let Some((n, _, op)) = self.converges.last() {
            writeln!(
                s,
                "\nThe operator's writes by its own count (a fresh process per run), N = {n}:\n"
            )?;
            writeln!(s, "| write | count | per data centre |")?;
            writeln!(s, "| --- | --- | --- |")?;
            for (labels, count) in &op.writes {
                writeln!(s, "| {labels} | {count:.0} | {:.2} |", count / *n as f64)?;
            }
        }
        let rest = &self.rest;
        writeln!(s, "\n## At rest, N = {}\n", self.largest)?;
        writeln!(
            s,
            "A {:.0} s window 30 s after the converge. Requests are the API server's own count \
             (`apiserver_flowcontrol_dispatched_requests_total` of FlowSchemas matching the \
             operator's ServiceAccount), per minute.\n",
            rest.seconds
        )?;
        writeln!(s, "| figure | per minute |")?;
        writeln!(s, "| --- | --- |")?;
        let mut rows: Vec<(&str, String)> = KINDS
            .iter()
            .map(|kind| {
                let what = match *kind {
                    "watch" => "watch requests (re-established watches)",
                    "lease" => "leader lease requests (the election itself)",
                    "read" => "reads (get, list)",
                    _ => "writes (create, update, patch, delete)",
                };
                (
                    what,
                    format!("{:.1}", per_minute(rest.requests[kind], rest)),
                )
            })
            .collect();
        rows.extend([
            (
                "reconciles",
                format!("{:.1}", per_minute(rest.reconciles, rest)),
            ),
            (
                "writes counted by the operator",
                format!("{:.1}", per_minute(rest.writes, rest)),
            ),
            (
                "operator CPU",
                format!("{:.2} s", per_minute(rest.operator_cpu, rest)),
            ),
            (
                "API server CPU",
                format!("{:.2} s", per_minute(rest.apiserver_cpu, rest)),
            ),
        ]);
        for (what, value) in rows {
            writeln!(s, "| {what} | {value} |")?;
        }

        writeln!(s, "\n## `domicile audit`\n")?;
        writeln!(
            s,
            "Every data centre of the cluster audited read-only (`domicile audit -o json`, release \
             build) right after the operator's converge, with the operator's credentials while it \
             rests: requests are those the API server counted for that account meanwhile, leader \
             lease renewals apart.\n"
        )?;
        writeln!(s, "| N | data centres audited | time | requests |")?;
        writeln!(s, "| --- | --- | --- | --- |")?;
        for audit in &self.audits {
            writeln!(
                s,
                "| {} | {} | {:.2} s | {:.0} |",
                audit.n, audit.data_centres, audit.seconds, audit.requests
            )?;
        }

        writeln!(s, "\n## Memory of the operator\n")?;
        writeln!(s, "| when | VmRSS | VmHWM |")?;
        writeln!(s, "| --- | --- | --- |")?;
        for (when, (rss, hwm)) in [
            ("started, no data centre".to_owned(), self.memory_empty),
            (
                format!("N = {}, after converge, rest and drift", self.largest),
                self.memory_full,
            ),
            (
                "restarted, after every data centre was deleted".to_owned(),
                self.memory_deleted,
            ),
        ] {
            writeln!(s, "| {when} | {rss:.1} MiB | {hwm:.1} MiB |")?;
        }

        writeln!(s, "\n## Drift, N = {}\n", self.largest)?;
        writeln!(
            s,
            "A node hosting data relabelled CN -> US (affected data centres must turn Violated), \
             then back (Compliant); from the label patch sent to the verdict seen by a watch. \
             Affected: every data centre with a pod or a volume on the node. Under load: right \
             after a label change on another node that makes every data centre reconcile. Late: \
             without the new verdict {} s after the relabel.\n",
            STALE_AFTER.as_secs()
        )?;
        writeln!(
            s,
            "| relabel | under load | affected | first | last | late | other verdicts changed |"
        )?;
        writeln!(s, "| --- | --- | --- | --- | --- | --- | --- |")?;
        for r in &self.drift {
            let late = if r.late.is_empty() {
                "none".to_owned()
            } else {
                r.late
                    .iter()
                    .map(|(name, at)| format!("{name} ({})", ms(*at)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            writeln!(
                s,
                "| {} -> {} | {} | {} | {} | {} | {late} | {} |",
                r.node,
                r.to,
                if r.under_load { "yes" } else { "no" },
                r.affected,
                ms(r.first),
                ms(r.last),
                r.spurious.len()
            )?;
        }
        let firsts: Vec<Duration> = self.drift.iter().filter_map(|r| r.first).collect();
        let lasts: Vec<Duration> = self.drift.iter().filter_map(|r| r.last).collect();
        let never = self.drift.iter().filter(|r| r.last.is_none()).count();
        writeln!(
            s,
            "\nFirst affected: p50 {}, p99 {}. Last affected: p50 {}, p99 {}; relabels with a data \
             centre never updated within {} s: {never}. Late data centres in all: {}.",
            ms(percentile(firsts.clone(), 50.0)),
            ms(percentile(firsts, 99.0)),
            ms(percentile(lasts.clone(), 50.0)),
            ms(percentile(lasts, 99.0)),
            VERDICT_TIMEOUT.as_secs(),
            self.drift.iter().map(|r| r.late.len()).sum::<usize>()
        )?;

        let minute = &self.restart_minute;
        writeln!(s, "\n## Restart, N = {}\n", self.largest)?;
        writeln!(
            s,
            "SIGTERM once the operator had written nothing for {} s, then a new process: `/readyz` \
             {} ms after it started. In its first {:.0} s: \
             {:.0} writes and {:.0} reads by the API server's count, {:.0} writes counted by the \
             operator, {:.0} lease requests, {:.0} reconciles.",
            QUIET_BEFORE_RESTART.as_secs(),
            self.restart_ready.as_millis(),
            minute.seconds,
            minute.requests["write"],
            minute.requests["read"],
            minute.writes,
            minute.requests["lease"],
            minute.reconciles
        )?;
        for (labels, count) in &self.restart_writes {
            writeln!(s, "- write {labels}: {count:.0}")?;
        }

        let p = &self.placement;
        writeln!(s, "\n## Placement, N = {}\n", self.largest)?;
        writeln!(
            s,
            "{} local volumes over {} eligible nodes: {} nodes used, at most {} on one node \
             (mean {:.1}, max / mean {:.2}).",
            (p.mean * p.eligible as f64).round(),
            p.eligible,
            p.used,
            p.max,
            p.mean,
            p.max as f64 / p.mean.max(0.001)
        )?;
        Ok(s)
    }
}
