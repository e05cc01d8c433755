//! routes.toml → a validated, typed configuration. Every key, path and file is checked once, at
//! load; anything wrong is reported as one line naming the file, the line and the key.

mod acme;
mod collections;
mod folders;
mod routes;
mod rules;
mod server;
mod tls;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use toml::Spanned;

use crate::api::schema::Collection;
use crate::routes::{Action, DirSpec, Route, Target};
use crate::rules::headers::HeaderSet;
use crate::rules::hosts::HostPattern;
use routes::{RawRoute, canonical_dir, content_types, error_pages, validate_route};
use rules::SiteRules;
use server::{RawServer, server_settings};
use std::sync::Arc;

pub use acme::{AcmeSettings, Eab, read_roots};
pub use collections::{OPENAPI_PATH, legacy_users};
pub use routes::{DEFAULT_INDEX, MAX_ERROR_PAGE_BYTES};
pub use server::{DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, Server, StoreUrl, Timeouts};
pub use tls::TlsSettings;

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
    pub error_pages: HashMap<u16, bytes::Bytes>,
    /// Headers for responses no route made (`[headers]`, `--header`).
    pub headers: Option<Arc<HeaderSet>>,
    /// Declared collections (and `users` when the old user actions need it).
    pub collections: Vec<Arc<Collection>>,
    /// What was accepted but is worth saying (printed at start and at each reload).
    pub warnings: Vec<String>,
}

/// Values given on the command line; each one overrides the routes file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub root: Option<PathBuf>,
    pub threads: Option<usize>,
    pub data: Option<PathBuf>,
    /// `--store URL`: a PostgreSQL database for collections.
    pub store: Option<String>,
    /// `--access-log`: a file, or `-` for stdout.
    pub access_log: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: bool,
    pub redirect_http: Option<u16>,
    /// `--domain NAME`, repeatable: a certificate for them over ACME.
    pub domains: Vec<String>,
    /// `--acme-email ADDR`: the ACME account's contact.
    pub acme_email: Option<String>,
    pub no_compress: bool,
    pub compress_min_size: Option<u64>,
    /// `--header "Name: value"`, repeatable.
    pub headers: Vec<String>,
    /// `--cors`: any origin may read responses.
    pub cors: bool,
    /// `--auth USER:PHC`, repeatable.
    pub auth: Vec<String>,
    /// `--trusted-proxy NET`, repeatable.
    pub trusted_proxies: Vec<String>,
    /// `--cache-control VALUE`: for file, page and folder routes that set none.
    pub cache_control: Option<String>,
    /// Folder mode: `--upload` (files and new folders), `--delete`, `--rename`, and
    /// `--allow-anonymous-writes` (without `--auth`, off loopback).
    pub upload: bool,
    pub delete: bool,
    pub rename: bool,
    pub allow_anonymous_writes: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    collection: Vec<Spanned<collections::RawCollection>>,
    #[serde(default)]
    types: BTreeMap<Spanned<String>, String>,
    #[serde(default)]
    errors: BTreeMap<Spanned<String>, PathBuf>,
    #[serde(default)]
    headers: BTreeMap<Spanned<String>, String>,
    cors: Option<Spanned<rules::RawCors>>,
    #[serde(default)]
    auth: BTreeMap<Spanned<String>, Spanned<rules::RawRealm>>,
}

