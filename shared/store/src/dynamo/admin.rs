//! Admin tokens and the audit trail.

use super::*;

#[async_trait]
impl crate::AdminStore for DynamoStore {
    async fn put_token(&self, token: &AdminToken) -> StoreResult<()> {
        let (scope, scope_domain) = match &token.scope {
            TokenScope::Server => ("server", None),
            TokenScope::Domain(domain) => ("domain", Some(domain.as_str())),
        };
        let mut item: Item = HashMap::from([
            ("pk".into(), s(format!("TOKEN#{}", token.id))),
            ("sk".into(), s("TOKEN")),
            ("gsi2pk".into(), s("TOKENS")),
            (
                "gsi2sk".into(),
                s(format!(
                    "{}#{}",
                    token
                        .created_at
                        .to_rfc3339_opts(SecondsFormat::Millis, true),
                    token.id
                )),
            ),
            ("id".into(), s(&token.id)),
            ("secret_hash".into(), s(&token.secret_hash)),
            ("scope".into(), s(scope)),
            ("label".into(), s(&token.label)),
            ("created_at".into(), time(token.created_at)),
        ]);
        if let Some(domain) = scope_domain {
            item.insert("scope_domain".into(), s(domain));
        }
        self.put(item).await
    }

    async fn token(&self, id: &str) -> StoreResult<Option<AdminToken>> {
        self.get(format!("TOKEN#{id}"), "TOKEN")
            .await?
            .as_ref()
            .map(token_from)
            .transpose()
    }

    async fn list_tokens(&self) -> StoreResult<Vec<AdminToken>> {
        self.query_partition_of("gsi2", "TOKENS")
            .await?
            .iter()
            .map(token_from)
            .collect()
    }

    async fn delete_token(&self, id: &str) -> StoreResult<TokenDelete> {
        contended("the server-wide tokens", || async {
            let Some(token) = self.token(id).await? else {
                return Ok(Attempt::Done(TokenDelete::NotFound));
            };
            let delete = delete_write(
                Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(format!("TOKEN#{id}")))
                    .key("sk", s("TOKEN"))
                    .condition_expression("attribute_exists(pk)"),
            )?;
            let mut writes = vec![delete];
            if token.scope == TokenScope::Server {
                // Another server-wide token must still exist when this one goes: two racing
                // deletions of the last two conflict, and the retry finds only one left.
                let other = self
                    .list_tokens()
                    .await?
                    .into_iter()
                    .find(|t| t.scope == TokenScope::Server && t.id != token.id);
                let Some(other) = other else {
                    return Ok(Attempt::Done(TokenDelete::LastServerToken));
                };
                writes.push(
                    TransactWriteItem::builder()
                        .condition_check(build(
                            ConditionCheck::builder()
                                .table_name(&self.table)
                                .key("pk", s(format!("TOKEN#{}", other.id)))
                                .key("sk", s("TOKEN"))
                                .condition_expression("attribute_exists(pk)")
                                .build(),
                        )?)
                        .build(),
                );
            }
            Ok(if self.transact(writes).await? {
                Attempt::Done(TokenDelete::Deleted)
            } else {
                Attempt::Raced
            })
        })
        .await
    }

    async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let mut item: Item = HashMap::from([
            ("pk".into(), s(audit_pk(entry.domain.as_ref()))),
            (
                "sk".into(),
                s(format!(
                    "{}#{}",
                    entry.at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    entry.id
                )),
            ),
            ("id".into(), s(&entry.id)),
            ("at".into(), time(entry.at)),
            ("actor".into(), s(&entry.actor)),
            ("action".into(), s(&entry.action)),
            ("target".into(), s(&entry.target)),
        ]);
        if let Some(domain) = &entry.domain {
            item.insert("domain".into(), s(domain.as_str()));
        }
        self.put(item).await
    }

    async fn list_audit(
        &self,
        domain: Option<&DomainName>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let page = self
            .page(Listing::table(audit_pk(domain), false), cursor, limit)
            .await?;
        let items = page
            .items
            .iter()
            .map(|item| {
                Ok(AuditEntry {
                    id: get_s(item, "id")?.to_owned(),
                    at: get_time(item, "at")?,
                    actor: get_s(item, "actor")?.to_owned(),
                    action: get_s(item, "action")?.to_owned(),
                    target: get_s(item, "target")?.to_owned(),
                    domain: item
                        .get("domain")
                        .map(|_| get_parsed(item, "domain", DomainName::parse))
                        .transpose()?,
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok(Page {
            items,
            cursor: page.cursor,
        })
    }
}
