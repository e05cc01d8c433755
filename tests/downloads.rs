//! Large downloads, past every socket buffer, with clients tws did not write: curl (identity
//! and each compression coding, decoded and compared byte for byte), h2load with windows of
//! 2^30 (four requests on one connection), nghttp (whole bodies, and eight streams at once on
//! one connection), and a slow reader. Over HTTP/2 on TLS and in cleartext, with HTTP/1.1 as
//! the control. Each client is bounded in time; a stall fails the test instead of hanging it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::tls::{TestCert, test_cert};
use common::{Server, scratch};

/// The most any one client run may take (a stalled download fails here).
const MAX_SECONDS: &str = "30";
const RANDOM_BYTES: usize = 32 << 20;
const TEXT_BYTES: usize = 24 << 20;

/// A folder with a 32 MiB random file and a 24 MiB text file, and a certificate.
struct Site {
    dir: PathBuf,
    cert: TestCert,
}

fn site(name: &str) -> Site {
    let dir = scratch(name);
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    // Incompressible bytes without reading /dev/urandom.
    let mut pattern = common::Pattern::new(0x9e37_79b9_7f4a_7c15);
    let mut random = vec![0; RANDOM_BYTES];
    pattern.fill(&mut random);
    std::fs::write(www.join("rand32.bin"), &random).unwrap();
    let words = [
        "alpha", "beta", "gamma", "delta", "stream", "window", "frame", "tws",
    ];
    let mut text = String::with_capacity(TEXT_BYTES + 64);
    let mut i = 0usize;
    while text.len() < TEXT_BYTES {
        let x = pattern.next_u64();
        text.push_str(words[(x % words.len() as u64) as usize]);
        i += 1;
        text.push(if i.is_multiple_of(9) { '\n' } else { ' ' });
    }
    std::fs::write(www.join("text24.txt"), &text).unwrap();
    let cert = test_cert(&dir, "site", &[]);
    Site { dir, cert }
}

impl Site {
    fn www(&self) -> PathBuf {
        self.dir.join("www")
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.www().join(name)).unwrap()
    }

    /// tws serving the folder, over TLS or in cleartext, with a data folder of its own.
    fn serve(&self, tls: bool) -> Server {
        let data = self.dir.join(if tls { "data-tls" } else { "data-plain" });
        let www = self.www();
        let args = [
            "--root",
            www.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ];
        if tls {
            Server::start_tls(&args, &self.cert)
        } else {
            Server::start(&args)
        }
    }

    fn cacert(&self) -> &str {
        self.cert.cert.to_str().unwrap()
    }
}

