//! Push links (the integrated accounts).

use super::*;

#[async_trait]
impl crate::LinkStore for DynamoStore {
    async fn link(&self, address: &Address) -> StoreResult<Option<Link>> {
        self.get(account_pk(address), "LINK")
            .await?
            .as_ref()
            .map(link_from)
            .transpose()
    }

    async fn insert_link(
        &self,
        link: &Link,
        activation: &ActivationJob,
        checked: &Account,
        signed_at: DateTime<Utc>,
    ) -> StoreResult<LinkInsert> {
        contended("one account's link", || async {
            // `Account::still_admits`, as a condition on the account item.
            let account_unchanged = TransactWriteItem::builder()
                .condition_check(build(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .key("pk", s(account_pk(&link.address)))
                        .key("sk", s("ACCOUNT"))
                        .condition_expression("enabled = :true AND password_hash = :hash")
                        .expression_attribute_values(":true", AttributeValue::Bool(true))
                        .expression_attribute_values(":hash", s(&checked.password_hash))
                        .build(),
                )?)
                .build();
            // `Link::yields_to`, as a condition: no link yet, a lower generation, or an admin's
            // removal before the signature.
            let put_link = put_write(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(link_item(link)))
                    .condition_expression(
                        "attribute_not_exists(pk) OR generation < :generation \
                         OR (#state = :removed AND unlinked_at < :signed_at)",
                    )
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":generation", n(link.generation))
                    .expression_attribute_values(":removed", s("removed"))
                    .expression_attribute_values(":signed_at", time(signed_at)),
            )?;
            let put_job = put_write(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(activation_item(activation)))
                    .condition_expression("attribute_not_exists(pk)"),
            )?;
            if self
                .transact(vec![account_unchanged, put_link, put_job])
                .await?
            {
                return Ok(Attempt::Done(LinkInsert::Inserted));
            }
            // Refused or raced: the account or the current link explains which.
            let account = self.account(&link.address).await?;
            if !account.is_some_and(|account| account.still_admits(checked)) {
                return Ok(Attempt::Done(LinkInsert::AccountChanged));
            }
            Ok(match self.link(&link.address).await? {
                Some(current) if !current.yields_to(link.generation, signed_at) => {
                    Attempt::Done(LinkInsert::Conflict(current))
                }
                _ => Attempt::Raced,
            })
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
        contended("one account's link", || async {
            // `Link::unlink_rule` and `Link::tombstone`, as one conditional update.
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(account_pk(address)))
                .key("sk", s("LINK"))
                .update_expression(
                    "SET #state = :unlinked, unlinked_at = :at, generation = :generation \
                     REMOVE gsi1pk, gsi1sk, gsi2pk, gsi2sk",
                )
                .condition_expression(
                    "#state = :linked AND (generation < :generation OR \
                     (generation = :generation AND registration = :registration))",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":unlinked", s("unlinked"))
                .expression_attribute_values(":linked", s("linked"))
                .expression_attribute_values(":at", time(at))
                .expression_attribute_values(":generation", n(generation))
                .expression_attribute_values(":registration", s(registration))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Ok(output) => {
                    let item = output.attributes.unwrap_or_default();
                    Ok(Attempt::Done(Unlink::Unlinked(link_from(&item)?)))
                }
                Err(error) if condition_failed(&error) => Ok(match self.link(address).await? {
                    None => Attempt::Done(Unlink::NotLinked),
                    Some(current) => match current.unlink_rule(registration, generation) {
                        UnlinkRule::NotLinked => Attempt::Done(Unlink::NotLinked),
                        UnlinkRule::Newer => Attempt::Done(Unlink::Newer(current)),
                        UnlinkRule::Unlink => Attempt::Raced,
                    },
                }),
                Err(error) => Err(backend(error)),
            }
        })
        .await
    }

    async fn list_links(&self, query: &LinkQuery) -> StoreResult<Page<Link>> {
        let mut listing = match &query.domain {
            Some(domain) => Listing::index("gsi1", format!("LINKS#{domain}"), false),
            None => Listing::index("gsi2", "LINKS".into(), false),
        };
        if let Some(activation) = query.activation {
            listing.filter = Some(("activation = :activation", s(activation.as_str())));
        }
        let page = self
            .page(listing, query.cursor.as_deref(), query.limit)
            .await?;
        Ok(Page {
            items: page
                .items
                .iter()
                .map(link_from)
                .collect::<StoreResult<_>>()?,
            cursor: page.cursor,
        })
    }

    async fn remove_link(&self, address: &Address, at: DateTime<Utc>) -> StoreResult<Option<Link>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(account_pk(address)))
            .key("sk", s("LINK"))
            .update_expression(
                "SET #state = :removed, unlinked_at = :at REMOVE gsi1pk, gsi1sk, gsi2pk, gsi2sk",
            )
            .condition_expression("#state = :linked")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":removed", s("removed"))
            .expression_attribute_values(":linked", s("linked"))
            .expression_attribute_values(":at", time(at))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        unless_condition_failed(result)?
            .map(|output| link_from(&output.attributes.unwrap_or_default()))
            .transpose()
    }

    async fn requeue_activation(&self, job: &ActivationJob) -> StoreResult<bool> {
        let mark_pending = update_write(self.mark_activation(job, ActivationState::Pending))?;
        let put_job = put_write(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(activation_item(job))),
        )?;
        self.transact(vec![mark_pending, put_job]).await
    }
}

impl DynamoStore {
    /// Sets the link's activation state if `job`'s subscription is still the current one
    /// (`Link::is_current`, as a condition).
    pub(super) fn mark_activation(
        &self,
        job: &ActivationJob,
        state: ActivationState,
    ) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .key("pk", s(account_pk(&job.address)))
            .key("sk", s("LINK"))
            .update_expression("SET activation = :state")
            .condition_expression("subscription_id = :id AND #state = :linked")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":state", s(state.as_str()))
            .expression_attribute_values(":id", s(&job.subscription_id))
            .expression_attribute_values(":linked", s("linked"))
    }
}
