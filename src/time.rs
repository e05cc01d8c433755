//! Calendar formatting for timestamps tws writes itself: RFC 3339 (user records, JSON logs and
//! listings) and the Common Log Format clock. HTTP dates use the `httpdate` crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC calendar time, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    pub fn from_system(t: SystemTime) -> Civil {
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        Civil::from_unix(secs)
    }

    /// Converts seconds since 1970 to a UTC date (Howard Hinnant's days-to-civil algorithm).
    pub fn from_unix(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let in_day = secs.rem_euclid(86_400) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: in_day / 3600,
            minute: in_day / 60 % 60,
            second: in_day % 60,
        }
    }

    /// `2026-11-25T14:18:02Z`
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `25/Nov/2026:14:18:02 +0000`, as in the Common Log Format.
    pub fn clf(&self) -> String {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
            self.day,
            MONTHS[(self.month - 1) as usize],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_known_instants() {
        let cases: &[(i64, &str, &str)] = &[
            (0, "1970-01-01T00:00:00Z", "01/Jan/1970:00:00:00 +0000"),
            (
                951_782_400,
                "2000-02-29T00:00:00Z",
                "29/Feb/2000:00:00:00 +0000",
            ),
            (
                1_795_616_282,
                "2026-11-25T14:18:02Z",
                "25/Nov/2026:14:18:02 +0000",
            ),
            (-1, "1969-12-31T23:59:59Z", "31/Dec/1969:23:59:59 +0000"),
            (
                4_107_542_399,
                "2100-02-28T23:59:59Z",
                "28/Feb/2100:23:59:59 +0000",
            ),
        ];
        for (secs, rfc, clf) in cases {
            let c = Civil::from_unix(*secs);
            assert_eq!(c.rfc3339(), *rfc, "{secs}");
            assert_eq!(c.clf(), *clf, "{secs}");
        }
    }

    #[test]
    fn agrees_with_httpdate_on_every_day_for_years() {
        for day in 0..(366 * 60) {
            let secs = day * 86_400 + 45_296;
            let t = UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
            let c = Civil::from_unix(secs);
            let http = httpdate::fmt_http_date(t);
            let expected = format!("{:02} ", c.day);
            assert!(http[5..].starts_with(&expected), "{http} vs {c:?}");
            assert!(
                http.contains(&format!(" {} 12:34:56", c.year)),
                "{http} vs {c:?}"
            );
        }
    }
}
