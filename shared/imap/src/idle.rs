//! IDLE (RFC 2177): new mail in the selected folder is told as `* N EXISTS` as soon as this
//! process hears of it (a hint from a delivery here), or at the next look at the change log
//! (every `idle_poll`: mail delivered by another process). A hint only says "look": the change
//! log is what is reported, so a lost hint delays, never loses, an EXISTS.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::StatusKind;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::reply::{Result, bye, ok, send_status};
use crate::state::{Imap, Next, Session};
use crate::view::Expunges;
use crate::wire::Wire;

enum Wake {
    Done(bool),
    Look,
    Keepalive,
    TooLong,
    Closing,
}

impl Imap {
    pub(crate) async fn idle<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        wire: &mut Wire<S>,
        session: &mut Session,
        tag: Tag<'static>,
    ) -> Result<Next> {
        if session.user.is_none() {
            return Ok(Next::Logout);
        }
        let mut hints = self.hints.subscribe();
        wire.send_raw(b"+ idling\r\n").await?;
        // Anything delivered since the folder was selected, at once.
        Box::pin(self.report_changes(wire, session, Expunges::Report)).await?;
        let ends = Instant::now() + self.settings.idle_max;
        let mut keepalive = Instant::now() + self.settings.keepalive;
        // The next look at the change log without a hint: kept across other accounts' hints,
        // which would otherwise put it off for as long as they keep coming.
        let mut look = Instant::now() + self.settings.idle_poll;
        loop {
            // One timer for all three: an idling session holds as little as it can.
            let timer = look.min(keepalive).min(ends);
            let wake = tokio::select! {
                done = wire.idle_done() => Wake::Done(done?),
                hint = hints.recv() => match hint {
                    // Compared with the session's own address: no copy held while idling.
                    Ok(changed) if session.user.as_ref() != Some(&changed) => continue,
                    // A hint for this account, or hints missed: look.
                    Ok(_) | Err(RecvError::Lagged(_)) => Wake::Look,
                    Err(RecvError::Closed) => {
                        tokio::time::sleep_until(look).await;
                        Wake::Look
                    }
                },
                () = tokio::time::sleep_until(timer) => {
                    if timer == ends {
                        Wake::TooLong
                    } else if timer == keepalive {
                        Wake::Keepalive
                    } else {
                        Wake::Look
                    }
                }
                () = self.closed() => Wake::Closing,
            };
            match wake {
                Wake::Done(true) => {
                    ok(wire, tag, "IDLE terminated").await?;
                    return Ok(Next::Continue);
                }
                Wake::Done(false) => {
                    send_status(wire, Some(tag), StatusKind::Bad, None, "Expected DONE").await?;
                    return Ok(Next::Logout);
                }
                // Boxed, as every step but the wait: an idling session holds only the wait.
                Wake::Look => {
                    look = Instant::now() + self.settings.idle_poll;
                    if !Box::pin(self.still_the_same_account(session)).await {
                        bye(wire, "Account removed or changed; log in again").await?;
                        return Ok(Next::Logout);
                    }
                    Box::pin(self.report_changes(wire, session, Expunges::Report)).await?;
                    Box::pin(self.tell_watched(wire, session)).await?;
                }
                Wake::Keepalive => {
                    keepalive = Instant::now() + self.settings.keepalive;
                    wire.send_raw(b"* OK Still here\r\n").await?;
                }
                Wake::Closing => {
                    bye(wire, "Server shutting down").await?;
                    return Ok(Next::Logout);
                }
                Wake::TooLong => {
                    wire.send_raw(b"* BYE IDLE for too long; reconnect\r\n")
                        .await?;
                    return Ok(Next::Logout);
                }
            }
        }
    }
}
