//! `--report FILE.html`: one self-contained page (inline CSS, no scripts, no outside
//! assets, so it opens from a CI artifact offline) with the totals, the portal's
//! throttles and a timeline of the accounts: waiting for credentials, waiting for a
//! command slot, running, and how each ended.
//!
//! Rows are written as accounts end, before the run's length is known: each bar gives its
//! times in milliseconds as CSS variables, and the head, written last, sets the run's
//! length (`--total`) the bars are scaled by.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use super::{RunTotals, Spool, seconds};
use crate::events::Ended;
use crate::outcome::FailureClass;
use crate::text;

#[derive(Debug)]
pub struct Html {
    rows: Spool,
    run_start: SystemTime,
    /// The latest end seen, in milliseconds from the run's start: the timeline's length.
    last_ms: u64,
}

impl Html {
    pub fn new(rows: Spool, run_start: SystemTime) -> Self {
        Html { rows, run_start, last_ms: 0 }
    }

    /// Moves the timeline's start `waited` later (see [`super::Reports::leave_out`]).
    pub fn leave_out(&mut self, waited: std::time::Duration) {
        self.run_start += waited;
    }

    pub fn record(&mut self, end: &Ended<'_>) {
        let ms = |time: Option<SystemTime>| {
            time.map(|t| u64::try_from(t.duration_since(self.run_start).unwrap_or_default().as_millis()).unwrap_or(0))
        };
        let began = ms(end.trace.began);
        let credentials = ms(end.trace.credentials_at);
        let started = ms(end.trace.started);
        let exited = ms(end.trace.started.map(|t| t + end.trace.runtime));
        let ended = ms(end.trace.ended).or(exited).or(started).or(credentials).or(began);
        self.last_ms = self.last_ms.max(ended.unwrap_or(0));
        let status = end.outcome.status(end.dry_run);
        let class = end.outcome.class().map(FailureClass::name);
        let mut bars = String::new();
        let mut bar = |kind: &str, from: Option<u64>, to: Option<u64>, title: &str| {
            if let (Some(from), Some(to)) = (from, to) {
                let _ = write!(bars, "<i class=\"{kind}\" style=\"--a:{from};--b:{to}\" title=\"{title}\"></i>");
            }
        };
        bar("cred", began, credentials.or(ended), "waiting for credentials");
        bar("slot", credentials, started, "waiting for a command slot");
        bar("run", started, exited, "running");
        if let Some(at) = exited.or(ended) {
            let _ = write!(bars, "<i class=\"end\" style=\"--a:{at};--b:{at}\"></i>");
        }
        let how = match (class, end.outcome.error()) {
            (Some(class), Some(error)) => format!("{status} [{class}]: {error}"),
            (None, Some(error)) => format!("{status}: {error}"),
            _ => status.to_owned(),
        };
        let ou = end.ou_path().map(|ou_path| format!(" <small>{}</small>", text::markup::html(&ou_path)));
        let row = format!(
            "<div class=\"row {status}\"><div class=\"name\">{}{}</div><div class=\"track\">{bars}</div><div class=\"how\" title=\"{}\">{} <small>{}s</small></div></div>\n",
            text::markup::html(&end.label()),
            ou.unwrap_or_default(),
            text::markup::html(&how),
            text::markup::html(&class.map_or(status.to_owned(), |class| format!("{status}: {class}"))),
            seconds(end.duration()),
        );
        self.rows.write(&row);
    }

    pub fn finish(self, path: &Path, totals: &RunTotals<'_>) -> io::Result<()> {
        let tally = totals.tally;
        let mut counts = format!(
            "{} selected: {} {}, {} failed, {} skipped (no role)",
            text::plural(tally.selected, "account"),
            tally.succeeded,
            if totals.dry_run { "would run" } else { "succeeded" },
            tally.failed.len(),
            tally.no_role.len()
        );
        if !tally.interrupted.is_empty() {
            let _ = write!(counts, ", {} interrupted", tally.interrupted.len());
        }
        if !tally.not_started.is_empty() {
            let _ = write!(counts, ", {} not started", tally.not_started.len());
        }
        if let Some(line) = totals.coverage_line() {
            let _ = write!(counts, "; {line}");
        }
        let head = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\">\
             <title>fanout report</title><style>{STYLE}:root{{--total:{}}}</style></head><body>\n\
             <h1>fanout{}</h1>\n<p class=\"totals\">{} in {}s &middot; <b>{} throttled</b> portal calls of {}</p>\n\
             <p class=\"legend\"><i class=\"cred\"></i> waiting for credentials <i class=\"slot\"></i> waiting for a command slot \
             <i class=\"run\"></i> running <i class=\"end ok\"></i> succeeded <i class=\"end bad\"></i> failed</p>\n\
             <div class=\"timeline\">\n",
            self.last_ms.max(1),
            if totals.dry_run { " (dry run)" } else { "" },
            text::markup::html(&counts),
            seconds(totals.elapsed),
            tally.throttles,
            tally.portal_calls,
        );
        self.rows.finish(path, &head, "</div>\n</body></html>\n")
    }
}

/// The page's style: rows of name, timeline track and ending; each bar placed by its
/// `--a`/`--b` milliseconds over the run's `--total`.
const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#222}\
h1{font-size:20px;margin:0 0 8px}.totals{margin:0 0 8px}\
.legend i{display:inline-block;width:14px;height:10px;margin:0 4px 0 12px;vertical-align:middle}\
.legend i.end{width:3px}\
.timeline{border-top:1px solid #ddd}\
.row{display:grid;grid-template-columns:minmax(180px,26%) 1fr 200px;gap:8px;align-items:center;border-bottom:1px solid #eee;min-height:20px}\
.name,.how{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;font-family:ui-monospace,monospace;font-size:12px}\
.track{position:relative;height:18px;background:#fafafa}\
.track i{position:absolute;top:4px;bottom:4px;left:calc(var(--a) * 100% / var(--total));\
width:max(2px,calc((var(--b) - var(--a)) * 100% / var(--total)))}\
i.cred{background:#c9d7ee}i.slot{background:#eee1b0}i.run{background:#5b8def}\
.track i.end{top:1px;bottom:1px;width:3px;background:#2e9e4f}\
.legend i.ok{background:#2e9e4f}.legend i.bad{background:#d1342f}\
.row.failed .track i.end,.row.interrupted .track i.end{background:#d1342f}\
.row.failed .how,.row.interrupted .how{color:#d1342f}\
.row.no-role .how,.row.not-started .how{color:#888}\
.row.no-role .track i.end,.row.not-started .track i.end{background:#999}";
