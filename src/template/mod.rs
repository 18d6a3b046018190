//! `{account_id}`-style placeholders in the command and the prefix, parsed once in
//! `config/` so that rendering them for an account cannot fail.

use std::fmt::Write as _;

mod interpreters;
mod shell;

/// The values one account gives the placeholders.
#[derive(Clone, Copy, Debug)]
pub struct Vars<'a> {
    pub account_id: &'a str,
    pub account_name: &'a str,
    pub role: &'a str,
    pub region: &'a str,
    /// The OU path the organization gives the account (`--accounts-meta`); empty when
    /// it gives none.
    pub ou_path: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placeholder {
    AccountId,
    AccountName,
    Role,
    Region,
    OuPath,
}

const PLACEHOLDERS: [(&str, Placeholder); 5] = [
    ("account_id", Placeholder::AccountId),
    ("account_name", Placeholder::AccountName),
    ("role", Placeholder::Role),
    ("region", Placeholder::Region),
    ("ou_path", Placeholder::OuPath),
];

/// The placeholders whose values someone else chooses, with no syntax of their own to
/// validate: an account's name (its administrator's) and an OU path (the organization's
/// administrator's). Each is kept out of code and of the program path, and becomes a
/// variable reference in a shell script.
const HOSTILE: [(Placeholder, &str); 2] =
    [(Placeholder::AccountName, "an account's name"), (Placeholder::OuPath, "an OU's name")];

impl Placeholder {
    fn name(self) -> &'static str {
        PLACEHOLDERS.iter().find(|(_, p)| *p == self).map_or("", |(name, _)| name)
    }

    /// The variable every child gets holding the same value (see `env.rs`).
    fn env_var(self) -> &'static str {
        match self {
            Placeholder::AccountId => "FANOUT_ACCOUNT_ID",
            Placeholder::AccountName => "FANOUT_ACCOUNT_NAME",
            Placeholder::Role => "FANOUT_ROLE",
            Placeholder::Region => "FANOUT_REGION",
            Placeholder::OuPath => "FANOUT_OU_PATH",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Placeholder),
}

/// One argument (or the prefix) with its placeholders found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error(
        "unknown placeholder {{{name}}} in {text:?} (known: {{account_id}}, {{account_name}}, {{role}}, {{region}}, {{ou_path}}; write {{{{ for a literal brace)"
    )]
    Unknown { name: String, text: String },
    #[error(
        "refusing {{{placeholder}}} in argument {index} of the command ({arg:?}): {context}; no substitution is safe there, so use \"${var}\" in the script instead"
    )]
    ShellScript { placeholder: &'static str, index: usize, arg: String, context: String, var: &'static str },
    #[error(
        "refusing {{{placeholder}}} in argument {index} of the command ({arg:?}): it would be {why}, and {whose} must not become code or choose a program; read it from the environment instead ({instead})"
    )]
    Hostile { placeholder: &'static str, whose: &'static str, index: usize, arg: String, why: String, instead: String },
}

/// `Some((name, rest))` when `text` starts with `{name}`.
fn placeholder_name(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix('{')?;
    let end = inner.find('}')?;
    let name = &inner[..end];
    let is_word = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    is_word.then(|| (name, &inner[end + 1..]))
}

impl Template {
    /// A `{name}` of letters, digits and `_` is a placeholder, and an unknown name is an
    /// error (a typo must not run); any other brace is literal, so `sh -c '${X:-y}'` and
    /// awk programs need no escaping. `{{` and `}}` are always literal braces.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("{{").or_else(|| rest.strip_prefix("}}")) {
                literal.push(c);
                rest = after;
                continue;
            }
            if let Some((name, after)) = placeholder_name(rest) {
                let Some(&(_, placeholder)) = PLACEHOLDERS.iter().find(|(n, _)| *n == name) else {
                    return Err(TemplateError::Unknown { name: name.to_owned(), text: text.to_owned() });
                };
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Var(placeholder));
                rest = after;
                continue;
            }
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template(pieces))
    }

    fn has(&self, placeholder: Placeholder) -> bool {
        self.0.contains(&Piece::Var(placeholder))
    }

    /// This argument as a shell script: each placeholder becomes a reference to the
    /// variable holding its value, so the script is the same plain text for every account.
    fn into_script(self, index: usize, arg: &str) -> Result<Self, TemplateError> {
        let parts: Vec<_> = self
            .0
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => shell::Part::Text(text),
                Piece::Var(placeholder) => shell::Part::Var(placeholder.env_var()),
            })
            .collect();
        match shell::rewrite(&parts) {
            Ok(script) if script.is_empty() => Ok(Template(Vec::new())),
            Ok(script) => Ok(Template(vec![Piece::Text(script)])),
            Err(refusal) => {
                let Some(Piece::Var(placeholder)) = self.0.get(refusal.part) else {
                    unreachable!("a refusal names a placeholder")
                };
                Err(TemplateError::ShellScript {
                    placeholder: placeholder.name(),
                    index,
                    arg: arg.to_owned(),
                    context: refusal.context,
                    var: placeholder.env_var(),
                })
            }
        }
    }

    pub fn render(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            let _ = match piece {
                Piece::Text(text) => out.write_str(text),
                Piece::Var(Placeholder::AccountId) => out.write_str(vars.account_id),
                Piece::Var(Placeholder::AccountName) => out.write_str(vars.account_name),
                Piece::Var(Placeholder::Role) => out.write_str(vars.role),
                Piece::Var(Placeholder::Region) => out.write_str(vars.region),
                Piece::Var(Placeholder::OuPath) => out.write_str(vars.ou_path),
            };
        }
        out
    }
}

