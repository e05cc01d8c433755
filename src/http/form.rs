//! `application/x-www-form-urlencoded`: HTML form bodies and query strings, as name/value
//! pairs ('+' is a space, `%XX` a byte, the result UTF-8).

/// The decoded `name=value` pairs of a form body or query, in order; `Err` names the first
/// component that is not UTF-8 once decoded.
pub fn pairs(raw: &[u8]) -> Result<Vec<(String, String)>, String> {
    raw.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

fn decode(raw: &[u8]) -> Result<String, String> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_encoding::percent_decode(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| {
            format!(
                "form field \"{}\" is not valid UTF-8",
                String::from_utf8_lossy(raw)
            )
        })
}

/// Encodes a query component: everything but unreserved characters as `%XX`.
pub fn encode(text: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs() {
        type Pairs<'a> = Result<Vec<(&'a str, &'a str)>, ()>;
        let cases: &[(&str, Pairs)] = &[
            ("Nombre=Ana", Ok(vec![("Nombre", "Ana")])),
            (
                "x=1&Nombre=Ana+Mar%C3%ADa",
                Ok(vec![("x", "1"), ("Nombre", "Ana María")]),
            ),
            ("Nombre=&&flag", Ok(vec![("Nombre", ""), ("flag", "")])),
            ("a%3Db=c%26d", Ok(vec![("a=b", "c&d")])),
            ("Nombre=%FF", Err(())),
            ("", Ok(vec![])),
        ];
        for (raw, want) in cases {
            let got = pairs(raw.as_bytes()).map_err(|_| ());
            let want: Result<Vec<(String, String)>, ()> = want.clone().map(|v| {
                v.into_iter()
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .collect()
            });
            assert_eq!(got, want, "{raw}");
        }
        assert_eq!(encode("a b/é~"), "a%20b%2F%C3%A9~");
    }
}
