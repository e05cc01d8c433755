//! The `[server]` table: address, folders, workers, limits and timeouts, combined with the
//! command-line overrides.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;
use toml::Spanned;

use super::tls::{RawTls, TlsSettings, tls_settings};
use super::{Locator, Overrides};
use crate::api::store::SyncMode;
use crate::http::Limits;
use crate::http::request::MAX_HEADERS_CEILING;
use crate::rules::proxies::{Net, TrustedProxies};

pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 8080;
pub const DEFAULT_DATA_DIR: &str = "data";
/// The name that sends the access log to stdout.
pub const STDOUT: &str = "-";

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
    /// A PostgreSQL URL: collections live there instead of the embedded database.
    pub store: Option<StoreUrl>,
    pub limits: Limits,
    /// Most connections open at once; `None` means as many as the descriptor limit allows.
    pub max_connections: Option<usize>,
    /// A response slower than this (bytes per second, averaged over the send timeout) is cut off;
    /// 0 turns the check off.
    pub min_send_rate: u64,
    pub timeouts: Timeouts,
    /// Where the access log goes: a file, or stdout when `None`.
    pub access_log: Option<PathBuf>,
    /// Default most entries on one page of a folder listing.
    pub max_listing_entries: usize,
    /// Most request-body bytes held in memory across all connections.
    pub max_body_memory: usize,
    /// HTTPS on the main listener.
    pub tls: Option<TlsSettings>,
    /// A plain-HTTP listener on this port redirecting to HTTPS.
    pub redirect_http: Option<u16>,
    /// Compression on the fly.
    pub compression: crate::compress::Settings,
    /// Peers whose word about the client's address is taken.
    pub trusted_proxies: TrustedProxies,
    /// Serve the collections' OpenAPI document at `/openapi.json`.
    pub openapi: bool,
}

impl Server {
    /// True when the server listens on a loopback address only (`127.0.0.1`, `::1`,
    /// `localhost`): nothing off this machine reaches it.
    pub fn loopback_only(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// A database URL, which may hold a password: shown without it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreUrl(pub String);

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreUrl(..)")
    }
}

/// Default body budget: 64 MiB, room for 64 bodies of the default largest size at once.
pub const DEFAULT_MAX_BODY_MEMORY: u64 = 64 << 20;

/// Default minimum send rate: 1 KiB/s.
pub const DEFAULT_MIN_SEND_RATE: u64 = 1024;

/// How long a client may take at each stage before its connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the connection (or the first byte of a later request) to the end of the head.
    pub header: Duration,
    /// To receive a whole request body.
    pub body: Duration,
    /// A keep-alive connection waiting for its next request.
    pub idle: Duration,
    /// Without progress while sending a response; also the window of the minimum send rate.
    pub send: Duration,
    /// Reading and dropping input after the response before a closing connection is released.
    pub linger: Duration,
    /// After SIGTERM or SIGINT, how long requests in flight may take to finish.
    pub shutdown_grace: Duration,
    /// After SIGTERM, how long tws keeps serving while `/healthz` says it is draining, so that
    /// a load balancer stops sending before it stops accepting.
    pub drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            send: Duration::from_secs(30),
            linger: Duration::from_secs(2),
            shutdown_grace: Duration::from_secs(30),
            drain: Duration::ZERO,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    host: Option<String>,
    port: Option<u16>,
    root: Option<PathBuf>,
    threads: Option<usize>,
    data: Option<PathBuf>,
    fsync: Option<Spanned<String>>,
    store: Option<String>,
    access_log: Option<PathBuf>,
    trusted_proxies: Option<Spanned<Vec<String>>>,
    max_listing_entries: Option<Spanned<usize>>,
    tls: Option<Spanned<RawTls>>,
    compression: Option<Spanned<RawCompression>>,
    openapi: Option<bool>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    timeouts: RawTimeouts,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_head_bytes: Option<Spanned<usize>>,
    max_uri_bytes: Option<Spanned<usize>>,
    max_headers: Option<Spanned<usize>>,
    max_body_bytes: Option<Spanned<u64>>,
    max_body_memory: Option<Spanned<u64>>,
    max_connections: Option<Spanned<usize>>,
    min_send_rate: Option<Spanned<u64>>,
}

/// `[server.compression]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCompression {
    enabled: Option<bool>,
    encodings: Option<Vec<String>>,
    min_size: Option<u64>,
    /// Compressible types, added to the built-in list (or replacing it with `replace_types`).
    types: Option<Vec<String>>,
    replace_types: Option<bool>,
}

/// `[server.timeouts]`, in seconds (fractions allowed).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    header: Option<Spanned<f64>>,
    body: Option<Spanned<f64>>,
    idle: Option<Spanned<f64>>,
    send: Option<Spanned<f64>>,
    shutdown_grace: Option<Spanned<f64>>,
    drain: Option<Spanned<f64>>,
}

