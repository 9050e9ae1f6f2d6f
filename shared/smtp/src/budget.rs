//! The memory SMTP DATA may hold across all sessions: a budget shared by the listeners.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Messages are held in memory in units of this many octets, each a permit of the process's
/// DATA budget.
pub(crate) const BUDGET_UNIT: usize = 64 * 1024;

/// The bytes of every message being received at once, across sessions and both roles: a
/// budget in [`BUDGET_UNIT`]s. A message takes a unit at a time as it arrives; one that
/// finds the budget spent is read to its end without being kept, and answered 452 4.3.1 (the
/// sender tries again later). No reader waits for another, so none can deadlock; whatever
/// peers send, the messages held in memory stay within the budget.
#[derive(Clone)]
pub struct DataBudget(Arc<Semaphore>);

impl DataBudget {
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new((bytes / BUDGET_UNIT).max(1))))
    }

    /// One more unit, if any is left.
    fn take_unit(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

/// A message as it arrives: in chunks of one budget unit each, each taken from the budget when
/// the one before is full. The message never moves as it grows: no reallocation leaves freed
/// copies behind for the allocator to keep, and what it holds is exactly what the budget counts.
pub(crate) struct Arriving {
    budget: DataBudget,
    chunks: Vec<Vec<u8>>,
    len: usize,
    held: Option<OwnedSemaphorePermit>,
}

impl Arriving {
    pub fn new(budget: &DataBudget) -> Self {
        Self {
            budget: budget.clone(),
            chunks: Vec::new(),
            len: 0,
            held: None,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends `text` and CRLF; false, with everything held let go, if the budget is spent.
    #[must_use]
    pub fn push_line(&mut self, text: &[u8]) -> bool {
        self.push(text) && self.push(b"\r\n")
    }

    /// Appends `bytes`; false, with everything held let go, if the budget is spent.
    #[must_use]
    fn push(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            let room = self
                .chunks
                .last()
                .map_or(0, |chunk| BUDGET_UNIT - chunk.len());
            if room == 0 {
                let Some(unit) = self.budget.take_unit() else {
                    *self = Self::new(&self.budget);
                    return false;
                };
                match &mut self.held {
                    Some(held) => held.merge(unit),
                    None => self.held = Some(unit),
                }
                self.chunks.push(Vec::with_capacity(BUDGET_UNIT));
                continue;
            }
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            if let Some(chunk) = self.chunks.last_mut() {
                chunk.extend_from_slice(now);
            }
            self.len += now.len();
            bytes = rest;
        }
        true
    }

    /// The whole message, in one buffer, with its part of the budget: each chunk is let go as
    /// it is copied, so the two copies never coexist whole.
    pub fn into_held(mut self) -> Held {
        let message = if self.chunks.len() == 1 {
            self.chunks.pop().unwrap_or_default()
        } else {
            let mut message = Vec::with_capacity(self.len);
            for chunk in self.chunks.drain(..) {
                message.extend_from_slice(&chunk);
            }
            message
        };
        Held {
            message,
            _budget: self.held,
        }
    }
}

/// A message as read, with the part of the budget it holds until it is stored.
pub(crate) struct Held {
    pub message: Vec<u8>,
    pub _budget: Option<OwnedSemaphorePermit>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_across_chunks_comes_out_whole_and_charged_a_unit_a_chunk() {
        let budget = DataBudget::new(4 * BUDGET_UNIT);
        let mut arriving = Arriving::new(&budget);
        let line: Vec<u8> = (0..999u32).map(|n| b'a' + (n % 26) as u8).collect();
        let mut expected = Vec::new();
        while expected.len() <= 3 * BUDGET_UNIT {
            assert!(arriving.push_line(&line));
            expected.extend_from_slice(&line);
            expected.extend_from_slice(b"\r\n");
        }
        assert_eq!(arriving.len(), expected.len());
        assert_eq!(budget.0.available_permits(), 0, "four chunks, four units");
        let held = arriving.into_held();
        assert_eq!(held.message, expected);
        drop(held);
        assert_eq!(budget.0.available_permits(), 4);
    }

    #[test]
    fn a_message_past_the_budget_lets_all_it_held_go() {
        let budget = DataBudget::new(2 * BUDGET_UNIT);
        let mut other = Arriving::new(&budget);
        assert!(other.push_line(b"x"));
        let mut arriving = Arriving::new(&budget);
        assert!(arriving.push_line(&[b'y'; BUDGET_UNIT - 2]));
        assert!(!arriving.push_line(b"z"), "a third unit is not there");
        assert_eq!(arriving.len(), 0);
        assert_eq!(budget.0.available_permits(), 1);
        drop(other);
        assert_eq!(budget.0.available_permits(), 2);
    }
}
