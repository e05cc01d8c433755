//! `[[collection]]`: a JSON collection's name, path and fields, checked into an
//! `api::schema::Collection` and the two routes that serve it (the list and its records).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use serde::Deserialize;
use toml::Spanned;

use super::Locator;
use super::routes::check_route_path;
use super::rules::{OneOrMany, RawCors, SiteRules};
use crate::api::Endpoint;
use crate::api::schema::{self as live, LiveSettings};
use crate::api::schema::{Collection, DEFAULT_MAX_BATCH, DEFAULT_MAX_PAGE_BYTES, Field, FieldType};
use crate::http::{Method, Methods};
use crate::routes::{Route, Target};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCollection {
    name: String,
    path: String,
    #[serde(default)]
    fields: BTreeMap<String, Spanned<RawField>>,
    form_redirect: Option<String>,
    require_if_match: Option<bool>,
    max_page_bytes: Option<usize>,
    max_batch: Option<usize>,
    methods: Option<Vec<String>>,
    compress: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
    cors: Option<RawCors>,
    auth: Option<String>,
    host: Option<OneOrMany>,
    allow: Option<Vec<String>>,
    events: Option<toml::Value>,
    max_event_bytes: Option<usize>,
    events_keep: Option<usize>,
    events_keep_for: Option<toml::Value>,
    events_heartbeat: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    #[serde(rename = "type")]
    kind: String,
    required: Option<bool>,
    trim: Option<bool>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    min: Option<f64>,
    max: Option<f64>,
    index: Option<bool>,
    search: Option<bool>,
}

/// The most `max_batch` may be: a batch is one transaction, held in memory.
const MAX_BATCH: usize = 10_000;

/// Names the server keeps in every record.
const RESERVED: [&str; 3] = ["id", "created", "updated"];

/// The methods a collection answers, on its list and on its records.
const LIST_METHODS: [Method; 3] = [Method::Get, Method::Head, Method::Post];
const RECORD_METHODS: [Method; 5] = [
    Method::Get,
    Method::Head,
    Method::Put,
    Method::Patch,
    Method::Delete,
];

/// The `users` collection the old user actions use when routes.toml declares none: a name
/// (`Nombre`) of 1 to 100 characters, as those actions always checked.
pub fn legacy_users() -> Collection {
    Collection {
        name: "users".into(),
        path: "/users".into(),
        fields: vec![Field {
            name: "Nombre".into(),
            kind: FieldType::String,
            required: true,
            trim: true,
            min_length: Some(1),
            max_length: Some(100),
            min: None,
            max: None,
            index: false,
            search: false,
        }],
        form_redirect: None,
        require_if_match: false,
        max_page_bytes: DEFAULT_MAX_PAGE_BYTES,
        max_batch: DEFAULT_MAX_BATCH,
        origin: None,
        live: Default::default(),
    }
}

