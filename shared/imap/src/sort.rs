//! SORT and UID SORT (RFC 5256) with SORT=DISPLAY (RFC 5957): the messages SEARCH would find,
//! ordered by the keys asked for, ties by sequence number. ARRIVAL, SIZE, DATE and SUBJECT come
//! from the stored metadata; the address keys read each matching message's header.

use std::cmp::Ordering;
use std::num::NonZeroU32;

use chrono::{DateTime, Utc};
use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_codec::imap_types::response::{Data, Response, StatusKind};
use imap_codec::imap_types::search::SearchKey;
use mail_parser::HeaderValue;
use pushmail_core::mailbox::MessageMeta;
use pushmail_core::message::parse_header;
use pushmail_core::types::Address;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::reply::{Result, io, no_or_bad, ok, tagged_raw};
use crate::state::{Imap, Session};
use crate::subject::base_subject;
use crate::view::Selected;
use crate::wire::Wire;

/// What SORT and THREAD compare of one message.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sortable {
    pub seq: u32,
    pub uid: u32,
    pub arrival: DateTime<Utc>,
    pub size: u64,
    /// The Date: field's time, or the arrival if there is none (RFC 5256 §2.2).
    pub sent: DateTime<Utc>,
    /// The base subject as compared (RFC 5256 §2.1: upper-cased here), and whether the subject
    /// said reply or forward (THREAD=REFERENCES gathers such a message under its original).
    pub subject_key: String,
    pub reply_or_forward: bool,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub display_from: String,
    pub display_to: String,
    /// From the header, for THREAD=REFERENCES: the Message-ID, and References (else the first
    /// of In-Reply-To).
    pub message_id: Option<String>,
    pub references: Vec<String>,
}

impl Sortable {
    pub fn new(seq: u32, meta: &MessageMeta) -> Self {
        Self {
            seq,
            uid: meta.uid,
            arrival: meta.internal_date,
            size: meta.size,
            sent: meta.envelope.date.unwrap_or(meta.internal_date),
            ..Self::default()
        }
        .with_subject(meta.envelope.subject.as_deref().unwrap_or_default())
    }

    /// The subject keys, from the decoded Subject: field.
    pub fn with_subject(mut self, decoded: &str) -> Self {
        let (base, reply_or_forward) = base_subject(decoded);
        self.subject_key = base.to_uppercase();
        self.reply_or_forward = reply_or_forward;
        self
    }

    /// What only the message's header tells: the address keys and the thread's IDs, from one
    /// parse.
    pub fn read_header(&mut self, raw: &[u8]) {
        let Some(message) = parse_header(raw) else {
            return;
        };
        let key = |list| first_address(list).unwrap_or_default();
        (self.from, self.display_from) = key(message.from());
        (self.to, self.display_to) = key(message.to());
        (self.cc, _) = key(message.cc());
        let ids = |value: &HeaderValue<'_>| -> Vec<String> {
            match value {
                HeaderValue::Text(id) => vec![id.to_string()],
                HeaderValue::TextList(ids) => ids.iter().map(|id| id.to_string()).collect(),
                _ => Vec::new(),
            }
        };
        self.message_id = message.message_id().map(str::to_owned);
        self.references = ids(message.references());
        if self.references.is_empty() {
            self.references = ids(message.in_reply_to()).into_iter().take(1).collect();
        }
    }

    fn compare(&self, other: &Self, key: &SortKey) -> Ordering {
        match key {
            SortKey::Arrival => self.arrival.cmp(&other.arrival),
            SortKey::Size => self.size.cmp(&other.size),
            SortKey::Date => self.sent.cmp(&other.sent),
            SortKey::Subject => self.subject_key.cmp(&other.subject_key),
            SortKey::From => self.from.cmp(&other.from),
            SortKey::To => self.to.cmp(&other.to),
            SortKey::Cc => self.cc.cmp(&other.cc),
            SortKey::DisplayFrom => self.display_from.cmp(&other.display_from),
            SortKey::DisplayTo => self.display_to.cmp(&other.display_to),
        }
    }
}

