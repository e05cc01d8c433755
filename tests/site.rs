//! The bundled site end to end, through a real HTTP client: every route of routes.toml.

mod common;

use common::{Server, client, repo, scratch};

fn fetch(agent: &ureq::Agent, url: &str) -> (u16, http_parts::Headers, Vec<u8>) {
    let mut response = agent.get(url).call().unwrap();
    let status = response.status().as_u16();
    let headers = http_parts::Headers::of(&response);
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap();
    (status, headers, body)
}

mod http_parts {
    /// Response headers as owned strings.
    pub struct Headers(Vec<(String, String)>);

    impl Headers {
        pub fn of<B>(response: &ureq::http::Response<B>) -> Headers {
            Headers(
                response
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect(),
            )
        }

        pub fn get(&self, name: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }
}

#[test]
fn every_page_and_asset_is_served_with_its_type() {
    let data = scratch("site-pages");
    let server = Server::bundled(&data);
    let agent = client();
    // (path, content type, file it must equal)
    let cases = [
        ("/", "text/html; charset=utf-8", "site/index.html"),
        (
            "/page_one",
            "text/html; charset=utf-8",
            "site/page_one.html",
        ),
        (
            "/page_two",
            "text/html; charset=utf-8",
            "site/page_two.html",
        ),
        (
            "/page_three",
            "text/html; charset=utf-8",
            "site/page_three.html",
        ),
        (
            "/page_four",
            "text/html; charset=utf-8",
            "site/page_four.html",
        ),
        ("/style.css", "text/css; charset=utf-8", "site/style.css"),
        ("/image_user_one", "image/png", "site/images/user_one.png"),
        ("/image_user_two", "image/jpeg", "site/images/user_two.jpg"),
        (
            "/bigfile",
            "text/plain; charset=utf-8",
            "site/files/bigfile.txt",
        ),
    ];
    for (path, content_type, file) in cases {
        let (status, headers, body) = fetch(&agent, &server.url(path));
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers.get("content-type"), Some(content_type), "{path}");
        assert_eq!(body, std::fs::read(repo().join(file)).unwrap(), "{path}");
        assert!(
            headers.get("date").is_some() && headers.get("server").is_some(),
            "{path}"
        );
    }
}

#[test]
fn images_are_real_and_pages_load_everything_through_tws() {
    let data = scratch("site-links");
    let server = Server::bundled(&data);
    let agent = client();
    let (_, _, png) = fetch(&agent, &server.url("/image_user_one"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1024);
    let (_, _, jpeg) = fetch(&agent, &server.url("/image_user_two"));
    assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) && jpeg.ends_with(&[0xFF, 0xD9]));
    // (page, images it must show, whether it offers the download)
    let pages = [
        ("/page_one", 1, false),
        ("/page_two", 2, false),
        ("/page_three", 0, true),
        ("/page_four", 2, true),
    ];
    let (_, _, index) = fetch(&agent, &server.url("/"));
    let index = String::from_utf8(index).unwrap();
    assert!(index.contains("<form method=\"post\" action=\"/createUser\">"));
    for (page, images, download) in pages {
        assert!(
            index.contains(&format!("href=\"{page}\"")),
            "index links {page}"
        );
        let (_, _, html) = fetch(&agent, &server.url(page));
        let html = String::from_utf8(html).unwrap();
        let distinct = ["/image_user_one", "/image_user_two"]
            .iter()
            .filter(|src| html.contains(&format!("src=\"{src}\"")))
            .count();
        assert_eq!(distinct, images, "{page}");
        assert_eq!(html.contains("href=\"/bigfile\""), download, "{page}");
        // Every local reference in the page answers 200.
        for link in html
            .split(['"'])
            .filter(|s| s.starts_with('/') && !s.starts_with("//"))
        {
            let (status, _, _) = fetch(&agent, &server.url(link));
            let expected = if link == "/createUser" { 405 } else { 200 };
            assert_eq!(status, expected, "{page} refers to {link}");
        }
    }
}

#[test]
fn the_big_file_is_a_named_download() {
    let data = scratch("site-big");
    let server = Server::bundled(&data);
    let (status, headers, body) = fetch(&client(), &server.url("/bigfile"));
    assert_eq!(status, 200);
    assert!(body.len() > 1 << 20);
    assert_eq!(
        headers.get("content-disposition"),
        Some("attachment; filename=\"bigfile.txt\"")
    );
    assert_eq!(
        headers.get("content-length"),
        Some(body.len().to_string().as_str())
    );
}

#[test]
fn head_sends_the_get_headers_without_a_body() {
    let data = scratch("site-head");
    let server = Server::bundled(&data);
    let agent = client();
    for path in [
        "/",
        "/page_four",
        "/image_user_one",
        "/image_user_two",
        "/bigfile",
        "/users",
        "/files/",
    ] {
        let get = agent.get(server.url(path)).call().unwrap();
        let mut head = agent.head(server.url(path)).call().unwrap();
        assert_eq!(head.status(), get.status(), "{path}");
        for name in [
            "content-length",
            "content-type",
            "content-disposition",
            "allow",
        ] {
            assert_eq!(
                head.headers().get(name),
                get.headers().get(name),
                "{path} {name}"
            );
        }
        assert!(head.body_mut().read_to_vec().unwrap().is_empty(), "{path}");
    }
}

#[test]
fn the_files_folder_lists_and_serves_its_contents() {
    let data = scratch("site-dir");
    let server = Server::bundled(&data);
    let agent = client();
    let (status, headers, body) = fetch(&agent, &server.url("/files/"));
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("href=\"./bigfile.txt\"")
    );
    let (status, _, body) = fetch(&agent, &server.url("/files/bigfile.txt"));
    assert_eq!((status, body.len()), (200, 1_300_051));
    let (status, _, _) = fetch(&agent, &server.url("/nowhere"));
    assert_eq!(status, 404);
}
