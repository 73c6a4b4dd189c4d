//! The ledger of dead marks, `<hermes home>/warden/ledger.json`, and what it asks of a pool.
//!
//! A mark outlives the entry it was written on: live Hermes processes write their in-memory pool
//! over it, and `load_pool()` re-seeds a removed credential from stale singleton tokens under a
//! new id. So a mark names the credential by its token fingerprint, and `reconcile` compares the
//! ledger with a pool snapshot: an entry with a marked fingerprint that is not dead must be
//! marked again; an entry with the marked id whose token changed was re-authenticated and is
//! healthy, so its mark is dropped. Pure except `load` and `save`.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::hermes::semantics::Semantics;
use crate::observe::audit::{self, AuditRecord, FindingRecord, MarkRecord};
use crate::observe::events::ChangeKind;
use crate::pool::snapshot::{AuthSnapshot, PoolEntry};
use crate::rules::Action;
use crate::shared::files::{LEDGER_LIMIT, read_limited, without_path};

/// Where the failure that led to a mark was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarkEvidence {
    pub rule: String,
    pub file: String,
    pub line: u64,
    /// The log record's time (RFC 3339), when it had one.
    pub time: Option<String>,
    pub status: Option<u16>,
}

/// One credential the warden keeps dead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadMark {
    pub profile: Option<String>,
    pub provider: String,
    pub credential_id: String,
    pub label: Option<String>,
    /// `sha256:<16 hex>` of the token, `None` for an entry without one (matched by id then).
    pub fingerprint: Option<String>,
    pub reason: Option<String>,
    pub evidence: MarkEvidence,
    /// When the mark was added to the ledger (RFC 3339).
    pub recorded_at: String,
    /// When auth.json first held it; `None` while the write is still to be done.
    pub applied_at: Option<String>,
    /// How often a Hermes process undid it and it was written again.
    pub reverts: u64,
}

impl DeadMark {
    fn matches(&self, entry: &PoolEntry) -> bool {
        match &self.fingerprint {
            Some(fingerprint) => entry.fingerprint.as_ref() == Some(fingerprint),
            None => entry.fingerprint.is_none() && entry.id == self.credential_id,
        }
    }
}

/// A credential brought back (by `revive`, or by a re-auth the warden saw): failures logged
/// before this moment are old news for it and never mark it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revival {
    pub profile: Option<String>,
    pub provider: String,
    pub credential_id: String,
    /// RFC 3339.
    pub revived_at: String,
    pub how: RevivedBy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevivedBy {
    /// The `revive` command.
    Revive,
    /// A re-authentication: the marked id holds a new token.
    Reauth,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Ledger {
    pub version: u32,
    pub marks: Vec<DeadMark>,
    /// The latest revival of each credential.
    #[serde(default)]
    pub revived: Vec<Revival>,
}

/// What the ledger asks of one pool entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Fix {
    /// Write the mark on `entry_id` (the marked id, or the id a re-seed gave the same token).
    Mark { mark: usize, entry_id: String },
    /// The marked token is in the pool and dead: nothing to do.
    Dead { mark: usize },
    /// The marked entry has a new token: drop the mark.
    Revived { mark: usize },
}

