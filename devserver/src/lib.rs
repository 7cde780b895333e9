//! r4-devserver: a local implementation of the R4 machine API (the
//! R4 wire contract) for tests, demos and development, like
//! `vault server -dev`. It plays the operator: holds the operator USER signer
//! and the vault DEKs, signs checkpoints, keeps the signer transparency log,
//! and wraps a shared vault's DEK to an agent as soon as the agent registers
//! a key. Every contract rule (JCS, digests, signatures, envelopes, Merkle
//! proofs, env names) comes from `r4_contract`; nothing is reimplemented.
//!
//! Run it in-process with [`start`] (async) or [`ServerGuard`] (sync tests),
//! or as the `r4-devserver` binary. Change the world while it runs with
//! [`Admin`]; make it misbehave with [`Fault`]s.
#![warn(missing_docs)]

mod admin;
mod auth;
mod clock;
mod error;
mod faults;
mod info;
mod legacy;
mod model;
mod register;
mod routes;
mod seed;
mod serve;
mod state;
mod sync;
mod tls;
pub use tls::TlsIdentity;
mod translog;
mod trust;
mod views;
mod world;

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use admin::Admin;
pub use error::{AdminError, Error};
pub use faults::{Fault, FaultKind, FaultParseError};
/// How a seeded vault protects its values ([`VaultSeed::model`]): the
/// contract's classification, so the devserver and the client cannot drift.
pub use r4_contract::VaultModel;
pub use seed::{
    agent_id, derive_id, field_id, item_id, project_id, vault_id, AgentSeed, FieldSeed, ItemSeed,
    NamedSeed, ProjectSeed, Scope, Seed, SeedError, VaultSeed,
};

/// Path of the machine API under the server root.
pub const BASE_PATH: &str = "/api/v1/machine";

/// How to run a server.
#[derive(Debug, Clone)]
pub struct Options {
    /// The world to start with.
    pub seed: Seed,
    /// Listen address; loopback only (default `127.0.0.1:0`, a free port).
    pub bind: SocketAddr,
    /// Delay before each API response.
    pub latency_ms: u64,
    /// Append one JSON line per API request here:
    /// `{"start","end","method","path","status","conn","bytes","requestBytes"}`
    /// (times in Unix ms; `bytes`: the response body as sent; `requestBytes`:
    /// the request as HTTP/1.1 would carry it).
    pub request_log: Option<PathBuf>,
    /// Faults active from the start.
    pub faults: Vec<Fault>,
    /// Serve HTTPS with a freshly made local CA.
    pub tls: bool,
    /// With `tls`, write the CA certificate (PEM) here.
    pub ca_out: Option<PathBuf>,
    /// With `tls`, present this certificate chain instead of one from a
    /// fresh local CA (tests of the client's certificate checks).
    pub tls_identity: Option<TlsIdentity>,
    /// Print one line per API request on stderr (the binary does).
    pub stderr_log: bool,
}

impl Options {
    /// Defaults: `127.0.0.1:0`, no latency, no log, no faults, plain HTTP.
    pub fn new(seed: Seed) -> Self {
        Options {
            seed,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            latency_ms: 0,
            request_log: None,
            faults: Vec::new(),
            tls: false,
            ca_out: None,
            tls_identity: None,
            stderr_log: false,
        }
    }
}

/// A server running on the current tokio runtime.
#[derive(Debug)]
pub struct Running {
    base_url: String,
    addr: SocketAddr,
    ca_pem: Option<String>,
    admin: Admin,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// E.g. `http://127.0.0.1:43817/api/v1/machine`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The CA certificate (PEM) when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A handle onto its world.
    pub fn admin(&self) -> Admin {
        self.admin.clone()
    }

