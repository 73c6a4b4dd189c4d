//! One watched Hermes home (the root or a profile) and its step: auth.json reconciled when due,
//! new log lines to findings, decisions carried out, everything handed on as events.
//!
//! A step reads agent.log, errors.log and agent.log again (every errors.log record is also in
//! agent.log, written just before it, so the second read catches a copy that was not there
//! yet), drops the copies, attributes the new events together with the recent ones (a payload
//! line pairs with the `marking` line before it), decides, and, unless it is a dry run,
//! carries the decisions out through the [`Remedy`]. auth.json is reconciled with the ledger
//! at start, whenever it changes, while a mark is pending, and after a failed write (with a
//! growing pause).
//!
//! A backlog is read a budget at a time (the tailer's), one batch a step, and the daemon steps
//! again at once while [`WatchedHome::backlog`] says so. errors.log holds fewer bytes per
//! minute than agent.log, so a batch of it reaches further in time: its events later than
//! what agent.log has reached wait (`ahead`, and errors.log is not read meanwhile) until
//! agent.log catches up with them, so agent.log's copy, with the `marking` lines around it, comes
//! first, the two copies meet within a bounded memory of record ids, and no event is
//! attributed before the lines that name its credential were read. While events wait, the
//! checkpoint keeps errors.log where it was before them: a restart reads them again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::follow::checkpoints::Checkpoints;
use crate::follow::tailer::{TailNote, TailedLine, Tailer};
use crate::hermes::home::{LogFile, Target};
use crate::observe::audit::{AuditLog, Source};
use crate::observe::events::{Finding, StateFile, WardenEvent};
use crate::observe::metrics::CredentialState;
use crate::pass::Settings;
use crate::pool::attribute::attribute;
use crate::pool::decide::{ActionResult, PlannedAction, decide};
use crate::pool::snapshot::{self, AuthSnapshot};
use crate::read::event::{Event, record_time};
use crate::read::scanner::{LogScanner, RecordHeader};
use crate::remediate::ledger::Ledger;
use crate::remediate::remedy::{Outcome, Remedy};
use crate::rules::Action;
use crate::shared::secrets::scrub;
use crate::watch::{Retry, WatchOptions};

/// How far back events are kept to pair and correlate new ones with.
const RECENT_SECONDS: f64 = 600.0;
/// At most this many of them (a flood of failures within the window keeps memory bounded;
/// pairing needs only the last few seconds of a session).
const RECENT_MAX: usize = 20_000;
/// At most this many record ids remembered to drop their second copy (24 bytes each).
const COPIES_MAX: usize = 200_000;
/// Where each log is in [`WatchedHome::logs`].
const AGENT: usize = 0;
const ERRORS: usize = 1;

struct WatchedLog {
    /// Path relative to the root home, the checkpoint key (`logs/errors.log`).
    key: String,
    log: LogFile,
    tailer: Tailer,
    /// The last record header per file (by device and inode), for traceback lines.
    headers: HashMap<(u64, u64), RecordHeader>,
    /// The time of the last record read (epoch seconds).
    reached: Option<f64>,
    /// The last poll read to the end (no backlog left).
    caught_up: bool,
}

pub struct WatchedHome {
    pub target: Target,
    logs: Vec<WatchedLog>,
    snapshot: AuthSnapshot,
    auth_stamp: Option<(u64, u64, i64, i64)>,
    /// auth.json must be compared with the ledger (at start, after a change or a failed write).
    reconcile_due: bool,
    /// Failed reconciliations in a row, and when to try again (a growing pause, so a lock held
    /// for long or an unparsable auth.json is neither hammered nor logged every second).
    failures: u32,
    retry_at: Option<Instant>,
    recent: Vec<Event>,
    /// Records seen lately in one log and not yet in the other, by record id, to drop their
    /// second copies.
    copies: HashMap<u64, Unmatched>,
    /// errors.log events read ahead of agent.log, oldest first, waiting for it.
    ahead: Vec<(Event, Source)>,
    /// The last step's reads stopped at the budget: step again at once.
    backlog: bool,
    /// Actions whose marks could not reach the ledger yet, with the event that decided each.
    unapplied: Vec<(Event, PlannedAction)>,
    /// The ledger's reads and writes: a pause after a failure.
    ledger_writes: Retry,
}

