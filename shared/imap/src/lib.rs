//! pushmail's IMAP listener (RFC 3501 with IDLE, UIDPLUS, MOVE, SPECIAL-USE, CHILDREN,
//! NAMESPACE, ID, ENABLE, LITERAL+, UNSELECT). Syntax apart from the session: `wire` frames and
//! decodes with imap-codec and `utf7` converts folder names; `session` is the state machine
//! with LOGIN and STARTTLS; `commands` hands the other commands to a file per group (`list`,
//! `mailboxes`, `select`, `fetch`, `store`, `search`, `copy`, `expunge`, `append`, `idle`).
//! The accept loop is `pushmail-listener`'s.

mod append;
mod commands;
mod copy;
mod expunge;
mod fetch;
mod idle;
mod list;
mod mailboxes;
mod mime;
mod search;
mod select;
mod session;
mod store;
mod uids;
mod utf7;
mod wire;

pub use session::{Imap, ImapSettings};
