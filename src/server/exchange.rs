//! The one path every request takes between its protocol and the application, whichever
//! protocol carried it. A protocol turns bytes or frames into a `Request` and calls, in order:
//! `route` (from the head alone: host, route, preflight, auth, method, redirect), then, once
//! the body is in, `answer` (at once from the loop's caches, or by waiting on a miss another
//! request is already filling, or on a worker, or started on the loop and finished by the
//! store's writer), and, for every answer it is about to send, `finish` (site rules, access
//! log, metrics). Answers made later come back to the connection as a `Done` carrying the
//! `Exchange`, and the protocol hands them to its stream with the same `finish`, which also
//! points a live body (server-sent events) at the connection's wake-up.

use std::sync::Arc;
use std::time::Instant;

use super::cache::Lookup;
use super::context::Ctx;
use super::pool::Done;
pub use super::ticket::Exchange;
use super::ticket::{Ticket, Waiter};
use super::transport::{Proxy, Role, Transport};
use crate::handlers::{App, Cacheable, Dispatch, Reply, Routed, redirect};
use crate::http::request::Framing;
use crate::http::{HttpError, Request, Response};

impl Exchange {
    pub fn new(t: &Transport, stream: u32, started: Instant, cx: &Ctx) -> Exchange {
        Exchange {
            origin: t.origin(stream),
            client: t.client,
            tls: t.tls_version(),
            req: None,
            route: None,
            generation: cx.generation,
            started,
        }
    }
}

/// How `answer` went. (Returned at once and never stored: boxing the answer would cost an
/// allocation per request.)
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    /// Answered at once.
    Now(Request, Response),
    /// The answer comes back later as a `Done` for the exchange's origin.
    Later,
}

/// Decides what a request needs from its head alone; notes the route it matched.
pub fn route(cx: &Ctx, t: &Transport, ex: &mut Exchange, req: &Request) -> Dispatch {
    // From a trusted proxy that named no client in a PROXY header, its forwarding headers
    // do: the lockout, the log and `allow` see the client, not the proxy.
    if t.proxy == Proxy::Forwarded {
        let ip = cx.settings.trusted.client(t.peer.ip(), req);
        ex.client = std::net::SocketAddr::new(ip, t.peer.port());
    }
    // An ACME HTTP-01 validation is answered ahead of every route, on every listener.
    if let Some(answer) = crate::acme::challenge::http01(req) {
        ex.route = None;
        return Dispatch::Answer(answer, None);
    }
    let dispatch = match t.role {
        Role::Site => cx.app.route(req, ex.client.ip()),
        Role::RedirectToHttps(port) => Dispatch::Answer(redirect::to_https(req, port), None),
    };
    ex.route = match &dispatch {
        Dispatch::Answer(_, route) => *route,
        Dispatch::Run(routed) => Some(routed.index()),
    };
    dispatch
}

/// Checks a declared body length against the limit before any of it is read.
pub fn body_allowed(cx: &Ctx, req: &Request) -> Result<(), HttpError> {
    match req.framing {
        Framing::Length(n) if n > cx.settings.limits.max_body_bytes => {
            Err(HttpError::PayloadTooLarge)
        }
        _ => Ok(()),
    }
}

/// Answers a routed request whose body is complete: from the loop's cache when it can;
/// otherwise on a worker, or, when a worker is already answering the same path, by waiting
/// for that answer.
pub fn answer(cx: &mut Ctx, ex: Exchange, req: Request, routed: Routed, body: Vec<u8>) -> Answer {
    if !cx.app.cacheable(&req, &routed) {
        if let Some(response) = cx.app.answer_now(&req, &routed) {
            return Answer::Now(req, response);
        }
        run(cx, ex, req, routed, body, None);
        return Answer::Later;
    }
    match cx.cache.lookup(routed.cache_key(), cx.now) {
        Lookup::Hit(source) => match source.try_respond(&req) {
            Some(result) => {
                let response = result.unwrap_or_else(|e| cx.app.error_response(&routed, e));
                Answer::Now(req, response)
            }
            None => {
                render_from(cx, ex, req, routed, source);
                Answer::Later
            }
        },
        Lookup::Pending => {
            let path = routed.cache_key().to_owned();
            cx.cache.park(&path, Waiter { ex, req, routed });
            Answer::Later
        }
        Lookup::Miss => {
            cx.cache.begin(routed.cache_key());
            let cache_key = Some(routed.cache_key().into());
            run(cx, ex, req, routed, body, cache_key);
            Answer::Later
        }
    }
}

