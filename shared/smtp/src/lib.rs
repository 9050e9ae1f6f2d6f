//! pushmail's SMTP listener. `wire` reads lines as RFC 5321 allows them (CRLF only, with
//! length limits) and parses commands with smtp-proto; `session` is the conversation and its
//! rules; `listener` accepts connections within their bounds. Today the inbound role (mail for
//! local accounts, port 25's job); submission with STARTTLS and AUTH comes next.

mod listener;
mod session;
mod wire;

pub use listener::{SmtpLimits, serve};
pub use session::{Inbound, InboundSettings};
