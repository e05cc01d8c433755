//! Static-file semantics without sockets: validators, conditional requests, ranges,
//! precompressed variants, listings, policies and error pages.

use std::collections::HashSet;

use super::*;

fn etag_of(site: &Site, target: &str) -> String {
    let (response, _) = exchange(&site.app, "GET", target, "", "");
    header(&response, "ETag").unwrap().to_owned()
}

#[test]
fn files_carry_validators_and_accept_ranges() {
    let site = site("validators");
    let (response, body) = exchange(&site.app, "GET", "/digits", "", "");
    assert_eq!((response.status, body.len()), (200, 1000));
    let etag = header(&response, "ETag").unwrap();
    assert!(etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"));
    assert!(httpdate::parse_http_date(header(&response, "Last-Modified").unwrap()).is_ok());
    assert_eq!(header(&response, "Accept-Ranges"), Some("bytes"));
    assert_eq!(
        header(&response, "Cache-Control"),
        Some("public, max-age=60")
    );
    assert_eq!(header(&response, "Vary"), None);
}

#[test]
fn conditional_requests_give_304_and_412() {
    let site = site("conditional");
    let etag = etag_of(&site, "/digits");
    let (response, _) = exchange(&site.app, "GET", "/digits", "", "");
    let modified = header(&response, "Last-Modified").unwrap().to_owned();
    // (headers, status)
    let cases: Vec<(String, u16)> = vec![
        (format!("If-None-Match: {etag}\r\n"), 304),
        (format!("If-None-Match: \"nope\", {etag}\r\n"), 304),
        ("If-None-Match: \"nope\"\r\n".into(), 200),
        (format!("If-Modified-Since: {modified}\r\n"), 304),
        (
            "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n".into(),
            200,
        ),
        (format!("If-Match: {etag}\r\n"), 200),
        ("If-Match: \"nope\"\r\n".into(), 412),
        (
            "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n".into(),
            412,
        ),
        (format!("If-Unmodified-Since: {modified}\r\n"), 200),
    ];
    for (headers, status) in cases {
        let (response, body) = exchange(&site.app, "GET", "/digits", &headers, "");
        assert_eq!(response.status, status, "{headers}");
        if status == 304 {
            assert!(body.is_empty());
            assert_eq!(header(&response, "ETag"), Some(etag.as_str()));
            assert_eq!(
                header(&response, "Cache-Control"),
                Some("public, max-age=60")
            );
        }
    }
    let (response, _) = exchange(
        &site.app,
        "HEAD",
        "/digits",
        &format!("If-None-Match: {etag}\r\n"),
        "",
    );
    assert_eq!(response.status, 304);
}

#[test]
fn ranges_give_206_multipart_and_416() {
    let site = site("ranges");
    let digits = "0123456789".repeat(100);
    // (Range header, status, Content-Range, body)
    let cases: &[(&str, u16, Option<&str>, &str)] = &[
        ("bytes=0-9", 206, Some("bytes 0-9/1000"), "0123456789"),
        ("bytes=995-", 206, Some("bytes 995-999/1000"), "56789"),
        ("bytes=-3", 206, Some("bytes 997-999/1000"), "789"),
        ("bytes=5-5", 206, Some("bytes 5-5/1000"), "5"),
        (
            "bytes=990-99999999999999999999999",
            206,
            Some("bytes 990-999/1000"),
            "0123456789",
        ),
        ("bytes=1000-", 416, Some("bytes */1000"), ""),
        ("bytes=9-1", 200, None, &digits),
        ("lines=1-2", 200, None, &digits),
    ];
    for (range, status, content_range, body) in cases {
        let (response, bytes) = exchange(
            &site.app,
            "GET",
            "/digits",
            &format!("Range: {range}\r\n"),
            "",
        );
        assert_eq!(response.status, *status, "{range}");
        assert_eq!(
            header(&response, "Content-Range"),
            *content_range,
            "{range}"
        );
        if *status != 416 {
            assert_eq!(String::from_utf8(bytes).unwrap(), *body, "{range}");
        }
    }
}

#[test]
fn several_ranges_make_a_multipart_body() {
    let site = site("multipart");
    let (response, bytes) = exchange(
        &site.app,
        "GET",
        "/digits",
        "Range: bytes=0-1, 10-12\r\n",
        "",
    );
    assert_eq!(response.status, 206);
    let boundary = response
        .content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap()
        .to_owned();
    let text = String::from_utf8(bytes).unwrap();
    let expected = format!(
        "\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-1/1000\r\n\r\n01\
         \r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 10-12/1000\r\n\r\n012\
         \r\n--{boundary}--\r\n"
    );
    assert_eq!(text, expected);
    assert_eq!(response.body.len(), expected.len() as u64);
}

#[test]
fn if_range_decides_between_part_and_whole() {
    let site = site("if-range");
    let etag = etag_of(&site, "/digits");
    let (response, _) = exchange(
        &site.app,
        "GET",
        "/digits",
        &format!("Range: bytes=0-1\r\nIf-Range: {etag}\r\n"),
        "",
    );
    assert_eq!(response.status, 206);
    let (response, body) = exchange(
        &site.app,
        "GET",
        "/digits",
        "Range: bytes=0-1\r\nIf-Range: \"stale\"\r\n",
        "",
    );
    assert_eq!((response.status, body.len()), (200, 1000));
}

#[test]
fn precompressed_variants_follow_accept_encoding() {
    let site = site("precompressed");
    // (Accept-Encoding, Content-Encoding, body)
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("", None, "plain document"),
        ("Accept-Encoding: gzip\r\n", Some("gzip"), "gzip variant"),
        (
            "Accept-Encoding: gzip, br\r\n",
            Some("br"),
            "brotli variant",
        ),
        (
            "Accept-Encoding: br;q=0.5, gzip\r\n",
            Some("gzip"),
            "gzip variant",
        ),
        (
            "Accept-Encoding: br;q=0, gzip;q=0\r\n",
            None,
            "plain document",
        ),
        ("Accept-Encoding: identity\r\n", None, "plain document"),
    ];
    let mut tags = HashSet::new();
    for (accept, coding, body) in cases {
        let (response, bytes) = exchange(&site.app, "GET", "/files/doc.txt", accept, "");
        assert_eq!(response.status, 200, "{accept}");
        assert_eq!(header(&response, "Content-Encoding"), *coding, "{accept}");
        assert_eq!(
            header(&response, "Vary"),
            Some("Accept-Encoding"),
            "{accept}"
        );
        assert_eq!(
            response.content_type, "text/plain; charset=utf-8",
            "{accept}"
        );
        assert_eq!(String::from_utf8(bytes).unwrap(), *body, "{accept}");
        tags.insert((
            coding.map(str::to_owned),
            header(&response, "ETag").unwrap().to_owned(),
        ));
    }
    // Each representation has its own tag.
    let distinct: HashSet<&String> = tags.iter().map(|(_, t)| t).collect();
    assert_eq!(distinct.len(), 3);
    // Ranges apply to the variant served.
    let (response, bytes) = exchange(
        &site.app,
        "GET",
        "/files/doc.txt",
        "Accept-Encoding: gzip\r\nRange: bytes=0-3\r\n",
        "",
    );
    assert_eq!((response.status, bytes.as_slice()), (206, &b"gzip"[..]));
}

