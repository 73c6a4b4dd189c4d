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
use serde_json::json;

use crate::hermes::home::Target;
use crate::hermes::semantics::{DeadForm, FormRefused, MarkAs, Semantics};
use crate::hermes::version::HermesVersion;
use crate::pool::attribute::CredentialRef;
use crate::pool::decide::{ActionResult, PlannedAction};
use crate::pool::snapshot::{AuthSnapshot, PoolEntry};
use crate::read::event::Event;
use crate::remediate::auth_edit::{self, WriteError};
use crate::remediate::dead_mark::{self, Evidence};
use crate::remediate::ledger::{DeadMark, Fix, Ledger, MarkEvidence, Revival, ledger_path};
use crate::shared::secrets::scrub;

/// How marks are written, and judged: both from the one answer for the installed Hermes.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub form: DeadForm,
    pub semantics: Semantics,
    pub lock_deadline: Duration,
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
        })
    }
}

/// Something reconciling did to a credential, for the audit log and the daemon's log.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: ChangeKind,
    pub profile: Option<String>,
    pub provider: String,
    pub credential_id: String,
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A mark written for the first time.
    Applied,
    /// A mark a Hermes process had undone, written again.
    Reverted,
    /// The token changed: the mark was dropped.
    Revived,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Applied => "applied",
            ChangeKind::Reverted => "reverted",
            ChangeKind::Revived => "revived",
        }
    }
}

/// What carrying out actions and reconciling did.
#[derive(Debug)]
pub struct Outcome {
    /// Each action's result, in order.
    pub results: Vec<ActionResult>,
    /// Audit records of what changed or could not be written.
    pub records: Vec<serde_json::Value>,
    /// Whether auth.json was written.
    pub wrote: bool,
    /// Whether a home could not be reconciled (retry later).
    pub failed: bool,
}

/// How to write marks, and where the ledger is.
///
/// The ledger is read from disk for every operation and changed under the warden's own lock
/// (`ledger.lock`, taken before Hermes's), so `revive` and `scan --apply` can run while the
/// daemon does.
pub struct Remedy {
    pub policy: Policy,
    ledger_path: PathBuf,
}

impl Remedy {
    /// The remedy for the Hermes home `root` (its state lives in `<root>/warden/`).
    pub fn open(root: &Path, policy: Policy) -> anyhow::Result<Remedy> {
        let state_dir = &root.join("warden");
        crate::shared::files::ensure_dir(state_dir)
            .with_context(|| format!("{}: cannot create", state_dir.display()))?;
        Ok(Remedy {
            policy,
            ledger_path: ledger_path(root),
        })
    }

    /// Runs `change` on the ledger under the warden's lock and saves what it changed.
    fn with_ledger<T>(&self, change: impl FnOnce(&mut Ledger) -> T) -> anyhow::Result<T> {
        let lock_path = self.ledger_path.with_file_name("ledger.lock");
        let lock = crate::shared::files::open_lock_file(&lock_path)
            .with_context(|| format!("{}: cannot open", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("{}: cannot lock", lock_path.display()))?;
        let path = &self.ledger_path;
        let mut ledger = Ledger::load(path)?;
        let before = ledger.clone();
        let value = change(&mut ledger);
        if ledger != before {
            ledger
                .save(path)
                .with_context(|| format!("{}: cannot write", path.display()))?;
        }
        Ok(value)
    }

    /// Whether a mark of `profile` has not reached auth.json yet.
    pub fn pending(&self, profile: Option<&str>) -> anyhow::Result<bool> {
        Ok(Ledger::load(&self.ledger_path)?
            .marks
            .iter()
            .any(|mark| mark.profile.as_deref() == profile && mark.applied_at.is_none()))
    }

    /// Carries out `actions` on the homes in `targets`: records their marks in the ledger, then
    /// reconciles every one of the homes (which also writes marks still pending and marks a
    /// Hermes process undid). Returns each action's result and the audit records of what
    /// changed or could not be written.
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
        if !actions.is_empty() {
            self.with_ledger(|ledger| {
                for (action, entry) in actions.iter().zip(&entries) {
                    if let Some(entry) = entry {
                        record(ledger, action, &events[action.event], entry, now);
                    }
                }
            })?;
        }
        let mut outcome = Outcome {
            results: actions.iter().map(|a| a.result).collect(),
            records: Vec::new(),
            wrote: false,
            failed: false,
        };
        for target in targets {
            let mine = (0..actions.len()).filter(|&i| actions[i].profile == target.profile);
            match self.reconcile(target, now) {
                Ok(changes) => {
                    for i in mine {
                        outcome.results[i] =
                            result_after(&actions[i], entries[i].as_ref(), &changes);
                    }
                    outcome.wrote |= !changes.is_empty();
                    let records = changes.iter().map(|change| change_record(change, now));
                    outcome.records.extend(records);
                }
                Err(error) => {
                    tracing::warn!("{error:#}; the marks stay in the ledger and are retried");
                    for i in mine {
                        if outcome.results[i] == ActionResult::WouldApply {
                            outcome.results[i] = ActionResult::Failed;
                        }
                    }
                    outcome.failed = true;
                    outcome.records.push(failure_record(target, &error, now));
                }
            }
        }
        Ok(outcome)
    }

