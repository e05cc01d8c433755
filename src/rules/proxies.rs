//! Who the client is behind a trusted proxy (`trusted_proxies`). From a peer in the list, the
//! client address comes from the PROXY protocol header the proxy sent first (v1 text or v2
//! binary, as HAProxy's `send-proxy`/`send-proxy-v2`), or else from `Forwarded` (RFC 7239)
//! or `X-Forwarded-For`: the rightmost address that is not itself a trusted proxy, since only
//! the hops a trusted proxy added can be believed. From any other peer those headers mean
//! nothing and a PROXY header is not accepted: the peer is the client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::http::Request;

/// A network: an address and how many leading bits of it count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    bits: u8,
}

impl Net {
    /// `10.0.0.0/8`, `::1`, `192.0.2.7`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Net, String> {
        let (addr, bits) = match text.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| {
            format!("{text:?} is not an IP address or a network such as 10.0.0.0/8")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => match b.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{text:?}: the prefix length must be 0 to {max}")),
            },
        };
        Ok(Net { addr, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.bits),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.bits),
            _ => false,
        }
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.bits)
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let whole = usize::from(bits / 8);
    let rest = bits % 8;
    a[..whole] == b[..whole]
        && (rest == 0 || {
            let mask = 0xffu8 << (8 - rest);
            a[whole] & mask == b[whole] & mask
        })
}

/// The proxies whose word about the client is taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<Net>);

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The client a request from `peer` comes from: the peer itself unless it is trusted,
    /// else the rightmost untrusted hop its `Forwarded` (or `X-Forwarded-For`) names.
    pub fn client(&self, peer: IpAddr, req: &Request) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = if let Some(forwarded) = req.header_str("forwarded") {
            forwarded_for(forwarded)
        } else if let Some(list) = req.header_str("x-forwarded-for") {
            list.split(',')
                .filter_map(|h| parse_node(h.trim()))
                .collect()
        } else {
            return peer;
        };
        hops.iter()
            .rev()
            .copied()
            .find(|ip| !self.contains(*ip))
            .or_else(|| hops.first().copied())
            .unwrap_or(peer)
    }
}

/// The `for=` addresses of a `Forwarded` header, in order (unknown or obfuscated nodes are
/// left out).
fn forwarded_for(value: &str) -> Vec<IpAddr> {
    value
        .split(',')
        .flat_map(|element| element.split(';'))
        .filter_map(|pair| {
            let (name, node) = pair.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("for")
                .then(|| parse_node(node.trim().trim_matches('"')))
                .flatten()
        })
        .collect()
}

/// `192.0.2.7`, `192.0.2.7:1234`, `[2001:db8::1]`, `[2001:db8::1]:443`, `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
}

/// What the first bytes of a connection from a trusted proxy say.
#[derive(Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// A whole header of `len` bytes, naming the client (`None`: a health check of the proxy's
    /// own, `LOCAL` or `UNKNOWN`).
    Complete {
        len: usize,
        client: Option<SocketAddr>,
    },
    /// The start of a header: more bytes are needed.
    Partial,
    /// Not a PROXY header: the connection starts with its own protocol.
    Absent,
    /// A PROXY header that cannot be read.
    Invalid,
}

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// A v1 line is at most 107 bytes.
const V1_MAX: usize = 107;

/// Reads a PROXY protocol header (v1 or v2) at the start of `bytes`.
pub fn proxy_header(bytes: &[u8]) -> ProxyHeader {
    let v1 = b"PROXY ";
    let n = bytes.len().min(V2_SIGNATURE.len());
    if bytes[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() {
            ProxyHeader::Partial
        } else {
            proxy_v2(bytes)
        };
    }
    let n = bytes.len().min(v1.len());
    if bytes[..n] != v1[..n] {
        return ProxyHeader::Absent;
    }
    let Some(end) = bytes.windows(2).position(|w| w == b"\r\n") else {
        return if bytes.len() >= V1_MAX {
            ProxyHeader::Invalid
        } else {
            ProxyHeader::Partial
        };
    };
    if end + 2 > V1_MAX {
        return ProxyHeader::Invalid;
    }
    let Ok(line) = std::str::from_utf8(&bytes[..end]) else {
        return ProxyHeader::Invalid;
    };
    let parts: Vec<&str> = line.split(' ').collect();
    let client = match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => None,
        ["PROXY", "TCP4" | "TCP6", src, _dst, sport, _dport] => {
            let (Ok(ip), Ok(port)) = (src.parse::<IpAddr>(), sport.parse::<u16>()) else {
                return ProxyHeader::Invalid;
            };
            Some(SocketAddr::new(ip, port))
        }
        _ => return ProxyHeader::Invalid,
    };
    ProxyHeader::Complete {
        len: end + 2,
        client,
    }
}

