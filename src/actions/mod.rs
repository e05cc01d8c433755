//! Named built-in actions (`action = "..."` in routes.toml) and the store they keep users in.

pub mod store;
pub mod users;

pub use store::{JsonlStore, StoreError, SyncMode, User, UserStore};

use crate::http::{HttpError, Request, Response};
use crate::routes::Action;

/// Runs an action. `param` is the `{id}` segment for actions that take one.
pub fn run(
    action: Action,
    users: Option<&dyn UserStore>,
    req: &Request,
    param: &str,
    body: &[u8],
) -> Result<Response, HttpError> {
    let users = users.ok_or(HttpError::ServiceUnavailable("no user store is configured"))?;
    match action {
        Action::CreateUser => users::create(users, req, body),
        Action::ListUsers => Ok(users::list(users)),
        Action::GetUser => users::get(users, param),
    }
}
