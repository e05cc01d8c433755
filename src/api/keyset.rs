//! One keyset page, shared by the SQLite and PostgreSQL stores: its SQL and how its rows are
//! gathered. Records are ordered by the sort field, then by id, and a page starts after a
//! record (by id: its sort value is read from the database, so a cursor is short whatever
//! the value), so records added while a client pages never shift what it sees. A record
//! without the sort field sorts first ascending and last descending in both stores. A page
//! ends at its limit of records or before the record that would take it past its byte
//! bound, so a page of large records never holds more than that in memory. What differs
//! between the two stores is the `Dialect`: placeholders, how a field is read from the JSON,
//! how values are bound, and how NULL placement is spelled.

use serde_json::Value;

use super::store::{Cursor, Page, PageQuery, Record};

/// How one SQL engine spells what a page query needs.
pub trait Dialect {
    /// A bound parameter.
    type Param;
    /// The placeholder of the `n`th parameter (from 1).
    fn placeholder(n: usize) -> String;
    /// The SQL expression of a field's value (field names are checked at load: `[A-Za-z_]\w*`).
    fn field(name: &str) -> String;
    /// A field's value as a parameter compared with `field`.
    fn value(value: &Value) -> Self::Param;
    fn id(id: i64) -> Self::Param;
    /// The key column's value when there is no sort field.
    const NO_KEY: &'static str;
    /// What follows `ORDER BY key ASC` and `... DESC` so that NULLs come first ascending and
    /// last descending (empty where that is the engine's own order).
    const NULLS: (&'static str, &'static str);
}

/// The SQL reading the sort key of the record a sorted page continues after (one parameter:
/// its id).
pub fn cursor_sql<D: Dialect>(table: &str, field: &str) -> String {
    format!(
        "SELECT {} FROM {table} WHERE id = {}",
        D::field(field),
        D::placeholder(1)
    )
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
    let key = query.sort.as_deref().map(D::field);
    let mut sql = format!(
        "SELECT {columns}, {} FROM {table}",
        key.as_deref().unwrap_or(D::NO_KEY)
    );
    let mut conditions = Vec::new();
    for (field, value) in &query.filters {
        let p = bind(D::value(value));
        conditions.push(format!("{} = {p}", D::field(field)));
    }
    let (order, nulls, after) = if query.descending {
        ("DESC", D::NULLS.1, "<")
    } else {
        ("ASC", D::NULLS.0, ">")
    };
    if let Some(cursor) = start {
        let id = bind(D::id(cursor.id));
        conditions.push(match (&key, &cursor.value, query.descending) {
            (None, _, _) => format!("id {after} {id}"),
            (Some(k), Value::Null, false) => {
                format!("(({k} IS NULL AND id > {id}) OR {k} IS NOT NULL)")
            }
            (Some(k), Value::Null, true) => format!("({k} IS NULL AND id < {id})"),
            (Some(k), value, descending) => {
                let v = bind(D::value(value));
                let nulls = if descending {
                    format!(" OR {k} IS NULL")
                } else {
                    String::new()
                };
                format!("({k} {after} {v} OR ({k} = {v} AND id {after} {id}){nulls})")
            }
        });
    }
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    match &key {
        Some(k) => sql.push_str(&format!(" ORDER BY {k} {order}{nulls}, id {order}")),
        None => sql.push_str(&format!(" ORDER BY id {order}")),
    }
    let limit = bind(D::id(query.limit as i64 + 1));
    sql.push_str(&format!(" LIMIT {limit}"));
    (sql, params)
}

/// Where a page starts: after the record `query.after` names, with its sort key read by
/// `sort_key(id, field)` when the page is sorted. `Ok(None)`: that record is gone, and a
/// sorted page cannot go on.
pub fn start<E>(
    query: &PageQuery,
    sort_key: impl FnOnce(i64, &str) -> Result<Option<Value>, E>,
) -> Result<Option<Option<Cursor>>, E> {
    Ok(match (query.after, &query.sort) {
        (None, _) => Some(None),
        (Some(id), None) => Some(Some(Cursor {
            value: Value::Null,
            id,
        })),
        (Some(id), Some(field)) => sort_key(id, field)?.map(|value| Some(Cursor { value, id })),
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
