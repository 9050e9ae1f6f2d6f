//! The UIDs of a selected folder, in order, as runs of consecutive UIDs. A folder's UIDs are
//! mostly consecutive (they are handed out one after another; only EXPUNGE makes gaps), so an
//! idle session over a folder of 200 messages keeps one run of 8 bytes rather than 800 bytes.
//! Message sequence number n is the n-th UID.

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct UidMap {
    /// (first UID, how many consecutive UIDs), ascending, never empty runs.
    runs: Vec<(u32, u32)>,
    len: u32,
}

impl UidMap {
    /// From UIDs in ascending order.
    pub fn from_sorted(uids: impl IntoIterator<Item = u32>) -> Self {
        let mut map = Self::default();
        for uid in uids {
            map.push(uid);
        }
        map.runs.shrink_to_fit();
        map
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn last(&self) -> Option<u32> {
        self.runs.last().map(|&(first, count)| first + count - 1)
    }

    /// Appends a UID above every one in the map (a new message).
    pub fn push(&mut self, uid: u32) {
        if self.last().is_some_and(|last| uid <= last) {
            return;
        }
        match self.runs.last_mut() {
            Some((first, count)) if *first + *count == uid => *count += 1,
            _ => self.runs.push((uid, 1)),
        }
        self.len += 1;
    }

    /// The UID at sequence number `seq` (from 1).
    pub fn uid_at(&self, seq: u32) -> Option<u32> {
        let mut before = 0;
        for &(first, count) in &self.runs {
            if seq > before && seq <= before + count {
                return Some(first + (seq - before - 1));
            }
            before += count;
        }
        None
    }

    /// The sequence number of a UID in the map.
    pub fn sequence_of(&self, uid: u32) -> Option<u32> {
        let mut before = 0;
        for &(first, count) in &self.runs {
            if uid < first {
                return None;
            }
            if uid < first + count {
                return Some(before + (uid - first) + 1);
            }
            before += count;
        }
        None
    }

    /// Removes the message at sequence number `seq`; later ones move down by one.
    pub fn remove_sequence(&mut self, seq: u32) -> Option<u32> {
        let uid = self.uid_at(seq)?;
        let index = self
            .runs
            .iter()
            .position(|&(first, count)| uid >= first && uid < first + count)?;
        let (first, count) = self.runs[index];
        let tail = (uid + 1, first + count - uid - 1);
        let head = (first, uid - first);
        match (head.1, tail.1) {
            (0, 0) => {
                self.runs.remove(index);
            }
            (0, _) => self.runs[index] = tail,
            (_, 0) => self.runs[index] = head,
            _ => {
                self.runs[index] = head;
                self.runs.insert(index + 1, tail);
            }
        }
        self.len -= 1;
        Some(uid)
    }

    /// (sequence number, UID) of every message, in order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.runs
            .iter()
            .flat_map(|&(first, count)| first..first + count)
            .zip(1u32..)
            .map(|(uid, seq)| (seq, uid))
    }

    /// How many UIDs of the map lie in `range`, a run at a time.
    pub fn count_in(&self, range: &std::ops::RangeInclusive<u32>) -> u32 {
        self.runs
            .iter()
            .map(|&(first, count)| {
                let last = first + count - 1;
                let (from, to) = (first.max(*range.start()), last.min(*range.end()));
                if from > to { 0 } else { to - from + 1 }
            })
            .sum()
    }

    /// The UIDs of `ranges` not in the map, as ranges: a run of the map at a time, so neither
    /// a large set nor a large folder is walked one UID at a time.
    pub fn absent_in(&self, ranges: &Ranges) -> Vec<(u32, u32)> {
        let mut absent = Vec::new();
        let mut runs = self.runs.iter().peekable();
        for &(lo, hi) in &ranges.0 {
            let mut from = lo;
            while from <= hi {
                // Runs wholly below `from` no longer matter.
                while runs
                    .next_if(|&&(first, count)| first + (count - 1) < from)
                    .is_some()
                {}
                match runs.peek() {
                    Some(&&(first, count)) if first <= hi => {
                        if first > from {
                            absent.push((from, first - 1));
                        }
                        match (first + (count - 1)).checked_add(1) {
                            Some(next) => from = next,
                            None => break,
                        }
                    }
                    _ => {
                        absent.push((from, hi));
                        break;
                    }
                }
            }
        }
        absent
    }

    pub fn to_vec(&self) -> Vec<u32> {
        self.iter().map(|(_, uid)| uid).collect()
    }
}

