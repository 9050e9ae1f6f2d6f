//! The replies every command sends: tagged and untagged statuses, BYE, and a store error as the
//! session's end. The session's result type.

use imap_codec::imap_types::core::{Tag, Text};
use imap_codec::imap_types::response::{
    Bye, Capability, Code, Response, Status, StatusBody, StatusKind, Tagged,
};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::wire::Wire;

pub(crate) type Result<T> = std::io::Result<T>;

pub(crate) async fn send_status<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    tag: Option<Tag<'static>>,
    kind: StatusKind,
    code: Option<Code<'static>>,
    text: &str,
) -> Result<()> {
    let text =
        Text::try_from(text.to_owned()).unwrap_or_else(|_| Text::try_from("Done").expect("text"));
    let body = StatusBody { kind, code, text };
    let status = match tag {
        Some(tag) => Status::Tagged(Tagged { tag, body }),
        None => Status::Untagged(body),
    };
    wire.send(&Response::Status(status)).await
}

/// A capability imap-types has no variant for.
pub(crate) fn named(name: &'static str) -> Capability<'static> {
    Capability::from(imap_codec::imap_types::core::Atom::try_from(name).expect("an atom"))
}

/// A store error as the session's I/O error: the session ends (its peer sees the connection
/// close) and the error is logged by the listener, rather than an answer that would be wrong.
pub(crate) fn io<E: std::error::Error + Send + Sync + 'static>(error: E) -> std::io::Error {
    std::io::Error::other(error)
}

/// A tagged status written as it is, for response codes imap-types does not know (UIDPLUS's
/// APPENDUID and COPYUID).
pub(crate) async fn tagged_raw<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    tag: &Tag<'static>,
    kind: &str,
    text: &str,
) -> Result<()> {
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    wire.send_raw(format!("{} {kind} {text}\r\n", tag.inner()).as_bytes())
        .await
}

pub(crate) async fn ok<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    tag: Tag<'static>,
    text: &str,
) -> Result<()> {
    send_status(wire, Some(tag), StatusKind::Ok, None, text).await
}

pub(crate) async fn no_or_bad<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    tag: Tag<'static>,
    kind: StatusKind,
    text: &str,
) -> Result<()> {
    send_status(wire, Some(tag), kind, None, text).await
}

pub(crate) async fn bye<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    text: &str,
) -> Result<()> {
    let text =
        Text::try_from(text.to_owned()).unwrap_or_else(|_| Text::try_from("Bye").expect("text"));
    wire.send(&Response::Status(Status::Bye(Bye { code: None, text })))
        .await
}
