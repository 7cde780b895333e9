//! `r4-devserver`: run a local R4 machine API. Prints the base URL as its
//! first stdout line, logs one line per request to stderr, and exits on
//! SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use r4_devserver::{Fault, Options, Seed};

/// A local R4 machine API for development, demos and tests.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Seed file (TOML), or `demo` for the built-in demo world.
    #[arg(long)]
    seed: String,
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Delay before each API response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Append one JSON line per API request to this file.
    #[arg(long)]
    request_log: Option<PathBuf>,
    /// Inject a fault: NAME or NAME:N (repeatable).
    #[arg(long = "fault")]
    faults: Vec<Fault>,
    /// Serve HTTPS with a fresh local CA.
    #[arg(long)]
    tls: bool,
    /// With --tls, write the CA certificate (PEM) to this file.
    #[arg(long, requires = "tls")]
    ca_out: Option<PathBuf>,
}

fn load_seed(arg: &str) -> Result<Seed, String> {
    if arg == "demo" {
        return Ok(Seed::demo());
    }
    let text = std::fs::read_to_string(arg).map_err(|e| format!("reading {arg}: {e}"))?;
    Seed::from_toml(&text).map_err(|e| format!("{arg}: {e}"))
}

async fn run(cli: Cli) -> Result<(), String> {
    let mut opts = Options::new(load_seed(&cli.seed)?);
    opts.bind = cli.listen;
    opts.latency_ms = cli.latency_ms;
    opts.request_log = cli.request_log;
    opts.faults = cli.faults;
    opts.tls = cli.tls;
    opts.ca_out = cli.ca_out;
    opts.stderr_log = true;
    let running = r4_devserver::start(opts).await.map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", running.base_url()).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    running.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("r4-devserver: {e}");
            ExitCode::from(2)
        }
    }
}
