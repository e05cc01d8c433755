//! Site rules in routes.toml: `[headers]`, `[cors]` and `[auth.NAME]` tables, and the route keys
//! that use them (`headers`, `cors`, `auth`, `host`), checked into the types of `rules`, with
//! the command line's `--header`, `--cors` and `--auth` over them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Result;
use serde::Deserialize;
use toml::Spanned;

use super::{Locator, Overrides};
use crate::http::{Method, Methods};
use crate::rules::auth::Realm;
use crate::rules::cors::Cors;
use crate::rules::headers::{self, HeaderSet};
use crate::rules::hosts::HostPattern;
use crate::rules::proxies::Net;

/// A string or a list of strings.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `cors = { ... }` on a route, or `[cors]`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCors {
    origins: OneOrMany,
    methods: Option<Vec<String>>,
    headers: Option<Vec<String>>,
    expose: Option<Vec<String>>,
    credentials: Option<bool>,
    max_age: Option<u64>,
}

/// `[auth.NAME]`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRealm {
    users: BTreeMap<String, String>,
}

/// The server-wide rules routes refer to.
#[derive(Debug, Default)]
pub(super) struct SiteRules {
    pub headers: HeaderSet,
    pub cors: Option<Arc<Cors>>,
    pub realms: HashMap<String, Arc<Realm>>,
    /// What is accepted but worth saying at load (file:line and key first).
    pub warnings: Vec<String>,
}

/// The name of the realm `--auth` users belong to.
pub const FLAG_REALM: &str = "tws";

impl SiteRules {
    /// `[headers]`, `[cors]` and `[auth.*]`, with the command line over them.
    pub(super) fn load(
        headers: BTreeMap<Spanned<String>, String>,
        cors: Option<Spanned<RawCors>>,
        auth: BTreeMap<Spanned<String>, Spanned<RawRealm>>,
        cli: &Overrides,
        at: &Locator<'_>,
    ) -> Result<SiteRules> {
        let mut pairs = Vec::new();
        for (name, value) in headers {
            let span = name.span();
            let name = name.into_inner();
            HeaderSet::new(vec![(name.clone(), value.clone())])
                .map_err(|why| at.key_error(span, format!("[headers] {why}")))?;
            pairs.push((name, value));
        }
        let mut set = HeaderSet::new(pairs).map_err(anyhow::Error::msg)?;
        if !cli.headers.is_empty() {
            let flags = cli
                .headers
                .iter()
                .map(|h| headers::parse_flag(h))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let flags = HeaderSet::new(flags).map_err(|why| anyhow::anyhow!("--header: {why}"))?;
            set = set.merged(&flags);
        }
        let cors = match (cli.cors, cors) {
            (true, _) => Some(Arc::new(Cors {
                origins: None,
                methods: None,
                headers: Vec::new(),
                expose: Vec::new(),
                credentials: false,
                max_age: None,
            })),
            (false, Some(raw)) => {
                let span = raw.span();
                Some(Arc::new(cors_from(raw.into_inner()).map_err(|why| {
                    at.key_error(span, format!("[cors] {why}"))
                })?))
            }
            (false, None) => None,
        };
        let mut realms = HashMap::new();
        let mut warnings = Vec::new();
        for (name, raw) in auth {
            let span = raw.span();
            let users: HashMap<String, String> = raw.into_inner().users.into_iter().collect();
            let (realm, notes) = Realm::new(name.get_ref().clone(), users).map_err(|why| {
                at.key_error(span.clone(), format!("[auth.{}] {why}", name.get_ref()))
            })?;
            for note in notes {
                warnings.push(format!(
                    "{}:{}: [auth.{}] {note}",
                    at.file.display(),
                    at.line(span.start),
                    name.get_ref()
                ));
            }
            realms.insert(name.into_inner(), Arc::new(realm));
        }
        if !cli.auth.is_empty() {
            if realms.contains_key(FLAG_REALM) {
                anyhow::bail!(
                    "--auth: {} already declares [auth.{FLAG_REALM}]; add the user there, or drop --auth",
                    at.file.display()
                );
            }
            let mut users = HashMap::new();
            for flag in &cli.auth {
                let (user, phc) = flag.split_once(':').ok_or_else(|| {
                    anyhow::anyhow!("--auth {flag:?}: expected USER:HASH (an argon2id PHC string)")
                })?;
                users.insert(user.to_owned(), phc.to_owned());
            }
            let (realm, notes) = Realm::new(FLAG_REALM.to_owned(), users)
                .map_err(|why| anyhow::anyhow!("--auth: {why}"))?;
            warnings.extend(notes.into_iter().map(|note| format!("--auth: {note}")));
            realms.insert(FLAG_REALM.to_owned(), Arc::new(realm));
        }
        Ok(SiteRules {
            headers: set,
            cors,
            realms,
            warnings,
        })
    }

