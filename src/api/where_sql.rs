//! The WHERE of a page query, shared by the SQLite and PostgreSQL stores: equality filters,
//! the other comparisons (`age[gte]=18`), full-text search, and the relevance to order by
//! when searching. Every value is a bound parameter.

use super::dialect::Dialect;
use super::store::{Op, PageQuery};

/// What a query selects: joins, conditions (all must hold), and the relevance expression
/// when ordered by it.
pub struct Selection {
    pub join: String,
    pub conditions: Vec<String>,
    pub rank: Option<String>,
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
