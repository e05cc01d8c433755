//! The API half: declared JSON collections over HTTP. Requests on a collection's list and
//! records become checked reads and writes of a `Store`; answers carry entity tags, cursors
//! and JSON errors, and a browser's form submission is sent on with 303.

pub mod apply;
mod batch;
pub mod dialect;
pub mod events;
pub mod filter;
pub mod import;
pub mod keyset;
mod list;
pub mod live;
pub mod openapi;
pub mod postgres;
pub mod query;
pub mod schema;
pub mod sqlite;
pub mod store;
pub mod where_sql;

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::http::conditional::{if_match_holds, none_match_names};
use crate::http::encoding::prefers_html;
use crate::http::error::reason_phrase;
use crate::http::response::{Body, ErrorFormat, ErrorPages, Respond, TEXT_HTML, escape_html};
use crate::http::{HttpError, Method, Request, Response, form};
use schema::{Collection, FieldType, Invalid};
use store::{Conditions, Record, Store, Write, WriteError};

/// A route onto a collection: its list (`/users`) or one of its records (`/users/{id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub collection: Arc<Collection>,
    /// Records (`{id}`) rather than the list.
    pub item: bool,
    /// The old `create_user` action: fields the collection does not declare are ignored
    /// rather than refused, as that action always did.
    pub lenient: bool,
    /// Its live updates (`/things/events`) rather than the list.
    pub events: bool,
}

impl Endpoint {
    /// What the list answers (GET, HEAD, POST) or a record (GET, HEAD, PUT, PATCH, DELETE).
    pub fn methods(&self) -> crate::http::Methods {
        use Method::*;
        if self.events {
            crate::http::Methods::of(&[Get, Head])
        } else if self.item {
            crate::http::Methods::of(&[Get, Head, Put, Patch, Delete])
        } else {
            crate::http::Methods::of(&[Get, Head, Post])
        }
    }
}

/// Why a request on a collection is refused.
#[derive(Debug)]
enum Failure {
    Http(HttpError),
    Invalid(Invalid),
    /// 503: a query ran past its time limit (the message names the fields to index).
    Slow(String),
}

impl From<HttpError> for Failure {
    fn from(e: HttpError) -> Failure {
        Failure::Http(e)
    }
}

impl From<Invalid> for Failure {
    fn from(e: Invalid) -> Failure {
        Failure::Invalid(e)
    }
}

impl From<WriteError> for Failure {
    fn from(e: WriteError) -> Failure {
        match e {
            WriteError::NotFound => Failure::Http(HttpError::NotFound),
            WriteError::PreconditionFailed => Failure::Http(HttpError::PreconditionFailed),
            WriteError::Invalid(invalid) => Failure::Invalid(invalid),
            WriteError::Failed(_) => Failure::Http(HttpError::ServiceUnavailable(
                "the database could not store the change; nothing was changed",
            )),
        }
    }
}

impl Failure {
    fn status_and_message(&self) -> (u16, &str) {
        match self {
            Failure::Http(e) => e.status_and_message(),
            Failure::Invalid(Invalid::Malformed(m)) => (HttpError::BadRequest("").status(), m),
            Failure::Invalid(Invalid::Content(m)) => (HttpError::Unprocessable("").status(), m),
            Failure::Slow(m) => (HttpError::ServiceUnavailable("").status(), m),
        }
    }

    fn response(self) -> Response {
        match self {
            Failure::Http(e) => Response::error(e, ErrorFormat::Json),
            Failure::Invalid(_) | Failure::Slow(_) => {
                let (status, message) = self.status_and_message();
                Response::json(status, &serde_json::json!({ "error": message }))
            }
        }
    }

