//! New-mail notices (spec §4) end to end: a mail delivered over SMTP to an integrated account is
//! recorded with its notice and sent, signed, to the subscription's callback (a loopback
//! receiver that checks every signature); retried while the callback is down, with ids
//! unchanged and in order; 410 ends the subscription; a hanging callback holds up nobody else;
//! superseded subscriptions never hear of pending notices; secret rotation signs with the
//! newest. On both backends.

use pushmail_core::hints::Arrivals;
use std::time::Duration;

use chrono::Utc;
use pushmail_core::folder::FolderName;
use pushmail_core::types::{Address, LinkState};
use pushmail_smtp::{Smtp, SmtpSettings};
use pushmail_store::Delivery;
use pushmail_tests::smtp::Client;
use pushmail_tests::{CallbackSink, Harness};
use serde_json::json;

async fn deliver(h: &Harness, account: &Address, folder: &str, subject: &str) -> Delivery {
    h.deliver_mail(account, folder, subject).await
}

/// The activation mail lands in INBOX too, and is announced like any other mail.
const ACTIVATION: &str = "Email activation information (push mail)";

fn subjects(sink: &CallbackSink) -> Vec<String> {
    sink.accepted_subjects()
}

#[tokio::test]
async fn smtp_mail_to_an_integrated_account_is_announced_signed_and_in_order() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let bob = h.account("bob").await;
    let sink = CallbackSink::start(200).await;
    let subscription = h.integrate(&alice, &sink, "r-alice", 1).await;
    let dispatcher = h.dispatcher();
    let smtp = h
        .listen_smtp(
            Smtp::inbound(h.store.clone(), SmtpSettings::default())
                .with_arrivals(Arrivals::default().waking(dispatcher.waker())),
        )
        .await;
    let worker = tokio::spawn(dispatcher.clone().run(std::future::pending()));

    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO sender.example").await;
    for i in 1..=3 {
        let answer = client
            .transaction(
                "carol@sender.example",
                alice.as_str(),
                format!(
                    "From: Carol <carol@sender.example>\r\nSubject: news {i}\r\n\r\nhello\r\n.\r\n"
                )
                .as_bytes(),
            )
            .await;
        assert!(answer.starts_with("250"), "{answer}");
    }
    // Not integrated: stored, never announced.
    let answer = client
        .transaction(
            "carol@sender.example",
            bob.as_str(),
            b"Subject: for bob\r\n\r\nx\r\n.\r\n",
        )
        .await;
    assert!(answer.starts_with("250"), "{answer}");
    sink.wait_for("the activation mail's and three notices", |got| {
        got.len() >= 4
    })
    .await;

    let received = sink.received();
    assert_eq!(received[0].json()["subject"], ACTIVATION);
    let inbox = h
        .store
        .folder(&alice, &FolderName::parse("INBOX").unwrap())
        .await
        .unwrap()
        .unwrap();
    for (i, notice) in received[1..].iter().enumerate() {
        assert!(
            notice.signed_with(&h.secret),
            "notice {i} is not signed with the domain secret"
        );
        let body = notice.json();
        let uid = i as u64 + 2;
        assert_eq!(body["type"], "NEW_MAIL");
        assert_eq!(
            body["id"],
            format!("nm_{subscription}_{}_{uid}", inbox.uid_validity)
        );
        assert_eq!(body["subscription"], subscription);
        assert_eq!(body["registration"], "r-alice");
        assert_eq!(body["email"], alice.as_str());
        assert_eq!(body["folder"], "INBOX");
        assert_eq!(body["uid"], uid);
        assert_eq!(body["uidvalidity"], inbox.uid_validity);
        assert_eq!(body["from"], "carol@sender.example", "{body}");
        assert_eq!(body["subject"], format!("news {}", i + 1));
        assert!(chrono::DateTime::parse_from_rfc3339(body["received"].as_str().unwrap()).is_ok());
    }

    // Other folders only once they are pushed.
    deliver(&h, &alice, "Drafts", "draft").await;
    let path = format!("/admin/accounts/{alice}/pushed-folders");
    let set = h
        .admin_as_server("PUT", &path, Some(json!({"folders": ["Junk"]})))
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    let Delivery::Stored { noticed, .. } = deliver(&h, &alice, "Junk", "pushed junk").await else {
        panic!("not stored");
    };
    assert!(noticed);
    sink.wait_for("the pushed folder's notice", |got| got.len() >= 5)
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        subjects(&sink),
        [ACTIVATION, "news 1", "news 2", "news 3", "pushed junk"]
    );
    assert_eq!(sink.received()[4].json()["folder"], "Junk");

    let status = h
        .admin_as_server("GET", &format!("/admin/accounts/{alice}/integration"), None)
        .await;
    assert_eq!(status.body["notices"]["pending"], 0, "{:?}", status.body);
    assert!(status.body["notices"]["last_delivered_at"].is_string());
    worker.abort();
}

