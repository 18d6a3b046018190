//! Text from outside fanout (an account's name, a portal's message, a file's path) made
//! fit to print: the one escaper and the one clip every printer uses (the summary, the
//! errors, the prompt, the plan, prefixes, tables; the reports before their own escaping).
//!
//! Two things make a value dishonest on a terminal or a page, and both are handled here:
//! - characters that are not seen but act: control characters (an ESC drives the
//!   terminal, a newline forges a line) and Unicode *format* characters (general category
//!   Cf: U+202E RIGHT-TO-LEFT OVERRIDE shows `exe.txt` for `txt.exe`, zero-width ones make
//!   two names look alike), shown as Rust escapes (`\n`, `\u{202e}`);
//! - size: a 20 MB name would be a 20 MB line. A value is clipped at [`MAX_VALUE`]
//!   characters with `…` and its real length: `verylongname… (20971520 bytes)`.
//!
//! Child output never comes here: its bytes pass through unchanged.

pub mod markup;
mod phrase;

use std::borrow::Cow;

pub use phrase::{ago, error_chain, plural};
use std::fmt::Write as _;

/// The most characters one outside value takes on a line (escapes counted as shown).
/// Real account names have at most 50, role names 64, portal messages a few hundred; the
/// bound only stops a hostile value from flooding a line.
pub const MAX_VALUE: usize = 512;

/// The most characters of a phrase that holds values (an error and its context, a
/// failure's reason, a command): room for a couple of them at [`MAX_VALUE`].
pub const MAX_LINE: usize = 2 * MAX_VALUE;

/// Unicode's format characters (general category Cf, Unicode 15.1), as ranges. They
/// are invisible and change how the text around them is shown (bidirectional overrides
/// and isolates, zero-width joiners and spaces, the byte order mark, tags). A hand list
/// rather than a crate: it is short, and changes only when Unicode adds one (check with
/// `python3 -c 'import unicodedata'`, as the unit test below was written against).
const FORMAT: &[(char, char)] = &[
    ('\u{ad}', '\u{ad}'),
    ('\u{600}', '\u{605}'),
    ('\u{61c}', '\u{61c}'),
    ('\u{6dd}', '\u{6dd}'),
    ('\u{70f}', '\u{70f}'),
    ('\u{890}', '\u{891}'),
    ('\u{8e2}', '\u{8e2}'),
    ('\u{180e}', '\u{180e}'),
    ('\u{200b}', '\u{200f}'),
    ('\u{202a}', '\u{202e}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206f}'),
    ('\u{feff}', '\u{feff}'),
    ('\u{fff9}', '\u{fffb}'),
    ('\u{110bd}', '\u{110bd}'),
    ('\u{110cd}', '\u{110cd}'),
    ('\u{13430}', '\u{1343f}'),
    ('\u{1bca0}', '\u{1bca3}'),
    ('\u{1d173}', '\u{1d17a}'),
    ('\u{e0001}', '\u{e0001}'),
    ('\u{e0020}', '\u{e007f}'),
];

/// Whether `c` is a Unicode format character (category Cf).
pub fn is_format(c: char) -> bool {
    FORMAT.binary_search_by(|&(low, high)| cmp_range(c, low, high)).is_ok()
}

fn cmp_range(c: char, low: char, high: char) -> std::cmp::Ordering {
    if high < c {
        std::cmp::Ordering::Less
    } else if low > c {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Equal
    }
}

