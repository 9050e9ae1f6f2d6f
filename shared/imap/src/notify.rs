//! NOTIFY (RFC 5465): one session watches the folders it names — the INBOX and the folders a
//! push service follows — and hears of new, removed and re-flagged mail in each as `* STATUS`,
//! and of folders created, deleted and (un)subscribed as `* LIST`, without selecting each in
//! turn. What it asked is read here from the generic syntax (imap-codec cannot read NOTIFY);
//! what happened comes from the account's change log (messages) and its folder list (names,
//! subscriptions), looked at when this process hears of a change (a hint), every `idle_poll`,
//! while the session waits for its next command or IDLEs. The selected folder is reported as
//! always (EXISTS, EXPUNGE, FETCH), with MessageNew's FETCH items after EXISTS if asked.

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::core::{AString, Tag};
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::status::StatusDataItemName;
use pushmail_core::folder::{DELIMITER, FolderName};

use crate::syntax::{Item, Line, Token};

/// The events this server tells of, as BADEVENT lists them.
pub(crate) const SUPPORTED: &str =
    "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange";

/// What NOTIFY asked.
pub(crate) enum NotifyRequest {
    /// NOTIFY NONE: nothing more is told.
    None,
    /// NOTIFY SET; `status`: each watched folder's state told at once.
    Set { groups: Vec<Group>, status: bool },
}

/// Which folders an event group covers (RFC 5465 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filter {
    /// SELECTED and SELECTED-DELAYED: the selected folder.
    Selected,
    /// INBOXES: where mail is delivered; here, the INBOX.
    Inboxes,
    /// PERSONAL: every folder.
    Personal,
    Subscribed,
    /// The folders and every one below them.
    Subtree(Vec<FolderName>),
    Mailboxes(Vec<FolderName>),
}

/// What is told for the folders of a group.
#[derive(Debug, Clone, Default)]
pub(crate) struct Events {
    pub new: bool,
    pub expunge: bool,
    pub flags: bool,
    pub names: bool,
    pub subscriptions: bool,
    /// MessageNew's FETCH items, for the selected folder.
    pub fetch: Option<MacroOrMessageDataItemNames<'static>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub filter: Filter,
    pub events: Events,
}

/// What a NOTIFY session watches, and where its telling stands.
pub(crate) struct Watch {
    pub groups: Vec<Group>,
    /// The account's change counter told up to.
    pub seen_change: u64,
    /// Folders (and whether subscribed) as last told, when a group asks for MailboxName or
    /// SubscriptionChange.
    pub folders: Option<Vec<(FolderName, bool)>>,
}

impl Watch {
    /// The events of the first group covering a folder other than the selected one.
    pub fn events_for(&self, name: &FolderName, subscribed: bool) -> Option<&Events> {
        self.groups
            .iter()
            .find(|group| group.filter.covers(name, subscribed))
            .map(|group| &group.events)
    }

    /// MessageNew's FETCH items for the selected folder, if asked.
    pub fn selected_fetch(&self) -> Option<&Group> {
        self.groups
            .iter()
            .find(|group| group.filter == Filter::Selected)
            .filter(|group| group.events.fetch.is_some())
    }
}

/// Why NOTIFY is refused: BAD (syntax) or NO (an event this server does not tell of).
pub(crate) enum Refused {
    Bad(&'static str),
    BadEvent,
}

impl Filter {
    /// Whether the group covers a folder that is not the selected one.
    pub fn covers(&self, name: &FolderName, subscribed: bool) -> bool {
        match self {
            Self::Selected => false,
            Self::Inboxes => name.is_inbox(),
            Self::Personal => true,
            Self::Subscribed => subscribed,
            Self::Mailboxes(names) => names.contains(name),
            Self::Subtree(names) => names.iter().any(|top| {
                name == top
                    || name
                        .as_str()
                        .strip_prefix(top.as_str())
                        .is_some_and(|rest| rest.starts_with(DELIMITER))
            }),
        }
    }
}

impl Events {
    /// The STATUS items telling of these events (as Dovecot answers NOTIFY's STATUS).
    pub fn status_items(&self) -> Vec<StatusDataItemName> {
        let mut items = Vec::new();
        if self.new || self.expunge {
            items.push(StatusDataItemName::Messages);
        }
        if self.new {
            items.push(StatusDataItemName::UidNext);
        }
        if self.new || self.flags {
            items.push(StatusDataItemName::UidValidity);
        }
        if self.flags {
            items.push(StatusDataItemName::HighestModSeq);
        }
        items
    }
}

impl NotifyRequest {
    /// NOTIFY read with the generic syntax; `None` if the line is not a NOTIFY.
    pub fn read(line: &Line<'_>) -> Option<(Tag<'static>, Result<Self, Refused>)> {
        if line.name != "NOTIFY" {
            return None;
        }
        let tag = Tag::try_from(String::from_utf8(line.tag.to_vec()).ok()?).ok()?;
        Some((tag, Self::parse(&line.arguments)))
    }

