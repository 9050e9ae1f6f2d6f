//! ENVELOPE, BODY and BODYSTRUCTURE of messages fetched lately, and their header, kept so that
//! fetching them (or header sections alone) again reads no body and parses nothing (Dovecot
//! keeps them in its cache file). A message's bytes
//! never change under its account, folder, UIDVALIDITY and UID (a folder made again gets a new
//! UIDVALIDITY, above any its address gave before), so nothing kept goes stale. Bounded by an
//! estimate of the memory it holds, the least recently used let go first.

use std::sync::{Arc, Mutex};

use imap_codec::imap_types::fetch::MessageDataItem;
use lru::LruCache;
use pushmail_core::folder::FolderName;
use pushmail_core::types::Address;

use crate::fetch_response::written_item;
use crate::mime::Parsed;

/// What one parse of a message gives FETCH's structure items, as they are written inside a
/// FETCH response's parentheses (`ENVELOPE (...)`): a FETCH that finds them spends nothing on
/// them but a copy of their bytes.
/// One made for ENVELOPE alone, from the header, has no BODY and BODYSTRUCTURE: a FETCH of
/// those makes the whole one in its place.
#[derive(Debug)]
pub(crate) struct Summary {
    pub envelope: Vec<u8>,
    /// BODY and BODYSTRUCTURE, made together from the whole message; `None` in a summary of
    /// the header alone.
    pub structures: Option<Structures>,
    /// The top-level header as stored: what a FETCH of header sections alone reads, then
    /// without a read of the store.
    pub header: Vec<u8>,
    /// The estimate of the memory it holds, counted against the budget.
    weight: usize,
}

/// A message's BODY and BODYSTRUCTURE, as written inside a FETCH response's parentheses.
#[derive(Debug)]
pub(crate) struct Structures {
    pub body: Vec<u8>,
    pub structure: Vec<u8>,
}

impl Structures {
    /// The bytes both hold.
    pub fn len(&self) -> usize {
        self.body.len() + self.structure.len()
    }
}

impl Summary {
    pub fn of(parsed: &Parsed<'_>) -> Self {
        Self::made(
            parsed,
            Some(Structures {
                body: written_item(MessageDataItem::Body(parsed.structure(false))),
                structure: written_item(MessageDataItem::BodyStructure(parsed.structure(true))),
            }),
        )
    }

    /// ENVELOPE and the header alone: all that `parsed` may hold is the header.
    pub fn of_header(parsed: &Parsed<'_>) -> Self {
        Self::made(parsed, None)
    }

    fn made(parsed: &Parsed<'_>, structures: Option<Structures>) -> Self {
        let envelope = written_item(MessageDataItem::Envelope(parsed.envelope()));
        let header = parsed.header().to_vec();
        let weight = envelope.len()
            + structures.as_ref().map_or(0, Structures::len)
            + header.len()
            + std::mem::size_of::<Self>()
            + 256;
        Self {
            envelope,
            structures,
            header,
            weight,
        }
    }

    /// Whether it holds BODY and BODYSTRUCTURE (it was made from the whole message).
    pub fn is_whole(&self) -> bool {
        self.structures.is_some()
    }
}

/// One message's bytes for good: a folder made again has a new UIDVALIDITY.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    account: Address,
    folder: FolderName,
    uid_validity: u32,
    uid: u32,
}

impl Key {
    fn new(account: &Address, folder: &FolderName, uid_validity: u32, uid: u32) -> Self {
        Self {
            account: account.clone(),
            folder: folder.clone(),
            uid_validity,
            uid,
        }
    }
}

/// The summaries one process keeps, shared by its sessions.
#[derive(Debug)]
pub(crate) struct Summaries {
    budget: usize,
    kept: Mutex<Kept>,
}

#[derive(Debug)]
struct Kept {
    summaries: LruCache<Key, Arc<Summary>>,
    weight: usize,
}

