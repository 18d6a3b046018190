//! Defaults without flags: the command line layered over the `FANOUT_*` variables, a
//! config file and the built-in defaults, in that order (as cargo and ripgrep document
//! theirs). clap reads the flags, the variables and the built-in defaults itself; this
//! module reads the file and gives each of its keys to clap as if it were a flag, where
//! neither a flag nor a variable set that option. So a file's value passes through the
//! same parser as a flag's, and `config/` validates it as it validates any other.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::cli::{Cli, Subcommands};
use crate::files::{self, NotPrivate, ReadLimitError};
use crate::text;

/// A config file is a few lines; anything this large is not one.
const MAX_FILE_SIZE: u64 = 1 << 20;

/// The options a default makes sense for, each once: its file key (spelled as its
/// flag), the clap id of its argument (which also names its `FANOUT_*` variable, in
/// `cli.rs`), and how the file writes its value. Reading the file, layering it and
/// `fanout config` all go through this list, so a new option is one line here.
/// Per-run things (--dry-run, --save-plan, --accounts) are not here.
const SETTINGS: &[Setting] = &[
    Setting { key: "sso-session", id: "sso_session", kind: Kind::Text },
    Setting { key: "profile", id: "profile", kind: Kind::Text },
    Setting { key: "role", id: "role", kind: Kind::List },
    Setting { key: "exclude", id: "exclude", kind: Kind::List },
    Setting { key: "accounts-meta", id: "accounts_meta", kind: Kind::Text },
    Setting { key: "org-role", id: "org_role", kind: Kind::Text },
    Setting { key: "concurrency", id: "concurrency", kind: Kind::Jobs },
    Setting { key: "max-concurrency", id: "max_concurrency", kind: Kind::Count },
    Setting { key: "portal-concurrency", id: "portal_concurrency", kind: Kind::Count },
    Setting { key: "portal-rps", id: "portal_rps", kind: Kind::Rate },
    Setting { key: "throttle-timeout", id: "throttle_timeout", kind: Kind::Seconds },
    Setting { key: "cache-ttl", id: "cache_ttl", kind: Kind::Seconds },
    Setting { key: "region", id: "region", kind: Kind::Text },
    Setting { key: "prefix", id: "prefix", kind: Kind::Text },
    Setting { key: "output", id: "run_output", kind: Kind::Text },
    Setting { key: "timeout", id: "timeout", kind: Kind::Text },
    Setting { key: "kill-after", id: "kill_after", kind: Kind::Text },
    Setting { key: "confirm-above", id: "confirm_above", kind: Kind::Count },
    Setting { key: "max-failures", id: "max_failures", kind: Kind::CountOrPercent },
    Setting { key: "group", id: "group", kind: Kind::Switch },
    Setting { key: "keep-order", id: "keep_order", kind: Kind::Switch },
    Setting { key: "quiet", id: "quiet", kind: Kind::Switch },
    Setting { key: "require-all", id: "require_all", kind: Kind::Switch },
];

/// One option the config file can set.
#[derive(Debug)]
struct Setting {
    /// The key in the file, spelled as the flag.
    key: &'static str,
    /// The clap id of the flag's argument.
    id: &'static str,
    kind: Kind,
}

/// How the file writes a key's value (checked by TOML's types first, so a wrong type is
/// named as such), and so how the value becomes flags.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A string.
    Text,
    /// A list of strings, one flag each.
    List,
    /// `concurrency = 8` or `concurrency = "auto"`.
    Jobs,
    /// A number that fits a `u32`.
    Count,
    /// A number of seconds that fits a `u64`.
    Seconds,
    /// A rate, any number.
    Rate,
    /// `max-failures = 5` or `max-failures = "2%"`.
    CountOrPercent,
    /// `true` or `false`: the flag, or nothing.
    Switch,
}

impl Kind {
    /// The value `map` holds next, read as this kind, as the flags of `key`.
    fn read<'de, A: MapAccess<'de>>(self, key: &'static str, map: &mut A) -> Result<Option<FileValue>, A::Error> {
        Ok(match self {
            Kind::Text => Some(one(key, &map.next_value::<Spanned<String>>()?)),
            Kind::List => Some(many(key, &map.next_value()?)),
            Kind::Jobs => Some(one(key, &map.next_value::<Spanned<Jobs>>()?)),
            Kind::Count => Some(one(key, &map.next_value::<Spanned<u32>>()?)),
            Kind::Seconds => Some(one(key, &map.next_value::<Spanned<u64>>()?)),
            Kind::Rate => Some(one(key, &map.next_value::<Spanned<f64>>()?)),
            Kind::CountOrPercent => Some(one(key, &map.next_value::<Spanned<CountOrPercent>>()?)),
            Kind::Switch => switch(key, &map.next_value()?),
        })
    }
}

