//! Content codings (RFC 9110 section 12.5.3): the q-value a client gives each coding, the
//! choice among precompressed variants, and the choice between compressing and identity.

/// The content codings tws produces or finds precompressed next to a file, in its order of
/// preference on a tie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    Brotli,
    Zstd,
    Gzip,
}

impl Coding {
    pub const ALL: [Coding; 3] = [Coding::Brotli, Coding::Zstd, Coding::Gzip];

    /// The token in Accept-Encoding and Content-Encoding.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    pub fn from_token(token: &str) -> Option<Coding> {
        Coding::ALL.into_iter().find(|c| c.token() == token)
    }

    /// The suffix of a precompressed variant's file name.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Brotli => ".br",
            Coding::Zstd => ".zst",
            Coding::Gzip => ".gz",
        }
    }

    /// Index in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What to send, after negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Coding(Coding),
    Identity,
    /// The client refuses identity and every coding on offer: 406.
    NotAcceptable,
}

/// Chooses between the codings on offer (`available`, in the server's order of preference)
/// and identity. No header means identity. A coding wins over identity unless the client
/// weighs identity more; identity is acceptable unless `identity;q=0`, or `*;q=0` without an
/// `identity` entry, says otherwise.
pub fn negotiate(accept_encoding: Option<&str>, available: &[Coding]) -> Choice {
    let Some(header) = accept_encoding else {
        return Choice::Identity;
    };
    let weights = Weights::of(header);
    let best = available
        .iter()
        .map(|c| (weights.coding(*c), *c))
        .filter(|(q, _)| *q > 0)
        .fold(None::<(u16, Coding)>, |best, (q, c)| match best {
            Some((bq, _)) if bq >= q => best,
            _ => Some((q, c)),
        });
    let identity = weights.identity();
    match best {
        Some((q, coding)) if q >= identity => Choice::Coding(coding),
        _ if identity > 0 => Choice::Identity,
        _ => Choice::NotAcceptable,
    }
}

/// The q-values (in thousandths) an Accept-Encoding header gives each coding, identity and
/// `*`, read in one pass. A coding's or identity's first entry counts; of several `*`
/// entries, the last.
#[derive(Debug, Default)]
struct Weights {
    codings: [Option<u16>; Coding::ALL.len()],
    identity: Option<u16>,
    wildcard: Option<u16>,
}

impl Weights {
    fn of(header: &str) -> Weights {
        let mut weights = Weights::default();
        for (token, q) in entries(header) {
            if token == "*" {
                weights.wildcard = Some(q);
            } else if token.eq_ignore_ascii_case("identity") {
                weights.identity.get_or_insert(q);
            } else if let Some(coding) = Coding::ALL.into_iter().find(|c| {
                token.eq_ignore_ascii_case(c.token())
                    || (*c == Coding::Gzip && token.eq_ignore_ascii_case("x-gzip"))
            }) {
                weights.codings[coding.index()].get_or_insert(q);
            }
        }
        weights
    }

    /// A coding's q-value: its own entry, else `*`'s, else 0 (not acceptable).
    fn coding(&self, coding: Coding) -> u16 {
        self.codings[coding.index()].or(self.wildcard).unwrap_or(0)
    }

    /// Identity's q-value: its own entry, else `*`'s; unlisted, it is acceptable but ranks
    /// below any coding the client lists.
    fn identity(&self) -> u16 {
        self.identity.or(self.wildcard).unwrap_or(1)
    }
}

/// The `coding;q=N` entries of a header, skipping malformed q-values.
fn entries(header: &str) -> impl Iterator<Item = (&str, u16)> {
    header.split(',').filter_map(|item| {
        let mut parts = item.split(';');
        let token = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| {
                let p = p.trim();
                p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
            })
            .map_or(Some(1000), parse_q)?;
        (!token.is_empty()).then_some((token, q))
    })
}

/// The q-value the client gives a coding (RFC 9110 12.5.3), in thousandths; `*` covers codings
/// not listed. Absent header: only identity is acceptable, so every coding gets 0.
pub fn quality(accept_encoding: Option<&str>, coding: Coding) -> u16 {
    accept_encoding.map_or(0, |header| Weights::of(header).coding(coding))
}

/// Orders the available codings by the client's preference, best first, dropping refused ones.
pub fn preferred(accept_encoding: Option<&str>, available: &[Coding]) -> Vec<Coding> {
    let Some(header) = accept_encoding else {
        return Vec::new();
    };
    let weights = Weights::of(header);
    let mut ranked: Vec<(u16, usize, Coding)> = available
        .iter()
        .map(|c| (weights.coding(*c), c.index(), *c))
        .filter(|(q, _, _)| *q > 0)
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().map(|(_, _, c)| c).collect()
}

