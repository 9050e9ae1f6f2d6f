//! SASL PLAIN (RFC 4616), for every listener that takes it (SMTP AUTH, IMAP AUTHENTICATE).

/// `authzid NUL authcid NUL password` → (login, password). Acting for someone else (an
/// authorization identity other than the login) is refused, as is anything malformed.
pub fn parse_plain(raw: &[u8]) -> Option<(String, String)> {
    let mut parts = raw.split(|&b| b == 0);
    let (authz, authc, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authc.is_empty() {
        return None;
    }
    let authc = String::from_utf8(authc.to_vec()).ok()?;
    if !authz.is_empty() && !authz.eq_ignore_ascii_case(authc.as_bytes()) {
        return None;
    }
    Some((authc, String::from_utf8(password.to_vec()).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_responses() {
        assert_eq!(
            parse_plain(b"\0a@b.c\0pw"),
            Some(("a@b.c".into(), "pw".into()))
        );
        assert_eq!(
            parse_plain(b"a@b.c\0a@b.c\0pw"),
            Some(("a@b.c".into(), "pw".into()))
        );
        // Acting as another account, or a part missing.
        assert_eq!(parse_plain(b"boss@b.c\0a@b.c\0pw"), None);
        assert_eq!(parse_plain(b"\0a@b.c"), None);
        assert_eq!(parse_plain(b"\0\0pw"), None);
        assert_eq!(parse_plain(b"\0a\0b\0c"), None);
    }
}
