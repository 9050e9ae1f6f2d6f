//! A message's header fields, decoded once per message for everything delivery reads of them:
//! the filing rules' conditions and the author a submitted message names.

use mail_parser::HeaderValue;

use crate::message::{parse_header, raw_value};

/// The decoded header fields of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageHeader {
    /// Each field's name (lowercase) with its decoded values (an address field's addresses
    /// and display names) and its raw unfolded text.
    fields: Vec<(String, String)>,
    /// The first address of the From field.
    author: Option<String>,
}

impl MessageHeader {
    /// Reads the header of a raw message (an unreadable one has no fields).
    pub fn parse(raw: &[u8]) -> Self {
        let mut fields = Vec::new();
        let Some(message) = parse_header(raw) else {
            return Self::default();
        };
        for header in message.headers() {
            let name = header.name().to_ascii_lowercase();
            let mut push = |value: String| fields.push((name.clone(), value));
            match header.value() {
                HeaderValue::Text(text) => push(text.to_string()),
                HeaderValue::TextList(list) => list.iter().for_each(|t| push(t.to_string())),
                HeaderValue::Address(address) => {
                    for addr in address.iter() {
                        if let Some(email) = addr.address() {
                            push(email.to_owned());
                        }
                        if let Some(name) = addr.name() {
                            push(name.to_owned());
                        }
                    }
                }
                _ => {}
            }
            // The raw (unfolded) text too, for headers parsed into other shapes: this
            // field's own bytes, not a search for its name (which made N fields cost N²).
            let raw = raw_value(&message, header).unwrap_or_default();
            fields.push((name.clone(), String::from_utf8_lossy(&raw).into_owned()));
        }
        let author = message
            .from()
            .and_then(|from| from.iter().find_map(|addr| addr.address()))
            .map(str::to_owned);
        Self { fields, author }
    }

    /// The address the From field names first, if any.
    pub fn author(&self) -> Option<&str> {
        self.author.as_deref()
    }

    /// The same header with a From field naming `address` (a submission agent adds the one a
    /// device left out, RFC 6409 §8.1).
    pub fn with_author(mut self, address: &str) -> Self {
        self.fields.push(("from".into(), address.to_owned()));
        self.author = Some(address.to_owned());
        self
    }

    /// What a filing rule's `field` reads: `from` (From and Sender), `to_cc` (To and Cc),
    /// `subject`, `list_id` (List-Id), or any other field by its name.
    pub(crate) fn values(&self, field: &str) -> Vec<&str> {
        let names: &[&str] = match field.to_ascii_lowercase().as_str() {
            "from" => &["from", "sender"],
            "to_cc" => &["to", "cc"],
            "subject" => &["subject"],
            "list_id" => &["list-id"],
            _ => &[],
        };
        let wanted = field.to_ascii_lowercase();
        self.fields
            .iter()
            .filter(|(name, _)| {
                if names.is_empty() {
                    *name == wanted
                } else {
                    names.contains(&name.as_str())
                }
            })
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_author_is_the_first_from_address() {
        let header = MessageHeader::parse(
            b"From: Alice <alice@example.com>, bob@example.com\r\nSubject: hi\r\n\r\nbody\r\n",
        );
        assert_eq!(header.author(), Some("alice@example.com"));
        assert!(header.values("from").contains(&"Alice"));
        assert!(header.values("subject").contains(&"hi"));
        assert_eq!(MessageHeader::parse(b"Subject: x\r\n\r\n").author(), None);
        assert_eq!(MessageHeader::parse(b"").author(), None);
    }

    #[test]
    fn an_added_author_is_read_as_if_it_had_come_with_the_message() {
        let header = MessageHeader::parse(b"Subject: x\r\n\r\n").with_author("me@example.com");
        assert_eq!(header.author(), Some("me@example.com"));
        assert_eq!(header.values("from"), vec!["me@example.com"]);
    }
}
