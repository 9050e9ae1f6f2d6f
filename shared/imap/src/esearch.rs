//! ESEARCH (RFC 4731): `SEARCH RETURN (MIN MAX ALL COUNT)`, answered with one `* ESEARCH` line
//! instead of every number. imap-codec does not read the RETURN clause: the wire hands the
//! command here when it cannot read it, and this cuts the clause out (the rest is a plain
//! SEARCH, read by imap-codec) and keeps what it asked for.

use crate::uids::uid_set;

/// What `RETURN (…)` asked for; `RETURN ()` is ALL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Returns {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
}

fn words(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == b' ').filter(|w| !w.is_empty())
}

/// `<tag> [UID] SEARCH RETURN (<options>) <criteria>` as `<tag> [UID] SEARCH <criteria>` and
/// the options; `None` if the command is not that, or names an option this server lacks.
pub(crate) fn strip_return(message: &[u8]) -> Option<(Vec<u8>, Returns)> {
    let first_line_end = message
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(message.len());
    let line = message.get(..first_line_end)?;
    let upper = line.to_ascii_uppercase();
    let mut at = upper.iter().position(|&b| b == b' ')? + 1;
    if upper.get(at..)?.starts_with(b"UID ") {
        at += 4;
    }
    if !upper.get(at..)?.starts_with(b"SEARCH RETURN (") {
        return None;
    }
    let keep = at + "SEARCH ".len();
    let options_start = at + "SEARCH RETURN (".len();
    let options_end = options_start
        + upper
            .get(options_start..)?
            .iter()
            .position(|&b| b == b')')?;
    let mut returns = Returns::default();
    for option in words(upper.get(options_start..options_end)?) {
        match option {
            b"MIN" => returns.min = true,
            b"MAX" => returns.max = true,
            b"ALL" => returns.all = true,
            b"COUNT" => returns.count = true,
            _ => return None,
        }
    }
    if returns == Returns::default() {
        returns.all = true;
    }
    let rest = message.get(options_end + 1..)?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let mut rewritten = message.get(..keep)?.to_vec();
    rewritten.extend_from_slice(rest);
    Some((rewritten, returns))
}

/// The `* ESEARCH` line for what was found (numbers in order, each with its MODSEQ); MODSEQ
/// told when the search used it, as the highest of the messages returned (RFC 7162 §3.1.5).
pub(crate) fn response(
    tag: &str,
    by_uid: bool,
    found: &[(u32, u64)],
    returns: Returns,
    with_modseq: bool,
) -> String {
    let mut line = format!("* ESEARCH (TAG \"{tag}\")");
    if by_uid {
        line.push_str(" UID");
    }
    let (first, last) = (found.first(), found.last());
    if returns.min
        && let Some((number, _)) = first
    {
        line.push_str(&format!(" MIN {number}"));
    }
    if returns.max
        && let Some((number, _)) = last
    {
        line.push_str(&format!(" MAX {number}"));
    }
    if returns.all && !found.is_empty() {
        let numbers: Vec<u32> = found.iter().map(|(number, _)| *number).collect();
        line.push_str(&format!(" ALL {}", uid_set(&numbers)));
    }
    if returns.count {
        line.push_str(&format!(" COUNT {}", found.len()));
    }
    let modseq = if returns.all || returns.count {
        found.iter().map(|(_, modseq)| *modseq).max()
    } else {
        [returns.min.then_some(first), returns.max.then_some(last)]
            .into_iter()
            .flatten()
            .flatten()
            .map(|(_, modseq)| *modseq)
            .max()
    };
    if with_modseq && let Some(modseq) = modseq.filter(|&m| m > 0) {
        line.push_str(&format!(" MODSEQ {modseq}"));
    }
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_return_clause_is_cut_out_and_kept() {
        let (rest, returns) = strip_return(b"a1 uid search return (min COUNT) seen").unwrap();
        assert_eq!(rest, b"a1 uid search seen");
        assert_eq!(
            (returns.min, returns.count, returns.all),
            (true, true, false)
        );
        let (rest, returns) = strip_return(b"a2 SEARCH RETURN () 1:3").unwrap();
        assert_eq!(
            (rest.as_slice(), returns.all),
            (&b"a2 SEARCH 1:3"[..], true)
        );
        let (rest, _) = strip_return(b"a3 SEARCH RETURN (ALL) SUBJECT {3}\r\nabc").unwrap();
        assert_eq!(rest, b"a3 SEARCH SUBJECT {3}\r\nabc");
        for other in [
            &b"a4 SEARCH RETURN (SAVE) ALL"[..],
            b"a5 SEARCH ALL",
            b"a6 FETCH 1 (RETURN (",
            b"x",
        ] {
            assert!(
                strip_return(other).is_none(),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn the_answer_has_what_was_asked() {
        let found = [(1, 5), (2, 9), (3, 7), (6, 2)];
        let all = Returns {
            all: true,
            ..Returns::default()
        };
        assert_eq!(
            response("t", false, &found, all, false),
            "* ESEARCH (TAG \"t\") ALL 1:3,6\r\n"
        );
        let min_max = Returns {
            min: true,
            max: true,
            ..Returns::default()
        };
        assert_eq!(
            response("t", true, &found, min_max, true),
            "* ESEARCH (TAG \"t\") UID MIN 1 MAX 6 MODSEQ 5\r\n"
        );
        let count = Returns {
            count: true,
            ..min_max
        };
        assert_eq!(
            response("t", false, &[], count, true),
            "* ESEARCH (TAG \"t\") COUNT 0\r\n"
        );
    }
}
