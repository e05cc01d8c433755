//! Named built-in actions (`action = "..."` in routes.toml) and the store they keep users in.

pub mod health;
pub mod store;
pub mod users;

pub use store::{Created, JsonlStore, StoreError, SyncMode, User, UserStore};

use crate::http::{HttpError, Request, Response};

/// Where an action's answer goes, once (later, for a create waiting on its flush).
pub type Respond = Box<dyn FnOnce(Response) + Send>;
use crate::routes::Action;

/// Runs an action; its answer goes to `respond` (later, for a create waiting on its flush).
/// `param` is the `{id}` segment for actions that take one; `error` renders failures.
pub fn run(
    action: Action,
    users: Option<&dyn UserStore>,
    req: &Request,
    param: &str,
    body: &[u8],
    respond: Respond,
    error: impl Fn(HttpError) -> Response,
) {
    let result = match (action, users) {
        (Action::Health, _) => Ok(health::report()),
        (_, None) => Err(HttpError::ServiceUnavailable("no user store is configured")),
        (Action::CreateUser, Some(store)) => return users::create(store, req, body, respond),
        (Action::ListUsers, Some(store)) => Ok(users::list(store)),
        (Action::GetUser, Some(store)) => users::get(store, param),
    };
    respond(result.unwrap_or_else(error));
}
