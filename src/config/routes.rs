//! `[[route]]`, `[types]` and `[errors]`: each route checked into a typed `Route`, with every
//! file and folder it names looked up once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use bytes::Bytes;
use serde::Deserialize;
use toml::Spanned;

use super::Locator;
use super::folders::RawWrites;
use super::rules::{OneOrMany, RawCors, SiteRules};
use crate::api::Endpoint;
use crate::api::schema::Collection;
use crate::http::response::TEXT_HTML;
use crate::http::{Method, Methods};
use crate::path::{Exposure, Symlinks};
use crate::routes::{Action, DirSpec, FileSpec, RedirectSpec, Route, Target};
use crate::rules::proxies::Net;
use std::sync::Arc;

pub const DEFAULT_INDEX: &str = "index.html";

/// Largest custom error page accepted, in bytes.
pub const MAX_ERROR_PAGE_BYTES: u64 = 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) path: String,
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
    max_listing_entries: Option<usize>,
    compress: Option<bool>,
    redirect: Option<String>,
    status: Option<u16>,
    clean_urls: Option<bool>,
    fallback: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    cors: Option<RawCors>,
    auth: Option<String>,
    host: Option<OneOrMany>,
    allow: Option<Vec<String>>,
    archives: Option<bool>,
    upload: Option<bool>,
    mkdir: Option<bool>,
    delete: Option<bool>,
    rename: Option<bool>,
    overwrite: Option<bool>,
    max_upload_bytes: Option<u64>,
    write_auth: Option<String>,
    allow_anonymous_writes: Option<bool>,
}

/// The actions of earlier versions that kept users, now routes onto the `users` collection:
/// (name, on a record, undeclared fields ignored, methods).
const OLD_USER_ACTIONS: [(&str, bool, bool, &[Method]); 3] = [
    ("create_user", false, true, &[Method::Post]),
    ("list_users", false, false, &[Method::Get, Method::Head]),
    ("get_user", true, false, &[Method::Get, Method::Head]),
];

/// What a route serves, by the key that names its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Page,
    Dir,
    Action,
    Redirect,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Page => "page",
            Kind::Dir => "dir",
            Kind::Action => "action",
            Kind::Redirect => "redirect",
        }
    }
}

/// Bounds of `max_listing_entries`.
pub const LISTING_ENTRIES_RANGE: std::ops::RangeInclusive<usize> = 1..=1_000_000;

