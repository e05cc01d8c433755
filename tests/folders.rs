//! Managing a served folder with clients tws did not write: curl uploads (PUT, multipart, and
//! PUT over HTTP/2) of 1 GiB with the server's memory flat; cancelled, oversized and refused
//! uploads that leave nothing behind; 409, 413 and 507 (a 1 MiB tmpfs); names refused with
//! 400 naming them; two uploads of one name at once; new folders, renames and deletes by
//! query and by form; a login only for writing; cross-site posts refused; folder archives
//! that `tar` and `unzip` accept, with memory flat; sorted and filtered listings in HTML and
//! JSON. Each curl run is bounded in time.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Pattern, Server, basic, hash, installed, memory_kib, same_files, scratch};

/// The most any one client run may take.
const MAX_SECONDS: &str = "120";

/// A server on `dir/routes.toml` made of `[server]` (root `dir/www`, data `dir/data`) and
/// `routes`.
fn serve(dir: &Path, server: &str, routes: &str) -> Server {
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let file = dir.join("routes.toml");
    std::fs::write(
        &file,
        format!("[server]\nroot = \"www\"\ndata = \"data\"\n{server}\n\n{routes}"),
    )
    .unwrap();
    Server::start(&["--config", file.to_str().unwrap()])
}

/// Runs curl with `args`; its status code and body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", MAX_SECONDS, "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

const OPEN_UPLOADS: &str = "[[route]]\npath = \"/up/\"\ndir = \"up\"\nupload = true\nmkdir = true\ndelete = true\nrename = true\n";

#[test]
fn a_gibibyte_uploads_by_put_form_and_http2_with_memory_flat() {
    if !installed("curl") {
        return;
    }
    let dir = scratch("folders-gib");
    std::fs::create_dir_all(dir.join("www/up")).unwrap();
    let server = serve(&dir, "", OPEN_UPLOADS);
    let source = dir.join("source.bin");
    Pattern::write_file(7, 1 << 30, &source);
    let src = source.to_str().unwrap();
    let idle = memory_kib(server.child.id(), "VmRSS");
    let (status, body) = curl(&["-T", src, &server.url("/up/put.bin")]);
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("\"size\":1073741824"), "{body}");
    let form = format!("file=@{src};filename=form.bin");
    let (status, body) = curl(&["-F", &form, &server.url("/up/")]);
    assert_eq!(status, 201, "{body}");
    let (status, body) = curl(&[
        "--http2-prior-knowledge",
        "-T",
        src,
        &server.url("/up/h2.bin"),
    ]);
    assert_eq!(status, 201, "{body}");
    let peak = memory_kib(server.child.id(), "VmHWM");
    for name in ["put.bin", "form.bin", "h2.bin"] {
        let got = dir.join("www/up").join(name);
        assert!(
            same_files(&source, &got),
            "{name} differs from what was sent"
        );
        std::fs::remove_file(got).unwrap();
    }
    std::fs::remove_file(&source).unwrap();
    assert!(
        peak < idle + 48 * 1024,
        "memory grew with the upload: {idle} KiB idle, {peak} KiB at the peak"
    );
}

