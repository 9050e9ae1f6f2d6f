//! The next hop for mail to other domains: a smarthost spoken to over SMTP here; SES lives with
//! the other AWS clients (pushmail-runtime) behind the same trait.

use std::time::Duration;

use async_trait::async_trait;
use pushmail_core::types::Address;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::reply::Reply;
use crate::wire::{Line, read_line};

/// What the next hop said about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Try again later.
    Temporary(String),
    /// Will never work: bounce.
    Permanent(String),
}

#[async_trait]
pub trait Transport: Send + Sync {
    /// Hands `raw` over for `recipients`; one verdict per recipient, in their order.
    async fn send(&self, sender: &Address, recipients: &[Address], raw: &[u8]) -> Vec<Verdict>;
}

/// A relay that takes everything pushmail sends it (an MTA on the local network, or a
/// provider's relay): plain SMTP, no AUTH.
#[derive(Debug, Clone)]
pub struct Smarthost {
    /// `host:port`.
    pub address: String,
    /// The name given in EHLO.
    pub hostname: String,
    /// For the connection and for each reply (RFC 5321 §4.5.3.2 allows minutes; this is less).
    pub timeout: Duration,
}

/// What the relay's reply means for the recipients it is about.
fn verdict(reply: &Reply) -> Verdict {
    match reply.code() {
        200..=399 => Verdict::Accepted,
        500..=599 => Verdict::Permanent(reply.to_string()),
        _ => Verdict::Temporary(reply.to_string()),
    }
}

#[async_trait]
impl Transport for Smarthost {
    async fn send(&self, sender: &Address, recipients: &[Address], raw: &[u8]) -> Vec<Verdict> {
        let connect = tokio::time::timeout(self.timeout, TcpStream::connect(&self.address)).await;
        let stream = match connect {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return all(recipients, format!("relay unreachable: {error}")),
            Err(_) => return all(recipients, "relay unreachable: timed out".into()),
        };
        match self
            .conversation(BufReader::new(stream), sender, recipients, raw)
            .await
        {
            Ok(verdicts) => verdicts,
            Err(error) => all(recipients, format!("relay conversation failed: {error}")),
        }
    }
}

impl Smarthost {
    async fn conversation<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut io: BufReader<S>,
        sender: &Address,
        recipients: &[Address],
        raw: &[u8],
    ) -> std::io::Result<Vec<Verdict>> {
        let greeting = self.read_reply(&mut io).await?;
        if greeting.code() != 220 {
            return Ok(vec![verdict(&greeting); recipients.len()]);
        }
        let ehlo = self
            .command(&mut io, &format!("EHLO {}", self.hostname))
            .await?;
        if ehlo.code() != 250 {
            let helo = self
                .command(&mut io, &format!("HELO {}", self.hostname))
                .await?;
            if helo.code() != 250 {
                return Ok(vec![verdict(&helo); recipients.len()]);
            }
        }
        let mail = self
            .command(&mut io, &format!("MAIL FROM:<{sender}>"))
            .await?;
        if mail.code() != 250 {
            return Ok(vec![verdict(&mail); recipients.len()]);
        }
        let mut verdicts = Vec::with_capacity(recipients.len());
        for recipient in recipients {
            let rcpt = self
                .command(&mut io, &format!("RCPT TO:<{recipient}>"))
                .await?;
            verdicts.push(verdict(&rcpt));
        }
        if !verdicts.contains(&Verdict::Accepted) {
            let _ = self.command(&mut io, "QUIT").await;
            return Ok(verdicts);
        }
        let data = self.command(&mut io, "DATA").await?;
        if data.code() != 354 {
            return Ok(overrule(verdicts, verdict(&data)));
        }
        io.write_all(&dot_stuffed(raw)).await?;
        io.flush().await?;
        let done = self.read_reply(&mut io).await?;
        let _ = self.command(&mut io, "QUIT").await;
        Ok(if done.code() == 250 {
            verdicts
        } else {
            overrule(verdicts, verdict(&done))
        })
    }

    async fn command<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut BufReader<S>,
        line: &str,
    ) -> std::io::Result<Reply> {
        io.write_all(line.as_bytes()).await?;
        io.write_all(b"\r\n").await?;
        io.flush().await?;
        self.read_reply(io).await
    }

    /// Reads a (possibly multi-line) reply, within the timeout and a bounded size.
    async fn read_reply<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        io: &mut BufReader<S>,
    ) -> std::io::Result<Reply> {
        let broken =
            |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned());
        let mut text = Vec::new();
        for _ in 0..64 {
            let line = tokio::time::timeout(self.timeout, read_line(io, 2048))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply"))??;
            let Line::Complete(line) = line else {
                return Err(broken("malformed reply line"));
            };
            let line = String::from_utf8_lossy(&line).into_owned();
            let code = line
                .get(..3)
                .and_then(|code| code.parse::<u16>().ok())
                .ok_or_else(|| broken("reply without a code"))?;
            text.push(line.get(4..).unwrap_or("").to_owned());
            if line.as_bytes().get(3) != Some(&b'-') {
                // As read: its enhanced code, if any, stays in the text.
                return Ok(Reply::bare(code, text.join(" ")));
            }
        }
        Err(broken("reply too long"))
    }
}

/// The same verdict for every recipient.
fn all(recipients: &[Address], why: String) -> Vec<Verdict> {
    vec![Verdict::Temporary(why); recipients.len()]
}

/// A refusal of the message overrules every recipient the relay had accepted.
fn overrule(verdicts: Vec<Verdict>, refusal: Verdict) -> Vec<Verdict> {
    verdicts
        .into_iter()
        .map(|v| match v {
            Verdict::Accepted => refusal.clone(),
            other => other,
        })
        .collect()
}

/// The message as DATA carries it: lines starting with "." doubled, ended by CRLF.CRLF.
fn dot_stuffed(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut at_line_start = true;
    for &byte in raw {
        if at_line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        at_line_start = byte == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing() {
        assert_eq!(
            dot_stuffed(b".a\r\nb\r\n..c\r\n"),
            b"..a\r\nb\r\n...c\r\n.\r\n"
        );
        assert_eq!(dot_stuffed(b"no end"), b"no end\r\n.\r\n");
    }
}
