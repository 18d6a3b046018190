//! Placeholders in a shell script: rewritten into variable references, or refused.
//!
//! `fanout -- sh -c 'echo {account_name}'` must not paste the account's name into the
//! script text: the name is chosen by that account's administrator, and a name like
//! `q$(touch /tmp/p)` would run on the operator's machine. Every child already holds the
//! raw values in `FANOUT_ACCOUNT_ID`, `FANOUT_ACCOUNT_NAME`, `FANOUT_ROLE` and
//! `FANOUT_REGION`, so a placeholder in a script becomes a *reference* to that variable,
//! in the form its quoting context needs (`"$V"` unquoted, `'"$V"'` inside '…', `${V}`
//! inside "…"). References rather than quoting the value:
//!
//! - the value never enters the script text, so no quoting bug (ours, or a shell's
//!   dialect) can turn it into code;
//! - the script sees exactly the bytes the environment holds;
//! - the rewrite is decided once, at parse time, and is the same for every account.
//!
//! Where no form is safe (backticks, arithmetic, heredocs, `eval`, a word that a nested
//! interpreter or another shell will parse as code, the command name itself), the
//! placeholder is refused rather than guessed, and so is anything this small lexer is
//! unsure of. The lexer follows POSIX sh quoting; bash's extras are treated
//! conservatively.
//!
//! The guarantee is about the placeholder itself: it is one word of data where it stands.
//! What the script then does with the variable (`eval "$FANOUT_ACCOUNT_NAME"`, piping it
//! into `sh`, a function that evals its argument) is the script's own doing, as it would be
//! had the script read the variable itself.
//!
//! Outside a script, [`super::interpreters::name_refusals`] keeps `{account_name}` out of the program path and
//! out of arguments an interpreter reads as code (`python -c`, `perl -e`, an awk program…);
//! the other placeholders are validated elsewhere to hold nothing a shell or an interpreter
//! would act on, and stay verbatim there.

/// POSIX-style shells whose `-c` script this module can rewrite.
pub const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "busybox"];

/// Interpreters: a word after one of these in a script may be their code, so a
/// placeholder there is refused. Non-POSIX shells are here too.
pub const INTERPRETERS: &[&str] = &[
    "python",
    "python2",
    "python3",
    "pypy",
    "pypy3",
    "perl",
    "ruby",
    "node",
    "nodejs",
    "deno",
    "bun",
    "php",
    "lua",
    "luajit",
    "Rscript",
    "R",
    "osascript",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "jq",
    "yq",
    "sed",
    "gsed",
    "tclsh",
    "wish",
    "expect",
    "pwsh",
    "powershell",
    "fish",
    "csh",
    "tcsh",
    "nu",
    "xonsh",
    "elvish",
    "rc",
    "es",
    "vim",
    "vi",
    "ex",
    "ed",
    "m4",
    "make",
    "gdb",
    "dc",
    "bc",
    "sqlite3",
    "psql",
    "mysql",
];

/// Commands that run their arguments as a command, hand them to a shell, or read them as
/// variable names or arithmetic (bash evaluates `a[$(…)]` subscripts there). A placeholder
/// in a later word of the same simple command is refused: one level of safety is not
/// enough where the word is parsed again (GNU parallel and ssh re-parse it as shell code).
pub const HANDOFF: &[&str] = &[
    "eval",
    "exec",
    "ssh",
    "su",
    "sudo",
    "doas",
    "runuser",
    "watch",
    "xargs",
    "parallel",
    "env",
    "command",
    "builtin",
    "nohup",
    "nice",
    "timeout",
    "time",
    "stdbuf",
    "setsid",
    "chroot",
    "ionice",
    "taskset",
    "flock",
    "strace",
    "ltrace",
    "unbuffer",
    "script",
    "trap",
    "source",
    ".",
    "alias",
    "find",
    "let",
    "unset",
    "read",
    "mapfile",
    "readarray",
    "getopts",
    "[[",
    "fc",
    "coproc",
    "kubectl",
    "docker",
    "podman",
];

/// Declaration builtins: a placeholder may only be the value of a `NAME=` word there.
const DECLARATIONS: &[&str] = &["declare", "typeset", "local", "export", "readonly", "integer", "nameref"];

/// Variables whose value is run, sourced, or searched for programs or libraries: the
/// name may not be assigned to them (`PS4='$(…)'` runs under `set -x`).
const CODE_VARIABLES: &[&str] = &[
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "PROMPT_COMMAND",
    "ENV",
    "PATH",
    "IFS",
    "SHELLOPTS",
    "BASHOPTS",
    "CDPATH",
    "GLOBIGNORE",
    "HOME",
    "TMPDIR",
    "PAGER",
    "EDITOR",
    "VISUAL",
    "MANPAGER",
    "BROWSER",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
    "ZDOTDIR",
    "FPATH",
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "HISTFILE",
    "TERMINFO",
    "PROMPT",
    "RPROMPT",
    "MAILPATH",
    "MAIL",
];