impl Ledger {
    /// Reads the ledger. One that cannot be read or parsed (a torn write, a full disk, a hand
    /// edit, a directory in its place) is rebuilt from the journal in the audit log at
    /// `audit`, and what was wrong is returned with it: the caller decides whether to move the
    /// broken file aside. A missing ledger is an empty one.
    ///
    /// Anything but a regular file (a FIFO, a device: found without blocking) and a file larger
    /// than [`LEDGER_LIMIT`] cannot be read.
    pub fn read(path: &Path, audit: &Path) -> anyhow::Result<(Ledger, Option<String>)> {
        let problem = match read_limited(path, LEDGER_LIMIT) {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(ledger) => return Ok((ledger, None)),
                Err(error) => format!("not a ledger: {error}"),
            },
            Ok(None) => return Ok((Ledger::empty(), None)),
            Err(error) => format!("cannot read: {}", without_path(error)),
        };
        let mut rebuild = Rebuild::default();
        audit::replay(audit, |record| rebuild.replay(&record))
            .map_err(|error| anyhow::anyhow!("{}: {}", audit.display(), without_path(error)))?;
        Ok((
            rebuild.ledger,
            Some(format!("{}: {problem}", path.display())),
        ))
    }

    fn empty() -> Ledger {
        Ledger {
            version: 1,
            ..Ledger::default()
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        crate::shared::files::write_atomically(path, &bytes, None)
    }

    /// Notes that the credential was brought back at `at` (replacing an earlier revival).
    pub fn revive(&mut self, revival: Revival) {
        self.revived.retain(|r| {
            (&r.profile, &r.provider, &r.credential_id)
                != (&revival.profile, &revival.provider, &revival.credential_id)
        });
        self.revived.push(revival);
    }

    /// When the credential was last brought back, in epoch seconds.
    pub fn revived_at(&self, profile: Option<&str>, provider: &str, id: &str) -> Option<f64> {
        self.revived
            .iter()
            .filter(|r| {
                r.profile.as_deref() == profile && r.provider == provider && r.credential_id == id
            })
            .filter_map(|r| r.revived_at.parse::<jiff::Timestamp>().ok())
            .map(|at| at.as_millisecond() as f64 / 1000.0)
            .reduce(f64::max)
    }

    /// Whether a mark of `profile` has not reached auth.json yet.
    pub fn pending(&self, profile: Option<&str>) -> bool {
        self.marks
            .iter()
            .any(|mark| mark.profile.as_deref() == profile && mark.applied_at.is_none())
    }

    /// The mark for this credential of this profile, if the ledger has one.
    pub fn find(&self, profile: Option<&str>, provider: &str, entry: &PoolEntry) -> Option<usize> {
        self.marks.iter().position(|mark| {
            mark.profile.as_deref() == profile && mark.provider == provider && mark.matches(entry)
        })
    }

    /// What the marks of `profile` ask of its pools, as `snapshot` holds them now.
    pub fn reconcile(
        &self,
        profile: Option<&str>,
        snapshot: &AuthSnapshot,
        semantics: Semantics,
        now: f64,
    ) -> Vec<Fix> {
        let mut fixes = Vec::new();
        for (index, mark) in self.marks.iter().enumerate() {
            if mark.profile.as_deref() != profile {
                continue;
            }
            let Some(pool) = snapshot.pool(&mark.provider) else {
                continue;
            };
            let mut same_token = pool.entries.iter().filter(|entry| mark.matches(entry));
            let mut found = false;
            for entry in same_token.by_ref() {
                found = true;
                fixes.push(if semantics.is_dead(entry, now) {
                    Fix::Dead { mark: index }
                } else {
                    Fix::Mark {
                        mark: index,
                        entry_id: entry.id.clone(),
                    }
                });
            }
            if !found && pool.entries.iter().any(|e| e.id == mark.credential_id) {
                fixes.push(Fix::Revived { mark: index });
            }
        }
        fixes
    }
}

/// A ledger rebuilt from the audit log, which journals every mark recorded, applied, reverted
/// and revived, and every `revive`. Marks journalled before `recorded` records existed take
/// their evidence from the latest finding that asked to mark the credential.
#[derive(Default)]
struct Rebuild {
    ledger: Ledger,
    /// The latest `mark_dead` finding per (profile, provider, credential id).
    findings: HashMap<(Option<String>, String, String), FindingRecord>,
}

impl Rebuild {
    fn replay(&mut self, record: &AuditRecord) {
        self.ledger.version = 1;
        match record {
            AuditRecord::Finding(finding) if finding.action == Some(Action::MarkDead) => {
                if let Some(credential) = &finding.credential {
                    let key = (
                        finding.profile.clone(),
                        credential.provider.clone(),
                        credential.id.clone(),
                    );
                    self.findings.insert(key, finding.clone());
                }
            }
            AuditRecord::Mark(mark) => self.replay_mark(mark),
            AuditRecord::Revive(revive) => {
                self.ledger.marks.retain(|m| {
                    !(m.profile == revive.profile
                        && m.provider == revive.provider
                        && m.credential_id == revive.credential_id)
                });
                self.ledger.revive(Revival {
                    profile: revive.profile.clone(),
                    provider: revive.provider.clone(),
                    credential_id: revive.credential_id.clone(),
                    revived_at: revive.recorded_at.clone(),
                    how: RevivedBy::Revive,
                });
            }
            _ => {}
        }
    }

