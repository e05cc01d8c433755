//! The application: routes a parsed request and turns it into a `Response`. Nothing here touches
//! a socket, so every handler is tested with plain values.

pub mod archive;
pub mod changes;
pub mod compressed;
pub mod dir;
pub mod file;
pub mod listing;
pub mod media;
pub mod redirect;
mod routing;
pub mod site;
pub mod upload;
pub mod writes;

use std::sync::Arc;

use std::net::IpAddr;

use crate::actions;
use crate::api::{self, store::Store};
use crate::compress::{self, Settings};
use crate::config::Config;
use crate::http::response::{ErrorFormat, ErrorPages, Respond, Response};
use crate::http::{HttpError, Method, Request};
use crate::path::{Exposure, Symlinks};
use crate::router::{Found, Router};
use crate::routes::{Route, Target};
use crate::rules::auth::Realm;
use crate::rules::guard::{self, Attempt};
use crate::rules::headers::HeaderSet;
use crate::rules::hosts::request_host;
use file::{FileOptions, FileSet};
use listing::{Listing, Listings};
use media::ContentTypes;

/// The route table and the state handlers need.
pub struct App {
    router: Router,
    store: Option<Arc<dyn Store>>,
    types: ContentTypes,
    error_pages: ErrorPages,
    /// Recently listed folders, shared by every loop and worker.
    listings: Listings,
    /// Compression on the fly, when on.
    compression: Option<Settings>,
    /// Headers on responses no route made (`[headers]`).
    headers: Option<Arc<HeaderSet>>,
    /// The OpenAPI document of the collections, when a route serves it.
    openapi: bytes::Bytes,
}

/// What to do with a request whose head has been read.
#[derive(Debug)]
pub enum Dispatch {
    /// Answer at once: an error, a redirect, or OPTIONS; with the route it belongs to, if any.
    Answer(Response, Option<usize>),
    /// Read the body (if any), then run the route with `App::handle`.
    Run(Routed),
}

/// A request matched to a route.
#[derive(Debug, PartialEq, Eq)]
pub struct Routed {
    index: usize,
    /// The route's index, a NUL, then the normalised request path: the key of what a loop
    /// caches for it (routes of different hosts may share a path).
    key: String,
    /// Where the path starts in `key`.
    path_at: usize,
    /// The `{id}` value, or the path inside a `dir` route.
    rest: String,
    /// A login to verify (on the login threads) before anything else, and its realm.
    verify: Option<Box<(Attempt, Arc<Realm>)>>,
    /// Who asked (for the routing of an internal redirect).
    client: IpAddr,
    /// Reached by an internal redirect: a further one is not followed.
    internal: bool,
}

impl Routed {
    /// The normalised request path.
    pub fn path(&self) -> &str {
        &self.key[self.path_at..]
    }

    /// What a loop keeps its answer under: route and path.
    pub fn cache_key(&self) -> &str {
        &self.key
    }

    /// The route's index in the table it was found in.
    pub fn index(&self) -> usize {
        self.index
    }

    /// True when its credentials must be verified first (no cached answer).
    pub fn needs_verification(&self) -> bool {
        self.verify.is_some()
    }
}

/// What an answer was made from, when a connection may keep it to answer the same path again
/// without a worker: a file set, or a folder's listing.
#[derive(Debug, Clone)]
pub enum Cacheable {
    File(Arc<FileSet>),
    Listing(Arc<Listing>),
}

impl Cacheable {
    /// Answers a request from what was kept, without I/O; `None` when a page or a compressed
    /// form must first be made (on a worker: `respond`).
    pub fn try_respond(&self, req: &Request) -> Option<Result<Response, HttpError>> {
        match self {
            Cacheable::File(set) => set.try_respond(req),
            Cacheable::Listing(listing) => listing.try_respond(req),
        }
    }

    /// Answers a request from what was kept, making what it needs first (on a worker).
    pub fn respond(&self, req: &Request) -> Result<Response, HttpError> {
        match self {
            Cacheable::File(set) => set.respond(req),
            Cacheable::Listing(listing) => listing.respond(req),
        }
    }

    /// Bytes of content held in memory.
    pub fn memory(&self) -> usize {
        match self {
            Cacheable::File(set) => set.memory(),
            Cacheable::Listing(listing) => listing.memory(),
        }
    }