    fn parse(arguments: &[Item<'_>]) -> Result<Self, Refused> {
        match arguments {
            [none] if none.is("NONE") => return Ok(Self::None),
            [set, ..] if set.is("SET") => {}
            _ => return Err(Refused::Bad("NOTIFY SET or NOTIFY NONE")),
        }
        let mut rest = arguments.get(1..).unwrap_or_default();
        let status = rest.first().is_some_and(|item| item.is("STATUS"));
        if status {
            rest = rest.get(1..).unwrap_or_default();
        }
        if rest.is_empty() {
            return Err(Refused::Bad("NOTIFY SET needs an event group"));
        }
        let groups = rest.iter().map(group).collect::<Result<Vec<_>, _>>()?;
        Ok(Self::Set { groups, status })
    }
}

fn group(item: &Item<'_>) -> Result<Group, Refused> {
    let items = item
        .list()
        .ok_or(Refused::Bad("An event group is a list"))?;
    let (filter, events) = match items {
        [word, names, events] if word.is("SUBTREE") => (Filter::Subtree(mailboxes(names)?), events),
        [word, names, events] if word.is("MAILBOXES") => {
            (Filter::Mailboxes(mailboxes(names)?), events)
        }
        [word, events] => {
            let filter = if word.is("SELECTED") || word.is("SELECTED-DELAYED") {
                Filter::Selected
            } else if word.is("INBOXES") {
                Filter::Inboxes
            } else if word.is("PERSONAL") {
                Filter::Personal
            } else if word.is("SUBSCRIBED") {
                Filter::Subscribed
            } else {
                return Err(Refused::Bad("Unknown NOTIFY mailbox filter"));
            };
            (filter, events)
        }
        _ => return Err(Refused::Bad("An event group is a filter and its events")),
    };
    let events = if events.is("NONE") {
        Events::default()
    } else {
        read_events(
            events.list().ok_or(Refused::Bad("Events are a list"))?,
            filter == Filter::Selected,
        )?
    };
    Ok(Group { filter, events })
}

fn read_events(items: &[Item<'_>], selected: bool) -> Result<Events, Refused> {
    let mut events = Events::default();
    let mut items = items.iter().peekable();
    while let Some(item) = items.next() {
        if item.is("MessageNew") {
            events.new = true;
            if let Some(fetch) = items.next_if(|next| next.list().is_some()) {
                // FETCH items only for the selected folder (RFC 5465 §5.2).
                if !selected {
                    return Err(Refused::Bad("MessageNew's FETCH items are for SELECTED"));
                }
                events.fetch = Some(fetch_items(fetch)?);
            }
        } else if item.is("MessageExpunge") {
            events.expunge = true;
        } else if item.is("FlagChange") {
            events.flags = true;
        } else if item.is("MailboxName") {
            events.names = true;
        } else if item.is("SubscriptionChange") {
            events.subscriptions = true;
        } else if matches!(item.token, Token::Atom(_)) {
            return Err(Refused::BadEvent);
        } else {
            return Err(Refused::Bad("An event is a word"));
        }
    }
    Ok(events)
}

/// MessageNew's `(fetch-att …)` as imap-codec reads a FETCH's.
fn fetch_items(item: &Item<'_>) -> Result<MacroOrMessageDataItemNames<'static>, Refused> {
    let bad = Refused::Bad("Not FETCH items");
    let Token::List(_) = &item.token else {
        return Err(bad);
    };
    let mut items = Vec::new();
    for part in item.list().unwrap_or_default() {
        match &part.token {
            Token::Atom(atom) => items.push(String::from_utf8_lossy(atom).into_owned()),
            _ => return Err(bad),
        }
    }
    let command = format!("n FETCH 1 ({})\r\n", items.join(" "));
    match CommandCodec::default().decode(command.as_bytes()) {
        Ok((
            [],
            imap_codec::imap_types::command::Command {
                body:
                    CommandBody::Fetch {
                        macro_or_item_names,
                        ..
                    },
                ..
            },
        )) => Ok(macro_or_item_names.into_static()),
        _ => Err(bad),
    }
}

/// `mailbox` or `(mailbox …)`, as folder names.
fn mailboxes(item: &Item<'_>) -> Result<Vec<FolderName>, Refused> {
    let items = match item.list() {
        Some(items) => items.iter().collect::<Vec<_>>(),
        None => vec![item],
    };
    if items.is_empty() {
        return Err(Refused::Bad("No mailbox named"));
    }
    let mut names = Vec::new();
    for item in items {
        let bytes = item.string().ok_or(Refused::Bad("A mailbox is a string"))?;
        let mailbox = AString::try_from(bytes.into_owned())
            .map(Mailbox::from)
            .map_err(|_| Refused::Bad("Not a mailbox name"))?;
        // A name that is no folder name here names no folder: nothing to tell of it.
        if let Some(name) = crate::utf7::folder_name(&mailbox) {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<NotifyRequest, Refused> {
        let message = format!("{text}\r\n");
        let line = crate::syntax::parse(message.as_bytes()).expect("syntax");
        NotifyRequest::read(&line).expect("a NOTIFY").1
    }

    #[test]
    fn groups_and_events_are_read() {
        let Ok(NotifyRequest::Set { groups, status }) = read(
            "n NOTIFY SET STATUS (SELECTED (MessageNew (UID BODY.PEEK[HEADER]) MessageExpunge)) (SUBTREE (Lists \"My Work\") (MessageNew FlagChange)) (inboxes NONE) (MAILBOXES inbox (MailboxName))",
        ) else {
            panic!("refused");
        };
        assert!(status);
        assert_eq!(groups.len(), 4);
        assert_eq!(groups[0].filter, Filter::Selected);
        assert!(groups[0].events.fetch.is_some() && groups[0].events.expunge);
        let lists = FolderName::parse("Lists/rust").unwrap();
        assert!(groups[1].filter.covers(&lists, false));
        assert!(
            !groups[1]
                .filter
                .covers(&FolderName::parse("Listsx").unwrap(), false)
        );
        assert_eq!(
            groups[1].events.status_items(),
            [
                StatusDataItemName::Messages,
                StatusDataItemName::UidNext,
                StatusDataItemName::UidValidity,
                StatusDataItemName::HighestModSeq
            ]
        );
        assert!(!groups[2].events.new);
        assert!(groups[3].filter.covers(&FolderName::inbox(), false));
        assert!(matches!(read("n NOTIFY none"), Ok(NotifyRequest::None)));
    }

    #[test]
    fn what_is_not_notify_or_not_told_is_refused() {
        for bad in [
            "n NOTIFY",
            "n NOTIFY SET",
            "n NOTIFY SET STATUS",
            "n NOTIFY SET (BOGUS (MessageNew))",
            "n NOTIFY SET (PERSONAL (MessageNew (UID)))",
            "n NOTIFY SET (SELECTED (MessageNew (NOTANITEM)))",
            "n NOTIFY SET (MAILBOXES () (MessageNew))",
            "n NOTIFY SET (PERSONAL)",
        ] {
            assert!(matches!(read(bad), Err(Refused::Bad(_))), "{bad}");
        }
        assert!(matches!(
            read("n NOTIFY SET (PERSONAL (MessageNew AnnotationChange))"),
            Err(Refused::BadEvent)
        ));
    }
}
