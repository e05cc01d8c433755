//! The keys of a folder route that let people change its folder (`upload`, `mkdir`,
//! `delete`, `rename`, `overwrite`, `max_upload_bytes`, `write_auth`,
//! `allow_anonymous_writes`) and offer it as an archive (`archives`), checked into `Writes`.

use std::sync::Arc;

use super::rules::SiteRules;
use crate::routes::Writes;

/// A folder route's write keys, as read.
#[derive(Debug, Default)]
pub(super) struct RawWrites {
    pub upload: Option<bool>,
    pub mkdir: Option<bool>,
    pub delete: Option<bool>,
    pub rename: Option<bool>,
    pub overwrite: Option<bool>,
    pub max_upload_bytes: Option<u64>,
    pub write_auth: Option<String>,
    pub allow_anonymous_writes: Option<bool>,
}

impl RawWrites {
    /// The keys present, for the check that they sit on a folder route.
    pub fn present(&self) -> Option<&'static str> {
        let keys = [
            ("upload", self.upload.is_some()),
            ("mkdir", self.mkdir.is_some()),
            ("delete", self.delete.is_some()),
            ("rename", self.rename.is_some()),
            ("overwrite", self.overwrite.is_some()),
            ("max_upload_bytes", self.max_upload_bytes.is_some()),
            ("write_auth", self.write_auth.is_some()),
            (
                "allow_anonymous_writes",
                self.allow_anonymous_writes.is_some(),
            ),
        ];
        keys.into_iter()
            .find_map(|(key, present)| present.then_some(key))
    }

    /// The checked writes. `protected`: the route has `auth`; `loopback`: the server listens
    /// on loopback only. Writes nobody has to log in for are refused unless the server is
    /// reachable from this machine alone or `allow_anonymous_writes` says so on purpose.
    pub fn check(
        self,
        rules: &SiteRules,
        protected: bool,
        loopback: bool,
    ) -> Result<(Writes, bool), String> {
        let mut writes = Writes {
            upload: self.upload.unwrap_or(false),
            mkdir: self.mkdir.unwrap_or(false),
            delete: self.delete.unwrap_or(false),
            rename: self.rename.unwrap_or(false),
            overwrite: self.overwrite.unwrap_or(false),
            ..Writes::default()
        };
        if let Some(n) = self.max_upload_bytes {
            if n == 0 {
                return Err("`max_upload_bytes` must be at least 1".to_owned());
            }
            writes.max_upload_bytes = n;
        }
        if let Some(name) = self.write_auth {
            let realm = rules.realms.get(&name).ok_or_else(|| {
                format!("`write_auth`: no realm \"{name}\" (declare [auth.{name}])")
            })?;
            writes.auth = Some(Arc::clone(realm));
        }
        let anonymous = self.allow_anonymous_writes.unwrap_or(false);
        if writes.any() && !protected && writes.auth.is_none() && !loopback && !anonymous {
            return Err(
                "upload, mkdir, delete or rename on a route without `auth` or `write_auth` lets anyone who reaches the server change the folder: add auth, or allow_anonymous_writes = true on purpose (or listen on 127.0.0.1 only)"
                    .to_owned(),
            );
        }
        if !writes.any() && (writes.overwrite || writes.auth.is_some()) {
            return Err(
                "`overwrite` and `write_auth` need one of upload, mkdir, delete or rename"
                    .to_owned(),
            );
        }
        Ok((writes, anonymous))
    }
}
