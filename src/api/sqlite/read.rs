//! Reads: one record by id, and a page in keyset order (the sort key, then the id) starting
//! after a cursor, so that records added while a client pages never shift what it sees.

use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::Value;

use super::{field_expr, search_table, table};
use crate::api::dialect::{Alone, Search};
use crate::api::keyset::{self, Collector, Dialect, page_sql};
use crate::api::store::{Page, PageQuery, Record};
use crate::api::where_sql::{count_sql, prefix_end};

const COLUMNS: &str = "id, version, created, updated, data";

fn record(row: &Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        id: row.get(0)?,
        version: row.get(1)?,
        created: row.get(2)?,
        updated: row.get(3)?,
        data: row.get(4)?,
    })
}

pub(super) fn get(
    conn: &Connection,
    collection: &str,
    id: i64,
) -> rusqlite::Result<Option<Record>> {
    let t = table(collection);
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM {t} WHERE id = ?1"))?
        .query_row([id], record)
        .optional()
}

/// A JSON value as SQLite compares it with what `json_extract` returns.
fn to_sql(value: &Value) -> Sql {
    match value {
        Value::Null => Sql::Null,
        Value::Bool(b) => Sql::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Sql::Integer(i),
            None => Sql::Real(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Sql::Text(s.clone()),
        other => Sql::Text(other.to_string()),
    }
}

fn from_sql(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Null | ValueRef::Blob(_) => Value::Null,
    }
}

/// SQLite: `?N` placeholders, `json_extract`, and NULLs first ascending (its own order).
struct Sqlite;

impl Dialect for Sqlite {
    type Param = Sql;
    fn placeholder(n: usize) -> String {
        format!("?{n}")
    }
    fn field(name: &str) -> String {
        field_expr(name)
    }
    fn value(value: &Value) -> Sql {
        to_sql(value)
    }
    fn id(id: i64) -> Sql {
        Sql::Integer(id)
    }
    fn text(text: &str) -> Sql {
        Sql::Text(text.to_owned())
    }
    fn starts_with(name: &str, prefix: &str, bind: &mut dyn FnMut(Sql) -> String) -> String {
        // SQLite compares text by its bytes, which is code point order: a range the field's
        // index serves.
        let k = field_expr(name);
        let low = bind(Sql::Text(prefix.to_owned()));
        match prefix_end(prefix) {
            Some(end) => format!("({k} >= {low} AND {k} < {})", bind(Sql::Text(end))),
            None => format!("{k} >= {low}"),
        }
    }
    fn contains(name: &str, p: &str) -> String {
        format!("instr({}, {p}) > 0", field_expr(name))
    }
    fn words(words: &[String]) -> Sql {
        // Each word an FTS5 string ("..." with quotes doubled): terms, never query syntax.
        let terms: Vec<String> = words
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect();
        Sql::Text(terms.join(" "))
    }
    fn search(table: &str, p: &str, ranked: bool) -> Search {
        let fts = search_table(table);
        if ranked {
            Search {
                join: format!(" JOIN {fts} ON {fts}.rowid = {table}.id"),
                condition: format!("{fts} MATCH {p}"),
                // bm25 itself (what `rank` calls by default), without `rank`'s indirection.
                rank: Some(format!("bm25({fts})")),
                alone: Some(Alone {
                    from: fts.clone(),
                    id: "rowid".to_owned(),
                }),
            }
        } else {
            Search {
                join: String::new(),
                condition: format!("id IN (SELECT rowid FROM {fts} WHERE {fts} MATCH {p})"),
                rank: None,
                alone: None,
            }
        }
    }
    const NO_KEY: &'static str = "NULL";
    const NULLS: (&'static str, &'static str) = ("", "");
}

/// A page; `Ok(None)` when the record it continues after is gone.
pub(super) fn page(
    conn: &Connection,
    collection: &str,
    query: &PageQuery,
) -> rusqlite::Result<Option<Page>> {
    let t = table(collection);
    let after = keyset::start::<Sqlite, _>(&t, query, |sql, params| {
        conn.prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(params), |row| {
                Ok(from_sql(row.get_ref(0)?))
            })
            .optional()
    })?;
    let Some(after) = after else {
        return Ok(None);
    };
    let (sql, params) = page_sql::<Sqlite>(&t, COLUMNS, query, after.as_ref());
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(rusqlite::params_from_iter(params))?;
    let mut page = Collector::new(query);
    while let Some(row) = rows.next()? {
        if !page.push(record(row)?) {
            break;
        }
    }
    let mut page = page.finish();
    if query.total {
        let (sql, params) = count_sql::<Sqlite>(&t, query);
        let total: i64 = conn
            .prepare_cached(&sql)?
            .query_row(rusqlite::params_from_iter(params), |row| row.get(0))?;
        page.total = Some(total as u64);
    }
    Ok(Some(page))
}