    /// Brings one home's auth.json in line with the ledger, under both locks.
    fn reconcile(&self, target: &Target, now: Timestamp) -> Result<Vec<Change>, ReconcileError> {
        let policy = self.policy;
        self.with_ledger(|ledger| {
            let edited = edit_marks(ledger, target, policy, now)?;
            let changes = record_fixes(ledger, target, edited.value, now);
            if edited.lock_wait > Duration::from_secs(1) {
                tracing::info!(wait = ?edited.lock_wait, "waited for Hermes's auth lock");
            }
            changes.iter().for_each(log_change);
            Ok(changes)
        })
        .map_err(ReconcileError::Ledger)?
        .map_err(ReconcileError::Write)
    }

    /// Undoes the dead mark of the credential with this id or label: clears its status fields,
    /// drops it from the ledger and notes the revival. Returns the credential.
    pub fn revive(
        &self,
        target: &Target,
        provider: &str,
        name: &str,
        now: Timestamp,
    ) -> anyhow::Result<CredentialRef> {
        let deadline = self.policy.lock_deadline;
        self.with_ledger(|ledger| {
            let edited = auth_edit::edit(&target.auth_json(), deadline, |snapshot, document| {
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
                how: "revive".into(),
            });
            Ok(CredentialRef {
                provider: provider.to_owned(),
                id: entry.id,
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

/// Adds the mark an action asks for, unless the ledger already holds this token.
fn record(
    ledger: &mut Ledger,
    action: &PlannedAction,
    event: &Event,
    entry: &PoolEntry,
    now: Timestamp,
) {
    let profile = action.profile.as_deref();
    if ledger
        .find(profile, &action.credential.provider, entry)
        .is_some()
    {
        return;
    }
    ledger.marks.push(DeadMark {
        profile: action.profile.clone(),
        provider: action.credential.provider.clone(),
        credential_id: entry.id.clone(),
        label: entry
            .label
            .as_deref()
            .map(|label| scrub(label).into_owned()),
        fingerprint: entry.fingerprint.clone(),
        reason: action.reason.clone(),
        evidence: MarkEvidence {
            rule: event.rule.clone(),
            file: event.file.clone(),
            line: event.line,
            time: event.time.as_ref().map(|t| t.timestamp().to_string()),
            status: event.status,
        },
        recorded_at: now.to_string(),
        // A credential Hermes already marked dead is kept dead from now on.
        applied_at: (action.result == ActionResult::AlreadyDead).then(|| now.to_string()),
        reverts: 0,
    });
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
) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut revived = Vec::new();
    for fix in fixes {
        let (index, kind, entry_id) = match fix {
            Fix::Mark { mark, entry_id } => {
                let record = &mut ledger.marks[mark];
                let kind = match record.applied_at {
                    None => ChangeKind::Applied,
                    Some(_) => ChangeKind::Reverted,
                };
                record.applied_at.get_or_insert_with(|| now.to_string());
                if kind == ChangeKind::Reverted {
                    record.reverts += 1;
                }
                record.credential_id.clone_from(&entry_id);
                (mark, kind, entry_id)
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
        changes.push(Change {
            kind,
            profile: mark.profile.clone(),
            provider: mark.provider.clone(),
            credential_id: entry_id,
            fingerprint: mark.fingerprint.clone(),
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
            how: "reauth".into(),
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
    /// The outcome's name for the audit log (`auth_writes_total{result}`).
    pub fn result(&self) -> &'static str {
        match self {
            ReconcileError::Write(error) => error.result(),
            ReconcileError::Ledger(_) => "io_error",
        }
    }
}

/// An action's result once its home was reconciled.
fn result_after(
    action: &PlannedAction,
    entry: Option<&PoolEntry>,
    changes: &[Change],
) -> ActionResult {
    let Some(entry) = entry else {
        return ActionResult::Failed;
    };
    let change = changes.iter().find(|change| {
        change.provider == action.credential.provider
            && (change.credential_id == entry.id
                || (change.fingerprint.is_some() && change.fingerprint == entry.fingerprint))
    });
    match change.map(|change| change.kind) {
        Some(ChangeKind::Applied | ChangeKind::Reverted) => ActionResult::Applied,
        // The token changed between reading the pool and writing: not the failed one any more.
        Some(ChangeKind::Revived) => ActionResult::Failed,
        None => ActionResult::AlreadyDead,
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

fn log_change(change: &Change) {
    let credential = format!("{}/{}", change.provider, change.credential_id);
    let profile = change.profile.as_deref();
    match change.kind {
        ChangeKind::Applied => tracing::warn!(profile, credential, "marked dead"),
        ChangeKind::Reverted => {
            tracing::warn!(
                profile,
                credential,
                "a Hermes process undid the dead mark; marked again"
            )
        }
        ChangeKind::Revived => {
            tracing::warn!(
                profile,
                credential,
                "revived by re-auth: the token changed; mark dropped"
            )
        }
    }
}

/// The audit log record of a change.
pub fn change_record(change: &Change, now: Timestamp) -> serde_json::Value {
    json!({
        "recorded_at": now.to_string(),
        "type": "mark",
        "change": change.kind.as_str(),
        "profile": change.profile,
        "provider": change.provider,
        "credential_id": change.credential_id,
        "fingerprint": change.fingerprint,
    })
}

/// The audit log record of a write that did not happen.
pub fn failure_record(
    target: &Target,
    error: &ReconcileError,
    now: Timestamp,
) -> serde_json::Value {
    json!({
        "recorded_at": now.to_string(),
        "type": "auth_write",
        "profile": target.profile,
        "result": error.result(),
        "error": scrub(&error.to_string()),
    })
}
