//! Named built-in actions (`action = "..."` in routes.toml) that are not collections: today
//! `health`, `metrics` and `openapi` (the collections' OpenAPI document, built with the
//! route table). (The old user actions are served by the `users` collection: see `api`.)

pub mod health;

use crate::http::Response;
use crate::routes::Action;

/// Runs an action; each answers at once. `store` is the collections' database, if any;
/// `openapi` the document of the routes being served.
pub fn run(
    action: Action,
    store: Option<&dyn crate::api::store::Store>,
    openapi: &bytes::Bytes,
) -> Response {
    match action {
        Action::OpenApi => Response::new(
            200,
            "application/json",
            crate::http::Body::Bytes(openapi.to_vec()),
        )
        .header("Cache-Control", "no-cache"),
        Action::Health => health::report(store),
        Action::Metrics => {
            let text = crate::metrics::registry().render(store, health::uptime());
            Response::new(
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                crate::http::Body::Bytes(text.into_bytes()),
            )
            .header("Cache-Control", "no-store")
        }
    }
}
