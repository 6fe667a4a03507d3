//! The `domicile` command line.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use domicile::controller::{self, Settings};
use domicile::leader::{self, LeaseConfig};
use domicile::resources::NodeLabelKeys;
use domicile::telemetry::{self, Health, LogFormat};

#[derive(Parser)]
#[command(
    name = "domicile",
    version,
    about = "Keeps data inside the jurisdiction it belongs to"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator, in the cluster or against the cluster of KUBECONFIG.
    Run(Box<RunArgs>),
    /// Print a CustomResourceDefinition as YAML (kubectl apply -f -): regionaldatacenters (the
    /// default) or residencyhistories.
    Crd {
        #[arg(default_value = "regionaldatacenters")]
        plural: String,
    },
    /// Audit the cluster read-only, from pods, claims, volumes and nodes (not from the status).
    /// Exit code: 0 compliant, 1 a violation or unverifiable placement exists, 2 the audit failed.
    Audit(AuditArgs),
    /// Show where the pods and volumes of a RegionalDataCenter have been, and every violation
    /// with its start and end, from its ResidencyHistory. Exit code: 0 shown, 2 not found or
    /// unreadable.
    History(HistoryArgs),
    /// What relabelling or draining nodes would do to every RegionalDataCenter, computed with the
    /// same audit from the cluster as it is, changing nothing. Exit code: 0 nothing would break,
    /// 1 a resource would become Violated or Unverifiable, or a pod could not be rescheduled,
    /// 2 the question could not be answered.
    WhatIf(WhatIfArgs),
    /// One screen on one RegionalDataCenter: placements, violations, conditions and a summary of
    /// its history. Exit code: 0 shown, 2 not found or unreadable.
    Status(StatusArgs),
}

#[derive(Args)]
struct WhatIfArgs {
    #[command(flatten)]
    labels: LabelKeyArgs,
    /// NODE=CODE: the node's jurisdiction label set to CODE; NODE=- removes it. Repeatable.
    #[arg(long, value_name = "NODE=CODE", value_parser = domicile::whatif::Change::parse_relabel)]
    relabel: Vec<domicile::whatif::Change>,
    /// NODE: the node cordoned and its pods evicted. Repeatable.
    #[arg(long, value_name = "NODE")]
    drain: Vec<String>,
    /// Look only at the RegionalDataCenters of this namespace (default: all namespaces).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
}

#[derive(Args)]
struct StatusArgs {
    /// Name of the RegionalDataCenter.
    name: String,
    /// Its namespace (default: the namespace of the current context, else default).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
}

#[derive(Args)]
struct HistoryArgs {
    /// Name of the RegionalDataCenter.
    name: String,
    /// Its namespace (default: the namespace of the current context, else default).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
}

#[derive(Args)]
struct LabelKeyArgs {
    /// Node label whose value is a node's ISO 3166-1 alpha-2 country.
    #[arg(long, env = "DOMICILE_JURISDICTION_LABEL_KEY", default_value_t = NodeLabelKeys::default().jurisdiction)]
    jurisdiction_label_key: String,
    /// Node label whose value is a node's ISO 3166-2 subdivision, e.g. CN-SH.
    #[arg(long, env = "DOMICILE_SUBDIVISION_LABEL_KEY", default_value_t = NodeLabelKeys::default().subdivision)]
    subdivision_label_key: String,
}