#[test]
fn listings_come_as_json_on_request() {
    let site = site("json-listing");
    let (response, bytes) = exchange(
        &site.app,
        "GET",
        "/files/",
        "Accept: application/json\r\n",
        "",
    );
    assert_eq!(
        (response.status, response.content_type.as_ref()),
        (200, "application/json")
    );
    assert_eq!(header(&response, "Vary"), Some("Accept"));
    let items: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    // Folders first, dotfiles and escaping symlinks left out.
    assert_eq!(
        names,
        [
            "inner",
            "a b.txt",
            "doc.txt",
            "doc.txt.br",
            "doc.txt.gz",
            "notes.md"
        ]
    );
    assert_eq!(items[0]["type"], "dir");
    assert_eq!(items[1]["size"], 6);
}

#[test]
fn policies_types_and_error_pages_come_from_the_routes_file() {
    let extra = r#"
[[route]]
path = "/open"
dir = "files"
dotfiles = true
symlinks = "follow"
listing = true

[[route]]
path = "/strict"
dir = "files"
symlinks = "never"

[types]
md = "text/markdown; charset=utf-8"

[errors]
404 = "404.html"
"#;
    let site = site_with("policies", extra);
    let status = |target: &str| exchange(&site.app, "GET", target, "", "").0.status;
    assert_eq!(status("/open/.secret"), 200);
    assert_eq!(status("/open/escape.txt"), 200);
    assert_eq!(status("/strict/escape.txt"), 404);
    assert_eq!(status("/strict/doc.txt"), 200);
    let (response, _) = exchange(&site.app, "GET", "/files/notes.md", "", "");
    assert_eq!(response.content_type, "text/markdown; charset=utf-8");
    let (response, body) = exchange(&site.app, "GET", "/nowhere", "", "");
    assert_eq!(
        (response.status, response.content_type.as_ref()),
        (404, "text/html; charset=utf-8")
    );
    assert_eq!(body, b"<h1>custom not found</h1>");
    // Actions keep their JSON errors.
    let (response, _) = exchange(&site.app, "GET", "/users/77", "", "");
    assert_eq!(
        (response.status, response.content_type.as_ref()),
        (404, "application/json")
    );
}

