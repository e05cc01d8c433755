//! The typed route table: what each path serves and which methods it answers. `config` builds
//! and validates it; `router` looks requests up in it.

use std::fmt;
use std::path::PathBuf;

use std::sync::Arc;

use crate::http::{Method, Methods};
use crate::path::Exposure;
use crate::rules::auth::Realm;
use crate::rules::cors::Cors;
use crate::rules::headers::HeaderSet;
use crate::rules::hosts::HostPattern;
use crate::rules::proxies::Net;

/// One `[[route]]` of routes.toml after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The URL path (a prefix for `dir` routes; may end in `{id}` for actions).
    pub path: String,
    pub methods: Methods,
    pub target: Target,
    /// The line of the routes file it was declared on (0 when built from the command line).
    pub line: usize,
    /// Responses may be compressed on the fly (`compress = false` turns it off).
    pub compress: bool,
    /// Host names the route answers for; empty: any host.
    pub hosts: Vec<HostPattern>,
    /// Extra headers on every response (the server's merged with the route's own).
    pub headers: Option<Arc<HeaderSet>>,
    /// Cross-origin reads allowed.
    pub cors: Option<Arc<Cors>>,
    /// The realm whose users may use the route.
    pub auth: Option<Arc<Realm>>,
    /// The client networks the route answers (`None`: any); others get 403.
    pub allow: Option<Arc<[Net]>>,
}

/// What a route serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    File(FileSpec),
    /// An HTML page: a file always typed `text/html; charset=utf-8`.
    Page(FileSpec),
    Dir(DirSpec),
    Action(Action),
    /// A declared collection's list or records.
    Collection(crate::api::Endpoint),
    /// A redirect to a URL written in routes.toml.
    Redirect(RedirectSpec),
}

/// Where a redirect route sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectSpec {
    /// The target: a path on this site or an absolute `http(s)://` URL.
    pub to: String,
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
}

/// A single file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileSpec {
    /// The path as configured (for messages).
    pub file: PathBuf,
    /// The canonical folder holding it, and its name there; precompressed variants
    /// (`name.br`, `name.gz`) are looked up beside it.
    pub folder: PathBuf,
    pub name: String,
    /// Overrides the type guessed from the extension.
    pub content_type: Option<String>,
    /// When set, the file is sent as an attachment with this file name.
    pub download: Option<String>,
    pub cache_control: Option<String>,
}

/// A folder mounted under the route's path.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DirSpec {
    /// Canonical path of the folder.
    pub folder: PathBuf,
    /// File served for a folder request, when present.
    pub index: String,
    /// List a folder's contents when it has no index file.
    pub listing: bool,
    /// Most entries on one page of a listing.
    pub max_listing_entries: usize,
    /// Dotfiles and symlinks.
    pub exposure: Exposure,
    pub cache_control: Option<String>,
    /// `/about` serves `about.html`, and `/about.html` redirects to `/about`.
    pub clean_urls: bool,
    /// Served (200) for a GET or HEAD that would otherwise be 404: an SPA's index.
    pub fallback: Option<String>,
    /// What people may change in the folder (nothing by default).
    pub writes: Writes,
    /// A listed folder can be downloaded whole as tar, tar.gz or zip (`?download=`).
    pub archives: bool,
}

/// Default most bytes of one uploaded file.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 1 << 40;

/// What people may change in a folder route's folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Writes {
    /// Files sent with PUT, or POST multipart/form-data to a folder.
    pub upload: bool,
    /// `POST folder/?mkdir=NAME`.
    pub mkdir: bool,
    /// `DELETE path` (or `POST path?delete`).
    pub delete: bool,
    /// `POST path?rename=NEW`.
    pub rename: bool,
    /// An upload may replace a file of the same name (else 409).
    pub overwrite: bool,
    /// Most bytes of one uploaded file (413 past it).
    pub max_upload_bytes: u64,
    /// The realm writes need, when reads need none (`write_auth`); writes otherwise need the
    /// route's own `auth`, if any.
    pub auth: Option<Arc<Realm>>,
}

