//! DKIM signatures for mail leaving a domain that has a key (`dkim_selector` + `dkim_key_ref`
//! in the admin API). The key itself is never in the table: the reference names where it is.
//! Supported here: `file:<path>` (a PEM file: PKCS#8 RSA or Ed25519, or PKCS#1 RSA). On AWS
//! the template leaves signing to SES Easy DKIM instead (docs/deploy.md).

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use pushmail_core::types::Domain;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// The header fields a signature covers (RFC 6376 §5.4.1's recommendations).
const SIGNED_HEADERS: [&str; 12] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("DKIM key reference `{0}` is not supported here (use file:<path>)")]
    UnsupportedReference(String),
    #[error("DKIM key {reference} cannot be read: {cause}")]
    Unreadable { reference: String, cause: String },
    #[error("DKIM signing failed: {0}")]
    Signing(String),
}

/// A loaded signing key.
pub enum DkimKey {
    Rsa(RsaKey<Sha256>),
    Ed25519(Ed25519Key),
}

impl DkimKey {
    /// Reads the key a reference names.
    pub fn load(reference: &str) -> Result<Self, DkimError> {
        let Some(path) = reference.strip_prefix("file:") else {
            return Err(DkimError::UnsupportedReference(reference.to_owned()));
        };
        let unreadable = |cause: String| DkimError::Unreadable {
            reference: reference.to_owned(),
            cause,
        };
        let pem = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
        Self::from_pem(&pem).map_err(unreadable)
    }

    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("not a PEM key: {e}"))?;
        match der {
            PrivateKeyDer::Pkcs8(pkcs8) => {
                if let Ok(key) =
                    Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8.secret_pkcs8_der())
                {
                    return Ok(Self::Ed25519(key));
                }
                RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                    pkcs8.secret_pkcs8_der().to_vec(),
                )))
                .map(Self::Rsa)
                .map_err(|e| format!("neither an Ed25519 nor an RSA key: {e}"))
            }
            other => RsaKey::<Sha256>::from_key_der(other)
                .map(Self::Rsa)
                .map_err(|e| format!("not an RSA key: {e}")),
        }
    }

    /// The `DKIM-Signature:` header field (with its CRLF) for `message` from `domain`.
    pub fn sign(self, domain: &str, selector: &str, message: &[u8]) -> Result<String, DkimError> {
        let signature = match self {
            Self::Rsa(key) => DkimSigner::from_key(key)
                .domain(domain)
                .selector(selector)
                .headers(SIGNED_HEADERS)
                .sign(message),
            Self::Ed25519(key) => DkimSigner::from_key(key)
                .domain(domain)
                .selector(selector)
                .headers(SIGNED_HEADERS)
                .sign(message),
        };
        signature
            .map(|signature| signature.to_header())
            .map_err(|e| DkimError::Signing(e.to_string()))
    }
}

/// A new Ed25519 key (RFC 8463) as PKCS#8 PEM, and the TXT record that publishes it. (For mail
/// to the wide world prefer RSA 2048 as well: not every receiver checks Ed25519 signatures.)
pub fn generate_ed25519() -> Result<(String, String), DkimError> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let der = Ed25519Key::generate_pkcs8().map_err(|e| DkimError::Signing(e.to_string()))?;
    let record = ed25519_record(&der)?;
    let body = STANDARD.encode(&der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .filter_map(|chunk| std::str::from_utf8(chunk).ok())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    Ok((pem, record))
}

/// The TXT record that publishes the Ed25519 key `pem` (PKCS#8) holds: a key made earlier,
/// kept, and published again.
pub fn ed25519_record_of_pem(pem: &str) -> Result<String, DkimError> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|e| DkimError::Signing(e.to_string()))?;
    ed25519_record(&der)
}

fn ed25519_record(pkcs8: &[u8]) -> Result<String, DkimError> {
    use base64::Engine;
    let public = Ed25519Key::from_pkcs8_der(pkcs8)
        .map_err(|e| DkimError::Signing(e.to_string()))?
        .public_key();
    Ok(format!(
        "v=DKIM1; k=ed25519; p={}",
        base64::engine::general_purpose::STANDARD.encode(public)
    ))
}