/// curl's download of `url` into `out`: (status, HTTP version, seconds).
fn curl(args: &[&str], url: &str, out: &Path) -> (u16, String, f64) {
    let started = Instant::now();
    let output = Command::new("curl")
        .args(["-sS", "--max-time", MAX_SECONDS, "-o"])
        .arg(out)
        .args(["-w", "%{http_code} %{http_version}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "curl {args:?} {url}: {text} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (status, version) = text.split_once(' ').unwrap_or(("0", ""));
    (
        status.parse().unwrap_or(0),
        version.to_owned(),
        started.elapsed().as_secs_f64(),
    )
}

#[test]
fn curl_downloads_arrive_whole_over_http2_and_http1_plain_and_tls() {
    let site = site("dl-curl");
    let random = site.file("rand32.bin");
    let text = site.file("text24.txt");
    let out = site.dir.join("out");
    for tls in [true, false] {
        let server = site.serve(tls);
        let cacert = ["--cacert", site.cacert()];
        let trust: &[&str] = if tls { &cacert } else { &[] };
        let h2 = if tls {
            "--http2"
        } else {
            "--http2-prior-knowledge"
        };
        for (protocol, version) in [(h2, "2"), ("--http1.1", "1.1")] {
            let cases: [(&str, &[&str], &[u8]); 5] = [
                ("/rand32.bin", &[], &random),
                ("/text24.txt", &[], &text),
                (
                    "/text24.txt",
                    &["-H", "Accept-Encoding: br", "--compressed"],
                    &text,
                ),
                (
                    "/text24.txt",
                    &["-H", "Accept-Encoding: zstd", "--compressed"],
                    &text,
                ),
                (
                    "/text24.txt",
                    &["-H", "Accept-Encoding: gzip", "--compressed"],
                    &text,
                ),
            ];
            for (path, extra, want) in cases {
                let args = [trust, &[protocol], extra].concat();
                let (status, got_version, seconds) = curl(&args, &server.url(path), &out);
                let body = std::fs::read(&out).unwrap();
                assert_eq!(
                    (status, got_version.as_str(), body.len()),
                    (200, version, want.len()),
                    "{path} {args:?} (tls {tls})"
                );
                assert!(body == want, "{path} {args:?}: the bytes differ");
                eprintln!("curl {protocol} {path} {extra:?} tls={tls}: {seconds:.2} s");
            }
        }
    }
}

#[test]
fn h2load_with_large_windows_gets_every_download_on_one_connection() {
    if !common::installed("h2load") {
        return;
    }
    let site = site("dl-h2load");
    for tls in [true, false] {
        let server = site.serve(tls);
        let url = server.url("/rand32.bin");
        let started = Instant::now();
        let output = Command::new("timeout")
            .args([
                MAX_SECONDS,
                "h2load",
                "-n",
                "4",
                "-c",
                "1",
                "-w",
                "30",
                "-W",
                "30",
            ])
            .arg(&url)
            .output()
            .expect("h2load");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            text.contains("4 total, 4 started, 4 done, 4 succeeded, 0 failed"),
            "{text}"
        );
        assert!(
            text.contains(&format!("{} total", 4 * RANDOM_BYTES))
                || text.contains(&format!("({}) data", 4 * RANDOM_BYTES)),
            "not every byte arrived: {text}"
        );
        eprintln!(
            "h2load 4 x 32 MiB tls={tls}: {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn nghttp_gets_whole_bodies_and_eight_streams_at_once() {
    if !common::installed("nghttp") {
        return;
    }
    let site = site("dl-nghttp");
    let random = site.file("rand32.bin");
    for tls in [true, false] {
        let server = site.serve(tls);
        let url = server.url("/rand32.bin");
        // One download, its body on stdout.
        let output = Command::new("timeout")
            .args([MAX_SECONDS, "nghttp"])
            .arg(&url)
            .output()
            .expect("nghttp");
        assert!(output.status.success(), "nghttp tls={tls}");
        assert!(
            output.stdout == random,
            "nghttp tls={tls}: the bytes differ"
        );
        // Eight streams of the same download at once on one connection, each whole.
        let output = Command::new("timeout")
            .args([MAX_SECONDS, "nghttp", "-n", "-s", "-m", "8"])
            .arg(&url)
            .output()
            .expect("nghttp");
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        let whole = text
            .lines()
            .filter(|l| l.contains(" 200 ") && l.contains("32M /rand32.bin"))
            .count();
        assert_eq!(whole, 8, "tls={tls}: {text}");
    }
}

#[test]
fn a_slow_reader_gets_everything_while_another_downloads_at_full_speed() {
    let site = site("dl-slow");
    let random = site.file("rand32.bin");
    for tls in [true, false] {
        let server = site.serve(tls);
        let cacert = ["--cacert", site.cacert()];
        let trust: &[&str] = if tls { &cacert } else { &[] };
        let h2 = if tls {
            "--http2"
        } else {
            "--http2-prior-knowledge"
        };
        for protocol in [h2, "--http1.1"] {
            let slow_out = site.dir.join("slow");
            let url = server.url("/rand32.bin");
            let args: Vec<String> = [trust, &[protocol, "--limit-rate", "16M"]]
                .concat()
                .into_iter()
                .map(str::to_owned)
                .collect();
            let slow = {
                let (url, slow_out) = (url.clone(), slow_out.clone());
                std::thread::spawn(move || {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    curl(&args, &url, &slow_out)
                })
            };
            let fast_out = site.dir.join("fast");
            let (status, _, fast) = curl(&[trust, &[protocol]].concat(), &url, &fast_out);
            assert_eq!(status, 200);
            assert!(std::fs::read(&fast_out).unwrap() == random);
            let (status, _, slow) = slow.join().unwrap();
            assert_eq!(status, 200);
            assert!(
                std::fs::read(&slow_out).unwrap() == random,
                "{protocol} tls={tls}: the slow reader's bytes differ"
            );
            eprintln!("{protocol} tls={tls}: fast {fast:.2} s beside a slow {slow:.2} s");
        }
    }
}