impl LabelKeyArgs {
    fn keys(&self) -> NodeLabelKeys {
        NodeLabelKeys {
            jurisdiction: self.jurisdiction_label_key.clone(),
            subdivision: self.subdivision_label_key.clone(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Table,
    Json,
}

#[derive(Args)]
struct AuditArgs {
    #[command(flatten)]
    labels: LabelKeyArgs,
    /// Audit only the RegionalDataCenters of this namespace (default: all namespaces).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// Audit the cluster of this kubeconfig context; repeat for a fleet (one table, with a
    /// CLUSTER column). Default: the current context alone.
    #[arg(long = "context", value_name = "CONTEXT")]
    contexts: Vec<String>,
    /// Audit the cluster of every context in the kubeconfig.
    #[arg(long, conflicts_with = "contexts")]
    all_contexts: bool,
    /// The namespace label whose value `exempt` takes a namespace out of the admission policies
    /// (the chart's admission.exemptLabel).
    #[arg(
        long,
        env = "DOMICILE_EXEMPT_LABEL",
        default_value = "domicile.dev/admission"
    )]
    exempt_label: String,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    labels: LabelKeyArgs,
    /// Provisioner of the StorageClasses domicile manages for Dynamic mode.
    #[arg(
        long,
        env = "DOMICILE_STORAGE_PROVISIONER",
        default_value = "rancher.io/local-path"
    )]
    storage_provisioner: String,
    /// Directory on the nodes under which every local volume lives, at
    /// <root>/<namespace>/<name>/<ordinal>; tenants cannot choose another.
    #[arg(long, env = "DOMICILE_LOCAL_ROOT", default_value = "/var/lib/domicile", value_parser = parse_local_root)]
    local_root: String,
    /// Namespace of the cluster DNS pods the network fence lets data pods query.
    #[arg(long, env = "DOMICILE_DNS_NAMESPACE", default_value = "kube-system")]
    dns_namespace: String,
    /// Labels of the cluster DNS pods, as key=value[,key=value].
    #[arg(long, env = "DOMICILE_DNS_POD_LABELS", default_value = "k8s-app=kube-dns", value_parser = parse_labels)]
    dns_pod_labels: std::collections::BTreeMap<String, String>,
    /// Log format.
    #[arg(long, env = "DOMICILE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    log_format: LogFormat,
    /// How many RegionalDataCenters are reconciled at once.
    #[arg(long, env = "DOMICILE_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Run only while holding a coordination.k8s.io Lease, so that of several replicas only one
    /// reconciles; a replica that loses the lease exits.
    #[arg(long, env = "DOMICILE_LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the Lease (in a pod: the pod's namespace, from POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    leader_election_namespace: String,
    /// Name of the Lease.
    #[arg(long, default_value = "domicile-leader")]
    leader_election_lease: String,
    /// This replica's identity in the Lease (in a pod: the pod's name, from POD_NAME).
    #[arg(long, env = "POD_NAME")]
    leader_election_identity: Option<String>,
    /// Address of /livez, /readyz and /metrics.
    #[arg(long, env = "DOMICILE_ADMIN_ADDRESS", default_value = "0.0.0.0:8080")]
    admin_address: SocketAddr,
    /// Label the namespace of each RegionalDataCenter domicile.dev/jurisdiction=<CODE> when it
    /// has no such label and an admin allowed it with domicile.dev/labelling=allowed (needs the
    /// right to patch namespaces).
    #[arg(long, env = "DOMICILE_LABEL_NAMESPACES")]
    label_namespaces: bool,
    /// With --label-namespaces: label every namespace of a RegionalDataCenter, allowed or not
    /// (for clusters whose tenants cannot create RegionalDataCenters in shared namespaces).
    #[arg(
        long,
        env = "DOMICILE_LABEL_ANY_NAMESPACE",
        requires = "label_namespaces"
    )]
    label_any_namespace: bool,
    /// Keep NAMESPACE/NAME, the ConfigMap the claims admission policy reads, listing the
    /// StorageClasses that declare a jurisdiction.
    #[arg(long, env = "DOMICILE_DECLARED_CLASSES", value_parser = parse_namespaced)]
    declared_classes: Option<(String, String)>,
    /// The namespace label whose value `exempt` takes a namespace out of the admission policies
    /// (the chart's admission.exemptLabel), for the AdmissionGuarded condition.
    #[arg(
        long,
        env = "DOMICILE_EXEMPT_LABEL",
        default_value = "domicile.dev/admission"
    )]
    exempt_label: String,
    /// The policy report kept in each namespace with RegionalDataCenters or a jurisdiction
    /// label: wgpolicy (wgpolicyk8s.io/v1alpha2 PolicyReport), openreports (openreports.io/v1alpha1
    /// Report) or none. Written only where the API server serves it.
    #[arg(long, env = "DOMICILE_REPORTS", value_enum, default_value = "wgpolicy")]
    reports: domicile::report::Format,
    /// The most a namespace's report holds, in bytes of its results, before the rest go to
    /// further reports (etcd refuses objects over 1.5 MiB). For tests of the split.
    #[arg(long, hide = true, default_value_t = domicile::report::REPORT_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1024..=domicile::report::REPORT_BYTES as u64))]
    report_part_bytes: u64,
}

fn parse_namespaced(value: &str) -> Result<(String, String), String> {
    match value.split_once('/') {
        Some((namespace, name))
            if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
        {
            Ok((namespace.to_owned(), name.to_owned()))
        }
        _ => {
            Err("must be NAMESPACE/NAME, e.g. domicile-system/domicile-storage-classes".to_owned())
        }
    }
}

