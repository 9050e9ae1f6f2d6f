//! IMAP's generic syntax (RFC 3501 §9) for the commands imap-codec cannot read: MULTIAPPEND's
//! APPEND of several messages, LIST-EXTENDED's LIST, NOTIFY. A command's arguments are read as
//! a tree of atoms, strings, literals and parenthesised lists, each knowing where its bytes are
//! in the command, so that the parts imap-codec can read (a message with its flags and date, a
//! mailbox name) are handed back to it. The command is whole and within the wire's bound when
//! it comes here; lists nest at most [`MAX_DEPTH`] deep.

use std::borrow::Cow;
use std::ops::Range;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::Command;
use imap_codec::imap_types::core::Tag;
use pushmail_core::mailbox::MAX_MESSAGES_PER_APPEND;

/// Lists within lists, at most.
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// Any run of characters that is not one of the others (atoms, NIL, `\Seen`, `INBOX.%`).
    Atom(&'a [u8]),
    /// A quoted string, its escapes undone.
    Quoted(Vec<u8>),
    /// A literal's data; `binary` for a literal8 (`~{n}`).
    Literal {
        data: &'a [u8],
        binary: bool,
    },
    List(Vec<Item<'a>>),
}

/// A token and where its bytes are in the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item<'a> {
    pub token: Token<'a>,
    pub span: Range<usize>,
}

impl<'a> Item<'a> {
    /// An atom equal to `word`, in any case.
    pub fn is(&self, word: &str) -> bool {
        matches!(self.token, Token::Atom(atom) if atom.eq_ignore_ascii_case(word.as_bytes()))
    }

    /// An astring's bytes (atom, quoted or literal).
    pub fn string(&self) -> Option<Cow<'a, [u8]>> {
        match &self.token {
            Token::Atom(atom) => Some(Cow::Borrowed(atom)),
            Token::Quoted(quoted) => Some(Cow::Owned(quoted.clone())),
            Token::Literal {
                data,
                binary: false,
            } => Some(Cow::Borrowed(data)),
            _ => None,
        }
    }

    pub fn list(&self) -> Option<&[Item<'a>]> {
        match &self.token {
            Token::List(items) => Some(items),
            _ => None,
        }
    }
}

/// A command read with the generic syntax.
#[derive(Debug)]
pub(crate) struct Line<'a> {
    pub tag: &'a [u8],
    /// The command's name, upper case (`UID` folded into it: `UID FETCH`).
    pub name: String,
    pub arguments: Vec<Item<'a>>,
}

/// `message` (a whole command, CRLF and literals included) read with the generic syntax, or
/// `None` if it is not IMAP syntax at all.
pub(crate) fn parse(message: &[u8]) -> Option<Line<'_>> {
    let mut reader = Reader { message, at: 0 };
    let tag = reader.word()?;
    reader.space()?;
    let mut name = String::from_utf8(reader.word()?.to_ascii_uppercase()).ok()?;
    if name == "UID" {
        reader.space()?;
        let rest = String::from_utf8(reader.word()?.to_ascii_uppercase()).ok()?;
        name = format!("UID {rest}");
    }
    let mut arguments = Vec::new();
    loop {
        if reader.rest().starts_with(b"\r\n") && reader.at + 2 == message.len() {
            return Some(Line {
                tag,
                name,
                arguments,
            });
        }
        reader.space()?;
        arguments.push(reader.item(0)?);
    }
}

