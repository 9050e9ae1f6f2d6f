//! The admin HTTP API as an axum `Router` (Lambda or local port). A thin adapter: routes,
//! extractors and status codes here; every rule in `crate::service`.

use std::sync::Arc;

use crate::service::{
    AccountPatch, AdminError, AdminService, DomainSettingsInput, ListParams, NewAccount, NewDomain,
    NewToken, Principal, PushedFolders, ServerSettingsInput,
};
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pushmail_core::types::Account;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The OpenAPI 3.1 description of every route below; a test holds the two together.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Where the admin token goes when `Authorization` is taken by a SigV4 signature.
pub const ADMIN_TOKEN_HEADER: &str = "x-admin-token";

type AppState = Arc<AdminService>;

pub fn router(service: Arc<AdminService>) -> Router {
    let admin = Router::new()
        .route("/server", get(server_settings).put(set_server_settings))
        .route("/domains", get(list_domains).post(create_domain))
        .route(
            "/domains/{domain}",
            get(domain).patch(update_domain).delete(delete_domain),
        )
        .route(
            "/domains/{domain}/secrets",
            get(list_secrets).post(create_secret),
        )
        .route(
            "/domains/{domain}/secrets/{id}",
            axum::routing::delete(retire_secret),
        )
        .route(
            "/domains/{domain}/accounts",
            get(list_accounts).post(create_account),
        )
        .route(
            "/domains/{domain}/integrated-accounts",
            get(list_domain_integrated),
        )
        .route("/domains/{domain}/audit", get(domain_audit))
        .route(
            "/accounts/{address}",
            get(account).patch(update_account).delete(delete_account),
        )
        .route(
            "/accounts/{address}/pushed-folders",
            get(pushed_folders).put(set_pushed_folders),
        )
        .route("/accounts/{address}/mail", get(account_mail))
        .route(
            "/accounts/{address}/integration",
            get(integration).delete(remove_integration),
        )
        .route(
            "/accounts/{address}/integration/resend-activation",
            post(resend_activation),
        )
        .route("/integrated-accounts", get(list_all_integrated))
        .route("/audit", get(server_audit))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", axum::routing::delete(delete_token))
        .route("/openapi.yaml", get(openapi));
    Router::new()
        .nest("/admin", admin)
        .route(
            "/self/pushed-folders",
            get(own_pushed_folders).put(set_own_pushed_folders),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(service)
}

// --- plumbing --------------------------------------------------------------------------------

/// An [`AdminError`] as an HTTP answer.
pub struct ApiError(AdminError);

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        Self(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        pushmail_http::json_response(self.0.status, self.0.body(), self.0.retry_after_secs)
    }
}

type Answer = Result<Response, ApiError>;

fn ok(body: Value) -> Answer {
    Ok(pushmail_http::json_response(200, body, None))
}

fn created(body: Value) -> Answer {
    Ok(pushmail_http::json_response(201, body, None))
}

fn no_content() -> Answer {
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn not_found() -> ApiError {
    AdminError::not_found("no such route; see GET /admin/openapi.yaml").into()
}

async fn method_not_allowed() -> Response {
    let error =
        AdminError::invalid("this route does not take that method; see GET /admin/openapi.yaml");
    pushmail_http::json_response(
        405,
        serde_json::json!({"error": "method_not_allowed", "detail": error.detail}),
        None,
    )
}

/// An authenticated admin token, from `X-Admin-Token: …` or `Authorization: Bearer …`.
struct Admin(Principal);

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
struct SelfAccount(Account);

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
            .ok_or_else(challenge)?;
        let (address, password) = credentials.split_once(':').ok_or_else(challenge)?;
        let source = pushmail_http::source_address(&parts.extensions);
        Ok(Self(
            state
                .authenticate_account(address, password, source.as_deref())
                .await?,
        ))
    }
}

/// A JSON body: `application/json`, at most 64 KiB, of the expected shape.
struct JsonBody<T>(T);

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
            return Err(AdminError::unsupported_media_type(
                "the body must be sent as Content-Type: application/json",
            )
            .into());
        }
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| AdminError::too_large("the body is larger than 64 KiB"))?;
        serde_json::from_slice(&bytes)
            .map(Self)
            .map_err(|e| AdminError::invalid(format!("the body is not valid: {e}")).into())
    }
}

/// Listing parameters from the query string.
struct Listing(ListParams);

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

// --- handlers --------------------------------------------------------------------------------

