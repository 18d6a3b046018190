//! `fanout completions SHELL` and `fanout man`: a completion script and a man page,
//! both generated from the clap definition in `cli.rs`, so neither can drift from
//! `--help`. Generation only: nothing here reads a file, the environment or a token,
//! which is why `main` can print them before the configuration is read.

use clap::{Arg, Command, CommandFactory};
use clap_complete::Shell;
use roff::{Inline, Roff, bold, italic, roman};

use crate::cli::{Cli, Subcommands};

/// The name completions are registered under and the man page is titled with.
const BIN_NAME: &str = "fanout";

/// The variables fanout itself reads, for the man page's ENVIRONMENT section (the
/// commands' own `AWS_*` variables are in DESCRIPTION). Kept beside the generator,
/// not in `--help`, where `env = ...` already shows the two that set a flag.
const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "FANOUT_YES",
        "As --yes: do not ask before a big run. Empty, 0, false, no, n, f and off leave \
         the prompt on. It does not approve a plan (that is apply --approve SHA256).",
    ),
    ("AWS_PROFILE", "As --profile: the profile whose sso_session (or legacy sso_start_url) names the login."),
    (
        "FANOUT_CONFIG",
        "The config file of defaults (TOML, keys spelled as the flags), instead of \
         $XDG_CONFIG_HOME/fanout/config.toml or ~/.config/fanout/config.toml. The FANOUT_* \
         variables shown beside the options beat it; flags beat both.",
    ),
    (
        "AWS_CONFIG_FILE",
        "The AWS config file to read sso-sessions and profiles from, as the AWS CLI reads \
         it (default ~/.aws/config).",
    ),
    (
        "AWS_ENDPOINT_URL_SSO",
        "The SSO portal endpoint, overriding the sso_region's (then AWS_ENDPOINT_URL, then \
         the profile's [services] section), as the AWS CLI applies it.",
    ),
    (
        "AWS_ENDPOINT_URL_SSO_OIDC",
        "The SSO OIDC endpoint a token is refreshed at (CreateToken), overriding the \
         sso_region's (then AWS_ENDPOINT_URL, then the profile's [services] sso_oidc).",
    ),
    (
        "AWS_ENDPOINT_URL_ACCOUNT",
        "The Account API endpoint --regions enabled asks each account's enabled regions at \
         (then AWS_ENDPOINT_URL).",
    ),
    (
        "XDG_CACHE_HOME",
        "The inventory cache (account names and roles, never credentials) and the portal rate \
         last sustained are kept in $XDG_CACHE_HOME/fanout, default ~/.cache/fanout.",
    ),
    (
        "HOME",
        "Where the token `aws sso login` cached is read from (~/.aws/sso/cache); fanout refuses to run without it.",
    ),
];

/// What `fanout completions` or `fanout man` asked for, if the command line is one of
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integration {
    Completions(Shell),
    Man,
}

impl Integration {
    /// The integration `cli` asks for; `None` for a run and the other subcommands.
    pub fn requested(cli: &Cli) -> Option<Self> {
        match cli.subcommand {
            Some(Subcommands::Completions { shell }) => Some(Self::Completions(shell)),
            Some(Subcommands::Man) => Some(Self::Man),
            Some(
                Subcommands::Accounts { .. }
                | Subcommands::Apply { .. }
                | Subcommands::Credentials { .. }
                | Subcommands::Doctor
                | Subcommands::Config,
            )
            | None => None,
        }
    }

    /// The bytes to print: the script or the page.
    pub fn render(self) -> Vec<u8> {
        match self {
            Self::Completions(shell) => completions(shell),
            Self::Man => man_page(),
        }
    }
}

/// The completion script for `shell`. Rendered into memory because `clap_complete`
/// panics on a failed write, and a closed stdout must not panic.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut script);
    script
}

/// The man page, roff: `clap_mangen`'s sections, then the subcommands with their own
/// options, the examples, EXIT STATUS and ENVIRONMENT.
pub fn man_page() -> Vec<u8> {
    let command = Cli::command();
    let man = clap_mangen::Man::new(command.clone()).title(BIN_NAME.to_uppercase()).manual("User Commands");
    let mut page = Vec::new();
    let generated = [
        clap_mangen::Man::render_title,
        clap_mangen::Man::render_name_section,
        clap_mangen::Man::render_synopsis_section,
        clap_mangen::Man::render_description_section,
        clap_mangen::Man::render_options_section,
    ];
    for section in generated {
        // Writing into a Vec cannot fail.
        section(&man, &mut page).unwrap_or_default();
    }
    let after_help = command.get_after_long_help().map(ToString::to_string).unwrap_or_default();
    let mut roff = Roff::new();
    subcommands_section(&mut roff, &command);
    after_help_sections(&mut roff, &after_help);
    environment_section(&mut roff);
    page.extend_from_slice(roff.to_roff().as_bytes());
    page
}

