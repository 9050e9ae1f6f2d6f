//! Which addresses pushmail may send a push service's notices to (spec §2): public hosts only,
//! so that a callback cannot make pushmail reach into its own network (cloud metadata, private
//! services) or report on it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is a public unicast address. Refused: loopback, private (RFC 1918, fc00::/7),
/// link-local (169.254.0.0/16 with the cloud metadata addresses, fe80::/10), unspecified,
/// multicast and broadcast (spec §2), and besides them shared address space (100.64.0.0/10,
/// carrier NAT), "this network" (0.0.0.0/8), the IETF protocol block (192.0.0.0/24) and the
/// deprecated site-local fec0::/10. IPv4 inside IPv6 (mapped or compatible) is judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| compatible_v4(v6)) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (first & 0xffc0) == 0xfec0) // site-local, fec0::/10
}

/// `::a.b.c.d` (deprecated IPv4-compatible), but not `::` or `::1`.
fn compatible_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = ip.segments();
    (segments[..6].iter().all(|&s| s == 0) && (segments[6] != 0 || segments[7] > 1))
        .then(|| Ipv4Addr::from(((segments[6] as u32) << 16) | segments[7] as u32))
}

/// Where callbacks may point: public addresses, and loopback too in local mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallbackPolicy {
    pub local_mode: bool,
}

impl CallbackPolicy {
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || (self.local_mode && ip.is_loopback())
    }
}

/// The source a peer's address counts under, for per-source caps and credential limits: an
/// IPv4 address itself, an IPv6 address's /64 (one site's prefix: a host that owns a /64
/// could otherwise take a new address per connection).
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Open connections per source address, for a listener's per-source cap.
pub type SourceCounts = crate::counts::Counts<IpAddr>;

/// One open connection of a source; gives its place back when dropped.
pub type SourceSlot = crate::counts::Place<IpAddr>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_peer_counts_under_its_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_of(a), source_of(b));
        assert_ne!(source_of(a), source_of(c));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(source_of(v4), v4);
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source_of(mapped), v4);
    }

    #[test]
    fn only_public_addresses_are_permitted() {
        let aws = CallbackPolicy { local_mode: false };
        let local = CallbackPolicy { local_mode: true };
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
        ] {
            assert!(aws.permits(public.parse().unwrap()), "{public}");
        }
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "192.0.0.170",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
        ] {
            assert!(!aws.permits(refused.parse().unwrap()), "{refused}");
        }
        assert!(local.permits("127.0.0.1".parse().unwrap()));
        assert!(local.permits("::1".parse().unwrap()));
        assert!(!local.permits("10.0.0.1".parse().unwrap()));
    }
}
