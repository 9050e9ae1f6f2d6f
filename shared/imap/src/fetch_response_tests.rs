//! The response written here is the one imap-codec writes for the same items, byte for byte.

use chrono::{FixedOffset, TimeZone};
use imap_codec::imap_types::core::{IString, Literal, NString};
use imap_codec::imap_types::fetch::Section;

use super::*;

fn imap_codec_writes(seq: NonZeroU32, items: Vec<MessageDataItem<'static>>) -> Vec<u8> {
    let items = Vec1::try_from(items).expect("items");
    ResponseCodec::default()
        .encode(&Response::Data(Data::Fetch { seq, items }))
        .dump()
}

fn date(offset_secs: i32, day: u32, hour: u32) -> DateTime {
    let offset = FixedOffset::east_opt(offset_secs).expect("offset");
    let at = offset
        .with_ymd_and_hms(2026, 3, day, hour, 4, 5)
        .single()
        .expect("date");
    DateTime::try_from(at).expect("IMAP date")
}

#[test]
fn plain_items_are_written_as_imap_codec_writes_them() {
    let flag_sets: [&[&str]; 6] = [
        &[],
        &["\\Seen"],
        &[
            "\\Seen",
            "\\Deleted",
            "$Label",
            "\\Flagged",
            "\\Answered",
            "\\Draft",
        ],
        &["$Forwarded", "NonJunk"],
        // Names IMAP cannot say are left out by both.
        &["", "a b", "\\Seen", "(", "x\"y", "\\Extension"],
        &["ünïcode", "$ok"],
    ];
    let dates = [
        date(0, 1, 0),
        date(3600 * 5 + 1800, 9, 23),
        date(-3600 * 11, 28, 12),
    ];
    for seq in [1, 9, 10, 4_000_000_000] {
        let seq = NonZeroU32::new(seq).expect("seq");
        for flags in flag_sets {
            let flags: Vec<String> = flags.iter().map(|flag| flag.to_string()).collect();
            for recent in [false, true] {
                for date in &dates {
                    let (uid, modseq) = (NonZeroU32::MAX, NonZeroU64::new(u64::MAX).expect("max"));
                    let mut written = FetchResponse::new(seq);
                    written.uid(uid);
                    written.flags(&flags, recent);
                    written.size(0);
                    written.modseq(modseq);
                    written.internal_date(date);
                    let expected = imap_codec_writes(
                        seq,
                        vec![
                            MessageDataItem::Uid(uid),
                            flag_items(&flags, recent),
                            MessageDataItem::Rfc822Size(0),
                            MessageDataItem::ModSeq(modseq),
                            MessageDataItem::InternalDate(date.clone()),
                        ],
                    );
                    let written = written.finish().expect("items");
                    assert_eq!(
                        String::from_utf8_lossy(&written),
                        String::from_utf8_lossy(&expected),
                        "{flags:?} {recent}"
                    );
                }
            }
        }
    }
}

#[test]
fn kept_and_encoded_items_follow_the_plain_ones() {
    let seq = NonZeroU32::new(7).expect("seq");
    let size = MessageDataItem::Rfc822Size(4_096);
    let section = MessageDataItem::BodyExt {
        section: Some(Section::Text(None)),
        origin: None,
        data: NString(Some(IString::from(
            Literal::try_from(b"line one\r\nline (two)\r\n".to_vec()).expect("literal"),
        ))),
    };
    let mut written = FetchResponse::new(seq);
    written.size(4_096);
    written.written(&written_item(size.clone()));
    written.written(b"");
    written.encoded(vec![section.clone()], &[]);
    written.encoded(Vec::new(), &[]);
    let expected = imap_codec_writes(seq, vec![size.clone(), size, section]);
    assert_eq!(written.finish().expect("items"), expected);
}

#[test]
fn a_response_without_items_is_not_written() {
    let mut nothing = FetchResponse::new(NonZeroU32::MIN);
    nothing.written(b"");
    nothing.encoded(Vec::new(), &[]);
    assert!(nothing.finish().is_none());
}
