//! The names everything else is built on: a mail domain, an address, the refusal of an invalid
//! one, and untrusted text as it may be shown. They depend on nothing else in the crate, so every
//! other file may use them (`types.rs` re-exports them where callers have always found them).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Untrusted text as it may appear in an answer or a log line: quoted, with control characters
/// escaped (no forged lines, no terminal escapes) and cut to 64 characters.
pub fn quoted(untrusted: &str) -> String {
    const SHOWN: usize = 64;
    let mut shown: String = untrusted.chars().take(SHOWN).collect();
    if untrusted.chars().nth(SHOWN).is_some() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// A mail domain name, lower-cased: the spec compares domains case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(input: &str) -> Result<Self, InvalidName> {
        let name = input.trim_end_matches('.').to_ascii_lowercase();
        let labels_ok = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if labels_ok {
            Ok(Self(name))
        } else {
            Err(InvalidName(format!(
                "{} is not a valid domain name",
                quoted(input)
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DomainName {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DomainName> for String {
    fn from(value: DomainName) -> Self {
        value.0
    }
}

/// A mailbox address, lower-cased whole. Local parts are compared case-insensitively, as
/// the mail server's own login does: "Alice@Example.com" on a device is alice@example.com.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Address {
    full: String,
    at: usize,
}

impl Address {
    pub fn parse(input: &str) -> Result<Self, InvalidName> {
        let invalid = || InvalidName(format!("{} is not a valid e-mail address", quoted(input)));
        let (local, domain) = input.rsplit_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b));
        if !local_ok {
            return Err(invalid());
        }
        let domain = DomainName::parse(domain).map_err(|_| invalid())?;
        let local = local.to_ascii_lowercase();
        Ok(Self {
            at: local.len(),
            full: format!("{local}@{domain}"),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }

    pub fn local_part(&self) -> &str {
        &self.full[..self.at]
    }

    pub fn domain(&self) -> DomainName {
        DomainName(self.full[self.at + 1..].to_owned())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl TryFrom<String> for Address {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Address> for String {
    fn from(value: Address) -> Self {
        value.full
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub String);