impl WatchedHome {
    pub fn new(
        target: Target,
        settings: &Settings,
        options: &WatchOptions,
        checkpoints: &Checkpoints,
        audit: &AuditLog,
    ) -> WatchedHome {
        // agent.log first: a step reads it, then errors.log, then agent.log again.
        let logs: Vec<WatchedLog> = [LogFile::Agent, LogFile::Errors]
            .into_iter()
            .map(|log| {
                let path = target.logs().join(log.name());
                let key = path
                    .strip_prefix(&settings.root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                let positions = checkpoints.files.get(&key).cloned().unwrap_or_default();
                WatchedLog {
                    tailer: Tailer::new(&path, &positions, settings.max_line, options.drain_grace),
                    key,
                    log,
                    headers: HashMap::new(),
                    reached: None,
                    caught_up: false,
                }
            })
            .collect();
        // Records recorded before a restart, so their second copy is still known as one.
        let copies = audit
            .recent_records()
            .iter()
            .filter_map(|(id, file, time)| {
                // A record id that is not 16 hex digits (a hand edit) is no copy of anything.
                let key = u64::from_str_radix(id, 16).ok()?;
                Some((key, logs.iter().find(|log| log.key == *file)?, time))
            })
            .fold(HashMap::new(), |mut copies, (key, log, time)| {
                Unmatched::seen(&mut copies, key, log.log, *time);
                copies
            });
        WatchedHome {
            target,
            logs,
            snapshot: AuthSnapshot::default(),
            auth_stamp: None,
            reconcile_due: true,
            failures: 0,
            retry_at: None,
            recent: Vec::new(),
            copies,
            ahead: Vec::new(),
            backlog: false,
            unapplied: Vec::new(),
            ledger_writes: Retry::default(),
        }
    }

    /// Takes a reloaded configuration: line limit and drain grace for the tailers; record
    /// headers are forgotten, since the rules that read them may have changed.
    pub fn reconfigure(&mut self, settings: &Settings, options: &WatchOptions) {
        for log in &mut self.logs {
            log.tailer
                .set_limits(settings.max_line, options.drain_grace);
            log.headers.clear();
        }
    }

    /// Where every log stands, for the checkpoint; errors.log only when none of its events
    /// wait for agent.log.
    pub fn note_positions(&self, checkpoints: &mut Checkpoints) {
        for (index, log) in self.logs.iter().enumerate() {
            if index == ERRORS && !self.ahead.is_empty() {
                continue;
            }
            checkpoints
                .files
                .insert(log.key.clone(), log.tailer.positions());
        }
    }

    /// One step; returns everything that happened, for the sinks. The ledger comes first:
    /// while it cannot be read or written, no line is read (they wait in the logs) and the step
    /// is tried again after a growing pause.
    pub fn step(
        &mut self,
        settings: &Settings,
        audit: &AuditLog,
        remedy: &Remedy,
        dry_run: bool,
    ) -> Vec<WardenEvent> {
        let mut events = Vec::new();
        self.backlog = false;
        if self.refresh_snapshot() {
            // A new auth.json is worth a try at once, even while backing off.
            self.reconcile_due = true;
            self.retry_at = None;
        }
        if !self.ledger_writes.due() {
            return events;
        }
        let prepared = self.prepare(settings, remedy, dry_run, &mut events);
        let ledger = match prepared {
            Ok(ledger) => ledger,
            Err(error) => {
                events.extend(
                    self.ledger_writes
                        .outcome(StateFile::Ledger, Err::<(), _>(error)),
                );
                return events;
            }
        };
        events.extend(
            self.ledger_writes
                .outcome(StateFile::Ledger, Ok::<_, String>(())),
        );
        let fresh = self.read_logs(settings, &mut events);
        if fresh.is_empty() {
            return events;
        }
        let earlier = self.remember(fresh.iter().map(|(event, _)| event.clone()));
        let snapshot = &self.snapshot;
        let attributions = &attribute(&self.recent, |_| snapshot, settings.windows)[earlier..];
        let new_events = &self.recent[earlier..];
        let mut actions = decide(
            new_events,
            attributions,
            |_| snapshot,
            |profile, credential| ledger.revived_at(profile, &credential.provider, &credential.id),
            settings.semantics(),
            settings.now_seconds(),
        );
        let mut outcome = None;
        if !dry_run && !actions.is_empty() {
            let done = remedy.apply(
                std::slice::from_ref(&self.target),
                &actions,
                new_events,
                |_| snapshot,
                settings.now,
            );
            match done {
                Ok(done) => {
                    for (action, result) in actions.iter_mut().zip(&done.results) {
                        action.result = *result;
                    }
                    outcome = Some(done);
                }
                Err(error) => {
                    // The marks wait here until the ledger can take them.
                    for action in &mut actions {
                        action.result = ActionResult::Failed;
                        let event = new_events[action.event].clone();
                        self.unapplied.push((event, action.clone()));
                    }
                    events.extend(
                        self.ledger_writes
                            .outcome(StateFile::Ledger, Err::<(), _>(error)),
                    );
                }
            }
        }
        for ((event, attribution), (_, source)) in new_events.iter().zip(attributions).zip(fresh) {
            if !audit.already_recorded(&source) {
                events.push(WardenEvent::Finding(Box::new(Finding {
                    result: action_result(&actions, event, attribution.credential()),
                    event: event.clone(),
                    attribution: attribution.clone(),
                    source,
                })));
            }
        }
        if let Some(outcome) = outcome {
            self.finish_remedy(outcome, &mut events);
        }
        events
    }

    /// Before reading: the marks that waited for the ledger, auth.json reconciled if due, and
    /// the ledger to decide with.
    fn prepare(
        &mut self,
        settings: &Settings,
        remedy: &Remedy,
        dry_run: bool,
        events: &mut Vec<WardenEvent>,
    ) -> anyhow::Result<Ledger> {
        let ledger = remedy.ledger(events)?;
        if dry_run {
            return Ok(ledger);
        }
        let applied = self.apply_unapplied(settings, remedy, events)?;
        let reconciled = self.reconcile_if_due(settings, remedy, &ledger, events)?;
        match applied || reconciled {
            // Reconciling may have dropped marks and noted revivals: decide on what it left.
            true => remedy.ledger(events),
            false => Ok(ledger),
        }
    }

    /// Carries out the actions that could not reach the ledger before; returns whether there
    /// were any.
    fn apply_unapplied(
        &mut self,
        settings: &Settings,
        remedy: &Remedy,
        events: &mut Vec<WardenEvent>,
    ) -> anyhow::Result<bool> {
        if self.unapplied.is_empty() {
            return Ok(false);
        }
        let (pending_events, actions): (Vec<Event>, Vec<PlannedAction>) = self
            .unapplied
            .iter()
            .enumerate()
            .map(|(index, (event, action))| {
                let action = PlannedAction {
                    event: index,
                    result: ActionResult::WouldApply,
                    ..action.clone()
                };
                (event.clone(), action)
            })
            .unzip();
        let outcome = remedy.apply(
            std::slice::from_ref(&self.target),
            &actions,
            &pending_events,
            |_| &self.snapshot,
            settings.now,
        )?;
        self.unapplied.clear();
        self.finish_remedy(outcome, events);
        Ok(true)
    }

    /// Reconciles auth.json with the ledger when it changed (read at the start of the step), a
    /// mark is pending, or a failed write's pause is over.
    /// Returns whether it reconciled.
    fn reconcile_if_due(
        &mut self,
        settings: &Settings,
        remedy: &Remedy,
        ledger: &Ledger,
        events: &mut Vec<WardenEvent>,
    ) -> anyhow::Result<bool> {
        let due = self.reconcile_due || ledger.pending(self.target.profile.as_deref());
        if due && self.retry_at.is_none_or(|at| Instant::now() >= at) {
            self.reconcile_due = false;
            let outcome = remedy.apply(
                std::slice::from_ref(&self.target),
                &[],
                &[],
                |_| &self.snapshot,
                settings.now,
            )?;
            self.finish_remedy(outcome, events);
            return Ok(true);
        }
        Ok(false)
    }

    /// Every pool entry's state as the installed Hermes sees it at `now`, from the last
    /// readable auth.json, for the metrics.
    pub fn credential_states(&self, settings: &Settings) -> Vec<CredentialState> {
        let semantics = settings.semantics();
        let now = settings.now_seconds();
        self.snapshot
            .pools
            .iter()
            .flat_map(|pool| {
                pool.entries.iter().map(move |entry| {
                    let availability = semantics.availability(entry, now);
                    CredentialState {
                        profile: self.target.profile.clone(),
                        provider: scrub(&pool.provider).into_owned(),
                        id: scrub(&entry.id).into_owned(),
                        state: availability.state,
                        available_in_seconds: availability.available_in_seconds,
                    }
                })
            })
            .collect()
    }

    /// Each log's key and how far behind its end the reading is, in bytes.
    pub fn log_lags(&self) -> Vec<(&str, u64)> {
        self.logs
            .iter()
            .map(|log| (log.key.as_str(), log.tailer.lag_bytes()))
            .collect()
    }

    /// How many pools and pool entries the last readable auth.json holds.
    pub fn pool_counts(&self) -> (usize, usize) {
        let pools = &self.snapshot.pools;
        (
            pools.len(),
            pools.iter().map(|pool| pool.entries.len()).sum(),
        )
    }

    /// Whether the last step left lines unread (a backlog): step again without waiting.
    pub fn backlog(&self) -> bool {
        self.backlog
    }

    /// Reads a batch of what is new in the logs; returns the new events (copies dropped) with
    /// where their lines are: agent.log's, then errors.log's as far as agent.log has reached.
    fn read_logs(
        &mut self,
        settings: &Settings,
        events: &mut Vec<WardenEvent>,
    ) -> Vec<(Event, Source)> {
        let clock = Instant::now();
        let profile = self.target.profile.as_deref();
        let mut fresh = Vec::new();
        for (read, index) in [AGENT, ERRORS, AGENT].into_iter().enumerate() {
            let log = &mut self.logs[index];
            if index == ERRORS && !self.ahead.is_empty() {
                log.caught_up = false;
                continue;
            }
            // A second batch of an agent.log backlog would leave errors.log behind.
            if read == 2 && !log.caught_up {
                continue;
            }
            let poll = match log.tailer.poll(clock) {
                Ok(poll) => poll,
                Err(error) => {
                    events.push(WardenEvent::LogUnreadable {
                        file: log.tailer.path().display().to_string(),
                        error: error.to_string(),
                    });
                    continue;
                }
            };
            log.caught_up = !poll.more;
            self.backlog |= poll.more;
            events.extend(log_events(
                &log.key,
                &poll.notes,
                &poll.lines,
                settings.max_line,
            ));
            let into = match index {
                ERRORS => &mut self.ahead,
                _ => &mut fresh,
            };
            scan_lines(settings, profile, log, &poll.lines, into);
        }
        // errors.log's events up to the first one later than agent.log has reached, so those
        // that wait are the last ones read and a restart from the checkpoint reads them again.
        let agent = &self.logs[AGENT];
        let horizon = match agent.caught_up {
            true => f64::INFINITY,
            false => agent.reached.unwrap_or(f64::NEG_INFINITY),
        };
        let waiting = self
            .ahead
            .iter()
            .position(|(event, _)| event.epoch_seconds().is_some_and(|at| at > horizon))
            .unwrap_or(self.ahead.len());
        fresh.extend(self.ahead.drain(..waiting));
        fresh.retain(|(event, _)| !is_copy(&mut self.copies, event));
        fresh
    }

    /// Adds new events to the recent ones (dropping those too old to pair with them); returns
    /// where the new ones start.
    fn remember(&mut self, new_events: impl Iterator<Item = Event>) -> usize {
        let new_events: Vec<Event> = new_events.collect();
        let newest = new_events
            .iter()
            .filter_map(Event::epoch_seconds)
            .fold(f64::MIN, f64::max);
        self.recent.retain(|event| {
            event
                .epoch_seconds()
                .is_some_and(|t| t >= newest - RECENT_SECONDS)
        });
        // A copy may still come from a log that has not read as far as the newest event.
        let horizon = self
            .logs
            .iter()
            .map(|log| match log.caught_up {
                true => newest,
                false => log.reached.unwrap_or(f64::NEG_INFINITY),
            })
            .fold(newest, f64::min);
        self.copies
            .retain(|_, copy| copy.at >= horizon - RECENT_SECONDS);
        let excess = (self.recent.len() + new_events.len()).saturating_sub(RECENT_MAX);
        self.recent.drain(..excess.min(self.recent.len()));
        if self.copies.len() > COPIES_MAX {
            // Oldest first: the copy of a record comes within milliseconds of it.
            let mut times: Vec<f64> = self.copies.values().map(|copy| copy.at).collect();
            let cut = times.len() - COPIES_MAX / 2;
            let (_, oldest_kept, _) = times.select_nth_unstable_by(cut, f64::total_cmp);
            let oldest_kept = *oldest_kept;
            self.copies.retain(|_, copy| copy.at >= oldest_kept);
        }
        if self.copies.capacity() > 4 * self.copies.len().max(1024) {
            // After a flood, give the memory back.
            self.copies.shrink_to_fit();
        }
        let earlier = self.recent.len();
        self.recent.extend(new_events);
        earlier
    }

    /// Hands on what carrying out or reconciling did, and notes whether auth.json must be
    /// looked at again: after a failed write (retry, after a pause) or our own write (re-read,
    /// and check once more that no Hermes process wrote in between).
    fn finish_remedy(&mut self, outcome: Outcome, events: &mut Vec<WardenEvent>) {
        if outcome.failed {
            self.failures += 1;
            self.retry_at = Some(Instant::now() + backoff(self.failures));
            self.reconcile_due = true;
        } else {
            self.failures = 0;
            self.retry_at = None;
        }
        events.extend(outcome.events);
        if outcome.wrote {
            self.reconcile_due = true;
            self.refresh_snapshot();
        }
    }

    /// Reads auth.json again if it changed; returns whether it did.
    fn refresh_snapshot(&mut self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let path = self.target.auth_json();
        let stamp = std::fs::metadata(&path)
            .ok()
            .map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec()));
        if stamp == self.auth_stamp {
            return false;
        }
        // Not read again until it changes: one report per broken version.
        self.auth_stamp = stamp;
        match snapshot::read(&path) {
            Ok(snapshot) => {
                self.snapshot = snapshot;
                true
            }
            Err(error) => {
                tracing::warn!("keeping the last readable auth.json: {error}");
                false
            }
        }
    }
}

