//! The `ecrd` command line: `ecrd serve [flags]`.

use clap::{Parser, Subcommand};
use ecrd::config::{LogFormat, ServeConfig};
use ecrd::Server;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "ecrd", version, about = "Amazon ECR on your own machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the ECR API and the registry on one port.
    Serve(ServeConfig),
}

/// Request logs go through a background writer thread, so a slow terminal
/// or pipe never holds up a request. The returned guard flushes on drop.
fn init_logging(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = EnvFilter::try_from_env("ECRD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    guard
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
    let Command::Serve(config) = cli.command;
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
            Ok(addr) => tracing::info!(%addr, backend = server.state().ecr.store.backend(), "ecrd listening"),
            Err(e) => tracing::warn!(error = %e, "listening on an unknown address"),
        }
        if let Err(e) = server.run(shutdown_signal()).await {
            eprintln!("ecrd: {e}");
            return std::process::ExitCode::FAILURE;
        }
        std::process::ExitCode::SUCCESS
    })
}
