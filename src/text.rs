//! Names and labels made safe to show. Tensor names come from a file's header and labels from a
//! text file: either may hold escape sequences that would drive a terminal, line breaks that
//! would break a Markdown table, or megabytes that would stall a plot. Data files (CSV, JSON)
//! keep them whole; everything shown to a person goes through here.

/// `s` with control characters and bidirectional overrides written as Rust escapes (`\u{1b}`,
/// `\n`), so that a name can neither move the cursor nor reorder the line it is printed on.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The embedding, override and isolate controls of Unicode's bidirectional algorithm.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// [`printable`], cut to at most `max` characters with an ellipsis.
pub fn short(s: &str, max: usize) -> String {
    let p = printable(s);
    if p.chars().count() <= max {
        return p;
    }
    let mut cut: String = p.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// [`short`], made safe for a Markdown table cell or inline code span.
pub fn markdown(s: &str, max: usize) -> String {
    short(s, max).replace('|', "\\|").replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_and_keeps_the_rest() {
        assert_eq!(printable("a\u{1b}[31mb\nc\td"), "a\\u{1b}[31mb\\nc\\td");
        assert_eq!(printable("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(printable("great white shark, Ωμ"), "great white shark, Ωμ");
    }

    #[test]
    fn cuts_long_text_by_characters() {
        assert_eq!(short("ωωωωω", 5), "ωωωωω");
        assert_eq!(short("ωωωωωω", 5), "ωωωω…");
        assert_eq!(markdown("a|b`c", 10), "a\\|b'c");
    }
}
