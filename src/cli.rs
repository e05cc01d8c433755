//! The command line (clap derive): flags only, no I/O.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::config::Overrides;

const EXAMPLES: &str = "\
Examples:
  tws --config routes.toml              serve the routes declared in routes.toml
  tws --root ./public --port 8000       serve a folder (index.html or a listing)
  tws --config routes.toml --port 0     listen on any free port (printed at startup)
  tws --check --config routes.toml      validate the routes file and print the table
  tws --config routes.toml --domain example.com --acme-email me@example.com
                                        HTTPS with a certificate from Let's Encrypt
  tws --print-completions bash > /etc/bash_completion.d/tws

routes.toml is re-read when it changes (or on SIGHUP); SIGTERM or SIGINT stops gracefully.";

/// A small, fast, trustworthy web server: HTTP/1.1 and HTTP/2, plain or over HTTPS.
#[derive(Debug, Parser)]
#[command(
    name = "tws",
    version,
    about = "A small, fast, trustworthy web server (HTTP/1.1, HTTP/2, HTTPS)",
    long_about = "tws serves static folders, single files, HTML pages and JSON collections over \
                  HTTP/1.1 and HTTP/2, plain or over HTTPS, all declared in a TOML routes file. \
                  Without --config it serves one folder.",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Routes file to serve (see ROUTES FILE in the manual)
    #[arg(short, long, value_name = "FILE", env = "TWS_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, value_name = "ADDR", env = "TWS_HOST")]
    pub host: Option<String>,

    /// Port to listen on; 0 picks a free one [default: 8080]
    #[arg(short, long, value_name = "N", env = "TWS_PORT")]
    pub port: Option<u16>,

    /// Folder the routes file's paths are relative to; without --config, the folder to serve [default: .]
    #[arg(short, long, value_name = "DIR", env = "TWS_ROOT")]
    pub root: Option<PathBuf>,

    /// Worker threads [default: one per CPU]
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,

    /// Folder of the database collections keep their records in [default: data, next to the routes file]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Keep collections in PostgreSQL (postgres://user@host:port/db; the password may come
    /// from PGPASSWORD or ~/.pgpass) instead of the embedded database under --data
    #[arg(long, value_name = "URL", env = "TWS_STORE", hide_env_values = true)]
    pub store: Option<String>,

    /// Validate the routes file and every file it names, print the route table, and exit
    #[arg(long)]
    pub check: bool,

    /// Access log format: one line per response (Combined Log Format or JSON), or none
    /// [default: combined; off with --quiet when the log goes to stdout]
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Append the access log to FILE (created with mode 0640; reopened on SIGUSR1); `-` is
    /// stdout [default: stdout]
    #[arg(long, value_name = "FILE", env = "TWS_ACCESS_LOG")]
    pub access_log: Option<PathBuf>,

    /// Serve HTTPS with this PEM certificate chain, leaf first (with --tls-key)
    #[arg(long, value_name = "FILE", env = "TWS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 RSA or SEC1 EC)
    #[arg(long, value_name = "FILE", env = "TWS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a certificate made at startup for localhost (local development); the
    /// certificate is written to DATA/tls/self-signed.pem
    #[arg(long)]
    pub tls_self_signed: bool,

    /// Also listen for plain HTTP on PORT and redirect every request to HTTPS (308)
    #[arg(long, value_name = "PORT")]
    pub redirect_http: Option<u16>,

    /// Obtain and renew a certificate for NAME over ACME (Let's Encrypt unless routes.toml's
    /// [server.tls.acme] names another CA); repeatable. Listens on 443, and on 80 for the
    /// HTTP-01 challenge and redirects to HTTPS [default host: 0.0.0.0]
    #[arg(
        long = "domain",
        value_name = "NAME",
        env = "TWS_DOMAIN",
        value_delimiter = ','
    )]
    pub domains: Vec<String>,

    /// Contact address for the ACME account (the CA writes about expiring certificates and
    /// problems)
    #[arg(long, value_name = "ADDR", env = "TWS_ACME_EMAIL")]
    pub acme_email: Option<String>,

    /// Do not compress responses on the fly (precompressed files are still served)
    #[arg(long)]
    pub no_compress: bool,

    /// Compress only responses of at least N bytes [default: 1024]
    #[arg(long, value_name = "N")]
    pub compress_min_size: Option<u64>,

    /// Add this header to every response ("Name: value"; repeatable)
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// Let pages on any origin read responses (CORS, Access-Control-Allow-Origin: *)
    #[arg(long)]
    pub cors: bool,

    /// Require basic authentication: USER and an argon2id hash from `tws hash-password`
    /// (repeatable)
    #[arg(long, value_name = "USER:HASH")]
    pub auth: Vec<String>,

    /// Folder mode: let people upload files and make folders (PUT, POST; the listing has a
    /// form, a folder picker and drag and drop)
    #[arg(long)]
    pub upload: bool,

    /// Folder mode: let people delete files and folders (DELETE)
    #[arg(long)]
    pub delete: bool,

    /// Folder mode: let people rename files and folders (POST ?rename=NEW)
    #[arg(long)]
    pub rename: bool,

    /// Folder mode: allow --upload, --delete and --rename without --auth on an address other
    /// than loopback (anyone who reaches the server may then change the folder)
    #[arg(long)]
    pub allow_anonymous_writes: bool,

    /// Cache-Control for files and folders whose route sets none (folder mode: every file)
    #[arg(long, value_name = "VALUE")]
    pub cache_control: Option<String>,

    /// Take the client's address from this proxy's PROXY header or Forwarded/X-Forwarded-For
    /// (an address or network such as 10.0.0.0/8; repeatable)
    #[arg(long, value_name = "NET")]
    pub trusted_proxy: Vec<String>,

    /// Print only the URL at startup, and no access log on stdout unless --log-format asks for one
    #[arg(short, long)]
    pub quiet: bool,

    /// Do not re-read the routes file when it changes (SIGHUP still reloads it)
    #[arg(long)]
    pub no_watch: bool,

    /// Print a completion script for SHELL to stdout and exit
    #[arg(long, value_name = "SHELL", value_enum)]
    pub print_completions: Option<clap_complete::Shell>,

    /// Print the manual page (roff) to stdout and exit
    #[arg(long, hide = true)]
    pub print_manpage: bool,
}

