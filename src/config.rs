//! routes.toml → a validated, typed configuration. Every key, path and file is checked once, at
//! load; anything wrong is reported as one line naming the file, the line and the key.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use toml::Spanned;

use crate::actions::SyncMode;
use crate::http::request::MAX_HEADERS_CEILING;
use crate::http::response::TEXT_HTML;
use crate::http::{Limits, Method, Methods};
use crate::path::{Exposure, Symlinks};
use crate::routes::{Action, DirSpec, FileSpec, Route, Target};

pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_DATA_DIR: &str = "data";
pub const DEFAULT_INDEX: &str = "index.html";

/// Server settings after the routes file and the command line are combined.
#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    /// The folder route paths are relative to (or, without a routes file, the folder served).
    pub root: PathBuf,
    /// Worker threads; 0 means one per CPU.
    pub threads: usize,
    /// Where actions keep their data.
    pub data: PathBuf,
    /// How user records reach the disk.
    pub fsync: SyncMode,
    pub limits: Limits,
}

/// A validated configuration: server settings and a route table.
#[derive(Debug, Clone)]
pub struct Config {
    /// The routes file it came from, if any.
    pub source: Option<PathBuf>,
    pub server: Server,
    pub routes: Vec<Route>,
    /// Content types by file extension (lower case, no dot), overriding the built-in table.
    pub types: HashMap<String, String>,
    /// Custom error pages (HTML) by status.
    pub error_pages: HashMap<u16, Arc<[u8]>>,
}

/// Largest custom error page accepted, in bytes.
pub const MAX_ERROR_PAGE_BYTES: u64 = 1024 * 1024;

/// Values given on the command line; each one overrides the routes file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub root: Option<PathBuf>,
    pub threads: Option<usize>,
    pub data: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    types: BTreeMap<Spanned<String>, String>,
    #[serde(default)]
    errors: BTreeMap<Spanned<String>, PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    host: Option<String>,
    port: Option<u16>,
    root: Option<PathBuf>,
    threads: Option<usize>,
    data: Option<PathBuf>,
    fsync: Option<Spanned<String>>,
    #[serde(default)]
    limits: RawLimits,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_head_bytes: Option<Spanned<usize>>,
    max_uri_bytes: Option<Spanned<usize>>,
    max_headers: Option<Spanned<usize>>,
    max_body_bytes: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path: String,
    file: Option<PathBuf>,
    page: Option<PathBuf>,
    dir: Option<PathBuf>,
    action: Option<String>,
    methods: Option<Vec<String>>,
    download: Option<bool>,
    content_type: Option<String>,
    index: Option<String>,
    listing: Option<bool>,
    dotfiles: Option<bool>,
    symlinks: Option<String>,
    cache_control: Option<String>,
}

impl Config {
    /// Reads and validates a routes file, then applies the command-line overrides.
    pub fn load(source: &Path, overrides: &Overrides) -> Result<Config> {
        let text = std::fs::read_to_string(source)
            .with_context(|| format!("cannot read routes file {}", source.display()))?;
        let at = Locator {
            file: source,
            text: &text,
        };
        let raw: RawFile = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| at.line_col(s.start)).unwrap_or_default();
            anyhow!("{}:{line}: {}", source.display(), e.message().trim_end())
        })?;
        let base = match source.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let server = server_settings(raw.server, &base, overrides, &at)?;
        let mut routes = Vec::with_capacity(raw.route.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for spanned in raw.route {
            let line = at.line(spanned.span().start);
            let raw = spanned.into_inner();
            let path = raw.path.clone();
            let route = validate_route(raw, &server.root)
                .map_err(|e| anyhow!("{}:{line}: route \"{path}\": {e:#}", source.display()))?;
            if let Some(first) = seen.insert(route.path.clone(), line) {
                bail!(
                    "{}:{line}: route \"{}\" is already declared on line {first}",
                    source.display(),
                    route.path
                );
            }
            routes.push(Route { line, ..route });
        }
        let types = content_types(raw.types, &at)?;
        let error_pages = error_pages(raw.errors, &server.root, &at)?;
        Ok(Config {
            source: Some(source.to_path_buf()),
            server,
            routes,
            types,
            error_pages,
        })
    }

    /// The configuration for serving one folder, without a routes file.
    pub fn for_folder(overrides: &Overrides) -> Result<Config> {
        let at = Locator {
            file: Path::new("--root"),
            text: "",
        };
        let server = server_settings(RawServer::default(), Path::new("."), overrides, &at)?;
        let folder = canonical_dir(&server.root).context("--root")?;
        let route = Route {
            path: "/".to_owned(),
            methods: Target::Dir(DirSpec::default()).default_methods(),
            target: Target::Dir(DirSpec {
                folder,
                index: DEFAULT_INDEX.to_owned(),
                listing: true,
                ..DirSpec::default()
            }),
            line: 0,
        };
        Ok(Config {
            source: None,
            server,
            routes: vec![route],
            types: HashMap::new(),
            error_pages: HashMap::new(),
        })
    }

    /// True when some route runs an action that keeps data.
    pub fn uses_store(&self) -> bool {
        self.routes
            .iter()
            .any(|r| matches!(r.target, Target::Action(_)))
    }
}