pub(super) fn server_settings(
    raw: RawServer,
    base: &Path,
    cli: &Overrides,
    at: &Locator<'_>,
) -> Result<Server> {
    let defaults = Limits::default();
    let l = raw.limits;
    let key = |name: &str| format!("[server.limits] {name}");
    let mut limits = Limits {
        max_head_bytes: ranged(
            l.max_head_bytes,
            defaults.max_head_bytes,
            256..=1 << 20,
            at,
            &key("max_head_bytes"),
        )?,
        max_uri_bytes: ranged(
            l.max_uri_bytes,
            defaults.max_uri_bytes,
            16..=1 << 20,
            at,
            &key("max_uri_bytes"),
        )?,
        max_headers: ranged(
            l.max_headers,
            defaults.max_headers,
            1..=MAX_HEADERS_CEILING,
            at,
            &key("max_headers"),
        )?,
        max_body_bytes: ranged(
            l.max_body_bytes,
            defaults.max_body_bytes,
            0..=1 << 40,
            at,
            &key("max_body_bytes"),
        )?,
    };
    limits.max_uri_bytes = limits.max_uri_bytes.min(limits.max_head_bytes);
    let memory_span = l.max_body_memory.as_ref().map(|v| v.span());
    let max_body_memory = ranged(
        l.max_body_memory,
        DEFAULT_MAX_BODY_MEMORY.max(limits.max_body_bytes),
        1 << 20..=1 << 40,
        at,
        &key("max_body_memory"),
    )?;
    if max_body_memory < limits.max_body_bytes {
        return Err(at.key_error(
            memory_span.unwrap_or(0..0),
            format!(
                "[server.limits] max_body_memory ({max_body_memory}) must be at least max_body_bytes ({}), or no body that large could ever be read",
                limits.max_body_bytes
            ),
        ));
    }
    let max_connections = match l.max_connections {
        None => None,
        Some(v) => Some(ranged(
            Some(v),
            0,
            1..=10_000_000,
            at,
            &key("max_connections"),
        )?),
    };
    let min_send_rate = ranged(
        l.min_send_rate,
        DEFAULT_MIN_SEND_RATE,
        0..=1 << 40,
        at,
        &key("min_send_rate"),
    )?;
    let max_listing_entries = ranged(
        raw.max_listing_entries,
        crate::handlers::listing::DEFAULT_MAX_ENTRIES,
        super::routes::LISTING_ENTRIES_RANGE,
        at,
        "[server] max_listing_entries",
    )?;
    let fsync = match raw.fsync {
        None => SyncMode::default(),
        Some(name) => SyncMode::from_name(name.get_ref()).ok_or_else(|| {
            at.key_error(
                name.span(),
                "[server] fsync must be \"group\" or \"each\"".to_owned(),
            )
        })?,
    };
    let t = raw.timeouts;
    let d = Timeouts::default();
    let timeouts = Timeouts {
        header: seconds(t.header, d.header, at, "header")?,
        body: seconds(t.body, d.body, at, "body")?,
        idle: seconds(t.idle, d.idle, at, "idle")?,
        send: seconds(t.send, d.send, at, "send")?,
        linger: d.linger,
        shutdown_grace: seconds(t.shutdown_grace, d.shutdown_grace, at, "shutdown_grace")?,
        drain: match t.drain {
            Some(v) if *v.get_ref() == 0.0 => Duration::ZERO,
            other => seconds(other, d.drain, at, "drain")?,
        },
    };
    let (tls, redirect_http) = tls_settings(raw.tls, base, cli, at)?;
    // ACME: a public server, on the HTTPS port of every interface unless told otherwise.
    let acme = tls.as_ref().is_some_and(|t| t.acme().is_some());
    let port = cli
        .port
        .or(raw.port)
        .unwrap_or(if acme { 443 } else { DEFAULT_PORT });
    if redirect_http.is_some_and(|r| r == port && port != 0) {
        return Err(if at.text.is_empty() {
            anyhow::anyhow!("--redirect-http ({port}) must differ from --port")
        } else {
            anyhow::anyhow!(
                "{}: redirect_http ({port}) must differ from the TLS port",
                at.file.display()
            )
        });
    }
    let data = cli
        .data
        .clone()
        .unwrap_or_else(|| base.join(raw.data.unwrap_or_else(|| DEFAULT_DATA_DIR.into())));
    let compression = crate::compress::Settings {
        spool: Some(data.clone()),
        ..compression_settings(raw.compression, cli, at)?
    };
    let trusted_proxies = if cli.trusted_proxies.is_empty() {
        let span = raw.trusted_proxies.as_ref().map_or(0..0, |l| l.span());
        let list = raw
            .trusted_proxies
            .map(Spanned::into_inner)
            .unwrap_or_default();
        let nets = list
            .iter()
            .map(|n| Net::parse(n))
            .collect::<Result<Vec<_>, _>>();
        nets.map_err(|why| at.key_error(span, format!("[server] trusted_proxies: {why}")))?
    } else {
        let nets = cli.trusted_proxies.iter().map(|n| Net::parse(n));
        nets.collect::<Result<Vec<_>, _>>()
            .map_err(|why| anyhow::anyhow!("--trusted-proxy: {why}"))?
    };
    Ok(Server {
        host: cli
            .host
            .clone()
            .or(raw.host)
            .unwrap_or_else(|| if acme { "0.0.0.0" } else { DEFAULT_HOST }.to_owned()),
        port,
        root: cli
            .root
            .clone()
            .unwrap_or_else(|| base.join(raw.root.unwrap_or_default())),
        threads: cli.threads.or(raw.threads).unwrap_or(0),
        data,
        fsync,
        store: cli.store.clone().or(raw.store).map(StoreUrl),
        limits,
        max_connections,
        min_send_rate,
        timeouts,
        access_log: match (cli.access_log.clone(), raw.access_log) {
            (Some(path), _) => Some(path),
            (None, Some(path)) if path != Path::new(STDOUT) => Some(base.join(path)),
            _ => None,
        }
        .filter(|path| path != Path::new(STDOUT)),
        max_listing_entries,
        max_body_memory: usize::try_from(max_body_memory).unwrap_or(usize::MAX),
        tls,
        redirect_http,
        compression,
        trusted_proxies: TrustedProxies(trusted_proxies),
        openapi: raw.openapi.unwrap_or(false),
    })
}

