//! pushmail's vocabulary and pure rules: names, settings, accounts, push links and the rules
//! that order them, the push protocol's wire format and signatures, password hashing.
//! Nothing here does I/O; the store, the services and the listeners build on it.

pub mod account;
pub mod counts;
pub mod folder;
pub mod header;
pub mod hints;
pub mod mailbox;
pub mod message;
pub mod metric_names;
pub mod names;
pub mod network;
pub mod notice;
pub mod password;
pub mod protocol;
pub mod rules;
pub mod sasl;
pub mod types;
pub mod verified;