/// Every file key, for serde's "expected one of" when a key is unknown.
static KEYS: [&str; SETTINGS.len()] = keys();

const fn keys() -> [&'static str; SETTINGS.len()] {
    let mut keys = [""; SETTINGS.len()];
    let mut i = 0;
    while i < keys.len() {
        keys[i] = SETTINGS[i].key;
        i += 1;
    }
    keys
}

/// Defaults a flag on the command line sets aside although it is another option:
/// `--fail-fast` is `--max-failures 1`, so it replaces a default limit rather than
/// conflicting with it; `--org-role` and `--accounts-meta` are the two sources of the
/// organization's facts, so either flag replaces a default of the other.
const SET_ASIDE_BY: &[(&str, &str)] =
    &[("max-failures", "fail_fast"), ("accounts-meta", "org_role"), ("org-role", "accounts_meta")];

/// The config file as written, as flags in [`SETTINGS`]' order: every key optional,
/// none unknown, each value of its key's kind.
#[derive(Debug)]
struct FileSettings(Vec<FileValue>);

impl<'de> Deserialize<'de> for FileSettings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct("FileSettings", &KEYS, FileVisitor)
    }
}

struct FileVisitor;

impl<'de> Visitor<'de> for FileVisitor {
    type Value = FileSettings;

    // The words serde's derive would use, as every error message stays what it was.
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("struct FileSettings")
    }

    /// Each value is read as it comes (so the first bad one in the file is the error),
    /// and kept in the table's place (so clap checks them, and is given them, in one
    /// order whatever the file's). TOML itself refuses a key written twice.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileSettings, A::Error> {
        let mut values: Vec<Option<FileValue>> = vec![None; SETTINGS.len()];
        while let Some(KnownKey(index)) = map.next_key()? {
            values[index] = SETTINGS[index].kind.read(SETTINGS[index].key, &mut map)?;
        }
        Ok(FileSettings(values.into_iter().flatten().collect()))
    }
}

/// A key of the file, as its place in [`SETTINGS`]. An unknown key is refused while the
/// key is read, as serde's derive refuses it, so the error points at the key.
struct KnownKey(usize);

impl<'de> Deserialize<'de> for KnownKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = KnownKey;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<KnownKey, E> {
        SETTINGS.iter().position(|s| s.key == key).map(KnownKey).ok_or_else(|| E::unknown_field(key, &KEYS))
    }
}

/// `max-failures = 5` or `max-failures = "2%"`, as the flag takes either.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum CountOrPercent {
    Count(u32),
    Text(String),
}

impl std::fmt::Display for CountOrPercent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CountOrPercent::Count(count) => write!(f, "{count}"),
            CountOrPercent::Text(text) => f.write_str(text),
        }
    }
}

/// `concurrency = 8` or `concurrency = "auto"`: a number or a word, handed to clap's
/// `-j` parser as written.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Jobs {
    Number(i64),
    Word(String),
}

impl std::fmt::Display for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Jobs::Number(n) => write!(f, "{n}"),
            Jobs::Word(word) => f.write_str(word),
        }
    }
}

/// One key of the file, as the flags clap is given for it.
#[derive(Clone, Debug, PartialEq)]
struct FileValue {
    key: &'static str,
    /// `--key=value`, once per value of a list.
    args: Vec<String>,
    /// Where the value is in the file, for errors.
    span: Range<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read the config file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: ReadLimitError,
    },
    #[error("config file {}, line {line}{}: {message}", path.display(), key.as_ref().map(|k| format!(", key `{k}`")).unwrap_or_default())]
    Invalid { path: PathBuf, line: usize, key: Option<String>, message: String },
    /// The file can set the role, `confirm-above = 0` and `quiet`: one someone else could
    /// have written is refused, not used (issue 16, point 7).
    #[error("refusing the config file: {0}")]
    Untrusted(NotPrivate),
}

impl SettingsError {
    /// What to do about it, when fanout knows.
    pub fn hint(&self) -> Option<String> {
        match self {
            SettingsError::Untrusted(problem) => Some(problem.fix()),
            SettingsError::Read { .. } | SettingsError::Invalid { .. } => None,
        }
    }
}

