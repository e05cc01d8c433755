//! Content codings: choosing a precompressed variant from Accept-Encoding and its q-values.

/// The precompressed variants tws looks for next to a file, in order of preference on a tie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Brotli,
    Gzip,
}

impl Coding {
    pub const ALL: [Coding; 2] = [Coding::Brotli, Coding::Gzip];

    /// The token in Accept-Encoding and Content-Encoding.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }

    /// The suffix of the variant's file name.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Brotli => ".br",
            Coding::Gzip => ".gz",
        }
    }
}

/// The q-value the client gives a coding (RFC 9110 12.5.3), in thousandths; `*` covers codings
/// not listed. Absent header: only identity is acceptable, so every coding gets 0.
pub fn quality(accept_encoding: Option<&str>, coding: Coding) -> u16 {
    let Some(header) = accept_encoding else {
        return 0;
    };
    let mut wildcard = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let token = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| {
                let p = p.trim();
                p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
            })
            .map_or(Some(1000), parse_q);
        let Some(q) = q else { continue };
        let matches = token.eq_ignore_ascii_case(coding.token())
            || (coding == Coding::Gzip && token.eq_ignore_ascii_case("x-gzip"));
        if matches {
            return q;
        }
        if token == "*" {
            wildcard = Some(q);
        }
    }
    wildcard.unwrap_or(0)
}

/// Orders the available codings by the client's preference, best first, dropping refused ones.
pub fn preferred(accept_encoding: Option<&str>, available: &[Coding]) -> Vec<Coding> {
    let mut ranked: Vec<(u16, usize, Coding)> = available
        .iter()
        .map(|c| {
            (
                quality(accept_encoding, *c),
                Coding::ALL.iter().position(|a| a == c).unwrap_or(9),
                *c,
            )
        })
        .filter(|(q, _, _)| *q > 0)
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().map(|(_, _, c)| c).collect()
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
}