/// Checks one `[[collection]]` declared on `line`; returns it and its routes.
pub(super) fn validate(
    mut raw: RawCollection,
    line: usize,
    rules: &SiteRules,
    at: &Locator<'_>,
) -> Result<(Arc<Collection>, Vec<Route>)> {
    let name = raw.name.clone();
    let fail = |message: String| {
        anyhow!(
            "{}:{line}: collection \"{name}\": {message}",
            at.file.display()
        )
    };
    let valid_name = name.len() <= 48
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid_name {
        bail!(
            "{}:{line}: collection \"{name}\": `name` must be lower-case letters, digits and '_', starting with a letter (at most 48)",
            at.file.display()
        );
    }
    if raw.path.contains('{') || raw.path == "/" || raw.path.ends_with('/') {
        return Err(fail(
            "`path` must name the list, as in \"/users\" (records are at path/{id})".into(),
        ));
    }
    check_route_path(&raw.path).map_err(|m| fail(m.to_owned()))?;
    if let Some(to) = &raw.form_redirect {
        let local = to.starts_with('/') && !to.starts_with("//");
        if !local || to.chars().any(|c| c.is_control() || c == ' ') {
            return Err(fail(
                "`form_redirect` must be a path on this site, such as \"/thanks?id={id}\"".into(),
            ));
        }
    }
    if raw.fields.is_empty() {
        return Err(fail(
            "declare its fields, as in fields.Nombre = { type = \"string\" }".into(),
        ));
    }
    let mut fields = Vec::with_capacity(raw.fields.len());
    for (field_name, spanned) in std::mem::take(&mut raw.fields) {
        let field_line = at.line(spanned.span().start);
        let field = check_field(field_name.clone(), spanned.into_inner()).map_err(|m| {
            anyhow!(
                "{}:{field_line}: collection \"{name}\": field \"{field_name}\": {m}",
                at.file.display()
            )
        })?;
        fields.push(field);
    }
    let allowed = match raw.methods.take() {
        None => Methods::of(&LIST_METHODS).union(Methods::of(&RECORD_METHODS)),
        Some(names) => {
            let mut set = Methods::NONE;
            for method in names {
                let m = Method::from_token(&method)
                    .filter(|m| LIST_METHODS.contains(m) || RECORD_METHODS.contains(m))
                    .ok_or_else(|| {
                        fail(format!(
                            "`methods`: \"{method}\" is not one of GET, HEAD, POST, PUT, PATCH, DELETE"
                        ))
                    })?;
                set = set.with(m);
                if m == Method::Get {
                    set = set.with(Method::Head);
                }
            }
            set
        }
    };
    let max_page_bytes = match raw.max_page_bytes {
        None => DEFAULT_MAX_PAGE_BYTES,
        Some(n) if (1024..=64 << 20).contains(&n) => n,
        Some(_) => {
            return Err(fail(
                "`max_page_bytes` must be between 1024 and 67108864".to_owned(),
            ));
        }
    };
    let max_batch = match raw.max_batch {
        None => DEFAULT_MAX_BATCH,
        Some(n) if (1..=MAX_BATCH).contains(&n) => n,
        Some(_) => {
            return Err(fail(format!(
                "`max_batch` must be between 1 and {MAX_BATCH}"
            )));
        }
    };
    let reads = allowed.contains(Method::Get);
    let live = live_settings(&raw, &raw.path, reads).map_err(fail)?;
    let events_path = live.events.clone();
    let collection = Arc::new(Collection {
        name: name.clone(),
        path: raw.path.clone(),
        fields,
        form_redirect: raw.form_redirect,
        require_if_match: raw.require_if_match.unwrap_or(false),
        max_page_bytes,
        max_batch,
        origin: Some(format!("{}:{line}", at.file.display())),
        live,
    });
    let site = rules
        .for_route(raw.headers, raw.cors, raw.auth, raw.host, raw.allow)
        .map_err(fail)?;
    let mut routes = Vec::new();
    for (item, methods) in [(false, &LIST_METHODS[..]), (true, &RECORD_METHODS[..])] {
        let methods = Methods::of(methods).intersect(allowed);
        if methods == Methods::NONE {
            continue;
        }
        routes.push(Route {
            path: if item {
                format!("{}/{{id}}", raw.path)
            } else {
                raw.path.clone()
            },
            methods,
            target: Target::Collection(Endpoint {
                collection: Arc::clone(&collection),
                item,
                lenient: false,
                events: false,
            }),
            line,
            compress: raw.compress.unwrap_or(true),
            hosts: site.hosts.clone(),
            headers: site.headers.clone(),
            cors: site.cors.clone(),
            auth: site.auth.clone(),
            allow: site.allow.clone(),
        });
    }
    // Live updates: the same host, allow, auth and CORS rules as reads; never compressed
    // (each event must leave as it happens).
    if let Some(path) = events_path {
        routes.push(Route {
            path,
            methods: Methods::of(&[Method::Get, Method::Head]),
            target: Target::Collection(Endpoint {
                collection: Arc::clone(&collection),
                item: false,
                lenient: false,
                events: true,
            }),
            line,
            compress: false,
            hosts: site.hosts.clone(),
            headers: site.headers.clone(),
            cors: site.cors.clone(),
            auth: site.auth.clone(),
            allow: site.allow.clone(),
        });
    }
    Ok((collection, routes))
}

/// A collection's live updates: `events` (a path, `true` for `path/events`, or `false`; on by
/// default where reads are allowed), the size past which an event carries only id and
/// version, what the change log keeps, and the heartbeat.
fn live_settings(raw: &RawCollection, path: &str, reads: bool) -> Result<LiveSettings, String> {
    let default_path = || format!("{path}/events");
    let events = match &raw.events {
        None if reads => Some(default_path()),
        None | Some(toml::Value::Boolean(false)) => None,
        Some(toml::Value::Boolean(true)) => Some(default_path()),
        Some(toml::Value::String(p)) => {
            check_route_path(p).map_err(|m| format!("`events`: {m}"))?;
            if p.contains('{') || p == path {
                return Err("`events` must be a path of its own, as in \"/users/events\"".into());
            }
            Some(p.clone())
        }
        Some(_) => {
            return Err("`events` must be a path (\"/users/events\"), true or false".into());
        }
    };
    let duration = |key: &str, value: &Option<toml::Value>, default| match value {
        None => Ok(default),
        Some(v) => super::acme::duration(v).map_err(|m| format!("`{key}`: {m}")),
    };
    let keep = raw.events_keep.unwrap_or(live::DEFAULT_KEEP);
    if !(1..=10_000_000).contains(&keep) {
        return Err("`events_keep` must be between 1 and 10000000".into());
    }
    let max_event_bytes = raw.max_event_bytes.unwrap_or(live::DEFAULT_MAX_EVENT_BYTES);
    if !(64..=16 << 20).contains(&max_event_bytes) {
        return Err("`max_event_bytes` must be between 64 and 16777216".into());
    }
    Ok(LiveSettings {
        events,
        max_event_bytes,
        keep,
        keep_for: duration(
            "events_keep_for",
            &raw.events_keep_for,
            live::DEFAULT_KEEP_FOR,
        )?,
        heartbeat: duration(
            "events_heartbeat",
            &raw.events_heartbeat,
            live::DEFAULT_HEARTBEAT,
        )?,
    })
}

