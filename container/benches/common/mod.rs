//! What the benchmarks share: their settings from the environment, accounts, percentiles, SMTP
//! replies.

#![allow(dead_code)] // each benchmark uses its own part

use std::time::Duration;

use pushmail_core::types::{Account, Address, now};

use tokio::io::AsyncBufReadExt;

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An enabled account with no password, quota, aliases or rules: what the benchmarks fill
/// their stores with.
pub fn account(address: Address) -> Account {
    Account {
        address,
        password_hash: String::new(),
        enabled: true,
        display_name: None,
        pushed_folders: Vec::new(),
        created_at: now(),
        revision: 0,
        quota_bytes: None,
        sender_aliases: Vec::new(),
        filing_rules: Vec::new(),
    }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// One SMTP reply, read to its last line.
pub async fn reply<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> String {
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).await.unwrap() > 0,
            "the server closed the connection"
        );
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    }
}
