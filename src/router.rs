//! (normalised path) → route: exact paths first, then `{id}` routes, then the longest `dir` prefix.

use std::collections::HashMap;

use crate::routes::{Route, Target};

/// The route table, indexed for lookup.
#[derive(Debug)]
pub struct Router {
    routes: Vec<Route>,
    exact: HashMap<String, usize>,
    /// `{id}` routes: the path before `{id}`, which ends in '/'.
    params: Vec<(String, usize)>,
    /// `dir` routes: the mount path with a trailing '/', longest first.
    dirs: Vec<(String, usize)>,
}

/// The outcome of a lookup.
#[derive(Debug, PartialEq)]
pub enum Found<'r, 'p> {
    /// `rest` is what follows the route's path: the `{id}` value, or the path inside a `dir`.
    Route {
        index: usize,
        route: &'r Route,
        rest: &'p str,
    },
    /// The path names a mounted folder without its trailing slash.
    AddSlash(&'r Route),
    NotFound,
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Router {
        let mut router = Router {
            routes: Vec::new(),
            exact: HashMap::new(),
            params: Vec::new(),
            dirs: Vec::new(),
        };
        for (i, route) in routes.iter().enumerate() {
            if let Some(prefix) = route.path.strip_suffix("{id}") {
                router.params.push((prefix.to_owned(), i));
            } else if let Target::Dir(_) = route.target {
                let mut prefix = route.path.clone();
                if !prefix.ends_with('/') {
                    prefix.push('/');
                }
                router.dirs.push((prefix, i));
            } else {
                router.exact.insert(route.path.clone(), i);
            }
        }
        router
            .dirs
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        router.routes = routes;
        router
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route at an index given by `Found::Route`.
    pub fn route(&self, index: usize) -> &Route {
        &self.routes[index]
    }

    fn found<'p>(&self, index: usize, rest: &'p str) -> Found<'_, 'p> {
        Found::Route {
            index,
            route: &self.routes[index],
            rest,
        }
    }

    /// Looks up a normalised path (see `path::normalize`).
    pub fn find<'p>(&self, path: &'p str) -> Found<'_, 'p> {
        if let Some(&i) = self.exact.get(path) {
            return self.found(i, "");
        }
        for (prefix, i) in &self.params {
            if let Some(id) = path.strip_prefix(prefix.as_str())
                && !id.is_empty()
                && !id.contains('/')
            {
                return self.found(*i, id);
            }
        }
        for (prefix, i) in &self.dirs {
            if let Some(rest) = path.strip_prefix(prefix.as_str()) {
                return self.found(*i, rest);
            }
            if path.len() + 1 == prefix.len() && prefix.starts_with(path) {
                return Found::AddSlash(&self.routes[*i]);
            }
        }
        Found::NotFound
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
            route("/users", Target::Action(Action::ListUsers)),
            route("/users/{id}", Target::Action(Action::GetUser)),
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
            assert_eq!(router.find(path), want, "path {path}");
        }
    }

    #[test]
    fn a_root_dir_catches_everything_else() {
        let router = Router::new(vec![route("/", dir()), route("/page", file())]);
        let r = router.routes();
        assert_eq!(
            router.find("/page"),
            Found::Route {
                index: 1,
                route: &r[1],
                rest: ""
            }
        );
        assert_eq!(
            router.find("/a/b"),
            Found::Route {
                index: 0,
                route: &r[0],
                rest: "a/b"
            }
        );
        assert_eq!(
            router.find("/"),
            Found::Route {
                index: 0,
                route: &r[0],
                rest: ""
            }
        );
    }
}
