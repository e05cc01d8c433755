//! tws: a small, fast, trustworthy web server (HTTP/1.1 and HTTP/2, plain or TLS) driven by a
//! TOML routes file.
//!
//! `run` is the whole program: load and validate the configuration, open the database when a
//! collection needs it, bind, announce the URL, and serve.

pub mod acme;
pub mod actions;
pub mod api;
pub mod banner;
pub mod cli;
pub mod compress;
pub mod config;
pub mod handlers;
pub mod http;
pub mod log;
pub mod man;
pub mod metrics;
pub mod password;
pub mod path;
pub mod private;
pub mod reload;
pub mod router;
pub mod routes;
pub mod rules;
pub mod server;
pub mod stamp;
pub mod sync;
pub mod time;
pub mod tls;

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;

use api::store::Store;
use banner::{Banner, TlsNote};
use cli::{Cli, LogFormat};
use config::Config;
use handlers::App;
use log::sink::{Sink, Target};
use reload::{Live, Reloader};
use server::Server;
use tls::Tls;

/// Runs tws as the command line asks. Lines reported on stderr while serving are written out
/// before it returns.
pub fn run(cli: &Cli) -> Result<()> {
    let result = run_inner(cli);
    log::sink::flush_stderr(std::time::Duration::from_secs(1));
    result
}

fn run_inner(cli: &Cli) -> Result<()> {
    if cli.print_manpage {
        std::io::stdout().write_all(&man::render())?;
        return Ok(());
    }
    if let Some(cli::Command::HashPassword) = cli.command {
        let password = password::read()?;
        let hash = rules::auth::hash_password(&password).map_err(anyhow::Error::msg)?;
        println!("{hash}");
        return Ok(());
    }
    if let Some(shell) = cli.print_completions {
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "tws", &mut std::io::stdout());
        return Ok(());
    }
    let overrides = cli.overrides();
    let read = cli.config.as_deref().and_then(stamp::FileStamp::of_path);
    let config = match &cli.config {
        Some(path) => Config::load(path, &overrides)?,
        None => Config::for_folder(&overrides)?,
    };
    if cli.check {
        print!("{}", describe(&config));
        return Ok(());
    }
    warn_about_plain_passwords(&config);
    for warning in &config.warnings {
        report!("tws: warning: {warning}");
    }
    // Held until the server stops: a second server on the same data folder stops at once.
    let _data_lock = protect_data_folder(&config)?;
    let store: Option<Arc<dyn Store>> = if config.uses_store() {
        let server = &config.server;
        let postgres = server.store.as_ref().map(|url| url.0.as_str());
        let store = api::open_store(postgres, &server.data, server.fsync)?;
        store.prepare(&config.collections)?;
        Some(store)
    } else {
        None
    };
    actions::health::mark_start();
    let app = App::from_config(&config, store.clone());
    let live = Arc::new(Live::new(app, config.server.clone()));
    let log_format = cli.log_format(config.server.access_log.is_some());
    let access_sink = match (log_format, &config.server.access_log) {
        (LogFormat::Off, _) => None,
        (_, None) => Some(Sink::start(Target::Stdout, "access log")?),
        (_, Some(path)) => Some(Sink::start(Target::File(path.clone()), "access log")?),
    };
    log::sink::init_stderr()?;
    let tls = match &config.server.tls {
        Some(settings) => Some(Arc::new(Tls::start(
            settings,
            &config.server.data,
            &config.server.host,
        )?)),
        None => None,
    };
    // ACME: the stored certificate is served from the first handshake when still valid.
    let acme = match (&tls, config.server.tls.as_ref().and_then(|t| t.acme())) {
        (Some(tls), Some(settings)) => Some(acme::Manager::open(
            settings,
            &config.server.data,
            config.server.store.as_ref(),
            Arc::clone(&tls.store),
        )?),
        _ => None,
    };
    let server = Server::bind(
        Arc::clone(&live),
        log_format,
        access_sink,
        tls.as_ref().map(|t| Arc::clone(&t.config)),
    )?;
    let watch = !cli.no_watch;
    let fingerprint = tls
        .as_ref()
        .map(|t| tls::certs::fingerprint(tls::certs::leaf(&t.current())));
    let tls_note = tls
        .as_ref()
        .zip(fingerprint.as_deref())
        .map(|(t, print)| TlsNote {
            certificate: match (&t.files, &t.self_signed, &acme) {
                (Some((cert, _)), _, _) => cert.display().to_string(),
                (None, Some(path), _) => format!("self-signed, written to {}", path.display()),
                (None, None, Some(manager)) => manager.describe(),
                (None, None, None) => "self-signed".to_owned(),
            },
            fingerprint: print,
            redirect: server.redirect_addr(),
        });
    let banner = Banner {
        addr: server.local_addr(),
        routes: config.routes.len(),
        root: &config.server.root,
        data: store.as_ref().map(|s| s.location()),
        max_connections: server.max_connections(),
        fd_limit: server.fd_limit(),
        source: config.source.as_deref().map(|p| (p, watch)),
        tls: tls_note,
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.render(cli.quiet, banner::use_colour()).as_bytes());
    if server.activated() {
        let _ = writeln!(
            out,
            "  listening on the socket passed by systemd (host and port ignored)"
        );
    }
    let _ = out.flush();
    drop(out);
    if let Some(manager) = acme {
        manager.spawn()?;
    }
    let cert_files = tls.as_ref().is_some_and(|t| t.files.is_some());
    let reloader = (config.source.is_some() || cert_files).then(|| {
        let reloader = Reloader::new(config.source.clone(), read, overrides, live, store);
        match tls {
            Some(tls) if cert_files => reloader.with_certificate(tls),
            _ => reloader,
        }
    });
    server.run(reloader, watch)
}

