//! `--joblog FILE`: one line per account as it ends, in GNU parallel's joblog columns
//! where they fit, plus the account, the role, the status and the failure class; read
//! back by `--resume` (run what the log does not show as done) and `--retry-failed`
//! (run again what failed or never started, with the logged command unless a new one is
//! given).
//!
//! The format is tab-separated with a header line. In the text columns a backslash, a tab,
//! a newline and a carriage return are written `\\`, `\t`, `\n`, `\r`, so any command or
//! name survives the round trip. `Command` is the argv that ran, joined with shell quoting
//! (`shell-words`), as a person would type it. Each run that writes to the log first adds
//! two comment lines, `# command: …` (the command as given, placeholders and all) and
//! `# roles: …`: what `--retry-failed` runs again when no new command is given.
//!
//! `OuPath` and `Tags` (`k=v;k2=v2`) are what `--accounts-meta` says of the account,
//! empty when it says nothing. A log written before they existed has 14 columns; it is
//! still read, and appended to.
//!
//! `Host` is GNU parallel's "where it ran": `:` (this machine), or with `--regions` the
//! child's region, so each (account, region) has a line of its own.
//!
//! A write that fails (a full disk) is the run's failure, said once when it ends, never
//! a warning per account: the log stops at its first failed write, so it can end in a
//! torn line but never hold one in the middle. Reading skips a torn last line with a
//! warning, as GNU parallel's `--resume` does, and appending to the log first cuts it off.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::events::Ended;
use crate::files::{self, ReadLimitError};
use crate::org::AccountFacts;
use crate::outcome::ChildExit;

/// The first line of every joblog.
const HEADER: &str = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\tAccountId\tAccountName\tRole\tStatus\tClass\tOuPath\tTags";
/// The first line of a log written before `OuPath` and `Tags`, still read.
const HEADER_WITHOUT_ORG: &str = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\tAccountId\tAccountName\tRole\tStatus\tClass";
/// The columns of a line written before `OuPath` and `Tags`: a line has these, or two more.
const COLUMNS: usize = 14;
/// The largest joblog read back: a line is ~200 bytes, so a million accounts fit.
const MAX_FILE: u64 = 256 * 1024 * 1024;

/// One account's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: usize,
    /// When its command started; `None` when none did.
    pub started: Option<SystemTime>,
    pub runtime: Duration,
    /// -1 when the command did not exit by itself (or never ran).
    pub exit_code: i32,
    pub signal: i32,
    /// The argv that ran; empty when none did.
    pub command: Vec<String>,
    pub account_id: String,
    pub account_name: String,
    pub role: String,
    /// With `--regions`: the region the line is for (the `Host` column).
    pub region: Option<String>,
    /// `succeeded`, `failed`, `interrupted`, `not-started` or `no-role`, as in the JSON
    /// results.
    pub status: String,
    pub class: String,
    /// Its OU path and tags (`k=v;k2=v2`), from `--accounts-meta`; empty when unknown.
    pub ou_path: String,
    pub tags: String,
}

impl Entry {
    /// An (account, region)'s line, as GNU parallel's joblog has one for a job.
    pub fn of(end: &Ended<'_>) -> Self {
        let trace = end.trace;
        let ran = trace.exit.is_some();
        Entry {
            seq: 0,
            started: trace.started.filter(|_| ran),
            runtime: if ran { trace.runtime } else { Duration::ZERO },
            // GNU parallel's convention: -1 for no exit code of its own, 0 for no signal.
            exit_code: trace.exit.as_ref().and_then(ChildExit::code).unwrap_or(-1),
            signal: trace.exit.as_ref().and_then(ChildExit::signal).unwrap_or(0),
            command: trace.argv.clone().filter(|_| ran).unwrap_or_default(),
            account_id: end.account_id.to_owned(),
            account_name: end.account_name.to_owned(),
            role: trace.role.clone().unwrap_or_default(),
            region: end.region.map(str::to_owned),
            status: end.outcome.status(end.dry_run).to_owned(),
            class: end.outcome.class().map_or("", |class| class.name()).to_owned(),
            ou_path: end.org.map(AccountFacts::ou_path).unwrap_or_default(),
            tags: end.org.map(AccountFacts::tags_text).unwrap_or_default(),
        }
    }
}

