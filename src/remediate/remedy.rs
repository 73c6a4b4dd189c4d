//! Carrying out the decisions: dead marks into the ledger first, then into `auth.json`, and the
//! ledger reconciled with `auth.json` whenever it may have drifted. `scan --apply`, `watch` and
//! `revive` all go through here, so there is one way a mark is written.
//!
//! A mark is made durable in the ledger before `auth.json` is touched: when the write fails (the
//! lock stayed taken, the file did not parse) or the warden dies in between, the next
//! reconciliation writes it. Reconciling reads `auth.json` under Hermes's lock and writes every
//! mark a Hermes process undid (a revert), follows a token re-seeded under a new id, and drops
//! the marks of credentials whose token changed (re-authenticated, so healthy again).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;

use crate::hermes::home::Target;
use crate::hermes::semantics::{Bom, DeadForm, FormRefused, MarkAs, Semantics};
use crate::hermes::version::HermesVersion;
use crate::observe::audit::AuditLog;
use crate::observe::events::{
    AuthWrite, ChangeKind, MarkChange, RecordedMark, Revived, StateFile, StateFileTrouble,
    WardenEvent, WriteResult, state_dir,
};
use crate::pool::decide::{ActionResult, PlannedAction};
use crate::pool::snapshot::{AuthSnapshot, PoolEntry};
use crate::read::event::Event;
use crate::remediate::auth_edit::{self, WriteError};
use crate::remediate::dead_mark::{self, Evidence};
use crate::remediate::ledger::{DeadMark, Fix, Ledger, MarkEvidence, Revival, RevivedBy};
use crate::shared::secrets::scrub;

/// How marks are written, and judged: both from the one answer for the installed Hermes.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub form: DeadForm,
    pub semantics: Semantics,
    pub lock_deadline: Duration,
    /// What to do with an auth.json that starts with a byte-order mark.
    pub bom: Bom,
}

impl Policy {
    /// The policy for Hermes `version`; refuses a `mark_as` that version would ignore.
    pub fn for_hermes(
        version: Option<HermesVersion>,
        mark_as: MarkAs,
        lock_deadline: Duration,
    ) -> Result<Policy, FormRefused> {
        Ok(Policy {
            form: DeadForm::for_hermes(mark_as, version)?,
            semantics: Semantics::for_version(version),
            lock_deadline,
            bom: Bom::for_version(version),
        })
    }
}

/// What carrying out actions and reconciling did.
#[derive(Debug)]
pub struct Outcome {
    /// Each action's result, in order.
    pub results: Vec<ActionResult>,
    /// What changed, what was written and what could not be.
    pub events: Vec<WardenEvent>,
    /// Whether auth.json was written.
    pub wrote: bool,
    /// Whether a home could not be reconciled (retry later).
    pub failed: bool,
}

/// How to write marks, and where the ledger is.
///
/// The ledger is read from disk for every operation and changed under the warden's own lock
/// (`ledger.lock`, taken before Hermes's), so `revive` and `scan --apply` can run while the
/// daemon does. A ledger that cannot be read is moved aside and rebuilt from the audit log.
pub struct Remedy {
    pub policy: Policy,
    ledger_path: PathBuf,
    audit_path: PathBuf,
}

impl Remedy {
    /// The remedy for the Hermes home `root` (its state lives in `<root>/warden/`).
    pub fn open(root: &Path, policy: Policy) -> anyhow::Result<Remedy> {
        let state_dir = state_dir(root);
        crate::shared::files::ensure_dir(&state_dir)
            .with_context(|| format!("{}: cannot create", state_dir.display()))?;
        Ok(Remedy {
            policy,
            ledger_path: StateFile::Ledger.path(root),
            audit_path: StateFile::Audit.path(root),
        })
    }