/// Each subcommand with its synopsis, its description and its own options: `clap_mangen`
/// would only name them, as pages (fanout-apply(1)) that do not exist.
fn subcommands_section(roff: &mut Roff, command: &Command) {
    roff.control("SH", ["SUBCOMMANDS"]);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        let mut synopsis = vec![bold(format!("{BIN_NAME} {}", sub.get_name()))];
        for arg in sub.get_arguments().filter(|arg| !arg.is_hide_set()) {
            synopsis.push(roman(" "));
            synopsis.extend(arg_synopsis(arg));
        }
        roff.control("TP", []).text(synopsis);
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            roff.text([roman(about.to_string())]);
        }
        let args: Vec<&Arg> = sub.get_arguments().filter(|arg| !arg.is_hide_set()).collect();
        if args.is_empty() {
            continue;
        }
        roff.control("RS", []);
        for arg in args {
            roff.control("TP", []).text(arg_synopsis(arg));
            if let Some(help) = arg.get_long_help().or_else(|| arg.get_help()) {
                roff.text([roman(help.to_string())]);
            }
            let values: Vec<String> = arg.get_possible_values().iter().map(|v| v.get_name().to_owned()).collect();
            if !values.is_empty() {
                roff.text([Inline::LineBreak, italic("Values: "), roman(values.join(", "))]);
            }
        }
        roff.control("RE", []);
    }
}

/// `--long VALUE` for an option, `VALUE` for a positional argument; in brackets when
/// optional.
fn arg_synopsis(arg: &Arg) -> Vec<Inline> {
    let value = arg
        .get_value_names()
        .and_then(<[_]>::first)
        .map_or_else(|| arg.get_id().to_string().to_uppercase(), ToString::to_string);
    let mut synopsis = match arg.get_long() {
        Some(long) => vec![bold(format!("--{long}")), roman(" "), italic(value)],
        None => vec![italic(value)],
    };
    if !arg.is_required_set() {
        synopsis.insert(0, roman("["));
        synopsis.push(roman("]"));
    }
    synopsis
}

/// `--help`'s epilogue, split by its headings: `Examples:` becomes EXAMPLES, `Exit
/// codes:` and the paragraphs after it EXIT STATUS, one entry a code. `--help` stays the
/// one place the exit codes are written.
fn after_help_sections(roff: &mut Roff, after_help: &str) {
    for paragraph in after_help.split("\n\n") {
        let (heading, body) = paragraph.split_once('\n').unwrap_or((paragraph, ""));
        match heading.trim() {
            "Examples:" => {
                roff.control("SH", ["EXAMPLES"]).control("nf", []).control("RS", ["4"]);
                for line in body.lines() {
                    roff.text([roman(line.trim())]);
                }
                roff.control("RE", []).control("fi", []);
            }
            "Exit codes:" => {
                roff.control("SH", ["EXIT STATUS"]);
                for (code, meaning) in exit_codes(body) {
                    roff.control("TP", []).text([bold(code)]).text([roman(meaning)]);
                }
            }
            _ => {
                roff.control("PP", []).text([roman(paragraph.split_whitespace().collect::<Vec<_>>().join(" "))]);
            }
        }
    }
}

/// The `  CODE  meaning` entries of `--help`'s exit code list; a line that does not
/// start with a number continues the entry before it.
fn exit_codes(body: &str) -> Vec<(String, String)> {
    let mut codes: Vec<(String, String)> = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        let (first, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match codes.last_mut() {
            _ if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) => {
                codes.push((first.to_owned(), rest.trim().to_owned()));
            }
            Some((_, meaning)) if !line.is_empty() => {
                meaning.push(' ');
                meaning.push_str(line);
            }
            _ => {}
        }
    }
    codes
}

/// ENVIRONMENT: the variables fanout reads, and what the commands get.
fn environment_section(roff: &mut Roff) {
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, meaning) in ENVIRONMENT {
        roff.control("TP", []).text([bold(*name)]).text([roman(*meaning)]);
    }
    roff.control("PP", []).text([roman(
        "Each command runs with its account's AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, \
         AWS_CREDENTIAL_EXPIRATION, AWS_ACCOUNT_ID, AWS_REGION and AWS_DEFAULT_REGION, and \
         FANOUT_ACCOUNT_ID, FANOUT_ACCOUNT_NAME, FANOUT_ROLE, FANOUT_REGION and FANOUT_OU_PATH \
         (from --org-role or --accounts-meta; empty when unknown); with \
         --credential-server, AWS_CONTAINER_CREDENTIALS_FULL_URI and its own \
         AWS_CONTAINER_AUTHORIZATION_TOKEN instead of the three keys and their expiry.",
    )]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_join_continuation_lines() {
        let body = "  0    all ran\n  1    one failed,\n       or more\n  130  interrupted";
        assert_eq!(
            exit_codes(body),
            [
                ("0".into(), "all ran".into()),
                ("1".into(), "one failed, or more".into()),
                ("130".into(), "interrupted".into())
            ]
        );
    }

    #[test]
    fn every_exit_code_is_in_the_man_page() {
        let after_help = Cli::command().get_after_long_help().map(ToString::to_string).unwrap_or_default();
        let (_, body) = after_help.split_once("Exit codes:\n").unwrap_or_default();
        let codes: Vec<String> = exit_codes(body).into_iter().map(|(code, _)| code).collect();
        for code in [
            crate::exit_code::SUCCESS,
            crate::exit_code::ACCOUNT_FAILED,
            crate::exit_code::USAGE,
            crate::exit_code::NO_LOGIN,
            crate::exit_code::PORTAL_UNAVAILABLE,
            crate::exit_code::NOTHING_SELECTED,
            crate::exit_code::INTERRUPTED,
        ] {
            assert!(codes.contains(&code.to_string()), "exit code {code} missing from {codes:?}");
        }
    }
}
