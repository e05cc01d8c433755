//! Where ACME state lives: the account key (per CA directory), the certificate and its key,
//! the backoff after failures (so a restart does not retry at once), and, with several nodes,
//! the challenge answers and the right to order. The `Storage` trait has two homes: files
//! under `<data>/acme/` for one node (this file: a folder for the owner alone, each file 0600,
//! written whole and renamed into place), and the shared PostgreSQL database
//! (`acme::postgres`).

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::certificate::Issued;
use super::challenge::Pending;

/// An ACME account: its URL at the CA and its key (PKCS#8 DER).
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub url: String,
    pub key: Vec<u8>,
}

/// Failed attempts in a row, and when the next one may start (seconds since 1970).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub failures: u32,
    pub next_attempt: i64,
    /// The last failure's few words (as `/healthz` shows them).
    pub reason: String,
}

/// Held while this node orders; dropping it lets another node order.
pub type OrderLock = Box<dyn Send>;

/// ACME state, kept by one node or shared by several. Errors are one line, with no secret.
pub trait Storage: Send + Sync {
    /// Where it is, for messages.
    fn location(&self) -> String;
    /// True when several nodes share it: challenge answers are published through it.
    fn shared(&self) -> bool;
    fn account(&self, directory: &str) -> Result<Option<Account>, String>;
    fn save_account(&self, directory: &str, account: &Account) -> Result<(), String>;
    /// The certificate kept under `name`, with a version that grows at each save.
    fn certificate(&self, name: &str) -> Result<Option<(Issued, i64)>, String>;
    /// Keeps a new certificate under `name`; its version.
    fn save_certificate(&self, name: &str, issued: &Issued) -> Result<i64, String>;
    fn backoff(&self, name: &str) -> Result<Backoff, String>;
    fn save_backoff(&self, name: &str, backoff: &Backoff) -> Result<(), String>;
    /// The right to order for `name`, or `None` while another node holds it.
    fn lock(&self, name: &str) -> Result<Option<OrderLock>, String>;
    /// Makes a challenge answer known to every node.
    fn publish(&self, pending: &Pending) -> Result<(), String>;
    /// Withdraws it.
    fn withdraw(&self, pending: &Pending) -> Result<(), String>;
}

/// The files of one node: `<data>/acme/`.
pub struct Files {
    folder: PathBuf,
}

impl Files {
    /// Creates `<data>/acme` for the owner alone.
    pub fn open(data: &Path) -> anyhow::Result<Files> {
        let folder = data.join("acme");
        crate::private::folder(&folder).map_err(|e| {
            anyhow::anyhow!(
                "cannot create {}: {}",
                folder.display(),
                crate::log::io_reason(&e)
            )
        })?;
        Ok(Files { folder })
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, file: &str) -> Result<Option<T>, String> {
        let path = self.folder.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{} is damaged: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!(
                "cannot read {}: {}",
                path.display(),
                crate::log::io_reason(&e)
            )),
        }
    }

    fn write(&self, file: &str, value: &serde_json::Value) -> Result<(), String> {
        let path = self.folder.join(file);
        crate::private::write(&path, value.to_string().as_bytes()).map_err(|e| {
            format!(
                "cannot write {}: {}",
                path.display(),
                crate::log::io_reason(&e)
            )
        })
    }
}

/// A file name for a directory URL or a domain: letters, digits, dots and dashes.
pub fn slug(text: &str) -> String {
    let text = text
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let slug: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.trim_matches(|c| c == '-' || c == '.').to_owned()
}

#[derive(Serialize, Deserialize)]
struct AccountFile {
    directory: String,
    url: String,
    key: String,
}

#[derive(Serialize, Deserialize)]
struct CertificateFile {
    directory: String,
    domains: Vec<String>,
    chain: String,
    key: String,
    version: i64,
}

impl Storage for Files {
    fn location(&self) -> String {
        self.folder.display().to_string()
    }

    fn shared(&self) -> bool {
        false
    }

    fn account(&self, directory: &str) -> Result<Option<Account>, String> {
        let file = format!("account-{}.json", slug(directory));
        let Some(stored) = self.read::<AccountFile>(&file)? else {
            return Ok(None);
        };
        let key = STANDARD
            .decode(&stored.key)
            .map_err(|_| format!("{file}: the key is not base64"))?;
        Ok(Some(Account {
            url: stored.url,
            key,
        }))
    }

