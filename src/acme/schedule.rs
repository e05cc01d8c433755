//! When to act: renewal at two thirds of a certificate's lifetime (or `renew_before` its end,
//! or a moment inside the window the CA suggests with ACME Renewal Information, RFC 9773),
//! and the backoff after a failure: exponential from `first_retry`, with jitter so that many
//! servers failing together do not retry together, capped at six hours, never sooner than a
//! CA's Retry-After. Pure functions of their inputs (the random draw is a parameter), so the
//! tests are tables.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// Seconds since 1970.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Seconds since 1970 at `wait` from now, rounded up: a moment never earlier than asked.
pub fn unix_after(wait: Duration) -> i64 {
    let at = (SystemTime::now() + wait)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    at.as_secs() as i64 + i64::from(at.subsec_nanos() > 0)
}

/// A uniform draw from [0, 1).
pub fn random_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

/// When a certificate valid from `not_before` to `not_after` is due for renewal: at the
/// moment drawn from the CA's renewal window (`ari`) when there is one, else two thirds into
/// its lifetime; or `renew_before` its end when that comes first.
pub fn renewal_time(
    not_before: i64,
    not_after: i64,
    renew_before: Option<Duration>,
    ari: Option<i64>,
) -> i64 {
    let lifetime = (not_after - not_before).max(0);
    let due = ari.unwrap_or(not_before + lifetime * 2 / 3);
    match renew_before {
        Some(before) => due.min(not_after - before.as_secs() as i64),
        None => due,
    }
}

/// A moment inside the CA's suggested window [start, end) (RFC 9773 §4.2: a uniformly random
/// one), `draw` in [0, 1).
pub fn in_window(start: i64, end: i64, draw: f64) -> i64 {
    if end <= start {
        return start;
    }
    start + ((end - start) as f64 * draw) as i64
}

/// The wait after `failures` failed attempts in a row (1 or more): `first` doubled for each
/// failure after the first, times a jitter factor from 0.75 to 1.25 (`draw` in [0, 1)),
/// at most `MAX_BACKOFF`; and never less than what the CA asked for (`retry_after`).
pub fn backoff(
    failures: u32,
    first: Duration,
    draw: f64,
    retry_after: Option<Duration>,
) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    let base = first.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    let jittered = base
        .mul_f64(0.75 + 0.5 * draw.clamp(0.0, 1.0))
        .min(MAX_BACKOFF);
    match retry_after {
        Some(asked) => jittered.max(asked),
        None => jittered,
    }
}

/// A wait in words for the log: "8s", "5m", "2h".
pub fn words(wait: Duration) -> String {
    let secs = wait.as_secs();
    if secs < 120 {
        format!("{}s", secs.max(1))
    } else if secs < 7200 {
        format!("{}m", secs / 60)
    } else {
        format!("{}h", secs / 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn renewal_comes_at_two_thirds_in_the_ari_window_or_renew_before_the_end() {
        // (not_before, not_after, renew_before, ari, due)
        let table = [
            (0, 90 * DAY, None, None, 60 * DAY),
            (1000, 1000 + 90 * DAY, None, None, 1000 + 60 * DAY),
            (0, 6 * DAY, None, None, 4 * DAY),
            (0, 90 * DAY, Some(30 * DAY), None, 60 * DAY),
            (0, 90 * DAY, Some(45 * DAY), None, 45 * DAY),
            // A renew_before longer than the lifetime: due at once (before it was issued).
            (0, 30, Some(3600), None, 30 - 3600),
            (0, 12, None, None, 8),
            (50, 40, None, None, 50),
            // The CA's window wins over two thirds, earlier (a revocation coming) or later.
            (0, 90 * DAY, None, Some(DAY), DAY),
            (0, 90 * DAY, None, Some(70 * DAY), 70 * DAY),
            // ... but renew_before still caps it.
            (0, 90 * DAY, Some(30 * DAY), Some(70 * DAY), 60 * DAY),
        ];
        for (from, until, before, ari, due) in table {
            let before = before.map(|s: i64| Duration::from_secs(s as u64));
            assert_eq!(
                renewal_time(from, until, before, ari),
                due,
                "{from} {until} {before:?} {ari:?}"
            );
        }
    }

    #[test]
    fn an_ari_window_is_drawn_uniformly() {
        assert_eq!(in_window(100, 200, 0.0), 100);
        assert_eq!(in_window(100, 200, 0.5), 150);
        assert_eq!(in_window(100, 200, 0.999), 199);
        assert_eq!(in_window(100, 100, 0.5), 100);
        assert_eq!(in_window(100, 50, 0.5), 100);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_hours_and_honours_retry_after() {
        let s = Duration::from_secs;
        // (failures, first, draw, retry_after, expected)
        let table = [
            (1, s(20), 0.5, None, s(20)),
            (1, s(20), 0.0, None, s(15)),
            (1, s(20), 0.999_999, None, s(24)),
            (2, s(20), 0.5, None, s(40)),
            (5, s(20), 0.5, None, s(320)),
            (11, s(20), 0.5, None, s(20_480)),
            (12, s(20), 0.5, None, MAX_BACKOFF),
            (200, s(20), 0.999, None, MAX_BACKOFF),
            (1, s(1), 0.5, None, s(1)),
            // A CA's Retry-After wins when longer, never when shorter.
            (1, s(20), 0.5, Some(s(3600)), s(3600)),
            (3, s(20), 0.5, Some(s(5)), s(80)),
            (0, s(20), 0.5, None, s(20)),
        ];
        for (failures, first, draw, asked, want) in table {
            let got = backoff(failures, first, draw, asked);
            assert!(
                got.as_secs() == want.as_secs(),
                "{failures} {first:?} {draw} {asked:?}: {got:?}, not {want:?}"
            );
        }
        // Jitter spreads retries: many draws give many different waits.
        let waits: std::collections::HashSet<u128> = (0..50)
            .map(|_| backoff(3, s(20), random_fraction(), None).as_millis())
            .collect();
        assert!(waits.len() > 40);
        assert!(waits.iter().all(|w| (60_000..=100_000).contains(w)));
    }

    #[test]
    fn waits_read_in_words() {
        let s = Duration::from_secs;
        for (wait, text) in [
            (s(0), "1s"),
            (s(8), "8s"),
            (s(119), "119s"),
            (s(300), "5m"),
            (s(7200), "2h"),
        ] {
            assert_eq!(words(wait), text);
        }
    }
}
