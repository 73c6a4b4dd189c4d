//! The warden's internal events: everything it observes or does, one typed value each.
//!
//! Like Vector's internal events: a finding, a dead mark recorded / applied / reverted /
//! revived, an auth.json write and its outcome, a line read, a file rotated or truncated, a
//! line cut for length, a reload accepted or refused, a state file that could not be read. The
//! stages produce these values and hand them on; the sinks consume them: the audit log
//! ([`super::audit`]), the daemon's own log ([`super::log`]), and the metrics and alert sinks
//! that join them. No sink builds its own record from anything else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::follow::tailer::TailNote;
use crate::observe::audit::Source;
use crate::pool::attribute::Attribution;
use crate::pool::decide::ActionResult;
use crate::read::event::Event;
use crate::remediate::ledger::MarkEvidence;

#[derive(Debug, Clone, PartialEq)]
pub enum WardenEvent {
    /// A rule matched a log line, attributed, with the result of its action if it has one.
    Finding(Box<Finding>),
    /// Something happened to a dead mark.
    Mark(MarkChange),
    /// An attempt to write auth.json (made only when something had to change).
    AuthWrite(AuthWrite),
    /// `revive` undid a mark.
    Revived(Revived),
    /// New lines were read from a log.
    LinesRead {
        file: String,
        lines: u64,
        bytes: u64,
    },
    /// A log file was opened, rotated, truncated, re-created... (the tailer's notes).
    FileChanged { file: String, change: TailNote },
    /// Lines longer than the limit were cut to it.
    LinesCut {
        file: String,
        count: u64,
        limit: usize,
    },
    /// A log could not be read this time; it is tried again on the next step.
    LogUnreadable { file: String, error: String },
    /// A directory could not be watched: changes there are seen by the poll timer only.
    WatchFailed { dir: PathBuf, error: String },
    /// SIGHUP: the new rules and configuration were taken, or refused and the old ones kept.
    Reload { refused: Option<String> },
    /// A state file of the warden could not be read; it was moved aside and rebuilt.
    StateFile(StateFileTrouble),
    /// A state file of the warden could not be written (a read-only or full disk): what it
    /// would have held is kept in memory and written again after a pause.
    StateWriteFailed { file: StateFile, error: String },
    /// The state files can be written again.
    StateWritable { file: StateFile },
}

/// A rule match with everything known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub event: Event,
    pub attribution: Attribution,
    /// The result of the `mark_dead` its rule asked for, when it led to one.
    pub result: Option<ActionResult>,
    /// Where the line is, so it is recorded once.
    pub source: Source,
}

/// What happened to a dead mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Put into the ledger, to be written to auth.json.
    Recorded,
    /// Written to auth.json for the first time.
    Applied,
    /// Undone by a Hermes process, written again.
    Reverted,
    /// The credential's token changed (re-authenticated): the mark was dropped.
    Revived,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Recorded => "recorded",
            ChangeKind::Applied => "applied",
            ChangeKind::Reverted => "reverted",
            ChangeKind::Revived => "revived",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MarkChange {
    pub change: ChangeKind,
    pub profile: Option<String>,
    pub provider: String,
    pub credential_id: String,
    pub fingerprint: Option<String>,
    /// For a mark just recorded: what the ledger holds about it, so the ledger can be rebuilt
    /// from the audit log alone.
    pub recorded: Option<RecordedMark>,
}

/// The ledger's facts about a new mark (scrubbed label, reason, evidence).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedMark {
    pub label: Option<String>,
    pub reason: Option<String>,
    pub evidence: MarkEvidence,
    /// Hermes had marked it dead already: kept dead from now on, nothing to write.
    pub already_dead: bool,
}

/// The outcome of an auth.json write, as `auth_writes_total{result}` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteResult {
    Ok,
    LockTimeout,
    ParseError,
    IoError,
}

impl WriteResult {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteResult::Ok => "ok",
            WriteResult::LockTimeout => "lock_timeout",
            WriteResult::ParseError => "parse_error",
            WriteResult::IoError => "io_error",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthWrite {
    pub profile: Option<String>,
    pub result: WriteResult,
    /// How long Hermes's lock was waited for (none when it was never had).
    pub lock_wait: Option<Duration>,
    /// Why it failed (scrubbed).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Revived {
    pub profile: Option<String>,
    pub provider: String,
    pub credential_id: String,
    pub label: Option<String>,
}

/// The warden's state files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateFile {
    Ledger,
    Checkpoints,
    Audit,
}

impl StateFile {
    /// The file's name in `<home>/warden/` (the `state_file_errors_total{file}` label).
    pub fn name(self) -> &'static str {
        match self {
            StateFile::Ledger => "ledger.json",
            StateFile::Checkpoints => "checkpoints.json",
            StateFile::Audit => "audit.jsonl",
        }
    }

    /// `<root>/warden/<name>`.
    pub fn path(self, root: &Path) -> PathBuf {
        state_dir(root).join(self.name())
    }
}

/// The warden's state directory of the Hermes home `root`: `<root>/warden/`.
pub fn state_dir(root: &Path) -> PathBuf {
    root.join("warden")
}

#[derive(Debug, Clone, PartialEq)]
pub struct StateFileTrouble {
    pub file: StateFile,
    /// What was wrong with it.
    pub problem: String,
    /// Where the unreadable file was moved (a torn audit line is dropped instead).
    pub moved_to: Option<PathBuf>,
    /// How it was rebuilt.
    pub rebuilt: String,
}
