//! The node's one error type, and the one place where failures become HTTP
//! answers: storage failures ([`StoreError`]) and the protocol's rejections
//! ([`Rejection`]) are mapped here. Every failure becomes an
//! `application/problem+json` answer (RFC 9457) with a stable `code`
//! (PROTOCOL §4). No cause chain, SQL text or key material reaches a
//! response; 5xx answers are logged with their cause.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use sealchain_shared::api::Problem;

use crate::db::StoreError;
use crate::ingest::Rejection;

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECS: u32 = 1;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 413: the request body is over the limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A message refused by the checks of PROTOCOL §4.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// 503: the store cannot answer now.
    #[error("{0}")]
    Unavailable(String),
    /// 408: the body did not arrive in time.
    #[error("the request body did not arrive within {secs} s")]
    RequestTimeout {
        /// The deadline.
        secs: u64,
    },
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: the message's block is still open.
    #[error("message {seq} is in block {block_index}, which is not sealed yet")]
    NotSealed {
        /// The message.
        seq: u64,
        /// Its block.
        block_index: u64,
    },
    /// 400: bad path or query.
    #[error("{0}")]
    BadRequest(String),
    /// 401: admin API without a valid token.
    #[error("{0}")]
    Unauthorized(String),
    /// 415: a request body that is not declared `application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 500: a bug or an unexpected database error (details only in the log).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Rejected(r) => match r {
                Rejection::MalformedEnvelope(_) => "malformed_envelope",
                Rejection::DecryptionFailed => "decryption_failed",
                Rejection::InvalidMessage(_) => "invalid_message",
                Rejection::WrongNode => "wrong_node",
                Rejection::InvalidSignature(_) => "invalid_signature",
                Rejection::UnknownSender => "unknown_sender",
                Rejection::StaleTimestamp { .. } => "stale_timestamp",
                Rejection::Duplicate => "duplicate",
                Rejection::RateLimited { .. } => "rate_limited",
                Rejection::Unavailable(_) => "unavailable",
            },
            Self::Unavailable(_) => "unavailable",
            Self::RequestTimeout { .. } => "request_timeout",
            Self::NotFound(_) => "not_found",
            Self::NotSealed { .. } => "not_sealed",
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Internal(_) => "internal",
        }
    }

    /// The problem object this error answers with.
    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        Problem {
            type_: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.code().into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Rejected(r) => match r {
                Rejection::MalformedEnvelope(_) | Rejection::DecryptionFailed => StatusCode::BAD_REQUEST,
                Rejection::InvalidMessage(_) | Rejection::WrongNode | Rejection::StaleTimestamp { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                Rejection::InvalidSignature(_) => StatusCode::UNAUTHORIZED,
                Rejection::UnknownSender => StatusCode::FORBIDDEN,
                Rejection::Duplicate => StatusCode::CONFLICT,
                Rejection::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                Rejection::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotSealed { .. } => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            Self::Unavailable(detail) | Self::Rejected(Rejection::Unavailable(detail)) => {
                tracing::warn!(detail, "answering 503 unavailable");
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        if let Self::Rejected(Rejection::RateLimited { retry_after_secs, .. }) = self {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)));
        } else if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS)));
        }
        if matches!(self, Self::Unauthorized(_)) {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        response.json(self.problem())
    }
}

impl From<StoreError> for ApiError {
    /// The one mapping from storage failures to answers: a database that
    /// cannot answer now is `503` (the client retries), a missing row is
    /// `404`, anything else is a bug (`500`, details only in the log).
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => Self::Unavailable(detail),
            StoreError::NotFound => Self::NotFound("not found".into()),
            StoreError::Internal(cause) => Self::Internal(cause),
        }
    }
}