    /// The answer for a person whose form was refused: the site's error page for the status
    /// (`[errors]`, its `{{message}}` filled in), else a short page, never JSON.
    fn page(self, pages: &ErrorPages) -> Response {
        let (status, message) = self.status_and_message();
        if let Some(page) = pages.get(&status) {
            return Response::page(status, page, message);
        }
        let body = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{status} {reason}</title></head>\n<body style=\"font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem\"><h1>{reason}</h1>\n<p>{}.</p>\n<p><a href=\"javascript:history.back()\">Go back</a> to correct the form.</p></body></html>\n",
            escape_html(message),
            reason = reason_phrase(status)
        );
        Response::new(status, TEXT_HTML, Body::Bytes(body.into_bytes()))
    }
}

/// Runs a request on a collection; the answer goes to `respond` (later, for a write waiting
/// on its commit). `id` is the `{id}` segment of a record's path.
pub fn handle(
    endpoint: &Endpoint,
    store: &dyn Store,
    req: &Request,
    id: &str,
    body: &[u8],
    respond: Respond,
    pages: &ErrorPages,
) {
    let collection = &endpoint.collection;
    if endpoint.events {
        return respond(events::subscribe(collection, store, req));
    }
    let result = match (endpoint.item, req.method) {
        (false, Method::Get | Method::Head) => list::list(collection, store, req),
        (false, Method::Post) => return create(endpoint, store, req, body, respond, pages),
        (true, Method::Get | Method::Head) => get(collection, store, req, id),
        (true, Method::Put | Method::Patch | Method::Delete) => {
            return change(collection, store, req, id, body, respond);
        }
        _ => Err(Failure::Http(HttpError::NotImplemented(
            "method not supported on a collection",
        ))),
    };
    respond(result.unwrap_or_else(Failure::response));
}

fn unavailable(e: store::ReadError) -> Failure {
    Failure::Http(match e {
        store::ReadError::TooSlow => HttpError::ServiceUnavailable(
            "the query took too long; filtering or sorting many records needs `index = true` on the field",
        ),
        store::ReadError::Failed(_) => HttpError::ServiceUnavailable("the database cannot be read"),
        store::ReadError::CursorGone => HttpError::Gone(
            "the record this page continues after was deleted; start again from the first page",
        ),
    })
}

/// `GET /things/{id}`, with 304 when `If-None-Match` names its current version.
fn get(
    collection: &Collection,
    store: &dyn Store,
    req: &Request,
    id: &str,
) -> Result<Response, Failure> {
    let id = record_id(id)?;
    let fields = query::item_fields(collection, req.query())?;
    let record = store
        .get(collection, id)
        .map_err(unavailable)?
        .ok_or(HttpError::NotFound)?;
    Ok(record_answer(req, &record, fields.as_deref()))
}

/// A read of one record answered from the store's memory, without I/O: for the event loop.
/// `None` when the request is not such a read or the record is not at hand.
pub fn answer_cached(
    endpoint: &Endpoint,
    store: &dyn Store,
    req: &Request,
    id: &str,
) -> Option<Response> {
    if !endpoint.item || !matches!(req.method, Method::Get | Method::Head) {
        return None;
    }
    // A bad `fields` is answered (400) by the worker's path.
    let fields = query::item_fields(&endpoint.collection, req.query()).ok()?;
    let record = store.cached(&endpoint.collection, record_id(id).ok()?)?;
    Some(record_answer(req, &record, fields.as_deref()))
}

/// A record (only `fields` of it, when given); 412 when `If-Match` does not name its current
/// version, else 304 when `If-None-Match` does (RFC 9110 §13.2.2).
fn record_answer(req: &Request, record: &Record, fields: Option<&[String]>) -> Response {
    let etag = record.etag();
    if req
        .header_list("if-match")
        .is_some_and(|value| !if_match_holds(&value, &etag))
    {
        return Failure::from(HttpError::PreconditionFailed)
            .response()
            .header("ETag", etag);
    }
    if req
        .header_list("if-none-match")
        .is_some_and(|value| none_match_names(&value, &etag))
    {
        return Response::empty(304).header("ETag", etag);
    }
    match fields {
        None => record_response(200, record),
        Some(fields) => {
            let mut body = Vec::new();
            list::project(record, fields, &mut body);
            body.push(b'\n');
            json(200, body)
                .header("ETag", etag)
                .header("Cache-Control", "no-cache")
        }
    }
}

