use chrono::{TimeZone, Utc};
use pushmail_core::mailbox::{Envelope, MessageMeta, MessageState};

use super::*;

fn meta(flags: &[&str], seconds: i64, nanos: u32) -> MessageMeta {
    let raw = b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: a line\nwith \"quotes\" \\ and m1 3 4\r\nDate: Thu, 03 Dec 2026 10:11:12 +0100\r\n\r\nbody\r\n";
    MessageMeta {
        uid: 4_000_000_000,
        flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        internal_date: Utc.timestamp_opt(seconds, nanos).single().expect("date"),
        size: 1 << 40,
        modseq: u64::MAX - 1,
        envelope: Envelope::parse(raw),
    }
}

fn state(meta: &MessageMeta) -> MessageState {
    meta.clone().into_state()
}

#[test]
fn a_record_reads_back_as_written_state_alone_or_whole() {
    for meta in [
        meta(
            &["\\Seen", "\\Deleted", "$Label1", "ünïcode"],
            1_764_932_000,
            532_298_699,
        ),
        meta(&[], 0, 0),
        // Before 1970 (an APPEND may give any date).
        meta(&["\\Flagged"], -2_208_988_800, 1),
    ] {
        let record = message_record(&meta).expect("encoded");
        assert!(record.starts_with("m1 "), "{record}");
        assert_eq!(MessageMeta::from_record(&record).expect("meta"), meta);
        assert_eq!(
            MessageState::from_record(&record).expect("state"),
            state(&meta)
        );
        // Without its flags: the rest as written, the flags left empty.
        let unflagged = Unflagged::from_record(&record).expect("state").0;
        assert_eq!(
            unflagged,
            MessageState {
                flags: Vec::new(),
                ..state(&meta)
            }
        );
    }
}

#[test]
fn an_older_json_record_still_reads_and_is_rewritten_in_the_new_form() {
    let meta = meta(&["\\Seen", "$Junk"], 1_764_932_000, 7);
    let older = serde_json::to_string(&meta).expect("json");
    assert_eq!(MessageMeta::from_record(&older).expect("meta"), meta);
    assert_eq!(
        MessageState::from_record(&older).expect("state"),
        state(&meta)
    );
    let mut changed = state(&meta);
    changed.flags = vec!["\\Answered".into()];
    changed.modseq += 1;
    let rewritten = restated(&older, &changed).expect("restated");
    assert!(rewritten.starts_with("m1 "), "{rewritten}");
    assert_eq!(
        MessageState::from_record(&rewritten).expect("state"),
        changed
    );
    let whole = MessageMeta::from_record(&rewritten).expect("meta");
    assert_eq!(whole.envelope, meta.envelope);
}

#[test]
fn a_changed_state_keeps_the_envelope_text_as_it_was() {
    let meta = meta(&["\\Seen"], 1_764_932_000, 0);
    let record = message_record(&meta).expect("encoded");
    let mut changed = state(&meta);
    changed.flags.push("\\Deleted".into());
    let rewritten = restated(&record, &changed).expect("restated");
    let envelope = |record: &str| record.split_once('\n').map(|(_, e)| e.to_owned());
    assert_eq!(envelope(&rewritten), envelope(&record));
    assert_eq!(
        MessageState::from_record(&rewritten).expect("state"),
        changed
    );
}

#[test]
fn flags_the_line_cannot_hold_are_stored_as_json() {
    for flags in [&["a b"][..], &["a\nb"], &[""]] {
        let meta = meta(flags, 1_764_932_000, 0);
        let record = message_record(&meta).expect("encoded");
        assert!(record.starts_with('{'), "{record}");
        assert_eq!(MessageMeta::from_record(&record).expect("meta"), meta);
        let rewritten = restated(&record, &state(&meta)).expect("restated");
        assert_eq!(MessageMeta::from_record(&rewritten).expect("meta"), meta);
    }
}

#[test]
fn a_damaged_record_is_an_error_not_a_panic() {
    for raw in [
        "m1 ",
        "m1 1 2 3 4 5",
        "m1 1 2 3 4\n{}",
        "m1 x 2 3 4 5\n{}",
        "m1 -1 2 3 4 5\n{}",
        "m1 1 -2 3 4 5\n{}",
        "m1 1 2 3 4 4294967296\n{}",
        "m1 1 2 3 99999999999999999 5\n{}",
        "m1 1 2 3 4 5 \\Seen\nnot json",
        "{not json",
        "",
    ] {
        assert!(MessageMeta::from_record(raw).is_err(), "{raw:?}");
    }
    // The state alone does not need the envelope.
    assert!(MessageState::from_record("m1 1 2 3 4 5 \\Seen\nnot json").is_ok());
}