/// Where the config file is looked for, and whether it must exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLocation {
    pub path: PathBuf,
    /// Named by `FANOUT_CONFIG`: a missing file is an error, not an absent default.
    pub explicit: bool,
}

impl FileLocation {
    /// `FANOUT_CONFIG`, else `$XDG_CONFIG_HOME/fanout/config.toml`, else
    /// `~/.config/fanout/config.toml`. An empty `FANOUT_CONFIG` means no file.
    pub fn find(
        fanout_config: Option<OsString>,
        xdg_config_home: Option<OsString>,
        home: Option<OsString>,
    ) -> Option<Self> {
        if let Some(path) = fanout_config {
            return (!path.is_empty()).then(|| FileLocation { path: PathBuf::from(path), explicit: true });
        }
        let base = match (xdg_config_home.filter(|p| !p.is_empty()), home.filter(|p| !p.is_empty())) {
            (Some(xdg), _) => PathBuf::from(xdg),
            (None, Some(home)) => PathBuf::from(home).join(".config"),
            (None, None) => return None,
        };
        Some(FileLocation { path: base.join("fanout").join("config.toml"), explicit: false })
    }

    fn real() -> Option<Self> {
        Self::find(std::env::var_os("FANOUT_CONFIG"), std::env::var_os("XDG_CONFIG_HOME"), std::env::var_os("HOME"))
    }
}

/// The parsed command line with every layer applied, and where each value came from.
#[derive(Debug)]
pub struct Layered {
    pub cli: Cli,
    matches: ArgMatches,
    /// The file read, if one was.
    file: Option<PathBuf>,
    /// The keys the file set (and no flag or variable overrode).
    from_file: Vec<&'static str>,
}

/// Parses the real command line and layers the environment and the config file under
/// it. Help, version and usage errors exit here, as `Cli::parse` would.
pub fn parse() -> Result<Layered, SettingsError> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let matches = Cli::command().get_matches_from(&argv);
    // `completions` and `man` print what clap declares: a broken config file must not
    // stand between a person and the man page that explains it.
    let generated = matches!(matches.subcommand_name(), Some("completions" | "man"));
    let (file, values) = match FileLocation::real().filter(|_| !generated) {
        Some(location) => match read_file(&location)? {
            Some(values) => (Some(location.path), values),
            None => (None, Vec::new()),
        },
        None => (None, Vec::new()),
    };
    Ok(layer(&argv, &matches, file, &values))
}

/// The file's values where the command line and the environment left the default, as
/// flags put before the real ones.
fn layer(argv: &[OsString], matches: &ArgMatches, file: Option<PathBuf>, values: &[FileValue]) -> Layered {
    let is_default = |id: &str| matches!(matches.value_source(id), None | Some(ValueSource::DefaultValue));
    let set_aside = |key: &str| SET_ASIDE_BY.iter().any(|(k, flag)| *k == key && !is_default(flag));
    let unset = |value: &&FileValue| is_default(id_of(value.key)) && !set_aside(value.key);
    let used: Vec<&FileValue> = values.iter().filter(unset).collect();
    let mut layered: Vec<OsString> = argv.iter().take(1).cloned().collect();
    layered.extend(used.iter().flat_map(|v| v.args.iter().map(OsString::from)));
    layered.extend(argv.iter().skip(1).cloned());
    // Each value was checked alone against its parser; together they are still flags.
    let matches = Cli::command().try_get_matches_from(&layered).unwrap_or_else(|error| error.exit());
    refuse_conflicting_flags(&matches);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let from_file = used.iter().map(|v| v.key).collect();
    let mut layered = Layered { cli, matches, file, from_file };
    layered.drop_defaults_for_recorded_runs();
    layered
}

/// Flags that contradict each other on the command line itself. clap cannot say it: it
/// would also refuse a flag against a `FANOUT_*` default, which the flag should set aside.
fn refuse_conflicting_flags(matches: &ArgMatches) {
    for (key, flag) in SET_ASIDE_BY {
        let typed = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
        if typed(id_of(key)) && typed(flag) {
            let message = format!("the argument '--{}' cannot be used with '--{key}'", flag.replace('_', "-"));
            Cli::command().error(clap::error::ErrorKind::ArgumentConflict, message).exit();
        }
    }
}