/// The first address of a field as SORT sees it, upper-cased for comparing: its mailbox (the
/// local part; a group's name), and its display name (RFC 5957: else the address itself).
fn first_address(list: Option<&mail_parser::Address<'_>>) -> Option<(String, String)> {
    // `From: d` parses as a name without an address: Dovecot takes it as the address.
    let address_of = |addr: &mail_parser::Addr<'_>| -> Option<String> {
        addr.address
            .as_deref()
            .or(addr.name.as_deref())
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
    };
    let one = |addr: &mail_parser::Addr<'_>| {
        let address = address_of(addr)?;
        let mailbox = address
            .rsplit_once('@')
            .map_or(address.as_str(), |(local, _)| local);
        let display = match (addr.address.is_some(), addr.name.as_deref().map(str::trim)) {
            (true, Some(name)) if !name.is_empty() => name,
            _ => address.as_str(),
        };
        Some((mailbox.to_uppercase(), display.to_uppercase()))
    };
    match list? {
        mail_parser::Address::List(list) => list.iter().find_map(one),
        mail_parser::Address::Group(groups) => {
            let group = groups.first()?;
            match group.name.as_deref() {
                Some(name) => Some((name.to_uppercase(), name.to_uppercase())),
                None => group.addresses.iter().find_map(one),
            }
        }
    }
}

/// SORT and THREAD search in US-ASCII and UTF-8 only (text is compared decoded).
fn known_charset(charset: &Charset<'_>) -> bool {
    let name = match charset {
        Charset::Atom(atom) => atom.as_ref(),
        Charset::Quoted(quoted) => quoted.as_ref(),
    };
    name.eq_ignore_ascii_case("US-ASCII") || name.eq_ignore_ascii_case("UTF-8")
}

/// Why SORT or THREAD found nothing to order.
pub(crate) enum Unordered {
    UnknownCharset,
    UnsupportedKey,
}

impl Unordered {
    pub async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
        self,
        wire: &mut Wire<S>,
        tag: Tag<'static>,
    ) -> Result<()> {
        match self {
            Self::UnknownCharset => {
                let text = "[BADCHARSET (US-ASCII UTF-8)] Unknown charset";
                tagged_raw(wire, &tag, "NO", text).await
            }
            Self::UnsupportedKey => {
                no_or_bad(wire, tag, StatusKind::Bad, "Search key not supported").await
            }
        }
    }
}

impl Imap {
    /// The messages SORT or THREAD orders: those matching `criteria`, with the fields from
    /// their header too if `read_header` (one read and one parse of each).
    pub(crate) async fn sortables(
        &self,
        account: &Address,
        selected: &Selected,
        charset: &Charset<'_>,
        criteria: &[SearchKey<'static>],
        read_header: bool,
    ) -> Result<std::result::Result<Vec<Sortable>, Unordered>> {
        if !known_charset(charset) {
            return Ok(Err(Unordered::UnknownCharset));
        }
        let mut found = Vec::new();
        let matched = self
            .matching(account, selected, criteria, |seq, meta| {
                found.push(Sortable::new(seq, &meta));
            })
            .await?;
        if matched.is_err() {
            return Ok(Err(Unordered::UnsupportedKey));
        }
        if read_header {
            for message in &mut found {
                if let Some(raw) = self
                    .store
                    .message_header(account, &selected.folder, message.uid)
                    .await
                    .map_err(io)?
                {
                    message.read_header(&raw);
                }
            }
        }
        Ok(Ok(found))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn sort<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &Session,
        account: &Address,
        tag: Tag<'static>,
        keys: &Vec1<SortCriterion>,
        charset: &Charset<'static>,
        criteria: &Vec1<SearchKey<'static>>,
        by_uid: bool,
    ) -> Result<()> {
        let Some(selected) = &session.selected else {
            return no_or_bad(wire, tag, StatusKind::Bad, "Select a folder first").await;
        };
        let addresses = keys.as_ref().iter().any(|criterion| {
            !matches!(
                criterion.key,
                SortKey::Arrival | SortKey::Size | SortKey::Date | SortKey::Subject
            )
        });
        let mut found = match self
            .sortables(account, selected, charset, criteria.as_ref(), addresses)
            .await?
        {
            Ok(found) => found,
            Err(unordered) => return unordered.refuse(wire, tag).await,
        };
        found.sort_by(|a, b| {
            keys.as_ref()
                .iter()
                .map(|criterion| {
                    let order = a.compare(b, &criterion.key);
                    if criterion.reverse {
                        order.reverse()
                    } else {
                        order
                    }
                })
                .find(|order| order.is_ne())
                .unwrap_or_else(|| a.seq.cmp(&b.seq))
        });
        let numbers = found
            .iter()
            .filter_map(|m| NonZeroU32::new(if by_uid { m.uid } else { m.seq }))
            .collect();
        wire.send(&Response::Data(Data::Sort(numbers, None)))
            .await?;
        ok(wire, tag, "SORT done").await
    }
}