#[test]
fn a_file_set_answers_again_until_its_file_changes() {
    let site = site("set-reuse");
    let req = request("GET /digits HTTP/1.1\r\nHost: t\r\n\r\n");
    let Dispatch::Run(routed) = site.app.route(&req, PEER) else {
        panic!()
    };
    let (first, set) = handle(&site.app, &req, &routed, b"");
    let Some(Cacheable::File(set)) = set else {
        panic!("a file route comes with its set")
    };
    assert!(set.is_current());
    assert_eq!(set.memory(), 1000);
    let again = set.respond(&req).unwrap();
    assert_eq!(body_bytes(again.body), body_bytes(first.body));
    // Same length, new content: the modification time (or inode) tells.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(site.dir.join("site/digits.txt"), "9876543210".repeat(100)).unwrap();
    assert!(!set.is_current());
    // A variant appearing beside the file also makes the set stale.
    std::fs::write(site.dir.join("site/digits.txt.gz"), "gz").unwrap();
    let (_, set) = handle(&site.app, &req, &routed, b"");
    let Some(Cacheable::File(set)) = set else {
        panic!()
    };
    assert!(set.is_current());
    std::fs::remove_file(site.dir.join("site/digits.txt.gz")).unwrap();
    assert!(!set.is_current());
}

#[test]
fn a_listing_is_reused_only_while_its_folder_is_unchanged() {
    let site = site("listing-reuse");
    let req = request("GET /files/ HTTP/1.1\r\nHost: t\r\n\r\n");
    let Dispatch::Run(routed) = site.app.route(&req, PEER) else {
        panic!()
    };
    let (first, kept) = handle(&site.app, &req, &routed, b"");
    let Some(Cacheable::Listing(listing)) = kept else {
        panic!("a listing comes with itself")
    };
    let now = std::time::Instant::now();
    assert!(listing.is_current(now));
    // The page asked for was rendered and kept; the other form is rendered when first asked.
    assert!(listing.try_respond(&req).is_some());
    let again = listing.respond(&req).unwrap();
    assert_eq!(body_bytes(again.body), body_bytes(first.body));
    let json = request("GET /files/ HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\n\r\n");
    assert!(listing.try_respond(&json).is_none());
    assert_eq!(
        listing.respond(&json).unwrap().content_type,
        "application/json"
    );
    assert!(listing.try_respond(&json).is_some());
    // Too old, or the folder changed: rebuilt.
    assert!(!listing.is_current(now + crate::handlers::listing::LISTING_TTL));
    std::fs::write(site.dir.join("site/files/new.txt"), "new").unwrap();
    assert!(!listing.is_current(now));
}

#[test]
fn long_listings_are_paged_with_links_and_counts() {
    let extra = r#"
[[route]]
path = "/paged"
dir = "files"
listing = true
max_listing_entries = 4
"#;
    let site = site_with("listing-pages", extra);
    let get = |target: &str, accept: &str| exchange(&site.app, "GET", target, accept, "");
    // Six entries, four a page: two pages.
    let (first, html) = get("/paged/", "");
    assert_eq!(first.status, 200);
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.contains("6 entries; page 1 of 2, entries 1 to 4."),
        "{html}"
    );
    assert!(html.contains("<a href=\"?page=2\" rel=\"next\">"), "{html}");
    assert!(
        !html.contains("notes.md"),
        "the fifth entry onwards is on page 2"
    );
    assert_eq!(
        header(&first, "Link"),
        Some("</paged/?page=2>; rel=\"next\"")
    );
    let json = "Accept: application/json\r\n";
    let (second, bytes) = get("/paged/?page=2", json);
    let items: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["doc.txt.gz", "notes.md"]);
    assert_eq!(
        header(&second, "Link"),
        Some("</paged/?page=1>; rel=\"prev\"")
    );
    // Other query parameters are left alone; a bad page number is the client's mistake.
    let cases = [
        ("/paged/?x=1&page=2", 200),
        ("/paged/?page=3", 404),
        ("/paged/?page=0", 400),
        ("/paged/?page=-1", 400),
        ("/paged/?page=1e3", 400),
        ("/paged/?page=99999999999999999999999", 400),
    ];
    for (target, status) in cases {
        assert_eq!(get(target, "").0.status, status, "{target}");
    }
    // Short listings carry no page links.
    let (short, html) = get("/files/", "");
    assert!(header(&short, "Link").is_none());
    assert!(
        String::from_utf8(html)
            .unwrap()
            .contains("<p class=\"muted\">6 entries.</p>")
    );
}