impl Layered {
    /// `apply` runs a plan's roles, selection and region, `--regions` its own regions,
    /// and `--resume`/`--retry-failed` the joblog's roles: a default (from a variable or
    /// the file) must neither conflict with them nor replace them. Only a flag does. The
    /// same holds between `--org-role` and `--accounts-meta`.
    fn drop_defaults_for_recorded_runs(&mut self) {
        let applying = matches!(self.cli.subcommand, Some(Subcommands::Apply { .. }));
        let resuming = self.cli.run.resume.is_some() || self.cli.run.retry_failed.is_some();
        let (role, exclude, region) = (self.is_flag("role"), self.is_flag("exclude"), self.is_flag("region"));
        if (applying || resuming) && !role {
            self.cli.run.role.clear();
        }
        if applying && !exclude {
            self.cli.selection.exclude.clear();
        }
        // `--regions` sets each child's region: a default region (a variable, the
        // file, or a parent fanout's FANOUT_REGION) gives way; only a flag conflicts.
        if (applying || self.cli.run.regions.is_some()) && !region {
            self.cli.run.region = None;
        }
        // One source of the organization's facts: a flag sets aside the other's
        // default (a variable; the file's is set aside in `layer`), and `apply` takes its
        // facts from the plan.
        let (org_role, meta) = (self.is_flag("org-role"), self.is_flag("accounts-meta"));
        if (applying || meta) && !org_role {
            self.cli.selection.org_role = None;
        }
        if (applying || org_role) && !meta {
            self.cli.selection.accounts_meta = None;
        }
    }

    /// Whether `key` was given as a flag on the real command line.
    fn is_flag(&self, key: &str) -> bool {
        !self.from_file.contains(&key) && self.matches.value_source(id_of(key)) == Some(ValueSource::CommandLine)
    }

    /// Where `key`'s value came from: `flag`, `env NAME`, `file PATH` or `default`.
    fn source(&self, key: &'static str) -> String {
        let id = id_of(key);
        match self.matches.value_source(id) {
            Some(ValueSource::CommandLine) if self.from_file.contains(&key) => {
                format!("file {}", self.file.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default())
            }
            Some(ValueSource::CommandLine) => "flag".to_owned(),
            Some(ValueSource::EnvVariable) => {
                let command = Cli::command();
                let env = command
                    .get_arguments()
                    .find(|arg| arg.get_id() == id)
                    .and_then(|arg| arg.get_env())
                    .map(|env| env.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("env {env}")
            }
            _ => "default".to_owned(),
        }
    }

    /// `fanout config`: the file looked at, then each setting, its value and its source.
    /// Values, the file's path and a variable's name are escaped as every other printer
    /// escapes them: a value with a line break or an escape sequence could otherwise
    /// forge a line of this listing or rewrite the terminal.
    pub fn render(&self) -> String {
        let mut text = match &self.file {
            Some(path) => format!("# config file: {}\n", text::show(&path.display().to_string())),
            None => "# config file: none\n".to_owned(),
        };
        let width = SETTINGS.iter().map(|s| s.key.len()).max().unwrap_or(0);
        for Setting { key, id, .. } in SETTINGS {
            let value = self.matches.get_raw(id).map_or_else(
                || "(none)".to_owned(),
                |values| values.map(|v| v.to_string_lossy().into_owned()).collect::<Vec<_>>().join(","),
            );
            let _ = writeln!(text, "{key:<width$} = {}  ({})", text::show(&value), text::show(&self.source(key)));
        }
        text
    }
}

/// The clap id of a file key.
fn id_of(key: &str) -> &'static str {
    SETTINGS.iter().find(|s| s.key == key).map_or("", |s| s.id)
}

/// The file's values, checked: `None` when the default file does not exist.
fn read_file(location: &FileLocation) -> Result<Option<Vec<FileValue>>, SettingsError> {
    let path = &location.path;
    let file = match files::open_regular(path) {
        Ok(file) => file,
        Err(ReadLimitError::Io(error)) if error.kind() == std::io::ErrorKind::NotFound && !location.explicit => {
            return Ok(None);
        }
        Err(source) => return Err(SettingsError::Read { path: path.clone(), source }),
    };
    // The handle's own metadata: the file checked is the file read, whatever is renamed
    // over the path meanwhile. A symlink is followed (as ssh follows one), and it is the
    // file it leads to that must be private.
    let metadata = file.metadata().map_err(|e| SettingsError::Read { path: path.clone(), source: e.into() })?;
    files::check_private(&metadata, path).map_err(SettingsError::Untrusted)?;
    let text = files::read_to_limit(file, MAX_FILE_SIZE)
        .map_err(|source| SettingsError::Read { path: path.clone(), source })?;
    parse_file(path, &text).map(Some)
}

