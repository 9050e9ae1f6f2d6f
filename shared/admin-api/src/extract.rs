//! The admin API's HTTP plumbing: refusals as answers (status per error case), JSON answers,
//! and the extractors for tokens, self-service credentials, JSON bodies and listing parameters.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pushmail_core::types::Account;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AdminError;
use crate::input::ListParams;
use crate::service::Principal;
use crate::views::ErrorView;

/// Where the admin token goes when `Authorization` is taken by a SigV4 signature.
pub const ADMIN_TOKEN_HEADER: &str = "x-admin-token";

/// What every handler and extractor is given: the admin service.
pub(crate) type AppState = std::sync::Arc<crate::service::AdminService>;

const MAX_BODY_BYTES: usize = 64 * 1024;

/// The HTTP status of each refusal.
pub fn status_of(error: &AdminError) -> StatusCode {
    match error {
        AdminError::Invalid(_) => StatusCode::BAD_REQUEST,
        AdminError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
        AdminError::NotFound(_) => StatusCode::NOT_FOUND,
        AdminError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        AdminError::Conflict(_) => StatusCode::CONFLICT,
        AdminError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        AdminError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        AdminError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AdminError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A JSON answer that is never cached, with `Retry-After` when given.
pub fn json_answer(
    status: StatusCode,
    body: &impl Serialize,
    retry_after_secs: Option<u64>,
) -> Response {
    let body = serde_json::to_value(body).unwrap_or_default();
    pushmail_http::json_response(status.as_u16(), body, retry_after_secs)
}

/// The challenge of a 401 on the admin routes (RFC 6750).
const BEARER_CHALLENGE: &str = "Bearer realm=\"pushmail admin\"";
/// The challenge of a 401 on the self-service routes (RFC 7617).
pub const BASIC_CHALLENGE: &str = "Basic realm=\"pushmail\", charset=\"UTF-8\"";

/// An [`AdminError`] as an HTTP answer; a 401 says how to authenticate (`WWW-Authenticate`).
pub struct ApiError {
    error: AdminError,
    challenge: &'static str,
}

impl ApiError {
    /// The error, challenging for the account's own Basic credentials if it is a 401.
    pub fn basic(error: AdminError) -> Self {
        Self {
            error,
            challenge: BASIC_CHALLENGE,
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        Self {
            error,
            challenge: BEARER_CHALLENGE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_answer(
            status_of(&self.error),
            &ErrorView::from(&self.error),
            self.error.retry_after_secs(),
        );
        if matches!(self.error, AdminError::Unauthorized(_)) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(self.challenge),
            );
        }
        response
    }
}

/// An authenticated admin token, from `X-Admin-Token: …` or `Authorization: Bearer …`.
pub struct Admin(pub Principal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // On AWS the Authorization header carries the SigV4 signature API Gateway checks, so the
        // token may come in X-Admin-Token instead; it wins when both are present.
        let header_str = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let from_token_header =
            header_str(ADMIN_TOKEN_HEADER).map(|token| format!("Bearer {token}"));
        let authorization = from_token_header
            .as_deref()
            .or(header_str(header::AUTHORIZATION.as_str()));
        Ok(Self(state.authenticate(authorization).await?))
    }
}

/// The account itself, from `Authorization: Basic base64(address:password)`.
pub struct SelfAccount(pub Account);

impl FromRequestParts<AppState> for SelfAccount {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let challenge = || {
            AdminError::unauthorized(
                "send `Authorization: Basic` with the account's address and password",
            )
        };
        let credentials = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .and_then(|(_, encoded)| STANDARD.decode(encoded.trim()).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(challenge)
            .map_err(ApiError::basic)?;
        let (address, password) = credentials
            .split_once(':')
            .ok_or_else(challenge)
            .map_err(ApiError::basic)?;
        let source = pushmail_http::source_address(&parts.extensions);
        Ok(Self(
            state
                .authenticate_account(address, password, source.as_deref())
                .await
                .map_err(ApiError::basic)?,
        ))
    }
}

/// A JSON body: `application/json`, at most 64 KiB, of the expected shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(AdminError::UnsupportedMediaType(
                "the body must be sent as Content-Type: application/json".into(),
            )
            .into());
        }
        if pushmail_http::announces_more_than(request.headers(), MAX_BODY_BYTES) {
            return Err(AdminError::TooLarge("the body is larger than 64 KiB".into()).into());
        }
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| AdminError::TooLarge("the body is larger than 64 KiB".into()))?;
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| AdminError::invalid(format!("the body is not valid: {e}")).into())
    }
}

/// Listing parameters from the query string.
pub struct Listing(pub ListParams);

impl<S: Send + Sync> FromRequestParts<S> for Listing {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<ListParams>::try_from_uri(&parts.uri)
            .map(|Query(params)| Self(params))
            .map_err(|e| {
                AdminError::invalid(format!("the query string is not valid: {}", e.body_text()))
                    .into()
            })
    }
}