/// A store holding a message in the older form: read, changed and expunged as any other, and
/// rewritten in the new form by its first change.
#[tokio::test]
async fn a_store_with_older_records_reads_changes_and_expunges_them() {
    use crate::mailbox::{FlagUpdate, MailboxStore};
    use pushmail_core::folder::FolderName;
    use pushmail_core::mailbox::FlagChange;
    use pushmail_core::types::Address;

    use super::super::mailbox::{MESSAGES, message_key};
    use super::super::{EmbeddedStore, ReadableDatabase};

    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(&dir.path().join("store.redb")).expect("store");
    let account = Address::parse("older@example.com").expect("address");
    let inbox = FolderName::parse("INBOX").expect("folder");
    store
        .create_folder(&account, &inbox, Utc::now())
        .await
        .expect("folder");
    let mut older = meta(&["$Old"], 1_764_932_000, 0);
    older.uid = 1;
    let key = message_key(&account, &inbox, 1);
    let json = serde_json::to_string(&older).expect("json");
    store
        .write(move |txn| {
            txn.open_table(MESSAGES)?
                .insert(key.as_str(), json.as_str())?;
            Ok(())
        })
        .await
        .expect("older record");

    let states = store.message_states(&account, &inbox, 0, 10).await;
    assert_eq!(states.expect("states"), vec![state(&older)]);
    let metas = store
        .messages(&account, &inbox, 0, 10)
        .await
        .expect("metas");
    assert_eq!(metas, vec![older.clone()]);

    let deleted = FlagChange::Add(vec!["\\Deleted".into()]);
    let updates = store
        .change_flags_of(&account, &inbox, &[1], &deleted, None)
        .await
        .expect("flags");
    assert!(
        matches!(&updates[..], [FlagUpdate::Applied { flags, .. }] if flags.len() == 2),
        "{updates:?}"
    );
    let key = message_key(&account, &inbox, 1);
    let read = store.db.begin_read().expect("read");
    let table = read.open_table(MESSAGES).expect("table");
    let record = table.get(key.as_str()).expect("get").expect("record");
    assert!(record.value().starts_with("m1 1 "), "{}", record.value());
    let metas = store
        .messages(&account, &inbox, 0, 10)
        .await
        .expect("metas");
    assert_eq!(metas.first().map(|m| &m.envelope), Some(&older.envelope));

    let removed = store.expunge(&account, &inbox, &[1], true).await;
    assert_eq!(removed.expect("expunged"), vec![1]);
    assert!(
        store
            .message_states(&account, &inbox, 0, 10)
            .await
            .expect("states")
            .is_empty()
    );
}

/// EXPUNGE's reading of `\Deleted` alone and STATUS's of `\Seen` say what reading the whole
/// state says, for records of either form and flags that only look like them.
#[test]
fn flag_marks_agree_with_the_whole_state() {
    use pushmail_core::mailbox::Flagged;
    let flag_sets: [&[&str]; 10] = [
        &[],
        &["\\Deleted"],
        &["\\deleted", "\\Seen"],
        &["\\Seen", "$Label", "\\DELETED"],
        &["\\DeletedX"],
        &["Deleted", "$Deleted"],
        &["\\Seen", "\\Flagged"],
        &["\\SEEN"],
        &["Seen", "\\Seen2", "$Seen"],
        &["a space"],
    ];
    for flags in flag_sets {
        let meta = meta(flags, 1_764_932_000, 7);
        let json = serde_json::to_string(&meta).expect("json");
        for raw in [message_record(&meta).expect("record"), json] {
            let deleted = Marked::<Deleted>::from_record(&raw).expect("mark").0;
            let seen = Marked::<Seen>::from_record(&raw).expect("mark").0;
            let state = MessageState::from_record(&raw).expect("state");
            assert_eq!(
                (deleted.uid, deleted.set, seen.uid, seen.set),
                (state.uid, state.is_deleted(), state.uid, state.is_seen()),
                "{raw:?}"
            );
        }
    }
    assert!(Marked::<Deleted>::from_record("m1 x 1 2 3 4 \\Deleted\n{}").is_err());
    assert!(Marked::<Seen>::from_record("not a record").is_err());
}
