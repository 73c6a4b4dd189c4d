//! The audit log, `<hermes home>/warden/audit.jsonl`: one JSON object a line for every finding
//! and every change the warden made, appended and fsynced before the checkpoint moves on.
//!
//! Records are typed ([`AuditRecord`]), made from [`WardenEvent`]s and read back through the
//! same types; their keys are a contract. A finding's record carries the position of its line,
//! so after a crash between the append and the checkpoint the lines read again are recognised
//! and not recorded twice. The `mark` and `revive` records are a journal of the ledger: a
//! ledger that cannot be read is rebuilt from them. A last line torn by a crash mid-append is
//! cut off before anything is appended after it.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::follow::tailer::FileIdentity;
use crate::observe::events::{
    AuthWrite, ChangeKind, Finding, MarkChange, Revived, StateFile, StateFileTrouble, WardenEvent,
    WriteResult,
};
use crate::pool::attribute::{AttributionKind, CredentialRef};
use crate::pool::decide::ActionResult;
use crate::remediate::ledger::MarkEvidence;
use crate::rules::{Action, FindingKind};
use crate::shared::files;
use crate::shared::secrets::scrub;

/// Where a finding's line was: the file and the offset just past the line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Source {
    pub device: u64,
    pub inode: u64,
    pub head: Option<String>,
    pub end: u64,
}

impl Source {
    pub fn new(file: &FileIdentity, end: u64) -> Source {
        Source {
            device: file.device,
            inode: file.inode,
            head: file.head.clone(),
            end,
        }
    }

    fn file_key(&self) -> (u64, u64, Option<String>) {
        (self.device, self.inode, self.head.clone())
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditRecord {
    Finding(FindingRecord),
    Mark(MarkRecord),
    AuthWrite(AuthWriteRecord),
    Revive(ReviveRecord),
    StateFile(StateFileRecord),
    Reload(ReloadRecord),
}

/// A finding (the only record without a `type`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    pub recorded_at: String,
    /// The log record's time (RFC 3339).
    pub time: Option<String>,
    pub profile: Option<String>,
    pub session: Option<String>,
    pub file: String,
    pub line: u64,
    pub rule: String,
    pub kind: FindingKind,
    /// The other kinds the line has (other rules matched it too); left out when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facets: Vec<FindingKind>,
    pub provider: Option<String>,
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub credential: Option<CredentialRef>,
    pub attribution: AttributionKind,
    /// The same for the two copies of one record (errors.log and agent.log).
    pub record: String,
    /// `mark_dead` when the rule asks for it.
    pub action: Option<Action>,
    pub result: Option<ActionResult>,
    pub source: Source,
}

/// `"type": "mark"`: a dead mark recorded, applied, reverted or revived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkRecord {
    pub recorded_at: String,
    pub change: ChangeKind,
    pub profile: Option<String>,
    pub provider: String,
    pub credential_id: String,
    pub fingerprint: Option<String>,
    /// For `recorded`: what the ledger holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<MarkEvidence>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_dead: bool,
}

/// `"type": "auth_write"`: a write of auth.json that did not happen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthWriteRecord {
    pub recorded_at: String,
    pub profile: Option<String>,
    pub result: WriteResult,
    pub error: Option<String>,
}

/// `"type": "revive"`: `revive` undid a mark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviveRecord {
    pub recorded_at: String,
    pub profile: Option<String>,
    pub provider: String,
    pub credential_id: String,
    pub label: Option<String>,
}

/// `"type": "state_file"`: a state file could not be read and was rebuilt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFileRecord {
    pub recorded_at: String,
    pub file: StateFile,
    pub problem: String,
    pub moved_to: Option<String>,
    pub rebuilt: String,
}

/// `"type": "reload"`: SIGHUP; the rules and configuration in force from here on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadRecord {
    pub recorded_at: String,
    /// Why the new ones were refused (the old ones stay); `null` when they were taken.
    pub refused: Option<String>,
}

