//! Outside text made safe inside a format's markup: an HTML page, an XML file, a
//! Markdown table. Each first shows the value as a terminal would (escaped, and clipped
//! where the format shows it in a line), then escapes what the format itself reads.

/// The longest Markdown cell, in characters: a step summary is for reading, not for logs.
pub const MAX_MARKDOWN_CELL: usize = 200;

/// Text safe in HTML content and quoted attributes: shown as on a terminal
/// ([`super::show`]: control and format characters as escapes, a long value clipped),
/// then the markup characters as entities.
pub fn html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in super::show(text).chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Text safe in an XML attribute or element: control and format characters shown as
/// escapes ([`super::escape_except`]; tab, newline and carriage return kept, for the
/// stderr's lines), the five special characters escaped, and U+FFFE and U+FFFF, which
/// XML 1.0 does not allow at all, removed, so any stderr still makes a valid file.
pub fn xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in super::escape_except(text, |c| matches!(c, '\t' | '\n' | '\r')).chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(c),
            '\u{fffe}' | '\u{ffff}' => {}
            c => escaped.push(c),
        }
    }
    escaped
}

/// Text safe in a Markdown table cell: shown as on a terminal ([`super::show_at_most`]:
/// a newline in a name reads `\n`, a U+202E `\u{202e}`, a long value is clipped with its
/// length), then every ASCII punctuation character backslash-escaped (`CommonMark` allows
/// that for each of them, and the escape's own `\` must stay visible), so no name or line
/// can end a cell (`|`), open a link, emphasis or HTML (`<`), or break the table.
pub fn markdown_cell(text: &str) -> String {
    let mut escaped = String::new();
    for c in super::show_at_most(text, MAX_MARKDOWN_CELL).chars() {
        if c.is_ascii_punctuation() {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_inject_markup() {
        assert_eq!(html("<script>\"x\"&'\u{7}"), "&lt;script&gt;&quot;x&quot;&amp;&#39;\\u{7}");
        assert_eq!(html("a\nb\u{202e}"), "a\\nb\\u{202e}");
    }

    #[test]
    fn escapes_markup_and_drops_what_xml_forbids() {
        assert_eq!(
            xml("a<b>&\"'\u{1b}[0m\u{0}\u{202e}\u{ffff}\n"),
            "a&lt;b&gt;&amp;&quot;&apos;\\u{1b}[0m\\u{0}\\u{202e}\n"
        );
    }
}