struct Reader<'a> {
    message: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a [u8] {
        self.message.get(self.at..).unwrap_or_default()
    }

    fn space(&mut self) -> Option<()> {
        self.rest().starts_with(b" ").then(|| self.at += 1)
    }

    /// Characters up to the next special one; at least one. Within `[…]` (a FETCH item's
    /// section, `BODY[HEADER.FIELDS (SUBJECT)]`) spaces and parentheses are the word's.
    fn word(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest();
        let mut depth = 0usize;
        let length = rest
            .iter()
            .position(|&b| {
                match b {
                    b'[' => depth += 1,
                    b']' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                b.is_ascii_control()
                    || (depth == 0 && matches!(b, b' ' | b'(' | b')' | b'{' | b'"'))
            })
            .unwrap_or(rest.len());
        if length == 0 {
            return None;
        }
        self.at += length;
        rest.get(..length)
    }

    fn item(&mut self, depth: usize) -> Option<Item<'a>> {
        let start = self.at;
        let token = match *self.rest().first()? {
            b'(' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.at += 1;
                let mut items = Vec::new();
                while !self.rest().starts_with(b")") {
                    if !items.is_empty() {
                        self.space()?;
                    }
                    items.push(self.item(depth + 1)?);
                }
                self.at += 1;
                Token::List(items)
            }
            b'"' => Token::Quoted(self.quoted()?),
            b'{' => self.literal(false)?,
            b'~' if self.rest().get(1) == Some(&b'{') => {
                self.at += 1;
                self.literal(true)?
            }
            _ => Token::Atom(self.word()?),
        };
        Some(Item {
            token,
            span: start..self.at,
        })
    }

    fn quoted(&mut self) -> Option<Vec<u8>> {
        self.at += 1;
        let mut text = Vec::new();
        loop {
            let byte = *self.rest().first()?;
            self.at += 1;
            match byte {
                b'"' => return Some(text),
                b'\\' => {
                    let escaped = *self.rest().first()?;
                    if escaped != b'"' && escaped != b'\\' {
                        return None;
                    }
                    text.push(escaped);
                    self.at += 1;
                }
                b'\r' | b'\n' => return None,
                other => text.push(other),
            }
        }
    }

    /// `{n}` or `{n+}`, CRLF, then n bytes.
    fn literal(&mut self, binary: bool) -> Option<Token<'a>> {
        let rest = self.rest();
        let close = rest.iter().position(|&b| b == b'}')?;
        let inside = rest.get(1..close)?;
        let digits = inside.strip_suffix(b"+").unwrap_or(inside);
        if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let length: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
        if rest.get(close + 1..close + 3)? != b"\r\n" {
            return None;
        }
        let from = close + 3;
        let data = rest.get(from..from.checked_add(length)?)?;
        self.at += from + length;
        Some(Token::Literal { data, binary })
    }
}

