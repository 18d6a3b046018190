//! `{account_name}` outside a shell script: kept out of the program path and out of the
//! arguments an interpreter reads as code (`python -c`, `perl -e`, an awk program…) or a
//! command re-parses (`sudo`, `ssh`, `xargs`…). A shell's `-c` script is
//! [`super::shell`]'s; here the question is only which argv elements are code.
//!
//! The other placeholders are validated where they enter (12-digit ids, IAM role names,
//! region names) to hold nothing a shell or an interpreter would act on, and stay verbatim.

use super::shell::{HANDOFF, INTERPRETERS, SHELLS, basename, is_one_of, script_index};

/// How an interpreter takes code from its arguments.
struct Interpreter {
    names: &'static [&'static str],
    /// Options whose next argument is code (`-c`, `-e`, `--eval`…).
    code: &'static [&'static str],
    /// Letters that, ending a single-dash cluster (`perl -lne`), make the next argument code.
    cluster: &'static str,
    /// After the code argument everything is data (`python -c CODE ARGS…`).
    stops: bool,
    /// The first operand is the program (`awk`, `jq`, `sed`) unless code came another way.
    program_operand: bool,
    /// Options whose next argument is a program file (`awk -f`): no program operand then.
    from_file: &'static [&'static str],
    /// Options taking arguments: how many, and whether those choose code (refused) or are data.
    takes: &'static [(&'static str, usize, bool)],
    /// How a program reads the name instead.
    instead: &'static str,
}

const POSIX_SHELL: Interpreter = Interpreter {
    names: SHELLS,
    code: &[],
    cluster: "",
    stops: false,
    program_operand: false,
    from_file: &[],
    takes: &[("--rcfile", 1, true), ("--init-file", 1, true)],
    instead: "use \"$FANOUT_ACCOUNT_NAME\" in the script",
};

const TABLE: &[Interpreter] = &[
    Interpreter {
        names: &["python", "python2", "python3", "pypy", "pypy3"],
        code: &["-c", "-m"],
        cluster: "c",
        stops: true,
        program_operand: false,
        from_file: &[],
        takes: &[("-W", 1, false), ("-X", 1, false), ("--check-hash-based-pycs", 1, false)],
        instead: "os.environ[\"FANOUT_ACCOUNT_NAME\"]",
    },
    Interpreter {
        names: &["perl"],
        code: &["-e", "-E"],
        cluster: "eE",
        stops: false,
        program_operand: false,
        from_file: &[],
        takes: &[("-I", 1, true)],
        instead: "$ENV{FANOUT_ACCOUNT_NAME}",
    },
    Interpreter {
        names: &["ruby"],
        code: &["-e"],
        cluster: "e",
        stops: false,
        program_operand: false,
        from_file: &[],
        takes: &[("-I", 1, true), ("-r", 1, true), ("-C", 1, true), ("-E", 1, false), ("--encoding", 1, false)],
        instead: "ENV[\"FANOUT_ACCOUNT_NAME\"]",
    },
    Interpreter {
        names: &["node", "nodejs", "deno", "bun"],
        code: &["-e", "--eval", "-p", "--print"],
        cluster: "",
        stops: false,
        program_operand: false,
        from_file: &[],
        takes: &[
            ("-r", 1, true),
            ("--require", 1, true),
            ("--import", 1, true),
            ("--loader", 1, true),
            ("-C", 1, false),
        ],
        instead: "process.env.FANOUT_ACCOUNT_NAME",
    },
    Interpreter {
        names: &["php"],
        code: &["-r", "-B", "-R", "-E"],
        cluster: "",
        stops: false,
        program_operand: false,
        from_file: &["-f", "-F"],
        takes: &[("-c", 1, true), ("-d", 1, true), ("-z", 1, true), ("-t", 1, true)],
        instead: "getenv(\"FANOUT_ACCOUNT_NAME\")",
    },
    Interpreter {
        names: &["lua", "luajit"],
        code: &["-e"],
        cluster: "",
        stops: false,
        program_operand: false,
        from_file: &[],
        takes: &[("-l", 1, true)],
        instead: "os.getenv(\"FANOUT_ACCOUNT_NAME\")",
    },
    Interpreter {
        names: &["Rscript"],
        code: &["-e"],
        cluster: "",
        stops: false,
        program_operand: false,
        from_file: &[],
        takes: &[],
        instead: "Sys.getenv(\"FANOUT_ACCOUNT_NAME\")",
    },
    Interpreter {
        names: &["osascript"],
        code: &["-e"],
        cluster: "",
        stops: false,
        program_operand: false,
        from_file: &[],
        takes: &[("-l", 1, true), ("-s", 1, false)],
        instead: "system attribute \"FANOUT_ACCOUNT_NAME\"",
    },
    Interpreter {
        names: &["awk", "gawk", "mawk", "nawk"],
        code: &["-e", "--source"],
        cluster: "",
        stops: false,
        program_operand: true,
        from_file: &["-f", "--file"],
        takes: &[
            ("-F", 1, false),
            ("--field-separator", 1, false),
            ("-v", 1, false),
            ("--assign", 1, false),
            ("-i", 1, true),
            ("--include", 1, true),
            ("-l", 1, true),
            ("--load", 1, true),
        ],
        instead: "ENVIRON[\"FANOUT_ACCOUNT_NAME\"]",
    },
    Interpreter {
        names: &["jq"],
        code: &[],
        cluster: "",
        stops: false,
        program_operand: true,
        from_file: &["-f", "--from-file"],
        takes: &[
            ("--arg", 2, false),
            ("--argjson", 2, false),
            ("--slurpfile", 2, true),
            ("--rawfile", 2, true),
            ("--indent", 1, false),
            ("-L", 1, true),
        ],
        instead: "env.FANOUT_ACCOUNT_NAME, or --arg name \"$FANOUT_ACCOUNT_NAME\"",
    },
    Interpreter {
        names: &["sed", "gsed"],
        code: &["-e", "--expression"],
        cluster: "",
        stops: false,
        program_operand: true,
        from_file: &["-f", "--file"],
        takes: &[("-l", 1, false), ("--line-length", 1, false)],
        instead: "the environment variable FANOUT_ACCOUNT_NAME",
    },
    Interpreter {
        names: &["fish", "csh", "tcsh", "nu", "xonsh", "elvish", "rc", "es", "expect"],
        code: &["-c"],
        cluster: "c",
        stops: false,
        program_operand: false,
        from_file: &[],
        takes: &[],
        instead: "$FANOUT_ACCOUNT_NAME from the environment",
    },
    Interpreter {
        names: &["pwsh", "powershell"],
        code: &["-c", "-Command", "-command", "-e", "-EncodedCommand"],
        cluster: "",
        stops: true,
        program_operand: false,
        from_file: &[],
        takes: &[],
        instead: "$env:FANOUT_ACCOUNT_NAME",
    },
];