/// Turns byte offsets of the routes file into line numbers.
struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn line(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn line_col(&self, offset: usize) -> String {
        let offset = offset.min(self.text.len());
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let col = self.text[line_start..offset].chars().count() + 1;
        format!("{}:{col}", self.line(offset))
    }

    fn key_error(&self, span: Range<usize>, message: String) -> anyhow::Error {
        anyhow!(
            "{}:{}: {message}",
            self.file.display(),
            self.line(span.start)
        )
    }
}

fn server_settings(
    raw: RawServer,
    base: &Path,
    cli: &Overrides,
    at: &Locator<'_>,
) -> Result<Server> {
    let defaults = Limits::default();
    let l = raw.limits;
    let mut limits = Limits {
        max_head_bytes: limit(
            l.max_head_bytes,
            defaults.max_head_bytes,
            256..=1 << 20,
            at,
            "max_head_bytes",
        )?,
        max_uri_bytes: limit(
            l.max_uri_bytes,
            defaults.max_uri_bytes,
            16..=1 << 20,
            at,
            "max_uri_bytes",
        )?,
        max_headers: limit(
            l.max_headers,
            defaults.max_headers,
            1..=MAX_HEADERS_CEILING,
            at,
            "max_headers",
        )?,
        max_body_bytes: limit(
            l.max_body_bytes,
            defaults.max_body_bytes,
            0..=1 << 40,
            at,
            "max_body_bytes",
        )?,
    };
    limits.max_uri_bytes = limits.max_uri_bytes.min(limits.max_head_bytes);
    let fsync = match raw.fsync {
        None => SyncMode::default(),
        Some(name) => SyncMode::from_name(name.get_ref()).ok_or_else(|| {
            at.key_error(
                name.span(),
                "[server] fsync must be \"group\" or \"each\"".to_owned(),
            )
        })?,
    };
    Ok(Server {
        host: cli
            .host
            .clone()
            .or(raw.host)
            .unwrap_or_else(|| DEFAULT_HOST.to_owned()),
        port: cli.port.or(raw.port).unwrap_or(DEFAULT_PORT),
        root: cli
            .root
            .clone()
            .unwrap_or_else(|| base.join(raw.root.unwrap_or_default())),
        threads: cli.threads.or(raw.threads).unwrap_or(0),
        data: cli
            .data
            .clone()
            .unwrap_or_else(|| base.join(raw.data.unwrap_or_else(|| DEFAULT_DATA_DIR.into()))),
        fsync,
        limits,
    })
}

fn limit<T: Copy + PartialOrd + std::fmt::Display>(
    value: Option<Spanned<T>>,
    default: T,
    range: std::ops::RangeInclusive<T>,
    at: &Locator<'_>,
    key: &str,
) -> Result<T> {
    match value {
        None => Ok(default),
        Some(v) if !range.contains(v.get_ref()) => Err(at.key_error(
            v.span(),
            format!(
                "[server.limits] {key} must be between {} and {}",
                range.start(),
                range.end()
            ),
        )),
        Some(v) => Ok(v.into_inner()),
    }
}

