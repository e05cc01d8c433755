//! Compression on the fly against the real server: each coding decompresses to the file (with
//! the codec crates and with curl), negotiation by q-values, Vary and per-coding ETags, 304 per
//! coding, HEAD, the Range rule, what is never compressed, edits, streamed large files, the
//! switches that turn it off, and action answers.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Reply, Server, WAIT, one, read_to_close, scratch};

/// Text that compresses as real code does: repetitive, but not trivially.
fn script(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 100);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!(
                "function f{i}(a,b){{return a*{}+b-{};}}var v{i}=f{i}({},\"s{}\");\n",
                i % 7,
                i % 13,
                i * 31 % 97,
                i % 5
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

fn site(name: &str, extra_routes: &str, extra_server: &str) -> (PathBuf, Server) {
    let dir = scratch(name);
    let root = dir.join("site");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("app.js"), script(64 * 1024)).unwrap();
    std::fs::write(root.join("small.css"), "body{margin:0}\n".repeat(20)).unwrap();
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("photo.png"), &noise).unwrap();
    std::fs::write(root.join("big.txt"), script(3 << 20)).unwrap();
    std::fs::write(root.join("pre.txt"), script(4096)).unwrap();
    std::fs::write(
        root.join("pre.txt.gz"),
        b"not really gzip, but the file on disk",
    )
    .unwrap();
    std::fs::write(
        dir.join("routes.toml"),
        format!(
            "[server]\nroot = \"site\"\n{extra_server}\n\n\
             [[route]]\npath = \"/\"\ndir = \".\"\nlisting = true\n\n\
             [[route]]\npath = \"/raw.js\"\nfile = \"app.js\"\ncompress = false\n\n\
             [[route]]\npath = \"/createUser\"\naction = \"create_user\"\n\n\
             [[route]]\npath = \"/users\"\naction = \"list_users\"\n\n\
             [[route]]\npath = \"/metrics\"\naction = \"metrics\"\n\n{extra_routes}"
        ),
    )
    .unwrap();
    let routes = dir.join("routes.toml");
    let data = dir.join("data");
    let server = Server::start(&[
        "--config",
        routes.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    (dir, server)
}

fn fetch(server: &Server, method: &str, path: &str, headers: &str) -> Reply {
    one(
        server,
        format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

fn decompress(coding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "br" => {
            brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => out = zstd::stream::decode_all(data).unwrap(),
        "gzip" => {
            flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .unwrap();
        }
        other => panic!("unexpected coding {other}"),
    }
    out
}

fn file(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join("site").join(name)).unwrap()
}

#[test]
fn each_coding_decompresses_to_the_file_with_its_own_etag() {
    let (dir, server) = site("compress-codings", "", "");
    let original = file(&dir, "app.js");
    let identity = fetch(&server, "GET", "/app.js", "");
    assert_eq!(identity.header("content-encoding"), None);
    assert_eq!(identity.header("vary"), Some("Accept-Encoding"));
    let plain_tag = identity.header("etag").unwrap().to_owned();
    for coding in ["br", "zstd", "gzip"] {
        let reply = fetch(
            &server,
            "GET",
            "/app.js",
            &format!("Accept-Encoding: {coding}\r\n"),
        );
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-encoding"), Some(coding));
        assert_eq!(reply.header("vary"), Some("Accept-Encoding"));
        assert!(
            reply.body.len() < original.len() / 3,
            "{coding} barely compressed"
        );
        assert_eq!(decompress(coding, &reply.body), original, "{coding}");
        // 304 for that coding's own tag, and for no other.
        let tag = reply.header("etag").unwrap().to_owned();
        let want = format!("{}-{coding}\"", plain_tag.trim_end_matches('"'));
        assert_eq!(
            tag, want,
            "each coding has its own tag, derived from the file's"
        );
        let again = fetch(
            &server,
            "GET",
            "/app.js",
            &format!("Accept-Encoding: {coding}\r\nIf-None-Match: {tag}\r\n"),
        );
        assert_eq!(again.status, 304);
        assert_eq!(again.header("vary"), Some("Accept-Encoding"));
        assert_eq!(again.header("etag"), Some(tag.as_str()));
        let other = fetch(
            &server,
            "GET",
            "/app.js",
            &format!("Accept-Encoding: {coding}\r\nIf-None-Match: {plain_tag}\r\n"),
        );
        assert_eq!(
            other.status, 200,
            "the identity tag does not match {coding}"
        );
    }
    // curl decodes what it gets back to the same bytes.
    for coding in ["br", "zstd", "gzip"] {
        let out = Command::new("curl")
            .args(["-s", "--compressed", "-H"])
            .arg(format!("Accept-Encoding: {coding}"))
            .arg(server.url("/app.js"))
            .output()
            .unwrap();
        assert_eq!(out.stdout, original, "curl with {coding}");
    }
}

#[test]
fn q_values_choose_the_coding_or_refuse() {
    let (_dir, server) = site("compress-q", "", "");
    let cases: &[(&str, u16, Option<&str>)] = &[
        ("gzip, br", 200, Some("br")),
        ("br;q=0, gzip", 200, Some("gzip")),
        ("br;q=0.5, zstd;q=0.9", 200, Some("zstd")),
        ("*", 200, Some("br")),
        ("gzip;q=0.5, identity", 200, None),
        ("deflate", 200, None),
        ("identity;q=0", 406, None),
        ("*;q=0", 406, None),
    ];
    for (accept, status, coding) in cases {
        let reply = fetch(
            &server,
            "GET",
            "/app.js",
            &format!("Accept-Encoding: {accept}\r\n"),
        );
        assert_eq!(reply.status, *status, "{accept}");
        assert_eq!(reply.header("content-encoding"), *coding, "{accept}");
        assert_eq!(reply.header("vary").is_some(), *status == 200, "{accept}");
    }
}

#[test]
fn head_ranges_and_what_is_never_compressed() {
    let (dir, server) = site("compress-rules", "", "");
    let br = "Accept-Encoding: br\r\n";
    // HEAD carries the same headers as GET.
    let get = fetch(&server, "GET", "/app.js", br);
    let head = fetch(&server, "HEAD", "/app.js", br);
    for name in [
        "content-length",
        "content-encoding",
        "etag",
        "vary",
        "content-type",
    ] {
        assert_eq!(get.header(name), head.header(name), "{name}");
    }
    assert!(head.body.is_empty());
    // A Range request is answered from the file itself: identity bytes, identity tag.
    let ranged = fetch(
        &server,
        "GET",
        "/app.js",
        &format!("{br}Range: bytes=0-99\r\n"),
    );
    assert_eq!(ranged.status, 206);
    assert_eq!(ranged.header("content-encoding"), None);
    assert_eq!(ranged.header("content-range"), Some("bytes 0-99/65536"));
    assert_eq!(ranged.body, file(&dir, "app.js")[..100]);
    assert!(!ranged.header("etag").unwrap().contains("-br"));
    // Images, small files and routes with compress = false are sent as they are.
    for path in ["/photo.png", "/small.css", "/raw.js"] {
        let reply = fetch(&server, "GET", path, br);
        assert_eq!(reply.header("content-encoding"), None, "{path}");
    }
    assert_eq!(fetch(&server, "GET", "/photo.png", br).header("vary"), None);
    // A precompressed file on disk wins over compressing.
    let pre = fetch(&server, "GET", "/pre.txt", "Accept-Encoding: gzip, br\r\n");
    assert_eq!(pre.header("content-encoding"), Some("gzip"));
    assert_eq!(pre.body, file(&dir, "pre.txt.gz"));
}

#[test]
fn an_edited_file_is_compressed_anew() {
    let (dir, server) = site("compress-edit", "", "");
    let br = "Accept-Encoding: br\r\n";
    let first = fetch(&server, "GET", "/app.js", br);
    let edited = script(70_000);
    std::fs::write(dir.join("site/app.js.tmp"), &edited).unwrap();
    std::fs::rename(dir.join("site/app.js.tmp"), dir.join("site/app.js")).unwrap();
    // Kept forms are checked against the disk at most once a second, like the files.
    let started = Instant::now();
    loop {
        let reply = fetch(&server, "GET", "/app.js", br);
        if reply.header("etag") != first.header("etag") {
            assert_eq!(decompress("br", &reply.body), edited);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "still the old form"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads a chunked body from after the head.
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[test]
fn large_files_are_streamed_through_the_compressor() {
    let (dir, server) = site("compress-stream", "", "");
    let original = file(&dir, "big.txt");
    for coding in ["br", "zstd", "gzip"] {
        let mut stream = server.connect();
        stream
            .write_all(
                format!(
                    "GET /big.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: {coding}\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
        let bytes = read_to_close(&mut stream);
        let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&bytes[..split]).to_ascii_lowercase();
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        assert!(!head.contains("content-length"), "{head}");
        assert!(
            head.contains(&format!("content-encoding: {coding}")),
            "{head}"
        );
        let body = dechunk(&bytes[split + 4..]);
        assert_eq!(decompress(coding, &body), original, "{coding}");
    }
    // HTTP/1.0: the body ends with the connection.
    let mut stream = server.connect();
    stream
        .write_all(b"GET /big.txt HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
        .unwrap();
    let bytes = read_to_close(&mut stream);
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&bytes[..split]).to_ascii_lowercase();
    assert!(
        !head.contains("chunked") && head.contains("connection: close"),
        "{head}"
    );
    assert_eq!(decompress("gzip", &bytes[split + 4..]), original);
    // And over a kept-alive connection, the next request is answered after the chunked one.
    let mut stream = server.connect();
    stream
        .write_all(
            b"GET /big.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n\
              GET /small.css HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let bytes = read_to_close(&mut stream);
    assert!(bytes.ends_with(&file(&dir, "small.css")));
}

#[test]
fn switches_turn_compression_off() {
    let (_dir, server) = site("compress-off", "", "[server.compression]\nenabled = false");
    let reply = fetch(&server, "GET", "/app.js", "Accept-Encoding: br\r\n");
    assert_eq!(reply.header("content-encoding"), None);
    let dir = scratch("compress-cli");
    std::fs::write(dir.join("app.js"), script(10_000)).unwrap();
    let server = Server::start(&["--root", dir.to_str().unwrap(), "--no-compress"]);
    let reply = fetch(&server, "GET", "/app.js", "Accept-Encoding: br\r\n");
    assert_eq!(reply.header("content-encoding"), None);
    let server = Server::start(&[
        "--root",
        dir.to_str().unwrap(),
        "--compress-min-size",
        "20000",
    ]);
    let reply = fetch(&server, "GET", "/app.js", "Accept-Encoding: br\r\n");
    assert_eq!(
        reply.header("content-encoding"),
        None,
        "below --compress-min-size"
    );
}

#[test]
fn action_answers_and_listings_are_compressed() {
    let (dir, server) = site("compress-actions", "", "");
    for i in 0..40 {
        let body = format!("{{\"Nombre\": \"user number {i}\"}}");
        let reply = one(
            &server,
            format!(
                "POST /createUser HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        assert_eq!(reply.status, 201);
    }
    let plain = fetch(&server, "GET", "/users", "");
    assert!(plain.body.len() > 1024);
    let reply = fetch(&server, "GET", "/users", "Accept-Encoding: zstd\r\n");
    assert_eq!(reply.header("content-encoding"), Some("zstd"));
    assert_eq!(decompress("zstd", &reply.body), plain.body);
    let many = dir.join("site/many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..30 {
        std::fs::write(many.join(format!("file{i}.txt")), "x").unwrap();
    }
    let listing = fetch(&server, "GET", "/many/", "Accept-Encoding: gzip\r\n");
    assert_eq!(listing.header("content-encoding"), Some("gzip"));
    assert_eq!(listing.header("vary"), Some("Accept, Accept-Encoding"));
    let text = String::from_utf8(decompress("gzip", &listing.body)).unwrap();
    assert!(text.contains("file29.txt"));
    // /metrics (several KiB of text) is compressed like any other answer; Prometheus asks
    // for gzip.
    let metrics = fetch(&server, "GET", "/metrics", "Accept-Encoding: gzip\r\n");
    assert_eq!(metrics.status, 200);
    assert_eq!(metrics.header("content-encoding"), Some("gzip"));
    assert_eq!(metrics.header("vary"), Some("Accept-Encoding"));
    let text = String::from_utf8(decompress("gzip", &metrics.body)).unwrap();
    assert!(text.contains("tws_build_info"), "{text}");
}
