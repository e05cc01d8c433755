//! A real browser against the real server: headless Chromium loads pages whose scripts (or
//! forms) use tws the way a site's visitors do, and the test reads what they wrote into the
//! DOM. A preflighted cross-origin fetch between two tws origins, and one from an origin the
//! route does not allow; the bundled site's create-user form; a cross-site form post to a
//! protected collection; a 32 MiB download over HTTPS and HTTP/2. Run alone with
//! `cargo test --test browser`.

mod common;

use std::path::{Path, PathBuf};

use common::browser::{dump_dom, text_of};
use common::tls::test_cert;
use common::{Server, hash, scratch};

/// A folder served by tws on its own port (its routes written by `routes`, given its folder).
fn origin(dir: &Path, name: &str, routes: &str) -> Server {
    let root = dir.join(name);
    std::fs::create_dir_all(&root).unwrap();
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            "[server]\nroot = \"{}\"\ndata = \"{}\"\n\n{routes}",
            root.display(),
            dir.join(format!("{name}-data")).display()
        ),
    )
    .unwrap();
    Server::start(&["--config", file.to_str().unwrap()])
}

const PLAIN_SITE: &str = "[[route]]\npath = \"/\"\ndir = \".\"\n";

fn page(dir: &Path, name: &str, file: &str, html: &str) {
    std::fs::write(dir.join(name).join(file), html).unwrap();
}

fn profile(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("chromium-{name}"))
}

#[test]
fn a_preflighted_cross_origin_fetch_works_and_a_disallowed_origin_fails() {
    let dir = scratch("browser-cors");
    let allowed = origin(&dir, "allowed", PLAIN_SITE);
    let refused = origin(&dir, "refused", PLAIN_SITE);
    let api_routes = format!(
        "[[route]]\npath = \"/api\"\ndir = \".\"\n\
         cors = {{ origins = [\"http://{}\"], headers = [\"X-Custom\"] }}\n",
        allowed.addr
    );
    let api = origin(&dir, "api", &api_routes);
    page(&dir, "api", "data.json", "{\"answer\": 42}");
    let script = format!(
        "<!doctype html><p id=\"out\">waiting</p><script>\n\
         fetch('http://{}/api/data.json', {{headers: {{'X-Custom': '1'}}}})\n\
           .then(r => r.json())\n\
           .then(v => document.getElementById('out').textContent = 'OK ' + v.answer)\n\
           .catch(e => document.getElementById('out').textContent = 'FAILED ' + e);\n\
         </script>",
        api.addr
    );
    page(&dir, "allowed", "page.html", &script);
    page(&dir, "refused", "page.html", &script);
    let Some(dom) = dump_dom(&allowed.url("/page.html"), &profile(&dir, "a"), &[]) else {
        return;
    };
    assert_eq!(text_of(&dom, "out"), "OK 42", "{dom}");
    let dom = dump_dom(&refused.url("/page.html"), &profile(&dir, "b"), &[]).unwrap();
    assert!(
        text_of(&dom, "out").starts_with("FAILED TypeError"),
        "{dom}"
    );
    // The preflight itself reached the API and was answered for the allowed origin.
    common::wait_line(&api.log, "\"OPTIONS /api/data.json HTTP/1.1\" 204");
}

