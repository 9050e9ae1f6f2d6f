//! PROXY protocol v2 (HAProxy's, which AWS's Network Load Balancer sends): behind a load
//! balancer every connection comes from the balancer, so the per-source limits and the logs
//! would see one address; the header it puts before the client's bytes names the client.
//! Trusted only from the configured addresses (the balancer's subnets): from those a header is
//! required, read to its exact end (the protocol's bytes after it are the session's), within a
//! time and a size; from anywhere else none is read, so no client can name itself another.
//! ppp parses the header.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use ppp::v2::{Addresses, Command, Header};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How long a trusted peer may take to send its header.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest header taken (addresses and TLVs; AWS adds a VPC endpoint ID and little else).
pub const MAX_HEADER: usize = 1024;

/// v2's fixed start: the signature, then version/command, family/protocol and the length.
const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const FIXED: usize = 16;

/// Where PROXY v2 headers are accepted from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// Why a trusted peer's connection is closed without a word.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no PROXY v2 header within {0:?}")]
    TimedOut(Duration),
    #[error("not a PROXY v2 header")]
    NotAHeader,
    #[error("a PROXY v2 header over {MAX_HEADER} bytes")]
    TooLong,
    #[error("a PROXY v2 header that does not parse: {0}")]
    Invalid(String),
    #[error("reading the PROXY v2 header: {0}")]
    Io(#[from] std::io::Error),
}

impl TrustedProxies {
    /// From `10.0.0.0/16,2001:db8::/32` (a bare address is one host); empty: off.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>()
                    .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{part:?} is not an address or a CIDR block"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a peer's connections start with a PROXY v2 header.
    pub fn trusts(&self, peer: &SocketAddr) -> bool {
        let ip = match peer.ip() {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client a trusted peer's connection is for: the header's source for PROXY, the
    /// peer itself for LOCAL (the balancer's own health checks) and for an unspecified family.
    pub async fn client(
        &self,
        stream: &mut TcpStream,
        peer: SocketAddr,
    ) -> Result<SocketAddr, ProxyError> {
        match tokio::time::timeout(HEADER_TIMEOUT, read_header(stream)).await {
            Ok(Ok(header)) => client_of(&header, peer),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ProxyError::TimedOut(HEADER_TIMEOUT)),
        }
    }
}

/// Exactly the header's bytes: the fixed part, then the length it gives.
async fn read_header(stream: &mut TcpStream) -> Result<Vec<u8>, ProxyError> {
    let mut header = vec![0u8; FIXED];
    stream.read_exact(&mut header).await?;
    if header.get(..12) != Some(&SIGNATURE[..]) {
        return Err(ProxyError::NotAHeader);
    }
    let length = usize::from(u16::from_be_bytes([header[14], header[15]]));
    if FIXED + length > MAX_HEADER {
        return Err(ProxyError::TooLong);
    }
    header.resize(FIXED + length, 0);
    stream.read_exact(&mut header[FIXED..]).await?;
    Ok(header)
}

fn client_of(bytes: &[u8], peer: SocketAddr) -> Result<SocketAddr, ProxyError> {
    let header = Header::try_from(bytes).map_err(|e| ProxyError::Invalid(e.to_string()))?;
    if header.command == Command::Local {
        return Ok(peer);
    }
    Ok(match header.addresses {
        Addresses::IPv4(v4) => SocketAddr::from((v4.source_address, v4.source_port)),
        Addresses::IPv6(v6) => SocketAddr::from((v6.source_address, v6.source_port)),
        Addresses::Unspecified | Addresses::Unix(_) => peer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::{Builder, IPv4, Protocol, Version};

    #[test]
    fn trusted_blocks_parse_and_match() {
        let trusted = TrustedProxies::parse("10.0.0.0/16, 192.0.2.7 ,2001:db8::/32").unwrap();
        assert!(trusted.trusts(&"10.0.200.1:5".parse().unwrap()));
        assert!(trusted.trusts(&"[::ffff:10.0.0.9]:5".parse().unwrap()));
        assert!(trusted.trusts(&"192.0.2.7:1".parse().unwrap()));
        assert!(!trusted.trusts(&"192.0.2.8:1".parse().unwrap()));
        assert!(trusted.trusts(&"[2001:db8::1]:1".parse().unwrap()));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("balancer").is_err());
    }

    #[test]
    fn the_header_names_the_client() {
        let peer: SocketAddr = "10.0.0.1:999".parse().unwrap();
        let proxied = Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Stream,
            IPv4::new([203, 0, 113, 7], [10, 0, 0, 2], 4444, 143),
        )
        .build()
        .unwrap();
        assert_eq!(
            client_of(&proxied, peer).unwrap(),
            "203.0.113.7:4444".parse().unwrap()
        );
        let local = Builder::with_addresses(
            Version::Two | Command::Local,
            Protocol::Unspecified,
            Addresses::Unspecified,
        )
        .build()
        .unwrap();
        assert_eq!(client_of(&local, peer).unwrap(), peer);
        assert!(client_of(&proxied[..proxied.len() - 1], peer).is_err());
    }
}
