//! Named built-in actions (`action = "..."` in routes.toml) and the store they keep users in.

pub mod store;
pub mod users;

pub use store::{Created, JsonlStore, StoreError, SyncMode, User, UserStore};

use crate::handlers::Reply;
use crate::http::{HttpError, Request, Response};
use crate::routes::Action;

/// Runs an action; its answer goes to `reply` (later, for a create waiting on its flush).
/// `param` is the `{id}` segment for actions that take one; `error` renders failures.
pub fn run(
    action: Action,
    users: Option<&dyn UserStore>,
    req: &Request,
    param: &str,
    body: &[u8],
    reply: Reply,
    error: impl Fn(HttpError) -> Response,
) {
    let Some(users) = users else {
        return reply.send(error(HttpError::ServiceUnavailable(
            "no user store is configured",
        )));
    };
    let result = match action {
        Action::CreateUser => return users::create(users, req, body, reply),
        Action::ListUsers => Ok(users::list(users)),
        Action::GetUser => users::get(users, param),
    };
    reply.send(result.unwrap_or_else(error));
}
