//! A selected folder's catch-up when the change log no longer reaches back to what the view
//! saw (the session fell more than the store's window behind): the folder itself is read
//! again, and how it differs from the view is told as the log would have told it.

use pushmail_core::folder::FolderName;
use pushmail_core::types::Address;
use pushmail_store::{Change, ChangeKind, MessagePages};

use crate::reply::{Result, io};
use crate::state::Imap;
use crate::view::Selected;

impl Imap {
    /// The folder as changes to `view`, and the view moved to the change counter read before
    /// the folder (the log is read on from there: a change between the two reads comes again,
    /// and is found already known).
    pub(crate) async fn folder_as_changes(
        &self,
        account: &Address,
        view: &mut Selected,
    ) -> Result<Vec<Change>> {
        let latest = self.store.latest_change(account).await.map_err(io)?;
        let mut now = Vec::new();
        let mut pages = MessagePages::new(self.store.as_ref(), account, &view.folder);
        while let Some(page) = pages.next_states().await.map_err(io)? {
            now.extend(page.iter().map(|state| state.uid));
        }
        let seen = view.uids.iter().map(|(_, uid)| uid);
        let changes = differences(seen, &now, &view.folder, latest);
        view.seen_change = latest;
        Ok(changes)
    }
}

/// How the folder's UIDs `now` differ from those a view had (`seen`), both ascending: each
/// seen and gone as removed, each seen and still there as flags changed (which did is not
/// known, so each is told again), each not seen as added. All under `counter`.
fn differences(
    seen: impl Iterator<Item = u32>,
    now: &[u32],
    folder: &FolderName,
    counter: u64,
) -> Vec<Change> {
    let change = |uid, kind| Change {
        counter,
        folder: folder.clone(),
        uid,
        kind,
    };
    let mut changes = Vec::with_capacity(now.len());
    let mut now = now.iter().copied().peekable();
    for uid in seen {
        while let Some(new) = now.next_if(|&new| new < uid) {
            changes.push(change(new, ChangeKind::Added));
        }
        match now.next_if_eq(&uid) {
            Some(_) => changes.push(change(uid, ChangeKind::Flags)),
            None => changes.push(change(uid, ChangeKind::Expunged)),
        }
    }
    changes.extend(now.map(|new| change(new, ChangeKind::Added)));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_is_told_as_removals_flags_and_arrivals() {
        let inbox = FolderName::parse("INBOX").expect("a name");
        let told: Vec<(u32, ChangeKind)> =
            differences([1, 2, 3, 5].into_iter(), &[2, 4, 5, 6, 7], &inbox, 9)
                .into_iter()
                .map(|change| {
                    assert_eq!((change.counter, &change.folder), (9, &inbox));
                    (change.uid, change.kind)
                })
                .collect();
        use ChangeKind::*;
        assert_eq!(
            told,
            [
                (1, Expunged),
                (2, Flags),
                (3, Expunged),
                (4, Added),
                (5, Flags),
                (6, Added),
                (7, Added)
            ]
        );
        assert!(differences([].into_iter(), &[], &inbox, 1).is_empty());
        assert_eq!(differences([1, 2].into_iter(), &[], &inbox, 1).len(), 2);
    }
}