impl Entry {
    /// Whether `--resume` counts the account as done: it ran to an end of its own.
    pub fn is_done(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "no-role")
    }

    /// Whether `--retry-failed` runs the account again.
    pub fn needs_retry(&self) -> bool {
        matches!(self.status.as_str(), "failed" | "interrupted" | "not-started")
    }

    fn to_line(&self) -> String {
        let start = self.started.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
        format!(
            "{}\t{}\t{}.{:03}\t{}.{:03}\t0\t0\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            self.seq,
            self.region.as_deref().map_or(":".into(), escape),
            start.as_secs(),
            start.subsec_millis(),
            self.runtime.as_secs(),
            self.runtime.subsec_millis(),
            self.exit_code,
            self.signal,
            escape(&shell_words::join(&self.command)),
            escape(&self.account_id),
            escape(&self.account_name),
            escape(&self.role),
            self.status,
            self.class,
            escape(&self.ou_path),
            escape(&self.tags),
        )
    }

    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split('\t').collect();
        let (fields, org) = fields.split_at_checked(COLUMNS)?;
        let [seq, host, start, runtime, _send, _receive, exit, signal, command, id, name, role, status, class] =
            fields[..]
        else {
            return None;
        };
        let (ou_path, tags) = match org {
            [] => ("", ""),
            [ou_path, tags] => (*ou_path, *tags),
            _ => return None,
        };
        let seconds = |text: &str| text.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0);
        let start = seconds(start)?;
        Some(Entry {
            seq: seq.parse().ok()?,
            started: (start > 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(start)),
            runtime: Duration::from_secs_f64(seconds(runtime)?),
            exit_code: exit.parse().ok()?,
            signal: signal.parse().ok()?,
            command: shell_words::split(&unescape(command)).ok()?,
            account_id: unescape(id),
            account_name: unescape(name),
            role: unescape(role),
            region: (host != ":").then(|| unescape(host)),
            status: status.to_owned(),
            class: class.to_owned(),
            ou_path: unescape(ou_path),
            tags: unescape(tags),
        })
    }
}

/// What a joblog holds: the last entry of every account, and the command and roles of
/// the last run that wrote to it.
#[derive(Debug, Default)]
pub struct Logged {
    pub entries: HashMap<String, Entry>,
    pub command: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
}

const COMMAND_COMMENT: &str = "# command: ";
const ROLES_COMMENT: &str = "# roles: ";

/// The writer of `--joblog`.
#[derive(Debug)]
pub struct JobLog {
    path: PathBuf,
    file: BufWriter<File>,
    seq: usize,
    /// The first write that failed: nothing more is written after it (a line after a
    /// torn one would make the log unreadable), and the run fails when it ends.
    error: Option<io::Error>,
}

