//! The daemon: follow every watched home's logs, run each new record through the same pipeline
//! as a pass, carry the decisions out, and hand every internal event to the sinks (the daemon's
//! log, the metrics and the audit log), then remember how far it read and, with `--textfile`,
//! write the metrics.
//!
//! It wakes on file-system events (a `notify` watch on each logs directory, never on the files,
//! which rotation replaces) and on a timer, the safety net where no events arrive or a
//! directory cannot be watched. Each wake is one step per home ([`home`]). SIGTERM and SIGINT
//! finish the step and exit; SIGHUP reloads the rules and the whole configuration, keeping the
//! old ones when the new ones are refused. A state file that cannot be read is moved aside and
//! rebuilt: the daemon never dies of its own bad state, and no mark is lost.

mod home;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use notify::Watcher;

use crate::follow::checkpoints::Checkpoints;
use crate::hermes::home as hermes_home;
use crate::observe::audit::{AuditLog, AuditRecord, Reach};
use crate::observe::events::{StateFile, StateFileTrouble, WardenEvent, state_dir};
use crate::observe::log::DaemonLog;
use crate::observe::metrics::Metrics;
use crate::pass::Settings;
use crate::remediate::remedy::Remedy;
use crate::shared::files;
use home::WatchedHome;

/// How the daemon runs, beyond the read path's settings.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub dry_run: bool,
    /// Where to write the metrics for node_exporter's textfile collector.
    pub textfile: Option<PathBuf>,
    pub poll_interval: Duration,
    pub drain_grace: Duration,
    /// Pick up profiles created while running.
    pub all_profiles: bool,
}

/// New settings and options for SIGHUP.
pub type Reload<'a> = dyn Fn() -> anyhow::Result<(Settings, WatchOptions)> + 'a;

enum Wake {
    Files,
    Signal(i32),
    /// Nothing can wake the daemon any more.
    Gone,
}

/// Where every internal event goes: the daemon's log, the metrics, then the audit log. When the audit log
/// cannot be written (a read-only or full disk), its records wait in memory, in order, and are
/// tried again after a growing pause; meanwhile the checkpoint does not move, so a restart reads
/// the lines again rather than lose their findings.
struct Sinks {
    log: DaemonLog,
    metrics: Metrics,
    audit: AuditLog,
    unwritten: Vec<AuditRecord>,
    writes: Retry,
}

/// At most this many audit records wait in memory; older ones are dropped (their lines are
/// read again after a restart, since the checkpoint waits for them).
const UNWRITTEN_MAX: usize = 100_000;

impl Sinks {
    fn new(audit: AuditLog) -> anyhow::Result<Sinks> {
        Ok(Sinks {
            log: DaemonLog::default(),
            metrics: Metrics::daemon().context("cannot set up the metrics")?,
            audit,
            unwritten: Vec::new(),
            writes: Retry::default(),
        })
    }

    fn emit(&mut self, events: &[WardenEvent], now: Timestamp) {
        for event in events {
            self.log.record(event);
            self.metrics.record(event);
        }
        self.unwritten.extend(
            events
                .iter()
                .filter_map(|event| AuditRecord::of(event, now)),
        );
        let excess = self.unwritten.len().saturating_sub(UNWRITTEN_MAX);
        self.unwritten.drain(..excess);
        self.flush();
    }

    /// Writes what waits, when it is time to try; returns whether nothing waits any more.
    fn flush(&mut self) -> bool {
        if self.unwritten.is_empty() || !self.writes.due() {
            return self.unwritten.is_empty();
        }
        let result = self.audit.append(&self.unwritten);
        if result.is_ok() {
            self.unwritten.clear();
        }
        if let Some(event) = self.writes.outcome(StateFile::Audit, result) {
            self.log.record(&event);
            self.metrics.record(&event);
            self.unwritten
                .extend(AuditRecord::of(&event, Timestamp::now()));
        }
        self.unwritten.is_empty()
    }
}

/// A state file's writes: after a failure, a growing pause (1 s doubling to a minute) before
/// the next try, one event when the failures start and one when they end.
#[derive(Default)]
pub(crate) struct Retry {
    failures: u32,
    next: Option<std::time::Instant>,
}

impl Retry {
    pub(crate) fn due(&self) -> bool {
        self.next.is_none_or(|at| std::time::Instant::now() >= at)
    }

