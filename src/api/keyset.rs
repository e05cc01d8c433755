//! The SQL of one keyset page, shared by the SQLite and PostgreSQL stores. Records are
//! ordered by the sort field, then by id, and a page starts after a cursor (the last record's
//! sort value and id), so records added while a client pages never shift what it sees. A
//! record without the sort field sorts first ascending and last descending in both stores.
//! What differs between the two is the `Dialect`: placeholders, how a field is read from the
//! JSON, how values are bound, and how NULL placement is spelled.

use serde_json::Value;

use super::store::PageQuery;

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

/// The SQL of a page of `table` (selecting `columns`, then the sort key) and its parameters.
/// It asks for one record more than the page, to know whether another follows.
pub fn page_sql<D: Dialect>(
    table: &str,
    columns: &str,
    query: &PageQuery,
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
    if let Some(cursor) = &query.after {
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
