//! `GET /things`: a page of records (filtered, searched, sorted) as a JSON array, with the
//! link to the next page, the total when `count=exact` asked for it (`X-Total-Count`), and
//! only the fields `fields` names.

use serde_json::{Map, Value};

use super::schema::Collection;
use super::store::{PageQuery, ReadError, Record, Store};
use super::{Failure, json, query, unavailable};
use crate::http::{Request, Response};

/// A page of records, oldest first unless sorted (or by relevance when searching), with a
/// link to the next.
pub(super) fn list(
    collection: &Collection,
    store: &dyn Store,
    req: &Request,
) -> Result<Response, Failure> {
    let query = query::parse(collection, req.query())?;
    let fields = query::fields_wanted(collection, req.query());
    let page = store.page(collection, &query).map_err(|e| match e {
        ReadError::TooSlow => too_slow(collection, &query),
        e => unavailable(e),
    })?;
    let mut body = Vec::with_capacity(page.records.iter().map(|r| r.data.len() + 64).sum());
    body.push(b'[');
    for (i, record) in page.records.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        match &fields {
            Some(fields) => project(record, fields, &mut body),
            None => record.write_json(&mut body),
        }
    }
    body.extend_from_slice(b"]\n");
    let mut response = json(200, body).header("Cache-Control", "no-cache");
    if let Some(total) = page.total {
        response = response.header("X-Total-Count", total.to_string());
    }
    if let Some(next) = page.next {
        let link = query::next_link(req.path(), req.query(), next);
        response = response.header("Link", link);
    }
    Ok(response)
}

/// The 503 of a query stopped at its time limit, naming the fields it filtered or sorted on
/// that have no index.
fn too_slow(collection: &Collection, query: &PageQuery) -> Failure {
    let mut names: Vec<&str> = Vec::new();
    let used = (query.filters.iter().map(|(field, _)| field.as_str()))
        .chain(query.conditions.iter().map(|c| c.field.as_str()))
        .chain(query.sort.as_deref());
    for name in used {
        if collection.field(name).is_some_and(|f| !f.index) && !names.contains(&name) {
            names.push(name);
        }
    }
    let message = match names.as_slice() {
        [] => "the query took too long; narrow it with a filter on a field with `index = true`"
            .to_owned(),
        names => format!(
            "the query took too long; declare `index = true` on {} to filter or sort many records by {}",
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", "),
            if names.len() == 1 { "it" } else { "them" }
        ),
    };
    Failure::Slow(message)
}

/// A record with only the fields asked for (keys in name order).
pub(super) fn project(record: &Record, fields: &[String], out: &mut Vec<u8>) {
    let whole: Map<String, Value> = match serde_json::from_slice(&record.to_json()) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let mut kept = Map::new();
    for name in fields {
        if let Some(value) = whole.get(name) {
            kept.insert(name.clone(), value.clone());
        }
    }
    let _ = serde_json::to_writer(&mut *out, &Value::Object(kept));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::schema::tests::collection;

    #[test]
    fn a_slow_query_names_the_fields_to_index() {
        let c = collection();
        // (query, what the 503 says) — `count` has an index in the test collection.
        let cases = [
            (
                "name[prefix]=a&sort=ratio",
                "on \"name\", \"ratio\" to filter",
            ),
            ("done=true&done[ne]=false", "on \"done\" to filter"),
            ("count[gt]=1", "narrow it with a filter"),
        ];
        for (text, want) in cases {
            let query = query::parse(&c, Some(text)).unwrap();
            let Failure::Slow(message) = too_slow(&c, &query) else {
                panic!("{text}: not a 503");
            };
            assert!(message.contains(want), "{text}: {message}");
        }
    }
}
