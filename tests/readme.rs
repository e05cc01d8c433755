//! README.md against the binary it describes: the synopsis and the flag table name every flag
//! of `tws --help` and nothing else, `hash-password` shows only its own flags, and the banner
//! sample is what the bundled site prints. (The README's runnable blocks are run by
//! `.ci/readme.py`; `readme_blocks_are_marked_and_listed` checks that it can read them.)

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{Server, repo, scratch, tws};

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).unwrap()
}

/// The text of the first fenced block after the line `heading`.
fn first_block_after(text: &str, heading: &str) -> String {
    let at = text.find(heading).expect(heading);
    let rest = &text[at..];
    let open = rest.find("\n```").unwrap() + 1;
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("\n```").unwrap() + 1].to_owned()
}

/// Every `--long` flag named in `text`.
fn long_flags(text: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("--") {
        let start = i + at;
        let end = text[start + 2..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .map_or(text.len(), |n| start + 2 + n);
        let preceded = start > 0 && (bytes[start - 1].is_ascii_alphanumeric());
        if end > start + 2 && !preceded {
            flags.insert(text[start..end].to_owned());
        }
        i = end.max(start + 2);
    }
    flags
}

/// The long flags `tws ARGS --help` lists under Options.
fn help_flags(args: &[&str]) -> BTreeSet<String> {
    let out = tws().args(args).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let options = &help[help.find("Options:").expect("an Options section")..];
    let options = &options[..options.find("Examples:").unwrap_or(options.len())];
    options
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .flat_map(|l| long_flags(l.split("  ").find(|p| p.contains("--")).unwrap_or("")))
        .collect()
}

#[test]
fn the_synopsis_and_the_flag_table_name_every_flag_of_help() {
    let text = readme();
    let synopsis = first_block_after(&text, "## Command line");
    let (main, others): (Vec<&str>, Vec<&str>) = synopsis
        .lines()
        .partition(|l| !l.starts_with("tws hash-password") && !l.starts_with("tws --"));
    let main = main.join("\n");
    let every = help_flags(&[]);
    let shown: BTreeSet<String> = long_flags(&synopsis);
    let missing: Vec<_> = every.difference(&shown).collect();
    let unknown: Vec<_> = shown.difference(&every).collect();
    assert!(missing.is_empty(), "README synopsis lacks {missing:?}");
    assert!(
        unknown.is_empty(),
        "README synopsis names {unknown:?}, not in --help"
    );
    // The serving flags are on the `tws [...]` lines; --help, --version and the completions
    // on lines of their own.
    for flag in ["--help", "--version", "--print-completions"] {
        assert!(!main.contains(flag), "{flag} belongs on its own line");
    }
    let hash_line = others
        .iter()
        .find(|l| l.starts_with("tws hash-password"))
        .expect("a hash-password line");
    let hash_flags = help_flags(&["hash-password"]);
    for flag in long_flags(hash_line) {
        assert!(
            hash_flags.contains(&flag),
            "hash-password has no {flag}: {hash_line}"
        );
    }
    // The table below the synopsis has a row for each flag.
    let table_at = text.find("| flag | meaning | default |").unwrap();
    let table = &text[table_at..];
    let table: String = table
        .lines()
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').nth(1).unwrap_or("").to_owned() + "\n")
        .collect();
    let rows = long_flags(&table);
    let missing: Vec<_> = every.difference(&rows).collect();
    assert!(missing.is_empty(), "README flag table lacks {missing:?}");
}

#[test]
fn the_banner_sample_is_what_the_bundled_site_prints() {
    let text = readme();
    let sample = first_block_after(&text, "**Output.**");
    // The bundled site started as the README starts it, from a copy (for its own data folder).
    let dir = scratch("readme-banner");
    std::fs::copy(repo().join("routes.toml"), dir.join("routes.toml")).unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo().join("site"))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let mut command = tws();
    command
        .args(["--config", "routes.toml", "--port", "0"])
        .env("NO_COLOR", "1")
        .current_dir(&dir);
    let server = Server::spawn(command);
    common::wait_line(&server.log, "routes.toml is reloaded");
    let banner = server.log_lines();
    let port = server.addr.port().to_string();
    let mut expected = sample.lines();
    for (i, line) in banner.iter().take(4).enumerate() {
        let want = expected.next().unwrap_or("");
        if i == 2 {
            // The connection capacity depends on the machine's open file limit.
            assert!(
                line.starts_with("  up to ") && want.starts_with("  up to "),
                "{line}"
            );
            continue;
        }
        assert_eq!(line.replace(&port, "8080"), want, "banner line {i}");
    }
}

#[test]
fn readme_blocks_are_marked_and_listed() {
    let out = Command::new("python3")
        .arg(repo().join(".ci/readme.py"))
        .arg("--list")
        .output();
    let Ok(out) = out else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("writes books.toml"), "{text}");
    assert!(text.matches("runs (timeout").count() >= 8, "{text}");
}