impl Default for Writes {
    fn default() -> Self {
        Writes {
            upload: false,
            mkdir: false,
            delete: false,
            rename: false,
            overwrite: false,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            auth: None,
        }
    }
}

impl Writes {
    /// True when some change is allowed.
    pub fn any(&self) -> bool {
        self.upload || self.mkdir || self.delete || self.rename
    }

    /// The methods writes add to a folder route's GET and HEAD.
    pub fn methods(&self) -> Methods {
        let mut set = Methods::NONE;
        if self.upload || self.mkdir || self.rename || self.delete {
            set = set.with(Method::Post);
        }
        if self.upload {
            set = set.with(Method::Put);
        }
        if self.delete {
            set = set.with(Method::Delete);
        }
        set
    }
}

/// What a folder route lets people do from its listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Features {
    pub upload: bool,
    pub mkdir: bool,
    pub delete: bool,
    pub rename: bool,
    pub archives: bool,
}

impl DirSpec {
    /// What the listing offers.
    pub fn features(&self) -> Features {
        Features {
            upload: self.writes.upload,
            mkdir: self.writes.mkdir,
            delete: self.writes.delete,
            rename: self.writes.rename,
            archives: self.archives && self.listing,
        }
    }
}

/// The built-in actions. (The old user actions, `create_user`, `list_users` and `get_user`,
/// are routes onto the `users` collection: see `config`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Liveness: uptime and version.
    Health,
    /// Prometheus metrics.
    Metrics,
    /// The OpenAPI document of the collections.
    OpenApi,
}

impl Action {
    const ALL: [Action; 3] = [Action::Health, Action::Metrics, Action::OpenApi];

    pub fn name(self) -> &'static str {
        match self {
            Action::Health => "health",
            Action::Metrics => "metrics",
            Action::OpenApi => "openapi",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn names() -> Vec<&'static str> {
        Action::ALL.iter().map(|a| a.name()).collect()
    }

    fn methods(self) -> Methods {
        match self {
            Action::Health | Action::Metrics | Action::OpenApi => {
                Methods::of(&[Method::Get, Method::Head])
            }
        }
    }
}

impl Target {
    /// The methods this kind of target can answer (and answers unless `methods` narrows them).
    pub fn default_methods(&self) -> Methods {
        match self {
            Target::File(_) | Target::Page(_) | Target::Dir(_) => {
                Methods::of(&[Method::Get, Method::Head])
            }
            Target::Action(action) => action.methods(),
            Target::Collection(endpoint) => endpoint.methods(),
            Target::Redirect(_) => Methods::of(&Method::ALL[..7]),
        }
    }

    /// True when errors on this target are answered in JSON.
    pub fn speaks_json(&self) -> bool {
        matches!(self, Target::Action(_) | Target::Collection(_))
    }
}

/// A canonical path shown from the working folder (`./site/files`) when it lies in it.
fn relative_to_cwd(path: &std::path::Path) -> std::path::PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| cwd.canonicalize().ok())
        .and_then(|cwd| {
            path.strip_prefix(cwd)
                .ok()
                .map(|rest| std::path::Path::new(".").join(rest))
        })
        .unwrap_or_else(|| path.to_path_buf())
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::File(spec) => {
                write!(f, "file {}", spec.file.display())?;
                if let Some(ct) = &spec.content_type {
                    write!(f, " as {ct}")?;
                }
                if spec.download.is_some() {
                    write!(f, " (download)")?;
                }
                Ok(())
            }
            Target::Page(spec) => write!(f, "page {}", spec.file.display()),
            Target::Dir(spec) => write!(
                f,
                "dir {} (index {}, listing {})",
                relative_to_cwd(&spec.folder).display(),
                spec.index,
                if spec.listing { "on" } else { "off" }
            ),
            Target::Action(action) => write!(f, "action {}", action.name()),
            Target::Collection(endpoint) => {
                let part = match (endpoint.events, endpoint.item) {
                    (true, _) => "events",
                    (false, true) => "records",
                    (false, false) => "list",
                };
                write!(f, "collection {} ({part})", endpoint.collection.name)
            }
            Target::Redirect(spec) => write!(f, "redirect {} {}", spec.status, spec.to),
        }
    }
}