    pub(crate) fn outcome<T, E: std::fmt::Display>(
        &mut self,
        file: StateFile,
        result: Result<T, E>,
    ) -> Option<WardenEvent> {
        match result {
            Ok(_) => {
                self.next = None;
                (std::mem::take(&mut self.failures) > 0)
                    .then_some(WardenEvent::StateWritable { file })
            }
            Err(error) => {
                self.failures += 1;
                let pause = Duration::from_secs(1 << (self.failures - 1).min(6))
                    .min(Duration::from_secs(60));
                self.next = Some(std::time::Instant::now() + pause);
                (self.failures == 1).then(|| WardenEvent::StateWriteFailed {
                    file,
                    error: format!("{error:#}"),
                })
            }
        }
    }
}

pub fn run(settings: Settings, options: WatchOptions, reload: &Reload) -> anyhow::Result<()> {
    let mut daemon = Daemon::open(settings, options)?;
    let (wakes, mut watcher) = Wakes::start()?;
    tracing::info!(home = %daemon.root.display(), dry_run = daemon.options.dry_run, "watching");
    let mut stop = false;
    let mut started = false;
    loop {
        let backlog = daemon.step(&mut watcher)?;
        if !std::mem::replace(&mut started, true) {
            // After the first step, which read every auth.json.
            tracing::info!(target: START_TARGET, "{}", daemon.start_line());
        }
        daemon.sinks.log.summarise(stop);
        if stop {
            wakes.close();
            tracing::info!("stopped");
            return Ok(());
        }
        // A stop request still runs the last step. A backlog is read batch after batch, with
        // a look at the signals between two.
        let timeout = match backlog {
            true => Duration::ZERO,
            false => daemon.options.poll_interval,
        };
        for wake in wakes.wait(timeout) {
            match wake {
                Wake::Files => {}
                Wake::Signal(signal_hook::consts::SIGHUP) => daemon.reload(reload)?,
                Wake::Signal(_) | Wake::Gone => stop = true,
            }
        }
    }
}

/// How often the metrics textfile is written when only the `process_*` metrics changed.
const PROCESS_METRICS_EVERY: Duration = Duration::from_secs(60);

/// The target of the start line, which the default verbosity shows (see `app::run`).
pub const START_TARGET: &str = "hermes_warden::start";

/// The daemon's state between steps.
struct Daemon {
    root: PathBuf,
    settings: Settings,
    options: WatchOptions,
    sinks: Sinks,
    remedy: Remedy,
    checkpoints: Checkpoints,
    checkpoint_path: PathBuf,
    /// What the checkpoint file holds: written only when the positions moved (and once at
    /// start, which says the daemon is up).
    saved: Option<Checkpoints>,
    checkpoint_writes: Retry,
    /// What the metrics textfile holds beside the `process_*` metrics, when it was written,
    /// and whether its last write failed.
    textfile: Option<String>,
    textfile_at: Option<std::time::Instant>,
    textfile_failing: bool,
    homes: Vec<WatchedHome>,
    watches: Watches,
}

impl Daemon {
    /// Opens the state directory: checkpoints and audit log read (or repaired and reported).
    fn open(settings: Settings, options: WatchOptions) -> anyhow::Result<Daemon> {
        let root = settings.root.clone();
        let state = state_dir(&root);
        files::ensure_dir(&state).with_context(|| format!("{}: cannot create", state.display()))?;
        let mut startup = Vec::new();
        let checkpoint_path = StateFile::Checkpoints.path(&root);
        let (checkpoints, reach) = open_checkpoints(&checkpoint_path, &mut startup)?;
        let (audit, torn) = AuditLog::open(&StateFile::Audit.path(&root), reach)?;
        startup.extend(torn);
        let remedy = Remedy::open(&root, settings.policy)?;
        // A ledger that cannot be had now is no reason not to start: each home's step tries it
        // again after a pause (and says so).
        if let Err(error) = remedy.journal_gaps(&audit, &mut startup) {
            tracing::warn!("the journal's gaps not checked: {error:#}");
        }
        let mut sinks = Sinks::new(audit)?;
        sinks.emit(&startup, settings.now);
        Ok(Daemon {
            remedy,
            root,
            settings,
            options,
            sinks,
            checkpoints,
            checkpoint_path,
            saved: None,
            checkpoint_writes: Retry::default(),
            textfile: None,
            textfile_at: None,
            textfile_failing: false,
            homes: Vec::new(),
            watches: Watches::default(),
        })
    }

