//! The daemon: follow every watched home's logs, run each new record through the read path,
//! record every finding in the audit log, remember how far it read.
//!
//! It wakes on file-system events (a `notify` watch on each logs directory, never on the files,
//! which rotation replaces) and on a timer, the safety net where no events arrive. Each wake
//! is one step: read agent.log, errors.log and agent.log again (every errors.log record is also
//! in agent.log, written just before it, so the second read catches a copy that was not there
//! yet), drop the copies, attribute the new events together with the recent ones (a payload
//! line pairs with the `marking` line before it), decide, append the findings to the audit log,
//! then write the checkpoint. Unless it is a dry run, decisions are carried out through
//! [`remedy`](crate::remediate::remedy) before the findings are recorded, and each home's auth.json is
//! reconciled with the ledger at start, whenever it changes (its directory is watched too),
//! while a mark is still pending, and after a failed write. SIGTERM and SIGINT finish the step
//! and exit; SIGHUP reloads the rules and the configuration, keeping the old ones when the new
//! ones are invalid.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use jiff::Timestamp;
use notify::Watcher;
use serde_json::json;

use crate::follow::checkpoints::Checkpoints;
use crate::follow::tailer::{TailNote, TailedLine, Tailer};
use crate::hermes::home::{self, Target};
use crate::observe::audit::{AuditLog, Source};
use crate::pass::Settings;
use crate::pool::attribute::{AttributionKind, attribute};
use crate::pool::decide::{ActionResult, decide};
use crate::pool::snapshot::{self, AuthSnapshot};
use crate::read::event::Event;
use crate::read::scanner::{LogScanner, RecordHeader};
use crate::remediate::ledger::{Ledger, ledger_path};
use crate::remediate::remedy::{Outcome, Remedy};
use crate::rules::Action;
use crate::shared::files;
use crate::shared::secrets::scrub;

/// How the daemon runs, beyond the read path's settings.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub dry_run: bool,
    pub poll_interval: Duration,
    pub drain_grace: Duration,
    /// Pick up profiles created while running.
    pub all_profiles: bool,
}

/// New rules and settings for SIGHUP.
pub type Reload<'a> = dyn Fn() -> anyhow::Result<Settings> + 'a;

/// How far back events are kept to pair and correlate new ones with.
const RECENT_SECONDS: f64 = 600.0;

enum Wake {
    Files,
    Signal(i32),
}

struct WatchedLog {
    /// Path relative to the root home, the checkpoint key (`logs/errors.log`).
    key: String,
    log: &'static str,
    tailer: Tailer,
    /// The last record header per file (by device and inode), for traceback lines.
    headers: HashMap<(u64, u64), RecordHeader>,
}

struct WatchedHome {
    target: Target,
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
    /// Records seen lately: record id to (log key, event time), to drop the second copy.
    copies: HashMap<String, (String, f64)>,
}

