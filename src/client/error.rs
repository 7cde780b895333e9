//! Errors of the client layer: what the network or the server said, typed.

use std::time::Duration;

use thiserror::Error;

/// A request failed. Never carries the API key or a response body beyond the
/// server's error code and message.
#[derive(Debug, Error, Clone)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with its error envelope (or a bare status).
    #[error("{method} {path}: {status} {code}: {message}")]
    Api {
        /// Request method.
        method: &'static str,
        /// Request path (no query secrets: paths carry only ids).
        path: String,
        /// HTTP status.
        status: u16,
        /// Error code from the envelope (`http_<status>` when there was none).
        code: String,
        /// Message from the envelope.
        message: String,
        /// `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// Connection refused, reset, DNS failure, TLS failure.
    #[error("{method} {path}: cannot reach the server: {detail}")]
    Network {
        /// Request method.
        method: &'static str,
        /// Request path.
        path: String,
        /// What failed.
        detail: String,
    },
    /// No answer within the deadline.
    #[error("{method} {path}: no complete answer within {after:?}")]
    Timeout {
        /// Request method.
        method: &'static str,
        /// Request path.
        path: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// The body is not the JSON the contract describes.
    #[error("{path}: malformed response: {detail}")]
    Decode {
        /// Request path.
        path: String,
        /// serde's description (member names, not values).
        detail: String,
    },
    /// The body exceeded the size limit.
    #[error("{path}: response larger than {limit} bytes refused")]
    TooLarge {
        /// Request path.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// The base URL is not acceptable.
    #[error("base URL {0}")]
    BadBaseUrl(String),
    /// The API key cannot be sent in a header.
    #[error("the API key has characters not allowed in an HTTP header (check R4_API_KEY or api_key_file)")]
    BadApiKey,
    /// A proxy variable holds no usable proxy URL. Names the variable, never
    /// its value: it may hold the proxy's password.
    #[error("{var} is not a usable proxy: {detail}")]
    BadProxy {
        /// The variable, e.g. `HTTPS_PROXY`.
        var: &'static str,
        /// What is wrong, without the value.
        detail: String,
    },
    /// TLS set-up failed (bad CA file).
    #[error("TLS set-up: {0}")]
    Tls(String),
}

impl ClientError {
    /// HTTP status, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Error code, for API errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether retrying an idempotent request may help (§1): 429, 5xx,
    /// connection errors and timeouts.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Api { status, .. } => *status == 429 || *status >= 500,
            ClientError::Network { .. } | ClientError::Timeout { .. } => true,
            _ => false,
        }
    }

    /// The server's `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