/// Why `{account_name}` may not go in one argument, and how to read the name instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameRefusal {
    pub why: String,
    pub instead: &'static str,
}

/// For each argument of a command (not a shell script's text, which [`rewrite`] handles),
/// whether `{account_name}` is refused there: in the program itself (a name like
/// `../../tmp/x` would choose it), in an interpreter's code, options or script file, and
/// anywhere in a command that runs or re-parses its arguments (`sudo`, `ssh`, `xargs`…).
/// The other placeholders are validated elsewhere to hold no shell or code syntax.
pub fn name_refusals(argv: &[String]) -> Vec<Option<NameRefusal>> {
    let mut out = vec![None; argv.len()];
    let Some(program) = argv.first() else { return out };
    let refuse = |why: &str, instead: &'static str| Some(NameRefusal { why: why.to_owned(), instead });
    out[0] = refuse(
        "the program to run, which the name would choose",
        "FANOUT_ACCOUNT_NAME, in a program whose path is fixed",
    );
    let base = basename(program);
    let busybox_sh = base == "busybox" && argv.get(1).is_some_and(|a| a == "sh");
    if busybox_sh || (base != "busybox" && SHELLS.contains(&base)) {
        // With -c, the script operand is rewritten rather than refused (see `rewrite`),
        // but options such as --rcfile still choose code.
        scan(argv, usize::from(busybox_sh) + 1, &POSIX_SHELL, base, &mut out);
        if let Some(script) = script_index(argv) {
            out[script] = None;
        }
        return out;
    }
    if let Some(interpreter) = TABLE.iter().find(|t| is_one_of(program, t.names)) {
        scan(argv, 1, interpreter, base, &mut out);
        return out;
    }
    let whole = if is_one_of(program, HANDOFF) || base == "busybox" {
        Some("runs its arguments as a command or hands them to a shell")
    } else if is_one_of(program, INTERPRETERS) {
        Some("may read any argument as code")
    } else {
        None
    };
    if let Some(what) = whole {
        for slot in out.iter_mut().skip(1) {
            *slot =
                refuse(&format!("an argument of {base}, which {what}"), "FANOUT_ACCOUNT_NAME, in the command it runs");
        }
    }
    out
}

