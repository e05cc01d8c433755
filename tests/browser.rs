//! A real browser against the real server: headless Chromium loads pages whose scripts (or
//! forms) use tws the way a site's visitors do, and the test reads what they wrote into the
//! DOM. A preflighted cross-origin fetch between two tws origins, and one from an origin the
//! route does not allow; the bundled site's create-user form (and screenshots of its home,
//! thank-you and people pages); a cross-site form post to a
//! protected collection; a 32 MiB download over HTTPS and HTTP/2; files sent from a folder's
//! listing page (its script, then its plain form); the listing in light and dark, with
//! screenshots left in `target/screenshots`. Run alone with `cargo test --test browser`.

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
    assert!(landed.contains(" | /thanks | "), "{landed}");
    // The pages a person sees on the way, as the browser paints them (target/screenshots):
    // each has its text, and its screenshot is not blank.
    let shots = common::repo().join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, path, text) in [
        ("home", "/", "tws demo site"),
        (
            "thanks",
            "/thanks?id=1",
            "Ada Lovelace was created (user 1).",
        ),
        ("people", "/people", "Ada Lovelace"),
    ] {
        let dom = dump_dom(&server.url(path), &profile(&dir, name), &[]).unwrap();
        let flat = dom.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(text), "{path}: {dom}");
        let shot = shots.join(format!("site-{name}.png"));
        common::browser::screenshot(&server.url(path), &shot, &profile(&dir, name), None);
        let ink = common::browser::ink(&std::fs::read(&shot).unwrap());
        assert!(
            ink >= 5,
            "{path}: the screenshot is blank ({ink}/1000 pixels drawn)"
        );
    }
    assert!(
        dump_dom(&server.url("/people"), &profile(&dir, "count"), &[])
            .unwrap()
            .contains("1 person.")
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
    let data = common::Pattern::bytes(0x2545_f491_4f6c_dd1d, 32 << 20);
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

/// The listing page of an upload folder in a frame, driven as a person would: files picked
/// (a `File` made in the page) and sent by the page's script (PUT, with progress), then by
/// the plain form (multipart, as without script); each then listed and read back.
const UPLOAD_VISIT: &str = r#"<!doctype html><p id="out">waiting</p><iframe id="f" src="/drop/"></iframe><script>
const f = document.getElementById('f'), out = document.getElementById('out');
const size = 32 << 20, bytes = new Uint8Array(size);
let x = 2463534242;
for (let i = 0; i < size; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; bytes[i] = x & 255; }
const pick = (doc, file) => {
  const picked = new DataTransfer(); picked.items.add(file);
  doc.getElementById('files').files = picked.files;
};
const listed = doc => [...doc.querySelectorAll('td.name a')].map(a => a.textContent);
let step = 0, report = [];
f.onload = async () => {
  const doc = f.contentDocument;
  step += 1;
  if (step === 1) {
    pick(doc, new File([bytes], 'from the page.bin'));
    doc.getElementById('upload').requestSubmit();
  } else if (step === 2) {
    const got = new Uint8Array(await (await fetch('/drop/from%20the%20page.bin')).arrayBuffer());
    const same = got.length === size && got.every((b, i) => b === bytes[i]);
    report.push('script ' + listed(doc).includes('from the page.bin') + ' ' + same);
    pick(doc, new File(['plain form\n'], 'plain.txt'));
    doc.getElementById('upload').submit();
  } else if (step === 3) {
    const got = await (await fetch('/drop/plain.txt')).text();
    report.push('form ' + doc.location.pathname + ' ' + listed(doc).includes('plain.txt') + ' ' + JSON.stringify(got));
    out.textContent = report.join(' | ');
  }
};
</script>"#;

#[test]
fn files_sent_from_the_listing_page_arrive_whole() {
    // Over HTTP/1.1 from a routes file, and over HTTPS and HTTP/2 in folder mode.
    let dir = scratch("browser-upload");
    let site = "[[route]]\npath = \"/drop/\"\ndir = \"drop\"\nlisting = true\nupload = true\n\n\
                [[route]]\npath = \"/\"\ndir = \".\"\n";
    std::fs::create_dir_all(dir.join("site/drop")).unwrap();
    let plain = origin(&dir, "site", site);
    page(&dir, "site", "visit.html", UPLOAD_VISIT);
    let folder = dir.join("folder");
    std::fs::create_dir_all(folder.join("drop")).unwrap();
    std::fs::write(folder.join("visit.html"), UPLOAD_VISIT).unwrap();
    let cert = test_cert(&dir, "upload", &[]);
    let data = dir.join("folder-data");
    let args = [
        "--root",
        folder.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--upload",
    ];
    let tls = Server::start_tls(&args, &cert);
    let runs = [
        (&plain, dir.join("site/drop"), "HTTP/1.1"),
        (&tls, folder.join("drop"), "HTTP/2.0"),
    ];
    for (server, drop, version) in runs {
        let name = version.replace('/', "");
        let Some(dom) = dump_dom(
            &server.url("/visit.html"),
            &profile(&dir, &name),
            &["--ignore-certificate-errors"],
        ) else {
            return;
        };
        assert_eq!(
            text_of(&dom, "out"),
            "script true true | form /drop/ true \"plain form\\n\"",
            "{version}: {dom}"
        );
        let sent = std::fs::read(drop.join("from the page.bin")).unwrap();
        assert_eq!(sent.len(), 32 << 20, "{version}");
        common::wait_line(
            &server.log,
            &format!("\"PUT /drop/from%20the%20page.bin {version}\" 201"),
        );
        common::wait_line(&server.log, &format!("\"POST /drop/ {version}\" 303"));
    }
}

/// The background colour of the listing page, as the browser paints it.
const COLOURS: &str = r#"<!doctype html><p id="out">waiting</p><iframe id="f" src="/files/"></iframe><script>
const f = document.getElementById('f');
f.onload = () => {
  const doc = f.contentDocument;
  document.getElementById('out').textContent =
    getComputedStyle(doc.body).backgroundColor + ' ' + getComputedStyle(doc.querySelector('h1')).color;
};
</script>"#;

#[test]
fn the_listing_follows_the_light_or_dark_preference() {
    let dir = scratch("browser-colours");
    let site = "[[route]]\npath = \"/files/\"\ndir = \"files\"\nlisting = true\nupload = true\n\
                mkdir = true\ndelete = true\nrename = true\narchives = true\n\n\
                [[route]]\npath = \"/\"\ndir = \".\"\n";
    let files = dir.join("site/files");
    std::fs::create_dir_all(files.join("photos")).unwrap();
    let server = origin(&dir, "site", site);
    std::fs::write(files.join("notes.txt"), "notes").unwrap();
    std::fs::write(
        files.join("README.md"),
        "# Shared files\n\nPut *anything* here.\n",
    )
    .unwrap();
    page(&dir, "site", "colours.html", COLOURS);
    let Some(light) = dump_dom(&server.url("/colours.html"), &profile(&dir, "light"), &[]) else {
        return;
    };
    let dark = dump_dom(
        &server.url("/colours.html"),
        &profile(&dir, "dark"),
        &["--force-dark-mode"],
    )
    .unwrap();
    assert_eq!(text_of(&light, "out"), "rgb(255, 255, 255) rgb(29, 29, 31)");
    assert_eq!(text_of(&dark, "out"), "rgb(22, 23, 26) rgb(232, 232, 234)");
    // Screenshots of both, for people to look at (target/screenshots).
    let shots = common::repo().join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    for (name, extra) in [
        ("listing-light", None),
        ("listing-dark", Some("--force-dark-mode")),
    ] {
        let path = shots.join(format!("{name}.png"));
        common::browser::screenshot(&server.url("/files/"), &path, &profile(&dir, name), extra);
        let png = std::fs::read(&path).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{name}");
    }
}
