//! What a newcomer reads: every JSON body ends with a newline (a terminal's prompt starts on a
//! line of its own), startup errors name the next step (`--port`, `CAP_NET_BIND_SERVICE`,
//! `--data`), a reload refused for a field's type names the file and line, and a data folder
//! (the self-signed certificate in it included) belongs to one server at a time.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, one, repo, scratch, tws};

const BOOKS: &str = "[server]\nroot = \".\"\n\n[[collection]]\nname = \"books\"\npath = \"/books\"\n\
                     fields.title = { type = \"string\", required = true }\n\
                     fields.pages = { type = \"integer\" }\n\n\
                     [[route]]\npath = \"/healthz\"\naction = \"health\"\n";

fn request(server: &Server, method: &str, path: &str, body: &str) -> common::Reply {
    one(
        server,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

fn books(dir: &Path) -> Server {
    std::fs::write(dir.join("routes.toml"), BOOKS).unwrap();
    Server::start(&["--config", dir.join("routes.toml").to_str().unwrap()])
}

#[test]
fn every_json_body_ends_with_a_newline() {
    let dir = scratch("messages-json");
    let server = books(&dir);
    for (method, path, body, status) in [
        ("POST", "/books", r#"{"title": "Dune", "pages": 412}"#, 201),
        ("GET", "/books", "", 200),
        ("GET", "/books/1", "", 200),
        ("GET", "/books/9", "", 404),
        ("POST", "/books", r#"{"pages": "many"}"#, 422),
        ("POST", "/books", "not json", 400),
        ("GET", "/healthz", "", 200),
    ] {
        let reply = request(&server, method, path, body);
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
        assert!(
            reply
                .header("content-type")
                .unwrap()
                .starts_with("application/json"),
            "{method} {path}"
        );
        assert!(
            reply.body.ends_with(b"}\n") || reply.body.ends_with(b"]\n"),
            "{method} {path}: {:?}",
            reply.text()
        );
    }
}

#[test]
fn a_reload_refused_for_a_fields_type_names_the_file_and_line() {
    let dir = scratch("messages-reload");
    let server = books(&dir);
    assert_eq!(
        request(&server, "POST", "/books", r#"{"title": "a", "pages": 3}"#).status,
        201
    );
    let tmp = dir.join("routes.toml.tmp");
    std::fs::write(
        &tmp,
        BOOKS.replace("type = \"integer\"", "type = \"string\""),
    )
    .unwrap();
    std::fs::rename(&tmp, dir.join("routes.toml")).unwrap();
    let line = server.wait_error("refused");
    let at = format!("{}:4:", dir.join("routes.toml").display());
    assert!(line.contains(&at), "{line}");
    assert!(
        line.contains("field \"pages\" cannot change from integer to string"),
        "{line}"
    );
}

/// The command run as an unprivileged user: as root, `nobody` through setpriv; `None` when
/// that is impossible here (the test then says so).
fn unprivileged(program: &Path) -> Option<Command> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some(Command::new(program));
    }
    let found = Command::new("setpriv").arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: running as root without setpriv to drop privileges");
        return None;
    }
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(program);
    Some(command)
}

fn one_line_error(mut command: Command) -> String {
    let out = command.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("tws: error: ") && err.lines().count() == 1,
        "{err}"
    );
    err
}

#[test]
fn self_signed_from_a_folder_it_cannot_write_to_names_data() {
    // Started from a folder it may not write to (as from `/`), the data folder cannot be made
    // where it defaults to: the error says how to put it elsewhere.
    let dir = scratch("messages-cwd");
    let cwd = dir.join("readonly");
    std::fs::create_dir(&cwd).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_tws"));
    let Some(mut command) = unprivileged(bin) else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o555)).unwrap();
    command
        .args(["--root", repo().join("site").to_str().unwrap()])
        .args(["--tls-self-signed", "--port", "0"])
        .current_dir(&cwd);
    let err = one_line_error(command);
    assert!(
        err.contains("cannot create data folder ./data: permission denied")
            && err.contains("--data"),
        "{err}"
    );
}

#[test]
fn a_low_port_without_the_right_to_bind_it_names_the_ways_out() {
    let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start");
    if start.is_ok_and(|s| s.trim().parse::<u16>().unwrap_or(1024) <= 80) {
        eprintln!("skipped: anyone may bind port 80 on this machine");
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_tws"));
    let Some(mut command) = unprivileged(bin) else {
        return;
    };
    command.args([
        "--root",
        repo().join("site").to_str().unwrap(),
        "--port",
        "80",
    ]);
    let err = one_line_error(command);
    assert!(
        err.contains("permission denied")
            && err.contains("CAP_NET_BIND_SERVICE")
            && err.contains("--port"),
        "{err}"
    );
}

#[test]
fn a_port_in_use_names_the_way_out() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut command = tws();
    command.args([
        "--root",
        repo().join("site").to_str().unwrap(),
        "--port",
        &port,
    ]);
    let err = one_line_error(command);
    assert!(
        err.contains("address already in use") && err.contains("choose another port with --port"),
        "{err}"
    );
}

#[test]
fn two_self_signed_servers_do_not_share_a_data_folder() {
    let dir = scratch("messages-two-tls");
    let data = dir.join("data");
    let site = repo().join("site");
    let args = |port: &str| -> Vec<String> {
        [
            "--root",
            site.to_str().unwrap(),
            "--tls-self-signed",
            "--port",
            port,
            "--data",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([data.to_str().unwrap().to_owned()])
        .collect()
    };
    let mut command = tws();
    command.args(args("0"));
    let first = Server::spawn(command);
    let pem = data.join("tls/self-signed.pem");
    let certificate = std::fs::read(&pem).unwrap();
    let mut second = tws();
    second.args(args("0"));
    let err = one_line_error(second);
    assert!(
        err.contains("is in use by another tws") && err.contains("--data"),
        "{err}"
    );
    // The first server's certificate is still the one on disk.
    assert_eq!(std::fs::read(&pem).unwrap(), certificate);
    drop(first);
}
