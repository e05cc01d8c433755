//! The WHERE of a page query, shared by the SQLite and PostgreSQL stores: equality filters,
//! the other comparisons (`age[gte]=18`), full-text search, and the relevance to order by
//! when searching. Every value is a bound parameter.

use super::dialect::{Alone, Dialect};
use super::store::{Op, PageQuery};

/// What a query selects: joins, conditions (all must hold), and the relevance expression
/// when ordered by it.
pub struct Selection {
    pub join: String,
    pub conditions: Vec<String>,
    pub rank: Option<String>,
    /// The search's matches read by themselves (see `Search::alone`).
    pub alone: Option<Alone>,
}

/// The selection of `query` on `table`, its parameters bound with `bind` (the search words
/// first, so the relevance and the condition share them).
pub fn selection<D: Dialect>(
    table: &str,
    query: &PageQuery,
    bind: &mut dyn FnMut(D::Param) -> String,
) -> Selection {
    let mut selection = Selection {
        join: String::new(),
        conditions: Vec::new(),
        rank: None,
        alone: None,
    };
    if query.search.as_ref().is_some_and(Vec::is_empty) {
        // A search without words finds nothing.
        selection.conditions.push("1 = 0".to_owned());
    } else if let Some(words) = &query.search {
        let p = bind(D::words(words));
        let search = D::search(table, &p, query.ranked);
        selection.join = search.join;
        selection.conditions.push(search.condition);
        selection.rank = search.rank;
        selection.alone = search.alone;
    }
    for (field, value) in &query.filters {
        let p = bind(D::value(value));
        selection
            .conditions
            .push(format!("{} = {p}", D::field(field)));
    }
    for c in &query.conditions {
        let k = D::field(&c.field);
        let compare = |symbol: &str, bind: &mut dyn FnMut(D::Param) -> String| {
            format!("{k} {symbol} {}", bind(D::value(&c.value)))
        };
        let condition = match c.op {
            Op::Ne => format!("({k} IS NULL OR {})", compare("<>", bind)),
            Op::Lt => compare("<", bind),
            Op::Lte => compare("<=", bind),
            Op::Gt => compare(">", bind),
            Op::Gte => compare(">=", bind),
            Op::In => {
                let items = c.value.as_array().map(Vec::as_slice).unwrap_or_default();
                let list: Vec<String> = items.iter().map(|v| bind(D::value(v))).collect();
                if list.is_empty() {
                    "1 = 0".to_owned()
                } else {
                    format!("{k} IN ({})", list.join(", "))
                }
            }
            Op::Prefix => D::starts_with(&c.field, c.value.as_str().unwrap_or(""), bind),
            Op::Contains => {
                let p = bind(D::text(c.value.as_str().unwrap_or("")));
                D::contains(&c.field, &p)
            }
        };
        selection.conditions.push(condition);
    }
    selection
}

/// The SQL counting the records `query` selects (without its cursor), and its parameters.
pub fn count_sql<D: Dialect>(table: &str, query: &PageQuery) -> (String, Vec<D::Param>) {
    let mut params = Vec::new();
    let mut bind = |value: D::Param| {
        params.push(value);
        D::placeholder(params.len())
    };
    let s = selection::<D>(table, query, &mut bind);
    let mut sql = format!("SELECT count(*) FROM {table}{}", s.join);
    if !s.conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&s.conditions.join(" AND "));
    }
    (sql, params)
}

/// The first string after every string starting with `prefix` (in code point order), if any:
/// `"An"` → `"Ao"`.
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::dialect::Search;
    use crate::api::store::Condition;
    use serde_json::{Value, json};

    /// Spells SQL plainly, its parameters as their JSON text.
    struct Plain;

    impl Dialect for Plain {
        type Param = String;
        fn placeholder(n: usize) -> String {
            format!("${n}")
        }
        fn field(name: &str) -> String {
            format!("f.{name}")
        }
        fn value(value: &Value) -> String {
            value.to_string()
        }
        fn id(id: i64) -> String {
            id.to_string()
        }
        fn text(text: &str) -> String {
            text.to_owned()
        }
        fn starts_with(name: &str, prefix: &str, bind: &mut dyn FnMut(String) -> String) -> String {
            format!("starts(f.{name}, {})", bind(prefix.to_owned()))
        }
        fn contains(name: &str, p: &str) -> String {
            format!("holds(f.{name}, {p})")
        }
        fn words(words: &[String]) -> String {
            words.join(" ")
        }
        fn search(_table: &str, p: &str, ranked: bool) -> Search {
            Search {
                join: String::new(),
                condition: format!("matches({p})"),
                rank: ranked.then(|| format!("rank({p})")),
                alone: None,
            }
        }
        const NO_KEY: &'static str = "NULL";
        const NULLS: (&'static str, &'static str) = ("", "");
    }

    #[test]
    fn every_value_is_a_parameter_and_search_words_come_first() {
        let condition = |field: &str, op, value| Condition {
            field: field.into(),
            op,
            value,
        };
        let query = PageQuery {
            filters: vec![("team".into(), json!("red"))],
            conditions: vec![
                condition("age", Op::Gte, json!(18)),
                condition("age", Op::Lt, json!(65)),
                condition("done", Op::Ne, json!(true)),
                condition("tag", Op::In, json!(["a", "b"])),
                condition("tag", Op::In, json!([])),
                condition("name", Op::Prefix, json!("An")),
                condition("name", Op::Contains, json!("'; DROP")),
            ],
            search: Some(vec!["rust".into(), "tea".into()]),
            ..PageQuery::default()
        };
        let (sql, params) = count_sql::<Plain>("t", &query);
        assert_eq!(
            sql,
            "SELECT count(*) FROM t WHERE matches($1) AND f.team = $2 AND f.age >= $3 \
             AND f.age < $4 AND (f.done IS NULL OR f.done <> $5) AND f.tag IN ($6, $7) \
             AND 1 = 0 AND starts(f.name, $8) AND holds(f.name, $9)"
        );
        assert_eq!(
            params,
            [
                "rust tea", "\"red\"", "18", "65", "true", "\"a\"", "\"b\"", "An", "'; DROP"
            ]
        );
        let nothing = PageQuery {
            search: Some(Vec::new()),
            ..PageQuery::default()
        };
        assert_eq!(
            count_sql::<Plain>("t", &nothing).0,
            "SELECT count(*) FROM t WHERE 1 = 0"
        );
    }

    #[test]
    fn a_prefix_ends_at_the_next_string() {
        let cases = [
            ("An", Some("Ao")),
            ("a\u{10FFFF}", Some("b")),
            ("\u{10FFFF}", None),
            ("", None),
            ("x\u{D7FF}", Some("x\u{E000}")),
        ];
        for (prefix, end) in cases {
            assert_eq!(prefix_end(prefix).as_deref(), end, "{prefix:?}");
        }
    }
}