/// Runs a routed request with its body through `App::handle`: on the loop when
/// `App::starts_on_loop` says it is a quick start (its answer comes back as a worker's
/// would), else on a worker. With `cache_key`, what the answer is made from may be kept.
fn run(
    cx: &mut Ctx,
    mut ex: Exchange,
    req: Request,
    routed: Routed,
    body: Vec<u8>,
    cache_key: Option<Box<str>>,
) {
    let req = Arc::new(req);
    ex.req = Some(Arc::clone(&req));
    let ticket = Ticket { ex, cache_key };
    if routed.needs_verification() {
        let busy = cx.app.error_response(
            &routed,
            HttpError::ServiceUnavailable("too many logins are being checked; retry shortly"),
        );
        let app = Arc::clone(&cx.app);
        cx.pool
            .spawn_login(ticket, busy.header("Retry-After", "1"), move || {
                let routed = app.login(routed)?;
                Ok(move |reply: Reply| app.handle(&req, &routed, &body, reply))
            });
        return;
    }
    if cx.app.starts_on_loop(&req, &routed, body.len()) {
        let app = &cx.app;
        cx.pool
            .run_here(ticket, |reply| app.handle(&req, &routed, &body, reply));
        return;
    }
    let app = Arc::clone(&cx.app);
    cx.pool
        .spawn(ticket, move |reply| app.handle(&req, &routed, &body, reply));
}

/// Answers on a worker from what the cache kept, when that needs rendering first (a page of
/// a listing not rendered yet).
fn render_from(cx: &mut Ctx, mut ex: Exchange, req: Request, routed: Routed, source: Cacheable) {
    let req = Arc::new(req);
    ex.req = Some(Arc::clone(&req));
    let app: Arc<App> = Arc::clone(&cx.app);
    let ticket = Ticket {
        ex,
        cache_key: None,
    };
    cx.pool.spawn(ticket, move |reply: Reply| {
        app.handle_from(&source, &req, &routed, reply)
    });
}

/// A worker's answer is back: what it was made from is kept when it may be, and requests that
/// waited for the same path are answered from it.
pub fn completed(cx: &mut Ctx, ticket: &Ticket, cached: Option<Cacheable>) {
    let Some(path) = &ticket.cache_key else {
        return;
    };
    // What was made from a routes table since reloaded is not kept.
    let kept = cached.filter(|_| ticket.ex.generation == cx.generation);
    for waiter in cx.cache.finish(path, kept.clone(), cx.now) {
        resume(cx, waiter, kept.as_ref());
    }
}

/// Answers a request that waited for another's answer to the same path: from what that
/// answer was made of, or, when nothing could be kept, on a worker of its own.
pub fn resume(cx: &mut Ctx, waiter: Waiter, source: Option<&Cacheable>) {
    let Waiter {
        mut ex,
        req,
        routed,
    } = waiter;
    match source.map(|s| (s, s.try_respond(&req))) {
        Some((_, Some(result))) => {
            let response = result.unwrap_or_else(|e| cx.app.error_response(&routed, e));
            ex.req = Some(Arc::new(req));
            let ticket = Ticket {
                ex,
                cache_key: None,
            };
            cx.delivered.push(Done::answer(ticket, response));
        }
        Some((source, None)) => render_from(cx, ex, req, routed, source.clone()),
        None => run(cx, ex, req, routed, Vec::new(), None),
    }
}

/// Everything an answer gets before it is sent, on either protocol: the route's declared and
/// CORS headers (or the server's), then a line in the access log and the counters.
pub fn finish(cx: &mut Ctx, ex: &Exchange, req: Option<&Request>, response: &mut Response) {
    let route = ex.route.filter(|_| ex.generation == cx.generation);
    cx.app.decorate(route, req, response);
    // A live body wakes this connection (and stream) through the loop's channel.
    if let crate::http::response::Body::Live(feed) = &mut response.body {
        feed.attach(cx.pool.wake_for(ex.origin));
    }
    let sent = if req.is_some_and(Request::is_head) {
        0
    } else {
        response.body.len()
    };
    cx.log.record(ex.client, req, response.status, sent, ex.tls);
    let took = cx.now.saturating_duration_since(ex.started);
    cx.count().response(route, response.status, sent, took);
}