impl Config {
    /// Reads and validates a routes file, then applies the command-line overrides.
    pub fn load(source: &Path, overrides: &Overrides) -> Result<Config> {
        if overrides.upload || overrides.delete || overrides.rename {
            bail!(
                "--upload, --delete and --rename are for --root; with --config, say upload = true, delete = true or rename = true on the folder's route in {}",
                source.display()
            );
        }
        if overrides.allow_anonymous_writes {
            bail!(
                "--allow-anonymous-writes is for --root; with --config, say allow_anonymous_writes = true on the folder's route in {}",
                source.display()
            );
        }
        let text = std::fs::read_to_string(source)
            .with_context(|| format!("cannot read routes file {}", source.display()))?;
        let at = Locator {
            file: source,
            text: &text,
        };
        let raw: RawFile = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| at.line_col(s.start)).unwrap_or_default();
            anyhow!(
                "{}:{line}: {}",
                source.display(),
                plain_types(e.message().trim_end())
            )
        })?;
        let base = match source.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let server = server_settings(raw.server, &base, overrides, &at)?;
        let site = SiteRules::load(raw.headers, raw.cors, raw.auth, overrides, &at)?;
        let mut seen: HashMap<(String, Vec<HostPattern>), usize> = HashMap::new();
        let mut own_routes = Vec::new();
        let mut declared: Vec<Arc<Collection>> = Vec::new();
        for spanned in raw.collection {
            let line = at.line(spanned.span().start);
            let (collection, own) = collections::validate(spanned.into_inner(), line, &site, &at)?;
            if let Some(first) = declared.iter().find(|c| c.name == collection.name) {
                bail!(
                    "{}:{line}: collection \"{}\" is already declared (at {})",
                    source.display(),
                    collection.name,
                    first.path
                );
            }
            for route in own {
                if let Some(first) = seen.insert((route.path.clone(), route.hosts.clone()), line) {
                    bail!(
                        "{}:{line}: collection \"{}\": path \"{}\" is already declared on line {first}",
                        source.display(),
                        collection.name,
                        route.path
                    );
                }
                own_routes.push(route);
            }
            declared.push(collection);
        }
        // The old user actions use the declared `users` collection, or the one they always had.
        let mut legacy: Option<Arc<Collection>> = None;
        let declared_users = declared.iter().find(|c| c.name == "users").cloned();
        let mut users = || match &declared_users {
            Some(users) => Arc::clone(users),
            None => Arc::clone(legacy.get_or_insert_with(|| Arc::new(collections::legacy_users()))),
        };
        let mut routes = Vec::with_capacity(raw.route.len() + own_routes.len());
        for spanned in raw.route {
            let line = at.line(spanned.span().start);
            let raw = spanned.into_inner();
            let path = raw.path.clone();
            let route = validate_route(
                raw,
                &server.root,
                server.max_listing_entries,
                &site,
                server.loopback_only(),
                &mut users,
            )
            .map_err(|e| anyhow!("{}:{line}: route \"{path}\": {e:#}", source.display()))?;
            if let Some(first) = seen.insert((route.path.clone(), route.hosts.clone()), line) {
                bail!(
                    "{}:{line}: route \"{}\" is already declared on line {first}",
                    source.display(),
                    route.path
                );
            }
            routes.push(Route { line, ..route });
        }
        routes.extend(own_routes);
        if server.openapi
            && !routes
                .iter()
                .any(|r| matches!(r.target, Target::Action(Action::OpenApi)))
        {
            let route = collections::openapi_route(&site)
                .map_err(|e| anyhow!("{}: [server] openapi: {e}", source.display()))?;
            if let Some(first) = seen.insert((route.path.clone(), route.hosts.clone()), 0) {
                bail!(
                    "{}: [server] openapi = true serves {OPENAPI_PATH}, which line {first} already declares (or say action = \"openapi\" on a route of your own)",
                    source.display()
                );
            }
            routes.push(route);
        }
        default_cache_control(&mut routes, overrides)?;
        let mut server = server;
        if let Some(TlsSettings::Acme(acme)) = &mut server.tls {
            acme::domains_from_hosts(acme, routes.iter().flat_map(|r| &r.hosts), &at)?;
        }
        if !overrides.auth.is_empty()
            && !routes
                .iter()
                .any(|r| r.auth.as_ref().is_some_and(|a| a.name == rules::FLAG_REALM))
        {
            bail!(
                "--auth: no route of {} says auth = \"{}\"; add it to the routes to protect (with --config, --auth fills that realm and protects nothing else)",
                source.display(),
                rules::FLAG_REALM
            );
        }
        let mut collections = declared;
        collections.extend(legacy);
        let types = content_types(raw.types, &at)?;
        let error_pages = error_pages(raw.errors, &server.root, &at)?;
        Ok(Config {
            source: Some(source.to_path_buf()),
            server,
            routes,
            types,
            error_pages,
            headers: (!site.headers.is_empty()).then(|| Arc::new(site.headers)),
            collections,
            warnings: site.warnings,
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
        let site = SiteRules::load(BTreeMap::new(), None, BTreeMap::new(), overrides, &at)?;
        let auth = (!overrides.auth.is_empty()).then(|| rules::FLAG_REALM.to_owned());
        let protected = auth.is_some();
        let rules = site
            .for_route(None, None, auth, None, None)
            .map_err(anyhow::Error::msg)?;
        let raw_writes = folders::RawWrites {
            upload: Some(overrides.upload),
            mkdir: Some(overrides.upload),
            delete: Some(overrides.delete),
            rename: Some(overrides.rename),
            allow_anonymous_writes: Some(overrides.allow_anonymous_writes),
            ..folders::RawWrites::default()
        };
        let (writes, _) = raw_writes
            .check(&site, protected, server.loopback_only())
            .map_err(|_| {
                anyhow!(
                    "--upload, --delete and --rename let anyone who reaches the server change the folder: add --auth USER:HASH, or --allow-anonymous-writes on purpose (or listen on 127.0.0.1 only)"
                )
            })?;
        let spec = DirSpec {
            folder,
            index: DEFAULT_INDEX.to_owned(),
            listing: true,
            max_listing_entries: server.max_listing_entries,
            archives: true,
            writes,
            ..DirSpec::default()
        };
        let methods = Target::Dir(DirSpec::default())
            .default_methods()
            .union(spec.writes.methods());
        let mut routes = vec![Route {
            path: "/".to_owned(),
            methods,
            target: Target::Dir(spec),
            line: 0,
            compress: true,
            hosts: Vec::new(),
            headers: rules.headers,
            cors: rules.cors,
            auth: rules.auth,
            allow: None,
        }];
        default_cache_control(&mut routes, overrides)?;
        Ok(Config {
            source: None,
            server,
            routes,
            types: HashMap::new(),
            error_pages: HashMap::new(),
            headers: (!site.headers.is_empty()).then(|| Arc::new(site.headers)),
            collections: Vec::new(),
            warnings: site.warnings,
        })
    }

    /// True when some collection needs the database.
    pub fn uses_store(&self) -> bool {
        !self.collections.is_empty()
    }
}

