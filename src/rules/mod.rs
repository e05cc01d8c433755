//! Site rules, as declared in routes.toml and applied per request: response headers
//! (`headers`), cross-origin requests (`cors`), basic authentication (`auth`) and virtual
//! hosts (`hosts`). `config` validates them at load; `handlers::App` applies them in this
//! order: host selection, route match, auth, then redirect / clean URL / fallback and the
//! handler, with headers and CORS on every response of the route, errors included.

pub mod auth;
pub mod cors;
pub mod csrf;
pub mod guard;
pub mod headers;
pub mod hosts;
pub mod proxies;
