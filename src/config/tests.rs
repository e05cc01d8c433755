//! Tests for routes.toml validation: each mistake gives one line naming the file, line and key.

use super::*;
use crate::http::{Method, Methods};
use std::time::Duration;

/// A scratch folder with `site/index.html`, `site/a.png` and `site/sub/`.
fn fixture(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tws-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("site/sub")).unwrap();
    std::fs::write(dir.join("site/index.html"), "<p>hi</p>").unwrap();
    std::fs::write(dir.join("site/a.png"), "png").unwrap();
    dir
}

fn load(dir: &Path, toml: &str) -> Result<Config> {
    let file = dir.join("routes.toml");
    std::fs::write(&file, toml).unwrap();
    Config::load(&file, &Overrides::default())
}

#[test]
fn loads_every_kind_of_route() {
    let dir = fixture("good");
    let config = load(
        &dir,
        r#"
[server]
port = 9000
root = "site"

[server.limits]
max_body_bytes = 10

[[route]]
path = "/"
page = "index.html"

[[route]]
path = "/a"
file = "a.png"
download = true
content_type = "image/x-test"

[[route]]
path = "/sub"
dir = "sub"
listing = true

[[route]]
path = "/createUser"
action = "create_user"

[[route]]
path = "/users/{id}"
action = "get_user"
methods = ["GET"]
"#,
    )
    .unwrap();
    assert_eq!(config.server.port, 9000);
    assert_eq!(config.server.host, DEFAULT_HOST);
    assert_eq!(config.server.root, dir.join("site"));
    assert_eq!(config.server.data, dir.join("data"));
    assert_eq!(config.server.limits.max_body_bytes, 10);
    assert_eq!(config.routes.len(), 5);
    assert_eq!(config.routes[1].line, 13);
    let Target::File(spec) = &config.routes[1].target else {
        panic!()
    };
    assert_eq!(spec.download.as_deref(), Some("a.png"));
    assert_eq!(spec.content_type.as_deref(), Some("image/x-test"));
    let Target::Dir(spec) = &config.routes[2].target else {
        panic!()
    };
    assert_eq!(spec.folder, dir.join("site/sub").canonicalize().unwrap());
    assert!(spec.listing);
    assert_eq!(
        config.routes[4].methods,
        Methods::of(&[Method::Get, Method::Head])
    );
    assert!(config.uses_store());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn each_mistake_names_file_line_and_key() {
    let dir = fixture("bad");
    let route = |body: &str| format!("[server]\nroot = \"site\"\n\n[[route]]\n{body}\n");
    // (routes file, expected text in the error)
    let cases: Vec<(String, &str)> = vec![
        (
            "[server]\nport = \"x\n".into(),
            "routes.toml:2:10: invalid basic string",
        ),
        (
            "[server]\nprot = 80\n".into(),
            "routes.toml:2:1: unknown field `prot`",
        ),
        ("[server]\nport = 70000\n".into(), "routes.toml:2:8"),
        ("[sever]\n".into(), "unknown field `sever`"),
        (
            "[server.limits]\nmax_headers = 1000\n".into(),
            "routes.toml:2: [server.limits] max_headers must be between 1 and 256",
        ),
        (
            route("path = \"/\"\npage = \"index.html\"\nfiel = \"x\""),
            "routes.toml:7:1: unknown field `fiel`",
        ),
        (
            route("path = \"/\""),
            "routes.toml:4: route \"/\": needs one of `file`, `page`, `dir`, `action` or `redirect`",
        ),
        (
            route("path = \"/\"\npage = \"index.html\"\nfile = \"a.png\""),
            "has file and page: keep exactly one",
        ),
        (
            route("path = \"/x\"\nfile = \"missing.png\""),
            "routes.toml:4: route \"/x\": cannot use",
        ),
        (
            route("path = \"/x\"\nfile = \"sub\""),
            "is not a regular file",
        ),
        (
            route("path = \"/x\"\ndir = \"index.html\""),
            "is not a folder",
        ),
        (route("path = \"/x\"\ndir = \"nope\""), "cannot use folder"),
        (
            route("path = \"/x\"\npage = \"index.html\"\nlisting = true"),
            "key `listing` only applies to dir routes",
        ),
        (
            route("path = \"/x\"\ndir = \"sub\"\ndownload = true"),
            "key `download` only applies to file routes",
        ),
        (
            route("path = \"/x\"\naction = \"drop_tables\""),
            "unknown action \"drop_tables\"",
        ),
        (
            route("path = \"/x\"\naction = \"get_user\""),
            "action \"get_user\" must end in `{id}`",
        ),
        (
            route("path = \"/x/{id}\"\naction = \"list_users\""),
            "cannot take a `{id}` segment",
        ),
        (
            route("path = \"/x\"\npage = \"index.html\"\nmethods = [\"POST\"]"),
            "a page route answers only GET, HEAD",
        ),
        (
            route("path = \"/x\"\npage = \"index.html\"\nmethods = [\"FETCH\"]"),
            "unknown method \"FETCH\"",
        ),
        (
            route("path = \"x\"\npage = \"index.html\""),
            "`path` must start with '/'",
        ),
        (
            route("path = \"/a/../b\"\npage = \"index.html\""),
            "`path` must be normalised",
        ),
        (
            route("path = \"/a?b\"\npage = \"index.html\""),
            "must be a plain path",
        ),
        (
            "[server.limits]\nmax_body_bytes = 4194304\nmax_body_memory = 2097152\n".into(),
            "routes.toml:3: [server.limits] max_body_memory (2097152) must be at least max_body_bytes (4194304)",
        ),
        (
            "[server.limits]\nmax_body_memory = 1000\n".into(),
            "routes.toml:2: [server.limits] max_body_memory must be between 1048576 and",
        ),
        (
            route("path = \"/x\"\nredirect = \"/y\"\nstatus = 200"),
            "`status` must be 301, 302, 303, 307 or 308",
        ),
        (
            route("path = \"/x\"\nredirect = \"javascript:alert(1)\""),
            "`redirect` must be a path",
        ),
        (
            route("path = \"/x\"\nredirect = \"//evil.example/\""),
            "`redirect` must be a path",
        ),
        (
            route("path = \"/x\"\npage = \"index.html\"\nstatus = 301"),
            "key `status` only applies to redirect routes",
        ),
        (
            route("path = \"/x\"\npage = \"index.html\"\nclean_urls = true"),
            "key `clean_urls` only applies to dir routes",
        ),
        (
            route("path = \"/x\"\ndir = \"sub\"\nfallback = \"missing.html\""),
            "`fallback`: \"missing.html\" is not a file",
        ),
        (
            route("path = \"/x\"\npage = \"index.html\"\nheaders = { \"X-A\" = \"a\\r\\nb\" }"),
            "routes.toml:4: route \"/x\": `headers`: header X-A: the value holds CR, LF or NUL",
        ),
        (
            route("path = \"/x\"\npage = \"index.html\"\nheaders = { \"Content-Length\" = \"1\" }"),
            "header Content-Length cannot be set here",
        ),
        (
            "[headers]\n\"Bad Name\" = \"x\"\n".into(),
            "routes.toml:2: [headers] header name \"Bad Name\" is not a token",
        ),
        (
            route(
                "path = \"/x\"\npage = \"index.html\"\ncors = { origins = \"*\", credentials = true }",
            ),
            "credentials = true cannot go with origins = \"*\"",
        ),
        (
            route("path = \"/x\"\npage = \"index.html\"\nauth = \"staff\""),
            "`auth`: no realm \"staff\"",
        ),
        (
            "[auth.staff]\nusers = { alice = \"hunter2\" }\n".into(),
            "[auth.staff] user alice: the password must be an argon2id hash",
        ),
        (
            route("path = \"/x\"\npage = \"index.html\"\nhost = \"bad host\""),
            "`host`: host \"bad host\" must be a host name",
        ),
        (
            route(
                "path = \"/\"\npage = \"index.html\"\nhost = \"a.example\"\n\n[[route]]\npath = \"/\"\nfile = \"a.png\"\nhost = \"a.example\"",
            ),
            "routes.toml:9: route \"/\" is already declared on line 4",
        ),
        (
            "[server.compression]\nencodings = [\"br\", \"lzma\"]\n".into(),
            "routes.toml:1: [server.compression] encodings: unknown coding \"lzma\"",
        ),
        (
            "[server.compression]\nencodings = []\n".into(),
            "[server.compression] encodings is empty",
        ),
        (
            "[server.compression]\ntypes = [\"not a type\"]\n".into(),
            "[server.compression] types: \"not a type\" is not a media type",
        ),
        (
            "[server.compression]\nlevel = 9\n".into(),
            "routes.toml:2:1: unknown field `level`",
        ),
        (
            "[server.tls]\ncert = \"a.pem\"\n".into(),
            "routes.toml:1: [server.tls] cert needs a key (key = \"...\", or --tls-key)",
        ),
        (
            "[server.tls]\nself_signed = true\ncert = \"a.pem\"\nkey = \"a.key\"\n".into(),
            "[server.tls] self_signed cannot be combined with cert and key",
        ),
        (
            "[server.tls]\nredirect_http = 8081\n".into(),
            "[server.tls] redirect_http needs TLS",
        ),
        (
            "[server.tls]\ncrt = \"a.pem\"\n".into(),
            "routes.toml:2:1: unknown field `crt`",
        ),
        (
            "[server]\nmax_listing_entries = 0\n".into(),
            "routes.toml:2: [server] max_listing_entries must be between 1 and 1000000",
        ),
        (
            route("path = \"/x\"\ndir = \"sub\"\nmax_listing_entries = 0"),
            "`max_listing_entries` must be between 1 and 1000000",
        ),
        (
            route("path = \"/x\"\npage = \"index.html\"\nmax_listing_entries = 5"),
            "key `max_listing_entries` only applies to dir routes",
        ),
        (
            route(
                "path = \"/\"\npage = \"index.html\"\n\n[[route]]\npath = \"/\"\nfile = \"a.png\"",
            ),
            "routes.toml:8: route \"/\" is already declared on line 4",
        ),
    ];
    for (toml, want) in cases {
        let err = format!("{:#}", load(&dir, &toml).unwrap_err());
        assert!(
            err.contains(want),
            "for\n{toml}\nwanted {want:?} in {err:?}"
        );
        assert!(!err.contains('\n'), "one line, not {err:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn timeouts_and_connection_limits_are_read_from_the_server_table() {
    let dir = fixture("timeouts");
    let config = load(
        &dir,
        "[server.limits]\nmax_connections = 50\nmin_send_rate = 0\n\n\
         [server.timeouts]\nheader = 2.5\nbody = 3\nidle = 4\nsend = 5\nshutdown_grace = 6\n",
    )
    .unwrap();
    let t = config.server.timeouts;
    assert_eq!(t.header, Duration::from_millis(2500));
    assert_eq!(
        (t.body, t.idle, t.send),
        (
            Duration::from_secs(3),
            Duration::from_secs(4),
            Duration::from_secs(5)
        )
    );
    assert_eq!(t.shutdown_grace, Duration::from_secs(6));
    assert_eq!(
        (config.server.max_connections, config.server.min_send_rate),
        (Some(50), 0)
    );
    let defaults = load(&dir, "").unwrap().server;
    assert_eq!(defaults.timeouts, Timeouts::default());
    assert_eq!(
        (defaults.max_connections, defaults.min_send_rate),
        (None, 1024)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn command_line_overrides_the_file() {
    let dir = fixture("overrides");
    let file = dir.join("routes.toml");
    std::fs::write(
        &file,
        "[server]\nhost = \"0.0.0.0\"\nport = 1\nthreads = 3\n",
    )
    .unwrap();
    let overrides = Overrides {
        port: Some(0),
        threads: Some(2),
        ..Overrides::default()
    };
    let config = Config::load(&file, &overrides).unwrap();
    assert_eq!(
        (config.server.host.as_str(), config.server.port),
        ("0.0.0.0", 0)
    );
    assert_eq!(config.server.threads, 2);
    assert!(!config.uses_store());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_folder_is_served_with_a_listing_without_a_routes_file() {
    let dir = fixture("folder");
    let overrides = Overrides {
        root: Some(dir.join("site")),
        ..Overrides::default()
    };
    let config = Config::for_folder(&overrides).unwrap();
    assert_eq!(config.routes.len(), 1);
    let Target::Dir(spec) = &config.routes[0].target else {
        panic!()
    };
    assert!(spec.listing);
    assert_eq!(spec.index, "index.html");
    let missing = Overrides {
        root: Some(dir.join("nope")),
        ..Overrides::default()
    };
    let err = format!("{:#}", Config::for_folder(&missing).unwrap_err());
    assert!(err.contains("cannot use folder"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn collections_are_declared_checked_and_routed() {
    let dir = fixture("collections");
    let config = load(
        &dir,
        r#"
[[collection]]
name = "books"
path = "/api/books"
methods = ["GET"]
fields.title = { type = "string", required = true, max_length = 200 }
fields.pages = { type = "integer", min = 1 }

[[route]]
path = "/createUser"
action = "create_user"
"#,
    )
    .unwrap();
    let names: Vec<&str> = config.collections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["books", "users"],
        "the old action brings the users collection"
    );
    let paths: Vec<(&str, String)> = config
        .routes
        .iter()
        .map(|r| (r.path.as_str(), r.methods.allow_header()))
        .collect();
    assert_eq!(
        paths,
        [
            ("/createUser", "POST, OPTIONS".to_owned()),
            ("/api/books", "GET, HEAD, OPTIONS".to_owned()),
            ("/api/books/{id}", "GET, HEAD, OPTIONS".to_owned()),
            ("/api/books/events", "GET, HEAD, OPTIONS".to_owned()),
        ]
    );
    let books = &config.collections[0];
    assert_eq!(books.field("title").unwrap().max_length, Some(200));
    assert!(books.field("title").unwrap().trim);
    assert_eq!(config.routes[1].line, 2);

    let collection =
        |body: &str| format!("[[collection]]\nname = \"things\"\npath = \"/things\"\n{body}\n");
    let cases: Vec<(String, &str)> = vec![
        (
            collection("fields.a = { type = \"string\" }\ncolour = 1"),
            "routes.toml:5:1: unknown field `colour`",
        ),
        (
            collection(""),
            "routes.toml:1: collection \"things\": declare its fields",
        ),
        (
            collection("fields.a = { type = \"text\" }"),
            "routes.toml:4: collection \"things\": field \"a\": `type` must be one of string, integer",
        ),
        (
            collection("fields.a = { type = \"string\", min = 1 }"),
            "field \"a\": `min` does not apply to `type = \"string\"`",
        ),
        (
            collection("fields.a = { type = \"integer\", max_length = 1 }"),
            "`max_length` does not apply to `type = \"integer\"`",
        ),
        (
            collection("fields.a = { type = \"string\", min_length = 5, max_length = 2 }"),
            "`min_length` (5) is more than `max_length` (2)",
        ),
        (
            collection("fields.a = { type = \"number\", min = 5, max = 2 }"),
            "`min` (5) is more than `max` (2)",
        ),
        (
            collection("fields.id = { type = \"integer\" }"),
            "the server sets \"id\" itself",
        ),
        (
            collection("fields.\"a b\" = { type = \"string\" }"),
            "a field name must be letters",
        ),
        (
            collection("fields.a = { type = \"string\", requried = true }"),
            "unknown field `requried`",
        ),
        (
            collection(
                "fields.a = { type = \"string\" }\nform_redirect = \"https://evil.example/\"",
            ),
            "`form_redirect` must be a path on this site",
        ),
        (
            collection("fields.a = { type = \"string\" }\nmethods = [\"TRACE\"]"),
            "`methods`: \"TRACE\" is not one of",
        ),
        (
            "[[collection]]\nname = \"Things\"\npath = \"/t\"\nfields.a = { type = \"string\" }\n"
                .into(),
            "routes.toml:1: collection \"Things\": `name` must be lower-case",
        ),
        (
            "[[collection]]\nname = \"t\"\npath = \"/t/\"\nfields.a = { type = \"string\" }\n"
                .into(),
            "`path` must name the list",
        ),
        (
            format!(
                "{}\n{}",
                collection("fields.a = { type = \"string\" }"),
                collection("fields.b = { type = \"string\" }")
            ),
            "routes.toml:6: collection \"things\" is already declared",
        ),
        (
            format!(
                "{}\n[[collection]]\nname = \"other\"\npath = \"/things\"\nfields.b = {{ type = \"string\" }}\n",
                collection("fields.a = { type = \"string\" }")
            ),
            "routes.toml:6: collection \"other\": path \"/things\" is already declared on line 1",
        ),
        (
            format!(
                "{}\n[[route]]\npath = \"/things/{{id}}\"\naction = \"get_user\"\n",
                collection("fields.a = { type = \"string\" }")
            ),
            "routes.toml:6: route \"/things/{id}\" is already declared on line 1",
        ),
    ];
    for (text, want) in cases {
        let err = format!("{:#}", load(&dir, &text).unwrap_err());
        assert!(err.contains(want), "{text}\n  gave: {err}\n  want: {want}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