impl AuditRecord {
    /// The record of `event`, for the events the audit log keeps.
    pub fn of(event: &WardenEvent, now: Timestamp) -> Option<AuditRecord> {
        let recorded_at = now.to_string();
        Some(match event {
            WardenEvent::Finding(finding) => AuditRecord::Finding(finding_record(finding, now)),
            WardenEvent::Mark(change) => AuditRecord::Mark(mark_record(change, recorded_at)),
            WardenEvent::AuthWrite(AuthWrite {
                profile,
                result,
                error,
                ..
            }) if *result != WriteResult::Ok => AuditRecord::AuthWrite(AuthWriteRecord {
                recorded_at,
                profile: profile.clone(),
                result: *result,
                error: error.clone(),
            }),
            WardenEvent::Revived(Revived {
                profile,
                provider,
                credential_id,
                label,
            }) => AuditRecord::Revive(ReviveRecord {
                recorded_at,
                profile: profile.clone(),
                provider: provider.clone(),
                credential_id: credential_id.clone(),
                label: label.clone(),
            }),
            WardenEvent::StateFile(StateFileTrouble {
                file,
                problem,
                moved_to,
                rebuilt,
            }) => AuditRecord::StateFile(StateFileRecord {
                recorded_at,
                file: *file,
                problem: problem.clone(),
                moved_to: moved_to.as_ref().map(|p| p.display().to_string()),
                rebuilt: rebuilt.clone(),
            }),
            WardenEvent::Reload { refused } => AuditRecord::Reload(ReloadRecord {
                recorded_at,
                refused: refused.clone(),
            }),
            _ => return None,
        })
    }

    /// When it was written (RFC 3339).
    fn recorded_at(&self) -> &str {
        match self {
            AuditRecord::Finding(record) => &record.recorded_at,
            AuditRecord::Mark(record) => &record.recorded_at,
            AuditRecord::AuthWrite(record) => &record.recorded_at,
            AuditRecord::Revive(record) => &record.recorded_at,
            AuditRecord::StateFile(record) => &record.recorded_at,
            AuditRecord::Reload(record) => &record.recorded_at,
        }
    }

    /// The record's `type`, `None` for a finding.
    fn type_name(&self) -> Option<&'static str> {
        match self {
            AuditRecord::Finding(_) => None,
            AuditRecord::Mark(_) => Some("mark"),
            AuditRecord::AuthWrite(_) => Some("auth_write"),
            AuditRecord::Revive(_) => Some("revive"),
            AuditRecord::StateFile(_) => Some("state_file"),
            AuditRecord::Reload(_) => Some("reload"),
        }
    }

    /// One line of JSON: `recorded_at`, then `type` (but for a finding), then the fields.
    pub fn to_line(&self) -> serde_json::Result<String> {
        let fields = match self {
            AuditRecord::Finding(record) => serde_json::to_value(record)?,
            AuditRecord::Mark(record) => serde_json::to_value(record)?,
            AuditRecord::AuthWrite(record) => serde_json::to_value(record)?,
            AuditRecord::Revive(record) => serde_json::to_value(record)?,
            AuditRecord::StateFile(record) => serde_json::to_value(record)?,
            AuditRecord::Reload(record) => serde_json::to_value(record)?,
        };
        let Value::Object(fields) = fields else {
            unreachable!("records are structs");
        };
        let mut line = Map::new();
        for (key, value) in fields {
            let first = key == "recorded_at";
            line.insert(key, value);
            if let (true, Some(name)) = (first, self.type_name()) {
                line.insert("type".into(), name.into());
            }
        }
        serde_json::to_string(&line)
    }

    /// Reads one line back; `None` for a line that is not a record this version knows.
    pub fn parse(line: &str) -> Option<AuditRecord> {
        fn typed<T: DeserializeOwned>(value: Value) -> Option<T> {
            serde_json::from_value(value).ok()
        }
        let value: Value = serde_json::from_str(line).ok()?;
        match value.get("type").map(|t| t.as_str()) {
            None => typed(value).map(AuditRecord::Finding),
            Some(Some("mark")) => typed(value).map(AuditRecord::Mark),
            Some(Some("auth_write")) => typed(value).map(AuditRecord::AuthWrite),
            Some(Some("revive")) => typed(value).map(AuditRecord::Revive),
            Some(Some("state_file")) => typed(value).map(AuditRecord::StateFile),
            Some(Some("reload")) => typed(value).map(AuditRecord::Reload),
            Some(_) => None,
        }
    }
}

fn finding_record(finding: &Finding, now: Timestamp) -> FindingRecord {
    let Finding {
        event,
        attribution,
        result,
        source,
    } = finding;
    let credential = attribution.credential();
    let clean = |text: &str| scrub(text).into_owned();
    FindingRecord {
        recorded_at: now.to_string(),
        time: event.time.as_ref().map(|t| t.timestamp().to_string()),
        profile: event.profile.clone(),
        session: event.session.as_deref().map(clean),
        file: event.file.clone(),
        line: event.line,
        rule: event.rule.clone(),
        kind: event.kind,
        facets: event.facets.clone(),
        provider: event
            .provider
            .as_deref()
            .or_else(|| credential.map(|c| c.provider.as_str()))
            .map(clean),
        status: event.status,
        reason: event.reason.as_deref().map(clean),
        credential: credential.map(|c| CredentialRef {
            provider: clean(&c.provider),
            id: clean(&c.id),
            label: c.label.as_deref().map(clean),
        }),
        attribution: attribution.kind(),
        record: event.record_id(),
        action: (event.action == Action::MarkDead).then_some(Action::MarkDead),
        result: *result,
        source: source.clone(),
    }
}