/// Mark an interpreter's code, options and program operand in `out`.
fn scan(argv: &[String], start: usize, it: &Interpreter, base: &str, out: &mut [Option<NameRefusal>]) {
    let mut mark = |at: usize, what: &str| {
        if let Some(slot) = out.get_mut(at) {
            *slot = Some(NameRefusal { why: format!("{what} of {base}"), instead: it.instead });
        }
    };
    // Whatever follows a code option is code, however the options before it were read.
    for at in start..argv.len() {
        if it.code.contains(&argv[at - 1].as_str()) {
            mark(at, "code");
        }
    }
    let is_shell = std::ptr::eq(it, &POSIX_SHELL);
    let mut code_seen = false;
    let mut program_file = false;
    let mut i = start;
    while let Some(arg) = argv.get(i) {
        if arg == "--" {
            i += 1;
            break;
        }
        if arg.len() < 2 || !(arg.starts_with('-') || (is_shell && arg.starts_with('+'))) {
            break;
        }
        mark(i, "an option");
        let cluster =
            arg.strip_prefix('-').filter(|c| !c.starts_with('-') && c.chars().all(|l| l.is_ascii_alphabetic()));
        let code_cluster = cluster.is_some_and(|c| c.ends_with(|l| it.cluster.contains(l)));
        if it.code.contains(&arg.as_str()) || code_cluster {
            mark(i + 1, "code");
            code_seen = true;
            if it.stops {
                return;
            }
            i += 2;
        } else if it.from_file.contains(&arg.as_str()) {
            mark(i + 1, "the program file");
            program_file = true;
            i += 2;
        } else if let Some(&(_, count, chooses_code)) = it.takes.iter().find(|(flag, ..)| flag == arg) {
            if chooses_code {
                (i + 1..=i + count).for_each(|at| mark(at, "an option argument"));
            }
            i += 1 + count;
        } else if is_shell {
            let taken = arg[1..].chars().filter(|l| matches!(l, 'o' | 'O')).count();
            i += 1 + taken;
        } else {
            i += 1;
        }
    }
    if i < argv.len() && !code_seen {
        if it.program_operand && !program_file {
            mark(i, "the program");
        } else if !it.program_operand {
            mark(i, "the script file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|&w| w.to_owned()).collect()
    }

    fn names(words: &[&str]) -> Vec<bool> {
        name_refusals(&argv(words)).iter().map(Option::is_some).collect()
    }

    #[test]
    fn the_name_is_refused_where_an_interpreter_reads_code() {
        assert_eq!(names(&["/no/{N}"]), [true]);
        assert_eq!(names(&["./audit.sh", "x", "y"]), [true, false, false]);
        assert_eq!(names(&["python3", "-c", "code", "arg"]), [true, true, true, false]);
        assert_eq!(names(&["python3", "-W", "ignore", "-c", "code", "arg"]), [true, true, false, true, true, false]);
        assert_eq!(names(&["python3", "script.py", "--name", "n"]), [true, true, false, false]);
        assert_eq!(names(&["python3", "-m", "mod", "n"]), [true, true, true, false]);
        assert_eq!(names(&["perl", "-lne", "code", "file"]), [true, true, true, false]);
        assert_eq!(names(&["perl", "-e", "a", "-e", "b"]), [true, true, true, true, true]);
        assert_eq!(names(&["ruby", "-e", "code"]), [true, true, true]);
        assert_eq!(names(&["node", "--eval", "code"]), [true, true, true]);
        assert_eq!(names(&["php", "-r", "code"]), [true, true, true]);
        assert_eq!(names(&["Rscript", "-e", "code"]), [true, true, true]);
        assert_eq!(names(&["osascript", "-e", "code"]), [true, true, true]);
        assert_eq!(names(&["lua5.4", "-e", "code"]), [true, true, true]);
        assert_eq!(
            names(&["awk", "-F", ":", "-v", "n=x", "prog", "file"]),
            [true, true, false, true, false, true, false]
        );
        assert_eq!(names(&["gawk", "-f", "p.awk", "file"]), [true, true, true, false]);
        assert_eq!(names(&["jq", "--arg", "n", "v", ".a", "file"]), [true, true, false, false, true, false]);
        assert_eq!(names(&["sed", "-e", "s/a/b/", "file"]), [true, true, true, false]);
        assert_eq!(names(&["bash", "script.sh", "arg"]), [true, true, false]);
        assert_eq!(names(&["bash", "-eo", "pipefail", "script.sh", "arg"]), [true, true, false, true, false]);
        assert_eq!(names(&["sh", "-c", "script", "zero", "one"]), [true, true, false, false, false]);
        assert_eq!(names(&["bash", "--rcfile", "rc", "-c", "script"]), [true, true, true, true, false]);
        assert_eq!(names(&["sudo", "-u", "x", "id"]), [true, true, true, true]);
        assert_eq!(names(&["ssh", "host", "cmd"]), [true, true, true]);
        assert_eq!(names(&["busybox", "awk", "p"]), [true, true, true]);
        assert_eq!(names(&["psql", "-c", "q"]), [true, true, true]);
        assert_eq!(names(&["pwsh", "-Command", "c"]), [true, true, true]);
        assert_eq!(names(&["aws", "s3", "ls", "x"]), [true, false, false, false]);
    }
}