/// Families of such variables: `LD_PRELOAD`, `GIT_SSH_COMMAND`, `PYTHONSTARTUP`, `AWS_CONFIG_FILE`…
const CODE_VARIABLE_PREFIXES: &[&str] =
    &["LD_", "DYLD_", "GIT_", "BASH_", "PYTHON", "PERL", "RUBY", "NODE_", "AWS_", "LESS", "XDG_", "KUBE", "DOCKER_"];

/// Commands known not to run their arguments: an earlier word whose value is only known
/// at run time (`"$x"`, `$(…)`) is fine after these, and refused after anything else.
const SAFE_COMMANDS: &[&str] = &[
    "echo", "printf", "aws", "cat", "test", "[", "ls", "mkdir", "touch", "rm", "cp", "mv", "ln", "grep", "head",
    "tail", "wc", "cut", "sort", "uniq", "tr", "tee", "date", "basename", "dirname", "cd", "true", "false", ":", "set",
    "printenv", "return", "exit",
];

/// Reserved words that start a new command rather than being one.
const RESERVED: &[&str] =
    &["if", "then", "else", "elif", "fi", "do", "done", "while", "until", "{", "}", "!", "time", "esac"];

/// The last path component: `/usr/bin/bash` is `bash`.
pub fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// `python3.12` is `python3` and `python`, `lua5.4` is `lua`: every name to look up.
/// (At most two digits go: `ed25519` is not `ed`.)
fn names_of(word: &str) -> [&str; 3] {
    let base = basename(word);
    let no_minor = base.split_once('.').map_or(base, |(head, _)| head);
    let no_digits = no_minor.trim_end_matches(|c: char| c.is_ascii_digit());
    [base, no_minor, if no_minor.len() - no_digits.len() <= 2 { no_digits } else { no_minor }]
}

pub fn is_one_of(word: &str, list: &[&str]) -> bool {
    names_of(word).iter().any(|name| !name.is_empty() && list.contains(name))
}

/// Which argument a shell will parse as a script: the first operand after options that
/// include `c` (`sh -c`, `bash -ec`, `sh -e -c`, `bash -o pipefail -c`, `busybox sh -c`).
/// The arguments after it are `$0`, `$1`…: data. `None` for anything else (`bash x.sh`).
pub fn script_index(argv: &[String]) -> Option<usize> {
    let first = basename(argv.first()?);
    let mut i = match first {
        "busybox" if argv.get(1).is_some_and(|a| a == "sh") => 2,
        "busybox" => return None,
        _ if SHELLS.contains(&first) => 1,
        _ => return None,
    };
    let mut has_c = false;
    while let Some(arg) = argv.get(i) {
        if arg == "--" || arg == "-" {
            i += 1;
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            i += if matches!(long, "rcfile" | "init-file") { 2 } else { 1 };
            continue;
        }
        let Some(flags) = arg.strip_prefix('-').or_else(|| arg.strip_prefix('+')) else { break };
        if flags.is_empty() {
            break;
        }
        let mut takes = 0;
        for flag in flags.chars() {
            match flag {
                'c' if arg.starts_with('-') => has_c = true,
                'o' | 'O' => takes += 1,
                _ => {}
            }
        }
        i += 1 + takes;
    }
    (has_c && i < argv.len()).then_some(i)
}

