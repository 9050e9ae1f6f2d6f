//! AUTH on the submission listener (RFC 4954): PLAIN and LOGIN, only over TLS (or from
//! loopback when the operator allows it), checked with the same per-account and per-source
//! limits as SUBSCRIBE, on a surface of its own.

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pushmail_core::sasl::parse_plain;
use pushmail_core::types::quoted;
use pushmail_store::Surface;
use pushmail_store::credentials::{CredentialError, check_login};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tracing::{info, warn};

use crate::reply::{Enhanced, Reply};
use crate::session::{Role, Session, Smtp, send};
use crate::wire::{Line, read_line};
use pushmail_listener::Connection;

/// RFC 4954 §4: a client's AUTH line may be up to 12,288 octets.
const MAX_AUTH_LINE: usize = 12_288;

const BAD_CREDENTIALS: Reply =
    Reply::new(535, Enhanced(5, 7, 8), "Authentication credentials invalid");

impl Smtp {
    /// Whether AUTH may be used now: submission only, and only over TLS unless plaintext is
    /// allowed for loopback peers.
    pub(crate) fn auth_allowed(&self, session: &Session, peer: SocketAddr) -> bool {
        self.role == Role::Submission
            && (session.tls
                || (self.settings.plaintext_auth_on_loopback && peer.ip().is_loopback()))
    }

    /// Runs one AUTH exchange; the answer is the final reply.
    pub(crate) async fn authenticate<S>(
        &self,
        io: &mut BufReader<Connection<S>>,
        session: &mut Session,
        peer: SocketAddr,
        mechanism: u64,
        initial_response: &str,
    ) -> std::io::Result<Reply>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if self.role != Role::Submission {
            return Ok(Reply::new(
                502,
                Enhanced(5, 5, 1),
                "AUTH is not offered here",
            ));
        }
        if !self.auth_allowed(session, peer) {
            let why = "Must issue a STARTTLS command first";
            return Ok(Reply::new(530, Enhanced(5, 7, 0), why));
        }
        if session.user.is_some() {
            return Ok(Reply::new(503, Enhanced(5, 5, 1), "Already authenticated"));
        }
        if session.envelope.from.is_some() {
            let why = "AUTH is not allowed during a mail transaction";
            return Ok(Reply::new(503, Enhanced(5, 5, 1), why));
        }
        let initial = Some(initial_response).filter(|text| !text.is_empty());
        let (login, password) = match mechanism {
            smtp_proto::AUTH_PLAIN => {
                let response = match initial {
                    // "=" is an empty initial response (RFC 4954 §4).
                    Some(text) => text.to_owned(),
                    None => match challenge(io, "", self.settings.idle_before_mail).await? {
                        Ok(text) => text,
                        Err(answer) => return Ok(answer),
                    },
                };
                match decode(&response).as_deref().and_then(parse_plain) {
                    Some(parts) => parts,
                    None => {
                        let why = "Cannot decode the PLAIN response";
                        return Ok(Reply::new(501, Enhanced(5, 5, 2), why));
                    }
                }
            }
            smtp_proto::AUTH_LOGIN => {
                let login = match initial {
                    Some(text) => text.to_owned(),
                    None => {
                        match challenge(io, "VXNlcm5hbWU6", self.settings.idle_before_mail).await? {
                            Ok(text) => text,
                            Err(answer) => return Ok(answer),
                        }
                    }
                };
                let password =
                    match challenge(io, "UGFzc3dvcmQ6", self.settings.idle_before_mail).await? {
                        Ok(text) => text,
                        Err(answer) => return Ok(answer),
                    };
                let login = decode(&login).and_then(|raw| String::from_utf8(raw).ok());
                let password = decode(&password).and_then(|raw| String::from_utf8(raw).ok());
                match login.zip(password) {
                    Some(parts) => parts,
                    None => {
                        let why = "Cannot decode the LOGIN response";
                        return Ok(Reply::new(501, Enhanced(5, 5, 2), why));
                    }
                }
            }
            _ => {
                let why = "Unrecognized authentication mechanism";
                return Ok(Reply::new(504, Enhanced(5, 5, 4), why));
            }
        };
        Ok(self.check(session, peer, &login, &password).await)
    }

    async fn check(
        &self,
        session: &mut Session,
        peer: SocketAddr,
        login: &str,
        password: &str,
    ) -> Reply {
        let checked = check_login(
            self.store.as_ref(),
            Surface::Submission,
            login,
            password,
            peer.ip(),
        )
        .await;
        match checked {
            Ok(account) => {
                info!(%peer, account = %account.address, "SMTP AUTH succeeded");
                session.user = Some(account);
                Reply::new(235, Enhanced(2, 7, 0), "Authentication successful")
            }
            Err(CredentialError::BadCredentials) => {
                info!(%peer, login = %quoted(login), "SMTP AUTH failed");
                BAD_CREDENTIALS
            }
            Err(CredentialError::RateLimited { .. } | CredentialError::Busy) => {
                warn!(%peer, login = %quoted(login), "SMTP AUTH refused: too many attempts");
                let why = "Too many authentication attempts; try again later";
                Reply::new(454, Enhanced(4, 7, 0), why)
            }
            Err(CredentialError::Store(error)) => {
                warn!(%peer, %error, "SMTP AUTH could not be checked");
                Reply::new(454, Enhanced(4, 7, 0), "Temporary authentication failure")
            }
        }
    }
}

/// Sends a 334 challenge and reads the client's line; `Err` holds the final answer.
/// A silent client is not waited for longer than `limit`: the session ends.
async fn challenge<S>(
    io: &mut BufReader<Connection<S>>,
    prompt: &'static str,
    limit: std::time::Duration,
) -> std::io::Result<Result<String, Reply>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    send(io, &Reply::bare(334, prompt)).await?;
    let line = tokio::time::timeout(limit, read_line(io, MAX_AUTH_LINE))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "silent during AUTH"))??;
    Ok(match line {
        Line::Complete(line) if line == b"*" => Err(Reply::new(
            501,
            Enhanced(5, 0, 0),
            "Authentication cancelled",
        )),
        Line::Complete(line) => String::from_utf8(line)
            .map_err(|_| Reply::new(501, Enhanced(5, 5, 2), "Cannot decode the response")),
        Line::TooLong { .. } => Err(Reply::new(
            500,
            Enhanced(5, 5, 6),
            "Authentication exchange line is too long",
        )),
        Line::BareLineEnding(_) => Err(Reply::new(
            500,
            Enhanced(5, 5, 2),
            "Lines must end with CRLF",
        )),
        Line::Closed => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed during AUTH",
            ));
        }
    })
}

fn decode(text: &str) -> Option<Vec<u8>> {
    if text == "=" {
        return Some(Vec::new());
    }
    STANDARD.decode(text.trim()).ok()
}
