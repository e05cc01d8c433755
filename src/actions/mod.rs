//! Named built-in actions (`action = "..."` in routes.toml) that are not collections: today
//! `health`. (The old user actions are served by the `users` collection: see `api`.)

pub mod health;

use crate::http::Response;
use crate::routes::Action;

/// Runs an action; each answers at once.
pub fn run(action: Action) -> Response {
    match action {
        Action::Health => health::report(),
    }
}