/// One piece of a script: text, or a placeholder given as the variable that holds its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part<'a> {
    Text(&'a str),
    Var(&'static str),
}

/// Why a placeholder was refused: `part` is its index among the parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub part: usize,
    pub context: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Char(char),
    Var(usize, &'static str),
}

/// The word being read: its text with quotes removed, and whether any of it is only
/// known at run time (an expansion other than one of ours).
#[derive(Clone, Debug, Default)]
struct Word {
    raw: String,
    value: String,
    started: bool,
    dynamic: bool,
}

impl Word {
    /// `NAME=` or `NAME+=` at the start, unquoted: an assignment, not a command.
    fn is_assignment(&self) -> bool {
        self.assigned().is_some()
    }

    /// The variable an assignment word assigns to, if it is one.
    fn assigned(&self) -> Option<&str> {
        let eq = self.raw.find('=')?;
        let name = self.raw[..eq].strip_suffix('+').unwrap_or(&self.raw[..eq]);
        is_name(name).then_some(name)
    }

    /// `NAME[`: an array element, whose subscript bash evaluates as arithmetic.
    fn is_subscript(&self) -> bool {
        self.raw.find('[').is_some_and(|b| is_name(&self.raw[..b]) && !self.raw[..b].contains('='))
    }
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The words of one simple command, in code (the script itself, or inside `$(…)`/`(…)`).
#[derive(Clone, Debug, Default)]
struct Code {
    /// Inside `$(…)`, `(…)` or `<(…)`: ends at `)`.
    nested: bool,
    words: Vec<Word>,
    word: Word,
    redirect_pending: bool,
    /// Why the lexer cannot follow what comes after this command: a `case` inside `(…)`
    /// (its patterns' `)` would end the parentheses early here), or a variable declared to
    /// evaluate what is assigned to it (`declare -i`, `-n`).
    lost: Option<&'static str>,
}

impl Code {
    fn end_word(&mut self) {
        let word = std::mem::take(&mut self.word);
        if !word.started {
            return;
        }
        if std::mem::take(&mut self.redirect_pending) {
            return;
        }
        let command_started = self.words.iter().any(|w| !w.is_assignment());
        if self.nested && word.raw == "case" {
            self.lost.get_or_insert("after a case statement inside (…), whose patterns' ) this lexer does not follow");
        }
        let declaring = self.command_words().next().is_some_and(|c| is_one_of(&c.value, DECLARATIONS));
        if declaring && word.raw.starts_with(['-', '+']) && word.raw.contains(['i', 'n']) {
            self.lost.get_or_insert("after declare -i or -n, whose variables evaluate what is assigned to them");
        }
        if !command_started && !word.dynamic && RESERVED.contains(&word.raw.as_str()) {
            return;
        }
        self.words.push(word);
    }

    fn end_command(&mut self) {
        self.end_word();
        self.words.clear();
        self.redirect_pending = false;
    }

    /// The words that are not leading assignments: the command and its arguments so far.
    fn command_words(&self) -> impl Iterator<Item = &Word> {
        self.words.iter().skip_while(|w| w.is_assignment())
    }

    /// Why a placeholder in the current word of this command is unsafe, if it is. In an
    /// outer command (`innermost` false) the placeholder is inside `$(…)` or `(…)`, which is
    /// part of the current word only when that word has started.
    fn check(&self, innermost: bool) -> Option<String> {
        if let Some(name) = self.word.assigned()
            && (CODE_VARIABLES.contains(&name) || CODE_VARIABLE_PREFIXES.iter().any(|p| name.starts_with(p)))
        {
            return Some(format!("assigned to {name}, whose value a shell or program may run"));
        }
        let Some(command) = self.command_words().next() else {
            if self.redirect_pending || !(innermost || self.word.started) {
                return None;
            }
            if self.word.is_subscript() {
                return Some("in an array subscript, which bash evaluates as arithmetic".to_owned());
            }
            if self.word.is_assignment() {
                return None;
            }
            return Some("in the command name, where it would choose the program".to_owned());
        };
        for word in self.command_words() {
            if word.dynamic {
                continue;
            }
            for (list, what) in
                [(HANDOFF, "hands its arguments on"), (SHELLS, "is a shell"), (INTERPRETERS, "is an interpreter")]
            {
                if is_one_of(&word.value, list) {
                    return Some(format!(
                        "in a command where {:?} {what}, so the word may be parsed again as code",
                        word.value
                    ));
                }
            }
        }
        if command.dynamic {
            return Some("in a command whose program is only known at run time".to_owned());
        }
        let name = basename(&command.value);
        if !SAFE_COMMANDS.contains(&name) && self.command_words().skip(1).any(|w| w.dynamic) {
            return Some(format!("after an expansion in a command ({name:?}) not known to leave its arguments alone"));
        }
        let plain_assignment = self.word.is_assignment() && !self.word.is_subscript();
        if DECLARATIONS.contains(&name) && !plain_assignment {
            return Some(format!("in a {name} argument other than NAME=value, where bash may evaluate it"));
        }
        if matches!(name, "printf" | "test" | "[") && self.command_words().any(|w| w.value == "-v") {
            return Some(format!("in a {name} -v command, where bash reads it as a variable name"));
        }
        None
    }
}

#[derive(Clone, Debug)]
enum Frame {
    Code(Code),
    Single,
    Double,
    /// `${…}`: `head` is its text so far (at this level), to see which operator it uses.
    Brace {
        in_double: bool,
        head: String,
    },
    Backtick,
    Arith {
        depth: u32,
    },
    Comment,
}

struct Lexer<'t> {
    toks: &'t [Tok],
    frames: Vec<Frame>,
    out: String,
    /// Set once the lexer cannot follow the script any more: every later placeholder is refused.
    lost: Option<&'static str>,
}

/// Rewrite a script's placeholders into references to their variables, each in the form
/// its quoting context needs; refuse the first one where no form is safe.
pub fn rewrite(parts: &[Part<'_>]) -> Result<String, Refusal> {
    let mut toks = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        match part {
            Part::Text(text) => toks.extend(text.chars().map(Tok::Char)),
            Part::Var(var) => toks.push(Tok::Var(index, var)),
        }
    }
    let mut lexer = Lexer { toks: &toks, frames: vec![Frame::Code(Code::default())], out: String::new(), lost: None };
    let mut i = 0;
    while i < toks.len() {
        i = match toks[i] {
            Tok::Var(part, var) => {
                let replacement = lexer.placeholder(var).map_err(|context| Refusal { part, context })?;
                lexer.out.push_str(&replacement);
                i + 1
            }
            Tok::Char(c) => lexer.char(i, c),
        };
    }
    Ok(lexer.out)
}

impl Lexer<'_> {
    fn peek(&self, i: usize) -> Option<char> {
        match self.toks.get(i) {
            Some(Tok::Char(c)) => Some(*c),
            _ => None,
        }
    }

    fn is_var(&self, i: usize) -> bool {
        matches!(self.toks.get(i), Some(Tok::Var(..)))
    }

    /// The innermost code frame: whose word the current text belongs to.
    fn code(&mut self) -> &mut Code {
        self.frames
            .iter_mut()
            .rev()
            .find_map(|f| if let Frame::Code(code) = f { Some(code) } else { None })
            .expect("the outermost frame is code")
    }

    fn word(&mut self) -> &mut Word {
        &mut self.code().word
    }

    fn literal(&mut self, c: char) {
        let word = self.word();
        word.started = true;
        word.raw.push(c);
        word.value.push(c);
    }

    fn lose(&mut self, why: &'static str) {
        self.lost.get_or_insert(why);
    }

    fn placeholder(&mut self, var: &str) -> Result<String, String> {
        let lost_in_code = self.frames.iter().find_map(|f| if let Frame::Code(c) = f { c.lost } else { None });
        if let Some(why) = self.lost.or(lost_in_code) {
            return Err(why.to_owned());
        }
        let replacement = match self.frames.last().expect("never empty") {
            Frame::Comment => return Ok(format!("${var}")),
            Frame::Backtick => return Err("inside backticks".to_owned()),
            Frame::Arith { .. } => return Err("inside arithmetic".to_owned()),
            Frame::Code(_) => format!("\"${var}\""),
            Frame::Single => format!("'\"${var}\"'"),
            Frame::Double => format!("${{{var}}}"),
            Frame::Brace { in_double, head } => {
                if !brace_default(head) {
                    return Err(
                        "inside ${…} other than after :- := :+ :? (- = + ?), where it would be a pattern or a name"
                            .to_owned(),
                    );
                }
                if *in_double { format!("${{{var}}}") } else { format!("\"${{{var}}}\"") }
            }
        };
        let innermost = self.frames.iter().rposition(|f| matches!(f, Frame::Code(_)));
        for (at, frame) in self.frames.iter().enumerate() {
            if let Frame::Code(code) = frame
                && let Some(why) = code.check(Some(at) == innermost)
            {
                return Err(why);
            }
        }
        let word = self.word();
        word.started = true;
        word.raw.push_str(&replacement);
        Ok(replacement)
    }

    /// Handle the character at `i`, write what it consumed, and return the next index.
    fn char(&mut self, i: usize, c: char) -> usize {
        let next = match self.frames.last().expect("never empty") {
            Frame::Code(_) => self.code_char(i, c),
            Frame::Comment => {
                if c == '\n' {
                    self.frames.pop();
                    self.code().end_command();
                }
                i + 1
            }
            Frame::Single => {
                if c == '\'' {
                    self.frames.pop();
                } else {
                    self.literal(c);
                }
                i + 1
            }
            Frame::Double => match c {
                '"' => {
                    self.frames.pop();
                    i + 1
                }
                '\\' => self.escape(i),
                '$' => self.dollar(i, true),
                '`' => self.backtick(i),
                _ => {
                    self.literal(c);
                    i + 1
                }
            },
            Frame::Brace { in_double, .. } => {
                let in_double = *in_double;
                match c {
                    '}' => {
                        self.frames.pop();
                        i + 1
                    }
                    '{' => {
                        self.lose("after a brace inside ${…}, where shells disagree on where it ends");
                        i + 1
                    }
                    '\'' | '"' if in_double => {
                        self.lose("after a quote inside \"${…}\", where shells disagree on what it means");
                        i + 1
                    }
                    '\'' => {
                        self.frames.push(Frame::Single);
                        i + 1
                    }
                    '"' => {
                        self.frames.push(Frame::Double);
                        i + 1
                    }
                    '\\' => self.escape(i),
                    '$' => self.dollar(i, in_double),
                    '`' => self.backtick(i),
                    _ => {
                        if let Some(Frame::Brace { head, .. }) = self.frames.last_mut() {
                            head.push(c);
                        }
                        i + 1
                    }
                }
            }
            Frame::Backtick => match c {
                '`' => {
                    self.frames.pop();
                    i + 1
                }
                '\\' => self.escape(i),
                _ => i + 1,
            },
            Frame::Arith { depth } => {
                let depth = *depth;
                match c {
                    '(' => self.set_arith(depth + 1),
                    ')' if depth > 0 => self.set_arith(depth - 1),
                    ')' => {
                        self.frames.pop();
                        if self.peek(i + 1) == Some(')') {
                            self.out.push(')');
                            self.out.push(')');
                            return i + 2;
                        }
                    }
                    '\'' | '"' | '`' => self.lose("after a quote inside arithmetic"),
                    _ => {}
                }
                i + 1
            }
        };
        for tok in &self.toks[i..next] {
            if let Tok::Char(c) = tok {
                self.out.push(*c);
            }
        }
        next
    }

    fn set_arith(&mut self, to: u32) {
        if let Some(Frame::Arith { depth }) = self.frames.last_mut() {
            *depth = to;
        }
    }

    /// A backslash: the next character is literal. Before a placeholder nothing is safe.
    fn escape(&mut self, i: usize) -> usize {
        if self.is_var(i + 1) {
            self.lose("right after a backslash");
            return i + 1;
        }
        self.word().raw.push('\\');
        match self.peek(i + 1) {
            Some('\n') | None => {}
            Some(c) => self.literal(c),
        }
        (i + 2).min(self.toks.len())
    }

    fn backtick(&mut self, i: usize) -> usize {
        let word = self.word();
        word.started = true;
        word.dynamic = true;
        word.raw.push('`');
        self.frames.push(Frame::Backtick);
        i + 1
    }

    /// `$` at `i`: an expansion, or a literal dollar.
    fn dollar(&mut self, i: usize, in_double: bool) -> usize {
        if self.is_var(i + 1) {
            self.lose("right after a $");
            return i + 1;
        }
        let Some(c) = self.peek(i + 1) else {
            self.literal('$');
            return i + 1;
        };
        let word = self.word();
        word.started = true;
        word.raw.push('$');
        match c {
            '(' if self.peek(i + 2) == Some('(') => {
                self.word().dynamic = true;
                self.frames.push(Frame::Arith { depth: 0 });
                i + 3
            }
            '(' => {
                self.word().dynamic = true;
                self.frames.push(Frame::Code(Code { nested: true, ..Code::default() }));
                i + 2
            }
            '{' => {
                self.word().dynamic = true;
                self.frames.push(Frame::Brace { in_double, head: String::new() });
                i + 2
            }
            '[' => {
                self.lose("after $[…] arithmetic");
                i + 2
            }
            '\'' if !in_double => {
                self.lose("after a $'…' string, where shells disagree on where it ends");
                i + 2
            }
            '"' if !in_double => {
                self.frames.push(Frame::Double);
                i + 2
            }
            c if c.is_ascii_alphanumeric() || "_@*#?$!-".contains(c) => {
                self.word().dynamic = true;
                i + 1
            }
            _ => {
                self.word().value.push('$');
                i + 1
            }
        }
    }

    fn code_char(&mut self, i: usize, c: char) -> usize {
        match c {
            '\\' => self.escape(i),
            '\'' | '"' => {
                let word = self.word();
                word.started = true;
                // Kept in `raw`: a quoted word is neither an assignment nor a reserved word.
                word.raw.push(c);
                self.frames.push(if c == '"' { Frame::Double } else { Frame::Single });
                i + 1
            }
            '`' => self.backtick(i),
            '$' => self.dollar(i, false),
            ' ' | '\t' => {
                self.code().end_word();
                i + 1
            }
            '\n' | ';' | '&' | '|' => {
                self.code().end_command();
                i + 1
            }
            '(' => self.open_paren(i),
            ')' => {
                let code = self.code();
                code.end_command();
                if let Some(why) = code.lost {
                    self.lose(why);
                }
                if self.code().nested {
                    self.frames.pop();
                }
                i + 1
            }
            '<' | '>' => {
                let code = self.code();
                if code.word.started && !code.word.dynamic && code.word.raw.chars().all(|d| d.is_ascii_digit()) {
                    code.word = Word::default();
                } else {
                    code.end_word();
                }
                code.redirect_pending = true;
                if c == '<' && self.peek(i + 1) == Some('<') {
                    self.lose("inside a heredoc (after <<), where it would be pasted unquoted");
                }
                let mut next = i + 1;
                while self.peek(next).is_some_and(|d| "<>&|".contains(d)) {
                    next += 1;
                }
                next
            }
            '#' if !self.word().started => {
                self.frames.push(Frame::Comment);
                i + 1
            }
            _ => {
                self.literal(c);
                i + 1
            }
        }
    }

    fn open_paren(&mut self, i: usize) -> usize {
        let code = self.code();
        code.end_word();
        let at_start = code.words.is_empty() && !code.redirect_pending;
        if at_start && self.peek(i + 1) == Some('(') {
            self.frames.push(Frame::Arith { depth: 0 });
            return i + 2;
        }
        // `name()`: a function definition; its body is a new command.
        let mut j = i + 1;
        while matches!(self.peek(j), Some(' ' | '\t')) {
            j += 1;
        }
        if !at_start && self.peek(j) == Some(')') {
            self.code().end_command();
            return j + 1;
        }
        // A subshell, or a process substitution `<(…)` whose output the command reads:
        // its own commands, checked along with the one around it.
        let redirect = std::mem::take(&mut self.code().redirect_pending);
        if !at_start && !redirect {
            self.code().word.started = true;
        }
        self.frames.push(Frame::Code(Code { nested: true, ..Code::default() }));
        i + 1
    }
}

