//! Conditional requests (RFC 9110 section 13): entity tags, and the evaluation of If-Match,
//! If-Unmodified-Since, If-None-Match, If-Modified-Since and If-Range in the order of 13.2.2.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Method, Request};

/// What identifies one version of a representation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// A strong entity tag, quotes included: `"5f1a-3e8-17e4d2c"`.
    pub etag: String,
    /// Modification time, truncated to whole seconds (HTTP dates have no finer resolution).
    pub modified: SystemTime,
}

impl Validators {
    /// A strong tag from inode, size and modification time (to the nanosecond), which together
    /// change whenever the file's bytes do.
    pub fn for_file(inode: u64, len: u64, modified: SystemTime) -> Validators {
        let since = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        Validators {
            etag: format!("\"{inode:x}-{len:x}-{:x}\"", since.as_nanos()),
            modified: UNIX_EPOCH + std::time::Duration::from_secs(since.as_secs()),
        }
    }

    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.modified)
    }
}

/// The outcome of evaluating a request's preconditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Serve the representation; `use_range` says whether a Range header may be honoured.
    Proceed {
        use_range: bool,
    },
    NotModified,
    Failed,
}

/// Evaluates the preconditions of `req` against the current validators (RFC 9110 13.2.2).
pub fn evaluate(req: &Request, current: &Validators) -> Precondition {
    let get_or_head = matches!(req.method, Method::Get | Method::Head);
    // Step 1 and 2: If-Match, else If-Unmodified-Since.
    if let Some(value) = req.header_list("if-match") {
        if !tag_list_matches(&value, &current.etag, Comparison::Strong) {
            return Precondition::Failed;
        }
    } else if let Some(date) = req.header_str("if-unmodified-since").and_then(parse_date)
        && current.modified > date
    {
        return Precondition::Failed;
    }
    // Step 3 and 4: If-None-Match, else If-Modified-Since (GET and HEAD only).
    if let Some(value) = req.header_list("if-none-match") {
        if tag_list_matches(&value, &current.etag, Comparison::Weak) {
            return if get_or_head {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if get_or_head
        && let Some(date) = req.header_str("if-modified-since").and_then(parse_date)
        && current.modified <= date
    {
        return Precondition::NotModified;
    }
    // Step 5: If-Range decides whether Range applies.
    let use_range = match req.header_str("if-range") {
        None => true,
        Some(value) => if_range_matches(value.trim(), current),
    };
    Precondition::Proceed { use_range }
}

/// True when an `If-Match` value holds for a representation with this entity tag: `*`, or a
/// list naming it (strong comparison).
pub fn if_match_holds(value: &str, etag: &str) -> bool {
    tag_list_matches(value, etag, Comparison::Strong)
}

/// True when an `If-None-Match` value names this entity tag (weak comparison) or is `*`.
pub fn none_match_names(value: &str, etag: &str) -> bool {
    tag_list_matches(value, etag, Comparison::Weak)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Strong,
    Weak,
}

fn parse_date(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value.trim()).ok()
}

/// `*` or a comma-separated list of entity tags, compared with `etag`.
fn tag_list_matches(value: &str, etag: &str, comparison: Comparison) -> bool {
    let value = value.trim();
    if value == "*" {
        return true;
    }
    value.split(',').map(str::trim).any(|candidate| {
        let (weak, opaque) = match candidate.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, candidate),
        };
        // Our own tags are always strong.
        match comparison {
            Comparison::Strong => !weak && opaque == etag,
            Comparison::Weak => opaque == etag,
        }
    })
}

