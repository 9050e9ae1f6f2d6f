//! System mail kept instead of sent.

use super::*;

#[async_trait]
impl crate::KeptMailStore for DynamoStore {
    async fn record_mail(&self, mail: &StoredMail) -> StoreResult<()> {
        self.put(HashMap::from([
            ("pk".into(), s(account_pk(&mail.to))),
            (
                "sk".into(),
                s(format!(
                    "MAIL#{}#{}",
                    mail.at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    mail.id
                )),
            ),
            ("id".into(), s(&mail.id)),
            ("to".into(), s(mail.to.as_str())),
            ("subject".into(), s(&mail.subject)),
            ("body".into(), s(&mail.body)),
            ("at".into(), time(mail.at)),
        ]))
        .await
    }

    async fn mails(&self, to: &Address, limit: usize) -> StoreResult<Vec<StoredMail>> {
        let page = self
            .page(Listing::table_prefix(account_pk(to), "MAIL#"), None, limit)
            .await?;
        page.items
            .iter()
            .map(|item| {
                Ok(StoredMail {
                    id: get_s(item, "id")?.to_owned(),
                    to: get_parsed(item, "to", Address::parse)?,
                    subject: get_s(item, "subject")?.to_owned(),
                    body: get_s(item, "body")?.to_owned(),
                    at: get_time(item, "at")?,
                })
            })
            .collect()
    }
}
