//! `--output json`: one JSON object a line on stdout, for a CI job to parse. The schema
//! (docs/json-output.md, docs/json-output.schema.json) is versioned: every record carries
//! `"version": 1`, and a change that is not an addition raises it.
//!
//! - `line`: one line a command wrote, with its account and stream. A line that is valid
//!   UTF-8 is `line`; one that is not has `line` with U+FFFD for the bad bytes and
//!   `line_base64` with the bytes themselves, so no byte is lost. A line longer than
//!   `lines::MAX_LINE` (64 MiB) is cut into records marked `"cut": true`.
//! - `result`: how one account ended, when it ends.
//! - `summary`: the last record, with the counts and the exit code.

use base64::Engine as _;
use serde::Serialize;

use crate::reporter::coverage::Coverage;
use crate::reporter::summary::Tally;
use crate::reporter::writer::Stream;

/// The schema's version, in every record.
pub const VERSION: u32 = 1;

/// What a command's records say about where they come from.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AccountFields<'a> {
    pub account_id: &'a str,
    pub account_name: &'a str,
    pub role: &'a str,
    pub region: &'a str,
}

#[derive(Serialize)]
struct LineHead<'a> {
    version: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    account: AccountFields<'a>,
    stream: &'static str,
}

/// The start of every line record of one stream, up to and including `"line":`; the
/// rest is [`finish_line_record`]'s. Made once per stream, so a line costs one escape.
pub fn line_record_head(account: AccountFields<'_>, stream: Stream) -> Vec<u8> {
    let stream = match stream {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    };
    let mut head = serde_json::to_vec(&LineHead { version: VERSION, kind: "line", account, stream })
        .expect("a struct of strings serializes");
    head.pop(); // the closing brace: the line comes next
    head.extend_from_slice(b",\"line\":");
    head
}

/// Appends `line` as a JSON string, and `line_base64` when it is not UTF-8, `"cut":true`
/// when it is a piece of a line longer than `lines::MAX_LINE`, then the record's end and
/// a newline.
pub fn finish_line_record(line: &[u8], cut: bool, out: &mut Vec<u8>) {
    if let Ok(text) = std::str::from_utf8(line) {
        push_json(out, &text);
    } else {
        push_json(out, &String::from_utf8_lossy(line));
        out.extend_from_slice(b",\"line_base64\":");
        push_json(out, &base64::engine::general_purpose::STANDARD.encode(line));
    }
    if cut {
        out.extend_from_slice(b",\"cut\":true");
    }
    out.extend_from_slice(b"}\n");
}

fn push_json(out: &mut Vec<u8>, value: &impl Serialize) {
    // Writing into a Vec cannot fail, and a string always serializes.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// How one account ended, as its `result` record says.
#[derive(Debug, Serialize)]
pub struct ResultRecord<'a> {
    pub version: u32,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub account_id: &'a str,
    pub account_name: &'a str,
    /// The login it ran through (`SsoLogin::name`, the session name): with several
    /// `--sso-session`s, the first given that lists the account.
    pub login: &'a str,
    /// The role used; `null` when none was (no role, not started).
    pub role: Option<&'a str>,
    pub region: &'a str,
    /// `succeeded`, `failed`, `interrupted`, `not-started`, `no-role` or `planned` (dry run).
    pub status: &'static str,
    /// Why it failed: `exit`, `signal`, `spawn`, `no-credentials`, `throttled`, `login`…
    pub class: Option<&'static str>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// What the organization says of the account (`--accounts-meta`), when it says
    /// anything: its OU path and its tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ou_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<&'a std::collections::BTreeMap<String, String>>,
    /// With `--dry-run`: the exact argv that would run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv: Option<&'a [String]>,
}

impl ResultRecord<'_> {
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("a result record serializes");
        line.push(b'\n');
        line
    }
}

#[derive(Serialize)]
struct SummaryRecord<'a> {
    version: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    selected: usize,
    succeeded: usize,
    failed: usize,
    interrupted: usize,
    not_started: usize,
    no_role: usize,
    /// Accounts skipped as the organization lists them suspended or closed.
    inactive: usize,
    exit_code: u8,
    duration_ms: u64,
    /// Why the run stopped starting accounts, if it did.
    halt: Option<String>,
    /// Why the account listing broke off, if it did.
    listing_error: Option<String>,
    dry_run: bool,
    /// With organization facts: the accounts in scope, how many were reached, and each
    /// one that was not; absent without facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    coverage: Option<CoverageRecord<'a>>,
}

#[derive(Serialize)]
struct CoverageRecord<'a> {
    in_scope: usize,
    reached: usize,
    not_reached: Vec<NotReachedRecord<'a>>,
}

#[derive(Serialize)]
struct NotReachedRecord<'a> {
    account_id: &'a str,
    reason: &'static str,
}

impl<'a> CoverageRecord<'a> {
    fn of(coverage: &'a Coverage) -> Self {
        CoverageRecord {
            in_scope: coverage.in_scope(),
            reached: coverage.reached(),
            not_reached: coverage
                .not_reached()
                .map(|(account_id, why, _)| NotReachedRecord { account_id, reason: why.word() })
                .collect(),
        }
    }
}

/// The last record of a run.
pub fn summary_record(tally: &Tally, exit_code: u8, duration_ms: u64, dry_run: bool) -> Vec<u8> {
    let record = SummaryRecord {
        version: VERSION,
        kind: "summary",
        selected: tally.selected,
        succeeded: tally.succeeded,
        failed: tally.failed.len(),
        interrupted: tally.interrupted.len(),
        not_started: tally.not_started.len(),
        no_role: tally.no_role.len(),
        inactive: tally.inactive,
        exit_code,
        duration_ms,
        halt: tally.halt.as_ref().map(ToString::to_string),
        listing_error: tally.listing_error.clone(),
        dry_run,
        coverage: tally.coverage.as_ref().map(CoverageRecord::of),
    };
    let mut line = serde_json::to_vec(&record).expect("a summary record serializes");
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: AccountFields<'static> =
        AccountFields { account_id: "111122223333", account_name: "n\"x\n", role: "ReadOnly", region: "eu-west-1" };

    fn record(line: &[u8]) -> serde_json::Value {
        let mut out = line_record_head(ACCOUNT, Stream::Stderr);
        finish_line_record(line, false, &mut out);
        assert_eq!(memchr::memchr_iter(b'\n', &out).count(), 1, "one record, one line");
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn a_line_record_holds_the_line_and_where_it_came_from() {
        let value = record(b"hello \"world\"\t\x1b[31m");
        assert_eq!(value["type"], "line");
        assert_eq!(value["version"], 1);
        assert_eq!(value["account_name"], "n\"x\n");
        assert_eq!(value["stream"], "stderr");
        assert_eq!(value["line"], "hello \"world\"\t\x1b[31m");
        assert!(value.get("line_base64").is_none());
    }

    #[test]
    fn bytes_that_are_not_utf8_are_kept_in_base64() {
        let value = record(b"caf\xe9 \xff");
        assert_eq!(value["line"], "caf\u{fffd} \u{fffd}");
        let bytes = base64::engine::general_purpose::STANDARD.decode(value["line_base64"].as_str().unwrap()).unwrap();
        assert_eq!(bytes, b"caf\xe9 \xff");
    }
}