/// The TXT record that publishes the public half of the key a reference names (RFC 6376
/// §3.6.1): Ed25519 as its 32 octets (RFC 8463), RSA as a DER SubjectPublicKeyInfo, the form
/// `openssl pkey -pubout` writes and verifiers expect.
pub fn public_record(reference: &str) -> Result<String, DkimError> {
    use base64::Engine;
    let unreadable = |cause: String| DkimError::Unreadable {
        reference: reference.to_owned(),
        cause,
    };
    Ok(match DkimKey::load(reference)? {
        DkimKey::Ed25519(key) => format!(
            "v=DKIM1; k=ed25519; p={}",
            base64::engine::general_purpose::STANDARD.encode(key.public_key())
        ),
        DkimKey::Rsa(key) => format!(
            "v=DKIM1; k=rsa; p={}",
            base64::engine::general_purpose::STANDARD
                .encode(rsa_spki(&key.public_key()).map_err(unreadable)?)
        ),
    })
}

/// An RSAPublicKey (PKCS#1 DER) inside a SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID
/// rsaEncryption, NULL }, BIT STRING { no unused bits, the key } }.
fn rsa_spki(pkcs1: &[u8]) -> Result<Vec<u8>, String> {
    const RSA_ALGORITHM: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0x00];
    bits.extend_from_slice(pkcs1);
    let mut body = RSA_ALGORITHM.to_vec();
    body.extend(der(0x03, &bits)?);
    der(0x30, &body)
}

/// One DER element: its tag, its length (short or long form), its content.
fn der(tag: u8, content: &[u8]) -> Result<Vec<u8>, String> {
    let len = content.len();
    let mut out = vec![tag];
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend([0x81, len as u8]),
        0x100..=0xffff => out.extend([0x82, (len >> 8) as u8, len as u8]),
        _ => return Err(format!("a public key of {len} octets is too long")),
    }
    out.extend_from_slice(content);
    Ok(out)
}

/// The DKIM-Signature header for mail from `domain`, or `None` if the domain has no key.
pub fn signature_for(domain: &Domain, message: &[u8]) -> Result<Option<String>, DkimError> {
    let (Some(selector), Some(reference)) = (&domain.dkim_selector, &domain.dkim_key_ref) else {
        return Ok(None);
    };
    DkimKey::load(reference)?
        .sign(domain.name.as_str(), selector, message)
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_reads_back_and_signs() {
        let (pem, record) = generate_ed25519().unwrap();
        assert!(record.starts_with("v=DKIM1; k=ed25519; p="));
        let key = DkimKey::from_pem(pem.as_bytes()).unwrap();
        assert!(matches!(key, DkimKey::Ed25519(_)));
        let header = key
            .sign(
                "example.com",
                "s1",
                b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n",
            )
            .unwrap();
        assert!(header.starts_with("DKIM-Signature: "), "{header}");
        assert!(
            header.contains("d=example.com") && header.contains("s=s1"),
            "{header}"
        );
    }

    #[test]
    fn the_published_record_is_the_public_half_as_openssl_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let rsa = format!(
            "file:{}/testdata/dkim-test-rsa2048.pem",
            env!("CARGO_MANIFEST_DIR")
        );
        let expected = include_str!("../testdata/dkim-test-rsa2048.spki.b64").trim();
        assert_eq!(
            public_record(&rsa).unwrap(),
            format!("v=DKIM1; k=rsa; p={expected}")
        );
        let (pem, record) = generate_ed25519().unwrap();
        let path = dir.path().join("ed25519.pem");
        std::fs::write(&path, pem).unwrap();
        assert_eq!(
            public_record(&format!("file:{}", path.display())).unwrap(),
            record
        );
        assert!(public_record("file:/nonexistent/key.pem").is_err());
    }

    #[test]
    fn bad_keys_and_references_are_clear_errors() {
        assert!(DkimKey::from_pem(b"not a key").is_err());
        assert!(matches!(
            DkimKey::load("arn:aws:secretsmanager:eu-west-1:1:secret:k"),
            Err(DkimError::UnsupportedReference(_))
        ));
        assert!(matches!(
            DkimKey::load("file:/nonexistent/key.pem"),
            Err(DkimError::Unreadable { .. })
        ));
    }
}