/// If-Range holds one strong entity tag or one HTTP date that must equal Last-Modified.
fn if_range_matches(value: &str, current: &Validators) -> bool {
    if value.starts_with('"') {
        return value == current.etag;
    }
    if value.starts_with("W/") {
        return false;
    }
    parse_date(value).is_some_and(|date| date == current.modified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{Parse, parse_head};

    const TAG: &str = "\"abc-10-99\"";
    const MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const EARLIER: &str = "Sat, 05 Nov 1994 08:49:37 GMT";
    const LATER: &str = "Mon, 07 Nov 1994 08:49:37 GMT";

    fn check(method: &str, headers: &[(&str, &str)]) -> Precondition {
        let mut raw = format!("{method} / HTTP/1.1\r\nHost: t\r\n");
        for (name, value) in headers {
            raw.push_str(&format!("{name}: {value}\r\n"));
        }
        raw.push_str("\r\n");
        let Ok(Parse::Complete(req, _)) = parse_head(raw.as_bytes(), &Default::default()) else {
            panic!("{raw}")
        };
        let current = Validators {
            etag: TAG.to_owned(),
            modified: httpdate::parse_http_date(MODIFIED).unwrap(),
        };
        evaluate(&req, &current)
    }

    #[test]
    fn preconditions_follow_rfc_9110_order() {
        use Precondition::*;
        let go = Proceed { use_range: true };
        let no_range = Proceed { use_range: false };
        // (method, headers, outcome)
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            Precondition,
        );
        let cases: &[Case] = &[
            ("GET", &[], go),
            ("GET", &[("If-None-Match", TAG)], NotModified),
            ("HEAD", &[("If-None-Match", TAG)], NotModified),
            ("GET", &[("If-None-Match", "W/\"abc-10-99\"")], NotModified),
            (
                "GET",
                &[("If-None-Match", "\"x\", \"abc-10-99\"")],
                NotModified,
            ),
            ("GET", &[("If-None-Match", "*")], NotModified),
            ("GET", &[("If-None-Match", "\"other\"")], go),
            ("POST", &[("If-None-Match", TAG)], Failed),
            ("GET", &[("If-Modified-Since", MODIFIED)], NotModified),
            ("GET", &[("If-Modified-Since", LATER)], NotModified),
            ("GET", &[("If-Modified-Since", EARLIER)], go),
            ("GET", &[("If-Modified-Since", "yesterday")], go),
            // If-None-Match takes precedence over If-Modified-Since.
            (
                "GET",
                &[("If-None-Match", "\"other\""), ("If-Modified-Since", LATER)],
                go,
            ),
            ("GET", &[("If-Match", TAG)], go),
            ("GET", &[("If-Match", "*")], go),
            ("GET", &[("If-Match", "\"other\"")], Failed),
            ("GET", &[("If-Match", "W/\"abc-10-99\"")], Failed),
            ("GET", &[("If-Unmodified-Since", EARLIER)], Failed),
            ("GET", &[("If-Unmodified-Since", MODIFIED)], go),
            // If-Match takes precedence over If-Unmodified-Since.
            (
                "GET",
                &[("If-Match", TAG), ("If-Unmodified-Since", EARLIER)],
                go,
            ),
            (
                "GET",
                &[("If-Match", "\"other\""), ("If-None-Match", TAG)],
                Failed,
            ),
            ("GET", &[("If-Range", TAG)], go),
            ("GET", &[("If-Range", "\"other\"")], no_range),
            ("GET", &[("If-Range", "W/\"abc-10-99\"")], no_range),
            ("GET", &[("If-Range", MODIFIED)], go),
            ("GET", &[("If-Range", LATER)], no_range),
        ];
        for (method, headers, want) in cases {
            assert_eq!(check(method, headers), *want, "{method} {headers:?}");
        }
    }

    #[test]
    fn file_tags_change_with_size_and_time_and_dates_drop_fractions() {
        let t = UNIX_EPOCH + std::time::Duration::from_nanos(1_000_000_123);
        let a = Validators::for_file(7, 10, t);
        assert_eq!(a.etag, "\"7-a-3b9aca7b\"");
        assert_ne!(a.etag, Validators::for_file(7, 11, t).etag);
        assert_eq!(a.modified, UNIX_EPOCH + std::time::Duration::from_secs(1));
        assert_eq!(a.last_modified(), "Thu, 01 Jan 1970 00:00:01 GMT");
    }
}
