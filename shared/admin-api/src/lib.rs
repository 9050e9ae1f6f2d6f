//! The admin HTTP API: bearer-token authentication and scopes, domains, push secrets,
//! accounts, pushed folders, Integrated Accounts, tokens and the audit trail, with the axum
//! router that serves it and its OpenAPI description.
//!
//! `input` checks what comes in, `service` decides (typed results, [`AdminError`]), `views`
//! says what goes out, and `router` + `extract` do HTTP.

pub mod error;
mod extract;
pub mod input;
pub mod router;
pub mod service;
mod ui;
pub mod views;

pub use error::AdminError;
pub use extract::ADMIN_TOKEN_HEADER;
pub use router::{OPENAPI_YAML, router};
