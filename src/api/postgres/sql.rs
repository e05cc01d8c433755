//! The SQL of the PostgreSQL store: tables in the `tws` schema (migrated under an advisory
//! lock, so that nodes starting together do it once) with a generated `tsvector` column for
//! full-text search, a transaction's row operations, and the reads (one record, a page in
//! keyset order, a count).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use postgres::types::ToSql;
use postgres::{Row, Statement, Transaction};
use serde_json::Value;

use super::pool::{Conn, prepare};
use crate::api::apply::Rows;
use crate::api::dialect::Search;
use crate::api::keyset::{self, Collector, Dialect, page_sql};
use crate::api::live::Change;
use crate::api::schema::{Collection, FieldType, type_change};
use crate::api::store::{Page, PageQuery, Record};
use crate::api::where_sql::count_sql;

/// Taken by the node migrating the schema; others wait for it.
pub const MIGRATION_LOCK: i64 = 0x7477_7301;

/// Versions of the `tws` schema, applied in order, once.
const MIGRATIONS: [&str; 2] = [
    "CREATE TABLE tws.fields (
        collection TEXT NOT NULL,
        field TEXT NOT NULL,
        type TEXT NOT NULL,
        PRIMARY KEY (collection, field)
    )",
    super::changes::MIGRATION,
];

/// The generated `tsvector` column of the searchable fields (with a GIN index).
const SEARCH_COLUMN: &str = "tws_search";

fn table(collection: &str) -> String {
    format!("tws.\"c_{collection}\"")
}

fn field_expr(field: &str) -> String {
    format!("(data -> '{field}')")
}

/// Creates or migrates the schema and the collections' tables, in one transaction.
pub(super) fn prepare_collections(conn: &mut Conn, collections: &[Arc<Collection>]) -> Result<()> {
    let mut tx = conn.client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS tws;
         CREATE TABLE IF NOT EXISTS tws.migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL);",
    )?;
    let done: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM tws.migrations", &[])?
        .get(0);
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
        tx.batch_execute(sql)
            .with_context(|| format!("migration {}", i + 1))?;
        tx.execute(
            "INSERT INTO tws.migrations (version, applied) VALUES ($1, $2)",
            &[&(i as i32 + 1), &crate::time::now_rfc3339()],
        )?;
    }
    for collection in collections {
        let t = table(&collection.name);
        tx.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (
                id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                version BIGINT NOT NULL,
                created TEXT NOT NULL,
                updated TEXT,
                data JSONB NOT NULL
            )"
        ))?;
        for field in &collection.fields {
            let old: Option<String> = tx
                .query_opt(
                    "SELECT type FROM tws.fields WHERE collection = $1 AND field = $2",
                    &[&collection.name, &field.name],
                )?
                .map(|row| row.get(0));
            if let Some(old) = old
                .and_then(|o| FieldType::from_name(&o))
                .filter(|o| *o != field.kind)
            {
                let holding: i64 = tx
                    .query_one(
                        &format!("SELECT count(*) FROM {t} WHERE data ? $1"),
                        &[&field.name],
                    )?
                    .get(0);
                type_change(collection, &field.name, old, field.kind, holding)?;
            }
            tx.execute(
                "INSERT INTO tws.fields (collection, field, type) VALUES ($1, $2, $3)
                 ON CONFLICT (collection, field) DO UPDATE SET type = excluded.type",
                &[&collection.name, &field.name, &field.kind.name()],
            )?;
            let index = format!("\"c_{}__{}\"", collection.name, field.name);
            if field.index {
                let expr = field_expr(&field.name);
                tx.batch_execute(&format!(
                    "CREATE INDEX IF NOT EXISTS {index} ON {t} ({expr}, id)"
                ))?;
            } else {
                tx.batch_execute(&format!("DROP INDEX IF EXISTS tws.{index}"))?;
            }
        }
        prepare_search(&mut tx, collection)?;
    }
    tx.commit()?;
    Ok(())
}

