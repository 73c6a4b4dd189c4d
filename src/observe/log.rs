//! The daemon's own log (stderr, through `tracing`): one sink of the internal events.
//!
//! Warnings by default: what changed a credential or needs the user; `-v` adds what the warden
//! does, `-vv` the details. One line per transition (a credential newly dead, a mark applied,
//! reverted, revived, a write that failed), never one per log line: findings and cut lines are
//! counted and summarised periodically ([`DaemonLog`]); the audit log keeps every finding.
//! Every text here came through the stages already scrubbed or is the warden's own.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::follow::tailer::TailNote;
use crate::observe::events::{
    AuthWrite, ChangeKind, Finding, MarkChange, StateFileTrouble, WardenEvent, WriteResult,
};
use crate::pool::attribute::AttributionKind;
use crate::pool::decide::ActionResult;

/// Waits for Hermes's lock longer than this are worth a line.
const NOTABLE_LOCK_WAIT: Duration = Duration::from_secs(1);

pub fn log(event: &WardenEvent) {
    match event {
        WardenEvent::Finding(finding) => log_finding(finding),
        WardenEvent::Mark(change) => log_mark(change),
        WardenEvent::AuthWrite(write) => log_write(write),
        WardenEvent::Revived(revived) => tracing::info!(
            profile = revived.profile.as_deref(),
            credential = format!("{}/{}", revived.provider, revived.credential_id),
            "revived: status cleared, dead mark dropped"
        ),
        WardenEvent::LinesRead { file, lines, bytes } => {
            tracing::debug!(file, lines, bytes, "read")
        }
        WardenEvent::FileChanged { file, change } => match change {
            TailNote::Opened { .. } => tracing::debug!(file, "{change:?}"),
            _ => tracing::info!(file, "{change:?}"),
        },
        WardenEvent::LinesCut { file, count, limit } => {
            tracing::warn!(file, count, "lines longer than {limit} bytes were cut")
        }
        WardenEvent::LogUnreadable { file, error } => {
            tracing::warn!(file, "cannot read: {error}")
        }
        WardenEvent::WatchFailed { dir, error } => tracing::error!(
            dir = %dir.display(),
            "cannot watch for changes ({error}); checking on the poll timer only"
        ),
        WardenEvent::Reload { refused: None } => {
            tracing::info!("reloaded rules and configuration")
        }
        WardenEvent::Reload {
            refused: Some(error),
        } => tracing::error!("keeping the old rules and configuration: {error}"),
        WardenEvent::StateWriteFailed { file, error } => tracing::error!(
            file = file.name(),
            "cannot write: {error}; kept in memory and tried again after a pause"
        ),
        WardenEvent::StateWritable { file } => {
            tracing::warn!(file = file.name(), "written again")
        }
        WardenEvent::StateFile(StateFileTrouble {
            file,
            problem,
            moved_to,
            rebuilt,
        }) => tracing::error!(
            file = file.name(),
            moved_to = moved_to.as_ref().map(|p| p.display().to_string()),
            "{problem}; {rebuilt}"
        ),
    }
}

/// A finding, in detail (`-vv`); the daemon summarises them instead ([`DaemonLog`]).
fn log_finding(finding: &Finding) {
    let Finding {
        event,
        attribution,
        result,
        ..
    } = finding;
    tracing::debug!(
        rule = event.rule,
        file = event.file,
        line = event.line,
        attribution = attribution.kind().as_str(),
        credential = attribution
            .credential()
            .map(|c| format!("{}/{}", c.provider, c.id)),
        result = result.map(result_name),
        "finding"
    );
}

fn result_name(result: ActionResult) -> &'static str {
    match result {
        ActionResult::AlreadyDead => "already dead",
        ActionResult::WouldApply => "would be marked dead (dry run)",
        ActionResult::Applied => "marked dead",
        ActionResult::Failed => "not marked yet (retried from the ledger)",
    }
}

