//! One keyset page, shared by the SQLite and PostgreSQL stores: its SQL and how its rows are
//! gathered. Records are ordered by the sort field, then by id, and a page starts after a
//! record (by id: its sort value is read from the database, so a cursor is short whatever
//! the value), so records added while a client pages never shift what it sees. A record
//! without the sort field sorts first ascending and last descending in both stores. A page
//! ends at its limit of records or before the record that would take it past its byte
//! bound, so a page of large records never holds more than that in memory. A ranked search
//! is ordered by relevance then id, its cursor still an id: the relevance of that record is
//! read again for the same words. What differs between the two stores is the `Dialect`.

use serde_json::Value;

pub use super::dialect::Dialect;
use super::store::{Cursor, Page, PageQuery, Record};
use super::where_sql::selection;

/// What a page is ordered by (then by id).
enum Key {
    Id,
    Field(String),
    /// Relevance to the search, smaller first.
    Rank,
}

fn key_of(query: &PageQuery) -> Key {
    match &query.sort {
        _ if query.ranked && query.search.as_ref().is_some_and(|w| !w.is_empty()) => Key::Rank,
        Some(field) => Key::Field(field.clone()),
        None => Key::Id,
    }
}

/// The SQL reading the sort key of the record a page continues after (its id the last
/// parameter), and its other parameters; `None` when the page is ordered by id.
pub fn cursor_sql<D: Dialect>(
    table: &str,
    query: &PageQuery,
    id: i64,
) -> Option<(String, Vec<D::Param>)> {
    let mut params = Vec::new();
    let mut bind = |value: D::Param| {
        params.push(value);
        D::placeholder(params.len())
    };
    let sql = match key_of(query) {
        Key::Id => return None,
        Key::Field(field) => format!(
            "SELECT {} FROM {table} WHERE id = {}",
            D::field(&field),
            bind(D::id(id))
        ),
        Key::Rank => {
            let words = query.search.as_deref().unwrap_or_default();
            let p = bind(D::words(words));
            let search = D::search(table, &p, true);
            format!(
                "SELECT {} FROM {table}{} WHERE {} AND id = {}",
                search.rank.unwrap_or_else(|| D::NO_KEY.to_owned()),
                search.join,
                search.condition,
                bind(D::id(id))
            )
        }
    };
    Some((sql, params))
}

