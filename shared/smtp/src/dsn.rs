//! The bounce put into a sender's INBOX when the relay finally fails, or when a local
//! delivery failed after the others took the message: a delivery status notification (RFC 3464:
//! multipart/report with a human part, message/delivery-status, and the original header).

use chrono::{DateTime, Utc};
use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::mime::MimePart;
use pushmail_core::folder::FolderName;
use pushmail_core::mailbox::NewMessage;
use pushmail_core::types::Address;
use pushmail_store::{Delivery, Store, StoreError};

/// Builds the bounce of `original` for `failures` and puts it into `sender`'s INBOX, outside
/// the quota (it is short, and the sender must learn the mail did not go), and only for the
/// account the writer knew at `known_at`: not a new one created at the address since.
pub(crate) async fn bounce_into_inbox(
    store: &dyn Store,
    hostname: &str,
    sender: &Address,
    original: &[u8],
    arrived: DateTime<Utc>,
    failures: &[Failure],
    known_at: DateTime<Utc>,
) -> Result<Delivery, StoreError> {
    let message = NewMessage {
        raw: delivery_status_notification(hostname, sender, original, arrived, failures),
        flags: Vec::new(),
        internal_date: Utc::now(),
        owner_known_at: Some(known_at),
    };
    store
        .deliver(sender, &FolderName::inbox(), &message, None)
        .await
}

/// One recipient the message did not reach, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    pub recipient: Address,
    /// The relay's last answer (or what went wrong reaching it).
    pub diagnostic: String,
    /// True when the relay refused outright; false when retries ran out.
    pub permanent: bool,
}

/// Builds the bounce of `original` (its raw bytes) for `failures`.
pub fn delivery_status_notification(
    hostname: &str,
    sender: &Address,
    original: &[u8],
    arrived: DateTime<Utc>,
    failures: &[Failure],
) -> Vec<u8> {
    let mut human =
        String::from("Your message could not be delivered to the following recipients.\r\n\r\n");
    let mut status = format!(
        "Reporting-MTA: dns; {hostname}\r\nArrival-Date: {}\r\n",
        arrived.to_rfc2822()
    );
    for failure in failures {
        let diagnostic = printable(&failure.diagnostic);
        let why = if failure.permanent {
            "refused by the receiving server"
        } else {
            "delivery kept failing and was given up"
        };
        human.push_str(&format!("<{}>: {why}: {diagnostic}\r\n", failure.recipient));
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: failed\r\nStatus: {}\r\nDiagnostic-Code: smtp; {diagnostic}\r\n",
            failure.recipient,
            status_code(failure),
        ));
    }
    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new("text/plain", human),
            MimePart::new("message/delivery-status", status),
            MimePart::new("text/rfc822-headers", original_header(original)),
        ],
    );
    MessageBuilder::new()
        .from((
            "Mail Delivery System".to_owned(),
            format!("MAILER-DAEMON@{hostname}"),
        ))
        .to(sender.as_str())
        .subject("Undelivered Mail Returned to Sender")
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-replied"),
        )
        .body(report)
        .write_to_vec()
        .unwrap_or_default()
}

/// The enhanced status code: the relay's own when its answer carries one, else a generic one
/// (4.4.7, delivery time expired, for retries that ran out).
fn status_code(failure: &Failure) -> String {
    let given = failure.diagnostic.split_whitespace().nth(1).filter(|code| {
        let parts: Vec<&str> = code.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "4" | "5")
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    match given {
        Some(code) => code.to_owned(),
        None if failure.permanent => "5.0.0".into(),
        None => "4.4.7".into(),
    }
}

/// What a header line may carry of a remote server's text.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect()
}

fn original_header(raw: &[u8]) -> String {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw.len(), |at| at + 2);
    String::from_utf8_lossy(&raw[..end.min(64 * 1024)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounce_names_each_recipient_and_keeps_the_original_header() {
        let sender = Address::parse("alice@example.com").unwrap();
        let failures = [
            Failure {
                recipient: Address::parse("bob@remote.example").unwrap(),
                diagnostic: "550 5.1.1 no such user".into(),
                permanent: true,
            },
            Failure {
                recipient: Address::parse("carol@remote.example").unwrap(),
                diagnostic: "relay unreachable: timed out".into(),
                permanent: false,
            },
        ];
        let raw = delivery_status_notification(
            "mx.example.com",
            &sender,
            b"Subject: lunch\r\nFrom: alice@example.com\r\n\r\nbody",
            Utc::now(),
            &failures,
        );
        let text = String::from_utf8(raw).unwrap();
        assert!(text.contains("multipart/report"), "{text}");
        assert!(
            text.contains("report-type=\"delivery-status\"")
                || text.contains("report-type=delivery-status"),
            "{text}"
        );
        assert!(text.contains("Final-Recipient: rfc822; bob@remote.example"));
        assert!(text.contains("Status: 5.1.1"));
        assert!(text.contains("Status: 4.4.7"));
        assert!(text.contains("Subject: lunch"));
        assert!(!text.contains("\r\nbody"));
    }
}
