//! Admins see sessions falling out of the change log's window: each one that reads its folder
//! again counts in `pushmail_imap_change_log_lost_total` (its own test binary, for the
//! process-wide recorder).

use std::num::NonZeroU64;

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::FlagChange;
use pushmail_store::ChangeWindow;
use pushmail_tests::imap::{deliver, listener, logged_in, loopback_plaintext, ok};
use pushmail_tests::{Harness, Setup};

#[tokio::test]
async fn a_session_that_fell_out_of_the_log_is_counted() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let rendered = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only recorder of this binary");
    let h = Harness::start_with(Setup {
        change_window: ChangeWindow::keeping(NonZeroU64::new(16).expect("not zero")),
        ..Setup::default()
    })
    .await;
    let alice = h.account("alice").await;
    deliver(&h, &alice, "INBOX", "Subject: 1\r\n\r\n1\r\n", vec![]).await;
    let (address, _) = listener(&h, loopback_plaintext()).await;
    let mut desk = logged_in(address, alice.as_str()).await;
    ok(&mut desk, "s", "SELECT INBOX").await;
    let inbox = FolderName::parse("INBOX").unwrap();
    for round in 0..40 {
        let change = match round % 2 {
            0 => FlagChange::Add(vec!["\\Seen".into()]),
            _ => FlagChange::Remove(vec!["\\Seen".into()]),
        };
        h.store
            .update_flags(&alice, &inbox, 1, &change)
            .await
            .unwrap();
    }
    let before = rendered.render();
    assert!(
        !before.contains("pushmail_imap_change_log_lost_total{"),
        "{before}"
    );
    ok(&mut desk, "n", "NOOP").await;
    let after = rendered.render();
    assert!(
        after.contains("pushmail_imap_change_log_lost_total{kind=\"selected\"} 1"),
        "{after}"
    );
}
