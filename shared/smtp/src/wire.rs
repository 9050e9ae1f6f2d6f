//! SMTP lines. Every line must end in CRLF: a bare LF or CR is how SMTP smuggling hides a second
//! message inside the first, so it is never taken as a line end, and a message carrying one is
//! refused whole. Lines are bounded (RFC 5321 §4.5.3.1): a longer one is read to its end and
//! dropped, never buffered.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// A command line, CRLF included.
pub const MAX_COMMAND_LINE: usize = 512;
/// A text line of a message, CRLF included.
pub const MAX_TEXT_LINE: usize = 1000;

#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line, without its CRLF.
    Complete(Vec<u8>),
    /// Longer than allowed; read to its end (its LF) and dropped. `crlf`: it ended in CRLF,
    /// so what follows starts a line; a bare LF end does not (the end of DATA must still be
    /// `<CRLF>.<CRLF>` after it).
    TooLong { crlf: bool },
    /// Ended by a bare LF, or carrying a bare CR: not a line SMTP allows.
    BareLineEnding(Vec<u8>),
    /// The peer closed the connection.
    Closed,
}

/// Reads one line of at most `max` octets (CRLF included).
pub async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    // The octet before the one being looked at, across reads: a dropped line's CR.
    let mut last = None;
    let mut crlf = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                Line::Closed
            } else {
                Line::BareLineEnding(line)
            });
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        let used = chunk.len();
        if found {
            let before_lf = chunk
                .len()
                .checked_sub(2)
                .and_then(|at| chunk.get(at))
                .copied();
            crlf = before_lf.or(last) == Some(b'\r');
        }
        last = chunk.last().copied();
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if found {
            break;
        }
    }
    if too_long {
        return Ok(Line::TooLong { crlf });
    }
    let ends_in_crlf = line.ends_with(b"\r\n");
    if ends_in_crlf {
        line.truncate(line.len() - 2);
    }
    if !ends_in_crlf || line.contains(&b'\r') {
        return Ok(Line::BareLineEnding(line));
    }
    Ok(Line::Complete(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let mut reader = tokio::io::BufReader::with_capacity(8, input);
        let mut out = Vec::new();
        loop {
            match read_line(&mut reader, max).await.unwrap() {
                Line::Closed => return out,
                line => out.push(line),
            }
        }
    }

    #[tokio::test]
    async fn only_crlf_ends_a_line() {
        let read = lines(b"HELO a\r\nbare\nx\ry\r\n.\r\n", 100).await;
        assert_eq!(
            read,
            vec![
                Line::Complete(b"HELO a".to_vec()),
                Line::BareLineEnding(b"bare\n".to_vec()),
                Line::BareLineEnding(b"x\ry".to_vec()),
                Line::Complete(b".".to_vec()),
            ]
        );
    }

    #[tokio::test]
    async fn a_long_line_says_how_it_ended_across_reads() {
        for (ending, crlf) in [(&b"\r\n"[..], true), (b"\n", false)] {
            let mut input = vec![b'x'; 1001];
            input.extend_from_slice(ending);
            // Read 8 octets at a time: the CR and the LF come in different reads too.
            for extra in 0..8 {
                let mut shifted = vec![b'y'; extra];
                shifted.extend_from_slice(&input);
                assert_eq!(lines(&shifted, 1000).await, vec![Line::TooLong { crlf }]);
            }
        }
    }

    #[tokio::test]
    async fn a_long_line_is_dropped_and_the_next_one_read() {
        let mut input = vec![b'x'; 5000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        assert_eq!(
            lines(&input, 512).await,
            vec![
                Line::TooLong { crlf: true },
                Line::Complete(b"NOOP".to_vec())
            ]
        );
        // Exactly at the limit, CRLF included, is allowed.
        let mut exact = vec![b'y'; 510];
        exact.extend_from_slice(b"\r\n");
        assert_eq!(
            lines(&exact, 512).await,
            vec![Line::Complete(vec![b'y'; 510])]
        );
    }
}
