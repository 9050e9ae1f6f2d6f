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
        // Read newest first, only as many as asked: the address may have kept a lot.
        self.read(move |txn| first_decoded(&txn.open_table(MAIL)?, &prefix, true, limit))
            .await
    }
}
