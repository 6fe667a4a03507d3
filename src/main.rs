//! The `domicile` command line.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use domicile::controller::{self, Settings};
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
    Run(RunArgs),
    /// Print the RegionalDataCenter CustomResourceDefinition as YAML (kubectl apply -f -).
    Crd,
}

#[derive(Args)]
struct RunArgs {
    /// Node label whose value is a node's ISO 3166-1 alpha-2 country.
    #[arg(long, env = "DOMICILE_JURISDICTION_LABEL_KEY", default_value_t = NodeLabelKeys::default().jurisdiction)]
    jurisdiction_label_key: String,
    /// Node label whose value is a node's ISO 3166-2 subdivision, e.g. CN-SH.
    #[arg(long, env = "DOMICILE_SUBDIVISION_LABEL_KEY", default_value_t = NodeLabelKeys::default().subdivision)]
    subdivision_label_key: String,
    /// Provisioner of the StorageClasses domicile manages for Dynamic mode.
    #[arg(
        long,
        env = "DOMICILE_STORAGE_PROVISIONER",
        default_value = "rancher.io/local-path"
    )]
    storage_provisioner: String,
    /// Log format.
    #[arg(long, env = "DOMICILE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    log_format: LogFormat,
    /// How many RegionalDataCenters are reconciled at once.
    #[arg(long, env = "DOMICILE_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Address of /livez, /readyz and /metrics.
    #[arg(long, env = "DOMICILE_ADMIN_ADDRESS", default_value = "0.0.0.0:8080")]
    admin_address: SocketAddr,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crd => print_crd(),
        Command::Run(args) => run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("domicile: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_crd() -> anyhow::Result<()> {
    let yaml = domicile::api::crd_yaml()?;
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(())
}

#[tokio::main]
async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init_tracing(args.log_format);
    let settings = Settings {
        keys: NodeLabelKeys {
            jurisdiction: args.jurisdiction_label_key,
            subdivision: args.subdivision_label_key,
        },
        provisioner: args.storage_provisioner,
        concurrency: args.concurrency,
        admin_address: args.admin_address,
    };
    tracing::info!(?settings, version = env!("CARGO_PKG_VERSION"), "starting");
    let client = kube::Client::try_default().await?;
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
    let outcome = controller::run(client, settings, health).await;
    let _ = stop_admin.send(());
    match admin.await {
        Ok(Err(err)) => tracing::error!(error = %err, "admin endpoints failed"),
        Err(err) => tracing::error!(error = %err, "admin endpoints task failed"),
        Ok(Ok(())) => {}
    }
    outcome
}
