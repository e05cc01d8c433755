//! The site rules as the application applies them: the answers of redirect routes, of
//! requests without valid credentials, and of CORS preflights, and the headers (declared and
//! CORS) added to every response of a route.

use std::sync::Arc;

use super::App;
use super::listing::encode_path;
use crate::http::response::{Body, ErrorFormat, Response, TEXT_PLAIN};
use crate::http::{HttpError, Request};
use crate::routes::{RedirectSpec, Route};
use crate::rules::auth::Realm;
use crate::rules::guard;

/// The answer of a redirect route: its target, then (below a prefix route) the rest of the
/// path, then the request's query. Only the target written in routes.toml decides where.
pub fn redirect(spec: &RedirectSpec, rest: &str, req: &Request) -> Response {
    let mut location = spec.to.clone();
    if !rest.is_empty() {
        if !location.ends_with('/') {
            location.push('/');
        }
        location.push_str(&encode_path(rest));
    }
    if let Some(query) = req.query() {
        location.push(if location.contains('?') { '&' } else { '?' });
        location.push_str(query);
    }
    let body = format!(
        "{} {}: {location}\n",
        spec.status,
        crate::http::error::reason_phrase(spec.status)
    );
    Response::new(spec.status, TEXT_PLAIN, Body::Bytes(body.into_bytes()))
        .header("Location", location)
}

/// 401 with the realm's challenge: the same for every path of the route.
pub fn challenge(realm: &Realm, format: ErrorFormat) -> Response {
    let err = HttpError::Unauthorized("credentials are required");
    Response::error(err, format).header("WWW-Authenticate", realm.challenge())
}

/// 429 for an address that tried too many passwords.
pub fn locked(format: ErrorFormat) -> Response {
    let err = HttpError::TooManyRequests("too many logins from this address; try again later");
    Response::error(err, format).header("Retry-After", guard::LOCKOUT.as_secs().to_string())
}

/// 429 for a login sent while another from the same address (or for the same user) is
/// still being checked.
pub fn busy(format: ErrorFormat) -> Response {
    let err = HttpError::TooManyRequests(
        "a login from this address or for this user is being checked; retry in a second",
    );
    Response::error(err, format).header("Retry-After", "1")
}

impl App {
    /// Adds a route's declared headers and CORS headers to one of its responses; a response
    /// no route made (`route` is `None`) gets the server-wide headers.
    pub fn decorate(&self, route: Option<usize>, req: Option<&Request>, response: &mut Response) {
        let route: Option<&Route> = route.map(|i| self.router.route(i));
        let headers = match route {
            Some(route) => route.headers.as_ref(),
            None => self.headers.as_ref(),
        };
        if let Some(set) = headers {
            response.extra = Some(Arc::clone(set.lines()));
            response.omit_server = set.replaces_server();
        }
        if let (Some(cors), Some(req)) = (route.and_then(|r| r.cors.as_ref()), req) {
            cors.decorate(req, response);
        }
    }
}
