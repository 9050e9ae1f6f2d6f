//! Mailbox accounts.

use super::*;

/// `<domain> SEP <address>` → "": a domain's accounts together. Accounts are keyed by address,
/// so before, a domain's page of accounts, and a domain's delete (inside the write transaction,
/// holding up every write), read every account of every domain.
const ACCOUNTS_BY_DOMAIN: Records = TableDefinition::new("accounts_by_domain");

pub(super) fn create_tables(txn: &WriteTransaction) -> TxResult<()> {
    build_missing_index(txn, ACCOUNTS, ACCOUNTS_BY_DOMAIN, |address, _| {
        let address = Address::parse(address)
            .map_err(|_| StoreError::Corrupt(format!("account key {address:?}")))?;
        Ok(domain_key(&address))
    })
}

fn domain_key(address: &Address) -> String {
    key(&[address.domain().as_str(), address.as_str()])
}

/// Whether the domain has any account (one read of the index).
pub(super) fn domain_has_accounts(txn: &WriteTransaction, domain: &DomainName) -> TxResult<bool> {
    let mut found = false;
    visit(
        &txn.open_table(ACCOUNTS_BY_DOMAIN)?,
        &key(&[domain.as_str(), ""]),
        None,
        false,
        |_, _| {
            found = true;
            Ok(false)
        },
    )?;
    Ok(found)
}

/// Writes the account with its place in the domain's index.
fn put_account(txn: &WriteTransaction, account: &Account, presence: Presence) -> TxResult<bool> {
    let written = put_record(txn, ACCOUNTS, account.address.as_str(), account, presence)?;
    if written {
        txn.open_table(ACCOUNTS_BY_DOMAIN)?
            .insert(domain_key(&account.address).as_str(), "")?;
    }
    Ok(written)
}

#[async_trait]
impl crate::AccountStore for EmbeddedStore {
    async fn account(&self, address: &Address) -> StoreResult<Option<Account>> {
        let address = address.clone();
        self.read(move |txn| get(&txn.open_table(ACCOUNTS)?, address.as_str()))
            .await
    }

    async fn put_account(&self, account: &Account) -> StoreResult<()> {
        let account = account.clone();
        self.write(move |txn| put_account(txn, &account, Presence::Any).map(drop))
            .await
    }

    async fn create_account(&self, account: &Account) -> StoreResult<bool> {
        // A new person at an old address starts with an empty mailbox: what the last owner
        // left goes first, a step a write, and the step that finds nothing left creates the
        // account in its transaction.
        loop {
            let account = account.clone();
            let created = self
                .write(move |txn| {
                    if txn
                        .open_table(ACCOUNTS)?
                        .get(account.address.as_str())?
                        .is_some()
                    {
                        return Ok(Some(false));
                    }
                    match purge_step(txn, &account.address)? {
                        Leftovers::Remain => Ok(None),
                        Leftovers::Gone => put_account(txn, &account, Presence::Absent).map(Some),
                    }
                })
                .await?;
            if let Some(created) = created {
                return Ok(created);
            }
        }
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
        let deleted = {
            let address = address.clone();
            self.write(move |txn| {
                if txn
                    .open_table(ACCOUNTS)?
                    .remove(address.as_str())?
                    .is_none()
                {
                    return Ok(AccountDelete::NotFound);
                }
                txn.open_table(ACCOUNTS_BY_DOMAIN)?
                    .remove(domain_key(&address).as_str())?;
                let link: Option<Link> = get(&txn.open_table(LINKS)?, address.as_str())?;
                if let Some(link) = &link {
                    remove_link_record(txn, link)?;
                }
                Ok(AccountDelete::Deleted {
                    live_link: link.filter(Link::is_linked),
                })
            })
            .await?
        };
        // Also when no account was found: a delete of the address again finishes a purge that
        // the process's end cut short.
        self.purge_leftovers(address).await?;
        Ok(deleted)
    }

    async fn list_accounts(
        &self,
        domain: &DomainName,
        prefix: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Account>> {
        let after = cursor_key(cursor, &key(&[domain.as_str(), ""]))?;
        let prefix = key(&[domain.as_str(), prefix.unwrap_or_default()]);
        self.read(move |txn| {
            let (index, accounts) = (
                txn.open_table(ACCOUNTS_BY_DOMAIN)?,
                txn.open_table(ACCOUNTS)?,
            );
            let (rows, cursor) =
                page_from(&index, &prefix, after.as_deref(), false, limit, |_, _| {
                    Ok(true)
                })?;
            let mut items = Vec::with_capacity(rows.len());
            for (index_key, _) in &rows {
                let address = index_key.split_once(SEP).map_or("", |(_, address)| address);
                let account: Account = get(&accounts, address)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("indexed account {address:?} missing"))
                })?;
                items.push(account);
            }
            Ok(Page { items, cursor })
        })
        .await
    }
}

/// The most rows one step of a purge removes: one write transaction. A mailbox of a hundred
/// thousand messages is some three hundred thousand rows; removed in one transaction they held
/// the writer, and so every session's writes, for its whole length, with all its dirty pages.
const PURGE_STEP: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leftovers {
    Gone,
    Remain,
}

/// One step of removing what an address's last owner left (its mailbox, notices, notice status
/// and kept mail): at most [`PURGE_STEP`] rows, in the caller's transaction.
fn purge_step(txn: &WriteTransaction, address: &Address) -> TxResult<Leftovers> {
    let mut budget = PURGE_STEP;
    super::mailbox::purge_mailbox(txn, address, &mut budget)?;
    super::notices::purge(txn, address, &mut budget)?;
    super::mailbox::remove_prefixed(
        &mut txn.open_table(MAIL)?,
        &key(&[address.as_str(), ""]),
        &mut budget,
    )?;
    Ok(match budget {
        0 => Leftovers::Remain,
        _ => Leftovers::Gone,
    })
}

impl EmbeddedStore {
    /// Removes what the address's last owner left, a step a write, so other writes run between
    /// steps. Stops if an account exists at the address again: its creation removed the rest
    /// before it, and what is there now is the new owner's.
    async fn purge_leftovers(&self, address: &Address) -> StoreResult<()> {
        loop {
            let address = address.clone();
            let left = self
                .write(move |txn| {
                    if txn.open_table(ACCOUNTS)?.get(address.as_str())?.is_some() {
                        return Ok(Leftovers::Gone);
                    }
                    purge_step(txn, &address)
                })
                .await?;
            if left == Leftovers::Gone {
                return Ok(());
            }
        }
    }
}
