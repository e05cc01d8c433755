//! The query of a collection's page: `limit`, `after` (a cursor: the id of the record the
//! page continues after, whatever the order, so it stays a few bytes), `sort`, filters on
//! declared fields (`filter`), `q` (full-text search, by relevance unless sorted),
//! `count=exact` (the total) and `fields` (which fields to answer); and the
//! `Link: <...>; rel="next"` that carries the cursor on.

use super::filter::{self, Filter};
use super::schema::{Collection, Invalid};
use super::store::PageQuery;
use crate::http::form;

/// Longest search (`q`), in characters.
pub const MAX_SEARCH_CHARS: usize = 256;

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
    let mut sorted = false;
    for (name, value) in pairs {
        let declared = collection.field(&name).is_some();
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
                sorted = true;
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
            "count" if value == "exact" => page.total = true,
            "count" if !declared => {
                return Err(bad("count must be \"exact\" (or leave it out)".to_owned()));
            }
            "q" if !declared => page.search = Some(words(collection, &value)?),
            "fields" if !declared => {
                projection(collection, &value)?;
            }
            _ => match filter::parse(collection, &name, &value).map_err(bad)? {
                Some(Filter::Equal(field, value)) => page.filters.push((field, value)),
                Some(Filter::Other(condition)) => page.conditions.push(condition),
                None => {
                    return Err(bad(format!(
                        "unknown query parameter \"{name}\" (use limit, after, sort, q, count, fields, or a field of {}: {})",
                        collection.name,
                        field_names(collection)
                    )));
                }
            },
        }
    }
    page.ranked = page.search.is_some() && !sorted;
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

/// The words of a search (`q`): letters and digits, everything else a separator, so that
/// no query syntax of either database gets through. A search without words finds nothing.
fn words(collection: &Collection, text: &str) -> Result<Vec<String>, Invalid> {
    if collection.searched().next().is_none() {
        return Err(Invalid::Malformed(format!(
            "collection {} has no field declared `search = true`, so `q` cannot search it",
            collection.name
        )));
    }
    let chars = text.chars().count();
    if chars > MAX_SEARCH_CHARS {
        return Err(Invalid::Malformed(format!(
            "`q` is {chars} characters long; search with at most {MAX_SEARCH_CHARS}"
        )));
    }
    Ok(text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The fields a list answers with (`fields=id,name`), `None` for all of them: `id`,
/// `created`, `updated` and declared fields; anything else is refused (400).
pub fn projection(collection: &Collection, text: &str) -> Result<Vec<String>, Invalid> {
    let mut fields = Vec::new();
    for name in text.split(',') {
        if !["id", "created", "updated"].contains(&name) && collection.field(name).is_none() {
            return Err(Invalid::Malformed(format!(
                "fields: \"{name}\" is not a field of {} (choose among id, created, updated, {})",
                collection.name,
                field_names(collection)
            )));
        }
        if !fields.iter().any(|f| f == name) {
            fields.push(name.to_owned());
        }
    }
    Ok(fields)
}

/// The projection a list query asks for, if any (the query already parsed by `parse`).
pub fn fields_wanted(collection: &Collection, query: Option<&str>) -> Option<Vec<String>> {
    if collection.field("fields").is_some() {
        return None;
    }
    let pairs = form::pairs(query.unwrap_or("").as_bytes()).ok()?;
    let (_, text) = pairs.into_iter().rev().find(|(name, _)| name == "fields")?;
    projection(collection, &text).ok()
}

/// The projection asked of a single record (`/things/7?fields=id,name`): `None` for all of
/// it. A bad list, another parameter (as a list refuses one it does not know), or a query
/// that is not a form is refused (400).
pub fn item_fields(
    collection: &Collection,
    query: Option<&str>,
) -> Result<Option<Vec<String>>, Invalid> {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    let pairs = form::pairs(query.as_bytes())
        .map_err(|_| Invalid::Malformed("the query string is not valid".into()))?;
    let projectable = collection.field("fields").is_none();
    let mut fields = None;
    for (name, value) in pairs {
        if name != "fields" || !projectable {
            return Err(Invalid::Malformed(format!(
                "unknown query parameter \"{name}\" (a record takes {})",
                if projectable { "fields" } else { "none" }
            )));
        }
        fields = Some(value);
    }
    fields.map(|text| projection(collection, &text)).transpose()
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
    use crate::api::store::{Condition, Op};
    use serde_json::Value;

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
    fn reads_operators_search_count_and_fields() {
        let c = collection();
        let q = parse(
            &c,
            Some("count[gte]=1&count[lt]=5&name[prefix]=A&done=true"),
        )
        .unwrap();
        assert_eq!(q.filters, vec![("done".to_owned(), Value::Bool(true))]);
        let ops: Vec<Op> = q.conditions.iter().map(|c| c.op).collect();
        assert_eq!(ops, [Op::Gte, Op::Lt, Op::Prefix]);
        assert_eq!(
            q.conditions[0],
            Condition {
                field: "count".into(),
                op: Op::Gte,
                value: Value::from(1)
            }
        );
        let q = parse(&c, Some("q=%22ana%22+OR+b*+NEAR(x)&count=exact")).unwrap();
        let words = ["ana", "OR", "b", "NEAR", "x"].map(String::from).to_vec();
        assert_eq!((q.search, q.ranked, q.total), (Some(words), true, true));
        let q = parse(&c, Some("q=ana&sort=id")).unwrap();
        assert!(q.search.is_some() && !q.ranked);
        assert_eq!(parse(&c, Some("q=+*+")).unwrap().search, Some(vec![]));
        assert_eq!(
            projection(&c, "id,name,id,updated").unwrap(),
            ["id", "name", "updated"]
        );
        assert_eq!(
            fields_wanted(&c, Some("fields=name,count&limit=2")),
            Some(vec!["name".to_owned(), "count".to_owned()])
        );
        assert_eq!(fields_wanted(&c, Some("limit=2")), None);
        let long_search = format!("q={}", "ab+".repeat(86));
        let refused = [
            (long_search.as_str(), "search with at most 256"),
            // `count` is also a field here: other values filter it.
            ("count=all", "\"all\" is not an integer"),
            ("fields=id,secret", "\"secret\" is not a field"),
            ("fields=", "\"\" is not a field"),
            ("count.gte=1", "count[gte]=1"),
            ("nope[eq]=1", "\"nope\" is not a field"),
        ];
        for (query, want) in refused {
            let err = parse(&c, Some(query)).unwrap_err();
            assert!(err.message().contains(want), "{query}: {err:?}");
        }
        let mut unsearched = c.clone();
        unsearched.fields.iter_mut().for_each(|f| f.search = false);
        let err = parse(&unsearched, Some("q=x")).unwrap_err();
        assert!(err.message().contains("no field declared `search = true`"));
        unsearched.fields.retain(|f| f.name != "count");
        let err = parse(&unsearched, Some("count=all")).unwrap_err();
        assert!(err.message().contains("count must be \"exact\""));
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
