//! The startup banner: the URL(s) to open (every interface's address when bound to all of
//! them), what is served, and the connection capacity. Colour only on a terminal, and never
//! when NO_COLOR is set.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// What the banner reports.
pub struct Banner<'a> {
    pub addr: SocketAddr,
    pub routes: usize,
    pub root: &'a Path,
    /// The database file, when collections keep data there.
    pub data: Option<String>,
    pub max_connections: usize,
    pub fd_limit: usize,
    /// The routes file, and whether it is watched for changes.
    pub source: Option<(&'a Path, bool)>,
    /// HTTPS: what the banner says about the certificate (its file or where a self-signed
    /// one was written, and its fingerprint), and the redirect listener's address.
    pub tls: Option<TlsNote<'a>>,
}

/// The banner's HTTPS lines.
pub struct TlsNote<'a> {
    pub certificate: String,
    pub fingerprint: &'a str,
    pub redirect: Option<SocketAddr>,
}

/// True when stdout is a terminal and NO_COLOR is unset or empty (no-color.org).
pub fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

impl Banner<'_> {
    /// The banner's lines. The first always holds `http://HOST:PORT/` with the real port;
    /// `quiet` keeps only that URL.
    pub fn render(&self, quiet: bool, colour: bool) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let url = |ip: IpAddr| {
            let text = format!("{scheme}://{}/", SocketAddr::new(ip, self.addr.port()));
            if colour {
                format!("\x1b[1;32m{text}\x1b[0m")
            } else {
                text
            }
        };
        if quiet {
            return format!("{}\n", url(self.addr.ip()));
        }
        let mut text = format!(
            "tws {} serving {} at {}",
            env!("CARGO_PKG_VERSION"),
            count(self.routes, "route"),
            url(self.addr.ip())
        );
        if self.addr.ip().is_unspecified() {
            text.push_str(" (every interface):\n");
            for ip in interface_addresses(self.addr.ip()) {
                text.push_str(&format!("  {}\n", url(ip)));
            }
        } else {
            text.push('\n');
        }
        text.push_str(&format!("  root {}", self.root.display()));
        if let Some(data) = &self.data {
            text.push_str(&format!(", data {data}"));
        }
        text.push_str(&format!(
            "\n  up to {} connections (open file limit {})\n",
            self.max_connections, self.fd_limit
        ));
        if let Some((file, watched)) = self.source {
            let how = if watched {
                "reloaded when it changes or on SIGHUP"
            } else {
                "reloaded on SIGHUP"
            };
            text.push_str(&format!("  {} is {how}\n", file.display()));
        }
        if let Some(tls) = &self.tls {
            text.push_str(&format!(
                "  TLS certificate {}\n  SHA-256 fingerprint {}\n",
                tls.certificate, tls.fingerprint
            ));
            if let Some(redirect) = tls.redirect {
                text.push_str(&format!("  http://{redirect}/ redirects to HTTPS (308)\n"));
            }
        }
        text
    }
}

/// The addresses of this machine's interfaces in the family of `any` (0.0.0.0 or ::).
fn interface_addresses(any: IpAddr) -> Vec<IpAddr> {
    let mut found = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we only read and then free with freeifaddrs; each
    // ifa_addr is checked for null and its family before it is cast to the matching sockaddr.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return found;
        }
        let mut at = list;
        while !at.is_null() {
            let addr = (*at).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET if any.is_ipv4() => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        found.push(IpAddr::from(
                            u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                        ));
                    }
                    libc::AF_INET6 if any.is_ipv6() => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        found.push(IpAddr::from(sin6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            at = (*at).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    found.sort();
    found.dedup();
    found
}

/// `n` things, the noun in the singular for one: "1 route", "16 routes".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banner(addr: &str) -> Banner<'static> {
        Banner {
            addr: addr.parse().unwrap(),
            routes: 3,
            root: Path::new("site"),
            data: Some("data/tws.db".into()),
            max_connections: 100,
            fd_limit: 1024,
            source: Some((Path::new("routes.toml"), true)),
            tls: None,
        }
    }

    #[test]
    fn the_first_line_holds_the_url() {
        let text = banner("127.0.0.1:8080").render(false, false);
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            format!(
                "tws {} serving 3 routes at http://127.0.0.1:8080/",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert!(text.contains("root site, data data/tws.db"));
        assert!(text.contains("up to 100 connections"));
        assert!(text.contains("routes.toml is reloaded when it changes"));
        assert_eq!(
            banner("127.0.0.1:8080").render(true, false),
            "http://127.0.0.1:8080/\n"
        );
    }

    #[test]
    fn all_interfaces_are_listed_and_colour_is_optional() {
        let text = banner("0.0.0.0:8080").render(false, false);
        assert!(
            text.lines()
                .next()
                .unwrap()
                .contains("http://0.0.0.0:8080/ (every interface)")
        );
        assert!(text.contains("  http://127.0.0.1:8080/"), "{text}");
        let coloured = banner("127.0.0.1:8080").render(true, true);
        assert_eq!(coloured, "\x1b[1;32mhttp://127.0.0.1:8080/\x1b[0m\n");
    }
}