#[test]
fn the_bundled_create_user_form_lands_on_a_page_of_the_site() {
    let dir = scratch("browser-form");
    // The bundled routes and site, with a visitor's page added beside the listed files: it
    // opens `/` in a frame, fills in its form and submits it, as a person would, then says
    // where that landed.
    let site = dir.join("site");
    copy_tree(&common::repo().join("site"), &site);
    let routes = std::fs::read_to_string(common::repo().join("routes.toml"))
        .unwrap()
        .replace("root = \"site\"", &format!("root = \"{}\"", site.display()))
        .replace(
            "data = \"data\"",
            &format!("data = \"{}\"", dir.join("data").display()),
        );
    std::fs::write(dir.join("routes.toml"), routes).unwrap();
    std::fs::write(
        site.join("files/visit.html"),
        "<!doctype html><p id=\"out\">waiting</p><iframe id=\"f\" src=\"/\"></iframe><script>\n\
         const f = document.getElementById('f'); let submitted = false;\n\
         f.onload = () => {\n\
           const doc = f.contentDocument;\n\
           if (!submitted) {\n\
             submitted = true;\n\
             const form = doc.querySelector('form[action=\"/createUser\"]');\n\
             form.querySelector('[name=Nombre]').value = 'Ada Lovelace';\n\
             form.submit();\n\
             return;\n\
           }\n\
           // The landing page may still be filling itself in: look until it settles.\n\
           let tries = 0;\n\
           const report = () => {\n\
             const text = doc.body.innerText.replace(/\\s+/g, ' ');\n\
             if (!text.includes('Ada Lovelace') && ++tries < 100) return setTimeout(report, 50);\n\
             const styled = doc.querySelector('link[rel=stylesheet]') ? 'styled' : 'unstyled';\n\
             document.getElementById('out').textContent =\n\
               styled + ' | ' + doc.location.pathname + ' | ' + text.slice(0, 400);\n\
           };\n\
           report();\n\
         };\n\
         </script>",
    )
    .unwrap();
    let server = Server::start(&["--config", dir.join("routes.toml").to_str().unwrap()]);
    let Some(dom) = dump_dom(
        &server.url("/files/visit.html"),
        &profile(&dir, "form"),
        &[],
    ) else {
        return;
    };
    let landed = text_of(&dom, "out");
    assert!(landed.starts_with("styled | "), "{landed}");
    assert!(landed.contains("Ada Lovelace"), "{landed}");
    assert!(
        !landed.contains("\"Nombre\":"),
        "landed on raw JSON: {landed}"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_cross_site_form_post_to_a_protected_collection_is_refused() {
    let dir = scratch("browser-csrf");
    let routes = format!(
        "[auth.staff]\nusers = {{ alice = \"{}\" }}\n\n\
         [[collection]]\nname = \"notes\"\npath = \"/notes\"\nauth = \"staff\"\n\
         fields.text = {{ type = \"string\", required = true }}\n",
        hash("pw")
    );
    let target = origin(&dir, "target", &routes);
    let evil = origin(&dir, "evil", PLAIN_SITE);
    let form = format!(
        "<!doctype html><form id=\"f\" method=\"post\" action=\"http://{}/notes\">\
         <input name=\"text\" value=\"forged\"></form>\
         <script>document.getElementById('f').submit()</script>",
        target.addr
    );
    page(&dir, "evil", "attack.html", &form);
    let Some(dom) = dump_dom(&evil.url("/attack.html"), &profile(&dir, "csrf"), &[]) else {
        return;
    };
    assert!(dom.contains("cross-site request refused"), "{dom}");
    common::wait_line(&target.log, "\"POST /notes HTTP/1.1\" 403");
}

#[test]
fn a_32_mib_download_over_https_and_http2_arrives_whole() {
    let dir = scratch("browser-download");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut data = Vec::with_capacity(32 << 20);
    while data.len() < 32 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(www.join("big.bin"), &data).unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data);
    let want: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(
        www.join("download.html"),
        "<!doctype html><p id=\"out\">waiting</p><script>\n\
         fetch('/big.bin').then(r => r.arrayBuffer())\n\
           .then(b => crypto.subtle.digest('SHA-256', b).then(d => [b.byteLength, d]))\n\
           .then(([n, d]) => {\n\
             const hex = Array.from(new Uint8Array(d)).map(x => x.toString(16).padStart(2, '0')).join('');\n\
             const proto = performance.getEntriesByType('resource')[0].nextHopProtocol;\n\
             document.getElementById('out').textContent = proto + ' ' + n + ' ' + hex;\n\
           })\n\
           .catch(e => document.getElementById('out').textContent = 'FAILED ' + e);\n\
         </script>",
    )
    .unwrap();
    let cert = test_cert(&dir, "site", &[]);
    let server = Server::start_tls(
        &[
            "--root",
            www.to_str().unwrap(),
            "--data",
            dir.join("data").to_str().unwrap(),
        ],
        &cert,
    );
    let Some(dom) = dump_dom(
        &server.url("/download.html"),
        &profile(&dir, "download"),
        &["--ignore-certificate-errors"],
    ) else {
        return;
    };
    assert_eq!(
        text_of(&dom, "out"),
        format!("h2 {} {want}", 32 << 20),
        "{dom}"
    );
}