/// Checks one route; `root` is the folder its paths are relative to, `page_size` the default
/// of `max_listing_entries`, `rules` the site rules it may refer to.
pub(super) fn validate_route(
    raw: RawRoute,
    root: &Path,
    page_size: usize,
    rules: &SiteRules,
    loopback: bool,
    users: &mut dyn FnMut() -> Arc<Collection>,
) -> Result<Route> {
    let fail = |message: String| anyhow!(message);
    check_route_path(&raw.path).map_err(|m| fail(m.to_owned()))?;
    let kinds: Vec<Kind> = [
        (Kind::File, raw.file.is_some()),
        (Kind::Page, raw.page.is_some()),
        (Kind::Dir, raw.dir.is_some()),
        (Kind::Action, raw.action.is_some()),
        (Kind::Redirect, raw.redirect.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    let kind = match kinds.as_slice() {
        [one] => *one,
        [] => {
            return Err(fail(
                "needs one of `file`, `page`, `dir`, `action` or `redirect`".into(),
            ));
        }
        many => {
            let names: Vec<&str> = many.iter().map(|k| k.name()).collect();
            return Err(fail(format!(
                "has {}: keep exactly one",
                names.join(" and ")
            )));
        }
    };
    let raw_writes = RawWrites {
        upload: raw.upload,
        mkdir: raw.mkdir,
        delete: raw.delete,
        rename: raw.rename,
        overwrite: raw.overwrite,
        max_upload_bytes: raw.max_upload_bytes,
        write_auth: raw.write_auth.clone(),
        allow_anonymous_writes: raw.allow_anonymous_writes,
    };
    let misplaced: [(&str, bool, &[&str]); 13] = [
        ("archives", raw.archives.is_some(), &["dir"]),
        (
            raw_writes.present().unwrap_or("upload"),
            raw_writes.present().is_some(),
            &["dir"],
        ),
        ("status", raw.status.is_some(), &["redirect"]),
        ("clean_urls", raw.clean_urls.is_some(), &["dir"]),
        ("fallback", raw.fallback.is_some(), &["dir"]),
        ("download", raw.download.is_some(), &["file"]),
        ("content_type", raw.content_type.is_some(), &["file"]),
        ("index", raw.index.is_some(), &["dir"]),
        ("listing", raw.listing.is_some(), &["dir"]),
        ("dotfiles", raw.dotfiles.is_some(), &["dir"]),
        ("symlinks", raw.symlinks.is_some(), &["dir"]),
        (
            "max_listing_entries",
            raw.max_listing_entries.is_some(),
            &["dir"],
        ),
        (
            "cache_control",
            raw.cache_control.is_some(),
            &["file", "page", "dir"],
        ),
    ];
    for (key, present, owners) in misplaced {
        if present && !owners.contains(&kind.name()) {
            return Err(fail(format!(
                "key `{key}` only applies to {} routes",
                owners.join(", ")
            )));
        }
    }
    if let Some(n) = raw.max_listing_entries
        && !LISTING_ENTRIES_RANGE.contains(&n)
    {
        return Err(fail(format!(
            "`max_listing_entries` must be between {} and {}",
            LISTING_ENTRIES_RANGE.start(),
            LISTING_ENTRIES_RANGE.end()
        )));
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
    let mut supported = Methods::NONE;
    let target = match kind {
        Kind::File => {
            let spec = file_spec(root, raw.file.as_deref(), raw.cache_control)?;
            Target::File(FileSpec {
                content_type: raw.content_type,
                download: raw.download.unwrap_or(false).then(|| spec.name.clone()),
                ..spec
            })
        }
        Kind::Page => Target::Page(FileSpec {
            content_type: Some(TEXT_HTML.to_owned()),
            ..file_spec(root, raw.page.as_deref(), raw.cache_control)?
        }),
        Kind::Redirect => {
            Target::Redirect(redirect_spec(raw.redirect.unwrap_or_default(), raw.status)?)
        }
        Kind::Dir => Target::Dir(DirSpec {
            folder: canonical_dir(&root.join(raw.dir.unwrap_or_default()))?,
            clean_urls: raw.clean_urls.unwrap_or(false),
            fallback: raw.fallback,
            index: raw.index.unwrap_or_else(|| DEFAULT_INDEX.to_owned()),
            listing: raw.listing.unwrap_or(false),
            max_listing_entries: raw.max_listing_entries.unwrap_or(page_size),
            exposure: Exposure {
                dotfiles: raw.dotfiles.unwrap_or(false),
                symlinks,
            },
            cache_control: raw.cache_control,
            writes: {
                let protected = raw.auth.is_some();
                raw_writes
                    .check(rules, protected, loopback)
                    .map_err(fail)?
                    .0
            },
            archives: match (raw.archives, raw.listing) {
                (Some(true), None | Some(false)) => {
                    return Err(fail(
                        "`archives` offers listed folders: add listing = true".to_owned(),
                    ));
                }
                (archives, _) => archives.unwrap_or(false),
            },
        }),
        Kind::Action => {
            let name = raw.action.unwrap_or_default();
            let old = OLD_USER_ACTIONS.iter().find(|(old, ..)| *old == name);
            let takes_id = old.is_some_and(|(_, item, ..)| *item);
            if takes_id != has_param {
                let want = if takes_id {
                    "must end in `{id}`"
                } else {
                    "cannot take a `{id}` segment"
                };
                return Err(fail(format!("action \"{name}\" {want}")));
            }
            match old {
                Some((_, item, lenient, methods)) => {
                    supported = Methods::of(methods);
                    Target::Collection(Endpoint {
                        collection: users(),
                        item: *item,
                        lenient: *lenient,
                        events: false,
                    })
                }
                None => Target::Action(Action::from_name(&name).ok_or_else(|| {
                    let mut known = Action::names();
                    known.extend(OLD_USER_ACTIONS.iter().map(|(name, ..)| *name));
                    fail(format!(
                        "unknown action \"{name}\" (known: {})",
                        known.join(", ")
                    ))
                })?),
            }
        }
    };
    if has_param && !matches!(target, Target::Collection(_)) {
        return Err(fail("only action routes can take a `{id}` segment".into()));
    }
    if let Target::Dir(spec) = &target
        && (spec.index.is_empty() || spec.index.contains('/'))
    {
        return Err(fail("`index` must be a file name".into()));
    }
    if let Target::Dir(spec) = &target
        && let Some(fallback) = &spec.fallback
    {
        let ok = crate::path::normalize(&format!("/{fallback}"))
            .is_ok_and(|p| p == format!("/{fallback}"))
            && crate::path::resolve_in(&spec.folder, fallback, spec.exposure)
                .is_ok_and(|p| p.is_file());
        if !ok {
            return Err(fail(format!(
                "`fallback`: \"{fallback}\" is not a file inside {}",
                spec.folder.display()
            )));
        }
    }
    if !matches!(target, Target::Collection(_)) {
        supported = target.default_methods();
        if let Target::Dir(spec) = &target {
            supported = supported.union(spec.writes.methods());
        }
    }
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
                    "`methods`: a {} route answers only {}",
                    kind.name(),
                    supported.allow_header().trim_end_matches(", OPTIONS")
                )));
            }
            set
        }
    };
    let rules = rules
        .for_route(raw.headers, raw.cors, raw.auth, raw.host, raw.allow)
        .map_err(fail)?;
    let target_is_metrics = matches!(target, Target::Action(Action::Metrics));
    Ok(Route {
        path: raw.path,
        methods,
        target,
        line: 0,
        compress: raw.compress.unwrap_or(true),
        hosts: rules.hosts,
        headers: rules.headers,
        cors: rules.cors,
        allow: rules.allow.or_else(|| {
            // Metrics name every route and count its logins: only this machine reads them,
            // unless the route says who else may (`auth` or `allow`).
            (target_is_metrics && rules.auth.is_none()).then(loopback_nets)
        }),
        auth: rules.auth,
    })
}