    /// One step for every home, each home's events to the sinks, then the checkpoint. Returns
    /// whether a home has a backlog left.
    fn step(&mut self, watcher: &mut notify::RecommendedWatcher) -> anyhow::Result<bool> {
        add_new_homes(
            &self.settings,
            &self.options,
            &self.checkpoints,
            &self.sinks.audit,
            &mut self.homes,
        );
        self.settings.now = Timestamp::now();
        let watch_events = self.watches.update(watcher, &self.root, &self.homes);
        self.sinks.emit(&watch_events, self.settings.now);
        for home in &mut self.homes {
            let events = home.step(
                &self.settings,
                &self.sinks.audit,
                &self.remedy,
                self.options.dry_run,
            );
            self.sinks.emit(&events, self.settings.now);
            home.note_positions(&mut self.checkpoints);
        }
        let backlog = self.homes.iter().any(WatchedHome::backlog);
        // The audit log first: positions move on only once their findings are durable.
        if self.sinks.flush()
            && self.saved.as_ref() != Some(&self.checkpoints)
            && self.checkpoint_writes.due()
        {
            let result = self
                .checkpoints
                .save(&self.checkpoint_path)
                .map_err(|error| {
                    std::io::Error::new(
                        error.kind(),
                        format!("{}: {error}", self.checkpoint_path.display()),
                    )
                });
            if result.is_ok() {
                self.saved = Some(self.checkpoints.clone());
            }
            if let Some(event) = self
                .checkpoint_writes
                .outcome(StateFile::Checkpoints, result)
            {
                self.sinks.emit(&[event], self.settings.now);
            }
        }
        self.write_textfile();
        // While the audit log cannot take findings, no more are read than wait for it.
        Ok(backlog && self.sinks.unwritten.is_empty())
    }

    /// `--textfile`: the metrics, with every pool entry's state now, written atomically when
    /// they changed, and at least every [`PROCESS_METRICS_EVERY`] for the `process_*` ones
    /// (which change on every step, so an idle daemon does not rewrite the file each second);
    /// a failure is said once, when the writes start failing.
    fn write_textfile(&mut self) {
        let Some(path) = &self.options.textfile else {
            return;
        };
        let states: Vec<_> = self
            .homes
            .iter()
            .flat_map(|home| home.credential_states(&self.settings))
            .collect();
        self.sinks.metrics.set_states(&states);
        self.sinks
            .metrics
            .set_log_lags(self.homes.iter().flat_map(WatchedHome::log_lags));
        let text = match self.sinks.metrics.text() {
            Ok(text) => text,
            Err(error) => {
                tracing::warn!("metrics: {error}");
                return;
            }
        };
        // Every line of the text format begins with its metric's name, or `# HELP NAME` or
        // `# TYPE NAME`.
        let significant: String = text
            .lines()
            .filter(|line| {
                let name = line
                    .strip_prefix("# HELP ")
                    .or_else(|| line.strip_prefix("# TYPE "))
                    .unwrap_or(line);
                !name.starts_with("process_")
            })
            .collect();
        let fresh = self
            .textfile_at
            .is_some_and(|at| at.elapsed() < PROCESS_METRICS_EVERY);
        if self.textfile.as_ref() == Some(&significant) && fresh {
            return;
        }
        match files::publish_atomically(path, text.as_bytes()) {
            Ok(()) => {
                if std::mem::take(&mut self.textfile_failing) {
                    tracing::info!(file = %path.display(), "metrics textfile written again");
                }
                self.textfile = Some(significant);
                self.textfile_at = Some(std::time::Instant::now());
            }
            Err(error) => {
                if !std::mem::replace(&mut self.textfile_failing, true) {
                    tracing::warn!("{}: cannot write the metrics: {error}", path.display());
                }
            }
        }
    }

    /// What the daemon watches and where to look, in one line: its version, the homes, their
    /// pools and credentials, the Hermes version it assumed and why, the form of a mark, dry
    /// run or not, and where the metrics and the audit log are.
    fn start_line(&self) -> String {
        let settings = &self.settings;
        let homes: Vec<&str> = self
            .homes
            .iter()
            .map(|home| home.target.profile.as_deref().unwrap_or("root"))
            .collect();
        let (pools, credentials) = self
            .homes
            .iter()
            .map(WatchedHome::pool_counts)
            .fold((0, 0), |(p, c), (pools, entries)| (p + pools, c + entries));
        let source = &settings.hermes_version_source;
        let version = match (settings.hermes_version, source.how().phrase()) {
            (Some(version), Some(how)) => format!("Hermes {version} ({how} {})", source.from()),
            _ => format!(
                "Hermes version unknown ({})",
                source.unknown_because().unwrap_or_default()
            ),
        };
        let form = settings.policy.form.describe();
        let mode = match self.options.dry_run {
            true => "dry run: auth.json is never written",
            false => "marks revoked credentials dead in auth.json",
        };
        let metrics = match &self.options.textfile {
            Some(path) => format!("metrics in {}", path.display()),
            None => "metrics: give --textfile PATH".to_owned(),
        };
        format!(
            "hermes-warden {} watching {} ({}): pools {pools}, credentials {credentials}; \
             {version}; {form}; {mode}; {metrics}; findings in {}",
            env!("CARGO_PKG_VERSION"),
            self.root.display(),
            homes.join(", "),
            StateFile::Audit.path(&self.root).display()
        )
    }