fn check_field(name: String, raw: RawField) -> Result<Field, String> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(
            "a field name must be letters, digits and '_', not starting with a digit (at most 64)"
                .into(),
        );
    }
    if RESERVED.contains(&name.as_str()) {
        return Err(format!(
            "the server sets \"{name}\" itself; choose another name"
        ));
    }
    let kind = FieldType::from_name(&raw.kind)
        .ok_or_else(|| format!("`type` must be one of {}", FieldType::NAMES.join(", ")))?;
    let textual = kind.textual();
    let numeric = matches!(kind, FieldType::Integer | FieldType::Number);
    for (key, present, applies) in [
        ("min_length", raw.min_length.is_some(), textual),
        ("max_length", raw.max_length.is_some(), textual),
        ("trim", raw.trim.is_some(), textual),
        ("min", raw.min.is_some(), numeric),
        ("max", raw.max.is_some(), numeric),
    ] {
        if present && !applies {
            return Err(format!(
                "`{key}` does not apply to `type = \"{}\"`",
                kind.name()
            ));
        }
    }
    if let (Some(min), Some(max)) = (raw.min_length, raw.max_length)
        && min > max
    {
        return Err(format!(
            "`min_length` ({min}) is more than `max_length` ({max})"
        ));
    }
    if let (Some(min), Some(max)) = (raw.min, raw.max)
        && min > max
    {
        return Err(format!("`min` ({min}) is more than `max` ({max})"));
    }
    if raw.search == Some(true) && !matches!(kind, FieldType::String | FieldType::Email) {
        return Err(format!(
            "`search` applies to strings and emails, not `type = \"{}\"`",
            kind.name()
        ));
    }
    if raw.min.is_some_and(|n| !n.is_finite()) || raw.max.is_some_and(|n| !n.is_finite()) {
        return Err("`min` and `max` must be finite numbers".into());
    }
    Ok(Field {
        name,
        kind,
        required: raw.required.unwrap_or(false),
        trim: raw.trim.unwrap_or(textual),
        min_length: raw.min_length,
        max_length: raw.max_length,
        min: raw.min,
        max: raw.max,
        index: raw.index.unwrap_or(false),
        search: raw.search.unwrap_or(false),
    })
}

/// Where `[server] openapi = true` serves the collections' OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The route `[server] openapi = true` adds: the document at `OPENAPI_PATH`, under the
/// site's headers and CORS rules.
pub(super) fn openapi_route(rules: &SiteRules) -> Result<Route, String> {
    let site = rules.for_route(None, None, None, None, None)?;
    Ok(Route {
        path: OPENAPI_PATH.to_owned(),
        methods: Methods::of(&[Method::Get, Method::Head]),
        target: Target::Action(crate::routes::Action::OpenApi),
        line: 0,
        compress: true,
        hosts: site.hosts,
        headers: site.headers,
        cors: site.cors,
        auth: site.auth,
        allow: site.allow,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings(keys: &str, reads: bool) -> Result<LiveSettings, String> {
        let text = format!("name = \"users\"\npath = \"/users\"\n{keys}");
        let raw: RawCollection = toml::from_str(&text).unwrap();
        live_settings(&raw, "/users", reads)
    }

    #[test]
    fn events_are_on_where_reads_are_and_their_keys_are_checked() {
        let path = |keys: &str, reads| settings(keys, reads).map(|s| s.events);
        let table = [
            ("", true, Ok(Some("/users/events".to_owned()))),
            ("", false, Ok(None)),
            ("events = false", true, Ok(None)),
            ("events = true", false, Ok(Some("/users/events".to_owned()))),
            (
                "events = \"/live/users\"",
                true,
                Ok(Some("/live/users".to_owned())),
            ),
        ];
        for (keys, reads, want) in table {
            assert_eq!(path(keys, reads), want, "{keys}");
        }
        for refused in [
            "events = \"/users\"",
            "events = \"live\"",
            "events = \"/users/{id}\"",
            "events = 3",
            "events_keep = 0",
            "max_event_bytes = 10",
            "events_keep_for = \"soon\"",
            "events_heartbeat = 0",
        ] {
            assert!(settings(refused, true).is_err(), "{refused}");
        }
        let s = settings(
            "events_keep = 50\nevents_keep_for = \"2h\"\nevents_heartbeat = \"5s\"\nmax_event_bytes = 1024",
            true,
        )
        .unwrap();
        assert_eq!(
            (s.keep, s.keep_for, s.heartbeat, s.max_event_bytes),
            (50, Duration::from_secs(7200), Duration::from_secs(5), 1024)
        );
    }
}
