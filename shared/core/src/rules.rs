//! Filing rules: per account, in order, evaluated at delivery on the message's decoded header,
//! deciding the folder a message is stored in and whether it arrives read. JSON, not Sieve (its
//! one Rust implementation is AGPL); the checks on a rule set live here, once.

use crate::header::MessageHeader;
use serde::{Deserialize, Serialize};

use crate::folder::FolderName;

/// At most this many rules per account.
pub const MAX_RULES: usize = 100;
/// At most this many conditions per rule.
pub const MAX_CONDITIONS: usize = 20;
/// A condition's value, in characters.
pub const MAX_VALUE_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilingRule {
    /// Shown to the user; not used in matching.
    #[serde(default)]
    pub name: Option<String>,
    /// `all` (every condition holds) or `any`.
    #[serde(default)]
    pub matching: Matching,
    pub conditions: Vec<Condition>,
    /// Store the message in this folder (created if missing) instead of INBOX.
    #[serde(default)]
    pub file_into: Option<FolderName>,
    /// The message arrives already read (`\Seen`).
    #[serde(default)]
    pub mark_read: bool,
    /// No later rule is looked at.
    #[serde(default)]
    pub stop: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Matching {
    #[default]
    All,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// `from`, `to_cc`, `subject`, `list_id`, or a header's name (`X-Spam-Flag`).
    pub field: String,
    #[serde(rename = "match")]
    pub op: MatchOp,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchOp {
    Contains,
    Equals,
    /// `*` any run of characters, `?` one character; the whole value must match.
    Matches,
}

/// Where a message goes, by the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filing {
    pub folder: FolderName,
    pub seen: bool,
}

impl FilingRule {
    /// Checks a rule set: at most [`MAX_RULES`], each with 1 to [`MAX_CONDITIONS`] conditions on
    /// known fields or valid header names, values of at most [`MAX_VALUE_CHARS`], and something
    /// to do. Folder names were checked when the rules were read.
    pub fn check_all(rules: &[FilingRule]) -> Result<(), String> {
        if rules.len() > MAX_RULES {
            return Err(format!("at most {MAX_RULES} rules per account"));
        }
        for (i, rule) in rules.iter().enumerate() {
            let at = |why: String| format!("rule {}: {why}", i + 1);
            if rule.conditions.is_empty() || rule.conditions.len() > MAX_CONDITIONS {
                return Err(at(format!("needs 1 to {MAX_CONDITIONS} conditions")));
            }
            if rule.file_into.is_none() && !rule.mark_read && !rule.stop {
                return Err(at("does nothing: give file_into, mark_read or stop".into()));
            }
            if rule.name.as_ref().is_some_and(|n| n.chars().count() > 200) {
                return Err(at("name is longer than 200 characters".into()));
            }
            for condition in &rule.conditions {
                let field = condition.field.as_str();
                let header_name = !field.is_empty()
                    && field.len() <= 76
                    && field.bytes().all(|b| b.is_ascii_graphic() && b != b':');
                if !header_name {
                    return Err(at(format!(
                        "field {} is not a header name",
                        crate::names::quoted(field)
                    )));
                }
                if condition.value.chars().count() > MAX_VALUE_CHARS {
                    return Err(at(format!(
                        "a value is longer than {MAX_VALUE_CHARS} characters"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether this rule's conditions hold for `header`.
    fn applies(&self, header: &MessageHeader) -> bool {
        let mut results = self.conditions.iter().map(|c| c.holds(header));
        match self.matching {
            Matching::All => results.all(|r| r),
            Matching::Any => results.any(|r| r),
        }
    }

    /// Where a message with this header goes, by `rules` in order: the last `file_into` of the
    /// rules that apply (up to a `stop`), INBOX if none; read if any applying rule says so.
    pub fn file(rules: &[FilingRule], header: &MessageHeader) -> Filing {
        let mut filing = Filing {
            folder: FolderName::inbox(),
            seen: false,
        };
        for rule in rules.iter().filter(|rule| rule.applies(header)) {
            if let Some(folder) = &rule.file_into {
                filing.folder = folder.clone();
            }
            filing.seen |= rule.mark_read;
            if rule.stop {
                break;
            }
        }
        filing
    }
}

impl Condition {
    fn holds(&self, header: &MessageHeader) -> bool {
        header.values(&self.field).iter().any(|value| {
            self.op
                .test(&value.to_lowercase(), &self.value.to_lowercase())
        })
    }
}

impl MatchOp {
    fn test(self, value: &str, wanted: &str) -> bool {
        match self {
            Self::Contains => value.contains(wanted),
            Self::Equals => value == wanted,
            Self::Matches => wildcard(wanted.as_bytes(), value.as_bytes()),
        }
    }
}

/// `*` and `?` over bytes of UTF-8 (so `?` is one byte: enough for ASCII addresses and ids),
/// iteratively, so no pattern can make it take exponential time.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(field: &str, op: MatchOp, value: &str, folder: Option<&str>) -> FilingRule {
        FilingRule {
            name: None,
            matching: Matching::All,
            conditions: vec![Condition {
                field: field.into(),
                op,
                value: value.into(),
            }],
            file_into: folder.map(|f| FolderName::parse(f).unwrap()),
            mark_read: false,
            stop: false,
        }
    }

    fn list_mail() -> MessageHeader {
        MessageHeader::parse(LIST_MAIL)
    }

    const LIST_MAIL: &[u8] = b"From: =?UTF-8?B?SsO2cmc=?= <joerg@example.org>\r\n\
        To: rust-users@lists.example.org\r\n\
        Subject: =?ISO-8859-1?Q?Gr=FC=DFe?= from\r\n the list\r\n\
        List-Id: Rust users <rust.lists.example.org>\r\n\
        X-Spam-Flag: NO\r\n\r\nbody";

    #[test]
    fn decoded_and_folded_headers_match() {
        let cases = [
            rule(
                "list_id",
                MatchOp::Contains,
                "RUST.lists",
                Some("Lists/rust"),
            ),
            rule(
                "subject",
                MatchOp::Contains,
                "grüße from the list",
                Some("A"),
            ),
            rule("from", MatchOp::Equals, "joerg@example.org", Some("A")),
            rule("from", MatchOp::Contains, "Jörg", Some("A")),
            rule(
                "to_cc",
                MatchOp::Matches,
                "rust-*@lists.example.???",
                Some("A"),
            ),
            rule("X-Spam-Flag", MatchOp::Equals, "no", Some("A")),
        ];
        for case in cases {
            let filed = FilingRule::file(std::slice::from_ref(&case), &list_mail());
            assert_ne!(filed.folder.as_str(), "INBOX", "{case:?}");
        }
        let misses = [
            rule("subject", MatchOp::Equals, "grüße", Some("A")),
            rule("to_cc", MatchOp::Matches, "rust-*@lists.example", Some("A")),
            rule("X-Missing", MatchOp::Contains, "", Some("A")),
        ];
        for case in misses {
            let filed = FilingRule::file(std::slice::from_ref(&case), &list_mail());
            assert!(filed.folder.is_inbox(), "{case:?}");
        }
    }

    #[test]
    fn rules_apply_in_order_until_stop() {
        let mut first = rule("list_id", MatchOp::Contains, "rust", Some("Lists/rust"));
        let mut read = rule("from", MatchOp::Contains, "example.org", None);
        read.mark_read = true;
        let later = rule("subject", MatchOp::Contains, "list", Some("Later"));
        let filed = FilingRule::file(&[first.clone(), read.clone(), later.clone()], &list_mail());
        assert_eq!((filed.folder.as_str(), filed.seen), ("Later", true));
        first.stop = true;
        let filed = FilingRule::file(&[first, read, later], &list_mail());
        assert_eq!((filed.folder.as_str(), filed.seen), ("Lists/rust", false));
    }

    #[test]
    fn any_and_all() {
        let mut either = rule("subject", MatchOp::Contains, "nothing like it", Some("X"));
        either.conditions.push(Condition {
            field: "list_id".into(),
            op: MatchOp::Contains,
            value: "rust".into(),
        });
        assert!(
            FilingRule::file(std::slice::from_ref(&either), &list_mail())
                .folder
                .is_inbox()
        );
        either.matching = Matching::Any;
        assert_eq!(
            FilingRule::file(&[either], &list_mail()).folder.as_str(),
            "X"
        );
    }

    #[test]
    fn wildcards_are_linear() {
        assert!(wildcard(b"a*b?d", b"axxxbcd"));
        assert!(!wildcard(b"a*b?d", b"axxxbd"));
        let text = vec![b'a'; 5000];
        assert!(!wildcard(b"*a*a*a*a*a*a*a*a*b", &text));
    }

    #[test]
    fn bad_rule_sets_are_refused() {
        let ok = rule("subject", MatchOp::Contains, "x", Some("A"));
        assert!(FilingRule::check_all(std::slice::from_ref(&ok)).is_ok());
        let mut nothing = ok.clone();
        nothing.file_into = None;
        assert!(FilingRule::check_all(&[nothing]).is_err());
        let mut empty = ok.clone();
        empty.conditions.clear();
        assert!(FilingRule::check_all(&[empty]).is_err());
        let bad_field = rule("Bad: Field", MatchOp::Contains, "x", Some("A"));
        assert!(FilingRule::check_all(&[bad_field]).is_err());
        let long = rule("subject", MatchOp::Contains, &"x".repeat(501), Some("A"));
        assert!(FilingRule::check_all(&[long]).is_err());
        assert!(FilingRule::check_all(&vec![ok; 101]).is_err());
    }
}
