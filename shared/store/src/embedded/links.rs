//! Push links (the integrated accounts).

use super::*;

#[async_trait]
impl crate::LinkStore for EmbeddedStore {
    async fn link(&self, address: &Address) -> StoreResult<Option<Link>> {
        let address = address.clone();
        self.read(move |txn| get(&txn.open_table(LINKS)?, address.as_str()))
            .await
    }

    async fn insert_link(
        &self,
        link: &Link,
        activation: &ActivationJob,
        checked: &Account,
        signed_at: DateTime<Utc>,
    ) -> StoreResult<LinkInsert> {
        let (link, activation, checked) = (link.clone(), activation.clone(), checked.clone());
        self.write(move |txn| {
            let account: Option<Account> = get(&txn.open_table(ACCOUNTS)?, link.address.as_str())?;
            if !account.is_some_and(|account| account.still_admits(&checked)) {
                return Ok(LinkInsert::AccountChanged);
            }
            let current: Option<Link> = get(&txn.open_table(LINKS)?, link.address.as_str())?;
            if let Some(current) = current
                .as_ref()
                .filter(|c| !c.yields_to(link.generation, signed_at))
            {
                return Ok(LinkInsert::Conflict(current.clone()));
            }
            put_link(txn, &link, current.as_ref())?;
            super::outbox::put_job(txn, &activation)?;
            Ok(LinkInsert::Inserted)
        })
        .await
    }

    async fn unlink(
        &self,
        address: &Address,
        registration: &str,
        generation: u64,
        at: DateTime<Utc>,
    ) -> StoreResult<Unlink> {
        let (address, registration) = (address.clone(), registration.to_owned());
        self.write(move |txn| {
            let current: Option<Link> = get(&txn.open_table(LINKS)?, address.as_str())?;
            let Some(current) = current else {
                return Ok(Unlink::NotLinked);
            };
            match current.unlink_rule(&registration, generation) {
                UnlinkRule::NotLinked => Ok(Unlink::NotLinked),
                UnlinkRule::Newer => Ok(Unlink::Newer(current)),
                UnlinkRule::Unlink => {
                    let tombstone = current.tombstone(at, generation);
                    put_link(txn, &tombstone, Some(&current))?;
                    Ok(Unlink::Unlinked(tombstone))
                }
            }
        })
        .await
    }

    async fn list_links(&self, query: &LinkQuery) -> StoreResult<Page<Link>> {
        let (table, prefix) = match &query.domain {
            Some(domain) => (LINKS_BY_DOMAIN, format!("{domain}{SEP}")),
            None => (LINKS_BY_TIME, String::new()),
        };
        let after = cursor_key(query.cursor.as_deref(), &prefix)?;
        let (activation, limit) = (query.activation, query.limit);
        self.read(move |txn| {
            let links = txn.open_table(LINKS)?;
            let index = txn.open_table(table)?;
            let mut rows = Vec::new();
            visit(&index, &prefix, after.as_deref(), true, |k, _| {
                let address = k.rsplit(SEP).next().unwrap_or_default();
                let link: Link = get(&links, address)?.ok_or_else(|| {
                    StoreError::Corrupt(format!("index names missing link {address}"))
                })?;
                if activation.is_none_or(|a| a == link.activation) {
                    rows.push((k, encode(&link)?));
                }
                Ok(rows.len() <= limit)
            })?;
            let (rows, cursor) = page_of(rows, limit);
            let items = rows
                .iter()
                .map(|(_, v)| decode(v))
                .collect::<TxResult<_>>()?;
            Ok(Page { items, cursor })
        })
        .await
    }

    async fn remove_link(&self, address: &Address, at: DateTime<Utc>) -> StoreResult<Option<Link>> {
        let address = address.clone();
        self.write(move |txn| {
            let current: Option<Link> = get(&txn.open_table(LINKS)?, address.as_str())?;
            let Some(current) = current.filter(Link::is_linked) else {
                return Ok(None);
            };
            put_link(txn, &current.removed(at), Some(&current))?;
            Ok(Some(current))
        })
        .await
    }

    async fn requeue_activation(&self, job: &ActivationJob) -> StoreResult<bool> {
        let job = job.clone();
        self.write(move |txn| {
            let current: Option<Link> = get(&txn.open_table(LINKS)?, job.address.as_str())?;
            let Some(current) = current.filter(|l| l.is_current(&job.subscription_id)) else {
                return Ok(false);
            };
            let mut pending = current.clone();
            pending.activation = ActivationState::Pending;
            put_link(txn, &pending, Some(&current))?;
            super::outbox::put_job(txn, &job)?;
            Ok(true)
        })
        .await
    }
}
