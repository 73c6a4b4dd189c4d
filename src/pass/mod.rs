//! One pass of the read path over Hermes homes: read the logs and auth.json, then run the pure
//! pipeline (scan, events, attribution, decisions). `scan` and `status` share it; only what
//! they print differs. Reading files is the only I/O, and it happens here.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::hermes::home::LogFile;
use crate::hermes::home::{Target, log_files_oldest_first};
use crate::hermes::semantics::Semantics;
use crate::hermes::version::{HermesVersion, VersionSource};
use crate::observe::events::{StateFile, StateFileTrouble, WardenEvent};
use crate::pool::attribute::{Attribution, Windows, attribute};
use crate::pool::compaction;
use crate::pool::decide::{PlannedAction, decide};
use crate::pool::snapshot::{self, AuthSnapshot};
use crate::read::event::{Event, drop_copies};
use crate::read::scanner::{LogScanner, ScanStats};
use crate::remediate::ledger::Ledger;
use crate::remediate::remedy::Policy;
use crate::rules::RuleSet;
use crate::shared::files;

/// Small enough that a chunk and its matches stay in the CPU caches.
const CHUNK_BYTES: usize = 256 << 10;

/// Everything a pass needs, validated once.
pub struct Settings {
    pub root: PathBuf,
    pub targets: Vec<Target>,
    pub rules: RuleSet,
    pub zone: TimeZone,
    pub hermes_version: Option<HermesVersion>,
    /// Where `hermes_version` came from (or why it is unknown).
    pub hermes_version_source: VersionSource,
    pub windows: Windows,
    pub max_line: usize,
    pub now: Timestamp,
    /// How dead marks are written (form, lock deadline).
    pub policy: Policy,
}

impl Settings {
    pub fn semantics(&self) -> Semantics {
        self.policy.semantics
    }

    pub fn now_seconds(&self) -> f64 {
        self.now.as_millisecond() as f64 / 1000.0
    }
}

/// What one home holds now.
pub struct HomeState {
    pub target: Target,
    pub snapshot: AuthSnapshot,
    pub compression_provider: Option<String>,
}

/// What was read from one log file.
pub struct FileStats {
    pub profile: Option<String>,
    pub file: String,
    pub stats: ScanStats,
}

/// A home that could not be read, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unreadable {
    pub profile: Option<String>,
    pub error: String,
}

pub struct Analysis {
    pub homes: Vec<HomeState>,
    /// Homes set aside because they could not be read (only with several homes).
    pub unreadable: Vec<Unreadable>,
    pub events: Vec<Event>,
    pub attributions: Vec<Attribution>,
    pub actions: Vec<PlannedAction>,
    pub files: Vec<FileStats>,
    /// The warden's ledger of dead marks and revivals.
    pub ledger: Ledger,
}

impl Analysis {
    /// Reads every home's auth.json and the ledger again, after the warden changed them.
    pub fn reread_state(&mut self, root: &Path) -> anyhow::Result<()> {
        for home in &mut self.homes {
            home.snapshot = snapshot::read(&home.target.auth_json())?;
        }
        self.ledger = read_ledger(root)?;
        Ok(())
    }

    pub fn snapshot_of(&self, profile: Option<&str>) -> &AuthSnapshot {
        snapshot_in(&self.homes, profile)
    }
}

/// The snapshot of `profile`'s home among `homes` (empty when it is not one of them).
pub fn snapshot_in<'h>(homes: &'h [HomeState], profile: Option<&str>) -> &'h AuthSnapshot {
    static EMPTY: AuthSnapshot = AuthSnapshot {
        active_provider: None,
        pools: Vec::new(),
    };
    homes
        .iter()
        .find(|home| home.target.profile.as_deref() == profile)
        .map_or(&EMPTY, |home| &home.snapshot)
}

/// Reads every selected home; with `read_logs` false only auth.json and config.yaml. With
/// several homes (`--all-profiles`), one that cannot be read is set aside in
/// [`Analysis::unreadable`] and the others go on; a single home that cannot be read is an error.
pub fn analyse(settings: &Settings, read_logs: bool) -> anyhow::Result<Analysis> {
    let mut homes = Vec::new();
    let mut unreadable = Vec::new();
    let mut events = Vec::new();
    let mut files = Vec::new();
    for target in &settings.targets {
        let (events_before, files_before) = (events.len(), files.len());
        let read = read_home(target).and_then(|home| {
            if read_logs {
                read_home_logs(settings, target, &mut events, &mut files)?;
            }
            Ok(home)
        });
        match read {
            Ok(home) => homes.push(home),
            Err(error) if settings.targets.len() > 1 => {
                events.truncate(events_before);
                files.truncate(files_before);
                tracing::error!(
                    profile = target.profile.as_deref(),
                    "{error:#}; the other homes go on"
                );
                unreadable.push(Unreadable {
                    profile: target.profile.clone(),
                    error: format!("{error:#}"),
                });
            }
            Err(error) => return Err(error),
        }
    }
    let events = drop_copies(events);
    let attributions = attribute(
        &events,
        |profile| snapshot_in(&homes, profile),
        settings.windows,
    );
    let ledger = read_ledger(&settings.root)?;
    let actions = decide(
        &events,
        &attributions,
        |profile| snapshot_in(&homes, profile),
        |profile, credential| ledger.revived_at(profile, &credential.provider, &credential.id),
        settings.semantics(),
        settings.now_seconds(),
    );
    Ok(Analysis {
        homes,
        unreadable,
        events,
        attributions,
        actions,
        files,
        ledger,
    })
}