/// The searchable fields (`search = true`) as a generated `tsvector` column with a GIN index,
/// remade when they change (their names kept in the column's comment).
fn prepare_search(tx: &mut Transaction<'_>, collection: &Collection) -> Result<()> {
    let t = table(&collection.name);
    let names: Vec<&str> = collection.searched().map(|f| f.name.as_str()).collect();
    let wanted = names.join(",");
    let have: Option<Option<String>> = tx
        .query_opt(
            &format!(
                "SELECT col_description(attrelid, attnum) FROM pg_attribute
                 WHERE attrelid = '{t}'::regclass AND attname = '{SEARCH_COLUMN}' AND NOT attisdropped"
            ),
            &[],
        )?
        .map(|row| row.get(0));
    if !names.is_empty() && have.as_ref().and_then(Option::as_deref) == Some(wanted.as_str()) {
        return Ok(());
    }
    if have.is_some() {
        tx.batch_execute(&format!("ALTER TABLE {t} DROP COLUMN {SEARCH_COLUMN}"))?;
    }
    if names.is_empty() {
        return Ok(());
    }
    let text: Vec<String> = names
        .iter()
        .map(|name| format!("coalesce(data ->> '{name}', '')"))
        .collect();
    tx.batch_execute(&format!(
        "ALTER TABLE {t} ADD COLUMN {SEARCH_COLUMN} tsvector
             GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, {})) STORED;
         CREATE INDEX \"c_{name}:search\" ON {t} USING gin ({SEARCH_COLUMN});
         COMMENT ON COLUMN {t}.{SEARCH_COLUMN} IS '{wanted}';",
        text.join(" || ' ' || "),
        name = collection.name,
    ))?;
    Ok(())
}

/// A transaction's row operations, with statements prepared once per connection.
pub(super) struct PgRows<'a, 't> {
    pub tx: &'a mut Transaction<'t>,
    pub statements: &'a mut HashMap<String, Statement>,
    /// Changes to log, numbered just before the commit (`changes::log`).
    pub logged: &'a mut Vec<Change>,
}

impl PgRows<'_, '_> {
    fn statement(&mut self, sql: String) -> Result<Statement, postgres::Error> {
        prepare(self.tx, self.statements, &sql)
    }
}

impl Rows for PgRows<'_, '_> {
    type Error = postgres::Error;

    fn insert(
        &mut self,
        collection: &str,
        created: &str,
        data: &str,
    ) -> Result<i64, postgres::Error> {
        let s = self.statement(format!(
            "INSERT INTO {} (version, created, data) VALUES (1, $1, ($2::text)::jsonb) RETURNING id",
            table(collection)
        ))?;
        Ok(self.tx.query_one(&s, &[&created, &data])?.get(0))
    }

    fn current(&mut self, collection: &str, id: i64) -> Result<Option<Record>, postgres::Error> {
        // FOR UPDATE: another node's writer waits until this transaction ends, so the version
        // checked against If-Match is the one replaced.
        let s = self.statement(format!(
            "SELECT version, created, updated, data::text FROM {} WHERE id = $1 FOR UPDATE",
            table(collection)
        ))?;
        Ok(self.tx.query_opt(&s, &[&id])?.map(|row| Record {
            id,
            version: row.get(0),
            created: row.get(1),
            updated: row.get(2),
            data: row.get(3),
        }))
    }

    fn update(&mut self, collection: &str, r: &Record) -> Result<(), postgres::Error> {
        let s = self.statement(format!(
            "UPDATE {} SET version = $1, updated = $2, data = ($3::text)::jsonb WHERE id = $4",
            table(collection)
        ))?;
        self.tx
            .execute(&s, &[&r.version, &r.updated, &r.data, &r.id])?;
        Ok(())
    }

    fn delete(&mut self, collection: &str, id: i64) -> Result<(), postgres::Error> {
        let s = self.statement(format!("DELETE FROM {} WHERE id = $1", table(collection)))?;
        self.tx.execute(&s, &[&id])?;
        Ok(())
    }

    fn log(&mut self, change: Change) -> Result<(), postgres::Error> {
        self.logged.push(change);
        Ok(())
    }
}