/// The values of `text`, each checked by the parser of its flag.
fn parse_file(path: &Path, text: &str) -> Result<Vec<FileValue>, SettingsError> {
    let settings: FileSettings = toml::from_str(text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        invalid(path, text, &span, error.message().to_owned())
    })?;
    let FileSettings(values) = settings;
    for value in &values {
        let argv = std::iter::once("fanout".to_owned()).chain(value.args.iter().cloned());
        if let Err(error) = Cli::command().try_get_matches_from(argv) {
            return Err(invalid(path, text, &value.span, clap_message(&error)));
        }
    }
    Ok(values)
}

/// clap's first line, without its `error: ` (it names the flag and the reason).
fn clap_message(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

/// An error at `span` of `text`, naming the line and the key written on it.
fn invalid(path: &Path, text: &str, span: &Range<usize>, message: String) -> SettingsError {
    let start = span.start.min(text.len());
    let line = text.get(..start).map_or(1, |before| before.matches('\n').count() + 1);
    let line_text = text.lines().nth(line - 1).unwrap_or_default();
    let key = line_text
        .split_once('=')
        .map(|(key, _)| key.trim().trim_matches('"').to_owned())
        .filter(|key| !key.is_empty() && !key.starts_with('#'));
    SettingsError::Invalid { path: path.to_owned(), line, key, message }
}

/// A single value as `--key=value` (the `=` keeps a value that starts with `-` a value).
fn one<T: std::fmt::Display>(key: &'static str, value: &Spanned<T>) -> FileValue {
    FileValue { key, span: value.span(), args: vec![format!("--{key}={}", value.get_ref())] }
}

/// An on/off option as its flag when on; off is the flag's absence, the default.
fn switch(key: &'static str, value: &Spanned<bool>) -> Option<FileValue> {
    value.get_ref().then(|| FileValue { key, span: value.span(), args: vec![format!("--{key}")] })
}

/// A list as one `--key=value` per element: a role list stays a fallback list, and a
/// glob with a comma stays one glob.
fn many(key: &'static str, value: &Spanned<Vec<String>>) -> FileValue {
    FileValue { key, span: value.span(), args: value.get_ref().iter().map(|item| format!("--{key}={item}")).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<FileValue>, SettingsError> {
        parse_file(Path::new("/c.toml"), text)
    }

    #[test]
    fn keys_become_flags() {
        let values = parse("role = [\"A\", \"B\"]\nconcurrency = 8\ntimeout = \"10m\"\n").unwrap();
        let args: Vec<&str> = values.iter().flat_map(|v| v.args.iter().map(String::as_str)).collect();
        assert_eq!(args, ["--role=A", "--role=B", "--concurrency=8", "--timeout=10m"]);
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let error = parse("role = [\"A\"]\ncolour = 1\n").unwrap_err().to_string();
        assert!(error.contains("line 2") && error.contains("colour"), "{error}");
        let error = parse("\nconcurrency = \"many\"\n").unwrap_err().to_string();
        assert!(error.contains("line 2, key `concurrency`"), "{error}");
        let error = parse("concurrency = 0\n").unwrap_err().to_string();
        assert!(error.contains("line 1, key `concurrency`") && error.contains("--concurrency"), "{error}");
        let values = parse("concurrency = \"auto\"\nmax-concurrency = 64\n").unwrap();
        let args: Vec<&str> = values.iter().flat_map(|v| v.args.iter().map(String::as_str)).collect();
        assert_eq!(args, ["--concurrency=auto", "--max-concurrency=64"]);
        let error = parse("timeout = \"soon\"\n").unwrap_err().to_string();
        assert!(error.contains("key `timeout`") && error.contains("duration"), "{error}");
    }

    #[test]
    fn the_file_is_found_as_documented() {
        let find = |a: Option<&str>, b: Option<&str>, c: Option<&str>| {
            FileLocation::find(a.map(Into::into), b.map(Into::into), c.map(Into::into))
        };
        assert_eq!(find(Some("/x.toml"), Some("/xdg"), None).unwrap().path, PathBuf::from("/x.toml"));
        assert!(find(Some("/x.toml"), None, None).unwrap().explicit);
        assert_eq!(find(Some(""), Some("/xdg"), Some("/h")), None);
        assert_eq!(find(None, Some("/xdg"), Some("/h")).unwrap().path, PathBuf::from("/xdg/fanout/config.toml"));
        assert_eq!(find(None, None, Some("/h")).unwrap().path, PathBuf::from("/h/.config/fanout/config.toml"));
    }
}