pub fn run(mut settings: Settings, options: WatchOptions, reload: &Reload) -> anyhow::Result<()> {
    let state_dir = settings.root.join("warden");
    files::ensure_dir(&state_dir)
        .with_context(|| format!("{}: cannot create", state_dir.display()))?;
    let checkpoint_path = state_dir.join("checkpoints.json");
    let mut checkpoints = Checkpoints::load(&checkpoint_path)?;
    checkpoints.version = 1;
    let mut audit = AuditLog::open(&state_dir.join("audit.jsonl"))?;
    let mut remedy = match options.dry_run {
        true => None,
        false => Some(Remedy::open(&settings.root, settings.policy)?),
    };

    let (wake, wakes) = mpsc::channel();
    let file_wake = wake.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Opening and reading a file (our own reads of auth.json and the logs included) is no
        // news; waking on it would make every step wake the next one.
        if !matches!(&event, Ok(event) if event.kind.is_access()) {
            let _ = file_wake.send(Wake::Files);
        }
    })
    .context("cannot watch the file system")?;
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])?;
    let signal_handle = signals.handle();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if wake.send(Wake::Signal(signal)).is_err() {
                break;
            }
        }
    });

    let mut homes: Vec<WatchedHome> = Vec::new();
    let mut watched: HashSet<PathBuf> = HashSet::new();
    tracing::info!(home = %settings.root.display(), dry_run = options.dry_run, "watching");
    let mut stop = false;
    loop {
        add_new_homes(&settings, &options, &checkpoints, &audit, &mut homes);
        watch_directories(&mut watcher, &settings, &homes, &mut watched);
        settings.now = Timestamp::now();
        for home in &mut homes {
            step(&settings, home, &mut audit, remedy.as_ref())?;
            for log in &home.logs {
                checkpoints
                    .files
                    .insert(log.key.clone(), log.tailer.positions());
            }
        }
        checkpoints
            .save(&checkpoint_path)
            .with_context(|| format!("{}: cannot write", checkpoint_path.display()))?;
        if stop {
            signal_handle.close();
            tracing::info!("stopped");
            return Ok(());
        }

        // Sleep until something happens or the timer fires, then take whatever else is
        // pending and step once for all of it (a stop request included: the last step runs).
        let mut next = wakes
            .recv_timeout(options.poll_interval)
            .map_err(|error| error == mpsc::RecvTimeoutError::Disconnected);
        loop {
            match next {
                Ok(Wake::Files) | Err(false) => {}
                Ok(Wake::Signal(signal)) if signal == signal_hook::consts::SIGHUP => match reload()
                {
                    Ok(new) => {
                        tracing::info!("reloaded rules and configuration");
                        settings = new;
                        if let Some(remedy) = &mut remedy {
                            remedy.policy = settings.policy;
                        }
                        homes.iter_mut().for_each(|home| {
                            home.logs.iter_mut().for_each(|log| log.headers.clear())
                        });
                    }
                    Err(error) => {
                        tracing::error!("keeping the old rules and configuration: {error:#}")
                    }
                },
                Ok(Wake::Signal(_)) | Err(true) => stop = true,
            }
            match wakes.try_recv() {
                Ok(wake) => next = Ok(wake),
                Err(_) => break,
            }
        }
    }
}

fn add_new_homes(
    settings: &Settings,
    options: &WatchOptions,
    checkpoints: &Checkpoints,
    audit: &AuditLog,
    homes: &mut Vec<WatchedHome>,
) {
    let mut targets = settings.targets.clone();
    if options.all_profiles
        && let Ok(all) = home::targets(&settings.root, None, true)
    {
        targets = all;
    }
    for target in targets {
        if homes.iter().any(|home| home.target == target) {
            continue;
        }
        if target.profile.is_some() {
            tracing::info!(profile = target.profile.as_deref(), "watching profile");
        }
        let logs: Vec<WatchedLog> = ["agent.log", "errors.log"]
            .into_iter()
            .map(|log| {
                let path = target.logs().join(log);
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
                }
            })
            .collect();
        // Records recorded before a restart, so their second copy is still known as one.
        let copies = audit
            .recent_records()
            .iter()
            .filter(|(_, file, _)| logs.iter().any(|log| log.key == *file))
            .map(|(id, file, time)| (id.clone(), (file.clone(), *time)))
            .collect();
        homes.push(WatchedHome {
            target,
            logs,
            snapshot: AuthSnapshot::default(),
            auth_stamp: None,
            reconcile_due: true,
            failures: 0,
            retry_at: None,
            recent: Vec::new(),
            copies,
        });
    }
}

/// Watches each home's directory (for auth.json) and logs directory, or the nearest directory
/// that exists, so a logs directory or a profile created later is noticed.
fn watch_directories(
    watcher: &mut notify::RecommendedWatcher,
    settings: &Settings,
    homes: &[WatchedHome],
    watched: &mut HashSet<PathBuf>,
) {
    let mut wanted: Vec<PathBuf> = homes
        .iter()
        .flat_map(|home| {
            [
                nearest_existing(&home.target.logs()),
                nearest_existing(&home.target.dir),
            ]
        })
        .collect();
    wanted.push(nearest_existing(&settings.root.join("profiles")));
    for dir in wanted {
        if !watched.contains(&dir)
            && watcher
                .watch(&dir, notify::RecursiveMode::NonRecursive)
                .is_ok()
        {
            tracing::debug!(dir = %dir.display(), "watching directory");
            watched.insert(dir);
        }
    }
}

