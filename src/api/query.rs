//! The query of a collection's page: `limit`, `after` (a cursor: the id of the record the
//! page continues after, whatever the order, so it stays a few bytes), `sort`, and equality
//! filters on declared fields; and the `Link: <...>; rel="next"` that carries the cursor on.

use serde_json::Value;

use super::schema::{Collection, FieldType, Invalid};
use super::store::PageQuery;
use crate::http::form;

pub use super::store::DEFAULT_LIMIT;
/// Most records on a page.
pub const MAX_LIMIT: usize = 1000;

/// Reads a page query; anything unknown or ill-formed is refused (400) with the reason.
pub fn parse(collection: &Collection, query: Option<&str>) -> Result<PageQuery, Invalid> {
    let bad = |m: String| Invalid::Malformed(m);
    let pairs = form::pairs(query.unwrap_or("").as_bytes()).map_err(bad)?;
    let mut page = PageQuery {
        limit: DEFAULT_LIMIT,
        max_bytes: collection.max_page_bytes,
        ..PageQuery::default()
    };
    let mut after = None;
    for (name, value) in pairs {
        match name.as_str() {
            "limit" => {
                page.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(format!("limit must be a number from 1 to {MAX_LIMIT}")))?;
            }
            "after" => after = Some(value),
            "sort" => {
                let (descending, field) = match value.strip_prefix('-') {
                    Some(field) => (true, field),
                    None => (false, value.as_str()),
                };
                page.descending = descending;
                page.sort = match field {
                    "id" => None,
                    _ if collection.field(field).is_some() => Some(field.to_owned()),
                    _ => {
                        return Err(bad(format!(
                            "cannot sort by \"{field}\" (sort by id or a field of {}: {})",
                            collection.name,
                            field_names(collection)
                        )));
                    }
                };
            }
            _ => {
                let Some(field) = collection.field(&name) else {
                    return Err(bad(format!(
                        "unknown query parameter \"{name}\" (use limit, after, sort, or a field of {}: {})",
                        collection.name,
                        field_names(collection)
                    )));
                };
                let typed = filter_value(field.kind, &value).ok_or_else(|| {
                    bad(format!(
                        "filter \"{name}\": \"{value}\" is not {}",
                        field.kind.article()
                    ))
                })?;
                page.filters.push((name, typed));
            }
        }
    }
    if let Some(text) = after {
        page.after = Some(
            decode_cursor(&text)
                .ok_or_else(|| bad("`after` is not a cursor this server gave".to_owned()))?,
        );
    }
    Ok(page)
}

fn field_names(collection: &Collection) -> String {
    let names: Vec<&str> = collection.fields.iter().map(|f| f.name.as_str()).collect();
    names.join(", ")
}

/// A filter's text as a value of the field's type, as records store it.
pub(crate) fn filter_value(kind: FieldType, text: &str) -> Option<Value> {
    match kind {
        FieldType::String | FieldType::Email => Some(Value::String(text.to_owned())),
        FieldType::Datetime => {
            crate::time::parse_rfc3339(text).map(|t| Value::String(crate::time::rfc3339(t)))
        }
        FieldType::Integer => text.parse::<i64>().ok().map(Value::from),
        FieldType::Number => text
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number)),
        FieldType::Boolean => match text {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
    }
}

/// A cursor: the id of the record a page continues after, in decimal without sign or
/// leading zeros.
fn decode_cursor(text: &str) -> Option<i64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// The `Link` to the page after this one: the same query with `after` moved on.
pub fn next_link(path: &str, query: Option<&str>, next: i64) -> String {
    let mut target = format!("{path}?");
    if let Ok(pairs) = form::pairs(query.unwrap_or("").as_bytes()) {
        for (name, value) in pairs.iter().filter(|(n, _)| n != "after") {
            target.push_str(&format!("{}={}&", form::encode(name), form::encode(value)));
        }
    }
    target.push_str("after=");
    target.push_str(&next.to_string());
    format!("<{target}>; rel=\"next\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::schema::tests::collection;

    #[test]
    fn reads_limits_sorts_filters_and_cursors() {
        let c = collection();
        let q = parse(&c, None).unwrap();
        assert_eq!((q.limit, q.sort.clone(), q.descending), (100, None, false));
        let q = parse(&c, Some("limit=5&sort=-count&name=A+b&done=true&count=3")).unwrap();
        assert_eq!(
            (q.limit, q.sort.as_deref(), q.descending),
            (5, Some("count"), true)
        );
        assert_eq!(
            q.filters,
            vec![
                ("name".to_owned(), Value::from("A b")),
                ("done".to_owned(), Value::Bool(true)),
                ("count".to_owned(), Value::from(3)),
            ]
        );
        let refused = [
            "limit=0",
            "limit=1001",
            "limit=x",
            "sort=nope",
            "nope=1",
            "count=1.5",
            "done=yes",
            "due=tomorrow",
            "after=abc",
            "after=012",
            "after=-3",
            "name=%FF",
        ];
        for query in refused {
            let err = parse(&c, Some(query)).unwrap_err();
            assert!(matches!(err, Invalid::Malformed(_)), "{query}");
        }
    }

    #[test]
    fn cursors_round_trip_through_links_and_stay_short() {
        let c = collection();
        let long = format!("name={}&sort=-name", "n".repeat(7000));
        for query in [
            Some("sort=name"),
            Some("sort=-count&limit=2"),
            None,
            Some("after=3&name=x"),
            Some(long.as_str()),
        ] {
            let page = parse(&c, query).unwrap();
            let link = next_link("/things", query, 123_456_789);
            let target = link
                .strip_prefix("</things?")
                .unwrap()
                .split('>')
                .next()
                .unwrap();
            let again = parse(&c, Some(target)).unwrap();
            assert_eq!(again.after, Some(123_456_789), "{link}");
            assert_eq!((again.sort, again.limit), (page.sort, page.limit));
            // The cursor adds the id, never a record's value.
            assert!(link.len() <= query.map_or(0, str::len) + 40, "{link}");
        }
    }
}
