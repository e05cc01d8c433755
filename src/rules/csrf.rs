//! Cross-site request forgery: a browser sends a logged-in user's Basic credentials with any
//! request to the site, whichever page made it. So on a route with `auth`, a request that
//! changes something (not GET, HEAD, OPTIONS or TRACE) is refused when a browser says it came
//! from another site: `Sec-Fetch-Site: cross-site`, or an `Origin` that is neither the
//! request's own nor one the route's CORS allows. Clients that are not browsers send neither
//! header and are unaffected.

use super::cors::Cors;
use crate::http::{Method, Request};

/// True when `req` is a cross-site browser request that changes something.
pub fn cross_site(req: &Request, cors: Option<&Cors>) -> bool {
    if matches!(
        req.method,
        Method::Get | Method::Head | Method::Options | Method::Trace
    ) {
        return false;
    }
    let fetch_site = req.header_str("sec-fetch-site").map(str::trim);
    if fetch_site.is_some_and(|v| v.eq_ignore_ascii_case("cross-site")) {
        return true;
    }
    let Some(origin) = req.header_str("origin").map(str::trim) else {
        return false;
    };
    // `null`: a sandboxed frame, a file, a redirect across sites.
    let authority = origin.split_once("://").map(|(_, a)| a);
    let same =
        authority.is_some_and(|a| req.host().is_some_and(|h| h.trim().eq_ignore_ascii_case(a)));
    !same && !cors.is_some_and(|c| c.allows(origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parsed;

    #[test]
    fn only_cross_site_browser_changes_are_refused() {
        let cors = Cors {
            origins: Some(vec!["https://app.example".into()]),
            methods: None,
            headers: Vec::new(),
            expose: Vec::new(),
            credentials: true,
            max_age: None,
        };
        // (method, extra fields, with the CORS above, refused)
        let cases: &[(&str, &str, bool, bool)] = &[
            (
                "POST",
                "Origin: https://evil.example\r\nSec-Fetch-Site: cross-site\r\n",
                false,
                true,
            ),
            ("POST", "Sec-Fetch-Site: cross-site\r\n", true, true),
            ("POST", "Origin: https://evil.example\r\n", false, true),
            ("POST", "Origin: null\r\n", false, true),
            ("DELETE", "Origin: https://evil.example\r\n", true, true),
            (
                "POST",
                "Origin: http://site.example:8080\r\nSec-Fetch-Site: same-origin\r\n",
                false,
                false,
            ),
            ("POST", "Origin: https://app.example\r\n", true, false),
            ("POST", "Origin: https://app.example\r\n", false, true),
            ("POST", "", false, false),
            ("PUT", "Sec-Fetch-Site: none\r\n", false, false),
            (
                "GET",
                "Origin: https://evil.example\r\nSec-Fetch-Site: cross-site\r\n",
                false,
                false,
            ),
        ];
        for (method, extra, with_cors, refused) in cases {
            let req = parsed(&format!(
                "{method} /x HTTP/1.1\r\nHost: site.example:8080\r\n{extra}\r\n"
            ));
            let cors = with_cors.then_some(&cors);
            assert_eq!(cross_site(&req, cors), *refused, "{method} {extra:?}");
        }
    }
}
