//! `\Recent` as one session holds it (RFC 3501 §2.3.2): the UIDs this session was the first to
//! be told of. The store keeps one mark per folder, raised by each claim, so that a message is
//! recent to one session only; the session keeps the runs of UIDs its claims took.

use std::ops::RangeInclusive;

use crate::uids::UidMap;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Recent {
    /// Claimed runs, ascending and apart (claims only ever go up).
    runs: Vec<RangeInclusive<u32>>,
}

impl Recent {
    /// Adds what a claim took; an empty claim adds nothing.
    pub fn add(&mut self, claimed: RangeInclusive<u32>) {
        if claimed.is_empty() {
            return;
        }
        match self.runs.last_mut() {
            Some(last) if last.end().saturating_add(1) >= *claimed.start() => {
                *last = *last.start()..=(*last.end()).max(*claimed.end());
            }
            _ => self.runs.push(claimed),
        }
    }

    pub fn contains(&self, uid: u32) -> bool {
        let at = self.runs.partition_point(|run| *run.end() < uid);
        self.runs.get(at).is_some_and(|run| run.contains(&uid))
    }

    /// How many messages of the view are recent to this session (`* N RECENT`).
    pub fn count_in(&self, uids: &UidMap) -> u32 {
        self.runs.iter().map(|run| uids.count_in(run)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushmail_core::mailbox::Folder;

    #[test]
    fn claims_merge_and_an_empty_one_adds_nothing() {
        let mut recent = Recent::default();
        recent.add(Folder::recent_claimed(5, 5));
        assert!(!recent.contains(4) && !recent.contains(5));
        recent.add(3..=5);
        recent.add(6..=8);
        recent.add(20..=20);
        assert_eq!(recent.runs, vec![3..=8, 20..=20]);
        assert!(!recent.contains(2) && recent.contains(3) && recent.contains(8));
        assert!(!recent.contains(9) && recent.contains(20) && !recent.contains(21));
        let view = UidMap::from_sorted([1, 2, 4, 7, 9, 20]);
        assert_eq!(recent.count_in(&view), 3);
    }
}
