//! pushmail's domain library: the types, the push protocol, the store and the mailer.
//! Lambdas and listeners are thin adapters over it; no AWS type leaks past the store and mailer.

pub mod admin;
pub mod aws;
pub mod config;
pub mod credentials;
pub mod mailer;
pub mod notifier;
pub mod password;
pub mod protocol;
pub mod seed;
pub mod service;
pub mod store;
pub mod types;
