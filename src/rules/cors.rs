//! Cross-origin resource sharing (the Fetch standard's CORS protocol): which origins may read a
//! route's responses, and the answer to a preflight. A request from an allowed origin gets
//! `Access-Control-Allow-Origin` (the origin itself with `Vary: Origin`, or `*`); a disallowed
//! one gets no CORS header at all.

use crate::http::{Method, Methods, Request, Response};

/// Which origins may read a route's responses, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// `None`: any origin (`*`).
    pub origins: Option<Vec<String>>,
    /// Methods a preflight allows (default: the route's own).
    pub methods: Option<Methods>,
    /// Request headers a preflight allows (lower case); empty: none beyond the safelisted ones.
    pub headers: Vec<String>,
    /// Response headers scripts may read.
    pub expose: Vec<String>,
    pub credentials: bool,
    /// Seconds a preflight answer may be cached.
    pub max_age: Option<u64>,
}

impl Cors {
    /// Checks a declaration; the error says what is wrong (the caller names the key).
    pub fn validate(&self) -> Result<(), String> {
        if self.credentials && self.origins.is_none() {
            return Err(
                "credentials = true cannot go with origins = \"*\": browsers refuse it; list the origins"
                    .to_owned(),
            );
        }
        for origin in self.origins.iter().flatten() {
            let scheme = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let valid = scheme.is_some_and(|rest| {
                !rest.is_empty() && !rest.contains(['/', '?', '#', ' ']) && rest == rest.trim()
            });
            if !valid {
                return Err(format!(
                    "origin {origin:?} must be a scheme and host such as \"https://app.example\" (no path)"
                ));
            }
        }
        for name in self.headers.iter().chain(&self.expose) {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                return Err(format!("header name {name:?} is not a token"));
            }
        }
        Ok(())
    }

    /// True when `origin` may read this route's responses.
    pub fn allows(&self, origin: &str) -> bool {
        match &self.origins {
            None => true,
            Some(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }

    /// The request's origin when this route lets it read responses.
    fn allowed<'r>(&self, req: &'r Request) -> Option<&'r str> {
        let origin = req.header_str("origin")?;
        match &self.origins {
            None => Some(origin),
            Some(list) => list
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
                .then_some(origin),
        }
    }

    /// The answer to a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
    /// from an allowed origin; `None` for other requests.
    pub fn preflight(&self, req: &Request, route_methods: Methods) -> Option<Response> {
        if req.method != Method::Options {
            return None;
        }
        let requested = req.header_str("access-control-request-method")?;
        let origin = self.allowed(req)?;
        let methods = self.methods.unwrap_or(route_methods);
        let method = Method::from_token(requested.trim())?;
        if !methods.contains(method) {
            return None;
        }
        // The origin's own headers (Allow-Origin, Vary, Allow-Credentials) are added with every
        // other answer's, once, by `decorate`.
        let _ = origin;
        let mut response = Response::empty(204);
        let headers = &mut response.headers;
        headers.push(("Access-Control-Allow-Methods", methods.allow_header()));
        if !self.headers.is_empty() {
            headers.push(("Access-Control-Allow-Headers", self.headers.join(", ")));
        }
        if let Some(age) = self.max_age {
            headers.push(("Access-Control-Max-Age", age.to_string()));
        }
        Some(response)
    }

    /// Adds the CORS headers of a response, a preflight's included, each once (nothing but
    /// `Vary` for a disallowed origin).
    pub fn decorate(&self, req: &Request, response: &mut Response) {
        let headers = &mut response.headers;
        let Some(origin) = self.allowed(req) else {
            if self.origins.is_some() {
                // Caches must not give this answer to an allowed origin, or the reverse.
                headers.push(("Vary", "Origin".to_owned()));
            }
            return;
        };
        self.allow_origin(headers, origin);
        let preflight =
            req.method == Method::Options && req.header("access-control-request-method").is_some();
        if !self.expose.is_empty() && !preflight {
            headers.push(("Access-Control-Expose-Headers", self.expose.join(", ")));
        }
    }

    fn allow_origin(&self, headers: &mut Vec<(&'static str, String)>, origin: &str) {
        match &self.origins {
            None => headers.push(("Access-Control-Allow-Origin", "*".to_owned())),
            Some(_) => {
                headers.push(("Access-Control-Allow-Origin", origin.to_owned()));
                headers.push(("Vary", "Origin".to_owned()));
            }
        }
        if self.credentials {
            headers.push(("Access-Control-Allow-Credentials", "true".to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parsed as request;

    /// The value of a header that must appear exactly once (`None` when absent).
    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        let all: Vec<&str> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        assert!(all.len() <= 1, "{name} appears {} times", all.len());
        all.first().copied()
    }

    fn listed() -> Cors {
        Cors {
            origins: Some(vec!["https://app.example".into()]),
            methods: None,
            headers: vec!["content-type".into()],
            expose: vec!["etag".into()],
            credentials: true,
            max_age: Some(600),
        }
    }

    #[test]
    fn preflights_from_allowed_and_disallowed_origins() {
        let cors = listed();
        let route = Methods::of(&[Method::Get, Method::Post]);
        let ask = |origin: &str, method: &str| {
            request(&format!(
                "OPTIONS /api HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n\
                 Access-Control-Request-Method: {method}\r\n\r\n"
            ))
        };
        // As the application answers it: the preflight, then every answer's CORS headers.
        let asked = ask("https://app.example", "POST");
        let mut ok = cors.preflight(&asked, route).unwrap();
        cors.decorate(&asked, &mut ok);
        assert_eq!(ok.status, 204);
        assert_eq!(header(&ok, "vary"), Some("Origin"));
        assert_eq!(header(&ok, "access-control-expose-headers"), None);
        assert_eq!(
            header(&ok, "access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(
            header(&ok, "access-control-allow-methods"),
            Some("GET, POST, OPTIONS")
        );
        assert_eq!(
            header(&ok, "access-control-allow-headers"),
            Some("content-type")
        );
        assert_eq!(header(&ok, "access-control-max-age"), Some("600"));
        assert_eq!(
            header(&ok, "access-control-allow-credentials"),
            Some("true")
        );
        assert!(
            cors.preflight(&ask("https://evil.example", "POST"), route)
                .is_none()
        );
        assert!(
            cors.preflight(&ask("https://app.example", "DELETE"), route)
                .is_none()
        );
        let plain = request("OPTIONS /api HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(cors.preflight(&plain, route).is_none());
    }

    #[test]
    fn actual_requests_get_headers_only_for_allowed_origins() {
        let cors = listed();
        let from = |origin: &str| {
            let req = request(&format!(
                "GET /api HTTP/1.1\r\nHost: t\r\nOrigin: {origin}\r\n\r\n"
            ));
            let mut r = Response::empty(200);
            cors.decorate(&req, &mut r);
            r
        };
        let ok = from("https://app.example");
        assert_eq!(
            header(&ok, "access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(header(&ok, "access-control-expose-headers"), Some("etag"));
        assert_eq!(header(&ok, "vary"), Some("Origin"));
        let no = from("https://evil.example");
        assert_eq!(header(&no, "access-control-allow-origin"), None);
        let any = Cors {
            origins: None,
            credentials: false,
            ..listed()
        };
        let req = request("GET / HTTP/1.1\r\nHost: t\r\nOrigin: https://x.example\r\n\r\n");
        let mut r = Response::empty(200);
        any.decorate(&req, &mut r);
        assert_eq!(header(&r, "access-control-allow-origin"), Some("*"));
        assert!(
            Cors {
                credentials: true,
                ..any
            }
            .validate()
            .is_err()
        );
        let path = Cors {
            origins: Some(vec!["https://a.example/path".into()]),
            ..listed()
        };
        assert!(path.validate().is_err());
    }
}
