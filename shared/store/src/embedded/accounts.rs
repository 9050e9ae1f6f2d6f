//! Mailbox accounts.

use super::*;

#[async_trait]
impl crate::AccountStore for EmbeddedStore {
    async fn account(&self, address: &Address) -> StoreResult<Option<Account>> {
        let address = address.clone();
        self.read(move |txn| get(&txn.open_table(ACCOUNTS)?, address.as_str()))
            .await
    }

    async fn put_account(&self, account: &Account) -> StoreResult<()> {
        let account = account.clone();
        self.write(move |txn| {
            put_record(
                txn,
                ACCOUNTS,
                account.address.as_str(),
                &account,
                Presence::Any,
            )
            .map(drop)
        })
        .await
    }

    async fn create_account(&self, account: &Account) -> StoreResult<bool> {
        let account = account.clone();
        self.write(move |txn| {
            if txn
                .open_table(ACCOUNTS)?
                .get(account.address.as_str())?
                .is_some()
            {
                return Ok(false);
            }
            // A new person at an old address starts with an empty mailbox.
            purge_account_data(txn, &account.address)?;
            put_record(
                txn,
                ACCOUNTS,
                account.address.as_str(),
                &account,
                Presence::Absent,
            )
        })
        .await
    }

    async fn update_account(&self, account: &Account) -> StoreResult<AccountUpdate> {
        let account = account.clone();
        self.write(move |txn| {
            let mut accounts = txn.open_table(ACCOUNTS)?;
            let stored: Option<Account> = get(&accounts, account.address.as_str())?;
            match stored {
                None => Ok(AccountUpdate::NotFound),
                Some(stored) if stored.revision != account.revision => Ok(AccountUpdate::Conflict),
                Some(_) => {
                    let updated = Account {
                        revision: account.revision + 1,
                        ..account.clone()
                    };
                    accounts.insert(updated.address.as_str(), encode(&updated)?.as_str())?;
                    Ok(AccountUpdate::Updated(updated))
                }
            }
        })
        .await
    }

    async fn delete_account(&self, address: &Address) -> StoreResult<AccountDelete> {
        let address = address.clone();
        self.write(move |txn| {
            if txn
                .open_table(ACCOUNTS)?
                .remove(address.as_str())?
                .is_none()
            {
                return Ok(AccountDelete::NotFound);
            }
            let link: Option<Link> = get(&txn.open_table(LINKS)?, address.as_str())?;
            if let Some(link) = &link {
                remove_link_record(txn, link)?;
            }
            purge_account_data(txn, &address)?;
            Ok(AccountDelete::Deleted {
                live_link: link.filter(Link::is_linked),
            })
        })
        .await
    }

    async fn list_accounts(
        &self,
        domain: &DomainName,
        prefix: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Account>> {
        let after = cursor_key(cursor, "")?;
        let suffix = format!("@{domain}");
        let prefix = prefix.unwrap_or_default().to_owned();
        self.read(move |txn| {
            let table = txn.open_table(ACCOUNTS)?;
            let (rows, cursor) =
                page_from(&table, &prefix, after.as_deref(), false, limit, |k, _| {
                    Ok(k.ends_with(&suffix))
                })?;
            let items = rows
                .iter()
                .map(|(_, v)| decode(v))
                .collect::<TxResult<_>>()?;
            Ok(Page { items, cursor })
        })
        .await
    }
}

/// What an account leaves behind: its mailbox, notices, notice status and kept mail, removed in
/// the transaction that deletes it (and again before an address is created anew).
fn purge_account_data(txn: &WriteTransaction, address: &Address) -> TxResult<()> {
    super::mailbox::purge_mailbox(txn, address)?;
    super::notices::purge(txn, address)?;
    super::mailbox::remove_prefixed(&mut txn.open_table(MAIL)?, &key(&[address.as_str(), ""]))?;
    Ok(())
}
