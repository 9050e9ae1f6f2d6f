//! Keywords (RFC 3501 §2.3.2): those of the selected folder are told with untagged FLAGS and
//! PERMANENTFLAGS at SELECT, and again, before any FETCH carries one the client was not told
//! of (§7.2.6: a client may take an untold keyword for an error).

use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::flag::{Flag, FlagPerm};
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::select::Selected;
use crate::session::{Result, send_status};
use crate::wire::Wire;

const SYSTEM_FLAGS: [Flag<'static>; 5] = [
    Flag::Answered,
    Flag::Flagged,
    Flag::Deleted,
    Flag::Seen,
    Flag::Draft,
];

/// Adds to `known` the keywords among `flags` it lacks (compared without case); whether any
/// was new.
pub(crate) fn learn(known: &mut Vec<String>, flags: &[String]) -> bool {
    let mut learned = false;
    for flag in flags.iter().filter(|f| !f.starts_with('\\')) {
        if !known.iter().any(|k| k.eq_ignore_ascii_case(flag)) {
            known.push(flag.clone());
            learned = true;
        }
    }
    learned
}

/// `* FLAGS (…)` and `* OK [PERMANENTFLAGS (…)]`: the system flags and `keywords`; in a
/// read-write view any new keyword may be made too (`\*`).
pub(crate) async fn tell<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    keywords: &[String],
    read_only: bool,
) -> Result<()> {
    let mut flags: Vec<Flag<'static>> = SYSTEM_FLAGS.to_vec();
    flags.extend(
        keywords
            .iter()
            .filter_map(|k| Flag::try_from(k.as_str()).ok().map(IntoStatic::into_static)),
    );
    wire.send(&Response::Data(Data::Flags(flags.clone())))
        .await?;
    let mut permanent: Vec<FlagPerm> = Vec::new();
    if !read_only {
        permanent = flags.into_iter().map(FlagPerm::Flag).collect();
        permanent.push(FlagPerm::Asterisk);
    }
    send_status(
        wire,
        None,
        StatusKind::Ok,
        Some(Code::PermanentFlags(permanent)),
        "Flags",
    )
    .await
}

/// Before a FETCH with `flags` goes out: tells the client the keywords among them it does not
/// know yet.
pub(crate) async fn announce<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    selected: &mut Selected,
    flags: &[String],
) -> Result<()> {
    if learn(&mut selected.keywords, flags) {
        tell(wire, &selected.keywords, selected.read_only).await?;
    }
    Ok(())
}
