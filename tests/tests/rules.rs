//! Filing rules over the real listeners: set by the user with their own credentials (and by an
//! admin), applied to mail arriving over SMTP, filing into folders that are created on demand;
//! a pushed folder's mail is announced, another's is not; bad rule sets change nothing.

use pushmail_core::hints::Arrivals;
use pushmail_smtp::{Smtp, SmtpSettings};
use pushmail_tests::smtp::Client;
use pushmail_tests::{CallbackSink, Harness, PASSWORD};
use serde_json::{Value, json};

fn list_rule() -> Value {
    json!({
        "name": "rust list",
        "conditions": [{"field": "list_id", "match": "contains", "value": "rust"}],
        "file_into": "Lists/rust",
        "stop": true,
    })
}

#[tokio::test]
async fn a_users_rule_files_list_mail_into_a_pushed_folder_that_is_announced() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let sink = CallbackSink::start(200).await;
    h.integrate(&alice, &sink, "r-1", 1).await;

    // The user, with their own credentials: the rule, then the folder among the pushed ones.
    let rules = json!({"rules": [
        list_rule(),
        {"conditions": [{"field": "subject", "match": "matches", "value": "[archive]*"}],
         "file_into": "Archive", "mark_read": true},
    ]});
    let set = h
        .self_call_at("/self/rules", "PUT", alice.as_str(), PASSWORD, Some(rules))
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(set.body["rules"][0]["file_into"], "Lists/rust");
    let pushed = h
        .self_call(
            "PUT",
            alice.as_str(),
            PASSWORD,
            Some(json!({"folders": ["Lists/rust"]})),
        )
        .await;
    assert_eq!(pushed.status, 200, "{:?}", pushed.body);

    let dispatcher = h.dispatcher();
    let worker = tokio::spawn(dispatcher.clone().run(std::future::pending()));
    let smtp = h
        .listen_smtp(
            Smtp::inbound(h.store.clone(), SmtpSettings::default())
                .with_arrivals(Arrivals::default().waking(dispatcher.waker())),
        )
        .await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO lists.example.org").await;
    let mails: [&[u8]; 3] = [
        b"From: joe@example.org\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\
          List-Id: Rust users\r\n <rust.lists.example.org>\r\n\r\nlist mail\r\n.\r\n",
        b"From: joe@example.org\r\nSubject: [archive] old things\r\n\r\narchive\r\n.\r\n",
        b"From: joe@example.org\r\nSubject: plain\r\n\r\ninbox\r\n.\r\n",
    ];
    for mail in mails {
        let answer = client
            .transaction("joe@example.org", alice.as_str(), mail)
            .await;
        assert!(answer.starts_with("250"), "{answer}");
    }
    // Notices: the activation mail, the list mail (in its folder), the plain one; not Archive.
    sink.wait_for("three notices", |got| got.len() >= 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let folders: Vec<(String, String)> = sink
        .received()
        .iter()
        .map(|n| {
            let body = n.json();
            (
                body["folder"].as_str().unwrap().to_owned(),
                body["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        folders[1..],
        [
            ("Lists/rust".to_owned(), "Grüße".to_owned()),
            ("INBOX".to_owned(), "plain".to_owned())
        ],
        "{folders:?}"
    );
    worker.abort();

    let list = h.stored_messages(&alice, "Lists/rust").await;
    assert_eq!(list.len(), 1);
    assert!(list[0].0.flags.is_empty());
    let archive = h.stored_messages(&alice, "Archive").await;
    assert_eq!(archive.len(), 1);
    assert_eq!(archive[0].0.flags, ["\\Seen"]);
    let inbox = h.stored_messages(&alice, "INBOX").await;
    let subjects: Vec<_> = inbox
        .iter()
        .filter_map(|(meta, _)| meta.envelope.subject.clone())
        .collect();
    assert!(subjects.contains(&"plain".to_owned()) && !subjects.contains(&"Grüße".to_owned()));
    // The admin sees the same rules.
    let seen = h
        .admin_as_server("GET", &format!("/admin/accounts/{alice}/rules"), None)
        .await;
    assert_eq!(seen.body["rules"][0]["name"], "rust list");
}

#[tokio::test]
async fn bad_rule_sets_are_refused_and_change_nothing() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let path = format!("/admin/accounts/{alice}/rules");
    let set = h
        .admin_as_server("PUT", &path, Some(json!({"rules": [list_rule()]})))
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut rule = list_rule();
        change(&mut rule);
        json!({"rules": [rule]})
    };
    let bad = [
        with(&|r| r["file_into"] = json!("Lists//rust")),
        with(&|r| r["file_into"] = json!("Lists/*")),
        with(&|r| r["file_into"] = json!("")),
        with(&|r| r["conditions"] = json!([])),
        with(&|r| r["conditions"][0]["field"] = json!("List-Id:")),
        with(&|r| r["conditions"][0]["match"] = json!("regex")),
        with(&|r| r["conditions"][0]["value"] = json!("x".repeat(501))),
        with(&|r| r["unknown"] = json!(true)),
        with(&|r| {
            r["file_into"] = Value::Null;
            r["stop"] = json!(false);
        }),
        json!({"rules": vec![list_rule(); 101]}),
        json!({"rules": "all of them"}),
    ];
    for body in bad {
        let answer = h.admin_as_server("PUT", &path, Some(body.clone())).await;
        assert_eq!(answer.status, 400, "{body}: {:?}", answer.body);
        let own = h
            .self_call_at(
                "/self/rules",
                "PUT",
                alice.as_str(),
                PASSWORD,
                Some(body.clone()),
            )
            .await;
        assert_eq!(own.status, 400, "{body}: {:?}", own.body);
    }
    // Wrong password: refused, nothing changed.
    let refused = h
        .self_call_at(
            "/self/rules",
            "PUT",
            alice.as_str(),
            "wrong-password",
            Some(json!({"rules": []})),
        )
        .await;
    assert_eq!(refused.status, 401);
    let now = h.admin_as_server("GET", &path, None).await;
    assert_eq!(now.body["rules"].as_array().unwrap().len(), 1);
    assert_eq!(now.body["rules"][0]["file_into"], "Lists/rust");
}

#[tokio::test]
async fn rules_create_no_folder_past_the_accounts_limit() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    // A small limit: the rule is the same at the default 1,000.
    let limit = 12;
    let have = h.store.folders(&alice).await.unwrap().len();
    for n in have..limit {
        let name = pushmail_core::folder::FolderName::parse(&format!("F{n}")).unwrap();
        h.store
            .create_folder(&alice, &name, chrono::Utc::now())
            .await
            .unwrap();
    }
    let set = h
        .self_call_at(
            "/self/rules",
            "PUT",
            alice.as_str(),
            PASSWORD,
            Some(json!({"rules": [list_rule()]})),
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    let smtp = h
        .smtp(SmtpSettings {
            max_folders: limit,
            ..SmtpSettings::default()
        })
        .await;
    let (mut client, _) = Client::connect(smtp).await;
    client.command("EHLO lists.example.org").await;
    let answer = client
        .transaction(
            "joe@example.org",
            alice.as_str(),
            b"List-Id: <rust.lists.example.org>\r\nSubject: l\r\n\r\nx\r\n.\r\n",
        )
        .await;
    assert!(answer.starts_with("250"), "{answer}");
    assert_eq!(h.store.folders(&alice).await.unwrap().len(), limit);
    assert_eq!(
        h.stored_messages(&alice, "INBOX").await.len(),
        1,
        "into INBOX instead"
    );
}
