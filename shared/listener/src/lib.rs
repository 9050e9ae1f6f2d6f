//! What every mail listener (SMTP, and IMAP next) shares: `serve` accepts connections within
//! their bounds (in all, per source address, per session's length) and shuts down gracefully;
//! `Connection` is a session's socket, plain until STARTTLS and TLS after it.

mod connection;
mod serve;

pub use connection::Connection;
pub use serve::{Conversation, Departure, Limits, serve};