/// Whether `c` must not reach a reader as it is: a control character, a format
/// character, or U+2028/U+2029 (line and paragraph separators, which some terminals and
/// every browser break lines at).
pub fn is_hidden(c: char) -> bool {
    c.is_control() || is_format(c) || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `text` with every [hidden](is_hidden) character shown as its Rust escape (`\n`,
/// `\u{1b}`, `\u{202e}`); borrowed when there is none. Not clipped: for text already
/// bounded, or going to a file that keeps it whole.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_except(text, |_| false)
}

/// As [`escape`], but the hidden characters `keep` accepts stay as they are (a report's
/// multi-line text keeps its newlines).
pub fn escape_except(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_hidden(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hidden(c) && !keep(c) {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// `text` as a line shows one outside value: [escaped](escape) and clipped at
/// [`MAX_VALUE`] characters.
pub fn show(text: &str) -> Cow<'_, str> {
    show_at_most(text, MAX_VALUE)
}

/// `text` escaped, and when that would take more than `max` characters, its first ones
/// then `… (N bytes)`, N the length of the whole value: a reader sees that it was cut, and
/// by how much. An escape is never cut in two. Reads only as far as it shows, so a huge
/// value costs no more than a short one.
pub fn show_at_most(text: &str, max: usize) -> Cow<'_, str> {
    let plain = |c: char| !is_hidden(c);
    // The common case, a short plain value, is returned as it is.
    if text.len() <= max && text.chars().all(plain) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::new();
    let mut count = 0;
    for c in text.chars() {
        let piece = if plain(c) { Piece::Char(c) } else { Piece::Escape(c.escape_default()) };
        let width = piece.width();
        if count + width > max {
            let _ = write!(shown, "… ({} bytes)", text.len());
            return Cow::Owned(shown);
        }
        count += width;
        match piece {
            Piece::Char(c) => shown.push(c),
            Piece::Escape(escape) => shown.extend(escape),
        }
    }
    Cow::Owned(shown)
}

/// One character of a shown value: itself, or its escape.
enum Piece {
    Char(char),
    Escape(std::char::EscapeDefault),
}

impl Piece {
    fn width(&self) -> usize {
        match self {
            Piece::Char(_) => 1,
            Piece::Escape(escape) => escape.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_format_characters_are_escaped() {
        assert_eq!(escape("prod\x1b[31m"), "prod\\u{1b}[31m");
        assert_eq!(escape("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(escape("txt\u{202e}exe"), "txt\\u{202e}exe");
        assert_eq!(escape("a\u{200b}b\u{2066}c\u{feff}\u{2028}"), "a\\u{200b}b\\u{2066}c\\u{feff}\\u{2028}");
        assert!(matches!(escape("plain é 名前"), Cow::Borrowed("plain é 名前")));
        assert_eq!(escape_except("a\nb\u{1b}", |c| c == '\n'), "a\nb\\u{1b}");
    }

    #[test]
    fn the_format_table_is_category_cf() {
        // Written against Python's unicodedata: every Cf character of these blocks, and
        // their neighbours that are not.
        for c in ['\u{ad}', '\u{600}', '\u{605}', '\u{61c}', '\u{200b}', '\u{200f}', '\u{202a}', '\u{202e}'] {
            assert!(is_format(c), "{c:?}");
        }
        for c in ['\u{2060}', '\u{2064}', '\u{2066}', '\u{2069}', '\u{206f}', '\u{feff}', '\u{e0001}', '\u{e007f}'] {
            assert!(is_format(c), "{c:?}");
        }
        for c in ['a', ' ', '\u{ac}', '\u{606}', '\u{200a}', '\u{2010}', '\u{2065}', '\u{2070}', '\u{e0080}', 'é'] {
            assert!(!is_format(c), "{c:?}");
        }
        assert!(FORMAT.windows(2).all(|pair| pair[0].1 < pair[1].0), "the table must be sorted");
    }

    #[test]
    fn a_long_value_is_clipped_with_its_length() {
        let name = "n".repeat(20 * 1024 * 1024);
        let shown = show(&name);
        assert_eq!(shown, format!("{}… (20971520 bytes)", "n".repeat(MAX_VALUE)));
        assert_eq!(show_at_most("abcdef", 3), "abc… (6 bytes)");
        assert_eq!(show_at_most("abc", 3), "abc");
        // An escape is not cut, and counts as wide as it is shown.
        assert_eq!(show_at_most("ab\u{202e}cd", 6), "ab… (7 bytes)");
        assert_eq!(show_at_most("a\nb", 4), "a\\nb");
        assert_eq!(show_at_most("a\nbc", 3), "a\\n… (4 bytes)");
        assert!(matches!(show("short"), Cow::Borrowed("short")));
    }

    #[test]
    fn what_is_shown_is_bounded_whatever_the_value() {
        for value in ["\u{202e}".repeat(100_000), "\u{1b}".repeat(100_000), "é".repeat(100_000)] {
            let shown = show(&value);
            assert!(shown.chars().count() <= MAX_VALUE + 20, "{}", shown.len());
            assert!(!shown.chars().any(is_hidden));
        }
    }
}
