//! The embedded store's accounts at a size that would hurt: ten thousand accounts in a hundred
//! domains. A domain's page of accounts and a domain's delete read that domain's accounts alone
//! (both read every account of every domain before, the delete inside the write transaction,
//! holding up every write meanwhile); a file kept by a version without the index gets it when
//! opened.

use std::sync::Arc;

use pushmail_core::types::DomainName;
use pushmail_store::{DomainDelete, EmbeddedStore, Store};
use pushmail_tests::fixtures::{account, domain};

const DOMAINS: usize = 100;
const PER_DOMAIN: usize = 100;

fn address(d: usize, a: usize) -> String {
    format!("user{a:03}@d{d:03}.example")
}

/// Every account of domain `d`, paged `page` at a time, with `prefix`.
async fn listed(
    store: &Arc<dyn Store>,
    d: usize,
    prefix: Option<&str>,
    page: usize,
) -> Vec<String> {
    let name = DomainName::parse(&format!("d{d:03}.example")).unwrap();
    let (mut all, mut cursor) = (Vec::new(), None);
    loop {
        let listed = store
            .list_accounts(&name, prefix, cursor.as_deref(), page)
            .await
            .unwrap();
        assert!(listed.items.len() <= page);
        all.extend(listed.items.into_iter().map(|a| a.address.to_string()));
        match listed.cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_domains_accounts_are_read_alone_and_an_old_file_gets_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pushmail.redb");
    let every: Vec<usize> = (0..PER_DOMAIN).collect();
    let expected = |d: usize| every.iter().map(|a| address(d, *a)).collect::<Vec<_>>();
    {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path).unwrap());
        // Fifty writers at once, a domain's accounts spread over them.
        let writers = (0..50).map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in (w..DOMAINS * PER_DOMAIN).step_by(50) {
                    let a = account(&address(n % DOMAINS, n / DOMAINS));
                    assert!(store.create_account(&a).await.unwrap());
                }
            })
        });
        for writer in writers {
            writer.await.unwrap();
        }
        assert_eq!(listed(&store, 7, None, 30).await, expected(7));
        assert_eq!(
            listed(&store, 7, Some("user05"), 4).await,
            expected(7)[50..60].to_vec()
        );
        // A cursor of one domain is no cursor for another.
        let page = store
            .list_accounts(&DomainName::parse("d007.example").unwrap(), None, None, 10)
            .await
            .unwrap();
        let other = store
            .list_accounts(
                &DomainName::parse("d008.example").unwrap(),
                None,
                page.cursor.as_deref(),
                10,
            )
            .await;
        assert!(other.is_err(), "{other:?}");

        store.put_domain(&domain("d007.example")).await.unwrap();
        store.put_domain(&domain("empty.example")).await.unwrap();
        assert_eq!(
            store
                .delete_domain(&DomainName::parse("d007.example").unwrap())
                .await
                .unwrap(),
            DomainDelete::HasAccounts
        );
        assert_eq!(
            store
                .delete_domain(&DomainName::parse("empty.example").unwrap())
                .await
                .unwrap(),
            DomainDelete::Deleted
        );
        // Deleted accounts leave the index; created again, they are back.
        let gone = pushmail_core::types::Address::parse(&address(7, 0)).unwrap();
        store.delete_account(&gone).await.unwrap();
        assert_eq!(listed(&store, 7, None, 30).await, expected(7)[1..].to_vec());
        store
            .create_account(&account(&address(7, 0)))
            .await
            .unwrap();
    }
    // As a version without the index left the file: the index gone.
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let index: redb::TableDefinition<&str, &str> =
            redb::TableDefinition::new("accounts_by_domain");
        assert!(txn.delete_table(index).unwrap());
        txn.commit().unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(&path).unwrap());
    assert_eq!(listed(&store, 99, None, 30).await, expected(99));
    assert_eq!(listed(&store, 7, None, 100).await, expected(7));
}