    /// Stops accepting, drops every connection and waits for the loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Binds, builds the world and spawns the server; returns once it accepts.
pub async fn start(opts: Options) -> Result<Running, Error> {
    if !opts.bind.ip().is_loopback() {
        return Err(Error::NotLoopback(opts.bind));
    }
    if opts.ca_out.is_some() && !opts.tls {
        return Err(Error::Tls("--ca-out needs --tls".into()));
    }
    let resolved = opts.seed.resolve()?;
    let request_log = match &opts.request_log {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::Io(format!("opening {}", path.display()), e))?,
        ),
        None => None,
    };
    let tls = match (opts.tls, &opts.tls_identity) {
        (false, None) => None,
        (false, Some(_)) => return Err(Error::Tls("a TLS identity needs tls".into())),
        (true, None) => Some(tls::make()?),
        (true, Some(identity)) => Some(tls::from_identity(identity)?),
    };
    if let (Some(path), Some(Some(ca_pem))) = (&opts.ca_out, tls.as_ref().map(|t| &t.ca_pem)) {
        std::fs::write(path, ca_pem)
            .map_err(|e| Error::Io(format!("writing {}", path.display()), e))?;
    }
    let faults = opts.faults.clone();
    let latency = Duration::from_millis(opts.latency_ms);
    let stderr_log = opts.stderr_log;
    let app = tokio::task::spawn_blocking(move || {
        let state = state::State {
            world: world::World::new(resolved),
            cache: views::Cache::default(),
            faults: faults::FaultState::default(),
        };
        let app = state::Shared::new(state, latency, request_log, stderr_log);
        if !faults.is_empty() {
            app.set_faults(faults);
        }
        Arc::new(app)
    })
    .await
    .map_err(|e| Error::Io("building the world".into(), std::io::Error::other(e)))?;
    let router = Router::new()
        .nest(
            BASE_PATH,
            routes::router().layer(axum::middleware::from_fn_with_state(
                app.clone(),
                serve::api_layer,
            )),
        )
        .nest("/_admin", admin::router())
        .fallback(routes::not_found)
        .with_state(app.clone());
    let listener = TcpListener::bind(opts.bind)
        .await
        .map_err(|e| Error::Io(format!("binding {}", opts.bind), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Io("reading the bound address".into(), e))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(serve::accept_loop(
        listener,
        tls.as_ref().map(|t| t.acceptor.clone()),
        router,
        stop_rx,
    ));
    Ok(Running {
        base_url: format!("{scheme}://{addr}{BASE_PATH}"),
        addr,
        ca_pem: tls.and_then(|t| t.ca_pem),
        admin: Admin::new(app),
        stop,
        task: Some(task),
    })
}

/// A server on its own thread and tokio runtime, for synchronous tests;
/// stopped and joined when dropped.
#[derive(Debug)]
pub struct ServerGuard {
    base_url: String,
    ca_pem: Option<String>,
    admin: Admin,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerGuard {
    /// Starts a server; panics if it cannot (see [`ServerGuard::try_start`]).
    pub fn start(opts: Options) -> ServerGuard {
        ServerGuard::try_start(opts).unwrap_or_else(|e| panic!("r4-devserver: {e}"))
    }

    /// Starts a server on a new thread.
    pub fn try_start(opts: Options) -> Result<ServerGuard, Error> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("r4-devserver".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Io("starting a runtime".into(), e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    match start(opts).await {
                        Ok(running) => {
                            let info = (
                                running.base_url.clone(),
                                running.ca_pem.clone(),
                                running.admin(),
                            );
                            let _ = ready_tx.send(Ok(info));
                            let _ = stop_rx.await;
                            running.shutdown().await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| Error::Io("spawning the server thread".into(), e))?;
        match ready_rx.recv() {
            Ok(Ok((base_url, ca_pem, admin))) => Ok(ServerGuard {
                base_url,
                ca_pem,
                admin,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(Error::Io(
                    "starting the server thread".into(),
                    std::io::Error::other("it ended before reporting"),
                ))
            }
        }
    }

    /// E.g. `http://127.0.0.1:43817/api/v1/machine`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The CA certificate (PEM) when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A handle onto its world.
    pub fn admin(&self) -> Admin {
        self.admin.clone()
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
