//! The base subject of a message (RFC 5256 §2.1), which SORT SUBJECT and THREAD compare: the
//! subject without its "Re:", "Fwd:", "[list]" leaders and "(fwd)" trailers.

/// The base subject (decoded text in), and whether anything said it was a reply or a forward
/// (THREAD=REFERENCES gathers such a message under its original).
pub(crate) fn base_subject(decoded: &str) -> (String, bool) {
    // (1) Tabs and line breaks are spaces, runs of spaces one.
    let mut subject = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        let c = if c.is_whitespace() { ' ' } else { c };
        if !(c == ' ' && subject.ends_with(' ')) {
            subject.push(c);
        }
    }
    let mut reply_or_forward = false;
    loop {
        // (2) Trailing "(fwd)" and spaces.
        loop {
            let trimmed = subject.trim_end();
            let cut = trimmed.len()
                - if ends_with_ignore_case(trimmed, "(fwd)") {
                    reply_or_forward = true;
                    5
                } else {
                    0
                };
            if cut == subject.len() {
                break;
            }
            subject.truncate(cut);
        }
        // (3)-(4) Leaders, then one "[blob]" if something is left after it, until neither.
        loop {
            let before = subject.len();
            while let Some((length, refwd)) = leader(&subject) {
                reply_or_forward |= refwd;
                subject.drain(..length);
            }
            if let Some(length) = blob(&subject)
                && length < subject.len()
            {
                subject.drain(..length);
            }
            if subject.len() == before {
                break;
            }
        }
        // (5) "[fwd: …]" around the rest.
        if starts_with_ignore_case(&subject, "[fwd:") && subject.ends_with(']') {
            subject = subject[5..subject.len() - 1].to_owned();
            reply_or_forward = true;
            continue;
        }
        return (subject, reply_or_forward);
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text
            .get(text.len() - suffix.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
}

/// `subj-blob`: "[" text without brackets "]", then spaces; its length in bytes.
fn blob(text: &str) -> Option<usize> {
    let rest = text.strip_prefix('[')?;
    let end = rest.find([']', '['])?;
    if rest.as_bytes().get(end) != Some(&b']') {
        return None;
    }
    let after = 1 + end + 1;
    Some(after + spaces(&text[after..]))
}

fn spaces(text: &str) -> usize {
    text.len() - text.trim_start_matches(' ').len()
}

/// `subj-leader`: spaces, or blobs then "re", "fw" or "fwd", spaces, an optional blob and ":";
/// its length, and whether it was the latter.
fn leader(text: &str) -> Option<(usize, bool)> {
    let space = spaces(text);
    if space > 0 {
        return Some((space, false));
    }
    let mut at = 0;
    while let Some(length) = blob(&text[at..]) {
        at += length;
    }
    let rest = &text[at..];
    let word = ["fwd", "fw", "re"]
        .into_iter()
        .find(|word| starts_with_ignore_case(rest, word))?;
    at += word.len();
    at += spaces(&text[at..]);
    if let Some(length) = blob(&text[at..]) {
        at += length;
    }
    (text[at..].starts_with(':')).then_some((at + 1, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaders_trailers_and_blobs_go() {
        for (subject, base, reply) in [
            ("a", "a", false),
            ("Re: [FWD: c]", "c", true),
            ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b", true),
            ("b (a)", "b (a)", false),
            ("[xyz]", "[xyz]", false),
            ("Ad: Re: Ad: Re: Ad: x", "Ad: Re: Ad: Re: Ad: x", false),
            ("re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon", true),
            ("Re:", "", true),
            ("RE  :\t x", "x", true),
            (" ", "", false),
            ("[a][b] c", "c", false),
        ] {
            assert_eq!(
                base_subject(subject),
                (base.to_owned(), reply),
                "{subject:?}"
            );
        }
    }

    #[test]
    fn odd_input_never_panics() {
        for subject in [
            "[",
            "]",
            "[[",
            "re",
            "fwd:[",
            "[fwd:]",
            "é[ü]: ß",
            "(fwd)",
            "[fwd:",
        ] {
            let _ = base_subject(subject);
        }
    }
}