/// Things tws does besides serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Read a password (from the terminal, asked twice without echo, or the first line of
    /// stdin) and print its argon2id hash, for `[auth.NAME] users` or `--auth USER:HASH`
    HashPassword,
}

/// Access log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Combined Log Format, as Apache and nginx write it
    Combined,
    /// One JSON object per line
    Json,
    /// No access log
    Off,
}

impl Cli {
    /// The access log format in force; `to_file` when the log goes to a file, which `--quiet`
    /// (about the terminal) leaves on.
    pub fn log_format(&self, to_file: bool) -> LogFormat {
        match self.log_format {
            Some(format) => format,
            None if self.quiet && !to_file => LogFormat::Off,
            None => LogFormat::Combined,
        }
    }

    /// The values that override the routes file's `[server]` table.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            host: self.host.clone(),
            port: self.port,
            root: self.root.clone(),
            threads: self.threads.map(usize::from),
            data: self.data.clone(),
            store: self.store.clone(),
            access_log: self.access_log.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_self_signed: self.tls_self_signed,
            redirect_http: self.redirect_http,
            domains: self.domains.clone(),
            acme_email: self.acme_email.clone(),
            no_compress: self.no_compress,
            compress_min_size: self.compress_min_size,
            headers: self.headers.clone(),
            cors: self.cors,
            auth: self.auth.clone(),
            trusted_proxies: self.trusted_proxy.clone(),
            cache_control: self.cache_control.clone(),
            upload: self.upload,
            delete: self.delete,
            rename: self.rename,
            allow_anonymous_writes: self.allow_anonymous_writes,
        }
    }
}
