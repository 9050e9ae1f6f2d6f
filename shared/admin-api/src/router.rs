//! The admin HTTP API as an axum `Router` (Lambda or local port). A thin adapter: routes and
//! handlers here, each turning the service's typed result into its view; every rule in
//! `crate::service`, every check of input in `crate::input`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use crate::error::AdminError;
use crate::extract::{Admin, ApiError, AppState, JsonBody, Listing, SelfAccount, json_answer};
use crate::input::{
    AccountPatch, DomainSettingsInput, FilingRules, NewAccount, NewDomain, NewToken, PushedFolders,
    ServerSettingsInput,
};
use crate::service::AdminService;
use crate::ui;
use crate::views::{
    AccountDeletedView, AccountView, ActivationView, AuditView, DomainView, FolderView,
    FoldersView, IntegrationView, ItemsView, MailView, MessageView, NewSecretView, PageView,
    RulesView, SecretView, ServerSettingsView, TokenView, UnlinkedView,
};

/// The OpenAPI 3.1 description of every route below; a test holds the two together.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");
pub fn router(service: Arc<AdminService>) -> Router {
    let admin = Router::new()
        .route("/server", get(server_settings).put(set_server_settings))
        .route("/notices", get(notice_counts))
        .route("/health", get(health))
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
        .route("/domains/{domain}/dkim-record", get(dkim_record))
        .route(
            "/accounts/{address}",
            get(account).patch(update_account).delete(delete_account),
        )
        .route(
            "/accounts/{address}/pushed-folders",
            get(pushed_folders).put(set_pushed_folders),
        )
        .route("/accounts/{address}/mail", get(account_mail))
        .route("/accounts/{address}/folders", get(folders))
        .route(
            "/accounts/{address}/folders/{folder}/messages",
            get(folder_messages),
        )
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
        .route(
            "/accounts/{address}/rules",
            get(filing_rules).put(set_filing_rules),
        )
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", axum::routing::delete(delete_token))
        .route("/openapi.yaml", get(openapi));
    Router::new()
        .nest("/admin", admin)
        .route(
            "/self/rules",
            get(own_filing_rules).put(set_own_filing_rules),
        )
        .route(
            "/self/pushed-folders",
            get(own_pushed_folders).put(set_own_pushed_folders),
        )
        .route("/self/folders", get(own_folders))
        .route("/self/integration", get(own_integration))
        .route("/admin/ui", get(ui::console_folder))
        .route("/admin/ui/", get(ui::console_page))
        .route("/admin/ui/{file}", get(ui::asset))
        .route("/self/ui", get(ui::self_folder))
        .route("/self/ui/", get(ui::self_page))
        .route("/self/ui/{file}", get(ui::asset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(service)
}

// --- answers ---------------------------------------------------------------------------------

type Answer = Result<Response, ApiError>;

fn ok(view: impl Serialize) -> Answer {
    Ok(json_answer(StatusCode::OK, &view, None))
}

fn created(view: impl Serialize) -> Answer {
    Ok(json_answer(StatusCode::CREATED, &view, None))
}

fn no_content() -> Answer {
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn not_found() -> ApiError {
    AdminError::not_found("no such route; see GET /admin/openapi.yaml").into()
}

async fn method_not_allowed() -> ApiError {
    AdminError::MethodNotAllowed(
        "this route does not take that method; see GET /admin/openapi.yaml".into(),
    )
    .into()
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
    ok(ServerSettingsView::from(s.server_settings(&who).await?))
}

async fn set_server_settings(
    State(s): State<AppState>,
    Admin(who): Admin,
    JsonBody(input): JsonBody<ServerSettingsInput>,
) -> Answer {
    ok(ServerSettingsView::from(
        s.set_server_settings(&who, input).await?,
    ))
}

async fn list_domains(State(s): State<AppState>, Admin(who): Admin) -> Answer {
    ok(ItemsView::of(s.list_domains(&who).await?, DomainView::from))
}

async fn create_domain(
    State(s): State<AppState>,
    Admin(who): Admin,
    JsonBody(input): JsonBody<NewDomain>,
) -> Answer {
    created(DomainView::from(s.create_domain(&who, input).await?))
}

async fn domain(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
) -> Answer {
    ok(DomainView::from(s.domain(&who, &domain).await?))
}

async fn update_domain(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
    JsonBody(input): JsonBody<DomainSettingsInput>,
) -> Answer {
    ok(DomainView::from(
        s.update_domain(&who, &domain, input).await?,
    ))
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
    ok(ItemsView::of(
        s.list_secrets(&who, &domain).await?,
        SecretView::from,
    ))
}

async fn create_secret(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
) -> Answer {
    created(NewSecretView::from(s.create_secret(&who, &domain).await?))
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
    ok(PageView::of(
        s.list_accounts(&who, &domain, &params).await?,
        AccountView::from,
    ))
}

async fn create_account(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
    JsonBody(input): JsonBody<NewAccount>,
) -> Answer {
    created(AccountView::from(
        s.create_account(&who, &domain, input).await?,
    ))
}

async fn account(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(AccountView::from(s.account(&who, &address).await?))
}

async fn update_account(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
    JsonBody(patch): JsonBody<AccountPatch>,
) -> Answer {
    ok(AccountView::from(
        s.update_account(&who, &address, patch).await?,
    ))
}

async fn delete_account(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(AccountDeletedView {
        status: "deleted",
        unlinked_notice: s.delete_account(&who, &address).await?,
    })
}

async fn account_mail(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
    Listing(params): Listing,
) -> Answer {
    ok(ItemsView::of(
        s.account_mail(&who, &address, &params).await?,
        MailView::from,
    ))
}

async fn folders(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(ItemsView::of(
        s.folders(&who, &address).await?,
        FolderView::from,
    ))
}

async fn folder_messages(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path((address, folder)): Path<(String, String)>,
    Listing(params): Listing,
) -> Answer {
    ok(PageView::of(
        s.folder_messages(&who, &address, &folder, &params).await?,
        MessageView::from,
    ))
}

async fn pushed_folders(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(FoldersView {
        folders: s.pushed_folders(&who, &address).await?,
    })
}

async fn set_pushed_folders(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
    JsonBody(input): JsonBody<PushedFolders>,
) -> Answer {
    ok(FoldersView {
        folders: s.set_pushed_folders(&who, &address, input).await?,
    })
}

async fn integration(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(IntegrationView::from(s.integrated(&who, &address).await?))
}

async fn dkim_record(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
) -> Answer {
    ok(s.dkim_record(&who, &domain).await?)
}

async fn health(State(s): State<AppState>, Admin(who): Admin) -> Answer {
    ok(s.health(&who).await?)
}

async fn notice_counts(State(s): State<AppState>, Admin(who): Admin) -> Answer {
    ok(s.notice_counts(&who).await?)
}

async fn remove_integration(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(UnlinkedView {
        status: "unlinked",
        unlinked_notice: s.remove_integrated(&who, &address).await?,
    })
}

async fn resend_activation(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(ActivationView {
        activation: s.resend_activation(&who, &address).await?,
    })
}

async fn list_domain_integrated(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
    Listing(params): Listing,
) -> Answer {
    ok(PageView::of(
        s.list_integrated(&who, Some(&domain), &params).await?,
        IntegrationView::from,
    ))
}

async fn list_all_integrated(
    State(s): State<AppState>,
    Admin(who): Admin,
    Listing(params): Listing,
) -> Answer {
    ok(PageView::of(
        s.list_integrated(&who, None, &params).await?,
        IntegrationView::from,
    ))
}

async fn domain_audit(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(domain): Path<String>,
    Listing(params): Listing,
) -> Answer {
    ok(PageView::of(
        s.domain_audit(&who, &domain, &params).await?,
        AuditView::from,
    ))
}

async fn server_audit(
    State(s): State<AppState>,
    Admin(who): Admin,
    Listing(params): Listing,
) -> Answer {
    ok(PageView::of(
        s.server_audit(&who, &params).await?,
        AuditView::from,
    ))
}

async fn list_tokens(State(s): State<AppState>, Admin(who): Admin) -> Answer {
    ok(ItemsView::of(s.list_tokens(&who).await?, TokenView::from))
}

async fn create_token(
    State(s): State<AppState>,
    Admin(who): Admin,
    JsonBody(input): JsonBody<NewToken>,
) -> Answer {
    created(TokenView::from(s.create_token(&who, input).await?))
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
    ok(FoldersView {
        folders: account.pushed_folders,
    })
}

async fn set_own_pushed_folders(
    State(s): State<AppState>,
    SelfAccount(account): SelfAccount,
    JsonBody(input): JsonBody<PushedFolders>,
) -> Answer {
    ok(FoldersView {
        folders: s
            .set_own_pushed_folders(account, input)
            .await
            .map_err(ApiError::basic)?,
    })
}

async fn filing_rules(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
) -> Answer {
    ok(RulesView {
        rules: s.filing_rules(&who, &address).await?,
    })
}

async fn set_filing_rules(
    State(s): State<AppState>,
    Admin(who): Admin,
    Path(address): Path<String>,
    JsonBody(input): JsonBody<FilingRules>,
) -> Answer {
    ok(RulesView {
        rules: s.set_filing_rules(&who, &address, input).await?,
    })
}

async fn own_folders(State(s): State<AppState>, SelfAccount(account): SelfAccount) -> Answer {
    ok(ItemsView::of(
        s.own_folders(&account).await?,
        FolderView::from,
    ))
}

async fn own_integration(State(s): State<AppState>, SelfAccount(account): SelfAccount) -> Answer {
    ok(IntegrationView::from(s.own_integration(&account).await?))
}

async fn own_filing_rules(SelfAccount(account): SelfAccount) -> Answer {
    ok(RulesView {
        rules: account.filing_rules,
    })
}

async fn set_own_filing_rules(
    State(s): State<AppState>,
    SelfAccount(account): SelfAccount,
    JsonBody(input): JsonBody<FilingRules>,
) -> Answer {
    ok(RulesView {
        rules: s
            .set_own_filing_rules(account, input)
            .await
            .map_err(ApiError::basic)?,
    })
}
