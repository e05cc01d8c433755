//! The command line (clap derive): flags only, no I/O.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::config::Overrides;

const EXAMPLES: &str = "\
Examples:
  tws --config routes.toml              serve the routes declared in routes.toml
  tws --root ./public --port 8000       serve a folder (index.html or a listing)
  tws --config routes.toml --port 0     listen on any free port (printed at startup)
  tws --check --config routes.toml      validate the routes file and print the table";

/// A small, fast, trustworthy HTTP/1.1 web server.
#[derive(Debug, Parser)]
#[command(
    name = "tws",
    version,
    about = "A small, fast, trustworthy HTTP/1.1 web server",
    long_about = "tws serves static folders, single files, HTML pages and small JSON actions, \
                  all declared in a TOML routes file. Without --config it serves one folder.",
    after_help = EXAMPLES
)]
pub struct Cli {
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

    /// Folder where actions keep their data [default: data, next to the routes file]
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Validate the routes file and every file it names, print the route table, and exit
    #[arg(long)]
    pub check: bool,

    /// Access log on stdout: one line per response (Combined Log Format or JSON), or none
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Combined)]
    pub log_format: LogFormat,

    /// Print the manual page (roff) to stdout and exit
    #[arg(long, hide = true)]
    pub print_manpage: bool,
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
    /// The values that override the routes file's `[server]` table.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            host: self.host.clone(),
            port: self.port,
            root: self.root.clone(),
            threads: self.threads.map(usize::from),
            data: self.data.clone(),
        }
    }
}
