//! (host, normalised path) → route. The most specific match wins: an exact path, then an
//! `{id}` route, then the longest prefix (a `dir` route, or a redirect whose path ends in
//! '/'); between a route declared for the request's host (exact names before `*.` wildcards)
//! and one without a host that match equally well, the host's wins.

use std::collections::HashMap;

use crate::routes::{Route, Target};
use crate::rules::hosts::HostPattern;

/// The route table, indexed for lookup.
#[derive(Debug)]
pub struct Router {
    routes: Vec<Route>,
    /// Routes without a host.
    any: Table,
    /// Routes of each host pattern, exact names before wildcards.
    hosts: Vec<(HostPattern, Table)>,
}

/// One set of routes, indexed.
#[derive(Debug, Default)]
struct Table {
    exact: HashMap<String, usize>,
    /// `{id}` routes: the path before `{id}`, which ends in '/'.
    params: Vec<(String, usize)>,
    /// Prefix routes: the mount path with a trailing '/', longest first.
    prefixes: Vec<(String, usize)>,
}

/// The outcome of a lookup.
#[derive(Debug, PartialEq)]
pub enum Found<'r, 'p> {
    /// `rest` is what follows the route's path: the `{id}` value, or the path inside a `dir`
    /// (or below a redirect's prefix).
    Route {
        index: usize,
        route: &'r Route,
        rest: &'p str,
    },
    /// The path names a mounted folder without its trailing slash.
    AddSlash(&'r Route),
    NotFound,
}

impl Table {
    fn add(&mut self, route: &Route, i: usize) {
        if let Some(prefix) = route.path.strip_suffix("{id}") {
            self.params.push((prefix.to_owned(), i));
        } else if matches!(route.target, Target::Dir(_))
            || (matches!(route.target, Target::Redirect(_)) && route.path.ends_with('/'))
        {
            let mut prefix = route.path.clone();
            if !prefix.ends_with('/') {
                prefix.push('/');
            }
            self.prefixes.push((prefix, i));
        } else {
            self.exact.insert(route.path.clone(), i);
        }
    }

    /// The best match in this set, with how specific it is: (kind, length), higher is better.
    fn find<'r, 'p>(&self, routes: &'r [Route], path: &'p str) -> (Found<'r, 'p>, (u8, usize)) {
        let found = |index: usize, rest: &'p str| Found::Route {
            index,
            route: &routes[index],
            rest,
        };
        if let Some(&i) = self.exact.get(path) {
            return (found(i, ""), (3, path.len()));
        }
        for (prefix, i) in &self.params {
            if let Some(id) = path.strip_prefix(prefix.as_str())
                && !id.is_empty()
                && !id.contains('/')
            {
                return (found(*i, id), (2, prefix.len()));
            }
        }
        for (prefix, i) in &self.prefixes {
            if let Some(rest) = path.strip_prefix(prefix.as_str()) {
                return (found(*i, rest), (1, prefix.len()));
            }
            if path.len() + 1 == prefix.len() && prefix.starts_with(path) {
                // A redirect goes straight to its target; a folder first gains its slash.
                let answer = match routes[*i].target {
                    Target::Redirect(_) => found(*i, ""),
                    _ => Found::AddSlash(&routes[*i]),
                };
                return (answer, (1, prefix.len()));
            }
        }
        (Found::NotFound, (0, 0))
    }
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Router {
        let mut any = Table::default();
        let mut hosts: Vec<(HostPattern, Table)> = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            if route.hosts.is_empty() {
                any.add(route, i);
            }
            for pattern in &route.hosts {
                match hosts.iter_mut().find(|(p, _)| p == pattern) {
                    Some((_, table)) => table.add(route, i),
                    None => {
                        let mut table = Table::default();
                        table.add(route, i);
                        hosts.push((pattern.clone(), table));
                    }
                }
            }
        }
        for table in std::iter::once(&mut any).chain(hosts.iter_mut().map(|(_, t)| t)) {
            table
                .prefixes
                .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        }
        // Exact names first, then wildcards, longest suffix first.
        hosts.sort_by_key(|(p, _)| match p {
            HostPattern::Exact(_) => (0, 0),
            HostPattern::Wildcard(s) => (1, usize::MAX - s.len()),
        });
        Router { routes, any, hosts }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route at an index given by `Found::Route`.
    pub fn route(&self, index: usize) -> &Route {
        &self.routes[index]
    }

