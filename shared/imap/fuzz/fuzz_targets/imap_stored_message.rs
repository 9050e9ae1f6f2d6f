//! Stored messages, as FETCH reads them: arbitrary bytes taken as a message in a mailbox, and
//! every item that reads it (ENVELOPE, BODY, BODYSTRUCTURE, the header, text and parts)
//! built and encoded. Whatever a sender or an APPEND stored, FETCH must neither panic nor hang.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pushmail_imap::fuzzing::let_the_parsers_own_checks_through();
    let _ = pushmail_imap::fuzzing::fetch_every_item(data);
});
