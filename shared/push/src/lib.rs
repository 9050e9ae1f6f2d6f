//! The Subscribe URL (spec §1–3): SUBSCRIBE/UNSUBSCRIBE from the push service, credential
//! checks with their rate limits, the activation outbox and the mailers that send it, signed
//! notices to the push service, and the axum router that serves it (on Lambda or locally).

pub mod dispatcher;
pub mod mailer;
pub mod notifier;
pub mod resolver;
pub mod router;
pub mod service;

pub use router::{SUBSCRIBE_PATH, router};
