//! Trusted IP allowlists: IPv4 and IPv6 addresses and CIDR ranges.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::InvalidInput;
use crate::error::excerpt;

/// The most entries one allowlist may hold.
pub const MAX_TRUSTED_IPS: usize = 256;

/// An allowlist of addresses and ranges. Empty allows every address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrustedIps(Vec<IpNet>);

impl TrustedIps {
    /// Parses entries such as `10.0.0.0/8`, `127.0.0.1` or `::1`; the error
    /// names `field[index]`.
    pub fn parse<S: AsRef<str>>(entries: &[S], field: &str) -> Result<Self, InvalidInput> {
        if entries.len() > MAX_TRUSTED_IPS {
            return Err(InvalidInput::new(
                field,
                format!(
                    "{} entries given; a list holds at most {MAX_TRUSTED_IPS} addresses or ranges",
                    entries.len()
                ),
            ));
        }
        let mut nets = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let entry = entry.as_ref().trim();
            let net = match entry.parse::<IpNet>() {
                Ok(net) => canonical_net(net.trunc()),
                Err(_) => entry.parse::<IpAddr>().map(|ip| IpNet::from(canonical(ip))).map_err(|_| {
                    InvalidInput::new(
                        format!("{field}[{i}]"),
                        format!(
                            "{} is not an IP address or CIDR range, e.g. \"10.0.0.0/8\" or \"::1\"",
                            excerpt(entry)
                        ),
                    )
                })?,
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    /// True when the list is empty or contains `ip` (IPv4-mapped IPv6 addresses
    /// are compared as IPv4).
    #[must_use]
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.is_empty() || self.0.iter().any(|net| net.contains(&ip))
    }

    /// True when no entry restricts anything.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in their canonical text form.
    #[must_use]
    pub fn to_strings(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|net| {
                if net.prefix_len() == net.max_prefix_len() {
                    net.addr().to_string()
                } else {
                    net.to_string()
                }
            })
            .collect()
    }
}

/// A range inside `::ffff:0:0/96` becomes the IPv4 range it maps
/// (`::ffff:127.0.0.0/104` is `127.0.0.0/8`), since peers are compared as IPv4.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => v6
            .addr()
            .to_ipv4_mapped()
            .and_then(|v4| ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).ok())
            .map_or(net, IpNet::V4),
        other => other,
    }
}

/// `::ffff:a.b.c.d` becomes `a.b.c.d`, as dual-stack sockets report IPv4 peers that way.
#[must_use]
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// The default prefix length by which an IPv6 client is counted: one
/// host or site is routinely given a whole /64, so counting its addresses
/// apart would give it 2^64 budgets and connection allowances.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// The key under which a client's connections and failures are counted: an
/// IPv4 address as it is (IPv4-mapped addresses as IPv4), an IPv6 address
/// truncated to its first `ipv6_prefix` bits (at most 128).
#[must_use]
pub fn client_key(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u32::from(ipv6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(entries: &[&str]) -> TrustedIps {
        TrustedIps::parse(entries, "trusted_ips").unwrap()
    }

    #[test]
    fn empty_list_allows_everyone() {
        assert!(ips(&[]).allows("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn ipv4_addresses_and_ranges_are_matched() {
        let list = ips(&["127.0.0.1", "10.0.0.0/8"]);
        assert!(list.allows("127.0.0.1".parse().unwrap()));
        assert!(list.allows("10.20.30.40".parse().unwrap()));
        assert!(!list.allows("127.0.0.2".parse().unwrap()));
        assert!(!list.allows("11.0.0.1".parse().unwrap()));
    }

    #[test]
    fn ipv6_addresses_and_ranges_are_matched() {
        let list = ips(&["::1", "2001:db8::/32"]);
        assert!(list.allows("::1".parse().unwrap()));
        assert!(list.allows("2001:db8:1::5".parse().unwrap()));
        assert!(!list.allows("2001:db9::1".parse().unwrap()));
        assert!(!list.allows("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn ipv4_mapped_ipv6_peers_are_compared_as_ipv4() {
        let list = ips(&["127.0.0.0/8"]);
        assert!(list.allows("::ffff:127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn ipv4_mapped_rules_are_canonicalised_and_match_ipv4_peers() {
        let list = ips(&["::ffff:127.0.0.1", "::ffff:10.0.0.0/104"]);
        assert!(list.allows("127.0.0.1".parse().unwrap()));
        assert!(list.allows("10.9.8.7".parse().unwrap()));
        assert!(list.allows("::ffff:10.9.8.7".parse().unwrap()));
        assert!(!list.allows("11.0.0.1".parse().unwrap()));
        assert_eq!(list.to_strings(), ["127.0.0.1", "10.0.0.0/8"]);
    }

    #[test]
    fn all_address_ranges_allow_both_families() {
        let list = ips(&["0.0.0.0/0", "::/0"]);
        assert!(list.allows("8.8.8.8".parse().unwrap()));
        assert!(list.allows("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn entries_are_canonicalised_for_display() {
        assert_eq!(
            ips(&[" 10.1.2.3/8", "::1", "192.168.0.1"]).to_strings(),
            ["10.0.0.0/8", "::1", "192.168.0.1"]
        );
    }

    #[test]
    fn a_list_holds_at_most_the_limit() {
        let many: Vec<String> = (0..=MAX_TRUSTED_IPS)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        let err = TrustedIps::parse(&many, "trusted_ips").unwrap_err();
        assert_eq!(err.field, "trusted_ips");
        assert!(err.message.contains("at most 256"), "{}", err.message);
        assert!(TrustedIps::parse(&many[..MAX_TRUSTED_IPS], "trusted_ips").is_ok());
    }

    #[test]
    fn bad_entries_name_their_index() {
        let err = TrustedIps::parse(&["127.0.0.1", "10.0.0.0/33"], "trusted_ips").unwrap_err();
        assert_eq!(err.field, "trusted_ips[1]");
        let err = TrustedIps::parse(&["localhost"], "trusted_ips").unwrap_err();
        assert_eq!(err.field, "trusted_ips[0]");
    }
    #[test]
    fn ipv6_clients_are_keyed_by_their_prefix_and_ipv4_by_address() {
        let key = |ip: &str, bits| client_key(ip.parse().unwrap(), bits);
        assert_eq!(
            key("2001:db8:1:2:aaaa::1", 64),
            key("2001:db8:1:2:ffff::9", 64)
        );
        assert_eq!(
            key("2001:db8:1:2:aaaa::1", 64).to_string(),
            "2001:db8:1:2::"
        );
        assert_ne!(key("2001:db8:1:2::1", 64), key("2001:db8:1:3::1", 64));
        assert_ne!(key("2001:db8::1", 128), key("2001:db8::2", 128));
        assert_eq!(key("2001:db8::1", 0).to_string(), "::");
        assert_eq!(key("::ffff:10.1.2.3", 64).to_string(), "10.1.2.3");
        assert_ne!(key("10.1.2.3", 64), key("10.1.2.4", 64));
    }
}