/// The result of the action taken for an event's credential, when its rule asked for one.
fn action_result(
    actions: &[PlannedAction],
    event: &Event,
    credential: Option<&crate::pool::attribute::CredentialRef>,
) -> Option<ActionResult> {
    if event.action != Action::MarkDead {
        return None;
    }
    actions
        .iter()
        .find(|action| Some(&action.credential) == credential)
        .map(|action| action.result)
}

/// What the tailer noticed, as events.
fn log_events(
    key: &str,
    notes: &[TailNote],
    lines: &[TailedLine],
    max_line: usize,
) -> Vec<WardenEvent> {
    let mut events: Vec<WardenEvent> = notes
        .iter()
        .map(|note| WardenEvent::FileChanged {
            file: key.to_owned(),
            change: note.clone(),
        })
        .collect();
    if !lines.is_empty() {
        events.push(WardenEvent::LinesRead {
            file: key.to_owned(),
            lines: lines.len() as u64,
            bytes: lines.iter().map(|line| line.bytes.len() as u64 + 1).sum(),
        });
    }
    let cut = lines.iter().filter(|line| line.cut).count() as u64;
    if cut > 0 {
        events.push(WardenEvent::LinesCut {
            file: key.to_owned(),
            count: cut,
            limit: max_line,
        });
    }
    events
}

