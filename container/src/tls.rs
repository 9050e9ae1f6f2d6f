//! The mail listeners' certificate: read from PEM files or given as PEM text (a secret store's
//! variables), or generated (self-signed) for `--demo` so that STARTTLS works out of the box.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;

/// An acceptor for the certificate chain and key in these PEM files.
pub fn from_files(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a PEM private key from {}", key.display()))?;
    acceptor(chain, key)
}

/// PEM text given in a variable: a private key among them, so its `Debug` never shows it.
#[derive(Clone)]
pub struct Pem(String);

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pem(<redacted>)")
    }
}

impl std::str::FromStr for Pem {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.contains("-----BEGIN ") {
            true => Ok(Self(text.to_owned())),
            false => Err("not PEM text (no -----BEGIN line)".to_owned()),
        }
    }
}

/// An acceptor for the certificate chain and key given as PEM text.
pub fn from_pem(cert: &Pem, key: &Pem) -> anyhow::Result<TlsAcceptor> {
    let chain = CertificateDer::pem_slice_iter(cert.0.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("PUSHMAIL_TLS_CERT_PEM is not a PEM certificate chain")?;
    anyhow::ensure!(
        !chain.is_empty(),
        "PUSHMAIL_TLS_CERT_PEM holds no certificate"
    );
    let key = PrivateKeyDer::from_pem_slice(key.0.as_bytes())
        .context("PUSHMAIL_TLS_KEY_PEM holds no PEM private key")?;
    acceptor(chain, key)
}

/// A self-signed certificate for `hostname` (and localhost), made now and kept in memory.
pub fn self_signed(hostname: &str) -> anyhow::Result<TlsAcceptor> {
    let names = vec![hostname.to_owned(), "localhost".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names)
        .context("cannot generate a self-signed certificate")?;
    let key = PrivateKeyDer::try_from(certified.signing_key.serialize_der())
        .map_err(|e| anyhow::anyhow!("generated key: {e}"))?;
    acceptor(vec![certified.cert.der().clone()], key)
}

fn acceptor(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<TlsAcceptor> {
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not go together")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_text_is_never_shown() {
        let key: Pem =
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n"
                .parse()
                .unwrap();
        assert_eq!(format!("{key:?}"), "Pem(<redacted>)");
        assert!("/etc/key.pem".parse::<Pem>().is_err());
    }
}
