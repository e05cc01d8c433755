//! The command line: help, version, --check, startup errors, folder mode and the manual page.

mod common;

use std::io::Write;

use common::{Server, get, repo, scratch, tws};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = tws().args(args).current_dir(repo()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_and_version() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--config",
        "--host",
        "--port",
        "--root",
        "--threads",
        "--data",
        "--check",
        "Examples:",
    ] {
        assert!(out.contains(flag), "--help mentions {flag}");
    }
    let (code, out, _) = run(&["--version"]);
    assert_eq!(
        (code, out.trim()),
        (0, concat!("tws ", env!("CARGO_PKG_VERSION")))
    );
    let (code, _, err) = run(&["--port", "notaport"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, needle) in [
        ("bash", "_tws()"),
        ("zsh", "#compdef tws"),
        ("fish", "complete -c tws"),
    ] {
        let (code, out, err) = run(&["--print-completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains(needle) && out.contains("--config"),
            "{shell}: {out}"
        );
    }
}

#[test]
fn quiet_prints_only_the_url_and_no_access_log() {
    let data = scratch("cli-quiet");
    let server = Server::start(&[
        "--config",
        "routes.toml",
        "--data",
        data.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(get(&server, "/healthz").status, 200);
    let url = format!("http://{}/", server.addr);
    // The harness drains stdout line by line; give it a bounded moment to see anything more.
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(300) {
        assert_eq!(server.log_lines(), vec![url.clone()]);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn environment_variables_stand_in_for_flags() {
    let out = tws()
        .args(["--check"])
        .env("TWS_CONFIG", "routes.toml")
        .env("TWS_PORT", "1234")
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("routes.toml: ok"));
}

#[test]
fn check_validates_the_bundled_routes_and_prints_the_table() {
    let (code, out, err) = run(&["--check", "--config", "routes.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("routes.toml: ok, 20 routes\n"), "{out}");
    for path in [
        "/page_four",
        "/image_user_two",
        "/bigfile",
        "/createUser",
        "/users/{id}",
        "/metrics",
        "action openapi",
        "collection users (records)",
        "/users/events",
        "collection users (events)",
    ] {
        assert!(out.contains(path), "{path} in {out}");
    }
}

#[test]
fn startup_errors_are_one_line_and_exit_non_zero() {
    let dir = scratch("cli-errors");
    std::fs::create_dir_all(dir.join("site")).unwrap();
    std::fs::write(dir.join("site/index.html"), "hi").unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let syntax = write("syntax.toml", "[server]\nport = = 1\n");
    let unknown = write("unknown.toml", "[[route]]\npath = \"/\"\npgae = \"x\"\n");
    let missing = write(
        "missing.toml",
        "[[route]]\npath = \"/\"\npage = \"site/nope.html\"\n",
    );
    let twice = write(
        "twice.toml",
        "[[route]]\npath = \"/\"\npage = \"site/index.html\"\n\n[[route]]\npath = \"/\"\npage = \"site/index.html\"\n",
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let good = write(
        "good.toml",
        "[[route]]\npath = \"/\"\npage = \"site/index.html\"\n",
    );
    let open = write(
        "open.toml",
        "[server]\nhost = \"0.0.0.0\"\n\n[[route]]\npath = \"/files/\"\ndir = \"site\"\nupload = true\n",
    );
    let site = dir.join("site");
    let site = site.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--config", &syntax], "syntax.toml:2:8"),
        (
            vec!["--config", &open],
            "open.toml:4: route \"/files/\": upload, mkdir, delete or rename on a route without `auth`",
        ),
        (
            vec!["--config", &good, "--upload"],
            "--upload, --delete and --rename are for --root",
        ),
        (
            vec![
                "--root", site, "--upload", "--host", "0.0.0.0", "--port", "0",
            ],
            "--upload, --delete and --rename let anyone who reaches the server change the folder",
        ),
        (
            vec!["--config", &unknown],
            "unknown.toml:3:1: unknown field `pgae`",
        ),
        (
            vec!["--config", &missing],
            "missing.toml:1: route \"/\": cannot use",
        ),
        (
            vec!["--config", &twice],
            "twice.toml:5: route \"/\" is already declared on line 1",
        ),
        (
            vec!["--config", "no-such-file.toml"],
            "cannot read routes file no-such-file.toml",
        ),
        (
            vec!["--config", &good, "--port", &port],
            "address already in use",
        ),
        (
            vec!["--config", &good, "--host", "203.0.113.9", "--port", "0"],
            "address not available",
        ),
        (
            vec!["--root", "no/such/folder"],
            "cannot use folder no/such/folder",
        ),
        (vec!["--check", "--config", &missing], "missing.toml:1"),
    ];
    for (args, want) in cases {
        let (code, out, err) = run(&args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(
            err.starts_with("tws: error: ") && err.contains(want),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
    }
    drop(taken);
}

#[test]
fn without_a_routes_file_a_folder_is_served_with_listings() {
    let dir = scratch("cli-folder");
    std::fs::create_dir_all(dir.join("docs/sub")).unwrap();
    std::fs::write(dir.join("docs/readme.txt"), "read me").unwrap();
    std::fs::write(dir.join("docs/sub/index.html"), "<p>sub index</p>").unwrap();
    std::fs::write(dir.join("docs/.hidden"), "no").unwrap();
    let server = Server::start(&["--root", dir.join("docs").to_str().unwrap()]);
    let listing = get(&server, "/");
    assert_eq!(listing.status, 200);
    assert!(listing.text().contains("readme.txt") && !listing.text().contains(".hidden"));
    assert_eq!(get(&server, "/readme.txt").text(), "read me");
    assert_eq!(get(&server, "/sub/").text(), "<p>sub index</p>");
    assert_eq!(get(&server, "/sub").header("location"), Some("/sub/"));
    assert_eq!(get(&server, "/.hidden").status, 404);
    assert_eq!(get(&server, "/createUser").status, 404);
}

#[test]
fn the_manual_page_matches_the_command_line() {
    let current = tws::man::render();
    let path = repo().join("man/tws.1");
    if std::env::var_os("TWS_UPDATE_MAN").is_some() {
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&current)
            .unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == current,
        "man/tws.1 is out of date: run `TWS_UPDATE_MAN=1 cargo test --test cli` and commit it"
    );
    let text = String::from_utf8(current).unwrap();
    for needle in ["\\-\\-config", "ROUTES FILE", "create_user", "EXIT STATUS"] {
        assert!(text.contains(needle), "{needle}");
    }
}