    /// Files held open.
    pub fn open_files(&self) -> usize {
        match self {
            Cacheable::File(set) => set.open_files(),
            Cacheable::Listing(_) => 0,
        }
    }
}

/// Where a handler's answer goes: to the connection, possibly from another thread and later
/// (a create waits for its flush). Sent exactly once; dropped unsent (a panicking handler), it
/// answers 500 so that no connection waits forever.
pub struct Reply {
    to: Option<ReplyTo>,
}

/// Delivers a response, and what it was made from when that may be kept.
type ReplyTo = Box<dyn FnOnce(Response, Option<Cacheable>) + Send>;

impl Reply {
    pub fn new(to: impl FnOnce(Response, Option<Cacheable>) + Send + 'static) -> Reply {
        Reply {
            to: Some(Box::new(to)),
        }
    }

    /// The same destination, but what its answer is made from is never kept (an answer that
    /// depends on more than the path: an internal redirect's, behind another route's auth).
    pub fn uncached(mut self) -> Reply {
        match self.to.take() {
            Some(to) => Reply::new(move |response, _| to(response, None)),
            None => self,
        }
    }

    pub fn send(self, response: Response) {
        self.finish(response, None);
    }

    /// Sends a response made from something the connection may keep for later requests.
    pub fn send_cacheable(self, response: Response, source: Cacheable) {
        self.finish(response, Some(source));
    }

    fn finish(mut self, response: Response, source: Option<Cacheable>) {
        if let Some(to) = self.to.take() {
            to(response, source);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(to) = self.to.take() {
            let err = HttpError::Internal("the handler failed");
            to(Response::error(err, ErrorFormat::Text), None);
        }
    }
}

impl App {
    pub fn new(routes: Vec<Route>, store: Option<Arc<dyn Store>>) -> App {
        let serves_openapi = routes
            .iter()
            .any(|r| matches!(r.target, Target::Action(crate::routes::Action::OpenApi)));
        App {
            openapi: if serves_openapi {
                api::openapi::document(&routes).into()
            } else {
                bytes::Bytes::new()
            },
            router: Router::new(routes),
            store,
            types: ContentTypes::default(),
            error_pages: ErrorPages::default(),
            listings: Listings::default(),
            compression: None,
            headers: None,
        }
    }

    /// The application for a validated configuration.
    pub fn from_config(config: &Config, store: Option<Arc<dyn Store>>) -> App {
        App {
            types: ContentTypes::new(config.types.clone()),
            error_pages: Arc::new(config.error_pages.clone()),
            compression: Some(config.server.compression.clone()).filter(|c| c.enabled),
            headers: config.headers.clone(),
            ..App::new(config.routes.clone(), store)
        }
    }

    pub fn routes(&self) -> &[Route] {
        self.router.routes()
    }

    /// Ends every live stream (the server is stopping).
    pub fn end_live(&self) {
        if let Some(hub) = self.store.as_deref().and_then(|s| s.hub()) {
            hub.close_all();
        }
    }

    /// Compression settings for a route's responses, unless off for it or everywhere.
    fn compression_for(&self, route: &Route) -> Option<&Settings> {
        self.compression.as_ref().filter(|_| route.compress)
    }

    /// True when the answer to `req` comes from a file set or listing a connection may keep
    /// (a GET or HEAD of a file, page or folder route without a body, a login to check or an
    /// archive to make).
    pub fn cacheable(&self, req: &Request, routed: &Routed) -> bool {
        matches!(req.method, Method::Get | Method::Head)
            && req.framing == crate::http::request::Framing::None
            && routed.verify.is_none()
            && matches!(
                self.router.route(routed.index).target,
                Target::File(_) | Target::Page(_) | Target::Dir(_)
            )
            && archive::requested(req.query()).is_none()
    }

    /// Answers on the event loop what needs neither I/O nor much work: a record the store
    /// holds in memory (and which is not to be compressed). `None`: run it on a worker.
    pub fn answer_now(&self, req: &Request, routed: &Routed) -> Option<Response> {
        if routed.verify.is_some() {
            return None;
        }
        let route = self.router.route(routed.index);
        let Target::Collection(endpoint) = &route.target else {
            return None;
        };
        let response = api::answer_cached(endpoint, self.store.as_deref()?, req, &routed.rest)?;
        match self.compression_for(route) {
            Some(s) if s.applies(&response.content_type, response.body.len()) => None,
            _ => Some(response),
        }
    }

