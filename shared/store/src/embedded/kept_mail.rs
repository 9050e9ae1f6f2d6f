//! System mail kept instead of sent.

use super::*;

#[async_trait]
impl crate::KeptMailStore for EmbeddedStore {
    async fn record_mail(&self, mail: &StoredMail) -> StoreResult<()> {
        let mail = mail.clone();
        self.write(move |txn| {
            let k = key(&[mail.to.as_str(), &stamp(mail.at), &mail.id]);
            txn.open_table(MAIL)?
                .insert(k.as_str(), encode(&mail)?.as_str())?;
            Ok(())
        })
        .await
    }

    async fn mails(&self, to: &Address, limit: usize) -> StoreResult<Vec<StoredMail>> {
        let prefix = format!("{to}{SEP}");
        self.read(move |txn| {
            scan(&txn.open_table(MAIL)?, &prefix, None, true)?
                .iter()
                .take(limit)
                .map(|(_, v)| decode(v))
                .collect()
        })
        .await
    }
}