/// An absolute, normalised directory that is not the root of the node's filesystem.
fn parse_local_root(value: &str) -> Result<String, String> {
    let root = value.trim_end_matches('/');
    if !value.starts_with('/') || root.is_empty() {
        return Err(
            "must be an absolute directory other than /, e.g. /var/lib/domicile".to_owned(),
        );
    }
    if root.split('/').any(|part| part == ".." || part == ".") {
        return Err("must not contain . or .. segments".to_owned());
    }
    Ok(root.to_owned())
}

fn parse_labels(value: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    value
        .split(',')
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(format!("{pair:?} is not key=value")),
        })
        .collect()
}

/// jemalloc gives memory back to the system once it has been free for a while (its decay, done by a
/// thread of its own), where the system allocator keeps the peak of a large listing or a mass
/// deletion for the life of the process. Its settings are in `.cargo/config.toml`. The feature
/// `jemalloc` (on by default) brings it; `make run` builds without it, as its C build is a quarter
/// of the whole build and a local cluster's few resources need no decay.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // Installed as kubectl-domicile (a copy or a link), it is the kubectl plugin
    // `kubectl domicile`, and says so in its help and errors.
    let called = std::env::args_os().next().unwrap_or_default();
    let plugin = std::path::Path::new(&called)
        .file_name()
        .is_some_and(|name| name == "kubectl-domicile");
    let mut command = Cli::command();
    if plugin {
        command = command
            .name("kubectl-domicile")
            .bin_name("kubectl domicile");
    }
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    let result = match cli.command {
        Command::Crd { plural } => print_crd(&plural),
        Command::Run(args) => run(*args),
        Command::Audit(args) => return audit(args),
        Command::History(args) => return history(args),
        Command::WhatIf(args) => return what_if(args),
        Command::Status(args) => return status(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("domicile: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_crd(plural: &str) -> anyhow::Result<()> {
    let yaml = domicile::api::crd_yaml(plural)?;
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(())
}

/// Prints `text` and exits with `code`, or says why not and exits 2.
fn answer(what: &str, answered: anyhow::Result<(String, u8)>) -> ExitCode {
    match answered {
        Ok((text, code)) => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            ExitCode::from(code)
        }
        Err(err) => {
            eprintln!("domicile {what}: {err:#}");
            ExitCode::from(domicile::audit::EXIT_ERROR)
        }
    }
}

#[tokio::main]
async fn what_if(args: WhatIfArgs) -> ExitCode {
    let answered = async {
        let mut changes = args.relabel.clone();
        changes.extend(
            args.drain
                .iter()
                .map(|node| domicile::whatif::Change::Drain { node: node.clone() }),
        );
        anyhow::ensure!(
            !changes.is_empty(),
            "nothing to ask: give --relabel NODE=CODE or --drain NODE"
        );
        let client = kube::Client::try_default().await?;
        let snapshot = domicile::audit::snapshot(&client, args.namespace.as_deref()).await?;
        let impacts = domicile::whatif::what_if(&snapshot, &changes, &args.labels.keys())
            .map_err(anyhow::Error::msg)?;
        let breaks = impacts.iter().any(|i| i.breaks);
        let text = match args.output {
            OutputFormat::Table => domicile::whatif::table(&changes, &impacts),
            OutputFormat::Json => {
                serde_json::to_string_pretty(&serde_json::json!({
                    "changes": changes,
                    "impacts": impacts,
                    "breaks": breaks,
                }))? + "\n"
            }
        };
        let code = if breaks {
            domicile::audit::EXIT_VIOLATIONS
        } else {
            domicile::audit::EXIT_COMPLIANT
        };
        Ok((text, code))
    };
    answer("what-if", answered.await)
}

#[tokio::main]
async fn status(args: StatusArgs) -> ExitCode {
    let answered = async {
        let client = kube::Client::try_default().await?;
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let rdc =
            kube::Api::<domicile::api::RegionalDataCenter>::namespaced(client.clone(), &namespace)
                .get_opt(&args.name)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no RegionalDataCenter {namespace}/{} (kubectl get rdc -n {namespace})",
                        args.name
                    )
                })?;
        let history = kube::Api::<domicile::api::ResidencyHistory>::namespaced(client, &namespace)
            .get_opt(&args.name)
            .await?
            .and_then(|h| h.status);
        Ok((
            domicile::screen::status_screen(&rdc, history.as_ref()),
            domicile::audit::EXIT_COMPLIANT,
        ))
    };
    answer("status", answered.await)
}