fn nearest_existing(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| d.is_dir())
        .unwrap_or(Path::new("/"))
        .to_owned()
}

/// One step for one home: auth.json reconciled if due, new lines to findings, decisions carried
/// out, findings in the audit log.
fn step(
    settings: &Settings,
    home: &mut WatchedHome,
    audit: &mut AuditLog,
    remedy: Option<&Remedy>,
) -> anyhow::Result<()> {
    if refresh_snapshot(home) {
        // A new auth.json is worth a try at once, even while backing off.
        home.reconcile_due = true;
        home.retry_at = None;
    }
    if let Some(remedy) = remedy
        && (home.reconcile_due || remedy.pending(home.target.profile.as_deref())?)
        && home.retry_at.is_none_or(|at| Instant::now() >= at)
    {
        home.reconcile_due = false;
        let outcome = remedy.apply(
            std::slice::from_ref(&home.target),
            &[],
            &[],
            |_| &home.snapshot,
            settings.now,
        )?;
        finish_remedy(home, audit, outcome)?;
    }
    let clock = Instant::now();
    let mut fresh: Vec<(Event, Source)> = Vec::new();
    for index in [0, 1, 0] {
        let log = &mut home.logs[index];
        let poll = match log.tailer.poll(clock) {
            Ok(poll) => poll,
            Err(error) => {
                tracing::warn!(file = %log.tailer.path().display(), "cannot read: {error}");
                continue;
            }
        };
        for note in &poll.notes {
            match note {
                TailNote::Opened { .. } => tracing::debug!(file = log.key, "{note:?}"),
                _ => tracing::info!(file = log.key, "{note:?}"),
            }
        }
        if poll.lines.iter().any(|line| line.cut) {
            tracing::warn!(
                file = log.key,
                "lines longer than {} bytes were cut",
                settings.max_line
            );
        }
        scan_lines(
            settings,
            home.target.profile.as_deref(),
            log,
            &poll.lines,
            &mut fresh,
        );
    }
    let mut new_events = Vec::new();
    let mut sources = Vec::new();
    for (event, source) in fresh {
        if is_copy(&mut home.copies, &event) {
            continue;
        }
        new_events.push(event);
        sources.push(source);
    }
    if new_events.is_empty() {
        return Ok(());
    }
    let newest = new_events
        .iter()
        .filter_map(Event::epoch_seconds)
        .fold(f64::MIN, f64::max);
    home.recent.retain(|event| {
        event
            .epoch_seconds()
            .is_some_and(|t| t >= newest - RECENT_SECONDS)
    });
    home.copies
        .retain(|_, (_, at)| *at >= newest - RECENT_SECONDS);
    let earlier = home.recent.len();
    home.recent.extend(new_events);
    let snapshot = &home.snapshot;
    let attributions = attribute(&home.recent, |_| snapshot, settings.windows);
    let events = &home.recent[earlier..];
    let attributions = &attributions[earlier..];
    let ledger = Ledger::load(&ledger_path(&settings.root))?;
    let mut actions = decide(
        events,
        attributions,
        |_| snapshot,
        |profile, credential| ledger.revived_at(profile, &credential.provider, &credential.id),
        settings.semantics(),
        settings.now_seconds(),
    );
    let mut outcome = None;
    if let Some(remedy) = remedy
        && !actions.is_empty()
    {
        let done = remedy.apply(
            std::slice::from_ref(&home.target),
            &actions,
            events,
            |_| snapshot,
            settings.now,
        )?;
        for (action, result) in actions.iter_mut().zip(&done.results) {
            action.result = *result;
        }
        outcome = Some(done);
    }
    let mut records = Vec::new();
    for ((event, attribution), source) in events.iter().zip(attributions).zip(sources) {
        if audit.already_recorded(&source) {
            continue;
        }
        let result = actions
            .iter()
            .find(|a| {
                event.action == Action::MarkDead
                    && Some(&a.credential) == attribution.credential.as_ref()
            })
            .map(|a| a.result);
        if event.kind.is_credential_failure() && attribution.kind == AttributionKind::Unattributed {
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
                    .credential
                    .as_ref()
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
        records.push((
            Some(source.clone()),
            audit_record(settings, event, attribution, result, &source),
        ));
    }
    audit
        .append(&records)
        .context("cannot append to the audit log")?;
    match outcome {
        Some(outcome) => finish_remedy(home, audit, outcome),
        None => Ok(()),
    }
}

/// The pause before the `failures`-th retry: 1 s, 2 s, 4 s, ... up to a minute.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// Records what carrying out or reconciling changed, and notes whether auth.json must be
/// looked at again: after a failed write (retry, after a pause) or our own write (re-read, and
/// check once more that no Hermes process wrote in between).
fn finish_remedy(
    home: &mut WatchedHome,
    audit: &mut AuditLog,
    outcome: Outcome,
) -> anyhow::Result<()> {
    if outcome.failed {
        home.failures += 1;
        home.retry_at = Some(Instant::now() + backoff(home.failures));
        home.reconcile_due = true;
    } else {
        home.failures = 0;
        home.retry_at = None;
    }
    if outcome.wrote {
        home.reconcile_due = true;
        refresh_snapshot(home);
    }
    let records: Vec<_> = outcome.records.into_iter().map(|r| (None, r)).collect();
    audit
        .append(&records)
        .context("cannot append to the audit log")
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
        let mut bytes = Vec::with_capacity(run.iter().map(|line| line.bytes.len() + 1).sum());
        for line in run {
            bytes.extend_from_slice(&line.bytes);
            bytes.push(b'\n');
        }
        let mut hits = Vec::new();
        scanner.feed(&bytes, &mut hits);
        if let Some(header) = scanner.record_header() {
            log.headers.insert(key, header.clone());
        }
        for hit in hits {
            let line = &run[(hit.line - 1) as usize];
            let mut event = Event::from_hit(&hit, profile, &log.key, log.log, &settings.zone);
            event.line = line.number;
            fresh.push((event, Source::new(&line.file, line.end)));
        }
    }
}