/// How often the daemon summarises what it found.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// The daemon's log: transitions at once, findings and cut lines as a summary every
/// [`SUMMARY_EVERY`] (and at the end), a credential that failed for good once per run.
pub struct DaemonLog {
    counts: Counts,
    since: Instant,
    /// Credentials already said to have failed for good: (profile, provider, id).
    announced: HashSet<(Option<String>, String, String)>,
}

#[derive(Default)]
struct Counts {
    findings: u64,
    credential_failures: u64,
    unattributed: u64,
    lines: u64,
    cut: u64,
}

impl Default for DaemonLog {
    fn default() -> Self {
        DaemonLog {
            counts: Counts::default(),
            since: Instant::now(),
            announced: HashSet::new(),
        }
    }
}

impl DaemonLog {
    pub fn record(&mut self, event: &WardenEvent) {
        match event {
            WardenEvent::Finding(finding) => self.count(finding),
            WardenEvent::LinesRead { lines, .. } => {
                self.counts.lines += lines;
                log(event);
            }
            WardenEvent::LinesCut { count, .. } => {
                // The first cut is worth a warning; the rest go into the summary.
                if self.counts.cut == 0 {
                    log(event);
                }
                self.counts.cut += count;
            }
            _ => log(event),
        }
    }

    fn count(&mut self, finding: &Finding) {
        log_finding(finding);
        let counts = &mut self.counts;
        counts.findings += 1;
        if finding.event.kind.is_credential_failure() {
            counts.credential_failures += 1;
            if finding.attribution.kind() == AttributionKind::Unattributed {
                counts.unattributed += 1;
            }
        }
        if let (Some(result), Some(credential)) = (finding.result, finding.attribution.credential())
        {
            let key = (
                finding.event.profile.clone(),
                credential.provider.clone(),
                credential.id.clone(),
            );
            if self.announced.insert(key) {
                tracing::warn!(
                    profile = finding.event.profile.as_deref(),
                    rule = finding.event.rule,
                    credential = format!("{}/{}", credential.provider, credential.id),
                    "credential failed for good: {}",
                    result_name(result)
                );
            }
        }
    }

    /// Writes the summary when one is due (`force`: at the end) and there is something to say.
    pub fn summarise(&mut self, force: bool) {
        if !force && self.since.elapsed() < SUMMARY_EVERY {
            return;
        }
        let Counts {
            findings,
            credential_failures,
            unattributed,
            lines,
            cut,
        } = std::mem::take(&mut self.counts);
        let seconds = self.since.elapsed().as_secs();
        self.since = Instant::now();
        if findings == 0 && cut == 0 {
            return;
        }
        let text = format!(
            "in {seconds} s: {lines} lines read ({cut} cut), {findings} findings, \
             {credential_failures} credential failures ({unattributed} unattributed, not acted on)"
        );
        match unattributed {
            0 => tracing::info!("{text}"),
            _ => tracing::warn!("{text}; see warden/audit.jsonl"),
        }
    }
}

fn log_mark(change: &MarkChange) {
    let credential = format!("{}/{}", change.provider, change.credential_id);
    let profile = change.profile.as_deref();
    match change.change {
        ChangeKind::Recorded => tracing::info!(profile, credential, "dead mark recorded"),
        ChangeKind::Applied => tracing::warn!(profile, credential, "marked dead"),
        ChangeKind::Reverted => tracing::warn!(
            profile,
            credential,
            "a Hermes process undid the dead mark; marked again"
        ),
        ChangeKind::Revived => tracing::warn!(
            profile,
            credential,
            "revived by re-auth: the token changed; mark dropped"
        ),
    }
}

fn log_write(write: &AuthWrite) {
    let profile = write.profile.as_deref();
    match write.result {
        WriteResult::Ok => {
            if let Some(wait) = write.lock_wait.filter(|wait| *wait > NOTABLE_LOCK_WAIT) {
                tracing::info!(profile, ?wait, "waited for Hermes's auth lock");
            }
        }
        _ => tracing::warn!(
            profile,
            result = write.result.as_str(),
            "{}; the marks stay in the ledger and are retried",
            write.error.as_deref().unwrap_or("not written")
        ),
    }
}
