//! Reads: one record by id, and a page in keyset order (the sort key, then the id) starting
//! after a cursor, so that records added while a client pages never shift what it sees.

use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::Value;

use super::{field_expr, table};
use crate::api::store::{Cursor, Page, PageQuery, Record};

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

/// The SQL of a page, and its parameters. SQLite orders NULL first: ascending pages list
/// records without the sort field first, descending pages last.
fn page_sql(collection: &str, query: &PageQuery) -> (String, Vec<Sql>) {
    let mut params: Vec<Sql> = Vec::new();
    let bind = |value: Sql, params: &mut Vec<Sql>| {
        params.push(value);
        format!("?{}", params.len())
    };
    let key = query.sort.as_deref().map(field_expr);
    let mut sql = format!(
        "SELECT {COLUMNS}, {} FROM {}",
        key.as_deref().unwrap_or("NULL"),
        table(collection)
    );
    let mut conditions = Vec::new();
    for (field, value) in &query.filters {
        let p = bind(to_sql(value), &mut params);
        conditions.push(format!("{} = {p}", field_expr(field)));
    }
    let (order, after) = if query.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    if let Some(cursor) = &query.after {
        let id = bind(Sql::Integer(cursor.id), &mut params);
        conditions.push(match (&key, &cursor.value, query.descending) {
            (None, _, _) => format!("id {after} {id}"),
            (Some(k), Value::Null, false) => {
                format!("(({k} IS NULL AND id > {id}) OR {k} IS NOT NULL)")
            }
            (Some(k), Value::Null, true) => format!("({k} IS NULL AND id < {id})"),
            (Some(k), value, descending) => {
                let v = bind(to_sql(value), &mut params);
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
        Some(k) => sql.push_str(&format!(" ORDER BY {k} {order}, id {order}")),
        None => sql.push_str(&format!(" ORDER BY id {order}")),
    }
    // One more than the page, to know whether another follows.
    let limit = bind(Sql::Integer(query.limit as i64 + 1), &mut params);
    sql.push_str(&format!(" LIMIT {limit}"));
    (sql, params)
}

pub(super) fn page(
    conn: &Connection,
    collection: &str,
    query: &PageQuery,
) -> rusqlite::Result<Page> {
    let (sql, params) = page_sql(collection, query);
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(rusqlite::params_from_iter(params))?;
    let mut records = Vec::with_capacity(query.limit.min(128));
    let mut last_key = Value::Null;
    let mut more = false;
    while let Some(row) = rows.next()? {
        if records.len() == query.limit {
            more = true;
            break;
        }
        records.push(record(row)?);
        last_key = from_sql(row.get_ref(5)?);
    }
    let next = match records.last() {
        Some(last) if more => Some(Cursor {
            value: last_key,
            id: last.id,
        }),
        _ => None,
    };
    Ok(Page { records, next })
}
