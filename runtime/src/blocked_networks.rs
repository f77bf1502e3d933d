//! `[outbound_networking] block_networks` (Spin's runtime config): IP
//! networks no guest may reach, whatever `allowed_outbound_hosts` says.
//!
//! The check runs on the address actually dialled (after name lookup), so
//! a name that resolves into a blocked network is refused too. `private`
//! blocks every address that is not globally routable (loopback, private,
//! link-local, shared, documentation, unique-local ...), as Spin does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// The blocked networks of an app; empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockedNetworks {
    networks: Vec<IpNet>,
    private: bool,
}

/// An entry that is neither a CIDR network nor `private`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP network in CIDR notation (e.g. \"10.0.0.0/8\") or \"private\"")]
pub struct BlockedNetworkError(String);

impl BlockedNetworks {
    /// Parses Spin's entries: CIDR networks (host bits are ignored, as in
    /// Spin: `8.8.8.8/16` is `8.8.0.0/16`), single addresses, or `private`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, BlockedNetworkError> {
        let mut blocked = Self::default();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry == "private" {
                blocked.private = true;
                continue;
            }
            let network = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| BlockedNetworkError(entry.to_owned()))?;
            blocked.networks.push(network.trunc());
        }
        Ok(blocked)
    }

    /// Whether nothing is blocked (the common case: no checks at all).
    pub fn is_empty(&self) -> bool {
        !self.private && self.networks.is_empty()
    }

    /// Refuses `host:port` when it is a blocked IP, or a name whose every
    /// address is blocked (for clients that dial names themselves: the
    /// database and Redis drivers). The message names the host, never more.
    pub async fn check(&self, host: &str, port: u16) -> Result<(), String> {
        if self.is_empty() {
            return Ok(());
        }
        let refused = || format!("address {host}:{port} is in the runtime config's block_networks");
        if let Ok(ip) = host.parse::<IpAddr>() {
            return if self.blocks(ip) {
                Err(refused())
            } else {
                Ok(())
            };
        }
        // A name that does not resolve fails later, in the driver, with
        // its own error.
        let Ok(found) = tokio::net::lookup_host((host, port)).await else {
            return Ok(());
        };
        let addresses: Vec<IpAddr> = found.map(|a| a.ip()).collect();
        if !addresses.is_empty() && addresses.iter().all(|ip| self.blocks(*ip)) {
            return Err(refused());
        }
        Ok(())
    }

    /// Whether `ip` may not be dialled.
    pub fn blocks(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        (self.private && !is_global(ip)) || self.networks.iter().any(|n| n.contains(&ip))
    }
}

/// An IPv4-mapped IPv6 address is checked as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is globally routable (what `std`'s unstable `is_global`
/// answers).
fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => is_global_v6(v6),
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (b & 0xc0) == 64)
        // IETF protocol assignments, 192.0.0.0/24 (except the two anycast
        // addresses std also treats as global).
        || (a == 192 && b == 0 && c == 0 && !matches!(ip.octets()[3], 9 | 10))
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b & 0xfe) == 18)
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8)
        // Discard-only, 100::/64.
        || (first == 0x0100 && ip.segments()[1..4] == [0, 0, 0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an IP address")
    }

    #[test]
    fn networks_block_their_addresses_only() {
        let blocked = BlockedNetworks::parse(&["1.1.1.1/32", "8.8.8.8/16", "fd00::/8", "9.9.9.9"])
            .expect("valid entries");
        assert!(blocked.blocks(ip("1.1.1.1")));
        assert!(!blocked.blocks(ip("1.1.1.2")));
        // Host bits are ignored, as in Spin.
        assert!(blocked.blocks(ip("8.8.200.1")));
        assert!(!blocked.blocks(ip("8.9.0.1")));
        assert!(blocked.blocks(ip("fd12::1")));
        assert!(blocked.blocks(ip("9.9.9.9")));
        // An IPv4-mapped IPv6 address is its IPv4 address.
        assert!(blocked.blocks(ip("::ffff:1.1.1.1")));
        // Not private unless asked.
        assert!(!blocked.blocks(ip("127.0.0.1")));
    }

    #[test]
    fn private_blocks_everything_not_globally_routable() {
        let blocked = BlockedNetworks::parse(&["private"]).expect("valid");
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(blocked.blocks(ip(local)), "{local}");
        }
        for global in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
            assert!(!blocked.blocks(ip(global)), "{global}");
        }
    }

    #[tokio::test]
    async fn names_are_checked_by_every_address_they_resolve_to() {
        let private = BlockedNetworks::parse(&["private"]).expect("valid");
        let err = private
            .check("localhost", 5432)
            .await
            .expect_err("loopback");
        assert_eq!(
            err,
            "address localhost:5432 is in the runtime config's block_networks"
        );
        assert!(private.check("127.0.0.1", 6379).await.is_err());
        let other = BlockedNetworks::parse(&["10.0.0.0/8"]).expect("valid");
        assert_eq!(other.check("localhost", 5432).await, Ok(()));
        assert_eq!(
            BlockedNetworks::default().check("10.1.1.1", 1).await,
            Ok(())
        );
    }

    #[test]
    fn bad_entries_are_named() {
        let err = BlockedNetworks::parse(&["10.0.0.0/33"]).expect_err("bad prefix");
        assert!(err.to_string().contains("\"10.0.0.0/33\""), "{err}");
        assert!(BlockedNetworks::parse(&["example.com"]).is_err());
        assert!(
            BlockedNetworks::parse::<&str>(&[])
                .expect("empty")
                .is_empty()
        );
    }
}
