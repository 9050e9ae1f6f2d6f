//! SMTP replies (RFC 5321 §4.2) as values: a code, the enhanced status code (RFC 3463; the
//! listeners offer ENHANCEDSTATUSCODES) where one applies, and the text. Written to the wire,
//! counted and logged in one place each; the replies said in more than one place are named here.

use std::borrow::Cow;
use std::fmt;

/// An enhanced status code, `class.subject.detail` (RFC 3463 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enhanced(pub u8, pub u16, pub u16);

impl fmt::Display for Enhanced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One reply, of one line or (EHLO's) several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    enhanced: Option<Enhanced>,
    /// The text; `\n` separates the lines of a multiline reply.
    text: Cow<'static, str>,
}

impl Reply {
    /// A reply in the server's own fixed words.
    pub const fn new(code: u16, enhanced: Enhanced, text: &'static str) -> Self {
        Self {
            code,
            enhanced: Some(enhanced),
            text: Cow::Borrowed(text),
        }
    }

    /// A reply whose text is made for the occasion (it names an address, an id, a limit).
    pub fn formatted(code: u16, enhanced: Enhanced, text: String) -> Self {
        Self {
            code,
            enhanced: Some(enhanced),
            text: Cow::Owned(text),
        }
    }

    /// A reply with no enhanced code: the greeting, 354, HELO's and AUTH's challenges
    /// (RFC 2034 §3 asks for none there), or a peer's reply as read.
    pub fn bare(code: u16, text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            enhanced: None,
            text: text.into(),
        }
    }

    /// A multiline reply (EHLO's): a line each, without an enhanced code.
    pub fn lines(code: u16, lines: &[String]) -> Self {
        Self::bare(code, lines.join("\n"))
    }

    pub fn code(&self) -> u16 {
        self.code
    }

    /// A refusal, temporary (4xx) or permanent (5xx): these count toward a session's errors.
    pub fn is_error(&self) -> bool {
        (400..600).contains(&self.code)
    }

    /// The code and enhanced code ("550 5.1.1"): a reply's kind without its words, for metrics.
    pub fn kind(&self) -> String {
        match self.enhanced {
            Some(enhanced) => format!("{} {enhanced}", self.code),
            None => self.code.to_string(),
        }
    }

    /// The reply as sent: each line `code-` but the last `code `, the enhanced code on each
    /// (RFC 2034 §4), CRLF-ended. A CR or LF in the text cannot start a line of its own.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut wire = Vec::with_capacity(self.text.len() + 16);
        let mut lines = self.text.split('\n').peekable();
        while let Some(line) = lines.next() {
            let separator = if lines.peek().is_some() { '-' } else { ' ' };
            wire.extend_from_slice(format!("{}{separator}", self.code).as_bytes());
            if let Some(enhanced) = self.enhanced {
                wire.extend_from_slice(format!("{enhanced} ").as_bytes());
            }
            wire.extend(line.bytes().filter(|&b| b != b'\r'));
            wire.extend_from_slice(b"\r\n");
        }
        wire
    }
}

/// One line, as a log or a bounce's diagnostic would quote it.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(enhanced) = self.enhanced {
            write!(f, " {enhanced}")?;
        }
        write!(f, " {}", self.text.replace('\n', " "))
    }
}

pub(crate) const OK: Reply = Reply::new(250, Enhanced(2, 0, 0), "OK");
pub(crate) const MAIL_FIRST: Reply = Reply::new(503, Enhanced(5, 5, 1), "MAIL first");
pub(crate) const RECIPIENT_OK: Reply = Reply::new(250, Enhanced(2, 1, 5), "Recipient OK");
pub(crate) const NO_SUCH_USER: Reply = Reply::new(550, Enhanced(5, 1, 1), "No such user here");
pub(crate) const TRY_LATER: Reply =
    Reply::new(451, Enhanced(4, 3, 0), "Temporary failure; try again later");
pub(crate) const NOT_STORED: Reply =
    Reply::new(451, Enhanced(4, 3, 0), "Not stored; try again later");
pub(crate) const MESSAGE_TOO_BIG: Reply = Reply::new(552, Enhanced(5, 3, 4), "Message too big");
pub(crate) const LINE_TOO_LONG: Reply = Reply::new(500, Enhanced(5, 5, 2), "Line too long");
pub(crate) const BARE_LINE_ENDING: Reply =
    Reply::new(500, Enhanced(5, 5, 2), "Lines must end with CRLF; closing");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_one_line_with_its_enhanced_code() {
        assert_eq!(NO_SUCH_USER.to_wire(), b"550 5.1.1 No such user here\r\n");
        assert_eq!(NO_SUCH_USER.to_string(), "550 5.1.1 No such user here");
        assert_eq!(NO_SUCH_USER.kind(), "550 5.1.1");
        assert!(NO_SUCH_USER.is_error());
        assert!(!OK.is_error());
        assert_eq!(Reply::bare(354, "Go ahead").to_wire(), b"354 Go ahead\r\n");
        assert_eq!(Reply::bare(354, "Go ahead").kind(), "354");
    }

    #[test]
    fn a_multiline_reply_continues_each_line_but_the_last() {
        let ehlo = Reply::lines(
            250,
            &["mx.test".into(), "PIPELINING".into(), "SIZE 10".into()],
        );
        assert_eq!(
            ehlo.to_wire(),
            b"250-mx.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
        let said = Reply::formatted(550, Enhanced(5, 7, 1), "one\ntwo".into());
        assert_eq!(said.to_wire(), b"550-5.7.1 one\r\n550 5.7.1 two\r\n");
    }

    #[test]
    fn a_carriage_return_in_the_text_cannot_end_a_line() {
        let reply = Reply::formatted(553, Enhanced(5, 7, 1), "a\rb".into());
        assert_eq!(reply.to_wire(), b"553 5.7.1 ab\r\n");
    }
}
