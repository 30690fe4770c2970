//! Raw query-string handling shared by both simulators.
//!
//! We split on `&` BEFORE percent-decoding, so an encoded `%26` inside a value
//! (e.g. an OData literal `'O''Brien & Co'`) stays inside that value.

use percent_encoding::percent_decode_str;

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space
/// (both Rails and ASP.NET decode it so), `%XX` is a byte.
pub(crate) fn decode_component(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Splits a raw query string into decoded `(key, value)` pairs, in order, keeping repeats.
pub(crate) fn parse_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else { return Vec::new() };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode_component(k), decode_component(v)),
            None => (decode_component(p), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_ampersand_stays_inside_the_value() {
        let pairs = parse_pairs(Some("%24filter=name%20eq%20%27A%20%26%20B%27&x=1+2"));
        assert_eq!(pairs[0], ("$filter".into(), "name eq 'A & B'".into()));
        assert_eq!(pairs[1], ("x".into(), "1 2".into()));
    }
}