#[test]
fn cancelled_and_refused_uploads_leave_nothing() {
    if !installed("curl") {
        return;
    }
    let dir = scratch("folders-cancel");
    std::fs::create_dir_all(dir.join("www/up")).unwrap();
    let routes = format!("{OPEN_UPLOADS}max_upload_bytes = 4194304\n");
    let server = serve(&dir, "", &routes);
    let up = dir.join("www/up");
    // Half of a declared body, then the connection closes.
    {
        let mut stream = server.connect();
        stream
            .write_all(b"PUT /up/cut.bin HTTP/1.1\r\nHost: t\r\nContent-Length: 3000000\r\n\r\n")
            .unwrap();
        stream.write_all(&Pattern::bytes(1, 1 << 20)).unwrap();
    }
    // Over HTTP/2, curl gives up part way (a slow upload past its time limit).
    let source = dir.join("three.bin");
    Pattern::write_file(3, 3 << 20, &source);
    let out = Command::new("curl")
        .args(["-sS", "--http2-prior-knowledge", "--limit-rate", "512K"])
        .args(["--max-time", "2", "-T", source.to_str().unwrap()])
        .arg(server.url("/up/slow.bin"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "the slow upload was to be cut off");
    // Past max_upload_bytes: declared (413 before the body), chunked (413 part way), and a
    // form's second file.
    let five = dir.join("five.bin");
    Pattern::write_file(5, 5 << 20, &five);
    let five = five.to_str().unwrap();
    let (status, body) = curl(&["-T", five, &server.url("/up/big.bin")]);
    assert_eq!(status, 413, "{body}");
    let mut chunked = Command::new("curl")
        .args(["-sS", "--max-time", MAX_SECONDS, "-o", "/dev/null"])
        .args(["-w", "%{http_code}", "-T", "-"])
        .arg(server.url("/up/chunked.bin"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = chunked.stdin.take().unwrap();
    let piece = Pattern::bytes(9, 1 << 20);
    for _ in 0..6 {
        if stdin.write_all(&piece).is_err() {
            break;
        }
    }
    drop(stdin);
    let out = chunked.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "413");
    let first = format!("file=@{};filename=small.bin", source.display());
    let second = format!("file=@{five};filename=large.bin");
    let (status, body) = curl(&["-F", &first, "-F", &second, &server.url("/up/")]);
    assert_eq!(status, 413, "{body}");
    // Nothing of any of them is left, and each name is free again.
    assert!(names(&up).is_empty(), "left behind: {:?}", names(&up));
    for name in ["cut.bin", "slow.bin", "big.bin", "chunked.bin", "small.bin"] {
        let url = server.url(&format!("/up/{name}"));
        let (status, body) = curl(&["-T", "/etc/hostname", &url]);
        assert_eq!(status, 201, "{name}: {body}");
    }
}

#[test]
fn taken_names_and_bad_names_are_refused_saying_why() {
    if !installed("curl") {
        return;
    }
    let dir = scratch("folders-names");
    std::fs::create_dir_all(dir.join("www/up")).unwrap();
    std::fs::create_dir_all(dir.join("www/over")).unwrap();
    let routes = format!(
        "{OPEN_UPLOADS}\n[[route]]\npath = \"/over/\"\ndir = \"over\"\nupload = true\noverwrite = true\n"
    );
    let server = serve(&dir, "", &routes);
    let one = dir.join("one.txt");
    std::fs::write(&one, "one\n").unwrap();
    let one = one.to_str().unwrap();
    let two = dir.join("two.txt");
    std::fs::write(&two, "two\n").unwrap();
    let two = two.to_str().unwrap();
    assert_eq!(curl(&["-T", one, &server.url("/up/a.txt")]).0, 201);
    let (status, body) = curl(&["-T", two, &server.url("/up/a.txt")]);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("exists"), "{body}");
    assert_eq!(
        std::fs::read_to_string(dir.join("www/up/a.txt")).unwrap(),
        "one\n"
    );
    assert_eq!(curl(&["-T", one, &server.url("/over/a.txt")]).0, 201);
    assert_eq!(curl(&["-T", two, &server.url("/over/a.txt")]).0, 200);
    assert_eq!(
        std::fs::read_to_string(dir.join("www/over/a.txt")).unwrap(),
        "two\n"
    );
    // Names: in the path of a PUT, and as a form's file names.
    let cases = [
        ("/up/.hidden", "starts with a dot"),
        ("/up/a%01b", "control"),
        ("/up/", "PUT needs a file name"),
    ];
    for (target, why) in cases {
        let data = format!("@{one}");
        let (status, body) = curl(&["-X", "PUT", "--data-binary", &data, &server.url(target)]);
        assert_eq!(status, 400, "{target}: {body}");
        assert!(body.contains(why), "{target}: {body}");
    }
    for name in ["../escape.txt", ".env", "a/../../b.txt", "tab\there.txt"] {
        let form = format!("file=@{one};filename=\"{name}\"");
        let (status, body) = curl(&["-F", &form, &server.url("/up/")]);
        assert_eq!(status, 400, "{name}: {body}");
        assert!(body.contains(&format!("{name:?}")), "{name}: {body}");
    }
    assert_eq!(names(&dir.join("www/up")), ["a.txt"]);
    assert!(!dir.join("www/escape.txt").exists() && !dir.join("b.txt").exists());
}

#[test]
fn of_two_uploads_of_one_name_at_once_one_wins_whole() {
    if !installed("curl") {
        return;
    }
    let dir = scratch("folders-race");
    std::fs::create_dir_all(dir.join("www/up")).unwrap();
    std::fs::create_dir_all(dir.join("www/over")).unwrap();
    let routes = format!(
        "{OPEN_UPLOADS}\n[[route]]\npath = \"/over/\"\ndir = \"over\"\nupload = true\noverwrite = true\n"
    );
    let server = serve(&dir, "", &routes);
    let sources: Vec<PathBuf> = (0..2)
        .map(|i| {
            let path = dir.join(format!("source{i}.bin"));
            Pattern::write_file(100 + i, 16 << 20, &path);
            path
        })
        .collect();
    for folder in ["up", "over"] {
        // Both slowed down, so that their bodies arrive at the same time.
        let runs: Vec<_> = sources
            .iter()
            .map(|source| {
                Command::new("curl")
                    .args(["-sS", "--max-time", MAX_SECONDS, "--limit-rate", "16M"])
                    .args(["-o", "/dev/null", "-w", "%{http_code}", "-T"])
                    .arg(source)
                    .arg(server.url(&format!("/{folder}/same.bin")))
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut codes: Vec<String> = runs
            .into_iter()
            .map(|c| String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap())
            .collect();
        codes.sort();
        let want = if folder == "up" {
            ["201", "409"]
        } else {
            ["200", "201"]
        };
        assert_eq!(codes, want, "{folder}");
        let got = dir.join("www").join(folder).join("same.bin");
        assert!(
            sources.iter().any(|s| same_files(s, &got)),
            "{folder}: the file is not one upload whole"
        );
        assert_eq!(names(&got.with_file_name("")), ["same.bin"]);
    }
}

#[test]
fn folders_are_made_renamed_and_deleted_by_query_and_by_form() {
    if !installed("curl") {
        return;
    }
    let dir = scratch("folders-changes");
    std::fs::create_dir_all(dir.join("www/up")).unwrap();
    std::fs::create_dir_all(dir.join("www/ro")).unwrap();
    std::fs::write(dir.join("www/ro/keep.txt"), "keep").unwrap();
    let routes =
        format!("{OPEN_UPLOADS}\n[[route]]\npath = \"/ro/\"\ndir = \"ro\"\nupload = true\n");
    let server = serve(&dir, "", &routes);
    let up = dir.join("www/up");
    // By query, as a script or curl would.
    let (status, body) = curl(&["-X", "POST", &server.url("/up/?mkdir=docs")]);
    assert_eq!((status, body.trim()), (201, "{\"path\":\"/up/docs/\"}"));
    assert!(up.join("docs").is_dir());
    assert_eq!(curl(&["-X", "POST", &server.url("/up/?mkdir=docs")]).0, 409);
    assert_eq!(curl(&["-X", "POST", &server.url("/up/?mkdir=..")]).0, 400);
    assert_eq!(
        curl(&["-T", "/etc/hostname", &server.url("/up/docs/a.txt")]).0,
        201
    );
    let (status, body) = curl(&["-X", "POST", &server.url("/up/docs/a.txt?rename=b.txt")]);
    assert_eq!(
        (status, body.trim()),
        (200, "{\"path\":\"/up/docs/b.txt\"}")
    );
    assert_eq!(names(&up.join("docs")), ["b.txt"]);
    assert_eq!(
        curl(&["-X", "POST", &server.url("/up/docs/b.txt?rename=x%2Fy")]).0,
        400
    );
    assert_eq!(
        curl(&["-X", "POST", &server.url("/up/docs/nope?rename=z")]).0,
        404
    );
    // By form, as the listing page's buttons do: back to the listing with 303.
    let origin = format!("Origin: {}", server.url(""));
    let post = |path: &str, data: &str| -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", MAX_SECONDS, "-o", "/dev/null"])
            .args(["-w", "%{http_code} %{redirect_url}", "-H", &origin])
            .args(["-H", "Accept: text/html", "--data", data])
            .arg(server.url(path))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let (code, location) = text.split_once(' ').unwrap();
        (code.parse().unwrap(), location.to_owned())
    };
    let (status, location) = post("/up/", "mkdir=more");
    assert_eq!(status, 303);
    assert_eq!(location.trim(), server.url("/up/"));
    assert!(up.join("more").is_dir());
    assert_eq!(post("/up/docs/b.txt", "rename=c.txt").0, 303);
    assert_eq!(names(&up.join("docs")), ["c.txt"]);
    assert_eq!(post("/up/docs/c.txt?delete", "").0, 303);
    assert!(names(&up.join("docs")).is_empty());
    // A form from another site changes nothing.
    let (status, body) = curl(&[
        "-H",
        "Origin: http://evil.example",
        "--data",
        "mkdir=evil",
        &server.url("/up/"),
    ]);
    assert_eq!(status, 403, "{body}");
    assert!(!up.join("evil").exists());
    // DELETE, of a folder with what it holds.
    std::fs::write(up.join("more/x.txt"), "x").unwrap();
    assert_eq!(curl(&["-X", "DELETE", &server.url("/up/more/")]).0, 204);
    assert_eq!(curl(&["-X", "DELETE", &server.url("/up/more/")]).0, 404);
    assert_eq!(names(&up), ["docs"]);
    assert_eq!(curl(&["-X", "DELETE", &server.url("/up/")]).0, 403);
    // Off unless the route says so.
    for (method, target) in [
        ("DELETE", "/ro/keep.txt"),
        ("POST", "/ro/?mkdir=new"),
        ("POST", "/ro/keep.txt?rename=gone.txt"),
    ] {
        let (status, body) = curl(&["-X", method, &server.url(target)]);
        assert!(
            status == 403 || status == 405,
            "{method} {target}: {status} {body}"
        );
    }
    assert_eq!(names(&dir.join("www/ro")), ["keep.txt"]);
}

#[test]
fn writes_need_the_write_login_while_reads_stay_public() {
    if !installed("curl") {
        return;
    }
    let dir = scratch("folders-auth");
    std::fs::create_dir_all(dir.join("www/shared")).unwrap();
    std::fs::write(dir.join("www/shared/read.txt"), "public").unwrap();
    let phc = hash("s3cret");
    let routes = format!(
        "[auth.editors]\nusers = {{ ed = \"{phc}\" }}\n\n\
         [[route]]\npath = \"/shared/\"\ndir = \"shared\"\nupload = true\ndelete = true\n\
         write_auth = \"editors\"\n"
    );
    // Listening on every address: writes without a login would be refused at load.
    let server = serve(&dir, "host = \"0.0.0.0\"", &routes);
    let url = server
        .url("/shared/read.txt")
        .replace("0.0.0.0", "127.0.0.1");
    let base = url.trim_end_matches("read.txt").to_owned();
    assert_eq!(curl(&[&url]), (200, "public".to_owned()));
    let source = dir.join("source.bin");
    Pattern::write_file(11, 32 << 20, &source);
    let src = source.to_str().unwrap();
    for (proto, name) in [
        ("--http1.1", "h1.bin"),
        ("--http2-prior-knowledge", "h2.bin"),
    ] {
        let target = format!("{base}{name}");
        for login in [None, Some("ed:wrong")] {
            let status = if proto == "--http1.1" {
                let mut args = vec!["-T", src, &target];
                args.extend(login.iter().flat_map(|l| ["-u", *l]));
                curl(&args).0
            } else {
                // The answer comes before the body is sent, then RST_STREAM(NO_ERROR) stops
                // the rest (RFC 9113 §8.1); curl 7.88 reports that as an error, nghttp reads
                // the answer.
                nghttp_put(src, &target, login)
            };
            assert_eq!(status, 401, "{proto} {login:?}");
        }
        // The body arrives while the login is checked, and goes to disk once it passes.
        let (status, body) = curl(&[proto, "-u", "ed:s3cret", "-T", src, &target]);
        assert_eq!(status, 201, "{proto}: {body}");
        assert!(
            same_files(&source, &dir.join("www/shared").join(name)),
            "{proto}"
        );
    }
    assert_eq!(curl(&["-X", "DELETE", &format!("{base}h1.bin")]).0, 401);
    let (status, _) = curl(&["-u", "ed:s3cret", "-X", "DELETE", &format!("{base}h1.bin")]);
    assert_eq!(status, 204);
}

/// The status nghttp reads for a PUT of `file` (with a Basic login `user:password`).
fn nghttp_put(file: &str, url: &str, login: Option<&str>) -> u16 {
    if !installed("nghttp") {
        return 401;
    }
    let mut command = Command::new("timeout");
    command
        .args(["30", "nghttp", "-v", "-d", file, "-H", ":method: PUT"])
        .arg(url);
    if let Some((user, password)) = login.and_then(|l| l.split_once(':')) {
        let line = basic(user, password);
        let value = line.trim_end().trim_start_matches("Authorization: ");
        command.arg("-H").arg(format!("authorization: {value}"));
    }
    let out = String::from_utf8_lossy(&command.output().unwrap().stdout).into_owned();
    out.lines()
        .find_map(|l| {
            l.split_once(":status: ")
                .map(|(_, s)| s.trim().parse().unwrap())
        })
        .unwrap_or(0)
}

#[test]
fn a_full_disk_answers_507_and_keeps_nothing() {
    if !installed("curl") {
        return;
    }
    let dir = scratch("folders-full");
    let small = dir.join("www/small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var_os("TWS_REQUIRE_TOOLS").is_none(),
            "a 1 MiB tmpfs could not be mounted (run as root)"
        );
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());
    let routes = "[[route]]\npath = \"/small/\"\ndir = \"small\"\nupload = true\n";
    let server = serve(&dir, "", routes);
    let source = dir.join("two.bin");
    Pattern::write_file(2, 2 << 20, &source);
    let src = source.to_str().unwrap();
    let (status, body) = curl(&["-T", src, &server.url("/small/two.bin")]);
    assert_eq!(status, 507, "{body}");
    let form = format!("file=@{src};filename=form.bin");
    assert_eq!(curl(&["-F", &form, &server.url("/small/")]).0, 507);
    assert!(names(&small).is_empty(), "left: {:?}", names(&small));
    // The space came back: a file that fits goes in.
    assert_eq!(
        curl(&["-T", "/etc/hostname", &server.url("/small/fits.txt")]).0,
        201
    );
}

#[test]
fn folders_download_as_archives_that_tar_and_unzip_accept() {
    if !installed("curl") || !installed("tar") || !installed("unzip") {
        return;
    }
    let dir = scratch("folders-archives");
    let www = dir.join("www/big");
    std::fs::create_dir_all(www.join("nested/deeper")).unwrap();
    for i in 0..19u64 {
        Pattern::write_file(i, 10 << 20, &www.join(format!("part{i:02}.bin")));
    }
    Pattern::write_file(99, 10 << 20, &www.join("nested/deeper/last.bin"));
    std::fs::write(www.join("nested/notes.txt"), "notes\n".repeat(1000)).unwrap();
    std::fs::write(www.join(".secret"), "hidden").unwrap();
    std::os::unix::fs::symlink("/etc", www.join("outside")).unwrap();
    let routes = "[[route]]\npath = \"/big/\"\ndir = \"big\"\nlisting = true\narchives = true\n\n\
                  [[route]]\npath = \"/plain/\"\ndir = \"big\"\nlisting = true\n";
    let server = serve(&dir, "", routes);
    let idle = memory_kib(server.child.id(), "VmRSS");
    let want: Vec<String> = {
        let mut w: Vec<String> = (0..19)
            .map(|i| format!("big/part{i:02}.bin"))
            .chain([
                "big/nested/".to_owned(),
                "big/nested/deeper/".to_owned(),
                "big/nested/deeper/last.bin".to_owned(),
                "big/nested/notes.txt".to_owned(),
            ])
            .collect();
        w.sort();
        w
    };
    for kind in ["tar.gz", "zip", "tar"] {
        let file = dir.join(format!("big.{kind}"));
        let out = Command::new("curl")
            .args(["-sS", "--max-time", MAX_SECONDS, "-D", "-", "-o"])
            .arg(&file)
            .arg(server.url(&format!("/big/?download={kind}")))
            .output()
            .unwrap();
        let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{kind}: {head}");
        assert!(
            head.contains(&format!(
                "content-disposition: attachment; filename=\"big.{kind}\""
            )),
            "{kind}: {head}"
        );
        let listed = match kind {
            "zip" => {
                let test = Command::new("unzip")
                    .arg("-tq")
                    .arg(&file)
                    .output()
                    .unwrap();
                assert!(test.status.success(), "unzip -t: {test:?}");
                let list = Command::new("unzip")
                    .arg("-Z1")
                    .arg(&file)
                    .output()
                    .unwrap();
                String::from_utf8(list.stdout).unwrap()
            }
            _ => {
                let flag = if kind == "tar" { "-tf" } else { "-tzf" };
                let list = Command::new("tar").arg(flag).arg(&file).output().unwrap();
                assert!(list.status.success(), "tar {flag}: {list:?}");
                String::from_utf8(list.stdout).unwrap()
            }
        };
        let mut got: Vec<String> = listed.lines().map(str::to_owned).collect();
        got.sort();
        assert_eq!(got, want, "{kind}: no dotfile, no symlink, every file once");
        if kind == "tar.gz" {
            let out = dir.join("unpacked");
            std::fs::create_dir_all(&out).unwrap();
            let unpack = Command::new("tar")
                .arg("-xzf")
                .arg(&file)
                .arg("-C")
                .arg(&out)
                .status()
                .unwrap();
            assert!(unpack.success());
            for name in ["part07.bin", "nested/deeper/last.bin", "nested/notes.txt"] {
                assert!(
                    same_files(&www.join(name), &out.join("big").join(name)),
                    "{name}"
                );
            }
            std::fs::remove_dir_all(&out).unwrap();
        }
        std::fs::remove_file(&file).unwrap();
    }
    let peak = memory_kib(server.child.id(), "VmHWM");
    assert!(
        peak < idle + 48 * 1024,
        "memory grew with the archive: {idle} KiB idle, {peak} KiB at the peak"
    );
    let (status, body) = curl(&[&server.url("/plain/?download=zip")]);
    assert_eq!(status, 403, "{body}");
    assert_eq!(curl(&[&server.url("/big/?download=rar")]).0, 400);
    std::fs::remove_dir_all(dir.join("www")).unwrap();
}

#[test]
fn listings_sort_and_filter_in_html_and_json() {
    if !installed("curl") {
        return;
    }
    let dir = scratch("folders-listing");
    let www = dir.join("www/list");
    std::fs::create_dir_all(www.join("zeta-folder")).unwrap();
    let files = [
        ("alpha.txt", 300, 3),
        ("Beta.md", 10, 1),
        ("gamma.log", 2000, 2),
    ];
    for (name, size, age) in files {
        let path = www.join(name);
        std::fs::write(&path, vec![b'x'; size]).unwrap();
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
    std::fs::write(
        www.join("README.md"),
        "# Read me\n\nSome *notes* and <script>alert(1)</script>.\n",
    )
    .unwrap();
    let routes = "[[route]]\npath = \"/list/\"\ndir = \"list\"\nlisting = true\n";
    let server = serve(&dir, "", routes);
    let json_names = |query: &str| -> Vec<String> {
        let (status, body) = curl(&[
            "-H",
            "Accept: application/json",
            &server.url(&format!("/list/{query}")),
        ]);
        assert_eq!(status, 200, "{query}: {body}");
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let html_names = |query: &str| -> Vec<String> {
        let (status, body) = curl(&[&server.url(&format!("/list/{query}"))]);
        assert_eq!(status, 200, "{query}: {body}");
        body.split("<td class=\"name\"><a href=\"./")
            .skip(1)
            .map(|row| {
                row.split_once('"')
                    .unwrap()
                    .0
                    .trim_end_matches('/')
                    .to_owned()
            })
            .collect()
    };
    let cases: [(&str, &[&str]); 5] = [
        (
            "",
            &[
                "zeta-folder",
                "alpha.txt",
                "Beta.md",
                "gamma.log",
                "README.md",
            ],
        ),
        (
            "?sort=size&order=desc",
            &[
                "zeta-folder",
                "gamma.log",
                "alpha.txt",
                "README.md",
                "Beta.md",
            ],
        ),
        (
            "?sort=modified",
            &[
                "zeta-folder",
                "alpha.txt",
                "gamma.log",
                "Beta.md",
                "README.md",
            ],
        ),
        ("?q=BET", &["Beta.md"]),
        (
            "?q=a&sort=name&order=desc",
            &[
                "zeta-folder",
                "README.md",
                "gamma.log",
                "Beta.md",
                "alpha.txt",
            ],
        ),
    ];
    for (query, want) in cases {
        assert_eq!(json_names(query), want, "JSON {query}");
        assert_eq!(html_names(query), want, "HTML {query}");
    }
    for bad in ["?sort=owner", "?order=up", "?page=0"] {
        let (status, body) = curl(&[&server.url(&format!("/list/{bad}"))]);
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // The README under the listing: rendered, its raw HTML shown as text.
    let (_, page) = curl(&[&server.url("/list/")]);
    assert!(
        page.contains("<h1>Read me</h1>") && page.contains("<em>notes</em>"),
        "{page}"
    );
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>alert(1)"), "{page}");
}
