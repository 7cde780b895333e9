//! The state one server shares between its connections, its admin handle and
//! its request middleware, and the one way handlers touch it: on a blocking
//! thread (RSA signing is CPU work) under one lock.

use std::fs::File;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;
use crate::faults::{Fault, FaultState, RequestFaults};
use crate::views::Cache;
use crate::world::World;

/// The world, the cache of signed objects and the active faults.
pub(crate) struct State {
    pub world: World,
    pub cache: Cache,
    pub faults: FaultState,
}

/// Everything a running server shares.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Request faults and their budgets (see [`RequestFaults`]).
    pub request_faults: Mutex<RequestFaults>,
    /// API requests received (not `/_admin`).
    pub requests: AtomicU64,
    /// Delay before each API response.
    pub latency: Duration,
    /// JSON-lines request log.
    pub request_log: Option<Mutex<File>>,
    /// One line per request on stderr.
    pub stderr_log: bool,
}

/// A handler's successful answer: status and JSON body.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json<T: Serialize>(value: &T) -> Result<Reply, ApiError> {
        Reply::with_status(StatusCode::OK, value)
    }

    pub(crate) fn with_status<T: Serialize>(
        status: StatusCode,
        value: &T,
    ) -> Result<Reply, ApiError> {
        Ok(Reply {
            status,
            body: serde_json::to_vec(value).expect("wire types serialize"),
        })
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body,
        )
            .into_response()
    }
}

pub(crate) type App = Arc<Shared>;

impl Shared {
    pub(crate) fn new(
        state: State,
        latency: Duration,
        request_log: Option<File>,
        stderr_log: bool,
    ) -> Shared {
        Shared {
            request_faults: Mutex::new(RequestFaults::default()),
            state: Mutex::new(state),
            requests: AtomicU64::new(0),
            latency,
            request_log: request_log.map(Mutex::new),
            stderr_log,
        }
    }

    /// Replaces the active faults (object and request faults alike).
    pub(crate) fn set_faults(&self, faults: Vec<Fault>) {
        let mut st = self.lock();
        let kinds: Vec<_> = faults.iter().map(|f| f.kind).collect();
        st.world.faults_changed(&kinds);
        self.request_faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set(&faults);
        st.faults.set(faults);
    }

    /// The request fault for the next request, if any (uses one unit).
    pub(crate) fn take_request_fault(&self) -> Option<crate::faults::FaultKind> {
        self.request_faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The state, even if a panicking handler poisoned the lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a blocking thread under the lock and turns its result
    /// into a response.
    pub(crate) async fn run<F>(self: &Arc<Self>, f: F) -> Response
    where
        F: FnOnce(&mut State) -> Result<Reply, ApiError> + Send + 'static,
    {
        let app = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || f(&mut app.lock())).await;
        match result {
            Ok(Ok(reply)) => reply.into_response(),
            Ok(Err(e)) => e.into_response(),
            Err(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "The devserver failed to answer this request.",
            )
            .into_response(),
        }
    }
}