/// True when an `Accept` header prefers HTML to JSON: what a browser sends, and what API
/// clients (no header, `*/*`, `application/json`) do not. Each type takes the q-value of its
/// most specific range (RFC 9110 12.5.1).
pub fn prefers_html(accept: Option<&str>) -> bool {
    let Some(header) = accept else {
        return false;
    };
    let quality = |kind: &str, subtype: &str| {
        let mut best: Option<(u8, u16)> = None;
        for (range, q) in entries(header) {
            let (t, s) = range.split_once('/').unwrap_or((range, ""));
            let specificity = match (t.trim(), s.trim()) {
                (t, s) if t.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(subtype) => 3,
                (t, "*") if t.eq_ignore_ascii_case(kind) => 2,
                ("*", "*") => 1,
                _ => continue,
            };
            if best.is_none_or(|(b, _)| specificity > b) {
                best = Some((specificity, q));
            }
        }
        best.map_or(0, |(_, q)| q)
    };
    quality("text", "html") > quality("application", "json")
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn parse_q(text: &str) -> Option<u16> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value = format!("{frac:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::*;

    #[test]
    fn tells_browsers_from_api_clients() {
        let cases: &[(Option<&str>, bool)] = &[
            (None, false),
            (Some("*/*"), false),
            (Some("application/json"), false),
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                true,
            ),
            (Some("text/html;q=0.5, application/json"), false),
            (Some("text/*, application/json;q=0.9"), true),
            (Some("TEXT/HTML"), true),
            (Some("application/json, text/html;q=0"), false),
        ];
        for (accept, want) in cases {
            assert_eq!(prefers_html(*accept), *want, "{accept:?}");
        }
    }

    #[test]
    fn picks_variants_by_q_value() {
        let both = [Brotli, Gzip];
        // (Accept-Encoding, preferred order)
        let cases: &[(Option<&str>, &[Coding])] = &[
            (None, &[]),
            (Some(""), &[]),
            (Some("identity"), &[]),
            (Some("gzip"), &[Gzip]),
            (Some("gzip, deflate, br"), &[Brotli, Gzip]),
            (Some("br;q=0.5, gzip;q=0.8"), &[Gzip, Brotli]),
            (Some("br;q=0, gzip"), &[Gzip]),
            (Some("*"), &[Brotli, Gzip]),
            (Some("*;q=0.1, gzip;q=0"), &[Brotli]),
            (Some("GZIP;Q=1.0"), &[Gzip]),
            (Some("x-gzip"), &[Gzip]),
            (Some("br;q=2, gzip;q=0.001"), &[Gzip]),
            (Some("br;q=0.1234"), &[]),
        ];
        for (header, want) in cases {
            assert_eq!(preferred(*header, &both), *want, "{header:?}");
        }
        assert_eq!(preferred(Some("br, gzip"), &[Gzip]), [Gzip]);
    }

    #[test]
    fn negotiates_between_compressing_and_identity() {
        use super::Choice::{Coding as C, Identity, NotAcceptable};
        let all = [Brotli, Zstd, Gzip];
        let cases: &[(Option<&str>, Choice)] = &[
            (None, Identity),
            (Some(""), Identity),
            (Some("gzip, br"), C(Brotli)),
            (Some("gzip, deflate, br, zstd"), C(Brotli)),
            (Some("zstd, gzip"), C(Zstd)),
            (Some("br;q=0, gzip"), C(Gzip)),
            (Some("br;q=0.5, gzip;q=0.8"), C(Gzip)),
            (Some("*"), C(Brotli)),
            (Some("identity"), Identity),
            (Some("gzip;q=0.5, identity"), Identity),
            (Some("gzip, identity;q=0.5"), C(Gzip)),
            (Some("deflate"), Identity),
            (Some("identity;q=0"), NotAcceptable),
            (Some("deflate, identity;q=0"), NotAcceptable),
            (Some("*;q=0"), NotAcceptable),
            (Some("*;q=0, identity"), Identity),
            (Some("br;q=0, *;q=0"), NotAcceptable),
            (Some("gzip;q=0, identity;q=0, *;q=0.1"), C(Brotli)),
            (Some("x-gzip"), C(Gzip)),
            (Some("br;q=0.2, br;q=0.9, gzip;q=0.5"), C(Gzip)),
            (Some("*;q=0.5, *;q=0"), NotAcceptable),
            (Some("*, gzip;q=0.1"), C(Brotli)),
        ];
        for (header, want) in cases {
            assert_eq!(negotiate(*header, &all), *want, "{header:?}");
        }
        // Only what is on offer counts.
        assert_eq!(negotiate(Some("br"), &[Gzip]), Identity);
        assert_eq!(negotiate(Some("br, identity;q=0"), &[]), NotAcceptable);
    }
}
