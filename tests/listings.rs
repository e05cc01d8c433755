//! Listings of large folders against the real server: pages cover every entry exactly once,
//! in HTML and JSON, by following the links the server gives; names are escaped; an entry
//! added between pages shows up.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::{Reply, Server, get, one, scratch};

const ENTRIES: usize = 25_000;
const PAGE: usize = 1_000;
const HOSTILE: [&str; 3] = [
    "a \"quoted\" & <tagged>.txt",
    "café ünï.txt",
    "50% #off?.txt",
];

fn big_folder(name: &str) -> PathBuf {
    let dir = scratch(name);
    let d = dir.join("site/d");
    std::fs::create_dir_all(&d).unwrap();
    for i in 0..ENTRIES - HOSTILE.len() {
        std::fs::write(d.join(format!("f{i:05}.txt")), b"").unwrap();
    }
    for name in HOSTILE {
        std::fs::write(d.join(name), b"hostile").unwrap();
    }
    std::fs::write(
        dir.join("routes.toml"),
        format!(
            "[server]\nroot = \"site\"\nmax_listing_entries = {PAGE}\n\n\
             [[route]]\npath = \"/\"\ndir = \".\"\nlisting = true\n"
        ),
    )
    .unwrap();
    dir
}

fn start(dir: &Path) -> Server {
    let routes = dir.join("routes.toml");
    Server::start(&["--config", routes.to_str().unwrap(), "--log-format", "off"])
}

/// The target of the `rel="next"` link in a Link header, if any.
fn next_link(reply: &Reply) -> Option<String> {
    let links = reply.header("link")?;
    links.split(", ").find_map(|link| {
        let (target, rel) = link.split_once(">; ")?;
        (rel == "rel=\"next\"").then(|| target.trim_start_matches('<').to_owned())
    })
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[test]
fn html_pages_cover_every_entry_once_by_following_their_links() {
    let dir = big_folder("listings-html");
    let server = start(&dir);
    let mut seen = HashSet::new();
    let mut target = "/d/".to_owned();
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= ENTRIES / PAGE + 1, "the links never end");
        let reply = get(&server, &target);
        assert_eq!(reply.status, 200, "{target}");
        let html = reply.text();
        assert!(
            html.contains(&format!(
                "<p class=\"muted\">{ENTRIES} entries; page {pages} of {}",
                ENTRIES / PAGE
            )),
            "the page says how many entries the folder holds"
        );
        // Rows are `<tr><td class="name"><a href="./HREF">TEXT</a>`; link and text name one entry.
        let mut rows = 0;
        for row in html.split("<tr><td class=\"name\"><a href=\"./").skip(1) {
            let (href, rest) = row.split_once("\">").unwrap();
            let text = rest.split_once("</a>").unwrap().0;
            assert!(
                !text.contains('<') && !text.contains('"'),
                "unescaped: {text}"
            );
            let name = unescape(text);
            assert_eq!(decode(href), name, "link and name disagree");
            assert!(seen.insert(name.clone()), "{name} listed twice");
            rows += 1;
        }
        assert!(rows <= PAGE);
        // The HTML's own link to the next page agrees with the Link header.
        match next_link(&reply) {
            Some(next) => {
                let page = next.rsplit_once("?page=").unwrap().1;
                assert!(html.contains(&format!("<a href=\"?page={page}\" rel=\"next\">")));
                target = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, ENTRIES / PAGE);
    assert_eq!(seen.len(), ENTRIES, "every entry appears exactly once");
    for name in HOSTILE {
        assert!(seen.contains(name), "{name}");
    }
}

#[test]
fn json_pages_cover_every_entry_and_a_new_entry_appears() {
    let dir = big_folder("listings-json");
    let server = start(&dir);
    let fetch = |target: &str| {
        one(
            &server,
            format!(
                "GET {target} HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
    };
    let mut names = Vec::new();
    let mut target = Some("/d/".to_owned());
    let mut pages = 0;
    while let Some(t) = target {
        pages += 1;
        assert!(pages <= ENTRIES / PAGE + 2, "the links never end");
        let reply = fetch(&t);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let items: Vec<serde_json::Value> = serde_json::from_slice(&reply.body).unwrap();
        assert!(items.len() <= PAGE);
        names.extend(items.iter().map(|i| i["name"].as_str().unwrap().to_owned()));
        if pages == 2 {
            // Added between pages: it sorts last, so a later page shows it.
            std::fs::write(dir.join("site/d/zz-added.txt"), b"new").unwrap();
        }
        target = next_link(&reply);
    }
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "an entry was listed twice");
    assert!(
        names.contains(&"zz-added.txt".to_owned()),
        "the new entry is missing"
    );
    assert_eq!(names.len(), ENTRIES + 1);
    // Past the last page: 404; not a page number: 400.
    assert_eq!(fetch("/d/?page=27").status, 404);
    assert_eq!(fetch("/d/?page=two").status, 400);
}