    /// SIGHUP: everything from the files again, or the old settings kept when refused.
    fn reload(&mut self, reload: &Reload) -> anyhow::Result<()> {
        let refused = match reload() {
            Ok((settings, options)) => {
                (self.settings, self.options) = (settings, options);
                self.remedy.policy = self.settings.policy;
                for home in &mut self.homes {
                    home.reconfigure(&self.settings, &self.options);
                }
                None
            }
            Err(error) => Some(format!("{error:#}")),
        };
        self.sinks
            .emit(&[WardenEvent::Reload { refused }], Timestamp::now());
        Ok(())
    }
}

/// What wakes the daemon: file-system events and signals, on one channel.
struct Wakes {
    receiver: mpsc::Receiver<Wake>,
    signals: signal_hook::iterator::Handle,
}

impl Wakes {
    fn start() -> anyhow::Result<(Wakes, notify::RecommendedWatcher)> {
        let (wake, receiver) = mpsc::channel();
        let file_wake = wake.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Opening and reading a file (our own reads of auth.json and the logs included) is
            // no news; waking on it would make every step wake the next one.
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
        let handle = signals.handle();
        std::thread::spawn(move || {
            for signal in signals.forever() {
                if wake.send(Wake::Signal(signal)).is_err() {
                    break;
                }
            }
        });
        Ok((
            Wakes {
                receiver,
                signals: handle,
            },
            watcher,
        ))
    }

    /// Sleeps until something happens or `timeout` passes, then takes whatever else is
    /// pending, so one step serves all of it.
    fn wait(&self, timeout: Duration) -> Vec<Wake> {
        let mut wakes = match self.receiver.recv_timeout(timeout) {
            Ok(wake) => vec![wake],
            Err(mpsc::RecvTimeoutError::Timeout) => Vec::new(),
            Err(mpsc::RecvTimeoutError::Disconnected) => vec![Wake::Gone],
        };
        wakes.extend(self.receiver.try_iter());
        wakes
    }

    fn close(&self) {
        self.signals.close();
    }
}

/// The checkpoints, and how far the audit log must be read to know what is recorded: all of
/// it when the checkpoints could not be read (moved aside; every log is read from the start).
fn open_checkpoints(
    path: &Path,
    events: &mut Vec<WardenEvent>,
) -> anyhow::Result<(Checkpoints, Reach)> {
    match Checkpoints::load(path) {
        Ok(checkpoints) => Ok((checkpoints, Reach::Recent)),
        Err(problem) => {
            let moved_to = files::move_aside(path)
                .with_context(|| format!("{}: cannot move aside", path.display()))?;
            events.push(WardenEvent::StateFile(StateFileTrouble {
                file: StateFile::Checkpoints,
                problem,
                moved_to: Some(moved_to),
                rebuilt: "reading every log from the start; the audit log keeps findings from \
                          being recorded twice"
                    .into(),
            }));
            Ok((Checkpoints::default(), Reach::Whole))
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
        && let Ok(all) = hermes_home::targets(&settings.root, None, true)
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
        homes.push(WatchedHome::new(
            target,
            settings,
            options,
            checkpoints,
            audit,
        ));
    }
}

/// The directories watched for changes, and the ones that could not be (reported once each).
#[derive(Default)]
struct Watches {
    watched: HashSet<PathBuf>,
    failed: HashSet<PathBuf>,
}

impl Watches {
    /// Watches each home's directory (for auth.json) and logs directory, or the nearest
    /// directory that exists, so a logs directory or a profile created later is noticed.
    fn update(
        &mut self,
        watcher: &mut notify::RecommendedWatcher,
        root: &Path,
        homes: &[WatchedHome],
    ) -> Vec<WardenEvent> {
        let mut wanted: Vec<PathBuf> = homes
            .iter()
            .flat_map(|home| {
                [
                    nearest_existing(&home.target.logs()),
                    nearest_existing(&home.target.dir),
                ]
            })
            .collect();
        wanted.push(nearest_existing(&root.join("profiles")));
        let mut events = Vec::new();
        for dir in wanted {
            if self.watched.contains(&dir) {
                continue;
            }
            match watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::debug!(dir = %dir.display(), "watching directory");
                    self.failed.remove(&dir);
                    self.watched.insert(dir);
                }
                Err(error) => {
                    if self.failed.insert(dir.clone()) {
                        events.push(WardenEvent::WatchFailed {
                            dir,
                            error: error.to_string(),
                        });
                    }
                }
            }
        }
        events
    }
}

fn nearest_existing(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| d.is_dir())
        .unwrap_or(Path::new("/"))
        .to_owned()
}