#[tokio::test]
async fn a_callback_down_for_a_while_gets_every_notice_when_back_with_the_same_ids() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let sink = CallbackSink::start(503).await;
    h.integrate(&alice, &sink, "r-1", 1).await;
    let dispatcher = h.dispatcher();
    let worker = tokio::spawn(dispatcher.clone().run(std::future::pending()));
    for subject in ["one", "two", "three"] {
        deliver(&h, &alice, "INBOX", subject).await;
    }
    sink.wait_for("retries of the first notice", |got| got.len() >= 3)
        .await;
    // In order: nothing after the first is tried while the first fails.
    let tried: std::collections::HashSet<String> = sink
        .received()
        .iter()
        .map(|n| n.json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        tried.len(),
        1,
        "only the oldest notice is tried while it fails"
    );
    let status = h
        .admin_as_server("GET", &format!("/admin/accounts/{alice}/integration"), None)
        .await;
    assert_eq!(status.body["notices"]["pending"], 4, "{:?}", status.body);
    assert_eq!(status.body["notices"]["last_failure"]["error"], "HTTP 503");

    sink.answer_with(200);
    sink.wait_for("all four delivered", |got| {
        got.iter().filter(|n| n.status == 200).count() >= 4
    })
    .await;
    assert_eq!(subjects(&sink), [ACTIVATION, "one", "two", "three"]);
    let first_id = sink.accepted()[0].json()["id"].clone();
    assert!(
        tried.contains(first_id.as_str().unwrap()),
        "the retried id is unchanged"
    );
    // The sink saw the fourth before the dispatcher recorded it: the counts catch up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let counts = loop {
        let counts = h.admin_as_server("GET", "/admin/notices", None).await;
        assert_eq!(counts.status, 200, "{:?}", counts.body);
        if counts.body["delivered"].as_u64() >= Some(4) || std::time::Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        counts.body["delivered"].as_u64().unwrap() >= 4,
        "{:?}",
        counts.body
    );
    assert!(counts.body["failed_attempts"].as_u64().unwrap() >= 2);
    worker.abort();
}

#[tokio::test]
async fn a_410_ends_the_subscription_and_what_was_pending_is_never_sent() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let sink = CallbackSink::start(410).await;
    h.integrate(&alice, &sink, "r-1", 1).await;
    deliver(&h, &alice, "INBOX", "first").await;
    deliver(&h, &alice, "INBOX", "second").await;
    let dispatcher = h.dispatcher();
    dispatcher.clone().pass(Utc::now()).await.unwrap();
    dispatcher.settle().await;
    assert_eq!(
        sink.received().len(),
        1,
        "the second notice went to a gone callback"
    );
    let link = h.store.link(&alice).await.unwrap().unwrap();
    assert_eq!(link.state, LinkState::Unlinked);
    assert_eq!(h.store.account_notices(&alice).await.unwrap().pending, 0);
    // As after an UNSUBSCRIBE: a new SUBSCRIBE of the next generation links again.
    let sink2 = CallbackSink::start(200).await;
    h.integrate(&alice, &sink2, "r-1", 2).await;
}

#[tokio::test]
async fn a_hanging_callback_holds_up_nobody_else() {
    let h = Harness::start().await;
    let (alice, bob) = (h.account("alice").await, h.account("bob").await);
    let hanging = CallbackSink::start(0).await;
    let prompt = CallbackSink::start(200).await;
    h.integrate(&alice, &hanging, "r-a", 1).await;
    h.integrate(&bob, &prompt, "r-b", 1).await;
    let dispatcher = h.dispatcher();
    let worker = tokio::spawn(dispatcher.clone().run(std::future::pending()));
    deliver(&h, &alice, "INBOX", "for alice").await;
    hanging
        .wait_for("alice's notice to hang", |got| !got.is_empty())
        .await;
    let started = std::time::Instant::now();
    for i in 0..3 {
        deliver(&h, &bob, "INBOX", &format!("for bob {i}")).await;
    }
    prompt.wait_for("bob's notices", |got| got.len() >= 3).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bob waited {:?} behind alice's hung callback",
        started.elapsed()
    );
    worker.abort();
}

#[tokio::test]
async fn superseded_subscriptions_never_hear_of_pending_notices_and_rotation_signs_with_the_newest()
{
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let old = CallbackSink::start(503).await;
    h.integrate(&alice, &old, "r-old", 1).await;
    deliver(&h, &alice, "INBOX", "while down").await;
    // The device is set up again: a new subscription supersedes the old one.
    let new = CallbackSink::start(200).await;
    let subscription = h.integrate(&alice, &new, "r-new", 2).await;
    // A new secret between the mail's arrival and its notice: the newest signs.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.add_secret("rotated-secret", Utc::now()).await;
    deliver(&h, &alice, "INBOX", "after").await;
    old.answer_with(200);
    let dispatcher = h.dispatcher();
    dispatcher.clone().pass(Utc::now()).await.unwrap();
    dispatcher.settle().await;
    assert!(
        old.received().is_empty(),
        "the superseded callback was told"
    );
    // The new subscription's own activation mail, then the mail after it.
    assert_eq!(subjects(&new), [ACTIVATION, "after"]);
    for notice in new.received() {
        assert_eq!(notice.json()["subscription"], subscription);
        assert!(notice.signed_with("rotated-secret"));
    }
    let counts = h.store.notice_counts().await.unwrap();
    assert!(counts.dropped_stale >= 1);
}

#[tokio::test]
async fn two_dispatchers_on_one_store_send_each_notice_once_and_in_order() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let sink = CallbackSink::start(200).await;
    h.integrate(&alice, &sink, "r-1", 1).await;
    // Two processes' dispatchers (or the container's and the sweeper's) on the same store.
    let (one, two) = (h.dispatcher(), h.dispatcher());
    let workers = [
        tokio::spawn(one.clone().run(std::future::pending())),
        tokio::spawn(two.clone().run(std::future::pending())),
    ];
    let subjects_sent: Vec<String> = (0..20).map(|i| format!("mail {i:02}")).collect();
    for subject in &subjects_sent {
        deliver(&h, &alice, "INBOX", subject).await;
        one.waker().noticed(&alice);
        two.waker().noticed(&alice);
    }
    sink.wait_for("every notice", |got| got.len() >= 21).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for worker in workers {
        worker.abort();
    }
    let got = subjects(&sink);
    let mut expected = vec![ACTIVATION.to_owned()];
    expected.extend(subjects_sent);
    assert_eq!(got, expected, "each once, in order");
}