fn mark_record(change: &MarkChange, recorded_at: String) -> MarkRecord {
    let recorded = change.recorded.as_ref();
    MarkRecord {
        recorded_at,
        change: change.change,
        profile: change.profile.clone(),
        provider: change.provider.clone(),
        credential_id: change.credential_id.clone(),
        fingerprint: change.fingerprint.clone(),
        label: recorded.and_then(|r| r.label.clone()),
        reason: recorded.and_then(|r| r.reason.clone()),
        evidence: recorded.map(|r| r.evidence.clone()),
        already_dead: recorded.is_some_and(|r| r.already_dead),
    }
}

/// The append-only record of findings and changes.
pub struct AuditLog {
    path: PathBuf,
    /// The furthest recorded line per file: lines up to there are already in the log.
    recorded: HashMap<(u64, u64, Option<String>), u64>,
    /// Recent records: (record id, log key, event time in epoch seconds).
    recent: Vec<(String, String, f64)>,
    /// The `mark` records that say a mark reached auth.json, in the part read.
    applied: Vec<MarkRecord>,
    /// When the first record of the part read was written (`None`: the log is empty).
    read_since: Option<Timestamp>,
}

/// How much of the end of the audit log is read at start to learn what is already recorded.
const RECENT_AUDIT_BYTES: u64 = 8 << 20;

/// How far to read the audit log when opening it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// The last few MiB: enough after a restart with checkpoints.
    Recent,
    /// All of it: the checkpoints were lost and every log is read from the start again.
    Whole,
}

impl AuditLog {
    /// Opens the log, learning what it holds; cuts off a torn last line (reported as a
    /// returned event, which the caller records).
    pub fn open(path: &Path, reach: Reach) -> anyhow::Result<(AuditLog, Option<WardenEvent>)> {
        // A FIFO, a device or a directory in its place is refused (without blocking), naming it.
        let in_path = |error: io::Error| {
            anyhow::anyhow!("{}: {}", path.display(), files::without_path(error))
        };
        let trouble = cut_torn_line(path).map_err(in_path)?;
        let mut audit = AuditLog {
            path: path.to_owned(),
            recorded: HashMap::new(),
            recent: Vec::new(),
            applied: Vec::new(),
            read_since: None,
        };
        let start = match (reach, std::fs::metadata(path)) {
            (Reach::Recent, Ok(metadata)) => metadata.len().saturating_sub(RECENT_AUDIT_BYTES),
            _ => 0,
        };
        replay_from(path, start, |record| {
            if audit.read_since.is_none() {
                audit.read_since = record.recorded_at().parse().ok();
            }
            match record {
                AuditRecord::Finding(finding) => audit.learn(&finding),
                AuditRecord::Mark(mark)
                    if matches!(mark.change, ChangeKind::Applied | ChangeKind::Reverted)
                        || mark.already_dead =>
                {
                    audit.applied.push(mark)
                }
                _ => {}
            }
        })
        .map_err(in_path)?;
        Ok((audit, trouble))
    }

    fn learn(&mut self, finding: &FindingRecord) {
        let time = finding
            .time
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .map_or(0.0, |t| t.as_millisecond() as f64 / 1000.0);
        self.recent
            .push((finding.record.clone(), finding.file.clone(), time));
        let end = self.recorded.entry(finding.source.file_key()).or_insert(0);
        *end = finding.source.end.max(*end);
    }

    /// Whether the log holds that the mark of this credential, applied at `applied_at`, reached
    /// auth.json. A mark applied before the part that was read is taken as recorded: a record
    /// lost to a crash is always the last thing that was to be written.
    pub fn holds_applied(
        &self,
        profile: Option<&str>,
        provider: &str,
        credential_id: &str,
        fingerprint: Option<&str>,
        applied_at: Timestamp,
    ) -> bool {
        self.read_since.is_some_and(|since| applied_at < since)
            || self.applied.iter().any(|mark| {
                mark.profile.as_deref() == profile
                    && mark.provider == provider
                    && match (fingerprint, mark.fingerprint.as_deref()) {
                        (Some(a), Some(b)) => a == b,
                        _ => mark.credential_id == credential_id,
                    }
            })
    }

