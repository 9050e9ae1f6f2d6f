//! Reading a message after DATA: dot-unstuffed, bounded, and refused whole (after it has been
//! read to its end, so the session stays in step) when a line is too long, the message too big,
//! a line ends in a bare CR or LF, or the process's DATA memory budget is spent.

use tokio::io::AsyncBufRead;

use crate::budget::{Arriving, Held};
use crate::reply::{self, Enhanced, Reply};
use tracing::warn;

use crate::session::Smtp;
use crate::wire::{Line, MAX_TEXT_LINE, read_line};

impl Smtp {
    /// Reads to CRLF.CRLF. `Ok(Err(answer))` is a refusal; `Err` a broken connection.
    pub(crate) async fn read_message<R: AsyncBufRead + Unpin>(
        &self,
        reader: &mut R,
    ) -> std::io::Result<Result<Held, Reply>> {
        let mut message = Arriving::new(&self.data_budget);
        let mut over_budget = false;
        let (mut too_big, mut too_long, mut bare) = (false, false, false);
        // CRLF.CRLF ends the message only after a line that itself ended in CRLF.
        let mut after_crlf = true;
        loop {
            let line = match tokio::time::timeout(
                self.settings.idle_timeout,
                read_line(reader, MAX_TEXT_LINE),
            )
            .await
            {
                Ok(line) => line?,
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "idle during DATA",
                    ));
                }
            };
            let text = match line {
                Line::Closed => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "closed during DATA",
                    ));
                }
                Line::TooLong { crlf } => {
                    too_long = true;
                    // Only a CRLF ends a line: after a bare LF, `.` is no end of DATA (the
                    // over-long-line smuggling: the rest would run as a new transaction).
                    after_crlf = crlf;
                    continue;
                }
                Line::BareLineEnding(text) => {
                    bare = true;
                    // A bare CR inside a line that ends in CRLF: the next line may end DATA.
                    after_crlf = !text.ends_with(b"\n");
                    continue;
                }
                Line::Complete(text) => text,
            };
            if after_crlf && text == b"." {
                break;
            }
            after_crlf = true;
            let text = text.strip_prefix(b".").unwrap_or(&text);
            if message.len() + text.len() + 2 > self.settings.max_message_bytes {
                too_big = true;
            }
            if !too_big && !over_budget && !message.push_line(text) {
                over_budget = true;
            }
        }
        if bare {
            warn!("message refused: bare CR or LF");
            let why = "Bare CR or LF in the message: lines must end with CRLF";
            return Ok(Err(Reply::new(550, Enhanced(5, 6, 0), why)));
        }
        if too_long {
            let why = "Line too long (over 1000 octets)";
            return Ok(Err(Reply::new(550, Enhanced(5, 5, 2), why)));
        }
        if too_big {
            return Ok(Err(reply::MESSAGE_TOO_BIG));
        }
        if over_budget {
            warn!("message refused: the DATA memory budget is spent");
            let why = "Insufficient system resources; try again later";
            return Ok(Err(Reply::new(452, Enhanced(4, 3, 1), why)));
        }
        // No mail format carries NUL without BINARYMIME (not offered); readers truncate at it.
        let held = message.into_held();
        if held.message.contains(&0) {
            let why = "NUL octets are not allowed in a message";
            return Ok(Err(Reply::new(550, Enhanced(5, 6, 0), why)));
        }
        Ok(Ok(held))
    }
}
