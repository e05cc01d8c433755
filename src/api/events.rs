//! `GET /things/events`: a subscription to a collection's live updates. Its query holds
//! equality filters on declared fields (typed as the field, as a page's filters are) and
//! where to resume (`Last-Event-ID`, or `?last_event_id=`). It joins the hub first, then
//! reads what the log holds after that change (so that nothing committed meanwhile falls
//! between the two, and what is in both is sent once), and answers `text/event-stream`
//! whose body the hub pushes.

use bytes::Bytes;
use serde_json::Value;

use super::filter::typed_value;
use super::live::{event, filter};
use super::schema::{Collection, Invalid};
use super::store::Store;
use crate::http::response::{Body, ErrorFormat, Response};
use crate::http::{HttpError, Request, form};

/// The media type of an event stream.
pub const EVENT_STREAM: &str = "text/event-stream";

/// Answers a subscription to `collection` (on a worker: resuming reads the log).
pub fn subscribe(collection: &Collection, store: &dyn Store, req: &Request) -> Response {
    let error = |e: HttpError| Response::error(e, ErrorFormat::Json);
    let Some(hub) = store.hub() else {
        return error(HttpError::ServiceUnavailable(
            "this store does not send live updates",
        ));
    };
    let wanted = match parse(collection, req.query(), req.header_str("last-event-id")) {
        Ok(wanted) => wanted,
        Err(Invalid::Malformed(m) | Invalid::Content(m)) => {
            return Response::json(400, &serde_json::json!({ "error": m }));
        }
    };
    let subscription = hub.subscribe(
        &collection.name,
        wanted.filters.clone(),
        collection.live.heartbeat,
    );
    let mut initial: Vec<Bytes> = vec![event::hello()];
    let mut after = 0;
    if let Some(from) = wanted.after {
        let backlog = match store.changes_since(&collection.name, from) {
            Ok(backlog) => backlog,
            Err(_) => {
                return error(HttpError::ServiceUnavailable(
                    "the change log cannot be read",
                ));
            }
        };
        if backlog.reset {
            initial.push(event::reset(backlog.last));
            after = backlog.last;
        } else {
            after = from;
            for change in &backlog.changes {
                if filter::matches(&wanted.filters, change, &mut None) {
                    initial.push(event::encode(change));
                }
                after = after.max(change.number);
            }
        }
    }
    subscription.begin(initial, after);
    Response::new(200, EVENT_STREAM, Body::Live(Box::new(subscription)))
        .header("Cache-Control", "no-cache")
        .header("X-Accel-Buffering", "no")
}

/// A subscription's query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wanted {
    /// Field = value, every one must hold.
    pub filters: Vec<(String, Value)>,
    /// Resume after this change number.
    pub after: Option<i64>,
}

/// Reads a subscription's query string and `Last-Event-ID` header (which wins: a browser
/// sends it when it reconnects to the URL it was given); anything unknown is refused (400).
pub fn parse(
    collection: &Collection,
    query: Option<&str>,
    last_event_id: Option<&str>,
) -> Result<Wanted, Invalid> {
    let bad = |m: String| Invalid::Malformed(m);
    let mut wanted = Wanted::default();
    for (name, value) in form::pairs(query.unwrap_or("").as_bytes()).map_err(bad)? {
        if name == "last_event_id" {
            wanted.after = Some(change_number(&value)?);
            continue;
        }
        let Some(field) = collection.field(&name) else {
            let names: Vec<&str> = collection.fields.iter().map(|f| f.name.as_str()).collect();
            return Err(bad(format!(
                "unknown query parameter \"{name}\" (use last_event_id, or a field of {}: {})",
                collection.name,
                names.join(", ")
            )));
        };
        let typed = typed_value(field, &value).ok_or_else(|| {
            bad(format!(
                "filter \"{name}\": \"{value}\" is not {}",
                field.kind.article()
            ))
        })?;
        wanted.filters.push((name, typed));
    }
    if let Some(header) = last_event_id.map(str::trim).filter(|h| !h.is_empty()) {
        wanted.after = Some(change_number(header)?);
    }
    Ok(wanted)
}

fn change_number(text: &str) -> Result<i64, Invalid> {
    text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
        Invalid::Malformed(format!("\"{text}\" is not an event id this server gave"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::schema::tests::collection;
    use serde_json::json;

    /// A query, a `Last-Event-ID`, and what they ask for (`Err`: a 400).
    type Case = (
        Option<&'static str>,
        Option<&'static str>,
        Result<Wanted, ()>,
    );

    #[test]
    fn reads_filters_and_where_to_resume() {
        let c = collection();
        let table: [Case; 8] = [
            (None, None, Ok(Wanted::default())),
            (
                Some("name=Ana&count=3"),
                None,
                Ok(Wanted {
                    filters: vec![("name".into(), json!("Ana")), ("count".into(), json!(3))],
                    after: None,
                }),
            ),
            (
                Some("last_event_id=12"),
                None,
                Ok(Wanted {
                    filters: vec![],
                    after: Some(12),
                }),
            ),
            (
                Some("last_event_id=12"),
                Some(" 40 "),
                Ok(Wanted {
                    filters: vec![],
                    after: Some(40),
                }),
            ),
            (Some("nope=1"), None, Err(())),
            (Some("count=x"), None, Err(())),
            (None, Some("-1"), Err(())),
            (Some("last_event_id=abc"), None, Err(())),
        ];
        for (query, header, want) in table {
            let got = parse(&c, query, header).map_err(|e| {
                assert!(matches!(e, Invalid::Malformed(_)));
            });
            assert_eq!(got, want, "{query:?} {header:?}");
        }
    }
}