#[tokio::main]
async fn history(args: HistoryArgs) -> ExitCode {
    let shown = async {
        let client = kube::Client::try_default().await?;
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let api: kube::Api<domicile::api::ResidencyHistory> =
            kube::Api::namespaced(client, &namespace);
        let found = api.get_opt(&args.name).await?.ok_or_else(|| {
            anyhow::anyhow!(
                "no residency history of {namespace}/{}: is the RegionalDataCenter there, and has the \
                 operator reconciled it? (kubectl get rdc -n {namespace} {})",
                args.name,
                args.name
            )
        })?;
        let status = found.status.unwrap_or_default();
        let text = match args.output {
            OutputFormat::Table => domicile::history::table(&namespace, &args.name, &status),
            OutputFormat::Json => serde_json::to_string_pretty(&status)? + "\n",
        };
        Ok((text, domicile::audit::EXIT_COMPLIANT))
    };
    answer("history", shown.await)
}

/// How long one cluster of a fleet may take to answer before it is reported unreachable.
const CLUSTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The audit of the cluster of one kubeconfig context.
async fn audit_context(
    kubeconfig: &kube::config::Kubeconfig,
    context: &str,
    args: &AuditArgs,
    keys: &NodeLabelKeys,
) -> anyhow::Result<Vec<domicile::audit::Report>> {
    let options = kube::config::KubeConfigOptions {
        context: Some(context.to_owned()),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options).await?;
    // An unreachable cluster is reported, not waited for.
    config.connect_timeout = Some(std::time::Duration::from_secs(5));
    config.read_timeout = Some(std::time::Duration::from_secs(30));
    let client = kube::Client::try_from(config)?;
    let audited =
        domicile::audit::audit_cluster(client, keys, &args.exempt_label, args.namespace.as_deref());
    tokio::time::timeout(CLUSTER_TIMEOUT, audited)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {CLUSTER_TIMEOUT:?}"))?
}

/// `domicile audit --context ... | --all-contexts`: every cluster at once, one table.
async fn audit_fleet(args: &AuditArgs) -> anyhow::Result<(String, u8)> {
    let keys = args.labels.keys();
    let kubeconfig = kube::config::Kubeconfig::read()?;
    let contexts: Vec<String> = if args.all_contexts {
        kubeconfig.contexts.iter().map(|c| c.name.clone()).collect()
    } else {
        args.contexts.clone()
    };
    anyhow::ensure!(!contexts.is_empty(), "the kubeconfig has no context");
    let audits = futures::future::join_all(
        contexts
            .iter()
            .map(|context| audit_context(&kubeconfig, context, args, &keys)),
    )
    .await;
    let clusters: Vec<domicile::audit::ClusterAudit> = contexts
        .into_iter()
        .zip(audits)
        .map(|(cluster, audited)| match audited {
            Ok(reports) => domicile::audit::ClusterAudit {
                cluster,
                reports: Some(reports),
                error: None,
            },
            Err(err) => domicile::audit::ClusterAudit {
                cluster,
                reports: None,
                error: Some(format!("{err:#}")),
            },
        })
        .collect();
    let text = match args.output {
        OutputFormat::Table => domicile::audit::fleet_table(&clusters),
        OutputFormat::Json => serde_json::to_string_pretty(&clusters)? + "\n",
    };
    Ok((text, domicile::audit::fleet_exit_code(&clusters)))
}

#[tokio::main]
async fn audit(args: AuditArgs) -> ExitCode {
    if args.all_contexts || !args.contexts.is_empty() {
        return answer("audit", audit_fleet(&args).await);
    }
    let keys = args.labels.keys();
    let reports = match kube::Client::try_default().await {
        Ok(client) => {
            domicile::audit::audit_cluster(
                client,
                &keys,
                &args.exempt_label,
                args.namespace.as_deref(),
            )
            .await
        }
        Err(err) => Err(err.into()),
    };
    let reports = match reports {
        Ok(reports) => reports,
        Err(err) => {
            eprintln!("domicile audit: {err:#}");
            return ExitCode::from(domicile::audit::EXIT_ERROR);
        }
    };
    let text = match args.output {
        OutputFormat::Table => domicile::audit::table(&reports),
        OutputFormat::Json => match serde_json::to_string_pretty(&reports) {
            Ok(json) => json + "\n",
            Err(err) => {
                eprintln!("domicile audit: {err}");
                return ExitCode::from(domicile::audit::EXIT_ERROR);
            }
        },
    };
    if std::io::stdout().lock().write_all(text.as_bytes()).is_err() {
        return ExitCode::from(domicile::audit::EXIT_ERROR);
    }
    ExitCode::from(domicile::audit::exit_code(&reports))
}

