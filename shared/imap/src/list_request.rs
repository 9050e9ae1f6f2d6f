//! What a LIST asks, plain (RFC 3501) or extended (LIST-EXTENDED, RFC 5258; LIST-STATUS,
//! RFC 5819; SPECIAL-USE's selection and return options, RFC 6154): the selection options,
//! the patterns, and the return options. imap-codec reads the plain form; the extended one,
//! which it cannot read, comes from the generic syntax (`syntax.rs`). Refusals are BAD with
//! their reason; nothing is listed.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::mailbox::ListMailbox;
use imap_codec::imap_types::status::StatusDataItemName;

use crate::syntax::{Item, Line, Token};

/// One LIST, as asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListRequest {
    /// The reference name, put before each pattern (RFC 3501 §6.3.8).
    pub reference: Vec<u8>,
    /// Patterns as sent (modified UTF-7); a name matching any is listed.
    pub patterns: Vec<Vec<u8>>,
    /// SUBSCRIBED: subscribed names, including those without a folder.
    pub subscribed: bool,
    /// RECURSIVEMATCH: a name not selected itself is listed, with CHILDINFO, when a name below
    /// it is selected and matches no pattern.
    pub recursive: bool,
    /// SPECIAL-USE: only folders with a special use.
    pub special_use: bool,
    /// RETURN (SUBSCRIBED): `\Subscribed` told.
    pub return_subscribed: bool,
    /// RETURN (STATUS (…)): a STATUS answer after each folder listed.
    pub status: Option<Vec<StatusDataItemName>>,
}

/// What LIST's wire form was, and what it asked; or why it is refused.
pub(crate) enum Parsed {
    List(Tag<'static>, ListRequest),
    Bad(Tag<'static>, &'static str),
}

impl ListRequest {
    /// A plain LIST, as imap-codec read it.
    pub fn plain(reference: &[u8], wildcard: &ListMailbox<'_>) -> Self {
        let pattern = match wildcard {
            ListMailbox::Token(token) => token.as_ref().to_vec(),
            ListMailbox::String(string) => AsRef::<[u8]>::as_ref(string).to_vec(),
        };
        Self {
            reference: reference.to_vec(),
            patterns: vec![pattern],
            ..Self::default()
        }
    }

    /// An extended LIST read with the generic syntax; `None` if the line is not a LIST.
    pub fn extended(line: &Line<'_>) -> Option<Parsed> {
        if line.name != "LIST" {
            return None;
        }
        let tag = Tag::try_from(String::from_utf8(line.tag.to_vec()).ok()?).ok()?;
        Some(match Self::read(&line.arguments) {
            Ok(request) => Parsed::List(tag, request),
            Err(why) => Parsed::Bad(tag, why),
        })
    }