fn validate_route(raw: RawRoute, root: &Path) -> Result<Route> {
    let fail = |message: String| anyhow!(message);
    check_route_path(&raw.path).map_err(|m| fail(m.to_owned()))?;
    let kinds: Vec<&str> = [
        ("file", raw.file.is_some()),
        ("page", raw.page.is_some()),
        ("dir", raw.dir.is_some()),
        ("action", raw.action.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => {
            return Err(fail(
                "needs one of `file`, `page`, `dir` or `action`".into(),
            ));
        }
        many => {
            return Err(fail(format!(
                "has {}: keep exactly one",
                many.join(" and ")
            )));
        }
    };
    let misplaced: [(&str, bool, &[&str]); 7] = [
        ("download", raw.download.is_some(), &["file"]),
        ("content_type", raw.content_type.is_some(), &["file"]),
        ("index", raw.index.is_some(), &["dir"]),
        ("listing", raw.listing.is_some(), &["dir"]),
        ("dotfiles", raw.dotfiles.is_some(), &["dir"]),
        ("symlinks", raw.symlinks.is_some(), &["dir"]),
        (
            "cache_control",
            raw.cache_control.is_some(),
            &["file", "page", "dir"],
        ),
    ];
    for (key, present, owners) in misplaced {
        if present && !owners.contains(&kind) {
            return Err(fail(format!(
                "key `{key}` only applies to {} routes",
                owners.join(", ")
            )));
        }
    }
    if let Some(value) = &raw.cache_control {
        check_header_value(value).map_err(|m| fail(format!("`cache_control` {m}")))?;
    }
    if let Some(value) = &raw.content_type {
        check_media_type(value).map_err(|m| fail(format!("`content_type` {m}")))?;
    }
    let symlinks = match raw.symlinks.as_deref() {
        None => Symlinks::default(),
        Some(name) => Symlinks::from_name(name).ok_or_else(|| {
            fail(format!(
                "`symlinks` must be one of {}",
                Symlinks::NAMES.join(", ")
            ))
        })?,
    };
    let has_param = raw.path.ends_with('}');
    let target = match kind {
        "file" => {
            let spec = file_spec(root, raw.file.as_deref(), raw.cache_control)?;
            Target::File(FileSpec {
                content_type: raw.content_type,
                download: raw.download.unwrap_or(false).then(|| spec.name.clone()),
                ..spec
            })
        }
        "page" => Target::Page(FileSpec {
            content_type: Some(TEXT_HTML.to_owned()),
            ..file_spec(root, raw.page.as_deref(), raw.cache_control)?
        }),
        "dir" => Target::Dir(DirSpec {
            folder: canonical_dir(&root.join(raw.dir.unwrap_or_default()))?,
            index: raw.index.unwrap_or_else(|| DEFAULT_INDEX.to_owned()),
            listing: raw.listing.unwrap_or(false),
            exposure: Exposure {
                dotfiles: raw.dotfiles.unwrap_or(false),
                symlinks,
            },
            cache_control: raw.cache_control,
        }),
        _ => {
            let name = raw.action.unwrap_or_default();
            let action = Action::from_name(&name).ok_or_else(|| {
                fail(format!(
                    "unknown action \"{name}\" (known: {})",
                    Action::names().join(", ")
                ))
            })?;
            if action.takes_id() != has_param {
                let want = if action.takes_id() {
                    "must end in `{id}`"
                } else {
                    "cannot take a `{id}` segment"
                };
                return Err(fail(format!("action \"{name}\" {want}")));
            }
            Target::Action(action)
        }
    };
    if has_param && !matches!(target, Target::Action(_)) {
        return Err(fail("only action routes can take a `{id}` segment".into()));
    }
    if let Target::Dir(spec) = &target
        && (spec.index.is_empty() || spec.index.contains('/'))
    {
        return Err(fail("`index` must be a file name".into()));
    }
    let supported = target.default_methods();
    let methods = match raw.methods {
        None => supported,
        Some(names) => {
            let mut set = Methods::NONE;
            for name in names {
                let m = Method::from_token(&name)
                    .ok_or_else(|| fail(format!("`methods`: unknown method \"{name}\"")))?;
                set = set.with(m);
                if m == Method::Get {
                    set = set.with(Method::Head);
                }
            }
            if !supported.covers(set) {
                return Err(fail(format!(
                    "`methods`: a {kind} route answers only {}",
                    supported.allow_header().trim_end_matches(", OPTIONS")
                )));
            }
            set
        }
    };
    Ok(Route {
        path: raw.path,
        methods,
        target,
        line: 0,
    })
}

/// A route path is absolute and already normalised; an action's may end in `{id}`.
fn check_route_path(path: &str) -> Result<(), &'static str> {
    let plain = path.strip_suffix("{id}").unwrap_or(path);
    if !plain.starts_with('/') {
        return Err("`path` must start with '/'");
    }
    if plain.contains(['?', '#', '%', '\\', '{', '}']) || plain.chars().any(char::is_control) {
        return Err(
            "`path` must be a plain path, without '?', '#', '%', '\\', braces or control characters",
        );
    }
    if plain.len() != path.len() && !plain.ends_with('/') {
        return Err("`{id}` must be a whole segment, as in \"/users/{id}\"");
    }
    match crate::path::normalize(plain) {
        Ok(n) if n == plain => Ok(()),
        _ => Err("`path` must be normalised: no '//', '.' or '..' segments"),
    }
}