/// Loopback addresses, IPv4 and IPv6.
fn loopback_nets() -> Arc<[Net]> {
    ["127.0.0.0/8", "::1"]
        .iter()
        .map(|n| Net::parse(n).expect("a valid network"))
        .collect()
}

/// `redirect = "..."` with `status`: a path on this site or an absolute http(s) URL, written
/// as it will be sent.
fn redirect_spec(to: String, status: Option<u16>) -> Result<RedirectSpec> {
    let status = status.unwrap_or(308);
    if ![301, 302, 303, 307, 308].contains(&status) {
        bail!("`status` must be 301, 302, 303, 307 or 308");
    }
    let absolute = to.starts_with("https://") || to.starts_with("http://");
    let valid = (to.starts_with('/') && !to.starts_with("//") || absolute)
        && !to.is_empty()
        && to.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        bail!(
            "`redirect` must be a path such as \"/new\" or a URL such as \"https://example.com/\" (printable ASCII, no spaces)"
        );
    }
    Ok(RedirectSpec { to, status })
}

/// A route path is absolute and already normalised; an action's may end in `{id}`.
pub(super) fn check_route_path(path: &str) -> Result<(), &'static str> {
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
    let meta = std::fs::metadata(&file).map_err(|e| {
        anyhow!(
            "cannot use {}: {}",
            file.display(),
            crate::log::io_reason(&e)
        )
    })?;
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
pub(super) fn content_types(
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
pub(super) fn error_pages(
    raw: BTreeMap<Spanned<String>, PathBuf>,
    root: &Path,
    at: &Locator<'_>,
) -> Result<HashMap<u16, Bytes>> {
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
        let meta = std::fs::metadata(&path).map_err(|e| fail(crate::log::io_reason(&e)))?;
        if !meta.is_file() || meta.len() > MAX_ERROR_PAGE_BYTES {
            return Err(fail(format!(
                "not a regular file of at most {MAX_ERROR_PAGE_BYTES} bytes"
            )));
        }
        let bytes = std::fs::read(&path).map_err(|e| fail(crate::log::io_reason(&e)))?;
        pages.insert(code, Bytes::from(bytes));
    }
    Ok(pages)
}

/// A value that can be sent as a header field value as it is.
pub(super) fn check_header_value(value: &str) -> Result<(), &'static str> {
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

pub(super) fn canonical_dir(folder: &Path) -> Result<PathBuf> {
    let real = folder.canonicalize().map_err(|e| {
        anyhow!(
            "cannot use folder {}: {}",
            folder.display(),
            crate::log::io_reason(&e)
        )
    })?;
    if !real.is_dir() {
        bail!("{} is not a folder", folder.display());
    }
    Ok(real)
}
