//! The UIDs of a selected folder, in order, as runs of consecutive UIDs. A folder's UIDs are
//! mostly consecutive (they are handed out one after another; only EXPUNGE makes gaps), so an
//! idle session over a folder of 200 messages keeps one run of 8 bytes rather than 800 bytes.
//! Message sequence number n is the n-th UID.

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

    pub fn to_vec(&self) -> Vec<u32> {
        self.iter().map(|(_, uid)| uid).collect()
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
    use super::UidMap;

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
    fn two_hundred_consecutive_uids_are_one_run() {
        let map = UidMap::from_sorted(1..=200);
        assert_eq!(map.runs.len(), 1);
        assert_eq!(map.iter().nth(199), Some((200, 200)));
    }
}
