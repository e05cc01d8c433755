//! How one SQL engine spells what a page query needs: placeholders, how a field is read from
//! the JSON, how values are bound, how NULL placement and full-text search are spelled. The
//! SQLite and PostgreSQL stores each implement it; `keyset` and `where_sql` write the SQL.

use serde_json::Value;

/// One SQL engine's spelling.
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
    /// A text parameter (for `starts_with` and `contains`).
    fn text(text: &str) -> Self::Param;
    /// The condition that the string field `name` starts with `prefix`, its parameters bound
    /// with `bind` (by a range on the field's index where the engine compares strings by
    /// code point).
    fn starts_with(name: &str, prefix: &str, bind: &mut dyn FnMut(Self::Param) -> String)
    -> String;
    /// The condition that the string field `name` holds the text parameter `p`.
    fn contains(name: &str, p: &str) -> String;
    /// The search words as the parameter `search` takes.
    fn words(words: &[String]) -> Self::Param;
    /// A full-text search of `table` for the words parameter `p`: what the FROM clause gains,
    /// the condition, and the relevance (smaller first) when `ranked`.
    fn search(table: &str, p: &str, ranked: bool) -> Search;
    /// The key column's value when there is no sort field.
    const NO_KEY: &'static str;
    /// What follows `ORDER BY key ASC` and `... DESC` so that NULLs come first ascending and
    /// last descending (empty where that is the engine's own order).
    const NULLS: (&'static str, &'static str);
}

/// The SQL of a full-text search.
pub struct Search {
    /// Joined onto the table (or empty).
    pub join: String,
    pub condition: String,
    /// The relevance expression, smaller first (when ranked).
    pub rank: Option<String>,
    /// Where a ranked page whose only condition is this search reads its matches without the
    /// table (cheaper: no row of the table is read for a match that is not on the page).
    pub alone: Option<Alone>,
}

/// The source of a search's matches read by itself: a FROM clause and its id column.
pub struct Alone {
    pub from: String,
    pub id: String,
}