/// `[server.compression]` with `--no-compress` and `--compress-min-size` over it.
fn compression_settings(
    raw: Option<Spanned<RawCompression>>,
    cli: &Overrides,
    at: &Locator<'_>,
) -> Result<crate::compress::Settings> {
    use crate::compress::Settings;
    use crate::http::encoding::Coding;
    let span = raw.as_ref().map_or(0..0, |r| r.span());
    let raw = raw.map(Spanned::into_inner).unwrap_or_default();
    let fail = |why: String| at.key_error(span.clone(), format!("[server.compression] {why}"));
    let mut settings = Settings {
        enabled: raw.enabled.unwrap_or(true) && !cli.no_compress,
        ..Settings::default()
    };
    if let Some(names) = raw.encodings {
        let mut codings = Vec::new();
        for name in &names {
            let coding = Coding::from_token(name).ok_or_else(|| {
                fail(format!(
                    "encodings: unknown coding \"{name}\" (known: br, zstd, gzip)"
                ))
            })?;
            if codings.contains(&coding) {
                return Err(fail(format!("encodings: \"{name}\" is listed twice")));
            }
            codings.push(coding);
        }
        if codings.is_empty() {
            return Err(fail(
                "encodings is empty: use enabled = false to turn compression off".to_owned(),
            ));
        }
        settings.encodings = codings;
    }
    settings.min_size = cli
        .compress_min_size
        .or(raw.min_size)
        .unwrap_or(settings.min_size);
    if let Some(types) = raw.types {
        let mut list = if raw.replace_types.unwrap_or(false) {
            Vec::new()
        } else {
            Settings::default_types()
        };
        for pattern in types {
            let lower = pattern.to_ascii_lowercase();
            let valid = lower.split_once('/').is_some_and(|(t, s)| {
                !t.is_empty()
                    && !s.is_empty()
                    && (t.chars().chain(s.chars()))
                        .all(|c| c.is_ascii_alphanumeric() || "-+.*_".contains(c))
            });
            if !valid {
                return Err(fail(format!(
                    "types: \"{pattern}\" is not a media type such as \"text/markdown\", \"text/*\" or \"application/*+json\""
                )));
            }
            list.push(lower);
        }
        settings.types = list;
    } else if raw.replace_types.is_some() {
        return Err(fail("replace_types needs a types list".to_owned()));
    }
    Ok(settings)
}

/// A number within `range`, or the key's line and the allowed range.
fn ranged<T: Copy + PartialOrd + std::fmt::Display>(
    value: Option<Spanned<T>>,
    default: T,
    range: RangeInclusive<T>,
    at: &Locator<'_>,
    key: &str,
) -> Result<T> {
    match value {
        None => Ok(default),
        Some(v) if !range.contains(v.get_ref()) => Err(at.key_error(
            v.span(),
            format!(
                "{key} must be between {} and {}",
                range.start(),
                range.end()
            ),
        )),
        Some(v) => Ok(v.into_inner()),
    }
}

/// A timeout in seconds: more than 0, at most a day.
fn seconds(
    value: Option<Spanned<f64>>,
    default: Duration,
    at: &Locator<'_>,
    key: &str,
) -> Result<Duration> {
    match value {
        None => Ok(default),
        Some(v) if *v.get_ref() > 0.0 && *v.get_ref() <= 86_400.0 => {
            Ok(Duration::from_secs_f64(v.into_inner()))
        }
        Some(v) => Err(at.key_error(
            v.span(),
            format!("[server.timeouts] {key} must be more than 0 and at most 86400 seconds"),
        )),
    }
}