    fn save_account(&self, directory: &str, account: &Account) -> Result<(), String> {
        let file = format!("account-{}.json", slug(directory));
        self.write(
            &file,
            &json!({ "directory": directory, "url": account.url, "key": STANDARD.encode(&account.key) }),
        )
    }

    fn certificate(&self, name: &str) -> Result<Option<(Issued, i64)>, String> {
        let Some(stored) = self.read::<CertificateFile>(&format!("{}.json", slug(name)))? else {
            return Ok(None);
        };
        let issued = Issued {
            chain: stored.chain,
            key: stored.key,
            directory: stored.directory,
            domains: stored.domains,
        };
        Ok(Some((issued, stored.version)))
    }

    fn save_certificate(&self, name: &str, issued: &Issued) -> Result<i64, String> {
        let version = self.certificate(name)?.map_or(0, |(_, v)| v) + 1;
        let file = CertificateFile {
            directory: issued.directory.clone(),
            domains: issued.domains.clone(),
            chain: issued.chain.clone(),
            key: issued.key.clone(),
            version,
        };
        let value = serde_json::to_value(file).map_err(|e| e.to_string())?;
        self.write(&format!("{}.json", slug(name)), &value)?;
        Ok(version)
    }

    fn backoff(&self, name: &str) -> Result<Backoff, String> {
        Ok(self
            .read(&format!("{}.backoff.json", slug(name)))?
            .unwrap_or_default())
    }

    fn save_backoff(&self, name: &str, backoff: &Backoff) -> Result<(), String> {
        let value = serde_json::to_value(backoff).map_err(|e| e.to_string())?;
        self.write(&format!("{}.backoff.json", slug(name)), &value)
    }

    /// One node: the data folder's lock already keeps other servers off these files.
    fn lock(&self, _name: &str) -> Result<Option<OrderLock>, String> {
        Ok(Some(Box::new(())))
    }

    fn publish(&self, _pending: &Pending) -> Result<(), String> {
        Ok(())
    }

    fn withdraw(&self, _pending: &Pending) -> Result<(), String> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn slugs_are_plain_file_names() {
        let table = [
            (
                "https://acme-v02.api.letsencrypt.org/directory",
                "acme-v02.api.letsencrypt.org-directory",
            ),
            ("https://127.0.0.1:14000/dir", "127.0.0.1-14000-dir"),
            ("Example.COM", "example.com"),
            ("../../etc/passwd", "etc-passwd"),
            ("a/b\\c d", "a-b-c-d"),
        ];
        for (text, slug_) in table {
            assert_eq!(slug(text), slug_, "{text}");
        }
    }

    #[test]
    fn files_keep_state_for_the_owner_alone() {
        let dir = std::env::temp_dir().join(format!("tws-acme-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let files = Files::open(&dir).unwrap();
        let directory = "https://ca.test/dir";
        assert!(files.account(directory).unwrap().is_none());
        assert!(files.certificate("a.test").unwrap().is_none());
        assert_eq!(files.backoff("a.test").unwrap(), Backoff::default());
        let account = Account {
            url: "https://ca.test/acct/7".into(),
            key: vec![1, 2, 3],
        };
        files.save_account(directory, &account).unwrap();
        assert!(files.account(directory).unwrap() == Some(account));
        assert!(files.account("https://other.test/dir").unwrap().is_none());
        let issued = Issued {
            chain: "chain".into(),
            key: "key".into(),
            directory: directory.into(),
            domains: vec!["a.test".into()],
        };
        assert_eq!(files.save_certificate("a.test", &issued).unwrap(), 1);
        assert_eq!(files.save_certificate("a.test", &issued).unwrap(), 2);
        assert_eq!(files.certificate("a.test").unwrap(), Some((issued, 2)));
        let backoff = Backoff {
            failures: 3,
            next_attempt: 1234,
            reason: "CA unreachable".into(),
        };
        files.save_backoff("a.test", &backoff).unwrap();
        assert_eq!(files.backoff("a.test").unwrap(), backoff);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("acme")), 0o700);
        for entry in std::fs::read_dir(dir.join("acme")).unwrap() {
            assert_eq!(mode(&entry.unwrap().path()), 0o600);
        }
        std::fs::write(dir.join("acme/a.test.json"), "{").unwrap();
        assert!(files.certificate("a.test").unwrap_err().contains("damaged"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
