//! Server settings, domains and their push secrets.

use super::*;

#[async_trait]
impl crate::DomainStore for EmbeddedStore {
    async fn server_settings(&self) -> StoreResult<ServerSettings> {
        self.read(|txn| Ok(get(&txn.open_table(SETTINGS)?, "server")?.unwrap_or_default()))
            .await
    }

    async fn put_server_settings(&self, settings: &ServerSettings) -> StoreResult<()> {
        let settings = settings.clone();
        self.write(move |txn| {
            txn.open_table(SETTINGS)?
                .insert("server", encode(&settings)?.as_str())?;
            Ok(())
        })
        .await
    }

    async fn domain(&self, name: &DomainName) -> StoreResult<Option<Domain>> {
        let name = name.clone();
        self.read(move |txn| get(&txn.open_table(DOMAINS)?, name.as_str()))
            .await
    }

    async fn put_domain(&self, domain: &Domain) -> StoreResult<()> {
        let domain = domain.clone();
        self.write(move |txn| {
            put_record(txn, DOMAINS, domain.name.as_str(), &domain, Presence::Any).map(drop)
        })
        .await
    }

    async fn create_domain(&self, domain: &Domain) -> StoreResult<bool> {
        let domain = domain.clone();
        self.write(move |txn| {
            put_record(
                txn,
                DOMAINS,
                domain.name.as_str(),
                &domain,
                Presence::Absent,
            )
        })
        .await
    }

    async fn update_domain(&self, domain: &Domain) -> StoreResult<bool> {
        let domain = domain.clone();
        self.write(move |txn| {
            put_record(
                txn,
                DOMAINS,
                domain.name.as_str(),
                &domain,
                Presence::Present,
            )
        })
        .await
    }

    async fn list_domains(&self) -> StoreResult<Vec<Domain>> {
        self.read(|txn| {
            scan(&txn.open_table(DOMAINS)?, "", None, false)?
                .iter()
                .map(|(_, v)| decode(v))
                .collect()
        })
        .await
    }

    async fn delete_domain(&self, name: &DomainName) -> StoreResult<DomainDelete> {
        let name = name.clone();
        self.write(move |txn| {
            if super::accounts::domain_has_accounts(txn, &name)? {
                return Ok(DomainDelete::HasAccounts);
            }
            if txn.open_table(DOMAINS)?.remove(name.as_str())?.is_none() {
                return Ok(DomainDelete::NotFound);
            }
            let prefix = format!("{name}{SEP}");
            let mut secrets = txn.open_table(SECRETS)?;
            for (k, _) in scan(&secrets, &prefix, None, false)? {
                secrets.remove(k.as_str())?;
            }
            // A token scoped to the domain dies with it: it must not control a domain
            // created later under the same name.
            let mut tokens = txn.open_table(TOKENS)?;
            for (id, record) in scan(&tokens, "", None, false)? {
                let token: AdminToken = decode(&record)?;
                if token.scope == TokenScope::Domain(name.clone()) {
                    tokens.remove(id.as_str())?;
                }
            }
            Ok(DomainDelete::Deleted)
        })
        .await
    }

    async fn push_secrets(&self, domain: &DomainName) -> StoreResult<Vec<PushSecret>> {
        let prefix = format!("{domain}{SEP}");
        self.read(move |txn| {
            scan(&txn.open_table(SECRETS)?, &prefix, None, true)?
                .iter()
                .map(|(_, v)| decode(v))
                .collect()
        })
        .await
    }

    async fn add_push_secret(
        &self,
        domain: &DomainName,
        secret: &PushSecret,
        max_live: u32,
    ) -> StoreResult<SecretAdd> {
        let (domain, secret) = (domain.clone(), secret.clone());
        self.write(move |txn| {
            if txn.open_table(DOMAINS)?.get(domain.as_str())?.is_none() {
                return Ok(SecretAdd::NoSuchDomain);
            }
            let mut secrets = txn.open_table(SECRETS)?;
            let prefix = format!("{domain}{SEP}");
            if scan(&secrets, &prefix, None, false)?.len() >= max_live as usize {
                return Ok(SecretAdd::TooMany);
            }
            let k = key(&[domain.as_str(), &stamp(secret.created_at), &secret.id]);
            secrets.insert(k.as_str(), encode(&secret)?.as_str())?;
            Ok(SecretAdd::Added)
        })
        .await
    }

    async fn retire_push_secret(&self, domain: &DomainName, id: &str) -> StoreResult<bool> {
        let (prefix, id) = (format!("{domain}{SEP}"), id.to_owned());
        self.write(move |txn| {
            let mut secrets = txn.open_table(SECRETS)?;
            let found = scan(&secrets, &prefix, None, false)?
                .into_iter()
                .find(|(k, _)| k.ends_with(&format!("{SEP}{id}")));
            match found {
                Some((k, _)) => {
                    secrets.remove(k.as_str())?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
        .await
    }
}
