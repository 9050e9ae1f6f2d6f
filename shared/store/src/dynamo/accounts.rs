//! Mailbox accounts.

use super::*;

#[async_trait]
impl crate::AccountStore for DynamoStore {
    async fn account(&self, address: &Address) -> StoreResult<Option<Account>> {
        self.get(account_pk(address), "ACCOUNT")
            .await?
            .as_ref()
            .map(account_from)
            .transpose()
    }

    async fn put_account(&self, account: &Account) -> StoreResult<()> {
        self.put(account_item(account)).await
    }

    async fn create_account(&self, account: &Account) -> StoreResult<bool> {
        if self.account(&account.address).await?.is_some() {
            return Ok(false);
        }
        // A new person at an old address starts with an empty mailbox, even if the last
        // owner's purge was cut short.
        self.purge_mailbox(&account.address).await?;
        self.put_if(account_item(account), "attribute_not_exists(pk)", vec![])
            .await
    }

    async fn update_account(&self, account: &Account) -> StoreResult<AccountUpdate> {
        let updated = Account {
            revision: account.revision + 1,
            ..account.clone()
        };
        // Items written before revisions existed have none: they are revision 0.
        let condition = if account.revision == 0 {
            "attribute_exists(pk) AND (attribute_not_exists(revision) OR revision = :revision)"
        } else {
            "attribute_exists(pk) AND revision = :revision"
        };
        let written = self
            .put_if(
                account_item(&updated),
                condition,
                vec![(":revision", n(account.revision))],
            )
            .await?;
        if written {
            return Ok(AccountUpdate::Updated(updated));
        }
        Ok(match self.account(&account.address).await? {
            None => AccountUpdate::NotFound,
            Some(_) => AccountUpdate::Conflict,
        })
    }

    async fn delete_account(&self, address: &Address) -> StoreResult<AccountDelete> {
        let deleted = self.delete_account_and_link(address).await?;
        // Also when no account was found: a delete of the address again finishes a purge that
        // a crash or a request's time limit cut short (what it did is kept, page by page).
        self.purge_mailbox(address).await?;
        Ok(deleted)
    }

    async fn list_accounts(
        &self,
        domain: &DomainName,
        prefix: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Account>> {
        let mut listing = Listing::index("gsi1", format!("ACCOUNTS#{domain}"), true);
        listing.sort_prefix = prefix.map(str::to_owned);
        let page = self.page(listing, cursor, limit).await?;
        Ok(Page {
            items: page
                .items
                .iter()
                .map(account_from)
                .collect::<StoreResult<_>>()?,
            cursor: page.cursor,
        })
    }
}

impl DynamoStore {
    /// The account and its link, in one transaction; the mailbox is purged after it.
    async fn delete_account_and_link(&self, address: &Address) -> StoreResult<AccountDelete> {
        contended("one account", || async {
            let link = self.link(address).await?;
            let delete_account = delete_write(
                Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(account_pk(address)))
                    .key("sk", s("ACCOUNT"))
                    .condition_expression("attribute_exists(pk)"),
            )?;
            // The link must still be as read, so the returned link is the one deleted.
            let delete_link = Delete::builder()
                .table_name(&self.table)
                .key("pk", s(account_pk(address)))
                .key("sk", s("LINK"));
            let delete_link = delete_write(match &link {
                Some(link) => delete_link
                    .condition_expression("subscription_id = :id AND #state = :state")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":id", s(&link.subscription_id))
                    .expression_attribute_values(":state", s(link_state_str(link.state))),
                None => delete_link.condition_expression("attribute_not_exists(pk)"),
            })?;
            if self.transact(vec![delete_account, delete_link]).await? {
                return Ok(Attempt::Done(AccountDelete::Deleted {
                    live_link: link.filter(Link::is_linked),
                }));
            }
            Ok(match self.account(address).await? {
                None => Attempt::Done(AccountDelete::NotFound),
                Some(_) => Attempt::Raced,
            })
        })
        .await
    }
}