/// The pause before the `failures`-th retry: 1 s, 2 s, 4 s, ... up to a minute.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// Runs the rules over new lines, file by file, keeping each file's last record header.
fn scan_lines(
    settings: &Settings,
    profile: Option<&str>,
    log: &mut WatchedLog,
    lines: &[TailedLine],
    fresh: &mut Vec<(Event, Source)>,
) {
    for run in lines.chunk_by(|a, b| a.file == b.file) {
        let file = &run[0].file;
        let key = (file.device, file.inode);
        let mut scanner = LogScanner::new(&settings.rules, log.log, settings.max_line)
            .continuing(log.headers.remove(&key));
        let mut hits = Vec::new();
        scanner.feed_lines(run.iter().map(|line| line.bytes.as_slice()), &mut hits);
        if let Some(header) = scanner.record_header() {
            if let Some(at) = record_time(&header.timestamp_text, &settings.zone) {
                log.reached = Some(at.timestamp().as_millisecond() as f64 / 1000.0);
            }
            log.headers.insert(key, header.clone());
        }
        for mut event in Event::from_hits(&hits, profile, &log.key, log.log, &settings.zone) {
            let line = &run[(event.line - 1) as usize];
            event.line = line.number;
            fresh.push((event, Source::new(&line.file, line.end)));
        }
    }
}

/// The records of one id read from one log and not yet from the other.
struct Unmatched {
    log: LogFile,
    /// The event time of the latest.
    at: f64,
    /// How many (identical lines are so many records, each with its copy).
    count: u32,
}

impl Unmatched {
    /// Notes a record of `log`; returns whether it is the copy of one read from the other log.
    fn seen(copies: &mut HashMap<u64, Unmatched>, key: u64, log: LogFile, at: f64) -> bool {
        match copies.get_mut(&key) {
            Some(unmatched) if unmatched.log != log => {
                unmatched.count -= 1;
                if unmatched.count == 0 {
                    copies.remove(&key);
                }
                true
            }
            Some(unmatched) => {
                unmatched.count = unmatched.count.saturating_add(1);
                unmatched.at = unmatched.at.max(at);
                false
            }
            None => {
                copies.insert(key, Unmatched { log, at, count: 1 });
                false
            }
        }
    }
}

/// Whether `event` is the second copy of a record (errors.log and agent.log both hold it).
fn is_copy(copies: &mut HashMap<u64, Unmatched>, event: &Event) -> bool {
    let at = event.epoch_seconds().unwrap_or(0.0);
    Unmatched::seen(copies, event.record_key(), event.log, at)
}