/// A sequence set as sorted, merged ranges, `*` standing for `largest`; membership by binary
/// search, so no set (`1:4294967295` say) is ever expanded.
pub(crate) struct Ranges(Vec<(u32, u32)>);

impl Ranges {
    pub fn new(set: &SequenceSet, largest: u32) -> Self {
        let value = |v: &SeqOrUid| match v {
            SeqOrUid::Value(n) => n.get(),
            SeqOrUid::Asterisk => largest,
        };
        let mut ranges: Vec<(u32, u32)> = set
            .0
            .as_ref()
            .iter()
            .map(|sequence| match sequence {
                Sequence::Single(v) => (value(v), value(v)),
                Sequence::Range(a, b) => {
                    let (a, b) = (value(a), value(b));
                    (a.min(b), a.max(b))
                }
            })
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some((_, end)) if lo <= end.saturating_add(1) => *end = (*end).max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        Self(merged)
    }

    /// The ranges cut to `1..=largest`.
    pub fn up_to(mut self, largest: u32) -> Self {
        self.0.retain(|&(lo, _)| lo <= largest);
        if let Some((_, hi)) = self.0.last_mut() {
            *hi = (*hi).min(largest);
        }
        self
    }

    pub fn contains(&self, n: u32) -> bool {
        let i = self.0.partition_point(|&(lo, _)| lo <= n);
        i > 0 && n <= self.0[i - 1].1
    }
}

/// A UID set as IMAP writes it: ascending runs as `a:b`, joined by commas.
pub(crate) fn uid_set(uids: &[u32]) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &uid in uids {
        match runs.last_mut() {
            Some((_, end)) if uid == end.saturating_add(1) => *end = uid,
            _ => runs.push((uid, uid)),
        }
    }
    run_set(&runs)
}

/// Ascending `(first, last)` runs as IMAP writes a set.
pub(crate) fn run_set(runs: &[(u32, u32)]) -> String {
    runs.iter()
        .map(|&(start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}:{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_map_sequence_numbers_both_ways() {
        let mut map = UidMap::from_sorted([1, 2, 3, 7, 8, 20]);
        assert_eq!((map.len(), map.last()), (6, Some(20)));
        assert_eq!(map.runs.len(), 3);
        assert_eq!(map.uid_at(4), Some(7));
        assert_eq!(map.uid_at(7), None);
        assert_eq!(map.sequence_of(8), Some(5));
        assert_eq!(map.sequence_of(5), None);
        assert_eq!(map.remove_sequence(2), Some(2));
        assert_eq!(map.to_vec(), [1, 3, 7, 8, 20]);
        assert_eq!(map.sequence_of(20), Some(5));
        map.push(21);
        map.push(21);
        assert_eq!(map.to_vec(), [1, 3, 7, 8, 20, 21]);
        for _ in 0..6 {
            map.remove_sequence(1);
        }
        assert_eq!((map.len(), map.last(), map.runs.len()), (0, None, 0));
    }

    #[test]
    fn absent_uids_come_as_ranges_however_large_the_set() {
        let map = UidMap::from_sorted([3, 4, 5, 9, 12, 13]);
        let set = |text: &str| -> SequenceSet { text.try_into().unwrap() };
        let absent =
            |text: &str, largest| map.absent_in(&Ranges::new(&set(text), largest).up_to(largest));
        assert_eq!(absent("1:*", 15), [(1, 2), (6, 8), (10, 11), (14, 15)]);
        assert_eq!(run_set(&absent("1:*", 15)), "1:2,6:8,10:11,14:15");
        assert_eq!(absent("4:5,9", 15), []);
        assert_eq!(absent("5:10", 15), [(6, 8), (10, 10)]);
        assert_eq!(
            absent("1:4294967295", 4_000_000_000),
            [(1, 2), (6, 8), (10, 11), (14, 4_000_000_000)]
        );
        assert_eq!(
            UidMap::default().absent_in(&Ranges::new(&set("2,7:8"), 9)),
            [(2, 2), (7, 8)]
        );
        let full = UidMap::from_sorted([u32::MAX - 1, u32::MAX]);
        assert_eq!(
            full.absent_in(&Ranges::new(&set("4294967290:*"), u32::MAX)),
            [(u32::MAX - 5, u32::MAX - 2)]
        );
    }

    #[test]
    fn two_hundred_consecutive_uids_are_one_run() {
        let map = UidMap::from_sorted(1..=200);
        assert_eq!(map.runs.len(), 1);
        assert_eq!(map.iter().nth(199), Some((200, 200)));
    }
}
