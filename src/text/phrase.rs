//! Small phrases many printers share: counts with their noun, ages, an error with its
//! causes. Here, at the bottom, so that a printer high up and a stage low down say them
//! the same way without importing each other.

use std::time::Duration;

/// `1 account`, `2 accounts`.
pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

/// `45 s ago`, `12 min ago`, `3 h ago`: how long ago roles were listed, for a reader.
pub fn ago(age: Duration) -> String {
    match age.as_secs() {
        s if s < 120 => format!("{s} s ago"),
        s if s < 2 * 3600 => format!("{} min ago", s / 60),
        s => format!("{} h ago", s / 3600),
    }
}

/// `error` and its causes as `message: cause: cause`, each escaped and clipped
/// ([`super::show_at_most`]): a portal's message or a file's name can hold line breaks,
/// and be as long as a portal cares to make it.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = super::show_at_most(&error.to_string(), super::MAX_LINE).into_owned();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&super::show_at_most(&cause.to_string(), super::MAX_LINE));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_ages_and_chains_read_as_phrases() {
        assert_eq!(plural(1, "account"), "1 account");
        assert_eq!(plural(2, "account"), "2 accounts");
        assert_eq!(ago(Duration::from_secs(45)), "45 s ago");
        assert_eq!(ago(Duration::from_mins(12)), "12 min ago");
        assert_eq!(ago(Duration::from_hours(3)), "3 h ago");
    }

    #[test]
    fn an_error_chain_is_escaped_and_clipped_link_by_link() {
        #[derive(Debug)]
        struct Message(String, Option<Box<Message>>);
        impl std::fmt::Display for Message {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::error::Error for Message {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|cause| cause as _)
            }
        }
        let cause = Message("m".repeat(100 * 1024), None);
        let error = Message("listing\u{202e} failed\n".to_owned(), Some(Box::new(cause)));
        let chain = error_chain(&error);
        assert!(chain.starts_with("listing\\u{202e} failed\\n: mmm"), "{chain}");
        assert!(chain.ends_with("m… (102400 bytes)"), "{}", &chain[chain.len() - 40..]);
        assert!(chain.len() < 2 * crate::text::MAX_LINE, "{}", chain.len());
    }
}
