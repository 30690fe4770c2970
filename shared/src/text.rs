//! Text that came from elsewhere (a source system's fields, a server's error body) made safe to
//! show: control characters (ESC sequences, line breaks that would forge a row) and the bidi
//! overrides that reorder what a reader sees become visible escapes, and a remote body becomes
//! one line of bounded length.

use std::borrow::Cow;

/// The longest remote body text kept in an error message (characters, before the `…`).
pub const REMOTE_TEXT_MAX: usize = 300;
/// The longest JSON error body kept whole (it is parsed later for the server's own message).
const REMOTE_JSON_MAX: usize = 2000;

/// Whether `c` must not reach a terminal or a log line raw: C0 and C1 controls (ESC, BEL, CR,
/// LF, TAB...), DEL, the bidi embeddings, overrides, isolates and marks, and the Unicode line
/// and paragraph separators.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `s` with every [`is_unsafe`] character written as a visible escape (`\n`, `\t`, `\r`, else
/// `\u{1b}`), except line feeds when `keep_newlines` (text that is meant to span lines). Text
/// without such characters is returned as is.
pub fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| is_unsafe(c) && !(keep_newlines && c == '\n');
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !unsafe_char(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// `s` on one line: runs of whitespace (line breaks included) become one space, other unsafe
/// characters visible escapes, and text beyond `max_chars` characters is cut (ending `…`).
pub fn one_line(s: &str, max_chars: usize) -> String {
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    cut(&escape(&collapsed, false), max_chars)
}

/// At most `max_chars` characters of `s`, ending `…` when cut.
pub fn cut(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        None => s.to_string(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

/// A server's response body as an error message keeps it: one line, bounded, safe to show.
///
/// - A JSON body (the systems' error shapes: BC's `{"error":{"code","message"}}`, an OAuth
///   `error_description`) stays JSON, compacted onto one line, so the server's own message
///   can still be read from it; strings keep their content, with controls and bidi characters
///   as JSON escapes. One longer than 2,000 characters is treated as text.
/// - An HTML page (a proxy's or gateway's error page) becomes `HTML page (N bytes)`, with its
///   title when it has one.
/// - Any other text: [`one_line`], at most [`REMOTE_TEXT_MAX`] characters.
pub fn remote_body(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.starts_with(['{', '['])
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(trimmed)
    {
        let compact = json_safe(&v.to_string());
        if compact.chars().count() <= REMOTE_JSON_MAX {
            return compact;
        }
    }
    if looks_like_html(trimmed) {
        return match html_title(trimmed) {
            Some(title) => format!("HTML page ({} bytes): {title}", body.len()),
            None => format!("HTML page ({} bytes)", body.len()),
        };
    }
    one_line(trimmed, REMOTE_TEXT_MAX)
}

/// Compact JSON with the unsafe characters serde_json leaves raw (bidi, line separators)
/// written as JSON `\uXXXX` escapes: they can only occur inside strings, where that is valid.
fn json_safe(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len());
    for c in compact.chars() {
        if is_unsafe(c) {
            // serde_json already escaped C0 controls; what is left is in the BMP.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn looks_like_html(s: &str) -> bool {
    let head: String = s.chars().take(512).collect::<String>().to_ascii_lowercase();
    head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || (head.starts_with('<')
            && ["<html", "<head", "<body", "<title", "<h1", "<div", "<p>"]
                .iter()
                .any(|t| head.contains(t)))
}

/// The text of the page's `<title>`, on one line and short; None when absent or empty.
fn html_title(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let title = one_line(&s[start..end], 120);
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_become_visible_escapes() {
        let s =
            "INV-1\u{1b}]8;;http://evil\u{7}x\u{1b}]8;;\u{7}\nforged\trow\r\u{7f}\u{9b}\u{202e}txt";
        let e = escape(s, false);
        assert_eq!(
            e,
            "INV-1\\u{1b}]8;;http://evil\\u{7}x\\u{1b}]8;;\\u{7}\\nforged\\trow\\r\\u{7f}\\u{9b}\\u{202e}txt"
        );
        assert!(!e.chars().any(is_unsafe));
        assert_eq!(escape("line 1\nline\u{1b}2", true), "line 1\nline\\u{1b}2");
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for s in [
            "Acme GmbH",
            "Société Générale",
            "株式会社",
            "-21.00 EUR",
            "",
        ] {
            assert!(matches!(escape(s, false), Cow::Borrowed(x) if x == s));
        }
    }

    #[test]
    fn one_line_collapses_whitespace_and_cuts() {
        assert_eq!(one_line("  a\n\n  b\t c \r\n", 100), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("ééé", 3), "ééé");
        assert_eq!(one_line("a\u{1b}[31mb", 100), "a\\u{1b}[31mb");
    }

    #[test]
    fn an_html_page_becomes_its_size_and_title() {
        let page = "<!DOCTYPE html>\n<html><head><title>502 Bad\n Gateway</title>\
                    <script>alert(1)</script></head>\n<body><h1>Bad Gateway</h1></body></html>\n";
        assert_eq!(
            remote_body(page),
            format!("HTML page ({} bytes): 502 Bad Gateway", page.len())
        );
        let untitled = "<html><body>\n<p>down</p></body></html>";
        assert_eq!(remote_body(untitled), "HTML page (38 bytes)");
    }

    #[test]
    fn a_json_body_stays_parseable_on_one_line() {
        let body = "{\n  \"error\": {\n    \"code\": \"BadRequest\",\n    \"message\": \"bad\\nvalue \u{202e}x\"\n  }\n}\n";
        let kept = remote_body(body);
        assert!(
            !kept.contains('\n') && !kept.chars().any(is_unsafe),
            "{kept}"
        );
        let v: serde_json::Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(v["error"]["message"], "bad\nvalue \u{202e}x");
    }

    #[test]
    fn other_text_is_one_bounded_line() {
        let body = format!("Service down\r\nretry later {}", "x".repeat(1000));
        let kept = remote_body(&body);
        assert!(kept.starts_with("Service down retry later xxx"), "{kept}");
        assert_eq!(kept.chars().count(), REMOTE_TEXT_MAX + 1);
        assert!(kept.ends_with('…'));
    }
}
