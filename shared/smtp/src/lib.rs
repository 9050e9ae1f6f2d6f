//! pushmail's SMTP listeners. `wire` reads lines as RFC 5321 allows them (CRLF only, with
//! length limits) and parses commands with smtp-proto; `session` is the conversation in either
//! role (inbound, submission) with `envelope` (EHLO, MAIL, RCPT), `auth` (AUTH PLAIN/LOGIN),
//! `data` (reading a message) and
//! `deliver` (where it goes); the socket before and after STARTTLS and the accept loop are
//! `pushmail-listener`'s, shared with the other mail listeners. Mail to other domains leaves through `outgoing`
//! (DKIM in `dkim`, the durable queue's worker, bounces in `dsn`) and a `transport`.

mod auth;
mod budget;
mod data;
mod deliver;
pub mod dkim;
pub mod dsn;
mod envelope;
mod outgoing;
pub mod reply;
mod session;
mod shed;
pub mod transport;
mod wire;

pub use budget::DataBudget;
pub use outgoing::{Outgoing, RelayPolicy, RelayReport};
pub use session::{DEFAULT_DATA_BUDGET, Role, Smtp, SmtpSettings};
pub use transport::{Smarthost, Transport, Verdict};
