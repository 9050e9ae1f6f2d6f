//! Reading a message after DATA: dot-unstuffed, bounded, and refused whole (after it has been
//! read to its end, so the session stays in step) when a line is too long, the message too big,
//! a line ends in a bare CR or LF, or the process's DATA memory budget is spent.

use tokio::io::AsyncBufRead;
use tokio::sync::OwnedSemaphorePermit;

use crate::budget::{BUDGET_UNIT, Held};
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
        let mut message = Vec::new();
        let mut held: Option<OwnedSemaphorePermit> = None;
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
            let needed = message.len() + text.len() + 2;
            if !too_big
                && !over_budget
                && needed > message.capacity()
                && self.grow(&mut message, &mut held, needed).is_none()
            {
                over_budget = true;
                message = Vec::new();
                held = None;
            }
            if !too_big && !over_budget {
                message.extend_from_slice(text);
                message.extend_from_slice(b"\r\n");
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
        if message.contains(&0) {
            let why = "NUL octets are not allowed in a message";
            return Ok(Err(Reply::new(550, Enhanced(5, 6, 0), why)));
        }
        Ok(Ok(Held {
            message,
            _budget: held,
        }))
    }
}

impl Smtp {
    /// Room in `message` for `needed` octets, charged to the budget: the buffer grows by half at
    /// a time (by what is needed alone once the budget is nearly spent), and the budget is
    /// charged for its capacity, not its length, so what the process holds is what it counts.
    fn grow(
        &self,
        message: &mut Vec<u8>,
        held: &mut Option<OwnedSemaphorePermit>,
        needed: usize,
    ) -> Option<()> {
        let in_units = |octets: usize| octets.div_ceil(BUDGET_UNIT);
        let generous = needed
            .max(message.capacity() + message.capacity() / 2)
            .min(self.settings.max_message_bytes.max(needed));
        let taken = [generous, needed].into_iter().find_map(|room| {
            let more = in_units(room).saturating_sub(units(held));
            let units = self.data_budget.take_units(more)?;
            Some((in_units(room) * BUDGET_UNIT, units))
        });
        let (room, units) = taken?;
        match held {
            Some(held) => held.merge(units),
            None => *held = Some(units),
        }
        message.reserve_exact(room - message.len());
        Some(())
    }
}

/// The budget's units held.
fn units(held: &Option<OwnedSemaphorePermit>) -> usize {
    held.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
}
