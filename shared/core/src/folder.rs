//! Mailbox folder names: one set of rules for the admin API, self-service and the IMAP listener.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::names::{InvalidName, quoted};

/// The hierarchy delimiter, as IMAP's LIST announces it.
pub const DELIMITER: char = '/';
pub const MAX_FOLDER_NAME_CHARS: usize = 255;

/// A folder name that every part of pushmail accepts: `/`-separated segments, each non-empty
/// and not `.` or `..`; no leading or trailing space in a segment; no control characters and
/// none of IMAP's wildcards (`*`, `%`); at most 255 characters. `INBOX` is matched
/// case-insensitively, as IMAP does; every other name is kept as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FolderName(String);

impl FolderName {
    pub fn parse(input: &str) -> Result<Self, InvalidName> {
        let bad = |why: &str| InvalidName(format!("folder name {} {why}", quoted(input)));
        if input.is_empty() || input.chars().count() > MAX_FOLDER_NAME_CHARS {
            return Err(bad("must be 1 to 255 characters"));
        }
        if input.chars().any(|c| c.is_control()) {
            return Err(bad("must not contain control characters"));
        }
        if input.contains(['*', '%']) {
            return Err(bad("must not contain `*` or `%`"));
        }
        for segment in input.split(DELIMITER) {
            if segment.is_empty() {
                return Err(bad("must not start or end with `/` or contain `//`"));
            }
            if segment == "." || segment == ".." {
                return Err(bad("must not have `.` or `..` as a part"));
            }
            if segment.trim() != segment {
                return Err(bad("must not have spaces at the start or end of a part"));
            }
        }
        if input.eq_ignore_ascii_case("INBOX") {
            return Ok(Self("INBOX".to_owned()));
        }
        Ok(Self(input.to_owned()))
    }

    /// INBOX, which every account has.
    pub fn inbox() -> Self {
        Self("INBOX".to_owned())
    }

    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FolderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FolderName {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<FolderName> for String {
    fn from(value: FolderName) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names() {
        for good in [
            "Work",
            "Lists/rust",
            "Sent Items",
            "INBOX/Sub",
            "Ünïcode",
            "a.b",
        ] {
            assert_eq!(FolderName::parse(good).unwrap().as_str(), good);
        }
        assert!(FolderName::parse("inbox").unwrap().is_inbox());
        assert!(!FolderName::parse("INBOX/Sub").unwrap().is_inbox());
    }

    #[test]
    fn bad_names() {
        for bad in [
            "",
            "..",
            ".",
            "/",
            "/etc/passwd",
            "INBOX ",
            "INBOX/",
            " Work",
            "a//b",
            "a/../b",
            "a/./b",
            "tab\there",
            "new\nline",
            "star*",
            "per%cent",
            "esc\u{1b}",
        ] {
            assert!(FolderName::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(FolderName::parse(&"x".repeat(256)).is_err());
        assert!(FolderName::parse(&"x".repeat(255)).is_ok());
    }
}
