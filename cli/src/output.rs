//! Terminal output: plain aligned tables, text from elsewhere made safe to print, spreadsheet
//! cells that cannot run as formulas, and progress that shows on a terminal only.
//!
//! Source data (invoice numbers, supplier names) and servers' error texts are not ours: an ESC
//! sequence in them would drive the operator's terminal (colours, hyperlinks, a rewritten
//! screen) and a line break would forge a table row. Every human output prints them through
//! [`for_terminal`] (or [`table`], which does); JSON output stays exact.

use std::borrow::Cow;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `s` for one line of a terminal: control characters (ESC, BEL, CR, LF, TAB, DEL, C1) and
/// bidi overrides written as visible escapes (`\u{1b}`, `\n`); other text unchanged.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    mlc_shared::text::escape(s, false)
}

/// As [`for_terminal`], for text meant to span lines: line feeds are kept.
pub fn for_terminal_lines(s: &str) -> Cow<'_, str> {
    mlc_shared::text::escape(s, true)
}

/// A CSV cell a spreadsheet shows as text, never runs: a cell starting `=`, `+`, `-`, `@`, a tab
/// or a carriage return is prefixed with `'` (OWASP CSV injection), except a plain number (a
/// credit note's `-21.00` stays a number).
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    let risky = match s.chars().next() {
        Some('=' | '+' | '@' | '\t' | '\r') => true,
        Some('-') => s.parse::<rust_decimal::Decimal>().is_err(),
        _ => false,
    };
    if risky {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Columns separated by two spaces; widths from the content; text left-aligned, an `amount`
/// column right-aligned so the decimal points line up. Every cell is printed through
/// [`for_terminal`]: one row is one line, whatever the data holds.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| for_terminal(c).into_owned()).collect())
        .collect();
    let headers: Vec<String> = headers
        .iter()
        .map(|h| for_terminal(h).into_owned())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let right: Vec<bool> = headers.iter().map(|h| h == "amount").collect();
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[i].saturating_sub(c.chars().count()));
            if right[i] {
                s.push_str(&pad);
                s.push_str(c);
            } else {
                s.push_str(c);
                if i + 1 < cells.len() {
                    s.push_str(&pad);
                }
            }
            if i + 1 < cells.len() {
                s.push_str("  ");
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![line(headers)];
    out.push(line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

/// A spinner with a message on stderr; hidden when stderr is not a terminal (piped, CI).
pub fn spinner(message: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("valid template"),
    );
    pb.set_message(message.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_to_the_widest_cell() {
        let t = table(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "a    bb\n---  --\nxxx  y");
    }

    #[test]
    fn amounts_are_right_aligned_so_decimal_points_line_up() {
        let t = table(
            &["vendor", "amount", "status"],
            &[
                vec!["Acme".into(), "1234.50 EUR".into(), "posted".into()],
                vec!["Globex".into(), "-21.00 EUR".into(), "parked".into()],
            ],
        );
        assert_eq!(
            t,
            "vendor       amount  status\n\
             ------  -----------  ------\n\
             Acme    1234.50 EUR  posted\n\
             Globex   -21.00 EUR  parked"
        );
    }

    #[test]
    fn a_cell_cannot_drive_the_terminal_or_forge_a_row() {
        let number = "INV-1\u{1b}]8;;http://evil\u{7}click\u{1b}]8;;\u{7}\nforged  row";
        let t = table(
            &["number", "vendor"],
            &[vec![number.into(), "Acme\u{202e}gnp.exe".into()]],
        );
        assert_eq!(t.lines().count(), 3, "{t}");
        assert!(!t.contains('\u{1b}') && !t.contains('\u{7}') && !t.contains('\u{202e}'));
        assert!(t.contains("INV-1\\u{1b}]8;;http://evil\\u{7}click"), "{t}");
        assert!(t.contains("\\nforged  row"), "{t}");
        assert!(t.ends_with("Acme\\u{202e}gnp.exe"), "{t}");
        // Widths count what is printed: the escapes.
        let header = t.lines().next().unwrap();
        assert_eq!(
            header.find("vendor"),
            Some(for_terminal(number).chars().count() + 2)
        );
    }

    #[test]
    fn for_terminal_escapes_controls_and_keeps_plain_text() {
        assert_eq!(
            for_terminal("a\tb\r\n\u{7f}\u{9b}31m"),
            "a\\tb\\r\\n\\u{7f}\\u{9b}31m"
        );
        assert_eq!(
            for_terminal("Müller & Söhne, -21.00 EUR"),
            "Müller & Söhne, -21.00 EUR"
        );
        assert_eq!(
            for_terminal_lines("one\ntwo\u{1b}[2J"),
            "one\ntwo\\u{1b}[2J"
        );
    }

    #[test]
    fn formula_cells_are_neutralised_and_numbers_kept() {
        for (cell, shown) in [
            (
                "=HYPERLINK(\"http://evil\",\"x\")",
                "'=HYPERLINK(\"http://evil\",\"x\")",
            ),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
            ("-", "'-"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-21.00", "-21.00"),
            ("-5", "-5"),
            ("21.00", "21.00"),
            ("Acme = best", "Acme = best"),
            ("", ""),
        ] {
            assert_eq!(csv_cell(cell), shown, "{cell:?}");
        }
    }
}