/// Turns byte offsets of the routes file into line numbers.
/// `--cache-control` on the file, page and folder routes that set no `cache_control`.
fn default_cache_control(routes: &mut [Route], overrides: &Overrides) -> Result<()> {
    let Some(value) = &overrides.cache_control else {
        return Ok(());
    };
    routes::check_header_value(value).map_err(|m| anyhow!("--cache-control {m}"))?;
    for route in routes {
        let slot = match &mut route.target {
            Target::File(spec) | Target::Page(spec) => &mut spec.cache_control,
            Target::Dir(spec) => &mut spec.cache_control,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.clone());
        }
    }
    Ok(())
}

/// A TOML error's Rust type names in words: "expected u16" says "expected a whole number
/// from 0 to 65535".
fn plain_types(message: &str) -> String {
    let words = [
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u64", "expected a whole number of 0 or more"),
        ("expected usize", "expected a whole number of 0 or more"),
        ("expected f64", "expected a number"),
        ("expected a boolean", "expected true or false"),
        (
            "expected a sequence",
            "expected a list such as [\"a\", \"b\"]",
        ),
    ];
    let mut text = message.to_owned();
    for (rust, plain) in words {
        text = text.replace(rust, plain);
    }
    text
}

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

#[cfg(test)]
mod tests;