/// `${NAME:-…`-style: a default, assigned or alternative value, or an error message.
fn brace_default(head: &str) -> bool {
    let name_end = head.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(head.len());
    let (name, rest) = head.split_at(name_end);
    let name_ok = is_name(name) || (!name.is_empty() && name.chars().all(|c| c.is_ascii_digit()));
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    name_ok && rest.starts_with(['-', '=', '+', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|&w| w.to_owned()).collect()
    }

    /// A script with `{N}` (for `{account_name}`) as the placeholder, rewritten.
    fn script(text: &str) -> Result<String, String> {
        let mut parts = Vec::new();
        for (i, piece) in text.split("{N}").enumerate() {
            if i > 0 {
                parts.push(Part::Var("FANOUT_ACCOUNT_NAME"));
            }
            parts.push(Part::Text(piece));
        }
        rewrite(&parts).map_err(|refusal| refusal.context)
    }

    fn refused(text: &str, why: &str) {
        match script(text) {
            Err(context) => assert!(context.contains(why), "{text:?}: refused for {context:?}, not {why:?}"),
            Ok(out) => panic!("{text:?} was accepted as {out:?}"),
        }
    }

    #[test]
    fn script_index_finds_the_c_operand() {
        let cases: &[(&[&str], Option<usize>)] = &[
            (&["sh", "-c", "s"], Some(2)),
            (&["bash", "-ec", "s", "zero", "one"], Some(2)),
            (&["bash", "-lc", "s"], Some(2)),
            (&["/bin/sh", "-xc", "s"], Some(2)),
            (&["sh", "-e", "-c", "s"], Some(3)),
            (&["bash", "-o", "pipefail", "-c", "s"], Some(4)),
            (&["bash", "+o", "posix", "-O", "extglob", "-c", "s"], Some(6)),
            (&["sh", "+x", "-c", "s"], Some(3)),
            (&["bash", "--norc", "-c", "s"], Some(3)),
            (&["bash", "--rcfile", "f", "-c", "s"], Some(4)),
            (&["sh", "-c", "--", "s"], Some(3)),
            (&["busybox", "sh", "-c", "s"], Some(3)),
            (&["/usr/bin/zsh", "-c", "s"], Some(2)),
            (&["dash", "-c", "s"], Some(2)),
            (&["ksh", "-c", "s"], Some(2)),
            (&["mksh", "-c", "s"], Some(2)),
            (&["bash", "x.sh"], None),
            (&["bash", "-e", "x.sh", "-c"], None),
            (&["sh", "-c"], None),
            (&["busybox", "ls", "-c"], None),
            (&["env", "sh", "-c", "s"], None),
            (&["python3", "-c", "s"], None),
        ];
        for (words, want) in cases {
            assert_eq!(script_index(&argv(words)), *want, "{words:?}");
        }
    }

    #[test]
    fn each_context_gets_its_reference() {
        let cases = [
            ("echo {N}", r#"echo "$FANOUT_ACCOUNT_NAME""#),
            ("echo '{N}'", r#"echo ''"$FANOUT_ACCOUNT_NAME"''"#),
            ("echo 'a {N} b'", r#"echo 'a '"$FANOUT_ACCOUNT_NAME"' b'"#),
            (r#"echo "{N}""#, r#"echo "${FANOUT_ACCOUNT_NAME}""#),
            (r#"echo "x{N}y""#, r#"echo "x${FANOUT_ACCOUNT_NAME}y""#),
            ("echo $(echo {N})", r#"echo $(echo "$FANOUT_ACCOUNT_NAME")"#),
            (r#"echo "$(echo '{N}')""#, r#"echo "$(echo ''"$FANOUT_ACCOUNT_NAME"'')""#),
            (r#"echo "${X:-{N}}""#, r#"echo "${X:-${FANOUT_ACCOUNT_NAME}}""#),
            ("echo ${X:-{N}}", r#"echo ${X:-"${FANOUT_ACCOUNT_NAME}"}"#),
            ("X={N} ./run", r#"X="$FANOUT_ACCOUNT_NAME" ./run"#),
            ("echo x > out.{N}", r#"echo x > out."$FANOUT_ACCOUNT_NAME""#),
            ("local v={N}", r#"local v="$FANOUT_ACCOUNT_NAME""#),
            ("echo a # {N}\necho {N}", "echo a # $FANOUT_ACCOUNT_NAME\necho \"$FANOUT_ACCOUNT_NAME\""),
            ("if true; then echo {N}; fi", r#"if true; then echo "$FANOUT_ACCOUNT_NAME"; fi"#),
            ("(cd /; echo {N})", r#"(cd /; echo "$FANOUT_ACCOUNT_NAME")"#),
            ("echo `date`; echo {N}", r#"echo `date`; echo "$FANOUT_ACCOUNT_NAME""#),
            ("echo $((1+2)) {N}", r#"echo $((1+2)) "$FANOUT_ACCOUNT_NAME""#),
            ("aws s3 ls \"s3://$B/{N}/\"", r#"aws s3 ls "s3://$B/${FANOUT_ACCOUNT_NAME}/""#),
            ("for r in a b; do echo {N}-$r; done", r#"for r in a b; do echo "$FANOUT_ACCOUNT_NAME"-$r; done"#),
            ("f() { echo {N}; }; f", r#"f() { echo "$FANOUT_ACCOUNT_NAME"; }; f"#),
            ("[ {N} = x ] && echo y", r#"[ "$FANOUT_ACCOUNT_NAME" = x ] && echo y"#),
            ("no placeholders: '\"$x\"'", "no placeholders: '\"$x\"'"),
        ];
        for (text, want) in cases {
            assert_eq!(script(text).as_deref(), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn contexts_with_no_safe_form_are_refused() {
        refused("echo `echo {N}`", "backticks");
        refused("echo \"`echo {N}`\"", "backticks");
        refused("echo $(( {N} + 1 ))", "arithmetic");
        refused("(( x = {N} ))", "arithmetic");
        refused("cat <<EOF\n{N}\nEOF", "heredoc");
        refused("cat <<'EOF'\nx\nEOF\necho {N}", "heredoc");
        refused("cat <<< {N}", "heredoc");
        refused("eval echo {N}", "\"eval\"");
        refused("eval \"echo '{N}'\"", "\"eval\"");
        refused("echo a; eval x={N}", "\"eval\"");
        refused("{N}", "command name");
        refused("echo a; {N} --help", "command name");
        refused("\"{N}\" x", "command name");
        refused("X=1 /opt/{N}/bin/x", "command name");
        refused("echo $(\"{N}\")", "command name");
        refused("$({N})", "command name");
        refused("echo ${N}", "after a $");
        refused("echo \"${N}\"", "after a $");
        refused("echo \\{N}", "backslash");
        refused("echo \"${X#{N}}\"", "pattern");
        refused("echo ${#{N}}", "pattern");
        refused("echo \"${X/a/{N}}\"", "pattern");
        refused("a[{N}]=1", "subscript");
        refused("declare {N}", "declare");
        refused("export {N}", "export");
        refused("printf -v {N} x", "-v");
        refused("[[ {N} -eq 1 ]]", "\"[[\"");
        refused("let x={N}", "\"let\"");
        refused("read {N}", "\"read\"");
        refused("echo $'a' {N}", "$'");
        refused("$CMD {N}", "run time");
        refused("mytool \"$x\" {N}", "after an expansion");
        refused("'X'={N}", "command name");
        refused("PS4={N}; set -x; true", "PS4");
        refused("export LD_PRELOAD={N}", "LD_PRELOAD");
        refused("GIT_SSH_COMMAND={N} git fetch", "GIT_SSH_COMMAND");
        refused("declare -i n; n={N}", "declare -i");
        refused("local -n r={N}", "declare -i or -n");
        refused("f() { local -i n; n={N}; }", "declare -i");
        refused("$X={N}", "command name");
        refused("\\X={N}", "command name");
        assert!(script("\"if\" {N}").is_ok(), "a quoted if is a command, not a reserved word");
    }

    #[test]
    fn words_a_nested_interpreter_parses_are_refused() {
        for text in [
            "sh -c 'echo {N}'",
            "sh -c \"echo {N}\"",
            "bash -c \"sh -c 'echo {N}'\"",
            "sudo sh -c 'echo {N}'",
            "env bash -c 'echo {N}'",
            "find . -exec sh -c 'echo {N}' \\;",
            "/usr/bin/python3 -c 'print(\"{N}\")'",
            "python3.12 -c 'print(\"{N}\")'",
            "perl -e 'print \"{N}\"'",
            "awk '{print \"{N}\"}'",
            "node -e 'console.log(\"{N}\")'",
            "ssh host echo {N}",
            "xargs echo {N}",
            "parallel echo ::: {N}",
            "watch echo {N}",
            "su -c 'echo {N}'",
            "timeout 5 sh -c 'echo {N}'",
            "echo x | xargs -I{} sh -c 'echo {} {N}'",
            "python3 -c \"$(echo {N})\"",
            "python3 <(echo {N})",
            "jq \".{N}\"",
            "sed \"s/a/{N}/\"",
        ] {
            refused(text, "code");
        }
    }

    #[test]
    fn lexer_state_it_cannot_follow_refuses_what_comes_after() {
        refused("echo \"${X:-'a'}\" {N}", "quote inside");
        refused("echo $(case x in a) echo;; esac) {N}", "case");
        refused("echo ${X:-{a}} {N}", "brace");
    }

    /// Scripts with the name in each context, and what each prints around the name.
    const CONTEXTS: &[(&str, &str, &str)] = &[
        ("printf '%s\\n' {N}", "", ""),
        ("printf '%s\\n' '{N}'", "", ""),
        ("printf '%s\\n' \"{N}\"", "", ""),
        ("printf '%s\\n' \"$(printf '%s' {N})\"", "", ""),
        ("printf '%s\\n' \"$(printf '%s' \"{N}\")\"", "", ""),
        ("printf '%s\\n' x{N}y", "x", "y"),
        ("printf '%s\\n' 'a'{N}\"b\"", "a", "b"),
        ("printf '%s\\n' \"${X:-{N}}\"", "", ""),
        ("printf '%s\\n' ${X:-{N}}", "", ""),
        ("printf '%s\\n' ${X:-'{N}'}", "", ""),
        ("printf '%s\\n' \"${X:-$(printf '%s' {N})}\"", "", ""),
        ("if true; then printf '%s\\n' {N}; fi # {N}", "", ""),
        ("v={N}; printf '%s\\n' \"$v\"", "", ""),
    ];

    const NASTY: &[&str] = &[
        "q$(touch pwned)",
        "q`touch pwned`",
        "'",
        "\"",
        "\\",
        "$HOME",
        "*",
        "-n",
        "a b",
        "'; touch pwned; '",
        "\"; touch pwned; \"",
        "${X:-$(touch pwned)}",
        "a[$(touch pwned)]",
        "}",
        "{",
        "-e \\n",
        "~",
        "$((1+1))",
    ];

    /// Run `script` with `shell -c`, the name in `FANOUT_ACCOUNT_NAME`, in an empty
    /// directory; return what it printed and whether it left anything in the directory.
    fn run(shell: &str, script: &str, name: &str) -> (String, String, bool) {
        let dir = tempfile::tempdir().unwrap();
        let output = std::process::Command::new(shell)
            .args(["-c", script])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/nonexistent-home")
            .env("FANOUT_ACCOUNT_NAME", name)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let touched = std::fs::read_dir(dir.path()).unwrap().next().is_some();
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            touched,
        )
    }

    #[expect(clippy::print_stdout, reason = "a test says why it skipped bash")]
    fn shells() -> Vec<&'static str> {
        let mut shells = vec!["sh"];
        if std::process::Command::new("bash").args(["-c", "true"]).status().is_ok_and(|s| s.success()) {
            shells.push("bash");
        } else {
            println!("bash not found: the scripts run under sh only");
        }
        shells
    }

    fn check_value(name: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        for shell in shells() {
            for (text, before, after) in CONTEXTS {
                let rewritten = script(text).unwrap();
                let (stdout, stderr, touched) = run(shell, &rewritten, name);
                proptest::prop_assert_eq!(
                    &stdout,
                    &format!("{before}{name}{after}\n"),
                    "{} -c {:?}, stderr {:?}",
                    shell,
                    rewritten,
                    stderr
                );
                proptest::prop_assert!(!touched, "{shell} -c {rewritten:?} with {name:?} wrote a file");
            }
        }
        Ok(())
    }

    #[test]
    fn fixed_nasty_names_stay_data() {
        for name in NASTY {
            check_value(name).unwrap();
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(48))]

        #[test]
        fn any_printable_name_is_printed_exactly(name in "[\\x20-\\x7E]{1,50}") {
            check_value(&name)?;
        }
    }

    /// Pieces random scripts are made of: quoting, nesting, and the constructs refused.
    const FRAGMENTS: &[&str] = &[
        "{N}",
        "{N}",
        "{N}",
        "echo ",
        "printf '%s' ",
        " ",
        " ",
        "'",
        "\"",
        "$(",
        ")",
        "(",
        "`",
        "$((",
        "((",
        "<<",
        "<<<",
        "${X:-",
        "${X#",
        "}",
        "{ ",
        "\\",
        "#",
        "\n",
        ";",
        "|",
        "&&",
        "x",
        "=",
        "X=",
        "$X",
        "$",
        "sh -c ",
        "eval ",
        "a[",
        "]",
        "case x in ",
        "x) ",
        ";; esac",
        "if true; then ",
        "; fi",
        "[[ ",
        " ]]",
        "$'",
        "cat ",
        ">",
        "f() ",
        "export ",
        "for i in 1; do ",
        "; done",
        "true ",
        "!",
        "-",
        "PS4=",
        "set -x; ",
        "declare -i n; ",
        "n=",
        "$(eval ",
        " 2>&1 ",
        "\\\n",
        "${X:-'",
        "\"${X:-",
    ];

    const INJECTIONS: &[&str] = &[
        "$(touch pwned)",
        "`touch pwned`",
        "';touch pwned;'",
        "\";touch pwned;\"",
        "a[$(touch pwned)]",
        "'\";touch pwned;#$(touch pwned)`touch pwned`${X:-$(touch pwned)}",
        "touch pwned",
        "x;touch pwned",
        ")&touch pwned&(",
        "}&touch pwned&{",
    ];

    /// Every script the rewrite accepts, whatever it is, runs the name as data in real
    /// shells: no `touch pwned` ever happens.
    fn accepted_scripts_never_run_the_name(fragments: &[usize]) -> Result<(), proptest::test_runner::TestCaseError> {
        // After a command name, so that fewer scripts are refused for the name's position.
        let text: String = std::iter::once("echo ").chain(fragments.iter().map(|&i| FRAGMENTS[i])).collect();
        let Ok(rewritten) = script(&text) else { return Ok(()) };
        for shell in shells() {
            for name in INJECTIONS {
                let dir = tempfile::tempdir().unwrap();
                let output = std::process::Command::new("timeout")
                    .args(["5", shell, "-c", &rewritten])
                    .env_clear()
                    .env("PATH", "/usr/bin:/bin")
                    .env("FANOUT_ACCOUNT_NAME", name)
                    .current_dir(dir.path())
                    .stdin(std::process::Stdio::null())
                    .output()
                    .unwrap();
                proptest::prop_assert!(
                    !dir.path().join("pwned").exists(),
                    "{shell} -c {rewritten:?} (from {text:?}) ran {name:?}: {output:?}"
                );
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(
            std::env::var("FANOUT_SHELL_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
        ))]

        #[test]
        fn random_accepted_scripts_keep_the_name_data(
            fragments in proptest::collection::vec(0..FRAGMENTS.len(), 1..14)
        ) {
            accepted_scripts_never_run_the_name(&fragments)?;
        }
    }
}
