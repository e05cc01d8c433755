//! tws: a small, fast, trustworthy HTTP/1.1 web server driven by a TOML routes file.
//!
//! `run` is the whole program: load and validate the configuration, open the user store when an
//! action needs it, bind, announce the URL, and serve.

pub mod actions;
pub mod cli;
pub mod config;
pub mod handlers;
pub mod http;
pub mod log;
pub mod man;
pub mod path;
pub mod router;
pub mod routes;
pub mod server;
pub mod time;

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;

use actions::{JsonlStore, UserStore};
use cli::Cli;
use config::Config;
use handlers::App;
use server::Server;

/// Runs tws as the command line asks.
pub fn run(cli: &Cli) -> Result<()> {
    if cli.print_manpage {
        std::io::stdout().write_all(&man::render())?;
        return Ok(());
    }
    let overrides = cli.overrides();
    let config = match &cli.config {
        Some(path) => Config::load(path, &overrides)?,
        None => Config::for_folder(&overrides)?,
    };
    if cli.check {
        print!("{}", describe(&config));
        return Ok(());
    }
    let users: Option<Arc<dyn UserStore>> = if config.uses_store() {
        Some(Arc::new(JsonlStore::open(
            &config.server.data,
            config.server.fsync,
        )?))
    } else {
        None
    };
    let app = App::from_config(&config, users);
    let server = Server::bind(&config.server, app, cli.log_format)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "tws {} serving {} routes at http://{}/ (root {}, data {}, up to {} connections; open file limit {})",
        env!("CARGO_PKG_VERSION"),
        config.routes.len(),
        server.local_addr(),
        config.server.root.display(),
        config.server.data.display(),
        server.max_connections(),
        server.fd_limit(),
    );
    let _ = out.flush();
    drop(out);
    server.run()
}

/// The route table as `--check` prints it.
pub fn describe(config: &Config) -> String {
    let source = config
        .source
        .as_ref()
        .map_or_else(|| "--root".to_owned(), |p| p.display().to_string());
    let mut text = format!("{source}: ok, {} routes\n", config.routes.len());
    for route in &config.routes {
        let methods = route.methods.allow_header();
        text.push_str(&format!(
            "  {:<24} {:<22} {}\n",
            route.path, methods, route.target
        ));
    }
    text
}

/// A short reason for an I/O error, without the OS error number.
pub fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "no such file or directory".to_owned(),
        PermissionDenied => "permission denied".to_owned(),
        AddrInUse => "address already in use".to_owned(),
        AddrNotAvailable => "address not available on this machine".to_owned(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error") {
                Some(i) => text[..i].to_owned(),
                None => text,
            }
        }
    }
}
