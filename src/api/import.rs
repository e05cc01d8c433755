//! The one-time import of the JSON Lines user file of earlier versions (`data/users.jsonl`)
//! into the `users` collection. The file is read one line at a time, so its size does not
//! matter; the store keeps it afterwards, renamed, as a backup.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The file earlier versions kept users in, inside the data folder.
pub const LEGACY_FILE: &str = "users.jsonl";
/// What the imported file is renamed to.
pub const BACKUP_FILE: &str = "users.jsonl.imported";

/// One record of the old file.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct Legacy {
    pub id: i64,
    #[serde(rename = "Nombre")]
    pub name: String,
    pub created: String,
}

/// What an import read.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct Read {
    pub records: u64,
    /// A torn last record left by an interrupted write, skipped: its line and its length.
    pub torn: Option<(u64, usize)>,
}

/// Reads every record of `path`, in order, into `each`. Only the last line may be damaged (a
/// torn write, skipped and reported); a damaged line with records after it, or ids that do
/// not increase, is corruption and stops the import.
pub fn read(path: &Path, mut each: impl FnMut(Legacy) -> Result<()>) -> Result<Read> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    let mut read = Read::default();
    let mut line_no = 0u64;
    let mut last_id = 0;
    // A damaged line is only torn if nothing but blank lines follows it.
    let mut damaged: Option<(u64, usize)> = None;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let complete = line.last() == Some(&b'\n');
        let blank = line.iter().all(|b| b.is_ascii_whitespace() || *b == 0);
        if blank {
            continue;
        }
        if let Some((bad, _)) = damaged {
            bail!("{}:{bad}: damaged record", path.display());
        }
        match serde_json::from_slice::<Legacy>(&line) {
            Ok(record) if complete => {
                if record.id <= last_id {
                    bail!("{}:{line_no}: user ids are not increasing", path.display());
                }
                last_id = record.id;
                read.records += 1;
                each(record)?;
            }
            _ => damaged = Some((line_no, line.len())),
        }
    }
    read.torn = damaged;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(text: &str) -> Result<(Vec<i64>, Read)> {
        let path =
            std::env::temp_dir().join(format!("tws-import-{}-{}", std::process::id(), text.len()));
        std::fs::write(&path, text)?;
        let mut ids = Vec::new();
        let read = read(&path, |r| {
            ids.push(r.id);
            Ok(())
        });
        std::fs::remove_file(&path)?;
        read.map(|r| (ids, r))
    }

    #[test]
    fn torn_last_records_are_skipped_and_damage_elsewhere_refused() {
        let ana = r#"{"id":1,"Nombre":"Ana","created":"2026-01-01T00:00:00Z"}"#;
        let bo = r#"{"id":2,"Nombre":"Bo","created":"2026-01-01T00:00:01Z"}"#;
        let (ids, read) = import(&format!("{ana}\n{bo}\n")).unwrap();
        assert_eq!((ids, read.torn), (vec![1, 2], None));
        let (ids, read) = import(&format!("{ana}\n{{\"id\":2,\"Nomb")).unwrap();
        assert_eq!((ids, read.torn), (vec![1], Some((2, 13))));
        // A complete-looking last line without its newline was cut mid-write too.
        let (ids, read) = import(&format!("{ana}\n{bo}")).unwrap();
        assert_eq!((ids, read.records), (vec![1], 1));
        let (ids, _) = import(&format!("{ana}\n\n{bo}\n\n")).unwrap();
        assert_eq!(ids, vec![1, 2]);
        let err = import(&format!("{{\"id\":1,\"Nom\n{bo}\n")).unwrap_err();
        assert!(err.to_string().ends_with(":1: damaged record"), "{err}");
        let err = import(&format!("{bo}\n{ana}\n")).unwrap_err();
        assert!(
            err.to_string().contains(":2: user ids are not increasing"),
            "{err}"
        );
    }
}