/// MULTIAPPEND (RFC 3502): an APPEND of several messages, each with its flags and date, as
/// the one-message APPENDs imap-codec reads (the mailbox's bytes and each message's as sent,
/// so every rule of the syntax is imap-codec's); `None` if it is not one. Read up to one more
/// message than an APPEND may hold, so that a command of thousands costs no more.
pub(crate) fn appends(
    line: &Line<'_>,
    message: &[u8],
) -> Option<(Tag<'static>, Vec<Command<'static>>)> {
    if line.name != "APPEND" {
        return None;
    }
    let (mailbox, rest) = line.arguments.split_first()?;
    let mut commands = Vec::new();
    let mut start = 0;
    for (at, item) in rest.iter().enumerate() {
        if !matches!(item.token, Token::Literal { .. }) {
            continue;
        }
        let parts = rest.get(start..=at)?;
        // Before the message: at most a flag list and a date.
        if parts.len() > 3 {
            return None;
        }
        // More than one APPEND may hold: one more is enough for the refusal.
        if commands.len() > MAX_MESSAGES_PER_APPEND {
            break;
        }
        let bytes: usize = parts.iter().map(|p| p.span.len() + 1).sum();
        let mut single = Vec::with_capacity(line.tag.len() + mailbox.span.len() + bytes + 16);
        single.extend_from_slice(line.tag);
        single.extend_from_slice(b" APPEND ");
        single.extend_from_slice(message.get(mailbox.span.clone())?);
        for part in parts {
            single.push(b' ');
            single.extend_from_slice(message.get(part.span.clone())?);
        }
        single.extend_from_slice(b"\r\n");
        match CommandCodec::default().decode(&single) {
            Ok(([], command)) => commands.push(command.into_static()),
            _ => return None,
        }
        start = at + 1;
    }
    if (start != rest.len() && commands.len() <= MAX_MESSAGES_PER_APPEND) || commands.is_empty() {
        return None;
    }
    let tag = commands.first()?.tag.clone();
    Some((tag, commands))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::imap_types::command::CommandBody;

    #[test]
    fn a_command_reads_as_a_tree_with_its_spans() {
        let message =
            b"a1 APPEND Drafts (\\Seen $Label) \"24-Mar-2007 23:00:00 +0200\" {5}\r\nhello ~{2+}\r\nhi\r\n";
        let line = parse(message).unwrap();
        assert_eq!((line.tag, line.name.as_str()), (&b"a1"[..], "APPEND"));
        let arguments = &line.arguments;
        assert_eq!(arguments.len(), 5);
        assert_eq!(arguments[0].string().unwrap().as_ref(), b"Drafts");
        let flags = arguments[1].list().unwrap();
        assert!(flags[1].is("$label"));
        assert_eq!(&message[flags[0].span.clone()], b"\\Seen");
        assert_eq!(
            arguments[2].string().unwrap().as_ref(),
            b"24-Mar-2007 23:00:00 +0200"
        );
        assert_eq!(
            arguments[3].token,
            Token::Literal {
                data: b"hello",
                binary: false
            }
        );
        assert_eq!(&message[arguments[3].span.clone()], b"{5}\r\nhello");
        assert_eq!(
            arguments[4].token,
            Token::Literal {
                data: b"hi",
                binary: true
            }
        );
        let line = parse(b"t UID fetch 1:* (FLAGS) (CHANGEDSINCE 5)\r\n").unwrap();
        assert_eq!(line.name, "UID FETCH");
        assert_eq!(line.arguments.len(), 3);
        let line = parse(b"n NOTIFY SET (selected (MessageNew (UID)))\r\n").unwrap();
        assert_eq!(line.arguments[1].list().unwrap().len(), 2);
        let line =
            parse(b"f X (UID BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.10> FLAGS)\r\n").unwrap();
        let items = line.arguments[0].list().unwrap();
        assert_eq!(items.len(), 3);
        assert!(items[1].is("BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.10>"));
        assert_eq!(
            parse(b"q LIST \"a \\\"b\\\\\" x\r\n").unwrap().arguments[0]
                .string()
                .unwrap()
                .as_ref(),
            b"a \"b\\"
        );
    }

    #[test]
    fn a_multiappend_is_one_append_per_message() {
        let message = b"m1 APPEND \"My Drafts\" (\\Draft) {5}\r\nhello \"01-Jan-2020 10:00:00 +0000\" {3+}\r\nbye {2}\r\nhi\r\n";
        let (tag, commands) = appends(&parse(message).unwrap(), message).unwrap();
        assert_eq!(tag.as_ref(), "m1");
        let bodies: Vec<_> = commands
            .iter()
            .map(|c| match &c.body {
                CommandBody::Append {
                    mailbox,
                    flags,
                    date,
                    message,
                } => (
                    format!("{mailbox:?}"),
                    flags.len(),
                    date.is_some(),
                    format!("{message:?}"),
                ),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(bodies.len(), 3);
        assert!(bodies.iter().all(|b| b.0.contains("My Drafts")));
        assert_eq!((bodies[0].1, bodies[0].2), (1, false));
        assert_eq!((bodies[1].1, bodies[1].2), (0, true));
        assert!(bodies[2].3.contains("hi"));
        for bad in [
            &b"m2 APPEND x {2}\r\nhi (\\Seen)\r\n"[..],
            b"m3 APPEND x (\\Seen) (\\Seen) \"01-Jan-2020 10:00:00 +0000\" {2}\r\nhi\r\n",
            b"m4 APPEND x (\\Seen) notadate {2}\r\nhi\r\n",
            b"m5 APPEND x\r\n",
            b"m6 NOOP {2}\r\nhi\r\n",
        ] {
            assert!(
                parse(bad).and_then(|line| appends(&line, bad)).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn what_is_not_the_syntax_is_refused() {
        for bad in [
            &b"a1 APPEND x {5}\r\nhell"[..],
            b"a1 APPEND x {5}\r\nhello",
            b"a1 APPEND x {99999999999}\r\n",
            b"a1 LIST (a\r\n",
            b"a1 LIST a)\r\n",
            b"a1 LIST \"a\r\n",
            b"a1 LIST \"\\a\"\r\n",
            b"a1 LIST  a\r\n",
            b"a1 LIST a \r\n",
            b"a1\r\n",
            b"a1 LIST a\r\nb2 NOOP\r\n",
            b"a1 LIST ((((((((((x))))))))))\r\n",
        ] {
            assert!(parse(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
