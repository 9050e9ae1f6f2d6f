//! Requests racing each other and parallel guessing, fired together at the real listeners: the
//! rules the other suites check one request at a time must hold under concurrency too.

use futures::future::join_all;
use pushmail_core::password::verify_password;
use pushmail_tests::{Answer, CallbackSink, Harness, PASSWORD};
use serde_json::json;

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn self_service_racing_an_admin_change_never_undoes_it() {
    let h = Harness::start().await;
    let bob = h.account("bob").await;
    let path = format!("/admin/accounts/{bob}");
    for round in 0..10 {
        assert_eq!(
            h.admin_as_server("PATCH", &path, Some(json!({"enabled": true})))
                .await
                .status,
            200
        );
        let folders = json!({"folders": [format!("Round{round}")]});
        let (own, admin) = tokio::join!(
            h.self_call("PUT", bob.as_str(), PASSWORD, Some(folders)),
            h.admin_as_server("PATCH", &path, Some(json!({"enabled": false}))),
        );
        assert_eq!(admin.status, 200, "{:?}", admin.body);
        assert!(matches!(own.status, 200 | 403), "{:?}", own.body);
        let account = h.store.account(&bob).await.unwrap().unwrap();
        assert!(!account.enabled, "round {round}: the disable was undone");
    }
    // A new password set while the old one is being checked for self-service stays set.
    assert_eq!(
        h.admin_as_server("PATCH", &path, Some(json!({"enabled": true})))
            .await
            .status,
        200
    );
    let (own, admin) = tokio::join!(
        h.self_call(
            "PUT",
            bob.as_str(),
            PASSWORD,
            Some(json!({"folders": ["X"]}))
        ),
        h.admin_as_server("PATCH", &path, Some(json!({"password": "a-new-password"}))),
    );
    assert_eq!(admin.status, 200);
    assert!(matches!(own.status, 200 | 401), "{:?}", own.body);
    let account = h.store.account(&bob).await.unwrap().unwrap();
    assert!(verify_password("a-new-password", &account.password_hash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_subscribe_guesses_check_no_more_passwords_than_the_limit() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let mut wrong = h.subscribe_body(&alice, "r-guess", 1);
    wrong["password"] = json!("not the password");
    let bodies = vec![wrong; 40];
    let answers = join_all(bodies.iter().map(|b| h.post(b))).await;
    let checked = count(&answers, 401);
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(checked + count(&answers, 429), 40);
    // The limit is reached: the right password is refused too, for the rest of the window...
    let right = h.post(&h.subscribe_body(&alice, "r-1", 1)).await;
    assert_eq!(right.status, 429, "{:?}", right.body);
    assert!(right.retry_after.is_some());
    // ...on this surface only: the user's own self-service login still works.
    let own = h.self_call("GET", alice.as_str(), PASSWORD, None).await;
    assert_eq!(own.status, 200, "{:?}", own.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_right_logins_of_one_account_at_once_wait_their_turn_and_all_pass() {
    // Three times the account's places, all at once, before any check has been remembered:
    // those past the places wait for them (a mail client opening its sessions after an
    // outage) rather than being told the server is busy.
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let answers =
        join_all((0..15).map(|_| h.self_call("GET", alice.as_str(), PASSWORD, None))).await;
    assert_eq!(
        count(&answers, 200),
        15,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_self_service_guesses_do_not_lock_out_the_device() {
    let h = Harness::start().await;
    let alice = h.account("alice").await;
    let answers =
        join_all((0..30).map(|_| h.self_call("GET", alice.as_str(), "wrong guess", None))).await;
    let checked = count(&answers, 401);
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(checked + count(&answers, 429), 30);
    let right = h.self_call("GET", alice.as_str(), PASSWORD, None).await;
    assert_eq!(right.status, 429);
    // The device's signed SUBSCRIBE is another surface, with counters of its own.
    let subscribed = h.post(&h.subscribe_body(&alice, "r-1", 1)).await;
    assert_eq!(subscribed.status, 200, "{:?}", subscribed.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscribe_racing_the_accounts_deletion_leaves_no_link() {
    let h = Harness::start().await;
    // The deletion lands at different moments of the SUBSCRIBE, sweeping across its password
    // check (argon2 takes tens of milliseconds), where the old code lost the race.
    for round in 0..12u64 {
        let carol = h.account(&format!("carol{round}")).await;
        let path = format!("/admin/accounts/{carol}");
        let body = h.subscribe_body(&carol, "r-1", 1);
        let (subscribed, deleted) = tokio::join!(h.post(&body), async {
            tokio::time::sleep(std::time::Duration::from_millis(round * 6)).await;
            h.admin_as_server("DELETE", &path, None).await
        });
        assert_eq!(deleted.status, 200, "{:?}", deleted.body);
        assert!(
            matches!(subscribed.status, 200 | 401),
            "{:?}",
            subscribed.body
        );
        assert_eq!(h.store.account(&carol).await.unwrap(), None);
        assert_eq!(
            h.store.link(&carol).await.unwrap(),
            None,
            "round {round}: a link outlived its account"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscribe_racing_a_disable_is_answered_as_it_was_recorded() {
    let h = Harness::start().await;
    for round in 0..12u64 {
        let dave = h.account(&format!("dave{round}")).await;
        let path = format!("/admin/accounts/{dave}");
        let body = h.subscribe_body(&dave, "r-1", 1);
        let (subscribed, disabled) = tokio::join!(h.post(&body), async {
            tokio::time::sleep(std::time::Duration::from_millis(round * 6)).await;
            h.admin_as_server("PATCH", &path, Some(json!({"enabled": false})))
                .await
        });
        assert_eq!(disabled.status, 200);
        let link = h.store.link(&dave).await.unwrap();
        match subscribed.status {
            // Recorded before the disable.
            200 => assert!(link.is_some_and(|l| l.is_linked())),
            // Refused: nothing recorded.
            403 => assert_eq!(link, None, "round {round}"),
            other => panic!("unexpected {other}: {:?}", subscribed.body),
        }
    }
}

#[tokio::test]
async fn callbacks_must_name_public_hosts_at_subscribe() {
    let h = Harness::start().await;
    let erin = h.account("erin").await;
    h.resolver.set("internal.push.example", &["10.0.0.5"]);
    h.resolver
        .set("mixed.push.example", &["93.184.216.34", "169.254.169.254"]);
    for callback in [
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00:ec2::254]/n",
        "https://10.1.2.3/n",
        "https://internal.push.example/n",
        "https://mixed.push.example/n",
        "https://push.example.net/n\r\nX-Injected: 1",
    ] {
        let mut body = h.subscribe_body(&erin, "r-1", 1);
        body["callback"] = json!(callback);
        let answer = h.post(&body).await;
        assert_eq!(answer.status, 400, "{callback}: {:?}", answer.body);
        assert_eq!(answer.body["error"], "invalid_request");
    }
    assert_eq!(h.store.link(&erin).await.unwrap(), None, "nothing recorded");
    // A name that does not resolve now is accepted (spec §2), and judged again at each notice.
    let mut body = h.subscribe_body(&erin, "r-1", 1);
    body["callback"] = json!("https://not-yet.push.example/n");
    assert_eq!(h.post(&body).await.status, 200);
}

#[tokio::test]
async fn a_notice_never_connects_to_a_host_that_now_resolves_inside() {
    let h = Harness::start().await;
    let sink = CallbackSink::start(200).await;
    let port = sink
        .url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    // Local mode permits http to `localhost` (resolved by the test's table) and loopback
    // addresses: while the name resolves there, notices go to it...
    let frank = h.account("frank").await;
    h.resolver.set("localhost", &["127.0.0.1"]);
    let mut body = h.subscribe_body(&frank, "r-1", 1);
    body["callback"] = json!(format!("http://localhost:{port}/n/frank"));
    assert_eq!(h.post(&body).await.status, 200);
    // ...but once it resolves to a private address, the notice is not sent there.
    h.resolver.set("localhost", &["10.0.0.5"]);
    let removed = h
        .admin_as_server(
            "DELETE",
            &format!("/admin/accounts/{frank}/integration"),
            None,
        )
        .await;
    assert_eq!(
        removed.body,
        json!({"status": "unlinked", "unlinked_notice": "attempted"})
    );
    assert!(sink.received().is_empty());
    // The same removal to the loopback name is received: the sink would have seen it.
    let grace = h.account("grace").await;
    h.resolver.set("localhost", &["127.0.0.1"]);
    let mut body = h.subscribe_body(&grace, "r-1", 1);
    body["callback"] = json!(format!("http://localhost:{port}/n/grace"));
    assert_eq!(h.post(&body).await.status, 200);
    let removed = h
        .admin_as_server(
            "DELETE",
            &format!("/admin/accounts/{grace}/integration"),
            None,
        )
        .await;
    assert_eq!(removed.status, 200);
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn after_an_admin_removal_the_highest_generation_does_not_block_relinking() {
    let h = Harness::start().await;
    let ivy = h.account("ivy").await;
    let top = h.post(&h.subscribe_body(&ivy, "r-max", u64::MAX)).await;
    assert_eq!(top.status, 200, "{:?}", top.body);
    let path = format!("/admin/accounts/{ivy}/integration");
    assert_eq!(h.admin_as_server("DELETE", &path, None).await.status, 200);
    // A SUBSCRIBE signed before the removal is stale, as any would be...
    let stale = h.post(&h.subscribe_body(&ivy, "r-new", 1)).await;
    assert_eq!(stale.status, 409, "{:?}", stale.body);
    // ...but one signed after it links again, although no generation is above 2^64-1.
    let after = chrono::Utc::now().timestamp() + 2;
    let again = h
        .post_signed_at(&h.subscribe_body(&ivy, "r-new", 1), after)
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    let link = h.store.link(&ivy).await.unwrap().unwrap();
    assert!(link.is_linked() && link.generation == 1);
}

#[tokio::test]
async fn folder_names_that_could_escape_or_confuse_are_refused_and_change_nothing() {
    let h = Harness::start().await;
    let judy = h.account("judy").await;
    let path = format!("/admin/accounts/{judy}/pushed-folders");
    let set = h
        .admin_as_server("PUT", &path, Some(json!({"folders": ["Work"]})))
        .await;
    assert_eq!(set.status, 200);
    for bad in [
        "..",
        "/",
        "/etc/passwd",
        "INBOX ",
        "INBOX/",
        "a//b",
        "x/../y",
        "tab\there",
        "*",
    ] {
        let by_admin = h
            .admin_as_server("PUT", &path, Some(json!({"folders": [bad]})))
            .await;
        assert_eq!(by_admin.status, 400, "{bad:?}: {:?}", by_admin.body);
        let by_self = h
            .self_call(
                "PUT",
                judy.as_str(),
                PASSWORD,
                Some(json!({"folders": [bad]})),
            )
            .await;
        assert_eq!(by_self.status, 400, "{bad:?}: {:?}", by_self.body);
    }
    let account = h.store.account(&judy).await.unwrap().unwrap();
    assert_eq!(account.pushed_folders, vec!["Work"]);
}
