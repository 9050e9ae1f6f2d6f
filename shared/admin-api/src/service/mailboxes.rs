//! An account's folders and messages, as the admin sees them (until the IMAP listener exists,
//! the way to look into a mailbox).

use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::{Folder, MessageMeta};
use pushmail_core::types::{Account, Page};

use super::{AdminService, Principal};
use crate::error::{AdminError, AdminResult};
use crate::input::ListParams;

impl AdminService {
    pub async fn folders(&self, who: &Principal, raw: &str) -> AdminResult<Vec<Folder>> {
        let account = self.existing_account(who, raw).await?;
        Ok(self.store.folders(&account.address).await?)
    }

    /// Self-service: the account's own folders.
    pub async fn own_folders(&self, account: &Account) -> AdminResult<Vec<Folder>> {
        Ok(self.store.folders(&account.address).await?)
    }

    /// A folder's messages by UID, in pages; the cursor is the last UID of the previous page.
    pub async fn folder_messages(
        &self,
        who: &Principal,
        raw: &str,
        raw_folder: &str,
        params: &ListParams,
    ) -> AdminResult<Page<MessageMeta>> {
        let account = self.existing_account(who, raw).await?;
        let folder = FolderName::parse(raw_folder).map_err(|e| AdminError::invalid(e.0))?;
        params.no_prefix()?;
        if params.activation.is_some() {
            return Err(AdminError::invalid(
                "parameter `activation` applies to integrated accounts only",
            ));
        }
        let after = match params.cursor.as_deref() {
            None => 0,
            Some(cursor) => cursor.parse::<u32>().map_err(|_| {
                AdminError::invalid("parameter `cursor` is not a cursor of this listing")
            })?,
        };
        if self
            .store
            .folder(&account.address, &folder)
            .await?
            .is_none()
        {
            return Err(AdminError::not_found(format!(
                "{} has no folder {folder}",
                account.address
            )));
        }
        let limit = params.limit()?;
        // One more than asked for, to know whether there is a next page.
        let mut items = self
            .store
            .messages(&account.address, &folder, after, limit + 1)
            .await?;
        let cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|m| m.uid.to_string())
        } else {
            None
        };
        Ok(Page { items, cursor })
    }
}