impl Summaries {
    /// At most about `budget` bytes kept.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            kept: Mutex::new(Kept {
                summaries: LruCache::unbounded(),
                weight: 0,
            }),
        }
    }

    pub fn get(
        &self,
        account: &Address,
        folder: &FolderName,
        uid_validity: u32,
        uid: u32,
    ) -> Option<Arc<Summary>> {
        let key = Key::new(account, folder, uid_validity, uid);
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.summaries.get(&key).cloned()
    }

    /// Keeps `summary` (unless it alone is over a sixteenth of the budget), letting go of the
    /// least recently used until the rest fits.
    pub fn keep(
        &self,
        account: &Address,
        folder: &FolderName,
        uid_validity: u32,
        uid: u32,
        summary: Summary,
    ) -> Arc<Summary> {
        let summary = Arc::new(summary);
        if summary.weight > self.budget / 16 {
            return summary;
        }
        let key = Key::new(account, folder, uid_validity, uid);
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.weight += summary.weight;
        if let Some(old) = kept.summaries.put(key, summary.clone()) {
            kept.weight -= old.weight;
        }
        while kept.weight > self.budget {
            let Some((_, gone)) = kept.summaries.pop_lru() else {
                break;
            };
            kept.weight -= gone.weight;
        }
        summary
    }

    /// The estimate of what is kept, and how many.
    #[cfg(test)]
    pub fn held(&self) -> (usize, usize) {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        (kept.weight, kept.summaries.len())
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use imap_codec::ResponseCodec;
    use imap_codec::encode::Encoder;
    use imap_codec::imap_types::core::{IString, Literal, NString, Vec1};
    use imap_codec::imap_types::response::{Data, Response};

    use super::*;
    use crate::fetch_response::FetchResponse;

    fn message(n: usize, parts: usize) -> Vec<u8> {
        let mut raw = format!(
            "From: Bob <bob@example.org>\r\nSubject: message {n}\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        );
        for part in 0..parts {
            raw.push_str(&format!(
                "--b\r\nContent-Type: text/plain\r\n\r\npart {part}\r\n"
            ));
        }
        raw.push_str("--b--\r\n");
        raw.into_bytes()
    }

    #[test]
    fn a_response_with_kept_items_is_what_imap_codec_writes_for_them_all() {
        let odd = "From: \"Bob \\\"B\\\"\" <bob@example.org>\r\nSubject: caf\u{e9} \"quoted\" {5}\r\n\
                   To: undisclosed-recipients:;\r\n\r\nbody\r\n";
        for raw in [message(1, 0), message(2, 3), odd.as_bytes().to_vec()] {
            let parsed = Parsed::new(&raw);
            let summary = Summary::of(&parsed);
            let seq = NonZeroU32::new(42).expect("nonzero");
            let made = vec![
                MessageDataItem::Uid(NonZeroU32::new(7).expect("nonzero")),
                MessageDataItem::Rfc822Size(99),
            ];
            let typed = |items: Vec<MessageDataItem<'static>>| {
                let items = Vec1::try_from(items).expect("items");
                ResponseCodec::default()
                    .encode(&Response::Data(Data::Fetch { seq, items }))
                    .dump()
            };
            let mut all = made.clone();
            all.extend([
                MessageDataItem::Envelope(parsed.envelope()),
                MessageDataItem::Body(parsed.structure(false)),
                MessageDataItem::BodyStructure(parsed.structure(true)),
            ]);
            // As FETCH writes them: its plain items, the kept ones, then a section's literal.
            let section = MessageDataItem::BodyExt {
                section: None,
                origin: None,
                data: NString(Some(IString::Literal(
                    Literal::try_from(raw.clone()).expect("literal"),
                ))),
            };
            let response = |section: Option<&MessageDataItem<'static>>| {
                let mut response = FetchResponse::new(seq);
                response.uid(NonZeroU32::new(7).expect("nonzero"));
                response.size(99);
                let structures = summary.structures.as_ref().expect("a whole summary");
                for item in [&summary.envelope, &structures.body, &structures.structure] {
                    response.written(item);
                }
                response.encoded(section.into_iter().cloned().collect(), &[]);
                response.finish().expect("items")
            };
            assert_eq!(
                response(None),
                typed(all.clone()),
                "{}",
                String::from_utf8_lossy(&raw)
            );
            let mut with_section = all;
            with_section.push(section.clone());
            assert_eq!(response(Some(&section)), typed(with_section));
            let mut kept_only = FetchResponse::new(seq);
            kept_only.written(&summary.envelope);
            kept_only.written(
                &summary
                    .structures
                    .as_ref()
                    .expect("a whole summary")
                    .structure,
            );
            assert_eq!(
                kept_only.finish().expect("items"),
                typed(vec![
                    MessageDataItem::Envelope(parsed.envelope()),
                    MessageDataItem::BodyStructure(parsed.structure(true)),
                ])
            );
        }
    }

    /// FETCH answers header sections from a summary's header alone: the same bytes as from
    /// the whole message, for odd headers too.
    #[test]
    fn header_sections_from_the_kept_header_are_those_of_the_message() {
        use imap_codec::imap_types::core::AString;
        use imap_codec::imap_types::fetch::Section;
        let names = Vec1::try_from(vec![
            AString::try_from("Subject").expect("name"),
            AString::try_from("to").expect("name"),
        ])
        .expect("names");
        let sections = [
            Section::Header(None),
            Section::HeaderFields(None, names.clone()),
            Section::HeaderFieldsNot(None, names),
        ];
        let odd: [&[u8]; 7] = [
            b"Subject: bare LF\nTo: a@b\n\ntext\n",
            b"Subject: no body at all",
            b"\r\nno header\r\n",
            b"",
            b"   ",
            b"no colon\r\n\r\nSubject: in the body\r\n",
            b"Subject: folded\r\n  line\r\nTo: x\r\n\r\nSubject: not this\r\n",
        ];
        let raws = [message(1, 2)]
            .into_iter()
            .chain(odd.iter().map(|raw| raw.to_vec()));
        for raw in raws {
            let summary = Summary::of(&Parsed::new(&raw));
            for section in &sections {
                assert_eq!(
                    Parsed::new(&summary.header).section(Some(section)),
                    Parsed::new(&raw).section(Some(section)),
                    "{section:?} of {:?}",
                    String::from_utf8_lossy(&raw)
                );
            }
        }
    }

    #[test]
    fn what_is_kept_stays_within_the_budget_and_keys_never_cross() {
        let alice = Address::parse("alice@example.com").unwrap();
        let bob = Address::parse("bob@example.com").unwrap();
        let inbox = FolderName::inbox();
        let summaries = Summaries::new(256 * 1024);
        // 10,000 messages of a few parts: the budget holds, the newest stay.
        for uid in 1..=10_000u32 {
            let raw = message(uid as usize, 3);
            let summary = Summary::of(&Parsed::new(&raw));
            summaries.keep(&alice, &inbox, 7, uid, summary);
            assert!(summaries.held().0 <= 256 * 1024);
        }
        let (_, count) = summaries.held();
        assert!(count > 10 && count < 10_000, "{count}");
        assert!(summaries.get(&alice, &inbox, 7, 10_000).is_some());
        assert!(summaries.get(&alice, &inbox, 7, 1).is_none());
        // Another account, another UIDVALIDITY: never the same message.
        assert!(summaries.get(&bob, &inbox, 7, 10_000).is_none());
        assert!(summaries.get(&alice, &inbox, 8, 10_000).is_none());
        // A message whose structure alone would take a sixteenth of the budget is not kept.
        let huge = message(0, 2_000);
        let summary = Summary::of(&Parsed::new(&huge));
        summaries.keep(&alice, &inbox, 7, 20_000, summary);
        assert!(summaries.get(&alice, &inbox, 7, 20_000).is_none());
        assert!(summaries.held().0 <= 256 * 1024);
    }
}
