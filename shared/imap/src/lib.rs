//! pushmail's IMAP listener (RFC 3501, growing): `wire` frames and decodes with imap-codec;
//! `session` is the state machine with LOGIN and STARTTLS; `folders` LIST and SELECT and the
//! selected folder's view; `fetch` FETCH; `store` STORE; `search` SEARCH; `idle` IDLE on the change log. The accept loop is
//! `pushmail-listener`'s.

mod fetch;
mod folders;
mod idle;
mod search;
mod session;
mod store;
mod wire;

pub use session::{Imap, ImapSettings};
