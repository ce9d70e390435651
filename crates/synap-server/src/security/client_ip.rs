//! Who the client is, network-wise: the peer address of the connection, or —
//! only when that peer is a configured trusted proxy — the right-most address of
//! `X-Forwarded-For` that is not itself a trusted proxy. A client can put
//! anything in the header; only what our own proxies appended is believed.
//!
//! Without a peer address (in-process tests that call the router directly, with
//! no `ConnectInfo`), the peer counts as [`UNKNOWN_PEER`], the loopback address,
//! consistently: it is trusted as a proxy only if loopback is configured as one.

use crate::config::IpBlock;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The header proxies append the client's address to.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The peer assumed when the connection's address is not known.
pub const UNKNOWN_PEER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// IPv6 clients are keyed by their /64: one subscriber usually holds a whole
/// /64, so keying by single addresses would give each client 2^64 budgets.
pub const IPV6_KEY_PREFIX_LEN: u32 = 64;

/// The client's IP address for a request (see the module docs).
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpBlock]) -> IpAddr {
    let peer = peer.unwrap_or(UNKNOWN_PEER).to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|block| block.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    // Every X-Forwarded-For line, in order, as one list; walk it from the right.
    let hops: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(','))
        .collect();
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // A garbled entry: nothing left of it can be believed.
            return nearest;
        };
        if !is_trusted(ip) {
            return ip;
        }
        nearest = ip;
    }
    nearest
}

/// The peer address a request arrived from, if the server recorded it.
pub fn peer_ip(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// The rate-limit key for a client address: IPv4 as is, IPv6 by its /64.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mask = u128::MAX << (128 - IPV6_KEY_PREFIX_LEN);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    hop.parse::<SocketAddr>()
        .ok()
        .map(|addr| addr.ip().to_canonical())
}

/// The client IP as an extractor, for handlers that log or key by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(ClientIp(client_ip(
            peer_ip(&parts.extensions),
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(line).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_header_is_ignored_from_an_untrusted_peer() {
        let trusted: Vec<IpBlock> = vec!["10.0.0.0/8".parse().unwrap()];
        let got = client_ip(Some(ip("203.0.113.9")), &headers(&["1.1.1.1"]), &trusted);
        assert_eq!(got, ip("203.0.113.9"));
        // No proxies configured: never believed, not even from loopback.
        assert_eq!(
            client_ip(None, &headers(&["1.1.1.1"]), &[]),
            UNKNOWN_PEER,
            "no peer address counts as loopback"
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted: Vec<IpBlock> = vec![
            "10.0.0.0/8".parse().unwrap(),
            "192.168.1.1".parse().unwrap(),
        ];
        let peer = Some(ip("10.0.0.2"));
        // A client-supplied spoof on the left is skipped.
        let h = headers(&["6.6.6.6, 198.51.100.7", "192.168.1.1"]);
        assert_eq!(client_ip(peer, &h, &trusted), ip("198.51.100.7"));
        // Ports and brackets are accepted.
        let h = headers(&["[2001:db8::1]:4711, 10.1.1.1:80"]);
        assert_eq!(client_ip(peer, &h, &trusted), ip("2001:db8::1"));
        // A garbled hop stops the walk at the nearest trusted address.
        let h = headers(&["5.5.5.5, garbage, 10.9.9.9"]);
        assert_eq!(client_ip(peer, &h, &trusted), ip("10.9.9.9"));
        // No header at all: the proxy itself.
        assert_eq!(client_ip(peer, &HeaderMap::new(), &trusted), ip("10.0.0.2"));
        // Every hop trusted: the left-most.
        let h = headers(&["10.3.3.3, 10.4.4.4"]);
        assert_eq!(client_ip(peer, &h, &trusted), ip("10.3.3.3"));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_blocks() {
        let trusted: Vec<IpBlock> = vec!["127.0.0.1".parse().unwrap()];
        let h = headers(&["198.51.100.7"]);
        assert_eq!(
            client_ip(Some(ip("::ffff:127.0.0.1")), &h, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(ip_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(ip_key(ip("2001:db8:1:2:bbbb::9")), ip("2001:db8:1:2::"));
        assert_eq!(ip_key(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(ip_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }
}