/// The SQL of a page of `table` (selecting `columns`, then the sort key) after `start` (the
/// record it continues after, with its sort key), and its parameters. It asks for one record
/// more than the page, to know whether another follows.
pub fn page_sql<D: Dialect>(
    table: &str,
    columns: &str,
    query: &PageQuery,
    start: Option<&Cursor>,
) -> (String, Vec<D::Param>) {
    let mut params = Vec::new();
    let mut bind = |value: D::Param| {
        params.push(value);
        D::placeholder(params.len())
    };
    let mut selected = selection::<D>(table, query, &mut bind);
    let key = match key_of(query) {
        Key::Id => None,
        Key::Field(field) => Some(D::field(&field)),
        Key::Rank => selected.rank.clone(),
    };
    // A ranked page orders the matches by relevance reading only their ids (from the search
    // alone when it is the only condition), then reads the records of that page alone.
    let ranked = matches!(key_of(query), Key::Rank);
    let alone = match selected.conditions.len() {
        1 if ranked => selected.alone.take(),
        _ => None,
    };
    let (source, id) = match alone {
        Some(alone) => (alone.from, alone.id),
        None => (format!("{table}{}", selected.join), format!("{table}.id")),
    };
    let k = key.as_deref().unwrap_or(D::NO_KEY);
    let selected_columns = if ranked {
        format!("{id} AS rid, {k} AS k")
    } else {
        format!("{columns}, {k}")
    };
    let mut sql = format!("SELECT {selected_columns} FROM {source}");
    let mut conditions = selected.conditions;
    let descending = query.descending && !query.ranked;
    let (order, nulls, after) = if descending {
        ("DESC", D::NULLS.1, "<")
    } else {
        ("ASC", D::NULLS.0, ">")
    };
    if let Some(cursor) = start {
        let c = bind(D::id(cursor.id));
        conditions.push(match (&key, &cursor.value, descending) {
            (None, _, _) => format!("{id} {after} {c}"),
            (Some(k), Value::Null, false) => {
                format!("(({k} IS NULL AND {id} > {c}) OR {k} IS NOT NULL)")
            }
            (Some(k), Value::Null, true) => format!("({k} IS NULL AND {id} < {c})"),
            (Some(k), value, descending) => {
                let v = bind(D::value(value));
                let nulls = if descending {
                    format!(" OR {k} IS NULL")
                } else {
                    String::new()
                };
                format!("({k} {after} {v} OR ({k} = {v} AND {id} {after} {c}){nulls})")
            }
        });
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    match &key {
        Some(k) => sql.push_str(&format!(" ORDER BY {k} {order}{nulls}, {id} {order}")),
        None => sql.push_str(&format!(" ORDER BY {id} {order}")),
    }
    let limit = bind(D::id(query.limit as i64 + 1));
    sql.push_str(&format!(" LIMIT {limit}"));
    if ranked {
        sql = format!(
            "SELECT {columns}, r.k FROM {table} JOIN ({sql}) AS r ON {table}.id = r.rid ORDER BY r.k, {table}.id"
        );
    }
    (sql, params)
}

/// Where a page starts: after the record `query.after` names, with its sort key read by
/// `sort_key(sql, params)` (from `cursor_sql`) unless the page is ordered by id. `Ok(None)`:
/// that record is gone (or no longer matches a search), and the page cannot go on.
pub fn start<D: Dialect, E>(
    table: &str,
    query: &PageQuery,
    sort_key: impl FnOnce(String, Vec<D::Param>) -> Result<Option<Value>, E>,
) -> Result<Option<Option<Cursor>>, E> {
    let Some(id) = query.after else {
        return Ok(Some(None));
    };
    Ok(match cursor_sql::<D>(table, query, id) {
        None => Some(Some(Cursor {
            value: Value::Null,
            id,
        })),
        Some((sql, params)) => sort_key(sql, params)?.map(|value| Some(Cursor { value, id })),
    })
}

/// A page's records as its rows arrive, until its limit or its byte bound.
pub struct Collector {
    limit: usize,
    max_bytes: usize,
    bytes: usize,
    records: Vec<Record>,
    more: bool,
}

impl Collector {
    pub fn new(query: &PageQuery) -> Collector {
        Collector {
            limit: query.limit,
            max_bytes: query.max_bytes,
            bytes: 0,
            records: Vec::with_capacity(query.limit.min(128)),
            more: false,
        }
    }

    /// Takes the next row's record; false once the page is full (stop reading: what is left
    /// is the next page's).
    pub fn push(&mut self, record: Record) -> bool {
        let size = record.data.len() + 64;
        let full = self.records.len() == self.limit
            || (!self.records.is_empty() && self.bytes + size > self.max_bytes);
        if full {
            self.more = true;
            return false;
        }
        self.bytes += size;
        self.records.push(record);
        true
    }

    pub fn finish(self) -> Page {
        let next = self
            .records
            .last()
            .filter(|_| self.more)
            .map(|last| last.id);
        Page {
            records: self.records,
            next,
            total: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: i64, size: usize) -> Record {
        Record {
            id,
            version: 1,
            created: String::new(),
            updated: None,
            data: "x".repeat(size),
        }
    }

    #[test]
    fn a_page_ends_at_its_limit_or_before_passing_its_bytes() {
        // (limit, bound, sizes of the rows that come, ids on the page, next)
        type Case<'a> = (usize, usize, &'a [usize], &'a [i64], Option<i64>);
        let cases: &[Case] = &[
            (3, 1 << 20, &[10, 10, 10, 10], &[1, 2, 3], Some(3)),
            (3, 1 << 20, &[10, 10, 10], &[1, 2, 3], None),
            // 164 bytes each with the overhead: two fit in 400.
            (10, 400, &[100, 100, 100, 100], &[1, 2], Some(2)),
            // One record past the bound still makes a page of one.
            (10, 400, &[5000, 10], &[1], Some(1)),
            (10, 400, &[], &[], None),
        ];
        for (limit, bound, sizes, ids, next) in cases {
            let query = PageQuery {
                limit: *limit,
                max_bytes: *bound,
                ..PageQuery::default()
            };
            let mut collector = Collector::new(&query);
            for (i, size) in sizes.iter().enumerate() {
                if !collector.push(record(i as i64 + 1, *size)) {
                    break;
                }
            }
            let page = collector.finish();
            let got: Vec<i64> = page.records.iter().map(|r| r.id).collect();
            assert_eq!((&got[..], page.next), (*ids, *next), "{sizes:?}");
        }
    }
}