#[tokio::main]
async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init_tracing(args.log_format);
    let settings = Settings {
        keys: args.labels.keys(),
        provisioner: args.storage_provisioner,
        local_root: args.local_root,
        dns: domicile::resources::DnsPeer {
            namespace: args.dns_namespace,
            pod_labels: args.dns_pod_labels,
        },
        concurrency: args.concurrency,
        admin_address: args.admin_address,
        label_namespaces: args.label_namespaces,
        label_any_namespace: args.label_any_namespace,
        declared_classes: args.declared_classes,
        exempt_label: args.exempt_label,
        reports: args.reports,
        report_part_bytes: usize::try_from(args.report_part_bytes)
            .unwrap_or(domicile::report::REPORT_BYTES),
    };
    tracing::info!(?settings, version = env!("CARGO_PKG_VERSION"), "starting");
    let settable = settings.keys.kubelet_settable();
    if !settable.is_empty() {
        tracing::warn!(
            keys = ?settable,
            "kubelets may set these node labels on their own Node, so a compromised node could claim \
             any jurisdiction; use keys under *.node-restriction.kubernetes.io/ (every RegionalDataCenter \
             reports LabelTrusted=False)"
        );
    }
    let mut config = kube::Config::infer().await?;
    // The client's own retry of 429/503/504 waits up to minutes inside one request, silently
    // (a restarting API server answers 503); the watches and reconciles retry on their own, with
    // short backoffs, and /readyz says while they fail.
    config.default_retry = false;
    let client = kube::Client::try_from(config)?;
    let health = Health::default();
    let listener = tokio::net::TcpListener::bind(settings.admin_address)
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "cannot listen on {} (--admin-address): {err}",
                settings.admin_address
            )
        })?;

    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::spawn(telemetry::serve_admin(listener, health.clone(), async {
        let _ = admin_stopped.await;
    }));
    let outcome = if args.leader_election {
        let identity = args
            .leader_election_identity
            .unwrap_or_else(|| format!("domicile-{}", std::process::id()));
        let lease = LeaseConfig::new(
            args.leader_election_namespace,
            args.leader_election_lease,
            identity,
        );
        run_as_leader(client, settings, health, &lease).await
    } else {
        health.metrics.leading(true);
        controller::run(client, settings, health).await
    };
    let _ = stop_admin.send(());
    match admin.await {
        Ok(Err(err)) => tracing::error!(error = %err, "admin endpoints failed"),
        Err(err) => tracing::error!(error = %err, "admin endpoints task failed"),
        Ok(Ok(())) => {}
    }
    outcome
}

/// Resolves on SIGTERM or Ctrl-C.
async fn terminated() {
    let mut sigterm = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        Ok(signal) => signal,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = sigterm.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Reconciles only while holding the lease. Losing it ends the controller at once (its future is
/// dropped mid-flight, so no further write is sent) and the process exits with an error.
async fn run_as_leader(
    client: kube::Client,
    settings: Settings,
    health: Health,
    lease: &LeaseConfig,
) -> anyhow::Result<()> {
    tracing::info!(lease = %lease.name, namespace = %lease.namespace, identity = %lease.identity, "waiting for the lease");
    // A standby replica is ready: ready to take over. Once leading, it is ready when synced.
    health.ready.store(true, Ordering::Release);
    tokio::select! {
        () = leader::acquire(client.clone(), lease) => {}
        () = terminated() => return Ok(()),
    }
    // Not ready until synced, and only then: a leader seen ready has listed everything.
    health.ready.store(false, Ordering::Release);
    health.metrics.leading(true);
    let outcome = tokio::select! {
        outcome = controller::run(client.clone(), settings, health.clone()) => outcome,
        lost = leader::hold(client.clone(), lease) => Err(lost.context("lost the leadership; stopping")),
    };
    health.metrics.leading(false);
    if outcome.is_ok() {
        leader::release(client, lease).await;
    }
    outcome
}