    /// A route's rules: its headers over the server's, its CORS (or the server's), its realm
    /// and its hosts. Errors say which key.
    pub(super) fn for_route(
        &self,
        headers: Option<BTreeMap<String, String>>,
        cors: Option<RawCors>,
        auth: Option<String>,
        hosts: Option<OneOrMany>,
        allow: Option<Vec<String>>,
    ) -> Result<RouteRules, String> {
        let mut set = self.headers.clone();
        if let Some(own) = headers {
            let own = HeaderSet::new(own.into_iter().collect())
                .map_err(|why| format!("`headers`: {why}"))?;
            set = set.merged(&own);
        }
        let cors = match cors {
            Some(raw) => Some(Arc::new(
                cors_from(raw).map_err(|why| format!("`cors`: {why}"))?,
            )),
            None => self.cors.clone(),
        };
        let auth = match auth {
            None => None,
            Some(name) => Some(Arc::clone(self.realms.get(&name).ok_or_else(|| {
                let mut known: Vec<&str> = self.realms.keys().map(String::as_str).collect();
                known.sort_unstable();
                format!(
                    "`auth`: no realm \"{name}\" (declare [auth.{name}]; known: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )
            })?)),
        };
        let mut patterns = Vec::new();
        for host in hosts.map(OneOrMany::into_vec).unwrap_or_default() {
            let pattern = HostPattern::parse(&host).map_err(|why| format!("`host`: {why}"))?;
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        patterns.sort();
        let allow = match allow {
            None => None,
            Some(list) => {
                let nets = list
                    .iter()
                    .map(|n| Net::parse(n))
                    .collect::<Result<Vec<Net>, String>>()
                    .map_err(|why| format!("`allow`: {why}"))?;
                if nets.is_empty() {
                    return Err("`allow` is empty: no one could use the route".to_owned());
                }
                Some(Arc::from(nets))
            }
        };
        Ok(RouteRules {
            headers: (!set.is_empty()).then(|| Arc::new(set)),
            cors,
            auth,
            hosts: patterns,
            allow,
        })
    }
}

/// What a route gets from the site rules.
pub(super) struct RouteRules {
    pub headers: Option<Arc<HeaderSet>>,
    pub cors: Option<Arc<Cors>>,
    pub auth: Option<Arc<Realm>>,
    pub hosts: Vec<HostPattern>,
    pub allow: Option<Arc<[Net]>>,
}

fn cors_from(raw: RawCors) -> Result<Cors, String> {
    let origins = match raw.origins {
        OneOrMany::One(s) if s == "*" => None,
        other => Some(other.into_vec()),
    };
    let methods = match raw.methods {
        None => None,
        Some(names) => {
            let mut set = Methods::NONE;
            for name in names {
                let m = Method::from_token(&name)
                    .ok_or_else(|| format!("unknown method \"{name}\" in methods"))?;
                set = set.with(m);
            }
            Some(set)
        }
    };
    let lower = |v: Option<Vec<String>>| {
        v.unwrap_or_default()
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    let cors = Cors {
        origins,
        methods,
        headers: lower(raw.headers),
        expose: lower(raw.expose),
        credentials: raw.credentials.unwrap_or(false),
        max_age: raw.max_age,
    };
    cors.validate()?;
    Ok(cors)
}
