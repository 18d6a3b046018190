//! Asking a person before a big run: how many accounts, a few of their names, the
//! role(s) and the command, then `Run in N accounts? [y/N]`. Under `fanout apply`, the
//! plan's whole review (`plan::review`) instead of the sample.
//!
//! The text is built by pure functions; [`read_answer`] is the one that touches the
//! terminal. Whether to ask at all is decided in `config/` (terminals, `--yes`,
//! `--confirm-above`) and in the runner (how many accounts the listing selected).

use std::fmt::Write as _;
use std::io::BufRead as _;

use crate::text;

/// How many account names the prompt shows.
const SAMPLE: usize = 5;

/// When a run asks before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Confirm {
    /// Ask when more accounts than this are selected.
    pub above: usize,
}

/// What the prompt shows.
#[derive(Debug)]
pub struct Prompt<'a> {
    pub count: usize,
    /// The selected accounts' names, in listing order; the first few are shown.
    pub names: Vec<&'a str>,
    pub roles: &'a [String],
    /// The command as the user gave it, shell-quoted.
    pub command: &'a str,
    /// `apply`: the plan's review, shown instead of the sample, role and command, so
    /// that what is approved is every argv that will run.
    pub review: Option<&'a str>,
}

impl Prompt<'_> {
    /// The lines before the question, then the question, without a newline after it.
    /// Names come from the portal: control characters are escaped.
    pub fn render(&self) -> String {
        if let Some(review) = self.review {
            return format!("{review}Run in {}? [y/N] ", text::plural(self.count, "account"));
        }
        let mut text = format!("fanout: about to run in {}:\n", text::plural(self.count, "account"));
        let shown: Vec<String> = self.names.iter().take(SAMPLE).map(|name| text::show(name).into_owned()).collect();
        let more = self.count.saturating_sub(shown.len());
        let _ = write!(text, "  accounts: {}", shown.join(", "));
        if more > 0 {
            let _ = write!(text, ", … and {more} more");
        }
        let _ = writeln!(text);
        let _ = writeln!(text, "  role:     {}", text::show(&self.roles.join(" or ")));
        let _ = writeln!(text, "  command:  {}", text::show_at_most(self.command, text::MAX_LINE));
        let _ = write!(text, "Run in {}? [y/N] ", text::plural(self.count, "account"));
        text
    }
}

/// Whether an answer is a yes: `y` or `yes`, any case, spaces aside.
pub fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Reads one line from standard input (a terminal: `config/` checked). An end of
/// input or a read error is a no.
pub fn read_answer() -> bool {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => false,
        Ok(_) => is_yes(&line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_y_and_yes_are_yes() {
        for yes in ["y", "Y\n", " yes \n", "YES"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yy", "sure", "y es"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }

    #[test]
    fn a_long_name_is_clipped_and_a_format_character_escaped_in_the_prompt() {
        let long = "n".repeat(60_000);
        let names = vec![long.as_str(), "txt\u{202e}exe"];
        let roles = ["ReadOnly".to_owned()];
        let text = Prompt { count: 2, names, roles: &roles, command: "true", review: None }.render();
        assert!(text.lines().all(|line| line.len() < 2 * crate::text::MAX_VALUE), "{}", text.len());
        assert!(text.contains("nnn… (60000 bytes), txt\\u{202e}exe\n"), "{text}");
    }

    #[test]
    fn the_prompt_shows_a_sample_of_escaped_names() {
        let names = vec!["a", "b\x1b[31m", "c", "d", "e", "f", "g"];
        let roles = ["ReadOnly".to_owned(), "ViewOnly".to_owned()];
        let prompt = Prompt { count: 7, names, roles: &roles, command: "aws s3 ls", review: None };
        let text = prompt.render();
        assert!(text.contains("about to run in 7 accounts"), "{text}");
        assert!(text.contains("accounts: a, b\\u{1b}[31m, c, d, e, … and 2 more\n"), "{text}");
        assert!(text.contains("role:     ReadOnly or ViewOnly\n"), "{text}");
        assert!(text.contains("command:  aws s3 ls\n"), "{text}");
        assert!(text.ends_with("Run in 7 accounts? [y/N] "), "{text}");
        let one = Prompt { count: 1, names: vec!["a"], roles: &roles[..1], command: "true", review: None }.render();
        let reviewed = Prompt { count: 1, names: vec!["a"], roles: &roles[..1], command: "", review: Some("R\n") };
        assert_eq!(reviewed.render(), "R\nRun in 1 account? [y/N] ");
        assert!(one.contains("accounts: a\n") && one.ends_with("Run in 1 account? [y/N] "), "{one}");
    }
}