fn proxy_v2(bytes: &[u8]) -> ProxyHeader {
    let Some(head) = bytes.get(..16) else {
        return ProxyHeader::Partial;
    };
    let version_command = head[12];
    let family = head[13];
    let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
    if version_command >> 4 != 2 {
        return ProxyHeader::Invalid;
    }
    let Some(body) = bytes.get(16..16 + len) else {
        return ProxyHeader::Partial;
    };
    let client = match (version_command & 0xf, family >> 4) {
        // LOCAL: the proxy's own connection (a health check).
        (0, _) => None,
        (1, 1) if body.len() >= 12 => {
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([body[8], body[9]]),
            ))
        }
        (1, 2) if body.len() >= 36 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&body[..16]);
            let port = u16::from_be_bytes([body[32], body[33]]);
            Some(SocketAddr::new(Ipv6Addr::from(octets).into(), port))
        }
        // UNSPEC or UNIX: no address to take.
        (1, 0 | 3) => None,
        _ => return ProxyHeader::Invalid,
    };
    ProxyHeader::Complete {
        len: 16 + len,
        client,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parsed;

    #[test]
    fn networks_contain_what_their_prefix_says() {
        let cases = [
            ("10.0.0.0/8", "10.200.3.4", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.0.2.0/25", "192.0.2.127", true),
            ("192.0.2.0/25", "192.0.2.128", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "::ffff:127.0.0.1", true),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "2001:db9::5", false),
            ("0.0.0.0/0", "203.0.113.1", true),
            ("::1", "127.0.0.1", false),
        ];
        for (net, ip, want) in cases {
            let net = Net::parse(net).unwrap();
            assert_eq!(net.contains(ip.parse().unwrap()), want, "{net} {ip}");
        }
        for bad in ["10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", ""] {
            assert!(Net::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop_from_a_trusted_peer() {
        let trusted = TrustedProxies(vec![
            Net::parse("127.0.0.1").unwrap(),
            Net::parse("10.0.0.0/8").unwrap(),
        ]);
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        let req = |field: &str| parsed(&format!("GET / HTTP/1.1\r\nHost: t\r\n{field}\r\n"));
        let cases: &[(IpAddr, &str, &str)] = &[
            // A forged leftmost entry is skipped: the proxy appended the real one.
            (
                proxy,
                "X-Forwarded-For: 1.1.1.1, 203.0.113.9\r\n",
                "203.0.113.9",
            ),
            (
                proxy,
                "X-Forwarded-For: 203.0.113.9, 10.1.2.3\r\n",
                "203.0.113.9",
            ),
            (
                proxy,
                "Forwarded: for=192.0.2.60;proto=http, for=\"[2001:db8::7]:4711\"\r\n",
                "2001:db8::7",
            ),
            (
                proxy,
                "Forwarded: for=unknown, for=192.0.2.43\r\n",
                "192.0.2.43",
            ),
            (proxy, "X-Forwarded-For: 10.0.0.5\r\n", "10.0.0.5"),
            (proxy, "X-Forwarded-For: garbage\r\n", "127.0.0.1"),
            (proxy, "", "127.0.0.1"),
            // From anyone else the headers mean nothing.
            (stranger, "X-Forwarded-For: 203.0.113.9\r\n", "198.51.100.1"),
        ];
        for (peer, field, want) in cases {
            assert_eq!(
                trusted.client(*peer, &req(field)).to_string(),
                *want,
                "{peer} {field}"
            );
        }
    }

    #[test]
    fn proxy_headers_v1_and_v2_are_read_whole_or_refused() {
        let v1 = b"PROXY TCP4 203.0.113.9 10.0.0.1 51234 80\r\nGET / HTTP/1.1\r\n";
        assert_eq!(
            proxy_header(v1),
            ProxyHeader::Complete {
                len: 42,
                client: Some("203.0.113.9:51234".parse().unwrap())
            }
        );
        assert_eq!(proxy_header(&v1[..20]), ProxyHeader::Partial);
        assert_eq!(proxy_header(b"PRO"), ProxyHeader::Partial);
        assert_eq!(proxy_header(b"GET / HTTP/1.1\r\n"), ProxyHeader::Absent);
        assert_eq!(
            proxy_header(b"PROXY UNKNOWN\r\n"),
            ProxyHeader::Complete {
                len: 15,
                client: None
            }
        );
        assert_eq!(
            proxy_header(b"PROXY TCP4 nope 10.0.0.1 1 2\r\n"),
            ProxyHeader::Invalid
        );
        assert_eq!(proxy_header(&[b'P'; 200][..]), ProxyHeader::Absent);
        let mut long = b"PROXY ".to_vec();
        long.extend(std::iter::repeat_n(b'1', 120));
        assert_eq!(proxy_header(&long), ProxyHeader::Invalid);
        // v2, PROXY TCP over IPv4: 198.51.100.7:40000 -> 10.0.0.1:443.
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend([
            0x21, 0x11, 0, 12, 198, 51, 100, 7, 10, 0, 0, 1, 0x9c, 0x40, 1, 0xbb,
        ]);
        v2.extend(b"\x16\x03\x01");
        assert_eq!(
            proxy_header(&v2),
            ProxyHeader::Complete {
                len: 28,
                client: Some("198.51.100.7:40000".parse().unwrap())
            }
        );
        assert_eq!(proxy_header(&v2[..20]), ProxyHeader::Partial);
        assert_eq!(proxy_header(&v2[..5]), ProxyHeader::Partial);
        // LOCAL (a health check): no client.
        let mut local = V2_SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(
            proxy_header(&local),
            ProxyHeader::Complete {
                len: 16,
                client: None
            }
        );
        let mut bad = V2_SIGNATURE.to_vec();
        bad.extend([0x31, 0x11, 0, 0]);
        assert_eq!(proxy_header(&bad), ProxyHeader::Invalid);
    }
}
