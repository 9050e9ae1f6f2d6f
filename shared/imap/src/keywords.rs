//! Keywords (RFC 3501 §2.3.2): those of the selected folder are told with untagged FLAGS and
//! PERMANENTFLAGS at SELECT, and again, before any FETCH carries one the client was not told
//! of (§7.2.6: a client may take an untold keyword for an error).

use imap_codec::imap_types::IntoStatic;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use imap_codec::imap_types::flag::{Flag, FlagPerm};
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply::{Result, send_status};
use crate::wire::Wire;

const SYSTEM_FLAGS: [Flag<'static>; 5] = [
    Flag::Answered,
    Flag::Flagged,
    Flag::Deleted,
    Flag::Seen,
    Flag::Draft,
];

/// Keywords known to a session (compared without case), each as first seen: a map, so that
/// learning those of a large folder at SELECT stays O(n log n).
#[derive(Default)]
pub(crate) struct Keywords(BTreeMap<String, String>);

impl Keywords {
    /// Learns the keywords among `flags`; whether any was new.
    pub fn learn(&mut self, flags: &[String]) -> bool {
        let mut learned = false;
        for flag in flags.iter().filter(|f| !f.starts_with('\\')) {
            if let Entry::Vacant(entry) = self.0.entry(flag.to_ascii_lowercase()) {
                entry.insert(flag.clone());
                learned = true;
            }
        }
        learned
    }
}

/// `* FLAGS (…)` and `* OK [PERMANENTFLAGS (…)]`: the system flags and `keywords`; in a
/// read-write view any new keyword may be made too (`\*`).
pub(crate) async fn tell<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    keywords: &Keywords,
    read_only: bool,
) -> Result<()> {
    let mut flags: Vec<Flag<'static>> = SYSTEM_FLAGS.to_vec();
    flags.extend(
        keywords
            .0
            .values()
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