    /// The records found at the end of the log when it was opened: (record id, log key, time).
    pub fn recent_records(&self) -> &[(String, String, f64)] {
        &self.recent
    }

    /// Whether the finding of the line ending at `source.end` is already in the log.
    pub fn already_recorded(&self, source: &Source) -> bool {
        self.recorded
            .get(&source.file_key())
            .is_some_and(|end| source.end <= *end)
    }

    /// Appends the records of the events the audit log keeps and makes them durable.
    pub fn record(&mut self, events: &[WardenEvent], now: Timestamp) -> io::Result<()> {
        let records: Vec<AuditRecord> = events
            .iter()
            .filter_map(|event| AuditRecord::of(event, now))
            .collect();
        self.append(&records)
    }

    /// Appends records and makes them durable (all of them, or none is taken as written).
    pub fn append(&mut self, records: &[AuditRecord]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for record in records {
            text.push_str(&record.to_line().map_err(io::Error::other)?);
            text.push('\n');
        }
        let in_path = |error: io::Error| {
            io::Error::new(error.kind(), format!("{}: {error}", self.path.display()))
        };
        // Never blocks on a FIFO swapped in for it.
        let mut file = files::open_append(&self.path).map_err(in_path)?;
        file.write_all(text.as_bytes()).map_err(in_path)?;
        file.sync_data().map_err(in_path)?;
        for record in records {
            if let AuditRecord::Finding(finding) = record {
                let end = self.recorded.entry(finding.source.file_key()).or_insert(0);
                *end = finding.source.end.max(*end);
            }
        }
        Ok(())
    }
}

/// Every record of the log at `path`, oldest first (a missing log has none).
pub fn replay(path: &Path, each: impl FnMut(AuditRecord)) -> io::Result<()> {
    replay_from(path, 0, each)
}

fn replay_from(path: &Path, start: u64, mut each: impl FnMut(AuditRecord)) -> io::Result<()> {
    // Only a regular file: a FIFO, a device or a directory is an error naming it, never a read
    // that blocks or never ends.
    let mut file = match files::open_regular(path)? {
        Some((file, _)) => file,
        None => return Ok(()),
    };
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut first = true;
    // A line longer than any record is none: skipped, never held whole.
    while let Some(whole) = files::read_line_limited(&mut reader, &mut line, MAX_RECORD_BYTES)? {
        // Reading from the middle, the first line is the end of one.
        if std::mem::take(&mut first) && start > 0 {
            continue;
        }
        if let Some(record) = whole
            .then(|| std::str::from_utf8(&line).ok())
            .flatten()
            .and_then(AuditRecord::parse)
        {
            each(record);
        }
    }
    Ok(())
}

/// Far longer than any record the warden writes (a few hundred bytes).
const MAX_RECORD_BYTES: usize = 1 << 20;