/// The user's command: a program and its arguments, each a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandTemplate(Vec<Template>);

impl CommandTemplate {
    /// Each argument parsed as a [`Template`]; then a shell's `-c` script has its
    /// placeholders rewritten into variable references (see `shell.rs`), and
    /// `{account_name}` and `{ou_path}` are refused where they could become code or
    /// choose the program.
    pub fn parse(argv: &[String]) -> Result<Self, TemplateError> {
        let templates = argv.iter().map(|arg| Template::parse(arg)).collect::<Result<Vec<_>, _>>()?;
        let script = shell::script_index(argv);
        let refusals = interpreters::name_refusals(argv);
        let mut command = Vec::with_capacity(templates.len());
        for (index, (template, arg)) in templates.into_iter().zip(argv).enumerate() {
            if Some(index) == script {
                command.push(template.into_script(index, arg)?);
                continue;
            }
            if let Some(Some(refusal)) = refusals.get(index)
                && let Some(&(placeholder, whose)) = HOSTILE.iter().find(|(p, _)| template.has(*p))
            {
                return Err(TemplateError::Hostile {
                    placeholder: placeholder.name(),
                    whose,
                    index,
                    arg: arg.clone(),
                    why: refusal.why.clone(),
                    // The refusals name the account name's variable; the OU path's is read
                    // the same way.
                    instead: refusal.instead.replace("FANOUT_ACCOUNT_NAME", placeholder.env_var()),
                });
            }
            command.push(template);
        }
        Ok(CommandTemplate(command))
    }

    /// Whether the program itself (not just its arguments) depends on the account.
    pub fn program_has_placeholders(&self) -> bool {
        self.0.first().is_some_and(|program| program.0.iter().any(|piece| matches!(piece, Piece::Var(_))))
    }

