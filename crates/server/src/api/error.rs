//! Errors of the API: every error response is `{"error": "..."}` ([`ErrorBody`]) with a status,
//! made in one place from the errors of the store and the host, and never carrying internal
//! details (those go to the server log).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bulkhead_core::store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The result of a handler.
/// An error response: `{"error": "..."}` with a status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, and how to fix it.
    pub error: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(super) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownRun(id) => ApiError::not_found(format!("no run `{id}`")),
            StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            // Never the holder's name: it carries the host name and process id.
            StoreError::Held { run_id, until, .. } => ApiError::new(
                StatusCode::CONFLICT,
                format!("run `{run_id}` is being run by a host until {until}; try again later"),
            ),
            other => {
                tracing::error!(error = %other, "state store error while serving a request");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                )
            }
        }
    }
}

/// The one mapping of host errors to HTTP statuses (the CLI maps the same classes to exit codes).
impl From<bulkhead_host::HostError> for ApiError {
    fn from(e: bulkhead_host::HostError) -> Self {
        use bulkhead_host::{ErrorClass, HostError};
        match (e.class(), e) {
            (_, HostError::Store(s)) => s.into(),
            (ErrorClass::Invalid, e) => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
            (ErrorClass::NotFound, e) => ApiError::not_found(e.to_string()),
            (ErrorClass::Conflict | ErrorClass::Busy, e) => {
                ApiError::new(StatusCode::CONFLICT, e.to_string())
            }
            (ErrorClass::Internal, e) => {
                tracing::error!(error = %e, "host error while serving a request");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The status (for tests and fuzzing).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message (for tests and fuzzing).
    pub fn message(&self) -> &str {
        &self.message
    }
}