/// One home's auth.json and config.yaml.
fn read_home(target: &Target) -> anyhow::Result<HomeState> {
    let snapshot = snapshot::read(&target.auth_json())?;
    let config_path = target.config_yaml();
    // Bounded, never blocking: a FIFO, a device or a directory, or a file over the limit, is an
    // error naming it.
    let config_text = match files::read_limited(&config_path, files::HERMES_CONFIG_LIMIT) {
        Ok(Some(bytes)) => Some(String::from_utf8(bytes).map_err(|_| {
            anyhow::anyhow!("{}: cannot read: not UTF-8 text", config_path.display())
        })?),
        Ok(None) => None,
        Err(error) => {
            return Err(files::without_path(error))
                .with_context(|| format!("{}: cannot read", config_path.display()));
        }
    };
    let compression_provider = compaction::compression_provider(config_text.as_deref(), &snapshot)
        .map_err(|error| anyhow::anyhow!("{}: {error}", config_path.display()))?;
    Ok(HomeState {
        target: target.clone(),
        snapshot,
        compression_provider,
    })
}

/// Scans one home's logs, backups oldest first.
fn read_home_logs(
    settings: &Settings,
    target: &Target,
    events: &mut Vec<Event>,
    files: &mut Vec<FileStats>,
) -> anyhow::Result<()> {
    for log in LogFile::ALL {
        for path in log_files_oldest_first(&target.logs(), log.name()) {
            let display = display_path(&settings.root, &path);
            let profile = target.profile.as_deref();
            let Some(stats) = scan_file(settings, profile, &path, &display, log, events)? else {
                continue;
            };
            files.push(FileStats {
                profile: target.profile.clone(),
                file: display,
                stats,
            });
        }
    }
    Ok(())
}

fn scan_file(
    settings: &Settings,
    profile: Option<&str>,
    path: &Path,
    display: &str,
    log: LogFile,
    events: &mut Vec<Event>,
) -> anyhow::Result<Option<ScanStats>> {
    let mut file = match files::open_regular(path) {
        Ok(Some((file, _))) => file,
        // Rotated away between listing and opening: its lines are in the next backup.
        Ok(None) => return Ok(Some(ScanStats::default())),
        // A FIFO, a device, a directory: never opened in a way that blocks, never read; the
        // other logs are.
        Err(error) if files::is_not_regular(&error) => {
            tracing::warn!("{error}; skipped, the other logs are read");
            return Ok(None);
        }
        Err(error) => {
            return Err(files::without_path(error))
                .with_context(|| format!("{}: cannot open", path.display()));
        }
    };
    let mut scanner = LogScanner::new(&settings.rules, log, settings.max_line);
    let mut buffer = vec![0; CHUNK_BYTES];
    let mut hits = Vec::new();
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if read == 0 {
            break;
        }
        // A line's hits come from one feed.
        scanner.feed(&buffer[..read], &mut hits);
        events.extend(Event::from_hits(
            &hits,
            profile,
            display,
            log,
            &settings.zone,
        ));
        hits.clear();
    }
    scanner.finish(&mut hits);
    events.extend(Event::from_hits(
        &hits,
        profile,
        display,
        log,
        &settings.zone,
    ));
    Ok(Some(scanner.stats()))
}

/// The ledger; one that cannot be read is rebuilt in memory from the audit log (and said so):
/// a pass only reads, and the next `scan --apply` or `watch` repairs the file.
fn read_ledger(root: &Path) -> anyhow::Result<Ledger> {
    let (ledger, problem) =
        Ledger::read(&StateFile::Ledger.path(root), &StateFile::Audit.path(root))?;
    if let Some(problem) = problem {
        crate::observe::log::log(&WardenEvent::StateFile(StateFileTrouble {
            file: StateFile::Ledger,
            problem,
            moved_to: None,
            rebuilt: "rebuilt in memory from the audit log".into(),
        }));
    }
    Ok(ledger)
}

fn display_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}