    /// The argv for one account; never empty when the command given was not.
    pub fn render(&self, vars: &Vars<'_>) -> Vec<String> {
        self.0.iter().map(|arg| arg.render(vars)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: Vars<'static> = Vars {
        account_id: "111122223333",
        account_name: "payments-dev",
        role: "ReadOnly",
        region: "eu-west-1",
        ou_path: "Root/Workloads/Prod",
    };

    #[test]
    fn fills_every_placeholder() {
        let t = Template::parse("{account_id}/{account_name}:{role}@{region}").unwrap();
        assert_eq!(t.render(&VARS), "111122223333/payments-dev:ReadOnly@eu-west-1");
    }

    #[test]
    fn double_braces_are_literal() {
        let t = Template::parse("{{\"id\": \"{account_id}\"}}").unwrap();
        assert_eq!(t.render(&VARS), "{\"id\": \"111122223333\"}");
    }

    #[test]
    fn text_without_placeholders_round_trips() {
        for text in ["", "plain", "a b c", "--query=Buckets[].Name", "ünïcødé"] {
            assert_eq!(Template::parse(text).unwrap().render(&VARS), text);
        }
    }

    #[test]
    fn mistakes_are_named() {
        assert!(
            matches!(Template::parse("{acount_id}"), Err(TemplateError::Unknown { name, .. }) if name == "acount_id")
        );
        assert!(matches!(Template::parse("${HOME}"), Err(TemplateError::Unknown { name, .. }) if name == "HOME"));
    }

    #[test]
    fn braces_that_are_not_placeholders_are_literal() {
        for text in ["${X:-y}", "awk '{ print $1 }'", "{account_id", "a}b", "{}", "{ role }"] {
            assert_eq!(Template::parse(text).unwrap().render(&VARS), text);
        }
    }

    #[test]
    fn commands_render_per_argument() {
        let argv = ["./audit.sh".to_owned(), "{account_id}".to_owned(), "a b".to_owned()];
        let command = CommandTemplate::parse(&argv).unwrap();
        assert_eq!(command.render(&VARS), ["./audit.sh", "111122223333", "a b"]);
    }

    fn command(words: &[&str]) -> Result<CommandTemplate, TemplateError> {
        CommandTemplate::parse(&words.iter().map(|&w| w.to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn a_shell_script_gets_references_not_values() {
        let c =
            command(&["sh", "-c", "echo {account_name} '{account_id}' \"{role}\" {region}", "{account_name}"]).unwrap();
        let script = r#"echo "$FANOUT_ACCOUNT_NAME" ''"$FANOUT_ACCOUNT_ID"'' "${FANOUT_ROLE}" "$FANOUT_REGION""#;
        // The arguments after the script are $0, $1…: data, substituted as before.
        assert_eq!(c.render(&VARS), ["sh", "-c", script, "payments-dev"]);
        let hostile = Vars { account_name: "q$(touch /tmp/p)", ..VARS };
        assert_eq!(c.render(&hostile)[2], script, "the same script for every account");
    }

    #[test]
    fn literal_braces_in_a_script_stay_literal() {
        let c = command(&["bash", "-ec", "f() {{ echo {account_id}; }}; f; echo ${X:-y}"]).unwrap();
        assert_eq!(c.render(&VARS)[2], r#"f() { echo "$FANOUT_ACCOUNT_ID"; }; f; echo ${X:-y}"#);
    }

    #[test]
    fn unsafe_script_contexts_are_one_line_usage_errors() {
        let err = command(&["sh", "-c", "echo `echo {account_name}`"]).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, TemplateError::ShellScript { index: 2, placeholder: "account_name", .. }), "{err:?}");
        assert!(message.contains("backticks"), "{message}");
        assert!(message.contains(r#"use "$FANOUT_ACCOUNT_NAME" in the script instead"#), "{message}");
        assert!(!message.contains('\n'), "{message}");
        let err = command(&["bash", "-c", "cat <<EOF\n{region}\nEOF"]).unwrap_err().to_string();
        assert!(err.contains("{region}") && err.contains("heredoc") && err.contains("$FANOUT_REGION"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        for script in ["sh -c 'echo {account_name}'", "sudo sh -c 'echo {account_id}'", "eval {role}"] {
            assert!(matches!(command(&["sh", "-c", script]), Err(TemplateError::ShellScript { .. })), "{script}");
        }
    }

    #[test]
    fn the_name_never_becomes_interpreter_code_or_the_program() {
        for argv in [
            &["python3", "-c", "print('{account_name}')"][..],
            &["perl", "-lne", "print '{account_name}'"],
            &["awk", "{ print \"{account_name}\" }"],
            &["node", "-e", "console.log('{account_name}')"],
            &["/no/{account_name}"],
            &["{account_name}.sh"],
            &["ssh", "host", "echo {account_name}"],
            &["xargs", "echo", "{account_name}"],
        ] {
            let err = command(argv).unwrap_err();
            assert!(matches!(err, TemplateError::Hostile { placeholder: "account_name", .. }), "{argv:?}: {err:?}");
            assert!(!err.to_string().contains('\n'));
        }
        let err = command(&["python3", "-c", "print('{account_name}')"]).unwrap_err().to_string();
        assert!(err.contains(r#"os.environ["FANOUT_ACCOUNT_NAME"]"#), "{err}");
        // The other placeholders are validated to be safe as code, and stay verbatim.
        let c = command(&["python3", "-c", "print('{account_id}', '{role}', '{region}')", "{account_name}"]).unwrap();
        assert_eq!(
            c.render(&VARS),
            ["python3", "-c", "print('111122223333', 'ReadOnly', 'eu-west-1')", "payments-dev"]
        );
        let c = command(&["awk", "-v", "n={account_name}", "{ print n }"]).unwrap();
        assert_eq!(c.render(&VARS)[2], "n=payments-dev");
        assert!(command(&["{account_id}.sh"]).unwrap().program_has_placeholders());
        assert!(command(&["aws", "s3", "ls", "s3://b/{account_name}/"]).is_ok());
    }

    #[test]
    fn an_ou_path_is_as_hostile_as_a_name() {
        let hostile = Vars { ou_path: "Root/x$(touch pwned)'`id`", ..VARS };
        let c = command(&["sh", "-c", "echo {ou_path} \"in {ou_path}\"", "{ou_path}"]).unwrap();
        let script = r#"echo "$FANOUT_OU_PATH" "in ${FANOUT_OU_PATH}""#;
        assert_eq!(c.render(&hostile), ["sh", "-c", script, hostile.ou_path]);
        for argv in [&["python3", "-c", "print('{ou_path}')"][..], &["{ou_path}/run.sh"], &["ssh", "h", "ls {ou_path}"]]
        {
            let err = command(argv).unwrap_err();
            assert!(matches!(err, TemplateError::Hostile { placeholder: "ou_path", .. }), "{argv:?}: {err:?}");
        }
        let err = command(&["python3", "-c", "print('{ou_path}')"]).unwrap_err().to_string();
        assert!(err.contains(r#"os.environ["FANOUT_OU_PATH"]"#) && err.contains("an OU's name"), "{err}");
        assert!(matches!(command(&["sh", "-c", "eval {ou_path}"]), Err(TemplateError::ShellScript { .. })));
        assert_eq!(Template::parse("{ou_path}").unwrap().render(&VARS), "Root/Workloads/Prod");
    }

    #[test]
    fn the_prefix_is_unchanged() {
        let t = Template::parse("{account_name} $(x) `y`").unwrap();
        assert_eq!(t.render(&VARS), "payments-dev $(x) `y`");
    }
}
