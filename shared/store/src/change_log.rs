//! Each account's change log: what changed in its mailboxes, numbered in the order the changes
//! were made, so that sessions (IMAP's catch-up after every command, IDLE, NOTIFY), on this
//! machine or another, learn what changed since they last looked. The log keeps a window of
//! the newest changes, so that a client that changes flags in a loop cannot grow it without
//! bound; a reader that fell further behind is told the log no longer reaches back to it.

use std::num::NonZeroU64;

use pushmail_core::folder::FolderName;
use serde::{Deserialize, Serialize};

/// One change of an account's mailboxes, numbered in the order they were made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub counter: u64,
    pub folder: FolderName,
    pub uid: u32,
    pub kind: ChangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    /// The message's flags changed.
    Flags,
    /// The message was removed (IMAP EXPUNGE or MOVE, or its folder deleted).
    Expunged,
}

impl ChangeKind {
    /// The name the DynamoDB change items carry.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Flags => "flags",
            Self::Expunged => "expunged",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Added, Self::Flags, Self::Expunged]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// How much of each account's change log a store keeps: the newest `keep` changes, and up to an
/// eighth more, since older ones are dropped in steps (one removal per change on average, in
/// batches, not one with every write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeWindow {
    keep: NonZeroU64,
}

impl ChangeWindow {
    /// Ten thousand changes: about a megabyte an account at most. A session reads the log after
    /// every command and at once when IDLE or NOTIFY hears of a change, so only a session
    /// that stalls while thousands of changes are made ever falls out of it; one that does
    /// reads the folder again, which costs what reading that many changes would.
    pub const DEFAULT: Self = Self {
        keep: NonZeroU64::new(10_000).expect("not zero"),
    };

    pub fn keeping(keep: NonZeroU64) -> Self {
        Self { keep }
    }

    pub fn keep(self) -> u64 {
        self.keep.get()
    }

    /// After a write that logged the changes `first..=last`: the counter through which the
    /// log is to be dropped, if this write is the one whose turn it is (its changes reached a
    /// multiple of the step). Everything at or below it goes, so a drop that failed is made
    /// good by the next.
    pub fn drop_through(self, first: u64, last: u64) -> Option<u64> {
        let keep = self.keep.get();
        let step = (keep / 8).max(1);
        let reached_step = last / step > first.saturating_sub(1) / step;
        (reached_step && last > keep).then(|| last - keep)
    }
}

impl Default for ChangeWindow {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a reader of the change log finds after the counter it had seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangesAfter {
    /// The changes after it, oldest first; none if nothing changed since.
    Read(Vec<Change>),
    /// The log no longer holds the change right after it: the reader fell more than the
    /// window behind, and must read the mailbox itself again.
    Lost,
}

impl ChangesAfter {
    /// `changes`, read after counter `after`. Counters have no holes (each write raises the
    /// account's counter by the changes it logs, in the same write), so the first change read
    /// is `after + 1` unless the ones between were dropped.
    pub fn of(after: u64, changes: Vec<Change>) -> Self {
        match changes.first() {
            Some(first) if Some(first.counter) != after.checked_add(1) => Self::Lost,
            _ => Self::Read(changes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(keep: u64) -> ChangeWindow {
        ChangeWindow::keeping(NonZeroU64::new(keep).expect("not zero"))
    }

    #[test]
    fn the_log_is_dropped_once_a_step_and_keeps_the_window() {
        let w = window(16);
        // Nothing goes while the log is within the window.
        assert_eq!(w.drop_through(1, 16), None);
        // Steps of two: every second change drops all but the newest sixteen.
        assert_eq!(w.drop_through(17, 17), None);
        assert_eq!(w.drop_through(18, 18), Some(2));
        assert_eq!(w.drop_through(19, 19), None);
        // A write of many changes that passes a step drops once, after its last.
        assert_eq!(w.drop_through(19, 40), Some(24));
        // One change a write, ten thousand writes: the log never holds more than keep + step.
        let (w, mut oldest) = (window(100), 1);
        for last in 1..=10_000u64 {
            if let Some(through) = w.drop_through(last, last) {
                oldest = through + 1;
            }
            assert!(last - oldest < 100 + 12, "{last}: {oldest}");
        }
    }

    #[test]
    fn a_window_of_one_still_keeps_the_newest_change() {
        let w = window(1);
        assert_eq!(w.drop_through(1, 1), None);
        assert_eq!(w.drop_through(2, 2), Some(1));
        assert_eq!(w.drop_through(3, 9), Some(8));
    }

    fn change(counter: u64) -> Change {
        Change {
            counter,
            folder: FolderName::parse("INBOX").expect("a name"),
            uid: 1,
            kind: ChangeKind::Flags,
        }
    }

    #[test]
    fn a_hole_after_the_reader_means_the_log_was_lost() {
        assert_eq!(ChangesAfter::of(7, vec![]), ChangesAfter::Read(vec![]));
        assert_eq!(
            ChangesAfter::of(7, vec![change(8), change(9)]),
            ChangesAfter::Read(vec![change(8), change(9)])
        );
        assert_eq!(ChangesAfter::of(7, vec![change(9)]), ChangesAfter::Lost);
        assert_eq!(
            ChangesAfter::of(0, vec![change(1)]),
            ChangesAfter::Read(vec![change(1)])
        );
        assert_eq!(
            ChangesAfter::of(u64::MAX, vec![change(1)]),
            ChangesAfter::Lost
        );
    }
}
