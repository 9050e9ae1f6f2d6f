//! Filing rules, set by an admin or by the account itself (the rule set's checks are on
//! `FilingRule`, in core).

use pushmail_core::rules::FilingRule;
use pushmail_core::types::Account;

use super::{AdminService, Principal};
use crate::error::{AdminError, AdminResult};
use crate::input::FilingRules;

fn checked(input: FilingRules) -> AdminResult<Vec<FilingRule>> {
    FilingRule::check_all(&input.rules).map_err(AdminError::invalid)?;
    Ok(input.rules)
}

impl AdminService {
    pub async fn filing_rules(&self, who: &Principal, raw: &str) -> AdminResult<Vec<FilingRule>> {
        Ok(self.existing_account(who, raw).await?.filing_rules)
    }

    /// Replaces the account's rules whole.
    pub async fn set_filing_rules(
        &self,
        who: &Principal,
        raw: &str,
        input: FilingRules,
    ) -> AdminResult<Vec<FilingRule>> {
        let address = self.account_address(who, raw)?;
        let rules = checked(input)?;
        let account = self
            .modify_account(&address, |account| {
                account.filing_rules = rules.clone();
                Ok(())
            })
            .await?;
        self.rules_changed(&account, &who.token_id).await?;
        Ok(account.filing_rules)
    }

    /// Self-service: the account replaces its own rules, while its password check stands.
    pub async fn set_own_filing_rules(
        &self,
        checked_account: Account,
        input: FilingRules,
    ) -> AdminResult<Vec<FilingRule>> {
        let rules = checked(input)?;
        let account = self
            .modify_own_account(&checked_account, |account| {
                account.filing_rules = rules.clone();
            })
            .await?;
        self.rules_changed(&account, &format!("self:{}", account.address))
            .await?;
        Ok(account.filing_rules)
    }

    async fn rules_changed(&self, account: &Account, actor: &str) -> AdminResult<()> {
        self.audit(
            actor,
            "account.filing_rules",
            account.address.as_str(),
            Some(&account.address.domain()),
        )
        .await
    }
}