fn file_spec(root: &Path, rel: Option<&Path>, cache_control: Option<String>) -> Result<FileSpec> {
    let file = root.join(rel.unwrap_or(Path::new("")));
    let meta = std::fs::metadata(&file)
        .map_err(|e| anyhow!("cannot use {}: {}", file.display(), crate::io_reason(&e)))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", file.display());
    }
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("{} has no UTF-8 file name", file.display()))?
        .to_owned();
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok(FileSpec {
        folder: canonical_dir(parent)?,
        name,
        file,
        content_type: None,
        download: None,
        cache_control,
    })
}

/// `[types]`: `ext = "type/subtype"`.
fn content_types(
    raw: BTreeMap<Spanned<String>, String>,
    at: &Locator<'_>,
) -> Result<HashMap<String, String>> {
    let mut types = HashMap::new();
    for (ext, value) in raw {
        let key = ext.get_ref();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(at.key_error(
                ext.span(),
                format!("[types] key \"{key}\" must be a file extension without the dot"),
            ));
        }
        check_media_type(&value)
            .map_err(|m| at.key_error(ext.span(), format!("[types] {key}: {m}")))?;
        types.insert(key.to_ascii_lowercase(), value);
    }
    Ok(types)
}

/// `[errors]`: `404 = "errors/404.html"`, read once at load.
fn error_pages(
    raw: BTreeMap<Spanned<String>, PathBuf>,
    root: &Path,
    at: &Locator<'_>,
) -> Result<HashMap<u16, Arc<[u8]>>> {
    let mut pages = HashMap::new();
    for (status, rel) in raw {
        let code = status
            .get_ref()
            .parse::<u16>()
            .ok()
            .filter(|c| (400..600).contains(c))
            .ok_or_else(|| {
                at.key_error(
                    status.span(),
                    format!(
                        "[errors] key \"{}\" must be a status from 400 to 599",
                        status.get_ref()
                    ),
                )
            })?;
        let path = root.join(&rel);
        let fail = |why: String| {
            at.key_error(
                status.span(),
                format!("[errors] {code}: cannot use {}: {why}", path.display()),
            )
        };
        let meta = std::fs::metadata(&path).map_err(|e| fail(crate::io_reason(&e)))?;
        if !meta.is_file() || meta.len() > MAX_ERROR_PAGE_BYTES {
            return Err(fail(format!(
                "not a regular file of at most {MAX_ERROR_PAGE_BYTES} bytes"
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| fail(crate::io_reason(&e)))?;
        pages.insert(code, Arc::from(bytes));
    }
    Ok(pages)
}

/// A value that can be sent as a header field value as it is.
fn check_header_value(value: &str) -> Result<(), &'static str> {
    if value.is_empty() || value.chars().any(|c| c.is_control() || !c.is_ascii()) {
        return Err("must be non-empty printable ASCII");
    }
    Ok(())
}

/// `type/subtype` with optional parameters.
fn check_media_type(value: &str) -> Result<(), &'static str> {
    check_header_value(value)?;
    let essence = value.split(';').next().unwrap_or("").trim();
    match essence.split_once('/') {
        Some((t, s)) if !t.is_empty() && !s.is_empty() && !s.contains('/') => Ok(()),
        _ => Err("must be a media type such as \"text/plain; charset=utf-8\""),
    }
}

fn canonical_dir(folder: &Path) -> Result<PathBuf> {
    let real = folder.canonicalize().map_err(|e| {
        anyhow!(
            "cannot use folder {}: {}",
            folder.display(),
            crate::io_reason(&e)
        )
    })?;
    if !real.is_dir() {
        bail!("{} is not a folder", folder.display());
    }
    Ok(real)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