    fn read(arguments: &[Item<'_>]) -> Result<Self, &'static str> {
        let mut request = Self::default();
        let mut rest = arguments;
        if let Some((first, after)) = rest.split_first()
            && let Some(options) = first.list()
        {
            request.select(options)?;
            rest = after;
        }
        let [reference, patterns, tail @ ..] = rest else {
            return Err("LIST needs a reference and a pattern");
        };
        request.reference = reference
            .string()
            .ok_or("The reference is not a string")?
            .into_owned();
        request.patterns = match patterns.list() {
            Some([]) => return Err("No pattern in the list"),
            Some(items) => items
                .iter()
                .map(|item| item.string().map(|s| s.into_owned()))
                .collect::<Option<_>>()
                .ok_or("A pattern is not a string")?,
            None => vec![
                patterns
                    .string()
                    .ok_or("The pattern is not a string")?
                    .into_owned(),
            ],
        };
        match tail {
            [] => {}
            [word, options] if word.is("RETURN") => {
                request.returning(options.list().ok_or("RETURN needs a list")?)?;
            }
            _ => return Err("Unexpected words after the pattern"),
        }
        Ok(request)
    }

    fn select(&mut self, options: &[Item<'_>]) -> Result<(), &'static str> {
        let mut other_than_remote = false;
        for option in options {
            if option.is("SUBSCRIBED") {
                self.subscribed = true;
                other_than_remote = true;
            } else if option.is("SPECIAL-USE") {
                self.special_use = true;
                other_than_remote = true;
            } else if option.is("RECURSIVEMATCH") {
                self.recursive = true;
            } else if !option.is("REMOTE") {
                // No remote folders here: REMOTE asks for nothing more.
                return Err("Unknown LIST selection option");
            }
        }
        // RFC 5258 §3: RECURSIVEMATCH only qualifies another selection option.
        if self.recursive && !other_than_remote {
            return Err("RECURSIVEMATCH needs another selection option");
        }
        Ok(())
    }

    fn returning(&mut self, options: &[Item<'_>]) -> Result<(), &'static str> {
        let mut options = options.iter();
        while let Some(option) = options.next() {
            if option.is("SUBSCRIBED") {
                self.return_subscribed = true;
            } else if option.is("CHILDREN") || option.is("SPECIAL-USE") {
                // Told always (CHILDREN, SPECIAL-USE are offered).
            } else if option.is("STATUS") {
                let items = options
                    .next()
                    .and_then(Item::list)
                    .ok_or("STATUS needs a list")?;
                let names = items
                    .iter()
                    .map(status_item)
                    .collect::<Option<Vec<_>>>()
                    .ok_or("Unknown STATUS item")?;
                self.status = Some(names);
            } else {
                return Err("Unknown LIST return option");
            }
        }
        Ok(())
    }

    /// The patterns as names are written (modified UTF-7 decoded), each after the reference;
    /// those that are not modified UTF-7 name nothing and are left out.
    pub fn full_patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .filter_map(|pattern| {
                let mut full = self.reference.clone();
                full.extend_from_slice(pattern);
                crate::utf7::decode(&full)
            })
            .collect()
    }
}

fn status_item(item: &Item<'_>) -> Option<StatusDataItemName> {
    let Token::Atom(atom) = item.token else {
        return None;
    };
    Some(match atom.to_ascii_uppercase().as_slice() {
        b"MESSAGES" => StatusDataItemName::Messages,
        b"RECENT" => StatusDataItemName::Recent,
        b"UIDNEXT" => StatusDataItemName::UidNext,
        b"UIDVALIDITY" => StatusDataItemName::UidValidity,
        b"UNSEEN" => StatusDataItemName::Unseen,
        b"HIGHESTMODSEQ" => StatusDataItemName::HighestModSeq,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ListRequest, &'static str> {
        let message = format!("{text}\r\n");
        let line = crate::syntax::parse(message.as_bytes()).expect("syntax");
        match ListRequest::extended(&line).expect("a LIST") {
            Parsed::List(_, request) => Ok(request),
            Parsed::Bad(_, why) => Err(why),
        }
    }

    #[test]
    fn extended_lists_read_their_options() {
        let request = parse(
            "a LIST (SUBSCRIBED RECURSIVEMATCH remote) \"\" (\"a/%\" b) RETURN (children STATUS (MESSAGES uidnext) SUBSCRIBED)",
        )
        .unwrap();
        assert!(request.subscribed && request.recursive && request.return_subscribed);
        assert_eq!(request.patterns, [b"a/%".to_vec(), b"b".to_vec()]);
        assert_eq!(
            request.status,
            Some(vec![
                StatusDataItemName::Messages,
                StatusDataItemName::UidNext
            ])
        );
        let request = parse("a LIST \"Lists/\" * RETURN ()").unwrap();
        assert_eq!(request.full_patterns(), ["Lists/*"]);
        assert!(!request.subscribed && request.status.is_none());
    }

    #[test]
    fn what_rfc_5258_forbids_is_refused() {
        for bad in [
            "a LIST (imaptest) \"\" \"\"",
            "a LIST (recursivematch) \"\" \"\"",
            "a LIST (recursivematch remote) \"\" \"\"",
            "a LIST \"\" \"\" return (imaptest)",
            "a LIST \"\" \"\" return (status (bogus))",
            "a LIST \"\" \"\" return (status)",
            "a LIST \"\" () ",
            "a LIST \"\"",
            "a LIST \"\" x y",
        ] {
            assert!(parse(bad.trim_end()).is_err(), "{bad}");
        }
    }
}