    fn replay_mark(&mut self, record: &MarkRecord) {
        let same = |mark: &DeadMark| {
            mark.profile == record.profile
                && mark.provider == record.provider
                && match (&mark.fingerprint, &record.fingerprint) {
                    (Some(a), Some(b)) => a == b,
                    _ => mark.credential_id == record.credential_id,
                }
        };
        let found = self.ledger.marks.iter().position(same);
        if record.change == ChangeKind::Revived {
            if let Some(index) = found {
                let mark = self.ledger.marks.remove(index);
                self.ledger.revive(Revival {
                    profile: mark.profile,
                    provider: mark.provider,
                    credential_id: mark.credential_id,
                    revived_at: record.recorded_at.clone(),
                    how: RevivedBy::Reauth,
                });
            }
            return;
        }
        let index = found.unwrap_or_else(|| {
            self.ledger.marks.push(self.new_mark(record));
            self.ledger.marks.len() - 1
        });
        let mark = &mut self.ledger.marks[index];
        match record.change {
            ChangeKind::Recorded if record.already_dead => {
                mark.applied_at
                    .get_or_insert_with(|| record.recorded_at.clone());
            }
            ChangeKind::Applied => {
                mark.applied_at
                    .get_or_insert_with(|| record.recorded_at.clone());
            }
            ChangeKind::Reverted => {
                mark.applied_at
                    .get_or_insert_with(|| record.recorded_at.clone());
                mark.reverts += 1;
            }
            ChangeKind::Recorded | ChangeKind::Revived => {}
        }
        mark.credential_id.clone_from(&record.credential_id);
    }