    /// True when a routed request with a body of `len` bytes can be started on the event loop:
    /// a write to a collection with a small body. Checking it is quick, and the store's
    /// writer answers it later; reads, which may wait for the disk, stay on workers.
    pub fn starts_on_loop(&self, req: &Request, routed: &Routed, len: usize) -> bool {
        const SMALL_BODY: usize = 16 * 1024;
        routed.verify.is_none()
            && len <= SMALL_BODY
            && matches!(
                req.method,
                Method::Post | Method::Put | Method::Patch | Method::Delete
            )
            && matches!(
                self.router.route(routed.index).target,
                Target::Collection(_)
            )
    }

    /// Runs a routed request with its (fully read) body; the answer goes to `reply`.
    /// Blocking work happens here, on a worker thread.
    pub fn handle(&self, req: &Request, routed: &Routed, body: &[u8], reply: Reply) {
        let route = self.router.route(routed.index);
        debug_assert!(
            routed.verify.is_none(),
            "a login is verified before `handle`"
        );
        let result = match &route.target {
            Target::Redirect(spec) => {
                return reply.send(site::redirect(spec, &routed.rest, req));
            }
            Target::File(spec) | Target::Page(spec) => {
                let options = FileOptions {
                    content_type: spec.content_type.as_deref(),
                    download: spec.download.as_deref(),
                    cache_control: spec.cache_control.as_deref(),
                    compression: self.compression_for(route),
                };
                let exposure = Exposure {
                    dotfiles: true,
                    symlinks: Symlinks::Follow,
                };
                FileSet::open(&spec.folder, &spec.name, exposure, &self.types, options)
                    .map(dir::Served::File)
            }
            Target::Dir(spec) if !matches!(req.method, Method::Get | Method::Head) => {
                let answer = changes::apply(spec, req, routed.path(), &routed.rest, body);
                return reply.send(answer.unwrap_or_else(|e| self.error_response(routed, e)));
            }
            Target::Dir(spec) => dir::serve(
                spec,
                routed.path(),
                &routed.rest,
                req.query(),
                &self.types,
                &self.listings,
                self.compression_for(route),
            ),
            Target::Action(action) => {
                // A long /metrics is compressed like a collection's answer.
                return reply.send(compress::response(
                    actions::run(*action, self.store.as_deref(), &self.openapi),
                    self.compression_for(route),
                    req.header_str("accept-encoding"),
                ));
            }
            Target::Collection(endpoint) => {
                let Some(store) = self.store.as_deref() else {
                    let err = HttpError::ServiceUnavailable("no database is open");
                    return reply.send(self.error_response(routed, err));
                };
                // Answers are compressed on their way out, on whichever thread sends them.
                let compression = self.compression_for(route).cloned();
                let accept = req.header_str("accept-encoding").map(str::to_owned);
                let respond: Respond = Box::new(move |response| {
                    reply.send(compress::response(
                        response,
                        compression.as_ref(),
                        accept.as_deref(),
                    ));
                });
                return api::handle(
                    endpoint,
                    store,
                    req,
                    &routed.rest,
                    body,
                    respond,
                    &self.error_pages,
                );
            }
        };
        let source = match result {
            Ok(dir::Served::File(set)) => Cacheable::File(Arc::new(set)),
            Ok(dir::Served::Found(set, rel)) => match self.owner_elsewhere(req, routed, &rel) {
                // Another route owns what the path led to: its rules (auth above all) decide,
                // and the answer is not kept under this path.
                Some(target) => return self.internal(req, routed, &target, body, reply),
                None => Cacheable::File(Arc::new(set)),
            },
            Ok(dir::Served::Listing(listing)) => Cacheable::Listing(listing),
            Ok(dir::Served::Other(response)) => return reply.send(response),
            Err(e) => return reply.send(self.error_response(routed, e)),
        };
        let response = source
            .respond(req)
            .unwrap_or_else(|e| self.error_response(routed, e));
        reply.send_cacheable(response, source);
    }