/// The route table as `--check` prints it: routes for any host, then each host's.
pub fn describe(config: &Config) -> String {
    let source = config
        .source
        .as_ref()
        .map_or_else(|| "--root".to_owned(), |p| p.display().to_string());
    let mut text = format!(
        "{source}: ok, {}\n",
        banner::count(config.routes.len(), "route")
    );
    let mut hosts: Vec<&rules::hosts::HostPattern> =
        config.routes.iter().flat_map(|r| &r.hosts).collect();
    hosts.sort();
    hosts.dedup();
    let groups = std::iter::once(None).chain(hosts.into_iter().map(Some));
    for host in groups {
        let routes: Vec<_> = config
            .routes
            .iter()
            .filter(|r| match host {
                None => r.hosts.is_empty(),
                Some(h) => r.hosts.contains(h),
            })
            .collect();
        if routes.is_empty() {
            continue;
        }
        if let Some(host) = host {
            text.push_str(&format!("host {host}:\n"));
        } else if config.routes.iter().any(|r| !r.hosts.is_empty()) {
            text.push_str("any host:\n");
        }
        let path_width = routes.iter().map(|r| r.path.len()).max().unwrap_or(0);
        let methods: Vec<String> = routes.iter().map(|r| r.methods.allow_header()).collect();
        let methods_width = methods.iter().map(String::len).max().unwrap_or(0);
        for (route, methods) in routes.iter().zip(&methods) {
            let mut notes = String::new();
            if let Some(realm) = &route.auth {
                notes.push_str(&format!(" [auth {}]", realm.name));
            }
            if route.cors.is_some() {
                notes.push_str(" [cors]");
            }
            if route.allow.is_some() {
                notes.push_str(" [allow]");
            }
            text.push_str(&format!(
                "  {:<path_width$}  {:<methods_width$}  {}{notes}\n",
                route.path, methods, route.target
            ));
        }
    }
    text
}

/// Puts the data folder out of every route's reach (in folder mode, saying so when it lies
/// inside the folder served). When this server writes there (a database, a self-signed
/// certificate), makes it (for the owner alone) and locks it, so that a second server on
/// the same folder stops at once rather than overwrite what the first keeps.
fn protect_data_folder(config: &Config) -> Result<Option<Arc<std::fs::File>>> {
    let data = &config.server.data;
    let embedded = config.uses_store() && config.server.store.is_none();
    let writes = embedded
        || match &config.server.tls {
            Some(config::TlsSettings::SelfSigned) => true,
            // ACME keeps its account and certificate there, unless in PostgreSQL.
            Some(config::TlsSettings::Acme(_)) => config.server.store.is_none(),
            _ => false,
        };
    let lock = if writes {
        private::folder(data).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                " (choose another place with --data)"
            } else {
                ""
            };
            anyhow::anyhow!(
                "cannot create data folder {}: {}{hint}",
                data.display(),
                log::io_reason(&e)
            )
        })?;
        Some(private::lock_data(data)?)
    } else {
        None
    };
    path::protect(data);
    let served = config.routes.iter().any(|r| match &r.target {
        routes::Target::Dir(spec) => data
            .canonicalize()
            .is_ok_and(|d| d.starts_with(&spec.folder)),
        _ => false,
    });
    if served && config.source.is_none() {
        report!(
            "tws: note: the data folder {} is inside the folder served; it is never served or listed",
            data.display()
        );
    }
    Ok(lock)
}

/// Basic authentication sends passwords in clear: say so when that crosses a network.
fn warn_about_plain_passwords(config: &Config) {
    let host = &config.server.host;
    let loopback = config.server.loopback_only();
    if config.server.tls.is_none() && !loopback && config.routes.iter().any(|r| r.auth.is_some()) {
        report!(
            "tws: warning: basic authentication served over plain HTTP on {host}: passwords cross the network in clear; serve HTTPS (--tls-cert and --tls-key)"
        );
    }
}
