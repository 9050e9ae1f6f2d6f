//! Admin tokens and the audit trail.

use super::*;

#[async_trait]
impl crate::AdminStore for EmbeddedStore {
    async fn put_token(&self, token: &AdminToken) -> StoreResult<()> {
        let token = token.clone();
        self.write(move |txn| {
            put_record(txn, TOKENS, token.id.as_str(), &token, Presence::Any).map(drop)
        })
        .await
    }

    async fn token(&self, id: &str) -> StoreResult<Option<AdminToken>> {
        let id = id.to_owned();
        self.read(move |txn| get(&txn.open_table(TOKENS)?, &id))
            .await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<AdminToken>> {
        self.read(|txn| {
            let mut tokens: Vec<AdminToken> = scan(&txn.open_table(TOKENS)?, "", None, false)?
                .iter()
                .map(|(_, v)| decode(v))
                .collect::<TxResult<_>>()?;
            tokens.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
            Ok(tokens)
        })
        .await
    }

    async fn delete_token(&self, id: &str) -> StoreResult<TokenDelete> {
        let id = id.to_owned();
        self.write(move |txn| {
            let mut tokens = txn.open_table(TOKENS)?;
            let Some(token) = get::<AdminToken>(&tokens, &id)? else {
                return Ok(TokenDelete::NotFound);
            };
            if token.scope == TokenScope::Server {
                let mut server_tokens = 0;
                for (_, record) in scan(&tokens, "", None, false)? {
                    let other: AdminToken = decode(&record)?;
                    server_tokens += usize::from(other.scope == TokenScope::Server);
                }
                if server_tokens <= 1 {
                    return Ok(TokenDelete::LastServerToken);
                }
            }
            tokens.remove(id.as_str())?;
            Ok(TokenDelete::Deleted)
        })
        .await
    }

    async fn record_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let entry = entry.clone();
        self.write(move |txn| {
            let k = format!(
                "{}{}{SEP}{}",
                audit_prefix(entry.domain.as_ref()),
                stamp(entry.at),
                entry.id
            );
            txn.open_table(AUDIT)?
                .insert(k.as_str(), encode(&entry)?.as_str())?;
            Ok(())
        })
        .await
    }

    async fn list_audit(
        &self,
        domain: Option<&DomainName>,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<AuditEntry>> {
        let prefix = audit_prefix(domain);
        let after = cursor_key(cursor, &prefix)?;
        self.read(move |txn| {
            let table = txn.open_table(AUDIT)?;
            let (rows, cursor) =
                page_from(&table, &prefix, after.as_deref(), true, limit, |_, _| {
                    Ok(true)
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
