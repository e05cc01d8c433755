//! `POST /things` with a JSON array: up to the collection's `max_batch` records created in
//! one transaction, all or none. 201 with the array of records as created, or one 400 or
//! 422 naming the index (from 0) of the first record refused, and nothing written.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::schema::{Collection, Invalid};
use super::store::{Store, Write};
use super::{Failure, json};
use crate::http::response::Respond;

/// True for a body holding a JSON array rather than one record.
pub(super) fn is_batch(body: &[u8]) -> bool {
    body.trim_ascii_start().starts_with(b"[")
}

/// Checks every record, then stores them together and answers once they are durable.
pub(super) fn create(
    collection: &Arc<Collection>,
    store: &dyn Store,
    body: &[u8],
    respond: Respond,
) {
    let records = match checked(collection, body) {
        Ok(records) => records,
        Err(invalid) => return respond(Failure::Invalid(invalid).response()),
    };
    store.write(
        collection,
        Write::CreateMany(records),
        Box::new(move |result| {
            respond(match result {
                Ok(Some(made)) => {
                    let mut body = made.data.into_bytes();
                    body.push(b'\n');
                    json(201, body).header("Cache-Control", "no-cache")
                }
                Ok(None) => Failure::Http(crate::http::HttpError::Internal(
                    "the batch was stored but not returned",
                ))
                .response(),
                Err(e) => Failure::from(e).response(),
            })
        }),
    );
}

/// The records of a batch, each checked as a single create is; the first refused names its
/// index.
fn checked(collection: &Collection, body: &[u8]) -> Result<Vec<Map<String, Value>>, Invalid> {
    let items = match serde_json::from_slice(body) {
        Ok(Value::Array(items)) => items,
        Ok(_) => return Err(Invalid::Malformed("body must be a JSON array".into())),
        Err(_) => return Err(Invalid::Malformed("body is not valid JSON".into())),
    };
    if items.is_empty() {
        return Err(Invalid::Malformed("the array holds no records".into()));
    }
    if items.len() > collection.max_batch {
        return Err(Invalid::Malformed(format!(
            "the array holds {} records; {} takes at most {} in one request (`max_batch`)",
            items.len(),
            collection.name,
            collection.max_batch
        )));
    }
    let mut records = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(fields) = item else {
            return Err(Invalid::Malformed(format!(
                "record {i}: must be a JSON object"
            )));
        };
        records.push(collection.check(fields).map_err(|e| match e {
            Invalid::Malformed(m) => Invalid::Malformed(format!("record {i}: {m}")),
            Invalid::Content(m) => Invalid::Content(format!("record {i}: {m}")),
        })?);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::schema::tests::collection;

    #[test]
    fn the_first_bad_record_is_named_by_its_index() {
        let c = collection();
        let cases: &[(&str, Result<usize, &str>)] = &[
            (r#"[{"name": "a"}, {"name": "b", "count": 2}]"#, Ok(2)),
            (
                r#"[{"name": "a"}, {"count": 2}]"#,
                Err("record 1: missing \"name\""),
            ),
            (
                r#"[{"name": "a"}, 5]"#,
                Err("record 1: must be a JSON object"),
            ),
            (
                r#"[{"name": "a"}, {"name": "b", "x": 1}, {}]"#,
                Err("record 1: \"x\""),
            ),
            ("[]", Err("holds no records")),
            (
                r#"[{"name":"a"},{"name":"a"},{"name":"a"},{"name":"a"}]"#,
                Err("at most 3"),
            ),
            ("[1,", Err("not valid JSON")),
        ];
        for (body, want) in cases {
            let got = checked(&c, body.as_bytes());
            match (got, want) {
                (Ok(records), Ok(n)) => assert_eq!(records.len(), *n),
                (Err(e), Err(m)) => assert!(e.message().contains(m), "{body}: {e:?}"),
                (got, _) => panic!("{body}: {got:?}"),
            }
        }
    }
}
