//! A throwaway PostgreSQL cluster for one test: `initdb` into a temporary folder, started on a
//! free port of 127.0.0.1 (as `nobody` when the tests run as root, since PostgreSQL refuses
//! root), stopped and removed when dropped. Without PostgreSQL installed the tests that need it
//! say so and pass, unless `TWS_REQUIRE_TOOLS=1` (CI sets it), where they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

/// The folder holding `initdb` and `pg_ctl`, if PostgreSQL is installed.
fn bin_dir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a PostgreSQL program, as `nobody` when we are root.
fn run(program: &Path, args: &[&str]) -> Output {
    let mut command = if root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(program);
        c
    } else {
        Command::new(program)
    };
    command.args(args).env_remove("PGPASSWORD");
    command.output().expect("run a PostgreSQL program")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Postgres {
    /// A new cluster, or `None` (with a note) when PostgreSQL is not installed here.
    pub fn start(name: &str) -> Option<Postgres> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var_os("TWS_REQUIRE_TOOLS").is_none(),
                "PostgreSQL is required (TWS_REQUIRE_TOOLS) but initdb is not installed"
            );
            eprintln!(
                "note: PostgreSQL is not installed; skipping {name} (apt-get install postgresql)"
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!("tws-pg-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if root() {
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        }
        let data = dir.join("data");
        let out = run(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "tws",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Postgres {
            dir,
            bin,
            port: free_port(),
        };
        pg.ctl("start");
        Some(pg)
    }

    fn ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let mut args = vec!["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap()];
        args.extend(["-o", &options, "-w", "-t", "20", "-m", "fast", action]);
        let out = run(&self.bin.join("pg_ctl"), &args);
        assert!(
            out.status.success(),
            "pg_ctl {action}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    pub fn stop(&self) {
        self.ctl("stop");
    }

    pub fn start_again(&self) {
        self.ctl("start");
    }

    /// A new, empty database; its URL.
    pub fn database(&self, name: &str) -> String {
        let port = self.port.to_string();
        let out = run(
            &self.bin.join("createdb"),
            &["-h", "127.0.0.1", "-p", &port, "-U", "tws", name],
        );
        assert!(
            out.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://tws@127.0.0.1:{}/{database}", self.port)
    }

    /// Waits (bounded) until the server accepts connections again.
    pub fn wait_ready(&self) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "PostgreSQL did not come back"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = run(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
