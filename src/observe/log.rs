//! The daemon's own log (stderr, through `tracing`): one sink of the internal events.
//!
//! Warnings by default: what changed a credential or needs the user; `-v` adds what the warden
//! does, `-vv` the details. Every text here came through the stages already scrubbed or is the
//! warden's own.

use std::time::Duration;

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

fn log_finding(finding: &Finding) {
    let Finding {
        event,
        attribution,
        result,
        ..
    } = finding;
    if event.kind.is_credential_failure() && attribution.kind() == AttributionKind::Unattributed {
        tracing::warn!(
            rule = event.rule,
            file = event.file,
            line = event.line,
            "unattributed credential failure"
        );
    }
    if let Some(result) = result {
        tracing::warn!(
            rule = event.rule,
            credential = attribution
                .credential()
                .map(|c| format!("{}/{}", c.provider, c.id)),
            "credential failed for good: {}",
            match result {
                ActionResult::AlreadyDead => "already dead",
                ActionResult::WouldApply => "would be marked dead (dry run)",
                ActionResult::Applied => "marked dead",
                ActionResult::Failed => "not marked yet (retried from the ledger)",
            }
        );
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