    /// The URL path of `rel` (below a folder route's mount) when another route owns it.
    fn owner_elsewhere(&self, req: &Request, routed: &Routed, rel: &str) -> Option<String> {
        if routed.internal {
            return None;
        }
        let mount = &self.router.route(routed.index).path;
        let url = format!("{}/{rel}", mount.trim_end_matches('/'));
        let host = self.router.has_hosts().then(|| request_host(req)).flatten();
        match self.router.find(host.as_deref(), &url) {
            Found::Route { index, .. } if index != routed.index => Some(url),
            _ => None,
        }
    }

    /// Answers `req` as a request for `target` would be answered (an internal redirect, as
    /// nginx's `try_files`): routed afresh, its login verified here, then handled; a further
    /// internal redirect is not followed.
    fn internal(&self, req: &Request, routed: &Routed, target: &str, body: &[u8], reply: Reply) {
        let mut uri = listing::encode_path(target);
        if let Some(query) = req.query() {
            uri.push('?');
            uri.push_str(query);
        }
        let inner = req.with_target(uri);
        let reply = reply.uncached();
        match self.route(&inner, routed.client) {
            Dispatch::Answer(response, _) => reply.send(response),
            Dispatch::Run(next) => match self.login(next) {
                Ok(mut next) => {
                    next.internal = true;
                    self.handle(&inner, &next, body, reply);
                }
                Err(refusal) => reply.send(*refusal),
            },
        }
    }

    /// Where the body of `req` goes as it arrives, when it is an upload (`upload::sink`);
    /// `Ok(None)`: it is read into memory as usual.
    pub fn body_sink(
        &self,
        req: &Request,
        routed: &Routed,
    ) -> Result<Option<Box<dyn upload::BodySink>>, upload::Refusal> {
        match &self.router.route(routed.index).target {
            Target::Dir(spec) => upload::sink(spec, req, routed.path(), &routed.rest),
            _ => Ok(None),
        }
    }

    /// Checks the login of a routed request now, before its body is read (an upload's: its
    /// body waits for the verdict); `Some` is the refusal. On the login threads.
    pub fn check_login(&self, routed: &mut Routed) -> Option<Box<Response>> {
        self.login_checked(routed).err()
    }

    fn login_checked(&self, routed: &mut Routed) -> Result<(), Box<Response>> {
        let route = self.router.route(routed.index);
        if let Some(login) = routed.verify.take() {
            let (attempt, realm) = *login;
            if !guard::guard().verify(&realm, attempt) {
                return Err(Box::new(site::challenge(&realm, error_format(route))));
            }
        }
        Ok(())
    }

    /// Verifies the login a routed request carries (argon2: slow, on the login threads);
    /// `Err` holds the 401 for a wrong one.
    pub fn login(&self, mut routed: Routed) -> Result<Routed, Box<Response>> {
        self.login_checked(&mut routed)?;
        Ok(routed)
    }

    /// Takes the login a routed request carries out of it (to check it elsewhere first).
    pub fn take_login(&self, routed: &mut Routed) -> Routed {
        Routed {
            index: routed.index,
            key: routed.key.clone(),
            path_at: routed.path_at,
            rest: routed.rest.clone(),
            verify: routed.verify.take(),
            client: routed.client,
            internal: routed.internal,
        }
    }

    /// Answers a request from something kept for its path whose answer needs rendering first
    /// (see `Cacheable::try_respond`); on a worker.
    pub fn handle_from(&self, source: &Cacheable, req: &Request, routed: &Routed, reply: Reply) {
        let response = source
            .respond(req)
            .unwrap_or_else(|e| self.error_response(routed, e));
        reply.send(response);
    }

    /// The answer to an error on a routed request, in the route's error format.
    pub fn error_response(&self, routed: &Routed, err: HttpError) -> Response {
        self.error(err, error_format(self.router.route(routed.index)))
    }

    /// The answer to an error: JSON for actions; otherwise the custom page for its status
    /// when `[errors]` names one, or a one-line text body.
    pub fn error(&self, err: HttpError, format: ErrorFormat) -> Response {
        let response = Response::error(err, format);
        match self.error_pages.get(&response.status) {
            Some(page) if format == ErrorFormat::Text => {
                let mut page = Response::page(response.status, page, err.message());
                page.headers = response.headers;
                page
            }
            _ => response,
        }
    }
}

fn error_format(route: &Route) -> ErrorFormat {
    if route.target.speaks_json() {
        ErrorFormat::Json
    } else {
        ErrorFormat::Text
    }
}

#[cfg(test)]
#[path = "tests/mod.rs"]
mod tests;