async fn openapi() -> Response {
    let mut response = OPENAPI_YAML.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml"),
    );
    response
}

async fn server_settings(State(s): State<AppState>, Admin(who): Admin) -> Answer {
    ok(s.server_settings(&who).await?)
}

async fn set_server_settings(
    State(s): State<AppState>,
    Admin(who): Admin,
    JsonBody(input): JsonBody<ServerSettingsInput>,
) -> Answer {
    ok(s.set_server_settings(&who, input).await?)
}

async fn list_domains(State(s): State<AppState>, Admin(who): Admin) -> Answer {
    ok(s.list_domains(&who).await?)
}

async fn create_domain(
    State(s): State<AppState>,
    Admin(who): Admin,
    JsonBody(input): JsonBody<NewDomain>,
) -> Answer {
    created(s.create_domain(&who, input).await?)
}

async fn domain(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
) -> Answer {
    ok(s.domain(&who, &domain).await?)
}

async fn update_domain(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
    JsonBody(input): JsonBody<DomainSettingsInput>,
) -> Answer {
    ok(s.update_domain(&who, &domain, input).await?)
}

async fn delete_domain(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
) -> Answer {
    s.delete_domain(&who, &domain).await?;
    no_content()
}

async fn list_secrets(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
) -> Answer {
    ok(s.list_secrets(&who, &domain).await?)
}

async fn create_secret(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
) -> Answer {
    created(s.create_secret(&who, &domain).await?)
}

async fn retire_secret(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path((domain, id)): Path<(String, String)>,
) -> Answer {
    s.retire_secret(&who, &domain, &id).await?;
    no_content()
}

async fn list_accounts(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
    Listing(params): Listing,
) -> Answer {
    ok(s.list_accounts(&who, &domain, &params).await?)
}

async fn create_account(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
    JsonBody(input): JsonBody<NewAccount>,
) -> Answer {
    created(s.create_account(&who, &domain, input).await?)
}

async fn account(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(s.account(&who, &address).await?)
}

async fn update_account(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
    JsonBody(patch): JsonBody<AccountPatch>,
) -> Answer {
    ok(s.update_account(&who, &address, patch).await?)
}

async fn delete_account(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(s.delete_account(&who, &address).await?)
}

async fn account_mail(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
    Listing(params): Listing,
) -> Answer {
    ok(s.account_mail(&who, &address, &params).await?)
}

async fn pushed_folders(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(s.pushed_folders(&who, &address).await?)
}

async fn set_pushed_folders(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
    JsonBody(input): JsonBody<PushedFolders>,
) -> Answer {
    ok(s.set_pushed_folders(&who, &address, input).await?)
}

async fn integration(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(s.integrated(&who, &address).await?)
}

async fn remove_integration(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(s.remove_integrated(&who, &address).await?)
}

async fn resend_activation(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(s.resend_activation(&who, &address).await?)
}

async fn list_domain_integrated(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
    Listing(params): Listing,
) -> Answer {
    ok(s.list_integrated(&who, Some(&domain), &params).await?)
}

async fn list_all_integrated(
    State(s): State<AppState>,
    Admin(who): Admin,
    Listing(params): Listing,
) -> Answer {
    ok(s.list_integrated(&who, None, &params).await?)
}

async fn domain_audit(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
    Listing(params): Listing,
) -> Answer {
    ok(s.domain_audit(&who, &domain, &params).await?)
}

async fn server_audit(
    State(s): State<AppState>,
    Admin(who): Admin,
    Listing(params): Listing,
) -> Answer {
    ok(s.server_audit(&who, &params).await?)
}

async fn list_tokens(State(s): State<AppState>, Admin(who): Admin) -> Answer {
    ok(s.list_tokens(&who).await?)
}

async fn create_token(
    State(s): State<AppState>,
    Admin(who): Admin,
    JsonBody(input): JsonBody<NewToken>,
) -> Answer {
    created(s.create_token(&who, input).await?)
}

async fn delete_token(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<String>,
) -> Answer {
    s.delete_token(&who, &id).await?;
    no_content()
}

async fn own_pushed_folders(SelfAccount(account): SelfAccount) -> Answer {
    ok(serde_json::json!({"folders": account.pushed_folders}))
}

async fn set_own_pushed_folders(
    State(s): State<AppState>,
    SelfAccount(account): SelfAccount,
    JsonBody(input): JsonBody<PushedFolders>,
) -> Answer {
    ok(s.set_own_pushed_folders(account, input).await?)
}
