//! Server settings, domains and their push secrets.

use super::*;

#[async_trait]
impl crate::DomainStore for DynamoStore {
    async fn server_settings(&self) -> StoreResult<ServerSettings> {
        match self.get("SERVER".into(), "SETTINGS").await? {
            Some(item) => Ok(ServerSettings {
                push_enabled: get_bool(&item, "push_enabled")?,
            }),
            None => Ok(ServerSettings::default()),
        }
    }

    async fn put_server_settings(&self, settings: &ServerSettings) -> StoreResult<()> {
        self.put(HashMap::from([
            ("pk".into(), s("SERVER")),
            ("sk".into(), s("SETTINGS")),
            (
                "push_enabled".into(),
                AttributeValue::Bool(settings.push_enabled),
            ),
        ]))
        .await
    }

    async fn domain(&self, name: &DomainName) -> StoreResult<Option<Domain>> {
        self.get(domain_pk(name), "DOMAIN")
            .await?
            .as_ref()
            .map(domain_from)
            .transpose()
    }

    async fn put_domain(&self, domain: &Domain) -> StoreResult<()> {
        self.write_domain(domain, None).await.map(|_| ())
    }

    async fn create_domain(&self, domain: &Domain) -> StoreResult<bool> {
        self.write_domain(domain, Some("attribute_not_exists(pk)"))
            .await
    }

    async fn update_domain(&self, domain: &Domain) -> StoreResult<bool> {
        self.write_domain(domain, Some("attribute_exists(pk)"))
            .await
    }

    async fn list_domains(&self) -> StoreResult<Vec<Domain>> {
        self.query_partition_of("gsi1", "DOMAINS")
            .await?
            .iter()
            .map(domain_from)
            .collect()
    }

    async fn delete_domain(&self, name: &DomainName) -> StoreResult<DomainDelete> {
        let accounts = self
            .page(
                Listing::index("gsi1", format!("ACCOUNTS#{name}"), true),
                None,
                1,
            )
            .await?;
        if !accounts.items.is_empty() {
            return Ok(DomainDelete::HasAccounts);
        }
        let mut writes = vec![delete_write(
            Delete::builder()
                .table_name(&self.table)
                .key("pk", s(domain_pk(name)))
                .key("sk", s("DOMAIN"))
                .condition_expression("attribute_exists(pk)"),
        )?];
        for secret in self
            .query_partition(domain_pk(name), Some("SECRET#"), false)
            .await?
        {
            writes.push(delete_write(
                Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(domain_pk(name)))
                    .key("sk", s(get_s(&secret, "sk")?)),
            )?);
        }
        // A token scoped to the domain dies with it: it must not control a domain created later
        // under the same name. (Found through the token index, which is eventually consistent:
        // a token made in the same instant may be missed; docs/security.md.)
        for token in self.list_tokens().await? {
            if token.scope == TokenScope::Domain(name.clone()) {
                writes.push(delete_write(
                    Delete::builder()
                        .table_name(&self.table)
                        .key("pk", s(format!("TOKEN#{}", token.id)))
                        .key("sk", s("TOKEN")),
                )?);
            }
        }
        Ok(if self.transact(writes).await? {
            DomainDelete::Deleted
        } else {
            DomainDelete::NotFound
        })
    }

    async fn push_secrets(&self, domain: &DomainName) -> StoreResult<Vec<PushSecret>> {
        self.query_partition(domain_pk(domain), Some("SECRET#"), true)
            .await?
            .iter()
            .map(|item| {
                Ok(PushSecret {
                    id: get_s(item, "id")?.to_owned(),
                    value: get_s(item, "value")?.to_owned(),
                    created_at: get_time(item, "created_at")?,
                })
            })
            .collect()
    }

    async fn add_push_secret(
        &self,
        domain: &DomainName,
        secret: &PushSecret,
        max_live: u32,
    ) -> StoreResult<SecretAdd> {
        let created = secret
            .created_at
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        // The domain item counts live secrets, so the limit holds under concurrent adds.
        let count = update_write(
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(domain_pk(domain)))
                .key("sk", s("DOMAIN"))
                .update_expression("SET secret_count = if_not_exists(secret_count, :zero) + :one")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(secret_count) OR secret_count < :max)",
                )
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":max", n(max_live)),
        )?;
        let put = put_write(
            Put::builder()
                .table_name(&self.table)
                .item("pk", s(domain_pk(domain)))
                .item("sk", s(format!("SECRET#{created}#{}", secret.id)))
                .item("id", s(&secret.id))
                .item("value", s(&secret.value))
                .item("created_at", s(created)),
        )?;
        if self.transact(vec![count, put]).await? {
            return Ok(SecretAdd::Added);
        }
        Ok(match self.domain(domain).await? {
            None => SecretAdd::NoSuchDomain,
            Some(_) => SecretAdd::TooMany,
        })
    }

    async fn retire_push_secret(&self, domain: &DomainName, id: &str) -> StoreResult<bool> {
        let secrets = self
            .query_partition(domain_pk(domain), Some("SECRET#"), false)
            .await?;
        let Some(secret) = secrets.iter().find(|item| {
            item.get("id")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|v| v == id)
        }) else {
            return Ok(false);
        };
        let delete = delete_write(
            Delete::builder()
                .table_name(&self.table)
                .key("pk", s(domain_pk(domain)))
                .key("sk", s(get_s(secret, "sk")?))
                .condition_expression("attribute_exists(pk)"),
        )?;
        let uncount = update_write(
            Update::builder()
                .table_name(&self.table)
                .key("pk", s(domain_pk(domain)))
                .key("sk", s("DOMAIN"))
                .update_expression("SET secret_count = secret_count - :one")
                .condition_expression("secret_count > :zero")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":zero", n(0)),
        )?;
        self.transact(vec![delete, uncount]).await
    }
}