    /// True when some route is declared for a host.
    pub fn has_hosts(&self) -> bool {
        !self.hosts.is_empty()
    }

    /// Looks up a normalised path (see `path::normalize`) for `host` (see
    /// `rules::hosts::request_host`).
    pub fn find<'p>(&self, host: Option<&str>, path: &'p str) -> Found<'_, 'p> {
        let (any, any_rank) = self.any.find(&self.routes, path);
        if let Some(host) = host {
            for (pattern, table) in &self.hosts {
                if pattern.matches(host) {
                    let (found, rank) = table.find(&self.routes, path);
                    if rank.0 > 0 && rank >= any_rank {
                        return found;
                    }
                }
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Methods;
    use crate::routes::{Action, DirSpec, FileSpec};

    fn route(path: &str, target: Target) -> Route {
        Route {
            path: path.to_owned(),
            methods: Methods::NONE,
            target,
            line: 0,
            compress: true,
            hosts: Vec::new(),
            headers: None,
            cors: None,
            auth: None,
            allow: None,
        }
    }

    fn file() -> Target {
        Target::Page(FileSpec::default())
    }

    fn dir() -> Target {
        Target::Dir(DirSpec::default())
    }

    #[test]
    fn finds_exact_param_and_prefix_routes() {
        let router = Router::new(vec![
            route("/", file()),
            route("/users", Target::Action(Action::Health)),
            route("/users/{id}", Target::Action(Action::Health)),
            route("/static", dir()),
            route("/static/deep", dir()),
        ]);
        let r = router.routes();
        // (path, expected: route index and rest, AddSlash(index), or None for not found)
        type Case = (&'static str, Option<(usize, &'static str)>, Option<usize>);
        let cases: &[Case] = &[
            ("/", Some((0, "")), None),
            ("/users", Some((1, "")), None),
            ("/users/7", Some((2, "7")), None),
            ("/users/", None, None),
            ("/users/7/x", None, None),
            ("/static/", Some((3, "")), None),
            ("/static/a/b.txt", Some((3, "a/b.txt")), None),
            ("/static/deep/x", Some((4, "x")), None),
            ("/static", None, Some(3)),
            ("/static/deep", None, Some(4)),
            ("/staticx", None, None),
            ("/nothing", None, None),
        ];
        for (path, route, slash) in cases {
            let want = match (route, slash) {
                (Some((i, rest)), _) => Found::Route {
                    index: *i,
                    route: &r[*i],
                    rest,
                },
                (None, Some(i)) => Found::AddSlash(&r[*i]),
                (None, None) => Found::NotFound,
            };
            assert_eq!(router.find(None, path), want, "path {path}");
        }
    }

    #[test]
    fn host_routes_win_equal_matches_and_the_most_specific_path_wins() {
        use crate::rules::hosts::HostPattern;
        let for_host = |path: &str, target: Target, host: &str| Route {
            hosts: vec![HostPattern::parse(host).unwrap()],
            ..route(path, target)
        };
        let router = Router::new(vec![
            for_host("/", dir(), "a.example"),
            route("/", dir()),
            route("/docs", dir()),
            for_host("/x", file(), "*.b.example"),
            route("/x", file()),
        ]);
        let index = |host: Option<&str>, path: &str| match router.find(host, path) {
            Found::Route { index, .. } => Some(index),
            _ => None,
        };
        assert_eq!(index(Some("a.example"), "/page"), Some(0));
        assert_eq!(index(None, "/page"), Some(1));
        assert_eq!(index(Some("other.example"), "/page"), Some(1));
        // A longer prefix without a host beats the host's "/".
        assert_eq!(index(Some("a.example"), "/docs/a"), Some(2));
        assert_eq!(index(Some("www.b.example"), "/x"), Some(3));
        assert_eq!(index(Some("b.example"), "/x"), Some(4));
    }

    #[test]
    fn a_root_dir_catches_everything_else() {
        let router = Router::new(vec![route("/", dir()), route("/page", file())]);
        let r = router.routes();
        assert_eq!(
            router.find(None, "/page"),
            Found::Route {
                index: 1,
                route: &r[1],
                rest: ""
            }
        );
        assert_eq!(
            router.find(None, "/a/b"),
            Found::Route {
                index: 0,
                route: &r[0],
                rest: "a/b"
            }
        );
        assert_eq!(
            router.find(None, "/"),
            Found::Route {
                index: 0,
                route: &r[0],
                rest: ""
            }
        );
    }
}