impl JobLog {
    /// Creates (or truncates) `path`, or appends to it when `append` (the log being
    /// resumed, cut after its last whole line); the header goes first in a new or empty
    /// file, then the run's `command` template and `roles`. Only opening can fail here
    /// (fanout stops before any account starts); a failed write is kept for [`finish`].
    ///
    /// [`finish`]: JobLog::finish
    pub fn open(path: &Path, append: bool, command: &[String], roles: &[String]) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(append)
            .write(true)
            .create(true)
            .append(append)
            .truncate(!append)
            .mode(0o600)
            .open(path)?;
        if append {
            cut_torn_tail(&file)?;
        }
        let empty = file.metadata()?.len() == 0;
        let mut log = JobLog { path: path.to_owned(), file: BufWriter::new(file), seq: 0, error: None };
        let head = format!(
            "{}{COMMAND_COMMENT}{}\n{ROLES_COMMENT}{}\n",
            if empty { format!("{HEADER}\n") } else { String::new() },
            escape(&shell_words::join(command)),
            escape(&roles.join(","))
        );
        log.write(&head);
        Ok(log)
    }

    /// Appends `entry` with the next sequence number and flushes, so the log is
    /// complete up to the last account that ended even if fanout is killed.
    pub fn record(&mut self, mut entry: Entry) {
        self.seq += 1;
        entry.seq = self.seq;
        self.write(&entry.to_line());
    }

    /// Writes and flushes `text`, unless an earlier write failed.
    fn write(&mut self, text: &str) {
        if self.error.is_none()
            && let Err(error) = self.file.write_all(text.as_bytes()).and_then(|()| self.file.flush())
        {
            self.error = Some(error);
        }
    }

    /// Ends the log: its path and the first write that failed, if one did.
    pub fn finish(mut self) -> Result<(), (PathBuf, io::Error)> {
        if self.error.is_none()
            && let Err(error) = self.file.flush()
        {
            self.error = Some(error);
        }
        match self.error.take() {
            Some(error) => Err((self.path.clone(), error)),
            None => Ok(()),
        }
    }
}

/// Cuts a log about to be appended to after its last whole line, so that a torn last
/// line (which reading skips) does not become a malformed line in the middle.
fn cut_torn_tail(file: &File) -> io::Result<()> {
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
    if let Some(start) = torn_tail(&bytes) {
        file.set_len(start as u64)?;
    }
    Ok(())
}

/// Where the last line of `log` starts when it is torn (a write cut short, perhaps in
/// the middle of a character): it has no newline, or it is an entry with fewer columns
/// than a whole one. `None` when the last line is whole.
fn torn_tail(log: &[u8]) -> Option<usize> {
    let body = log.strip_suffix(b"\n");
    let lines = body.unwrap_or(log);
    let start = lines.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let last = &lines[start..];
    if last.is_empty() {
        return None;
    }
    let columns = last.split(|&b| b == b'\t').count();
    let is_header = last == HEADER.as_bytes() || last == HEADER_WITHOUT_ORG.as_bytes();
    let short_entry = !last.starts_with(b"#") && !is_header && columns < COLUMNS;
    (body.is_none() || short_entry).then_some(start)
}

#[derive(Debug, thiserror::Error)]
pub enum JobLogError {
    #[error("cannot read the joblog {}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: ReadLimitError,
    },
    #[error("{} is not a fanout joblog (line {line}); give a file written by --joblog", path.display())]
    Malformed { path: PathBuf, line: usize },
}

