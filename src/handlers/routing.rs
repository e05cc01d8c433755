//! Routing a request from its head alone, cheap and free of I/O: host, route, a CORS
//! preflight (which carries no credentials), auth, the method, a redirect; what is left runs
//! the route's handler (`App::handle`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::{App, Dispatch, Routed, error_format, listing, site};
use crate::http::request::Framing;
use crate::http::response::{ErrorFormat, Response};
use crate::http::{HttpError, Method, Methods, Request};
use crate::path;
use crate::router::Found;
use crate::routes::Target;
use crate::rules::csrf;
use crate::rules::guard::{self, Check};
use crate::rules::hosts::request_host;

impl App {
    /// Decides what a request from `peer` needs, from its head alone: cheap and free of I/O.
    /// Host, then route, then a CORS preflight (which carries no credentials), then auth,
    /// then the method, then a redirect; what is left runs the route's handler.
    pub fn route(&self, req: &Request, peer: IpAddr) -> Dispatch {
        if req.target() == "*" {
            let all = self.routes().iter().fold(Methods::NONE, |set, r| {
                r.methods.iter().fold(set, |set, m| set.with(m))
            });
            let response = Response::empty(204).header("Allow", all.allow_header());
            return Dispatch::Answer(response, None);
        }
        let path = match path::normalize(req.path()) {
            Ok(path) => path,
            Err(e) => return Dispatch::Answer(self.error(e, ErrorFormat::Text), None),
        };
        let host = if self.router.has_hosts() {
            request_host(req)
        } else {
            None
        };
        let (index, route, rest) = match self.router.find(host.as_deref(), &path) {
            Found::NotFound => {
                return Dispatch::Answer(self.error(HttpError::NotFound, ErrorFormat::Text), None);
            }
            Found::AddSlash(_) => {
                let mut location = listing::encode_path(&path);
                location.push('/');
                if let Some(query) = req.query() {
                    location.push('?');
                    location.push_str(query);
                }
                return Dispatch::Answer(Response::empty(301).header("Location", location), None);
            }
            Found::Route { index, route, rest } => (index, route, rest),
        };
        let answer = |response| Dispatch::Answer(response, Some(index));
        let format = error_format(route);
        if let Some(allow) = &route.allow
            && !allow.iter().any(|net| net.contains(peer))
        {
            let err = HttpError::Forbidden("this path answers only to allowed addresses");
            return answer(self.error(err, format));
        }
        if let Some(preflight) = route
            .cors
            .as_ref()
            .and_then(|cors| cors.preflight(req, route.methods))
        {
            return answer(preflight);
        }
        if let Some(err) = body_coding(req) {
            return answer(self.error(err, format));
        }
        if let Target::Collection(endpoint) = &route.target
            && endpoint.item
            && !req.path().ends_with(&format!("/{rest}"))
        {
            // `/things/%31` is `/things/1` spelled otherwise: one record, one URL.
            return answer(self.error(HttpError::NotFound, format));
        }
        let writes = match &route.target {
            Target::Dir(spec) if spec.writes.any() => Some(&spec.writes),
            _ => None,
        };
        if (route.auth.is_some() || writes.is_some())
            && csrf::cross_site(req, route.cors.as_deref())
        {
            let err = HttpError::Forbidden(
                "a request from another site cannot change anything here (cross-site request refused)",
            );
            return answer(self.error(err, format));
        }
        let mut verify = None;
        // Writes to a folder whose reads are public need their own realm.
        let changing = !matches!(req.method, Method::Get | Method::Head | Method::Options);
        let realm = match writes.and_then(|w| w.auth.as_ref()) {
            Some(write_realm) if changing && route.auth.is_none() => Some(write_realm),
            _ => route.auth.as_ref(),
        };
        if let Some(realm) = realm {
            match guard::guard().check(realm, req, peer, Instant::now()) {
                Check::Allowed => {}
                Check::Challenge => return answer(site::challenge(realm, format)),
                Check::Locked => return answer(site::locked(format)),
                Check::Busy => return answer(site::busy(format)),
                Check::Verify(attempt) => verify = Some(Box::new((attempt, Arc::clone(realm)))),
            }
        }
        if req.method == Method::Options {
            let allow = route.methods.allow_header();
            return answer(Response::empty(204).header("Allow", allow));
        }
        if !route.methods.contains(req.method) {
            let err = HttpError::MethodNotAllowed(route.methods);
            return answer(self.error(err, format));
        }
        if let Target::Redirect(spec) = &route.target
            && verify.is_none()
        {
            return answer(site::redirect(spec, rest, req));
        }
        let rest = rest.to_owned();
        let mut key = format!("{index}\0");
        let path_at = key.len();
        key.push_str(&path);
        Dispatch::Run(Routed {
            index,
            key,
            path_at,
            rest,
            verify,
            client: peer,
            internal: false,
        })
    }
}

/// A request body sent with a content coding tws does not decode: 415 naming it.
fn body_coding(req: &Request) -> Option<HttpError> {
    if req.framing == Framing::None {
        return None;
    }
    let coding = req
        .header_str("content-encoding")?
        .trim()
        .to_ascii_lowercase();
    let why = match coding.as_str() {
        "" | "identity" => return None,
        "gzip" | "x-gzip" => {
            "request bodies with Content-Encoding: gzip are not accepted; send it uncompressed"
        }
        "br" => "request bodies with Content-Encoding: br are not accepted; send it uncompressed",
        "zstd" => {
            "request bodies with Content-Encoding: zstd are not accepted; send it uncompressed"
        }
        "deflate" => {
            "request bodies with Content-Encoding: deflate are not accepted; send it uncompressed"
        }
        _ => "request bodies with a Content-Encoding are not accepted; send it uncompressed",
    };
    Some(HttpError::UnsupportedMediaType(why))
}