const COLUMNS: &str = "id, version, created, updated, data::text";

fn record(row: &Row) -> Record {
    Record {
        id: row.get(0),
        version: row.get(1),
        created: row.get(2),
        updated: row.get(3),
        data: row.get(4),
    }
}

pub(super) fn get(
    conn: &mut Conn,
    collection: &str,
    id: i64,
) -> Result<Option<Record>, postgres::Error> {
    let s = conn.prepared(&format!(
        "SELECT {COLUMNS} FROM {} WHERE id = $1",
        table(collection)
    ))?;
    Ok(conn.client.query_opt(&s, &[&id])?.as_ref().map(record))
}

/// PostgreSQL: `$N` placeholders, jsonb values, and NULL placement spelled out to match
/// SQLite's.
struct Postgres;

impl Dialect for Postgres {
    type Param = Box<dyn ToSql + Sync>;
    fn placeholder(n: usize) -> String {
        format!("${n}")
    }
    fn field(name: &str) -> String {
        field_expr(name)
    }
    fn value(value: &Value) -> Self::Param {
        Box::new(value.clone())
    }
    fn id(id: i64) -> Self::Param {
        Box::new(id)
    }
    fn text(text: &str) -> Self::Param {
        Box::new(text.to_owned())
    }
    fn starts_with(
        name: &str,
        prefix: &str,
        bind: &mut dyn FnMut(Self::Param) -> String,
    ) -> String {
        // jsonb strings compare by the database's collation, not by code point.
        format!(
            "starts_with((data ->> '{name}'), {})",
            bind(Box::new(prefix.to_owned()))
        )
    }
    fn contains(name: &str, p: &str) -> String {
        format!("strpos((data ->> '{name}'), {p}) > 0")
    }
    fn words(words: &[String]) -> Self::Param {
        // plainto_tsquery reads plain words: no query syntax gets through.
        Box::new(words.join(" "))
    }
    fn search(_table: &str, p: &str, ranked: bool) -> Search {
        let query = format!("plainto_tsquery('simple', {p})");
        Search {
            join: String::new(),
            condition: format!("{SEARCH_COLUMN} @@ {query}"),
            // jsonb, as every sort key here: the cursor reads it back as JSON.
            rank: ranked.then(|| format!("to_jsonb(-ts_rank({SEARCH_COLUMN}, {query})::float8)")),
            alone: None,
        }
    }
    const NO_KEY: &'static str = "NULL::jsonb";
    const NULLS: (&'static str, &'static str) = (" NULLS FIRST", " NULLS LAST");
}

/// A page; `Ok(None)` when the record it continues after is gone. Rows are read as they
/// arrive, and reading stops once the page is full.
pub(super) fn page(
    conn: &mut Conn,
    collection: &str,
    query: &PageQuery,
) -> Result<Option<Page>, postgres::Error> {
    use postgres::fallible_iterator::FallibleIterator;
    let t = table(collection);
    let after = keyset::start::<Postgres, _>(&t, query, |sql, params| {
        let s = conn.prepared(&sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        let row = conn.client.query_opt(&s, &refs)?;
        Ok(row.map(|row| row.get::<_, Option<Value>>(0).unwrap_or(Value::Null)))
    })?;
    let Some(after) = after else {
        return Ok(None);
    };
    let (sql, params) = page_sql::<Postgres>(&t, COLUMNS, query, after.as_ref());
    let s = conn.prepared(&sql)?;
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
    let mut rows = conn.client.query_raw(&s, refs)?;
    let mut page = Collector::new(query);
    while let Some(row) = rows.next()? {
        if !page.push(record(&row)) {
            break;
        }
    }
    drop(rows);
    let mut page = page.finish();
    if query.total {
        let (sql, params) = count_sql::<Postgres>(&t, query);
        let s = conn.prepared(&sql)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        let total: i64 = conn.client.query_one(&s, &refs)?.get(0);
        page.total = Some(total as u64);
    }
    Ok(Some(page))
}
