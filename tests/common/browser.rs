//! Headless Chromium (Debian's `chromium`) as a test client: a page is loaded, its scripts
//! run (and forms submit) within a budget of virtual time, and the DOM it ends with is
//! returned (`--dump-dom`). Pages report their result by writing it into the DOM.

use std::path::Path;
use std::process::Command;

/// The DOM Chromium ends with after loading `url`; `None` when Chromium is not installed
/// (the test then says so, or fails when `TWS_REQUIRE_TOOLS` is set).
pub fn dump_dom(url: &str, profile: &Path, extra: &[&str]) -> Option<String> {
    let binary = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(binary) = binary else {
        assert!(
            std::env::var_os("TWS_REQUIRE_TOOLS").is_none(),
            "chromium is not installed (apt-get install chromium)"
        );
        eprintln!("skipped: chromium is not installed");
        return None;
    };
    let _ = std::fs::remove_dir_all(profile);
    let out = Command::new("timeout")
        .arg("60")
        .arg(binary)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The text of the element with `id` in a dumped DOM (what the page's script wrote).
pub fn text_of(dom: &str, id: &str) -> String {
    let open = format!("id=\"{id}\">");
    let Some(at) = dom.find(&open) else {
        return String::new();
    };
    let rest = &dom[at + open.len()..];
    rest[..rest.find('<').unwrap_or(rest.len())].to_owned()
}

/// A 1000×800 screenshot of `url` into `path` (`extra`: one more Chromium flag).
pub fn screenshot(url: &str, path: &Path, profile: &Path, extra: Option<&str>) {
    let _ = std::fs::remove_dir_all(profile);
    let out = Command::new("timeout")
        .arg("60")
        .arg("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1000,800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("--screenshot={}", path.display()))
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How much of a screenshot differs from its most common colour, in thousandths of its
/// pixels: 0 for a blank page. Decodes the 8-bit RGB or RGBA PNG Chromium writes
/// (non-interlaced; every scanline filter of the PNG specification undone).
pub fn ink(png: &[u8]) -> usize {
    use std::io::Read;
    let chunk = |at: usize| {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        (
            &png[at + 4..at + 8],
            &png[at + 8..at + 8 + len],
            at + 12 + len,
        )
    };
    let (mut at, mut width, mut height, mut channels, mut packed) = (8, 0, 0, 0, Vec::new());
    while at < png.len() {
        let (kind, data, next) = chunk(at);
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!((data[8], data[12]), (8, 0), "8-bit, not interlaced");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
            }
            b"IDAT" => packed.extend_from_slice(data),
            _ => {}
        }
        at = next;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&packed[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width * channels;
    let mut pixels = vec![0u8; stride * height];
    for y in 0..height {
        let line = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= channels {
                pixels[y * stride + x - channels]
            } else {
                0
            };
            let b = if y > 0 {
                pixels[(y - 1) * stride + x]
            } else {
                0
            };
            let c = if y > 0 && x >= channels {
                pixels[(y - 1) * stride + x - channels]
            } else {
                0
            };
            let predicted = match line[0] {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("filter {other}"),
            };
            pixels[y * stride + x] = line[1 + x].wrapping_add(predicted);
        }
    }
    let mut counts = std::collections::HashMap::new();
    for pixel in pixels.chunks(channels) {
        *counts.entry(&pixel[..3]).or_insert(0usize) += 1;
    }
    let background = counts.values().copied().max().unwrap_or(0);
    (width * height - background) * 1000 / (width * height).max(1)
}
