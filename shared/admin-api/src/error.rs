//! The admin API's refusals: one enum, each case with its stable code and a human sentence.
//! The router maps each case to its HTTP status (router::status_of).

use pushmail_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("invalid_request: {0}")]
    Invalid(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not_found: {0}")]
    NotFound(String),
    #[error("method_not_allowed: {0}")]
    MethodNotAllowed(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("too_large: {0}")]
    TooLarge(String),
    #[error("unsupported_media_type: {0}")]
    UnsupportedMediaType(String),
    #[error("rate_limited: {detail}")]
    RateLimited {
        detail: String,
        retry_after_secs: u64,
    },
    /// A failure of ours (the store, hashing); the detail never says more than "try again".
    #[error("internal_error: {0}")]
    Internal(String),
}

impl AdminError {
    /// The stable, machine-readable code of the answer's `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::TooLarge(_) => "too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RateLimited { .. } => "rate_limited",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The human sentence of the answer's `detail` field.
    pub fn detail(&self) -> &str {
        match self {
            Self::Invalid(detail)
            | Self::Unauthorized(detail)
            | Self::Forbidden(detail)
            | Self::NotFound(detail)
            | Self::MethodNotAllowed(detail)
            | Self::Conflict(detail)
            | Self::TooLarge(detail)
            | Self::UnsupportedMediaType(detail)
            | Self::RateLimited { detail, .. }
            | Self::Internal(detail) => detail,
        }
    }

    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::Invalid(detail.into())
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::Unauthorized(detail.into())
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden(detail.into())
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::NotFound(detail.into())
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::Conflict(detail.into())
    }

    /// A failure of ours: logged with its cause, answered without it.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, "admin request failed");
        Self::Internal("the server could not complete the request; try again".into())
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::BadCursor => {
                Self::invalid("parameter `cursor` is not a cursor of this listing")
            }
            error => Self::internal(&error),
        }
    }
}

impl From<pushmail_core::password::HashError> for AdminError {
    fn from(error: pushmail_core::password::HashError) -> Self {
        match error {
            pushmail_core::password::HashError::Busy => Self::RateLimited {
                detail: error.to_string(),
                retry_after_secs: 1,
            },
            error => Self::internal(&error),
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;
