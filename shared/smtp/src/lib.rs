//! pushmail's SMTP listeners. `wire` reads lines as RFC 5321 allows them (CRLF only, with
//! length limits) and parses commands with smtp-proto; `session` is the conversation in either
//! role (inbound, submission) with `auth` (AUTH PLAIN/LOGIN), `data` (reading a message) and
//! `deliver` (where it goes); `connection` is the socket before and after STARTTLS; `listener`
//! accepts connections within their bounds. Mail to other domains leaves through `outgoing`
//! (DKIM in `dkim`, the durable queue's worker, bounces in `dsn`) and a `transport`.

mod auth;
mod connection;
mod data;
mod deliver;
pub mod dkim;
pub mod dsn;
mod listener;
mod outgoing;
mod session;
pub mod transport;
mod wire;

pub use listener::{SmtpLimits, serve};
pub use outgoing::{Outgoing, RelayPolicy, RelayReport};
pub use session::{Role, Smtp, SmtpSettings};
pub use transport::{Smarthost, Transport, Verdict};
