//! The admin HTTP API: bearer-token authentication and scopes, domains, push secrets,
//! accounts, pushed folders, Integrated Accounts, tokens and the audit trail, with the axum
//! router that serves it and its OpenAPI description.

pub mod router;
pub mod service;

pub use router::{ADMIN_TOKEN_HEADER, OPENAPI_YAML, router};
