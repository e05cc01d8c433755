//! Timestamps tws writes and reads itself, through the `time` crate: RFC 3339 (records, JSON
//! logs, listings, certificate warnings) and the Common Log Format clock. HTTP dates use the
//! `httpdate` crate.

use std::time::SystemTime;

use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// `25/Nov/2026:14:18:02 +0000`
const CLF: &[BorrowedFormatItem<'static>] =
    format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000");
/// `2026-11-25 14:18`
const LISTING: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]");

/// A UTC instant to the second, from seconds since 1970 (clamped to the years 0000-9999 that
/// RFC 3339 can write).
fn at_unix(secs: i64) -> OffsetDateTime {
    const MIN: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    OffsetDateTime::from_unix_timestamp(secs.clamp(MIN, MAX)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn at_system(t: SystemTime) -> OffsetDateTime {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    };
    at_unix(secs)
}

/// `2026-11-25T14:18:02Z`: an instant in UTC, as RFC 3339 writes it (fractions of a second
/// only when there are some).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// RFC 3339 for seconds since 1970.
pub fn rfc3339_unix(secs: i64) -> String {
    rfc3339(at_unix(secs))
}

/// RFC 3339 for a system time, to the second.
pub fn rfc3339_system(t: SystemTime) -> String {
    rfc3339(at_system(t))
}

/// The current time as RFC 3339, to the second.
pub fn now_rfc3339() -> String {
    rfc3339_system(SystemTime::now())
}

/// Parses an RFC 3339 date and time (any offset; `T` or `t`, `Z` or `z`).
pub fn parse_rfc3339(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// `25/Nov/2026:14:18:02 +0000`, as in the Common Log Format.
pub fn clf(t: SystemTime) -> String {
    at_system(t).format(CLF).unwrap_or_default()
}

/// `2026-11-25 14:18`, as folder listings show a modification time.
pub fn listing(secs: i64) -> String {
    at_unix(secs).format(LISTING).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_known_instants() {
        let cases: &[(i64, &str, &str, &str)] = &[
            (
                0,
                "1970-01-01T00:00:00Z",
                "01/Jan/1970:00:00:00 +0000",
                "1970-01-01 00:00",
            ),
            (
                951_782_400,
                "2000-02-29T00:00:00Z",
                "29/Feb/2000:00:00:00 +0000",
                "2000-02-29 00:00",
            ),
            (
                1_795_616_282,
                "2026-11-25T14:18:02Z",
                "25/Nov/2026:14:18:02 +0000",
                "2026-11-25 14:18",
            ),
            (
                4_107_542_399,
                "2100-02-28T23:59:59Z",
                "28/Feb/2100:23:59:59 +0000",
                "2100-02-28 23:59",
            ),
        ];
        for (secs, rfc, clf_text, short) in cases {
            assert_eq!(rfc3339_unix(*secs), *rfc, "{secs}");
            let t = UNIX_EPOCH + Duration::from_secs(*secs as u64);
            assert_eq!(rfc3339_system(t), *rfc, "{secs}");
            assert_eq!(clf(t), *clf_text, "{secs}");
            assert_eq!(listing(*secs), *short, "{secs}");
        }
        assert_eq!(rfc3339_unix(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339_unix(i64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn parses_offsets_into_utc() {
        let cases: &[(&str, Option<&str>)] = &[
            ("2026-11-25T15:30:33+01:00", Some("2026-11-25T14:30:33Z")),
            ("2026-11-25t14:30:33z", Some("2026-11-25T14:30:33Z")),
            ("2026-11-25T14:30:33.250Z", Some("2026-11-25T14:30:33.25Z")),
            ("2026-02-30T00:00:00Z", None),
            ("2026-11-25 14:30:33Z", Some("2026-11-25T14:30:33Z")),
            ("2026-11-25", None),
            ("tomorrow", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rfc3339(text).map(rfc3339).as_deref(), *want, "{text}");
        }
    }
}