/// Cuts the log back to its last complete line, when a crash tore the last one.
fn cut_torn_line(path: &Path) -> io::Result<Option<WardenEvent>> {
    use std::os::unix::fs::FileExt;
    // Only a regular file (a FIFO, a device or a directory is an error naming it, found
    // without blocking).
    let file =
        match files::open_regular_with(path, OpenOptions::new().write(true).read(true).clone())? {
            Some((file, _)) => file,
            None => return Ok(None),
        };
    let length = file.metadata()?.len();
    let mut last = [0u8];
    if length == 0 || (file.read_exact_at(&mut last, length - 1).is_ok() && last[0] == b'\n') {
        return Ok(None);
    }
    // Search back for the last newline, a block at a time.
    let mut block = vec![0u8; 64 << 10];
    let mut end = length;
    let keep = loop {
        let start = end.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(at) = memchr::memrchr(b'\n', chunk) {
            break start + at as u64 + 1;
        }
        if start == 0 {
            break 0;
        }
        end = start;
    };
    file.set_len(keep)?;
    file.sync_all()?;
    Ok(Some(WardenEvent::StateFile(StateFileTrouble {
        file: StateFile::Audit,
        problem: format!("its last line was torn ({} bytes)", length - keep),
        moved_to: None,
        rebuilt: "cut back to its last complete line".into(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::events::RecordedMark;
    use crate::pool::attribute::Attribution;
    use crate::read::event::Event;

    fn identity() -> FileIdentity {
        FileIdentity {
            device: 1,
            inode: 2,
            head: Some("abc".into()),
        }
    }

    fn finding(end: u64) -> WardenEvent {
        WardenEvent::Finding(Box::new(Finding {
            event: Event {
                profile: None,
                file: "logs/errors.log".into(),
                log: crate::hermes::home::LogFile::Errors,
                line: 3,
                time: None,
                text_hash: 7,
                session: Some("s1".into()),
                rule: "r".into(),
                kind: FindingKind::TerminalAuthFailure,
                facets: Vec::new(),
                action: Action::MarkDead,
                provider: Some("openai-codex".into()),
                label: None,
                credential_id: None,
                status: Some(401),
                reason: Some("token_revoked".into()),
            },
            attribution: Attribution::Unattributed { why: "test".into() },
            result: None,
            source: Source::new(&identity(), end),
        }))
    }

    const NOW: &str = "2026-11-29T00:00:00Z";

    #[test]
    fn the_audit_log_remembers_what_it_recorded_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let source = Source::new(&identity(), 100);
        let (mut audit, trouble) = AuditLog::open(&path, Reach::Recent).unwrap();
        assert_eq!(trouble, None);
        assert!(!audit.already_recorded(&source));
        audit.record(&[finding(100)], NOW.parse().unwrap()).unwrap();
        let (reopened, _) = AuditLog::open(&path, Reach::Recent).unwrap();
        assert!(reopened.already_recorded(&source));
        assert!(reopened.already_recorded(&Source::new(&identity(), 50)));
        assert!(!reopened.already_recorded(&Source::new(&identity(), 150)));
        let other_file = FileIdentity {
            inode: 3,
            ..identity()
        };
        assert!(!reopened.already_recorded(&Source::new(&other_file, 50)));
    }

    #[test]
    fn records_keep_their_keys_and_come_back_as_they_were_written() {
        let mark = WardenEvent::Mark(MarkChange {
            change: ChangeKind::Recorded,
            profile: Some("work".into()),
            provider: "openai-codex".into(),
            credential_id: "a11ce0".into(),
            fingerprint: Some("sha256:0123456789abcdef".into()),
            recorded: Some(RecordedMark {
                label: Some("alice@example.com".into()),
                reason: Some("token_revoked".into()),
                evidence: MarkEvidence {
                    rule: "r".into(),
                    file: "logs/errors.log".into(),
                    line: 3,
                    time: None,
                    status: Some(401),
                },
                already_dead: false,
            }),
        });
        let failure = WardenEvent::AuthWrite(AuthWrite {
            profile: None,
            result: WriteResult::LockTimeout,
            lock_wait: None,
            error: Some("held".into()),
        });
        let now = NOW.parse().unwrap();
        let keys = |event: &WardenEvent| {
            let line = AuditRecord::of(event, now).unwrap().to_line().unwrap();
            let value: Value = serde_json::from_str(&line).unwrap();
            let keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
            (keys, AuditRecord::parse(&line).unwrap())
        };
        let (finding_keys, back) = keys(&finding(10));
        assert_eq!(
            finding_keys,
            [
                "recorded_at",
                "time",
                "profile",
                "session",
                "file",
                "line",
                "rule",
                "kind",
                "provider",
                "status",
                "reason",
                "credential",
                "attribution",
                "record",
                "action",
                "result",
                "source"
            ]
        );
        assert!(matches!(back, AuditRecord::Finding(f) if f.line == 3 && f.status == Some(401)));
        let (mark_keys, back) = keys(&mark);
        assert_eq!(mark_keys[..3], ["recorded_at", "type", "change"]);
        assert_eq!(AuditRecord::of(&mark, now), Some(back));
        let (failure_keys, back) = keys(&failure);
        assert_eq!(
            failure_keys,
            ["recorded_at", "type", "profile", "result", "error"]
        );
        assert_eq!(AuditRecord::of(&failure, now), Some(back));
        let ok = WardenEvent::AuthWrite(AuthWrite {
            result: WriteResult::Ok,
            ..match failure {
                WardenEvent::AuthWrite(write) => write,
                _ => unreachable!(),
            }
        });
        assert_eq!(
            AuditRecord::of(&ok, now),
            None,
            "a write that worked is no news"
        );
    }

    #[test]
    fn a_torn_last_line_is_cut_off_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let now = NOW.parse().unwrap();
        AuditLog::open(&path, Reach::Recent)
            .unwrap()
            .0
            .record(&[finding(10)], now)
            .unwrap();
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(&whole[..whole.len() / 2]);
        std::fs::write(&path, &torn).unwrap();
        let (mut audit, trouble) = AuditLog::open(&path, Reach::Whole).unwrap();
        assert!(
            matches!(&trouble, Some(WardenEvent::StateFile(t)) if t.file == StateFile::Audit),
            "{trouble:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), whole);
        audit.record(&[finding(20)], now).unwrap();
        let mut count = 0;
        replay(&path, |_| count += 1).unwrap();
        assert_eq!(count, 2, "both records read back whole");
    }
}
