//! Scratch folders for tests: one fresh folder per test, and the sweep that removes those
//! of test processes that have ended.

use std::path::{Path, PathBuf};

/// A fresh scratch folder for one test. A failed test's folder stays for a look until a
/// later test process starts: the first call in each process removes the folders of test
/// processes that have ended (`tws-it-PID-*` with no `/proc/PID`), so runs do not pile up.
pub fn scratch(name: &str) -> PathBuf {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(sweep_scratch);
    let dir = std::env::temp_dir().join(format!("tws-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes the scratch folders left by test processes that are no longer running.
fn sweep_scratch() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("tws-it-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