/// `POST /things`: checks the fields, stores the record, and answers once it is durable:
/// 201 with the record, or 303 to the page the collection names for a browser's form.
fn create(
    endpoint: &Endpoint,
    store: &dyn Store,
    req: &Request,
    body: &[u8],
    respond: Respond,
    pages: &ErrorPages,
) {
    let collection = Arc::clone(&endpoint.collection);
    if req.media_type().as_deref() == Some(JSON) && batch::is_batch(body) && !endpoint.lenient {
        return batch::create(&collection, store, body, respond);
    }
    let browser =
        req.media_type().as_deref() == Some(FORM) && prefers_html(req.header_str("accept"));
    let pages = Arc::clone(pages);
    let finish = move |result: Result<Response, Failure>| {
        respond(match result {
            Ok(response) => response,
            Err(failure) if browser => failure.page(&pages),
            Err(failure) => failure.response(),
        })
    };
    let fields = match fields_of(endpoint, req, body).and_then(|f| Ok(collection.check(f)?)) {
        Ok(fields) => fields,
        Err(failure) => return finish(Err(failure)),
    };
    let done_collection = Arc::clone(&collection);
    store.write(
        &collection,
        Write::Create(fields),
        Box::new(move |result| {
            finish(result.map_err(Failure::from).map(|record| {
                let record = record.expect("a create returns its record");
                let location = format!("{}/{}", done_collection.path, record.id);
                if browser {
                    let to = done_collection
                        .form_redirect
                        .as_ref()
                        .map_or(location, |to| to.replace("{id}", &record.id.to_string()));
                    Response::empty(303).header("Location", to)
                } else {
                    record_response(201, &record).header("Location", location)
                }
            }))
        }),
    );
}

/// PUT, PATCH and DELETE on a record: the `If-Match` condition is checked by the store, in
/// the same transaction as the change, so of many clients holding one version only one wins.
fn change(
    collection: &Arc<Collection>,
    store: &dyn Store,
    req: &Request,
    id: &str,
    body: &[u8],
    respond: Respond,
) {
    let write = match change_of(collection, req, id, body) {
        Ok(write) => write,
        Err(failure) => return respond(failure.response()),
    };
    store.write(
        collection,
        write,
        Box::new(move |result| {
            respond(match result {
                Ok(Some(record)) => record_response(200, &record),
                Ok(None) => Response::empty(204),
                Err(e) => Failure::from(e).response(),
            })
        }),
    );
}

fn change_of(
    collection: &Collection,
    req: &Request,
    id: &str,
    body: &[u8],
) -> Result<Write, Failure> {
    let id = record_id(id)?;
    let conditions = Conditions {
        if_match: req.header_list("if-match"),
        if_none_match: req.header_list("if-none-match"),
    };
    if collection.require_if_match && conditions.if_match.is_none() {
        return Err(HttpError::PreconditionRequired.into());
    }
    Ok(match req.method {
        Method::Delete => Write::Delete { id, conditions },
        Method::Put => {
            if req.media_type().as_deref() != Some(JSON) {
                return Err(HttpError::UnsupportedMediaType(
                    "Content-Type must be application/json",
                )
                .into());
            }
            let fields = collection.check(json_object(body)?)?;
            Write::Replace {
                id,
                conditions,
                fields,
            }
        }
        _ => {
            if !matches!(req.media_type().as_deref(), Some(JSON | MERGE_PATCH)) {
                return Err(HttpError::UnsupportedMediaType(
                    "Content-Type must be application/merge-patch+json or application/json",
                )
                .into());
            }
            let patch = json_object(body)?;
            collection.check_patch(&patch)?;
            Write::Patch {
                id,
                conditions,
                patch,
            }
        }
    })
}