    /// Runs `change` on the ledger under the warden's lock and saves what it changed. A ledger
    /// that could not be read is moved aside first, and the rebuilt one saved (an event says so).
    fn with_ledger<T>(
        &self,
        events: &mut Vec<WardenEvent>,
        change: impl FnOnce(&mut Ledger) -> T,
    ) -> anyhow::Result<T> {
        let lock_path = self.ledger_path.with_file_name("ledger.lock");
        let lock = crate::shared::files::open_append(&lock_path)
            .with_context(|| format!("{}: cannot open", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("{}: cannot lock", lock_path.display()))?;
        let path = &self.ledger_path;
        let (mut ledger, problem) = Ledger::read(path, &self.audit_path)?;
        let before = ledger.clone();
        let repaired = problem.is_some();
        if let Some(problem) = problem {
            let moved_to = crate::shared::files::move_aside(path)
                .with_context(|| format!("{}: cannot move aside", path.display()))?;
            events.push(WardenEvent::StateFile(StateFileTrouble {
                file: StateFile::Ledger,
                problem,
                moved_to: Some(moved_to),
                rebuilt: format!(
                    "rebuilt from the audit log with {} marks; the marks in auth.json stay",
                    ledger.marks.len()
                ),
            }));
        }
        let value = change(&mut ledger);
        if repaired || ledger != before {
            ledger
                .save(path)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        Ok(value)
    }

    /// `applied` records for the marks that reached auth.json but not the audit log (the
    /// warden was killed between the write and the append), so the journal is whole again.
    pub fn journal_gaps(
        &self,
        audit: &AuditLog,
        events: &mut Vec<WardenEvent>,
    ) -> anyhow::Result<()> {
        let mut changes = Vec::new();
        let ledger = self.ledger(events)?;
        for mark in &ledger.marks {
            let Some(applied_at) = mark.applied_at.as_deref().and_then(|t| t.parse().ok()) else {
                continue;
            };
            let recorded = audit.holds_applied(
                mark.profile.as_deref(),
                &mark.provider,
                &mark.credential_id,
                mark.fingerprint.as_deref(),
                applied_at,
            );
            if !recorded {
                changes.push(WardenEvent::Mark(MarkChange {
                    change: ChangeKind::Applied,
                    profile: mark.profile.clone(),
                    provider: mark.provider.clone(),
                    credential_id: mark.credential_id.clone(),
                    fingerprint: mark.fingerprint.clone(),
                    recorded: None,
                }));
            }
        }
        events.extend(changes);
        Ok(())
    }

    /// When each credential was last revived, as the ledger says now.
    pub fn ledger(&self, events: &mut Vec<WardenEvent>) -> anyhow::Result<Ledger> {
        self.with_ledger(events, |ledger| ledger.clone())
    }

    /// Carries out `actions` on the homes in `targets`: records their marks in the ledger, then
    /// reconciles every one of the homes (which also writes marks still pending and marks a
    /// Hermes process undid). Returns each action's result and the events of what changed or
    /// could not be written.
    pub fn apply<'s>(
        &self,
        targets: &[Target],
        actions: &[PlannedAction],
        events: &[Event],
        snapshot_of: impl Fn(Option<&str>) -> &'s AuthSnapshot,
        now: Timestamp,
    ) -> anyhow::Result<Outcome> {
        let entries: Vec<Option<PoolEntry>> = actions
            .iter()
            .map(|action| {
                snapshot_of(action.profile.as_deref())
                    .pool(&action.credential.provider)
                    .and_then(|pool| pool.entries.iter().find(|e| e.id == action.credential.id))
                    .cloned()
            })
            .collect();
        let mut outcome = Outcome {
            results: actions.iter().map(|a| a.result).collect(),
            events: Vec::new(),
            wrote: false,
            failed: false,
        };
        if !actions.is_empty() {
            let recorded = self.with_ledger(&mut outcome.events, |ledger| {
                actions
                    .iter()
                    .zip(&entries)
                    .filter_map(|(action, entry)| {
                        record(ledger, action, &events[action.event], entry.as_ref()?, now)
                    })
                    .collect::<Vec<_>>()
            })?;
            outcome
                .events
                .extend(recorded.into_iter().map(WardenEvent::Mark));
        }
        for target in targets {
            let mine = (0..actions.len()).filter(|&i| actions[i].profile == target.profile);
            match self.reconcile(target, now, &mut outcome.events) {
                Ok(changes) => {
                    for i in mine {
                        outcome.results[i] =
                            result_after(&actions[i], entries[i].as_ref(), &changes);
                    }
                    outcome.wrote |= !changes.is_empty();
                    outcome
                        .events
                        .extend(changes.into_iter().map(WardenEvent::Mark));
                }
                Err(error) => {
                    for i in mine {
                        if outcome.results[i] == ActionResult::WouldApply {
                            outcome.results[i] = ActionResult::Failed;
                        }
                    }
                    outcome.failed = true;
                    outcome.events.push(WardenEvent::AuthWrite(AuthWrite {
                        profile: target.profile.clone(),
                        result: error.result(),
                        lock_wait: None,
                        error: Some(scrub(&format!("{error:#}")).into_owned()),
                    }));
                }
            }
        }
        Ok(outcome)
    }

    /// Brings one home's auth.json in line with the ledger, under both locks; a write is
    /// reported in `events`, what it changed returned.
    fn reconcile(
        &self,
        target: &Target,
        now: Timestamp,
        events: &mut Vec<WardenEvent>,
    ) -> Result<Vec<MarkChange>, ReconcileError> {
        let policy = self.policy;
        let mut trouble = Vec::new();
        let edited = self
            .with_ledger(&mut trouble, |ledger| {
                let edited = edit_marks(ledger, target, policy, now)?;
                let changes = record_fixes(ledger, target, edited.value, now);
                Ok((changes, edited.written, edited.lock_wait))
            })
            .map_err(ReconcileError::Ledger);
        events.extend(trouble);
        let (changes, written, lock_wait) = edited?.map_err(ReconcileError::Write)?;
        if written {
            events.push(WardenEvent::AuthWrite(AuthWrite {
                profile: target.profile.clone(),
                result: WriteResult::Ok,
                lock_wait: Some(lock_wait),
                error: None,
            }));
        }
        Ok(changes)
    }

    /// Undoes the dead mark of the credential with this id or label: clears its status fields,
    /// drops it from the ledger and notes the revival. Returns what was revived.
    pub fn revive(
        &self,
        target: &Target,
        provider: &str,
        name: &str,
        now: Timestamp,
        events: &mut Vec<WardenEvent>,
    ) -> anyhow::Result<Revived> {
        let (deadline, bom) = (self.policy.lock_deadline, self.policy.bom);
        self.with_ledger(events, |ledger| {
            let edited =
                auth_edit::edit(&target.auth_json(), deadline, bom, |snapshot, document| {
                    let entry = find_by_name(snapshot, provider, name)?;
                    dead_mark::clear(dead_mark::entry_mut(document, provider, &entry.id)?);
                    Ok::<_, anyhow::Error>(entry)
                })?;
            let entry = edited.value?;
            let profile = target.profile.as_deref();
            ledger.marks.retain(|mark| {
                !(mark.profile.as_deref() == profile
                    && mark.provider == provider
                    && (mark.credential_id == entry.id
                        || (mark.fingerprint.is_some() && mark.fingerprint == entry.fingerprint)))
            });
            ledger.revive(Revival {
                profile: target.profile.clone(),
                provider: provider.to_owned(),
                credential_id: entry.id.clone(),
                revived_at: now.to_string(),
                how: RevivedBy::Revive,
            });
            Ok(Revived {
                profile: target.profile.clone(),
                provider: provider.to_owned(),
                credential_id: entry.id,
                label: entry.label.map(|label| scrub(&label).into_owned()),
            })
        })?
    }
}

/// The one entry of `provider`'s pool with this id, else with this label.
fn find_by_name(snapshot: &AuthSnapshot, provider: &str, name: &str) -> anyhow::Result<PoolEntry> {
    let pool = snapshot
        .pool(provider)
        .ok_or_else(|| anyhow::anyhow!("no {provider} pool"))?;
    let by_id: Vec<&PoolEntry> = pool.entries.iter().filter(|e| e.id == name).collect();
    let matching = if by_id.is_empty() {
        pool.entries
            .iter()
            .filter(|e| e.label.as_deref() == Some(name))
            .collect()
    } else {
        by_id
    };
    match matching.as_slice() {
        [entry] => Ok((*entry).clone()),
        [] => anyhow::bail!("no credential {name:?} in the {provider} pool"),
        _ => anyhow::bail!(
            "{} credentials are labelled {name:?}: name one by id",
            matching.len()
        ),
    }
}

/// Adds the mark an action asks for, unless the ledger already holds this token; returns the
/// change for the journal.
fn record(
    ledger: &mut Ledger,
    action: &PlannedAction,
    event: &Event,
    entry: &PoolEntry,
    now: Timestamp,
) -> Option<MarkChange> {
    let profile = action.profile.as_deref();
    if ledger
        .find(profile, &action.credential.provider, entry)
        .is_some()
    {
        return None;
    }
    // A credential Hermes already marked dead is kept dead from now on.
    let already_dead = action.result == ActionResult::AlreadyDead;
    let mark = DeadMark {
        profile: action.profile.clone(),
        provider: action.credential.provider.clone(),
        credential_id: entry.id.clone(),
        label: entry
            .label
            .as_deref()
            .map(|label| scrub(label).into_owned()),
        fingerprint: entry.fingerprint.clone(),
        reason: action.reason.as_deref().map(|r| scrub(r).into_owned()),
        evidence: MarkEvidence {
            rule: event.rule.clone(),
            file: event.file.clone(),
            line: event.line,
            time: event.time.as_ref().map(|t| t.timestamp().to_string()),
            status: event.status,
        },
        recorded_at: now.to_string(),
        applied_at: already_dead.then(|| now.to_string()),
        reverts: 0,
    };
    let change = MarkChange {
        change: ChangeKind::Recorded,
        profile: mark.profile.clone(),
        provider: mark.provider.clone(),
        credential_id: mark.credential_id.clone(),
        fingerprint: mark.fingerprint.clone(),
        recorded: Some(RecordedMark {
            label: mark.label.clone(),
            reason: mark.reason.clone(),
            evidence: mark.evidence.clone(),
            already_dead,
        }),
    };
    ledger.marks.push(mark);
    Some(change)
}

/// Writes every mark the ledger asks of the home's auth.json; returns the fixes it found.
fn edit_marks(
    ledger: &Ledger,
    target: &Target,
    policy: Policy,
    now: Timestamp,
) -> Result<auth_edit::Edited<Vec<Fix>>, WriteError> {
    let now_seconds = now.as_microsecond() as f64 / 1e6;
    let profile = target.profile.as_deref();
    auth_edit::edit(
        &target.auth_json(),
        policy.lock_deadline,
        policy.bom,
        |snapshot, document| {
            let fixes = ledger.reconcile(profile, snapshot, policy.semantics, now_seconds);
            for fix in &fixes {
                if let Fix::Mark { mark, entry_id } = fix {
                    let mark = &ledger.marks[*mark];
                    if let Ok(entry) = dead_mark::entry_mut(document, &mark.provider, entry_id) {
                        dead_mark::mark_dead(entry, policy.form, &evidence(mark), now_seconds);
                    }
                }
            }
            fixes
        },
    )
}

/// Updates the ledger after the fixes were written, and says what changed.
fn record_fixes(
    ledger: &mut Ledger,
    target: &Target,
    fixes: Vec<Fix>,
    now: Timestamp,
) -> Vec<MarkChange> {
    let mut changes = Vec::new();
    let mut revived = Vec::new();
    for fix in fixes {
        let (index, change, entry_id) = match fix {
            Fix::Mark { mark, entry_id } => {
                let record = &mut ledger.marks[mark];
                let change = match record.applied_at {
                    None => ChangeKind::Applied,
                    Some(_) => ChangeKind::Reverted,
                };
                record.applied_at.get_or_insert_with(|| now.to_string());
                if change == ChangeKind::Reverted {
                    record.reverts += 1;
                }
                record.credential_id.clone_from(&entry_id);
                (mark, change, entry_id)
            }
            Fix::Dead { mark } => {
                // Dead before we wrote it (Hermes marked it too): applied all the same.
                ledger.marks[mark]
                    .applied_at
                    .get_or_insert_with(|| now.to_string());
                continue;
            }
            Fix::Revived { mark } => {
                revived.push(mark);
                let id = ledger.marks[mark].credential_id.clone();
                (mark, ChangeKind::Revived, id)
            }
        };
        let mark = &ledger.marks[index];
        changes.push(MarkChange {
            change,
            profile: mark.profile.clone(),
            provider: mark.provider.clone(),
            credential_id: entry_id,
            fingerprint: mark.fingerprint.clone(),
            recorded: None,
        });
    }
    revived.sort_unstable();
    for index in revived.into_iter().rev() {
        let mark = ledger.marks.remove(index);
        ledger.revive(Revival {
            profile: target.profile.clone(),
            provider: mark.provider,
            credential_id: mark.credential_id,
            revived_at: now.to_string(),
            how: RevivedBy::Reauth,
        });
    }
    changes
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Write(WriteError),
    #[error(transparent)]
    Ledger(anyhow::Error),
}

impl ReconcileError {
    /// The outcome, as `auth_writes_total{result}` names it.
    pub fn result(&self) -> WriteResult {
        match self {
            ReconcileError::Write(error) => error.result(),
            ReconcileError::Ledger(_) => WriteResult::IoError,
        }
    }
}

/// An action's result once its home was reconciled.
fn result_after(
    action: &PlannedAction,
    entry: Option<&PoolEntry>,
    changes: &[MarkChange],
) -> ActionResult {
    let Some(entry) = entry else {
        return ActionResult::Failed;
    };
    let change = changes.iter().find(|change| {
        change.provider == action.credential.provider
            && (change.credential_id == entry.id
                || (change.fingerprint.is_some() && change.fingerprint == entry.fingerprint))
    });
    match change.map(|change| change.change) {
        Some(ChangeKind::Applied | ChangeKind::Reverted) => ActionResult::Applied,
        // The token changed between reading the pool and writing: not the failed one any more.
        Some(ChangeKind::Revived) => ActionResult::Failed,
        Some(ChangeKind::Recorded) | None => ActionResult::AlreadyDead,
    }
}

/// What the mark says in `last_error_*`: the evidence, never a secret.
fn evidence(mark: &DeadMark) -> Evidence {
    let why = mark
        .reason
        .clone()
        .or_else(|| mark.evidence.status.map(|s| format!("HTTP {s}")))
        .unwrap_or_else(|| "credential failure".into());
    Evidence {
        code: mark.evidence.status,
        reason: mark.reason.clone(),
        message: format!(
            "hermes-warden: {why} ({} at {}:{})",
            mark.evidence.rule, mark.evidence.file, mark.evidence.line
        ),
    }
}
