//! Name resolution for callbacks, behind a trait so that the address rules (spec §2: public
//! hosts only) are applied to what a name resolves to, both when a SUBSCRIBE names the
//! callback and again when a notice is sent, since DNS may change in between.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pushmail_core::network::CallbackPolicy;

/// How long a SUBSCRIBE waits for its callback's name to resolve before accepting it unresolved.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

#[async_trait]
pub trait Resolver: Send + Sync {
    /// The addresses `host` resolves to; an error when it does not resolve.
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The system's resolver (getaddrinfo, on the blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        let lookup = tokio::net::lookup_host((host, 0));
        let addresses = tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "DNS timed out"))??;
        Ok(addresses.map(|address| address.ip()).collect())
    }
}

/// A callback host that resolves to an address the policy refuses.
#[derive(Debug, thiserror::Error)]
#[error("the callback's host resolves to a non-public address")]
pub struct NonPublicHost;

/// Whether a callback host may be used now: an IP literal is judged as it is; a name must not
/// resolve to any refused address (one that does not resolve at all is accepted, spec §2).
pub async fn check_host(
    resolver: &dyn Resolver,
    host: &url::Host<&str>,
    policy: CallbackPolicy,
) -> Result<(), NonPublicHost> {
    let addresses = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(*ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(*ip)],
        url::Host::Domain(name) => resolver.resolve(name).await.unwrap_or_default(),
    };
    if addresses.iter().all(|ip| policy.permits(*ip)) {
        Ok(())
    } else {
        Err(NonPublicHost)
    }
}

/// The notifier's resolver: only permitted addresses come back, so a connection can never be
/// made to a refused one, whatever the name resolves to at that moment.
pub(crate) struct PermittedAddresses {
    pub(crate) resolver: Arc<dyn Resolver>,
    pub(crate) policy: CallbackPolicy,
}

impl reqwest::dns::Resolve for PermittedAddresses {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (resolver, policy) = (self.resolver.clone(), self.policy);
        Box::pin(async move {
            let addresses = resolver.resolve(name.as_str()).await?;
            if !addresses.iter().all(|ip| policy.permits(*ip)) {
                return Err(Box::new(NonPublicHost) as Box<dyn std::error::Error + Send + Sync>);
            }
            let found: reqwest::dns::Addrs = Box::new(
                addresses
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(found)
        })
    }
}