const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const FORM: &str = "application/x-www-form-urlencoded";

/// A record's id from its path segment; anything else names no record.
fn record_id(text: &str) -> Result<i64, HttpError> {
    // Decimal without sign or leading zeros: `01` is not another name of record 1.
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0 && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(HttpError::NotFound)
}

fn json(status: u16, body: Vec<u8>) -> Response {
    Response::new(status, JSON, Body::Bytes(body))
}

fn record_response(status: u16, record: &Record) -> Response {
    let mut body = record.to_json();
    body.push(b'\n');
    json(status, body)
        .header("ETag", record.etag())
        .header("Cache-Control", "no-cache")
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, Invalid> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(Invalid::Malformed("body must be a JSON object".into())),
        Err(_) => Err(Invalid::Malformed("body is not valid JSON".into())),
    }
}

/// The fields of a create, from JSON or an HTML form.
fn fields_of(
    endpoint: &Endpoint,
    req: &Request,
    body: &[u8],
) -> Result<Map<String, Value>, Failure> {
    let collection = &endpoint.collection;
    let mut fields = match req.media_type().as_deref() {
        Some(JSON) => json_object(body)?,
        Some(FORM) if looks_like_json(body) => {
            return Err(Invalid::Malformed(
                "the body was read as a form (Content-Type: application/x-www-form-urlencoded, what curl -d sends) but it looks like JSON: send JSON with Content-Type: application/json"
                    .to_owned(),
            )
            .into());
        }
        Some(FORM) => form_fields(collection, body, endpoint.lenient)?,
        _ => {
            return Err(HttpError::UnsupportedMediaType(
                "Content-Type must be application/json or application/x-www-form-urlencoded",
            )
            .into());
        }
    };
    if endpoint.lenient {
        fields.retain(|name, _| collection.field(name).is_some());
    }
    Ok(fields)
}

/// True for a body that is a JSON object or array sent as a form by mistake (`{"a": 1}`, which
/// no form encoder writes).
fn looks_like_json(body: &[u8]) -> bool {
    let text = body.trim_ascii();
    (text.starts_with(b"{") && text.ends_with(b"}"))
        || (text.starts_with(b"[") && text.ends_with(b"]"))
}

/// A form's fields, typed as declared: numbers parsed, check boxes (`on`) as true, and empty
/// values of fields that are not strings left out.
fn form_fields(
    collection: &Collection,
    body: &[u8],
    lenient: bool,
) -> Result<Map<String, Value>, Invalid> {
    let mut fields = Map::new();
    for (name, text) in form::pairs(body).map_err(Invalid::Malformed)? {
        let Some(field) = collection.field(&name) else {
            if lenient {
                continue;
            }
            return Err(collection.undeclared(&name));
        };
        let value = match field.kind {
            FieldType::String | FieldType::Email | FieldType::Datetime => Value::String(text),
            _ if text.is_empty() => continue,
            FieldType::Integer => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| field.wrong_type())?,
            FieldType::Number => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| field.wrong_type())?,
            FieldType::Boolean => match text.as_str() {
                "on" | "true" | "1" => Value::Bool(true),
                "off" | "false" | "0" => Value::Bool(false),
                _ => return Err(field.wrong_type()),
            },
        };
        fields.insert(name, value);
    }
    Ok(fields)
}

/// The database collections live in: PostgreSQL when `postgres` names one, else SQLite in
/// the data folder `data`, writing with `fsync`.
pub fn open_store(
    postgres: Option<&str>,
    data: &std::path::Path,
    fsync: store::SyncMode,
) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match postgres {
        Some(url) => Arc::new(postgres::PgStore::open(url)?),
        None => Arc::new(sqlite::SqliteStore::open(data, fsync)?),
    })
}
