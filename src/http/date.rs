//! The `Date` header value, formatted once per second rather than once per response.

use std::time::{SystemTime, UNIX_EPOCH};

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) refreshed when the second changes.
pub struct DateCache {
    secs: u64,
    text: String,
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache {
            secs: u64::MAX,
            text: String::new(),
        }
    }
}

impl DateCache {
    pub fn now(&mut self) -> &str {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if secs != self.secs {
            self.secs = secs;
            self.text = httpdate::fmt_http_date(now);
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_an_imf_fixdate_that_parses_back() {
        let mut cache = DateCache::default();
        let text = cache.now().to_owned();
        assert_eq!(text.len(), 29);
        assert!(text.ends_with(" GMT"));
        let parsed = httpdate::parse_http_date(&text).unwrap();
        let age = SystemTime::now().duration_since(parsed).unwrap();
        assert!(age.as_secs() < 5);
    }
}
