//! The transport: a custom accept loop (so each TCP connection has an id the
//! request log can show), optional TLS, HTTP/1.1 and HTTP/2 through
//! hyper-util's auto builder, and the API middleware that counts requests,
//! adds latency, applies request faults and writes the request log.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::clock::unix_ms;
use crate::error::ApiError;
use crate::faults::FaultKind;
use crate::state::App;

/// Id of the TCP connection a request came on (1, 2, … per server).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnId(pub u64);

/// Size of the `huge-body` answer.
const HUGE: usize = 64 << 20;
/// `trickle`: bytes per step and the pause between steps.
const TRICKLE_BYTES: usize = 4;
const TRICKLE_PAUSE: Duration = Duration::from_millis(500);

/// Accepts connections until `stop` changes, then drops every connection.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    next_id += 1;
                    conns.spawn(serve_conn(stream, peer, next_id, tls.clone(), router.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn serve_conn(
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    tls: Option<TlsAcceptor>,
    router: Router,
) {
    let _ = stream.set_nodelay(true);
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnId(id));
        req.extensions_mut().insert(peer);
        router.clone().oneshot(req)
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    match tls {
        None => {
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        }
        Some(acceptor) => {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            if let Ok(Ok(tls_stream)) = handshake.await {
                let _ = builder
                    .serve_connection(TokioIo::new(tls_stream), svc)
                    .await;
            }
        }
    }
}

/// One request's log entry, written when the response body is finished
/// (or abandoned: status 0 if no response was produced).
struct LogGuard {
    app: App,
    start: f64,
    method: String,
    path: String,
    conn: u64,
    status: u16,
    /// Response body bytes handed to the connection so far.
    bytes: u64,
    /// The request's size as HTTP/1.1 would carry it: request line,
    /// headers and body length (over HTTP/2 the headers are compressed).
    request_bytes: u64,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let end = unix_ms();
        if let Some(file) = &self.app.request_log {
            let line = serde_json::json!({
                "start": self.start, "end": end, "method": self.method,
                "path": self.path, "status": self.status, "conn": self.conn,
                "bytes": self.bytes, "requestBytes": self.request_bytes,
            });
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(f, "{line}");
            let _ = f.flush();
        }
        if self.app.stderr_log {
            eprintln!(
                "{} {} -> {} ({:.1} ms, conn {})",
                self.method,
                self.path,
                self.status,
                end - self.start,
                self.conn
            );
        }
    }
}

/// A response body that drops its [`LogGuard`] when it ends.
struct LoggedBody {
    inner: Body,
    guard: Option<LogGuard>,
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => drop(this.guard.take()),
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(guard)) = (frame.data_ref(), this.guard.as_mut()) {
                    guard.bytes += data.len() as u64;
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware of every `/api/v1/machine` request.
pub(crate) async fn api_layer(State(app): State<App>, req: Request, next: Next) -> Response {
    app.requests.fetch_add(1, Ordering::SeqCst);
    let uri = req
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.0.clone())
        .unwrap_or_else(|| req.uri().clone());
    let mut guard = LogGuard {
        app: app.clone(),
        start: unix_ms(),
        method: req.method().to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_else(|| uri.path().to_string()),
        conn: req.extensions().get::<ConnId>().map_or(0, |c| c.0),
        status: 0,
        bytes: 0,
        request_bytes: request_size(&req),
    };
    if !app.latency.is_zero() {
        tokio::time::sleep(app.latency).await;
    }
    let fault = app.take_request_fault();
    let resp = match fault {
        Some(FaultKind::Hang) => std::future::pending::<Response>().await,
        Some(FaultKind::RateLimit) => {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                "Too many requests; retry after the indicated delay.",
            );
            e.retry_after = Some(1);
            e.into_response()
        }
        Some(FaultKind::Unavailable) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service is temporarily unavailable.",
        )
        .into_response(),
        Some(FaultKind::InvalidJson) => {
            replace_body(next.run(req).await, Body::from("{\"vaults\": [{\"id\": "))
        }
        Some(FaultKind::HugeBody) => {
            let mut resp = replace_body(next.run(req).await, huge_body());
            *resp.status_mut() = StatusCode::OK;
            resp
        }
        Some(FaultKind::Trickle) => {
            let resp = next.run(req).await;
            let (parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            replace_body(Response::from_parts(parts, Body::empty()), trickle(bytes))
        }
        _ => next.run(req).await,
    };
    guard.status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    Response::from_parts(
        parts,
        Body::new(LoggedBody {
            inner: body,
            guard: Some(guard),
        }),
    )
}

/// `METHOD PATH HTTP/1.1\r\n`, each `name: value\r\n`, `\r\n`, and the body
/// length the request declares.
fn request_size(req: &Request) -> u64 {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    let headers: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + 2 + v.len() + 2)
        .sum();
    let body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(0);
    (line + headers + 2 + body) as u64
}

fn replace_body(resp: Response, body: Body) -> Response {
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, body)
}

/// `{"padding":"aaaa…"}`, 64 MiB in all, streamed in 64 KiB chunks.
fn huge_body() -> Body {
    const CHUNK: usize = 64 << 10;
    let (head, tail) = (&b"{\"padding\":\""[..], &b"\"}"[..]);
    let pad = Bytes::from(vec![b'a'; CHUNK]);
    let mut left = HUGE - head.len() - tail.len();
    let mut chunks = vec![Bytes::from_static(head)];
    while left > 0 {
        let n = left.min(CHUNK);
        chunks.push(pad.slice(..n));
        left -= n;
    }
    chunks.push(Bytes::from_static(tail));
    Body::from_stream(futures_util::stream::iter(
        chunks.into_iter().map(Ok::<_, Infallible>),
    ))
}

/// `bytes`, a few at a time with pauses between.
fn trickle(bytes: Bytes) -> Body {
    let stream = futures_util::stream::unfold((bytes, 0usize), |(bytes, pos)| async move {
        if pos >= bytes.len() {
            return None;
        }
        if pos > 0 {
            tokio::time::sleep(TRICKLE_PAUSE).await;
        }
        let end = (pos + TRICKLE_BYTES).min(bytes.len());
        Some((Ok::<_, Infallible>(bytes.slice(pos..end)), (bytes, end)))
    });
    Body::from_stream(stream)
}