/// Whether `event` is the second copy of a record (errors.log and agent.log both hold it).
fn is_copy(copies: &mut HashMap<String, (String, f64)>, event: &Event) -> bool {
    let key = event.record_id();
    match copies.get(&key) {
        Some((file, _)) if *file != event.file => {
            copies.remove(&key);
            true
        }
        _ => {
            copies.insert(
                key,
                (event.file.clone(), event.epoch_seconds().unwrap_or(0.0)),
            );
            false
        }
    }
}

/// Reads auth.json again if it changed; returns whether it did.
fn refresh_snapshot(home: &mut WatchedHome) -> bool {
    use std::os::unix::fs::MetadataExt;
    let path = home.target.auth_json();
    let stamp = std::fs::metadata(&path)
        .ok()
        .map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec()));
    if stamp == home.auth_stamp {
        return false;
    }
    match snapshot::read(&path) {
        Ok(snapshot) => {
            home.snapshot = snapshot;
            home.auth_stamp = stamp;
            true
        }
        Err(error) => {
            // Not read again until it changes: one warning per broken version.
            home.auth_stamp = stamp;
            tracing::warn!("keeping the last readable auth.json: {error}");
            false
        }
    }
}

fn audit_record(
    settings: &Settings,
    event: &Event,
    attribution: &crate::pool::attribute::Attribution,
    result: Option<ActionResult>,
    source: &Source,
) -> serde_json::Value {
    json!({
        "recorded_at": settings.now.to_string(),
        "time": event.time.as_ref().map(|t| t.timestamp().to_string()),
        "profile": event.profile,
        "session": event.session,
        "file": event.file,
        "line": event.line,
        "rule": event.rule,
        "kind": event.kind,
        "provider": event.provider.clone().or_else(|| attribution.credential.as_ref().map(|c| c.provider.clone())),
        "status": event.status,
        "reason": event.reason.as_deref().map(|r| scrub(r).into_owned()),
        "credential": attribution.credential.as_ref().map(|c| json!({
            "provider": c.provider,
            "id": c.id,
            "label": c.label.as_deref().map(|l| scrub(l).into_owned()),
        })),
        "attribution": attribution.kind,
        "record": event.record_id(),
        "action": (event.action == Action::MarkDead).then_some("mark_dead"),
        "result": result,
        "source": source,
    })
}
