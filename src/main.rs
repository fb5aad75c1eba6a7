//! The `ecrd` command line: `ecrd serve [flags]`, `ecrd health` (a
//! container's HEALTHCHECK), and `ecrd export` / `ecrd import` for state
//! snapshots of a data directory (`ecrd::snapshot`), and `ecrd fixture`,
//! which fills a data directory for scale benchmarks (`ecrd::fixture`).

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use ecrd::config::{LogFormat, ServeConfig};
use ecrd::Server;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// mimalloc instead of glibc's malloc: a control-plane request makes about
/// 170 small allocations (headers, the SigV4 canonical request, JSON), and
/// glibc's `malloc`/`free` took a tenth of the server's CPU under load;
/// with mimalloc a DescribeRepositories costs about 45 instead of 53 µs of
/// CPU. Built without transparent huge pages (`no_thp`): with them its
/// first arena is backed by 2 MiB pages and idle RSS doubles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "ecrd", version, about = "Amazon ECR on your own machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the ECR API and the registry on one port.
    Serve(Box<ServeConfig>),
    /// Exit 0 when a running ecrd answers its health endpoint with 200,
    /// 1 otherwise (for a container HEALTHCHECK: needs no shell or curl).
    Health(HealthArgs),
    /// Write a snapshot of a data directory's whole state to a tar file
    /// (the server must not be running on it).
    Export {
        /// The data directory to read.
        #[arg(long, env = "ECRD_DATA_DIR")]
        data_dir: PathBuf,
        /// The snapshot file to write (`-` for standard output).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Replace a data directory's whole state with a snapshot, once the
    /// snapshot is verified (the server must not be running on it).
    Import {
        /// The snapshot file (`-` for standard input).
        snapshot: PathBuf,
        /// The data directory to write (made when missing).
        #[arg(long, env = "ECRD_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Fill a data directory with a scale fixture: `--images` images in
    /// repository `scale/images` and `--repositories` repositories in all,
    /// pushed through the domain (for benchmarks; the server must not be
    /// running on it).
    Fixture {
        /// The data directory to fill (made when missing).
        #[arg(long, env = "ECRD_DATA_DIR")]
        data_dir: PathBuf,
        /// Images in `scale/images`.
        #[arg(long, default_value_t = 100_000)]
        images: usize,
        /// Repositories in the registry, `scale/images` included.
        #[arg(long, default_value_t = 10_000)]
        repositories: usize,
        /// Images per metadata transaction.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// The registry's account.
        #[arg(long, default_value = "000000000000")]
        account: String,
        /// The registry's region.
        #[arg(long, default_value = "us-east-1")]
        region: String,
    },
}

#[derive(clap::Args)]
struct HealthArgs {
    /// The health endpoint to ask (plain HTTP; a `--tls` port answers it
    /// too). Default: `http://127.0.0.1:<ECRD_PORT or 4566>/_ecrd/health`.
    #[arg(long, env = "ECRD_HEALTH_URL")]
    url: Option<String>,

    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

fn health(args: HealthArgs) -> std::process::ExitCode {
    let url = args.url.unwrap_or_else(|| {
        let port = std::env::var("ECRD_PORT").unwrap_or_else(|_| "4566".to_string());
        format!("http://127.0.0.1:{port}/_ecrd/health")
    });
    match ecrd::health_check::check(&url, std::time::Duration::from_secs(args.timeout.max(1))) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ecrd health: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A data directory's metadata and blob stores.
type DataDirStores = (
    Arc<dyn ecrd::store::MetadataStore>,
    Arc<dyn ecrd::store::blobs::BlobStore>,
);

/// Opens a data directory's stores, for export and import (the server must
/// not be running on it).
fn open_data_dir(path: &std::path::Path) -> Result<DataDirStores, String> {
    use ecrd::store::disk::{DataDir, DiskStore};
    use ecrd::store::disk_blobs::DiskBlobStore;
    let dir = DataDir::open(path).map_err(|e| e.0)?;
    let store = DiskStore::open(dir.clone()).map_err(|e| e.0)?;
    let blobs = DiskBlobStore::open(dir).map_err(|e| e.0)?;
    Ok((Arc::new(store), Arc::new(blobs)))
}

fn snapshot_command(command: Command) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let handle = runtime.handle().clone();
    runtime.block_on(async move {
        tokio::task::spawn_blocking(move || match command {
            Command::Export { data_dir, output } => {
                let (store, blobs) = open_data_dir(&data_dir)?;
                let out: Box<dyn std::io::Write> = if output.as_os_str() == "-" {
                    Box::new(std::io::stdout().lock())
                } else {
                    Box::new(
                        std::fs::File::create(&output)
                            .map_err(|e| format!("{}: {e}", output.display()))?,
                    )
                };
                let out = std::io::BufWriter::new(out);
                ecrd::snapshot::export(&handle, &*store, &blobs, out)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Command::Import { snapshot, data_dir } => {
                let input: Box<dyn std::io::Read> = if snapshot.as_os_str() == "-" {
                    Box::new(std::io::stdin().lock())
                } else {
                    Box::new(
                        std::fs::File::open(&snapshot)
                            .map_err(|e| format!("{}: {e}", snapshot.display()))?,
                    )
                };
                let (store, blobs) = open_data_dir(&data_dir)?;
                ecrd::snapshot::import(&handle, &*store, &blobs, std::io::BufReader::new(input))
                    .map(|_| ())
                    .map_err(|e| format!("{}: {e}; nothing was changed", snapshot.display()))
            }
            Command::Fixture {
                data_dir,
                images,
                repositories,
                batch,
                account,
                region,
            } => {
                let (store, blobs) = open_data_dir(&data_dir)?;
                let spec = ecrd::fixture::FixtureSpec {
                    images,
                    repositories,
                    batch,
                };
                fixture(&handle, store, blobs, &account, &region, &spec)
            }
            Command::Serve(_) | Command::Health(_) => Ok(()),
        })
        .await
        .map_err(|e| e.to_string())?
    })
}

/// `ecrd fixture`: fills the stores, printing progress to standard error
/// and a JSON report to standard output.
fn fixture(
    handle: &tokio::runtime::Handle,
    store: Arc<dyn ecrd::store::MetadataStore>,
    blobs: Arc<dyn ecrd::store::blobs::BlobStore>,
    account: &str,
    region: &str,
    spec: &ecrd::fixture::FixtureSpec,
) -> Result<(), String> {
    use ecrd::ecr::names::{AccountId, Region, Scope};
    let scope = Scope::new(AccountId::parse(account)?, Region::parse(region)?);
    let clock = Arc::new(ecrd::ecr::clock::Clock::default());
    let ecr = ecrd::ecr::Ecr::new(store, blobs, clock, "localhost".to_string());
    let total = spec.images;
    let report = handle
        .block_on(ecrd::fixture::fill(&ecr, &scope, spec, |n| {
            eprint!("\rpushed {n}/{total} images");
        }))
        .map_err(|e| e.message)?;
    eprintln!();
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Request logs go through a background writer thread that writes them in
/// batches (`ecrd::log_writer`), so a slow terminal or pipe never holds up
/// a request. The returned guard flushes on drop.
fn init_logging(format: LogFormat) -> Option<ecrd::log_writer::LogWriterGuard> {
    let (writer, guard) = match ecrd::log_writer::spawn(std::io::stdout()) {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("ecrd: cannot start the log writer ({e}); logging nothing");
            return None;
        }
    };
    // A bare level (the usual `ECRD_LOG=warn`, or nothing: `info`) is a
    // level filter, which has nothing to do per span; only a value with
    // per-module directives needs an `EnvFilter`, which tracks every span.
    let setting = std::env::var("ECRD_LOG").ok();
    let bare_level = match setting.as_deref().map(str::trim) {
        None | Some("") => Some(LevelFilter::INFO),
        Some(value) => value.parse::<LevelFilter>().ok(),
    };
    match bare_level {
        Some(level) => install_logging(level, format, writer),
        None => install_logging(
            EnvFilter::try_from_env("ECRD_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
            format,
            writer,
        ),
    }
    Some(guard)
}

/// Installs the global subscriber: `filter`, then the line format.
fn install_logging<F>(filter: F, format: LogFormat, writer: ecrd::log_writer::LogWriter)
where
    F: Layer<Registry> + Send + Sync + 'static,
{
    let lines = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(writer);
    let registry = tracing_subscriber::registry().with(filter);
    // Colour codes only for a person at a terminal, never into a file, a
    // pipe or a container's log.
    use ecrd::log_format::{JsonLine, PlainFields, PlainLine};
    use std::io::IsTerminal as _;
    match format {
        LogFormat::Json => registry
            .with(
                lines
                    .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                    .event_format(JsonLine),
            )
            .init(),
        LogFormat::Text => {
            // NO_COLOR (no-color.org) is honoured as the default format does.
            let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            let line = if std::io::stdout().is_terminal() && !no_colour {
                PlainLine::coloured()
            } else {
                PlainLine::default()
            };
            registry
                .with(lines.fmt_fields(PlainFields).event_format(line))
                .init()
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match cli.command {
        Command::Serve(config) => *config,
        Command::Health(args) => return health(args),
        other => {
            return match snapshot_command(other) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ecrd: {e}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    };
    let _log_guard = init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ecrd: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let server = match Server::bind(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ecrd: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        match server.local_addr() {
            Ok(addr) => tracing::info!(%addr, backend = server.state().ecr.store.backend(), blobs = server.state().ecr.blobs.backend(), tls = server.serves_tls(), "ecrd listening"),
            Err(e) => tracing::warn!(error = %e, "listening on an unknown address"),
        }
        if let Some(ca) = server.tls_ca_path() {
            tracing::info!(
                ca = %ca.display(),
                "TLS: trust this CA (AWS_CA_BUNDLE, aws --ca-bundle, /etc/docker/certs.d/<host:port>/ca.crt, or the system store)"
            );
        }
        if let Err(e) = server.run(shutdown_signal()).await {
            eprintln!("ecrd: {e}");
            return std::process::ExitCode::FAILURE;
        }
        std::process::ExitCode::SUCCESS
    })
}
