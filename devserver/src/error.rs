//! Errors: [`Error`] for starting a server, [`AdminError`] for admin
//! operations, and `ApiError`, the `{"error": {"code", "message"}}` envelope
//! of contract §1 with its status code.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::seed::SeedError;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The devserver listens on loopback addresses only.
    #[error(
        "refusing to listen on {0}: the devserver only binds loopback addresses (127.0.0.0/8, ::1)"
    )]
    NotLoopback(std::net::SocketAddr),
    /// The seed is invalid.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// Binding the listener, or writing the CA or request log, failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The TLS certificate could not be made.
    #[error("TLS setup: {0}")]
    Tls(String),
}

/// Why an admin operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No such vault, item, field or agent.
    #[error("{0} not found")]
    NotFound(String),
    /// The operation does not apply.
    #[error("{0}")]
    Invalid(String),
}

/// An API error answer (contract §1).
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Invalid or missing API key. Please provide your API key in the X-API-Key header.",
        )
    }

    pub(crate) fn not_found(code: &'static str, what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            code,
            format!("The {what} with ID \"{id}\" was not found or you do not have access to it."),
        )
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub(crate) fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "error": {"code": self.code, "message": self.message}
        }))
        .expect("JSON")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.body(),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        resp
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            AdminError::Invalid(_) => Self::bad_request("invalid_request", e.to_string()),
        }
    }
}
