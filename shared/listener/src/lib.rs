//! What every listener shares: `accept` is the one accept loop (connections in all and per
//! source address, shutdown with a grace period), for the mail listeners and the HTTP ones;
//! `serve` runs a mail protocol's sessions on it (each within its length, panics contained);
//! `Connection` is a session's socket, plain until STARTTLS and TLS after it, deflated after COMPRESS (`compress`); `proxy` reads a load balancer's PROXY v2 header.

mod accept;
mod compress;
mod connection;
mod proxy;
mod serve;

pub use accept::{Accepted, Caps, Departure, SHUTDOWN_GRACE, accept_until, drain};
pub use connection::Connection;
pub use proxy::{ProxyError, TrustedProxies};
pub use serve::{Conversation, Limits, serve};
