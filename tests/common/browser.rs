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
