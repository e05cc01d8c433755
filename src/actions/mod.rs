//! Named built-in actions (`action = "..."` in routes.toml) that are not collections: today
//! `health` and `metrics`. (The old user actions are served by the `users` collection: see `api`.)

pub mod health;

use crate::http::Response;
use crate::routes::Action;

/// Runs an action; each answers at once. `store` is the collections' database, if any.
pub fn run(action: Action, store: Option<&dyn crate::api::store::Store>) -> Response {
    match action {
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