    fn new_mark(&self, record: &MarkRecord) -> DeadMark {
        let finding = self.findings.get(&(
            record.profile.clone(),
            record.provider.clone(),
            record.credential_id.clone(),
        ));
        let evidence = record.evidence.clone().unwrap_or_else(|| match finding {
            Some(finding) => MarkEvidence {
                rule: finding.rule.clone(),
                file: finding.file.clone(),
                line: finding.line,
                time: finding.time.clone(),
                status: finding.status,
            },
            None => MarkEvidence {
                rule: "unknown (rebuilt from the audit log)".into(),
                file: "warden/audit.jsonl".into(),
                line: 0,
                time: None,
                status: None,
            },
        });
        DeadMark {
            profile: record.profile.clone(),
            provider: record.provider.clone(),
            credential_id: record.credential_id.clone(),
            label: record.label.clone().or_else(|| {
                finding.and_then(|f| f.credential.as_ref().and_then(|c| c.label.clone()))
            }),
            fingerprint: record.fingerprint.clone(),
            reason: record
                .reason
                .clone()
                .or_else(|| finding.and_then(|f| f.reason.clone())),
            evidence,
            recorded_at: record.recorded_at.clone(),
            applied_at: None,
            reverts: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::snapshot::Pool;

    const NOW: f64 = 1_780_000_000.0;

    fn entry(id: &str, fingerprint: &str, status: Option<&str>) -> PoolEntry {
        PoolEntry {
            id: id.into(),
            label: None,
            auth_type: None,
            source: None,
            last_status: status.map(crate::pool::snapshot::LastStatus::parse),
            last_status_at: Some(NOW - 10.0),
            last_error_code: Some(401),
            last_error_reason: None,
            last_error_message: None,
            last_error_reset_at: None,
            fingerprint: Some(fingerprint.into()),
            renewed_at: None,
        }
    }

    fn ledger() -> Ledger {
        Ledger {
            version: 1,
            revived: Vec::new(),
            marks: vec![DeadMark {
                profile: None,
                provider: "openai-codex".into(),
                credential_id: "a11ce0".into(),
                label: Some("alice".into()),
                fingerprint: Some("sha256:aaaa".into()),
                reason: Some("token_revoked".into()),
                evidence: MarkEvidence {
                    rule: "r".into(),
                    file: "logs/errors.log".into(),
                    line: 1,
                    time: None,
                    status: Some(401),
                },
                recorded_at: "2026-11-29T00:00:00Z".into(),
                applied_at: None,
                reverts: 0,
            }],
        }
    }

    fn fixes(entries: Vec<PoolEntry>, profile: Option<&str>) -> Vec<Fix> {
        let snapshot = AuthSnapshot {
            active_provider: None,
            pools: vec![Pool {
                provider: "openai-codex".into(),
                entries,
            }],
        };
        ledger().reconcile(profile, &snapshot, Semantics::DeadState, NOW)
    }

    #[test]
    fn a_dead_entry_needs_nothing() {
        assert_eq!(
            fixes(vec![entry("a11ce0", "sha256:aaaa", Some("dead"))], None),
            [Fix::Dead { mark: 0 }]
        );
    }

    #[test]
    fn a_reverted_or_reseeded_token_is_marked_again() {
        let mark = |id: &str| Fix::Mark {
            mark: 0,
            entry_id: id.into(),
        };
        assert_eq!(
            fixes(
                vec![entry("a11ce0", "sha256:aaaa", Some("exhausted"))],
                None
            ),
            [mark("a11ce0")]
        );
        assert_eq!(
            fixes(
                vec![
                    entry("b0b000", "sha256:bbbb", None),
                    entry("c0ffee", "sha256:aaaa", Some("ok"))
                ],
                None
            ),
            [mark("c0ffee")]
        );
    }

    #[test]
    fn a_new_token_under_the_marked_id_is_revived() {
        assert_eq!(
            fixes(vec![entry("a11ce0", "sha256:new0", None)], None),
            [Fix::Revived { mark: 0 }]
        );
    }

    #[test]
    fn the_latest_revival_counts() {
        let mut ledger = ledger();
        let revival = |at: &str| Revival {
            profile: None,
            provider: "openai-codex".into(),
            credential_id: "a11ce0".into(),
            revived_at: at.into(),
            how: RevivedBy::Revive,
        };
        ledger.revive(revival("2026-11-29T00:00:00Z"));
        ledger.revive(revival("2026-11-29T00:00:10Z"));
        assert_eq!(ledger.revived.len(), 1);
        assert_eq!(
            ledger.revived_at(None, "openai-codex", "a11ce0"),
            Some(1_795_910_410.0)
        );
        assert_eq!(
            ledger.revived_at(Some("work"), "openai-codex", "a11ce0"),
            None
        );
    }

    #[test]
    fn a_removed_entry_stays_in_the_ledger_and_profiles_are_apart() {
        assert!(fixes(vec![entry("b0b000", "sha256:bbbb", None)], None).is_empty());
        assert!(fixes(vec![entry("a11ce0", "sha256:aaaa", None)], Some("work")).is_empty());
    }

    fn mark_record(change: ChangeKind, id: &str, fingerprint: &str, at: &str) -> AuditRecord {
        AuditRecord::Mark(MarkRecord {
            recorded_at: at.into(),
            change,
            profile: None,
            provider: "openai-codex".into(),
            credential_id: id.into(),
            fingerprint: Some(fingerprint.into()),
            label: None,
            reason: None,
            evidence: None,
            already_dead: false,
        })
    }

    #[test]
    fn the_ledger_is_rebuilt_from_its_journal_in_the_audit_log() {
        let recorded = |id: &str, fingerprint: &str, at: &str| {
            let AuditRecord::Mark(mark) = mark_record(ChangeKind::Recorded, id, fingerprint, at)
            else {
                unreachable!()
            };
            AuditRecord::Mark(MarkRecord {
                label: Some("alice".into()),
                reason: Some("token_revoked".into()),
                evidence: Some(ledger().marks[0].evidence.clone()),
                ..mark
            })
        };
        let journal = [
            recorded("a11ce0", "sha256:aaaa", "2026-11-29T00:00:00Z"),
            mark_record(
                ChangeKind::Applied,
                "a11ce0",
                "sha256:aaaa",
                "2026-11-29T00:00:01Z",
            ),
            // A Hermes process re-seeded the token under a new id; marked again.
            mark_record(
                ChangeKind::Reverted,
                "c0ffee",
                "sha256:aaaa",
                "2026-11-29T00:00:02Z",
            ),
            recorded("b0b000", "sha256:bbbb", "2026-11-29T00:00:03Z"),
            mark_record(
                ChangeKind::Revived,
                "b0b000",
                "sha256:bbbb",
                "2026-11-29T00:00:04Z",
            ),
            // From an audit log older than `recorded` records: a mark seen only applied.
            mark_record(
                ChangeKind::Applied,
                "d00d00",
                "sha256:dddd",
                "2026-11-29T00:00:05Z",
            ),
            AuditRecord::Revive(crate::observe::audit::ReviveRecord {
                recorded_at: "2026-11-29T00:00:06Z".into(),
                profile: None,
                provider: "openai-codex".into(),
                credential_id: "d00d00".into(),
                label: None,
            }),
        ];
        let mut rebuild = Rebuild::default();
        journal.iter().for_each(|record| rebuild.replay(record));
        let ledger_now = rebuild.ledger;
        let [alice] = ledger_now.marks.as_slice() else {
            panic!("one mark left: {:?}", ledger_now.marks);
        };
        assert_eq!(
            alice,
            &DeadMark {
                credential_id: "c0ffee".into(),
                recorded_at: "2026-11-29T00:00:00Z".into(),
                applied_at: Some("2026-11-29T00:00:01Z".into()),
                reverts: 1,
                ..ledger().marks[0].clone()
            }
        );
        let revivals: Vec<(&str, RevivedBy)> = ledger_now
            .revived
            .iter()
            .map(|r| (r.credential_id.as_str(), r.how))
            .collect();
        assert_eq!(
            revivals,
            [("b0b000", RevivedBy::Reauth), ("d00d00", RevivedBy::Revive)]
        );
        assert_eq!(ledger_now.version, 1);
    }
}
