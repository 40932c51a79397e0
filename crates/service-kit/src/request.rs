//! What a service reads off a request besides its message: the bearer token
//! and the client IP.

use std::net::IpAddr;

use http::HeaderMap;
use latchkey_domain::ip::{TrustedIps, canonical};
use latchkey_domain::ports::BearerToken;
use latchkey_domain::{AccessError, Reason};

/// The longest bearer token read: far above any real token (a four-part
/// service token is 107 bytes), far below the transport's header limit.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The `authorization: Bearer <token>` of a request.
pub fn bearer_token(metadata: &HeaderMap) -> Result<BearerToken, AccessError> {
    let missing = || {
        AccessError::new(
            Reason::TokenMalformed,
            "missing token: send the header (gRPC metadata) \"authorization: Bearer <token>\"",
        )
    };
    let value = metadata
        .get("authorization")
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(missing)?
        .trim();
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AccessError::new(
            Reason::TokenMalformed,
            format!(
                "the token is {} bytes; no Latchkey token is longer than {MAX_TOKEN_BYTES}",
                token.len()
            ),
        ));
    }
    Ok(BearerToken::new(token))
}

/// The client's address: the TCP peer, or, when the peer is one of
/// `trusted_proxies` (an empty list trusts no proxy), the nearest address of
/// `x-forwarded-for` that is not itself a trusted proxy. An entry that does
/// not parse ends the walk at the proxy that sent it: everything to its left
/// is the client's word, not a proxy's.
#[must_use]
pub fn client_ip(
    peer: Option<IpAddr>,
    metadata: &HeaderMap,
    trusted_proxies: &TrustedIps,
) -> Option<IpAddr> {
    let peer = canonical(peer?);
    if trusted_proxies.is_empty() || !trusted_proxies.allows(peer) {
        return Some(peer);
    }
    let entries = metadata
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().ok())
        .collect::<Vec<_>>();
    // Walk from the nearest hop outwards; `sender` is the proxy that wrote the entry.
    let mut sender = peer;
    for header in entries.into_iter().rev() {
        let Some(header) = header else {
            return Some(sender);
        };
        for entry in header.rsplit(',') {
            let Ok(ip) = entry.trim().parse::<IpAddr>() else {
                return Some(sender);
            };
            let ip = canonical(ip);
            if !trusted_proxies.allows(ip) {
                return Some(ip);
            }
            sender = ip;
        }
    }
    Some(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn bearer_token_is_read_from_authorization() {
        let token = bearer_token(&md(&[("authorization", "Bearer st.abc")])).unwrap();
        assert_eq!(token.expose(), "st.abc");
    }

    #[test]
    fn an_oversized_bearer_token_is_token_malformed_naming_the_limit() {
        let huge = format!("Bearer st.{}", "a".repeat(MAX_TOKEN_BYTES));
        let err = bearer_token(&md(&[("authorization", &huge)])).unwrap_err();
        assert_eq!(err.reason, Reason::TokenMalformed);
        assert!(err.message.contains("4096"), "{}", err.message);
    }

    #[test]
    fn missing_or_non_bearer_authorization_is_token_malformed() {
        for map in [md(&[]), md(&[("authorization", "Basic xyz")])] {
            let err = bearer_token(&map).unwrap_err();
            assert_eq!(err.reason, Reason::TokenMalformed);
            assert!(err.message.contains("authorization: Bearer"));
        }
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let map = md(&[("x-forwarded-for", "203.0.113.7")]);
        let peer: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            client_ip(Some(peer), &map, &TrustedIps::default()),
            Some(peer)
        );
        let proxies = TrustedIps::parse(&["10.0.0.0/8"], "p").unwrap();
        assert_eq!(client_ip(Some(peer), &map, &proxies), Some(peer));
    }

    #[test]
    fn forwarded_for_is_honoured_from_trusted_proxies() {
        let proxies = TrustedIps::parse(&["10.0.0.0/8"], "p").unwrap();
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let map = md(&[("x-forwarded-for", "1.2.3.4, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(
            client_ip(Some(peer), &map, &proxies),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(client_ip(Some(peer), &md(&[]), &proxies), Some(peer));
    }

    #[test]
    fn an_unparsable_forwarded_entry_ends_the_walk_at_the_proxy_that_sent_it() {
        let proxies = TrustedIps::parse(&["10.0.0.0/8"], "p").unwrap();
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        // The attacker wrote "1.2.3.4, junk"; the proxy 10.0.0.9 appended after it.
        let map = md(&[("x-forwarded-for", "1.2.3.4, junk, 10.0.0.9")]);
        assert_eq!(
            client_ip(Some(peer), &map, &proxies),
            Some("10.0.0.9".parse().unwrap())
        );
        let map = md(&[("x-forwarded-for", "1.2.3.4, not-an-ip")]);
        assert_eq!(client_ip(Some(peer), &map, &proxies), Some(peer));
        // Across several headers, the last one is the nearest.
        let map = md(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "bogus")]);
        assert_eq!(client_ip(Some(peer), &map, &proxies), Some(peer));
    }

    #[test]
    fn ipv4_mapped_peers_are_reported_as_ipv4() {
        let peer: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(Some(peer), &md(&[]), &TrustedIps::default()),
            Some("127.0.0.1".parse().unwrap())
        );
    }
}
