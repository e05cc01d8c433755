//! What a person asked to see of a folder: the order (`?sort=name|size|modified`,
//! `?order=asc|desc`), a filter on names (`?q=`, case-insensitive), and the page (`?page=N`).
//! The default view (by name, no filter) is the one kept rendered; any other is made from
//! the scan for its request.

use super::scan::{Entry, Scan};
use crate::http::{HttpError, form};

/// The order entries are shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Folders first, then by name.
    #[default]
    Name,
    Size,
    Modified,
}

impl SortKey {
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::Modified => "modified",
        }
    }
}

/// A request's view of a folder.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct View {
    pub sort: SortKey,
    pub descending: bool,
    /// Names containing this (lower-cased), when filtering.
    pub filter: Option<String>,
    /// 1-based.
    pub page: usize,
}

/// Query parameters a listing reads; anything else is left to others (`download`, ...).
const OWN: [&str; 4] = ["sort", "order", "q", "page"];

impl View {
    /// Reads the view from a query; a bad value is a 400 saying which.
    pub fn of(query: Option<&str>) -> Result<View, HttpError> {
        let mut view = View {
            page: 1,
            ..View::default()
        };
        let pairs = form::pairs(query.unwrap_or("").as_bytes())
            .map_err(|_| HttpError::BadRequest("the listing's query is not valid"))?;
        for (name, value) in pairs {
            match name.as_str() {
                "sort" => {
                    view.sort = match value.as_str() {
                        "name" => SortKey::Name,
                        "size" => SortKey::Size,
                        "modified" | "date" => SortKey::Modified,
                        _ => {
                            return Err(HttpError::BadRequest(
                                "sort must be name, size or modified",
                            ));
                        }
                    }
                }
                "order" => {
                    view.descending = match value.as_str() {
                        "asc" => false,
                        "desc" => true,
                        _ => return Err(HttpError::BadRequest("order must be asc or desc")),
                    }
                }
                "q" => {
                    let text = value.trim().to_lowercase();
                    view.filter = (!text.is_empty()).then_some(text);
                }
                "page" => {
                    view.page = value
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1 && value.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or(HttpError::BadRequest("page must be a positive integer"))?;
                }
                _ => {}
            }
        }
        Ok(view)
    }

    /// True for the view a folder is kept rendered in: by name, ascending, unfiltered.
    pub fn is_default_order(&self) -> bool {
        self.sort == SortKey::Name && !self.descending && self.filter.is_none()
    }

    /// The entries to show, in order, as indexes into the scan (the scan's own order is by
    /// name, folders first).
    pub fn order(&self, scan: &Scan) -> Vec<u32> {
        let mut indexes: Vec<u32> = (0..scan.len() as u32)
            .filter(|i| {
                self.filter
                    .as_deref()
                    .is_none_or(|f| scan.name(*i as usize).to_lowercase().contains(f))
            })
            .collect();
        let key = |e: &Entry| match self.sort {
            SortKey::Name => 0,
            SortKey::Size => e.size as i128,
            SortKey::Modified => i128::from(e.modified.unwrap_or(0)),
        };
        if self.sort != SortKey::Name {
            // Stable: equal keys keep the name order.
            indexes.sort_by_key(|i| {
                let e = scan.entry(*i as usize);
                (!e.is_dir, key(e))
            });
        }
        if self.descending {
            // Folders stay first; within each group the order turns round.
            let folders = indexes
                .iter()
                .take_while(|i| scan.entry(**i as usize).is_dir)
                .count();
            indexes[..folders].reverse();
            indexes[folders..].reverse();
        }
        indexes
    }

    /// The query of this view with `sort` and `order` replaced (a column head's link).
    pub fn query_with(&self, sort: SortKey, descending: bool) -> String {
        let mut query = format!(
            "?sort={}&order={}",
            sort.name(),
            if descending { "desc" } else { "asc" }
        );
        if let Some(filter) = &self.filter {
            query.push_str("&q=");
            query.push_str(&form::encode(filter));
        }
        query
    }

    /// The query of this view on another page.
    pub fn query_for_page(&self, page: usize) -> String {
        let mut query = if self.is_default_order() {
            String::from("?")
        } else {
            format!("{}&", self.query_with(self.sort, self.descending))
        };
        query.push_str(&format!("page={page}"));
        query
    }

    /// True when the query holds nothing a listing reads but the page number.
    pub fn plain(query: Option<&str>) -> bool {
        query.is_none_or(|q| {
            q.split('&')
                .filter_map(|pair| pair.split('=').next())
                .all(|name| !OWN.contains(&name) || name == "page")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_read_from_queries_or_refused() {
        type Want<'a> = Result<(SortKey, bool, Option<&'a str>, usize), u16>;
        let cases: &[(&str, Want)] = &[
            ("", Ok((SortKey::Name, false, None, 1))),
            ("sort=size&order=desc", Ok((SortKey::Size, true, None, 1))),
            (
                "sort=modified&q=Rep%20ORT&page=3",
                Ok((SortKey::Modified, false, Some("rep ort"), 3)),
            ),
            ("q=+&download=zip", Ok((SortKey::Name, false, None, 1))),
            ("sort=owner", Err(400)),
            ("order=up", Err(400)),
            ("page=0", Err(400)),
            ("page=x", Err(400)),
        ];
        for (query, want) in cases {
            let got = View::of(Some(query))
                .map(|v| (v.sort, v.descending, v.filter.clone(), v.page))
                .map_err(HttpError::status);
            let want = want.map(|(s, d, f, p)| (s, d, f.map(str::to_owned), p));
            assert_eq!(got, want, "{query}");
        }
        assert!(View::plain(Some("page=2")) && View::plain(None));
        assert!(!View::plain(Some("sort=size")));
    }
}