/// The joblog at `path`: the last entry of every account, the last command and roles.
/// A torn last line (see [`torn_tail`]) is skipped with a warning: the account it was
/// for counts as not run.
pub fn read(path: &Path) -> Result<Logged, JobLogError> {
    let unreadable = |source| JobLogError::Unreadable { path: path.to_owned(), source };
    let bytes = files::read_bounded_bytes(path, MAX_FILE).map_err(unreadable)?;
    let whole = match torn_tail(&bytes) {
        // A torn header is a log whose first write failed, not some other file.
        Some(start) if start > 0 || HEADER.as_bytes().starts_with(&bytes) => {
            // `start` follows a newline: the pieces before it are the whole lines, plus one.
            let line = bytes[..start].split(|&b| b == b'\n').count();
            tracing::warn!(
                "the joblog {} ends in a torn line (line {line}, a write that was cut short); ignoring that line",
                path.display()
            );
            &bytes[..start]
        }
        _ => &bytes[..],
    };
    let text = std::str::from_utf8(whole).map_err(|_| unreadable(ReadLimitError::NotText))?;
    let mut logged = Logged::default();
    for (number, line) in text.lines().enumerate() {
        let malformed = || JobLogError::Malformed { path: path.to_owned(), line: number + 1 };
        let is_header = line == HEADER || line == HEADER_WITHOUT_ORG;
        if number == 0 && !is_header {
            return Err(malformed());
        }
        if line.is_empty() || is_header {
            continue;
        }
        if let Some(command) = line.strip_prefix(COMMAND_COMMENT) {
            logged.command = Some(shell_words::split(&unescape(command)).map_err(|_| malformed())?);
            continue;
        }
        if let Some(roles) = line.strip_prefix(ROLES_COMMENT) {
            logged.roles = Some(unescape(roles).split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect());
            continue;
        }
        let entry = Entry::parse(line).ok_or_else(malformed)?;
        logged.entries.insert(entry.account_id.clone(), entry);
    }
    Ok(logged)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            // Any other control or format character (an ESC, a U+202E in an account's
            // name) would drive or mislead whoever reads the log: `\u{1b}`, as the
            // summary writes it.
            c if crate::text::is_hidden(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('u') => match unescape_unicode(&mut chars) {
                Some(c) => out.push(c),
                None => out.push('u'),
            },
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// The rest of a `\u{1b}` escape, after its `u`; `None` (and nothing consumed) when
/// the text there is not one.
fn unescape_unicode(chars: &mut std::str::Chars<'_>) -> Option<char> {
    let rest = chars.as_str();
    let (hex, after) = rest.strip_prefix('{')?.split_once('}')?;
    let c = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)?;
    *chars = after.chars();
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, status: &str) -> Entry {
        Entry {
            seq: 0,
            started: Some(UNIX_EPOCH + Duration::from_millis(1_795_489_200_250)),
            runtime: Duration::from_millis(1500),
            exit_code: 3,
            signal: 0,
            command: vec!["sh".to_owned(), "-c".to_owned(), "echo 'a\tb'\nexit 3 \\".to_owned()],
            account_id: id.to_owned(),
            account_name: "odd\tname\\ \u{1b}[31m\\u{41}".to_owned(),
            role: "ReadOnly".to_owned(),
            region: None,
            status: status.to_owned(),
            class: "exit".to_owned(),
            ou_path: "Root/Work\tloads".to_owned(),
            tags: "env=prod;team=a\nb".to_owned(),
        }
    }

    #[test]
    fn entries_round_trip_whatever_their_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let command = ["sh".to_owned(), "-c".to_owned(), "echo {account_id}\tx".to_owned()];
        let mut log = JobLog::open(&path, false, &command, &["ReadOnly".to_owned(), "ViewOnly".to_owned()]).unwrap();
        log.record(entry("111111111111", "failed"));
        log.record(entry("222222222222", "succeeded"));
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("Seq\tHost\tStarttime"), "{text}");
        assert!(text.contains("\t:\t1795489200.250\t1.500\t0\t0\t3\t0\t"), "{text}");
        assert!(
            !text.contains('\x1b') && text.contains("\\u{1b}[31m"),
            "no control character reaches the file: {text}"
        );
        let logged = read(&path).unwrap();
        assert_eq!(logged.command.as_deref(), Some(&command[..]));
        assert_eq!(logged.roles, Some(vec!["ReadOnly".to_owned(), "ViewOnly".to_owned()]));
        let read = logged.entries;
        let mut expected = entry("111111111111", "failed");
        expected.seq = 1;
        assert_eq!(read["111111111111"], expected);
        assert_eq!(read["222222222222"].seq, 2);
    }

    #[test]
    fn a_log_from_before_the_org_columns_is_read_and_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let old = "1\t:\t0.000\t0.000\t0\t0\t-1\t0\t\t111111111111\tn\tR\tfailed\texit\n";
        std::fs::write(&path, format!("{HEADER_WITHOUT_ORG}\n{old}")).unwrap();
        assert_eq!(read(&path).unwrap().entries["111111111111"].ou_path, "");
        JobLog::open(&path, true, &[], &[]).unwrap().record(entry("222222222222", "failed"));
        let logged = read(&path).unwrap().entries;
        assert_eq!(logged.len(), 2);
        assert_eq!(logged["222222222222"].ou_path, "Root/Work\tloads");
        assert_eq!(logged["222222222222"].tags, "env=prod;team=a\nb");
    }

    #[test]
    fn a_region_is_the_host_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut regional = entry("111111111111", "succeeded");
        regional.region = Some("eu-west-1".to_owned());
        JobLog::open(&path, false, &[], &[]).unwrap().record(regional);
        assert!(std::fs::read_to_string(&path).unwrap().contains("\n1\teu-west-1\t1795489200.250\t"));
        assert_eq!(read(&path).unwrap().entries["111111111111"].region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn appending_keeps_the_last_entry_of_each_account() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        JobLog::open(&path, false, &[], &[]).unwrap().record(entry("111111111111", "failed"));
        JobLog::open(&path, true, &[], &[]).unwrap().record(entry("111111111111", "succeeded"));
        let read = read(&path).unwrap().entries;
        assert_eq!(read.len(), 1);
        assert!(read["111111111111"].is_done() && !read["111111111111"].needs_retry());
        assert_eq!(std::fs::read_to_string(&path).unwrap().matches("Seq\t").count(), 1, "one header");
    }

    #[test]
    fn a_file_that_is_no_joblog_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, format!("{HEADER}\nnot\ta\tjoblog\n# roles: R\n")).unwrap();
        assert!(matches!(read(&path), Err(JobLogError::Malformed { line: 2, .. })));
        std::fs::write(&path, "hello").unwrap();
        assert!(matches!(read(&path), Err(JobLogError::Malformed { line: 1, .. })), "no header, torn or not");
    }

    #[test]
    fn only_a_last_line_cut_short_is_torn() {
        let whole = format!("{HEADER}\n# roles: R\n{}", entry("111111111111", "failed").to_line());
        assert_eq!(torn_tail(whole.as_bytes()), None);
        assert_eq!(torn_tail(b""), None);
        let start = whole.len() - entry("111111111111", "failed").to_line().len();
        for cut in [start + 1, whole.len() - 1, whole.len() - 30] {
            assert_eq!(torn_tail(&whole.as_bytes()[..cut]), Some(start), "cut at {cut}");
        }
        let short = format!("{HEADER}\n1\t:\t0\n");
        assert_eq!(torn_tail(short.as_bytes()), Some(HEADER.len() + 1), "fewer columns, with its newline");
        assert_eq!(torn_tail(&HEADER.as_bytes()[..7]), Some(0), "a header cut short");
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = JobLog::open(&path, false, &[], &[]).unwrap();
        log.record(entry("111111111111", "succeeded"));
        log.record(entry("222222222222", "succeeded"));
        log.finish().unwrap();
        let text = std::fs::read(&path).unwrap();
        // Cut inside the second entry's account name, in the middle of a character.
        let name_at = text.windows(3).rposition(|w| w == b"odd").unwrap();
        std::fs::write(&path, [&text[..name_at], "é".as_bytes().get(..1).unwrap()].concat()).unwrap();
        let logged = read(&path).unwrap();
        assert!(logged.entries.contains_key("111111111111"));
        assert!(!logged.entries.contains_key("222222222222"), "the torn line's account is not done");
        let mut appended = JobLog::open(&path, true, &[], &[]).unwrap();
        appended.record(entry("333333333333", "succeeded"));
        appended.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(torn_tail(text.as_bytes()).is_none(), "{text}");
        assert_eq!(read(&path).unwrap().entries.len(), 2, "{text}");
    }

    #[test]
    fn a_failed_write_is_kept_for_the_end_and_stops_the_log() {
        let mut log = JobLog::open(Path::new("/dev/full"), false, &[], &[]).unwrap();
        log.record(entry("111111111111", "succeeded"));
        let (path, error) = log.finish().unwrap_err();
        assert_eq!(path, Path::new("/dev/full"));
        assert_eq!(error.raw_os_error(), Some(28), "ENOSPC: {error}");
    }
}
