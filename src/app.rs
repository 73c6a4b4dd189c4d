//! The commands: flags in, validated settings built once, the shared pipeline run, output out.
//!
//! Exit status is decided here and nowhere else: 0 success, 1 runtime failure, 2 bad usage,
//! bad configuration or bad rules, 3 `scan --fail-on` found what it was told to fail on (a
//! runtime failure wins over it).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::cli::{Cli, Command, FailOn, GlobalArgs, RulesCommand, ScanFormat, StatusFormat};
use crate::config::{self, WardenConfig};
use crate::hermes::home::{self, LogFile};
use crate::hermes::version::{self, HermesVersion, VersionSource};
use crate::observe::audit::{AuditLog, Reach};
use crate::observe::events::{StateFile, WardenEvent};
use crate::observe::log::log;
use crate::observe::metrics::{CredentialState, Metrics};
use crate::observe::report;
use crate::pass::{self, Analysis, Settings, snapshot_in};
use crate::read::scanner::{Hit, LogScanner, ScanStats};
use crate::remediate::remedy::{Policy, Remedy};
use crate::rules::{self, RuleSet, RuleSource};
use crate::shared::secrets::scrub;
use crate::watch::{self, WatchOptions};

/// A failure and the exit status it means.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    fn usage(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 2,
            error: error.into(),
        }
    }

    fn runtime(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 1,
            error: error.into(),
        }
    }

    /// `scan --fail-on` found what it was told to fail on.
    fn matched(error: anyhow::Error) -> Self {
        Failure { code: 3, error }
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    let level = match cli.global.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    // The daemon's start line is shown at the default verbosity too: it says where to look.
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target(watch::START_TARGET, level.max(tracing::Level::INFO));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false),
        )
        .with(filter)
        .init();
    let root = home::root(cli.global.hermes_home.as_deref()).map_err(Failure::usage)?;
    match &cli.command {
        Command::Rules(_) => {}
        Command::Watch {
            wait_for_home: true,
            ..
        } => {
            if !wait_for_home(&root) {
                return Ok(());
            }
        }
        _ => require_home(&root)?,
    }
    let config = load_config(&cli.global, &root)?;
    let rules = load_rules(&cli.global, &root)?;
    match cli.command {
        Command::Rules(RulesCommand::Check) => rules_check(&rules),
        Command::Rules(RulesCommand::Test { input, log }) => {
            rules_test(&rules, &input, log, config.max_line_bytes)
        }
        Command::Scan {
            format,
            apply,
            events,
            fail_on,
        } => {
            let settings = settings(&cli.global, root, rules, &config)?;
            let view = match events {
                true => report::View::Events,
                false => report::View::Failures,
            };
            scan(&settings, format, view, apply, fail_on)
        }
        Command::Revive {
            provider,
            credential,
        } => {
            let settings = settings(&cli.global, root, rules, &config)?;
            revive(&settings, &provider, &credential)
        }
        Command::Watch {
            dry_run,
            listen: _,
            poll_interval,
            wait_for_home: _,
            textfile,
        } => {
            let options = |config: &WardenConfig| WatchOptions {
                dry_run,
                textfile: textfile.clone(),
                poll_interval: Duration::from_secs_f64(
                    poll_interval.unwrap_or(config.poll_interval_seconds),
                ),
                drain_grace: Duration::from_secs_f64(config.drain_grace_seconds),
                all_profiles: cli.global.all_profiles,
            };
            let initial = settings(&cli.global, root.clone(), rules, &config)?;
            // SIGHUP: everything again, from the files, with the same flags.
            let reload = || -> anyhow::Result<(Settings, WatchOptions)> {
                let config = load_config(&cli.global, &root).map_err(|f| f.error)?;
                let rules = load_rules(&cli.global, &root).map_err(|f| f.error)?;
                let settings =
                    settings(&cli.global, root.clone(), rules, &config).map_err(|f| f.error)?;
                Ok((settings, options(&config)))
            };
            watch::run(initial, options(&config), &reload).map_err(Failure::runtime)
        }
        Command::Status { format } => {
            let settings = settings(&cli.global, root, rules, &config)?;
            status(&settings, format)
        }
    }
}

/// A Hermes home that does not exist is a mistake (a typo in `--hermes-home`, Hermes not
/// installed): said, and nothing is created.
fn require_home(root: &Path) -> Result<(), Failure> {
    match root.is_dir() {
        true => Ok(()),
        false => Err(Failure::usage(anyhow::anyhow!(
            "{}: no Hermes home here (give --hermes-home DIR or set $HERMES_HOME; `watch \
             --wait-for-home` waits for one)",
            root.display()
        ))),
    }
}

/// `watch --wait-for-home`: waits until the home exists; false when SIGTERM or SIGINT came
/// first (a clean stop).
fn wait_for_home(root: &Path) -> bool {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let registered: Vec<_> = [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT]
        .into_iter()
        .filter_map(|signal| signal_hook::flag::register(signal, Arc::clone(&stop)).ok())
        .collect();
    if !root.is_dir() {
        tracing::warn!(home = %root.display(), "waiting for the Hermes home to appear");
    }
    while !root.is_dir() && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
    }
    for id in registered {
        signal_hook::low_level::unregister(id);
    }
    !stop.load(Ordering::Relaxed)
}

fn load_config(global: &GlobalArgs, root: &Path) -> Result<WardenConfig, Failure> {
    config::load(&config_path(global, root), global.config.is_some()).map_err(Failure::usage)
}

/// `--config FILE`, else `<home>/warden.toml`.
fn config_path(global: &GlobalArgs, root: &Path) -> PathBuf {
    global
        .config
        .clone()
        .unwrap_or_else(|| root.join("warden.toml"))
}

fn load_rules(global: &GlobalArgs, root: &Path) -> Result<RuleSet, Failure> {
    let mut sources = rules::builtin_sources();
    sources.extend(rule_files(&root.join("warden").join("rules.d"), 1, false)?);
    if let Some(dir) = &global.rules {
        sources.extend(rule_files(dir, 2, true)?);
    }
    rules::load_rule_set(&sources).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Failure::usage(anyhow::anyhow!("invalid rules:\n{}", lines.join("\n")))
    })
}

/// The `*.toml` files of `dir` in name order; a missing directory is fine unless `required`.
fn rule_files(dir: &Path, layer: u8, required: bool) -> Result<Vec<RuleSource>, Failure> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Vec::new());
        }
        Err(error) => {
            return Err(Failure::usage(anyhow::anyhow!(
                "{}: {error}",
                dir.display()
            )));
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            // Bounded, never blocking: a FIFO, a device or a directory named `*.toml`, or a
            // file over the limit, is an error naming it. One gone since the listing is skipped.
            let bytes = match crate::shared::files::read_limited(
                &path,
                crate::shared::files::RULE_FILE_LIMIT,
            ) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => return None,
                Err(error) => return Some(Err(Failure::usage(error))),
            };
            let text = match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    return Some(Err(Failure::usage(anyhow::anyhow!(
                        "{}: not UTF-8 text",
                        path.display()
                    ))));
                }
            };
            Some(Ok(RuleSource {
                name: path.display().to_string(),
                text,
                layer,
            }))
        })
        .collect()
}

fn settings(
    global: &GlobalArgs,
    root: PathBuf,
    rules: RuleSet,
    config: &WardenConfig,
) -> Result<Settings, Failure> {
    let targets = home::targets(&root, global.profile.as_deref(), global.all_profiles)
        .map_err(Failure::usage)?;
    let zone = match global.tz.as_deref().or(config.timezone.as_deref()) {
        Some(name) => TimeZone::get(name)
            .with_context(|| format!("unknown time zone {name:?}"))
            .map_err(Failure::usage)?,
        None => TimeZone::system(),
    };
    let (hermes_version, hermes_version_source) = hermes_version(global, root.as_path(), config)?;
    if let Some(warning) = hermes_version.and_then(HermesVersion::untested_warning) {
        tracing::warn!("{warning}");
    }
    let policy = Policy::for_hermes(
        hermes_version,
        config.mark_as,
        Duration::from_secs_f64(config.lock_timeout_seconds),
    )
    .map_err(|refused| {
        Failure::usage(anyhow::anyhow!(
            "{}: {refused}",
            config_path(global, &root).display()
        ))
    })?;
    let now = match &global.now {
        Some(text) => text
            .parse::<Timestamp>()
            .with_context(|| format!("{text:?} is not an RFC 3339 time"))
            .map_err(Failure::usage)?,
        None => Timestamp::now(),
    };
    Ok(Settings {
        root,
        targets,
        rules,
        zone,
        hermes_version,
        hermes_version_source,
        windows: config.windows(),
        max_line: config.max_line_bytes,
        now,
        policy,
    })
}

/// The Hermes version to assume and where it came from: `--hermes-version`, else
/// `hermes_version` in the configuration, else what the installed program says.
fn hermes_version(
    global: &GlobalArgs,
    root: &Path,
    config: &WardenConfig,
) -> Result<(Option<HermesVersion>, VersionSource), Failure> {
    let (text, source) = match (&global.hermes_version, &config.hermes_version) {
        (Some(text), _) => (text, VersionSource::Flag),
        (None, Some(text)) => (text, VersionSource::ConfigFile(config_path(global, root))),
        (None, None) => {
            let found = version::detect(config.hermes_bin.as_deref());
            return Ok((found.version, found.source));
        }
    };
    let version = HermesVersion::parse(text)
        .with_context(|| format!("{text:?} is not a Hermes version"))
        .map_err(Failure::usage)?;
    Ok((Some(version), source))
}

fn scan(
    settings: &Settings,
    format: ScanFormat,
    view: report::View,
    apply: bool,
    fail_on: Option<FailOn>,
) -> Result<(), Failure> {
    let remedy = match apply {
        true => Some(open_remedy(settings).map_err(Failure::runtime)?),
        false => None,
    };
    let mut analysis = pass::analyse(settings, true).map_err(Failure::runtime)?;
    if let Some((remedy, recorder)) = remedy {
        apply_actions(settings, &remedy, recorder, &mut analysis).map_err(Failure::runtime)?;
    }
    let report = report::build(settings, &analysis);
    match format {
        ScanFormat::Table => print(&report::to_table(&report, view)),
        ScanFormat::Json => emit(|out| report::write_json(&report, out)),
        ScanFormat::Markdown => print(&report::to_markdown(&report, view)),
    }?;
    // After the report, which says which and why: an action that failed is a runtime failure.
    if report.summary.failed > 0 {
        return Err(Failure::runtime(anyhow::anyhow!(
            "{} of {} actions failed; their marks stay in the ledger and are retried",
            report.summary.failed,
            report.actions.len()
        )));
    }
    unreadable_homes(&report)?;
    fail_on.map_or(Ok(()), |kind| check_fail_on(&report, kind))
}

/// `scan --fail-on KIND`: exit 3 when the report holds something of that kind, saying what.
fn check_fail_on(report: &report::Report, kind: FailOn) -> Result<(), Failure> {
    let dead = report.dead_credentials();
    let at_risk = report.summary.compaction_at_risk;
    let failures = report.summary.credential_failures;
    let (matched, what) = match kind {
        FailOn::Dead => (
            dead > 0,
            format!("dead: {dead} credentials dead or to be marked dead"),
        ),
        FailOn::AtRisk => (
            at_risk > 0,
            format!("at-risk: {at_risk} compaction providers at risk"),
        ),
        FailOn::Any => (
            dead + at_risk + failures > 0,
            format!(
                "any: {failures} credential failures, {dead} credentials dead or to be marked \
                 dead, {at_risk} compaction providers at risk"
            ),
        ),
    };
    match matched {
        true => Err(Failure::matched(anyhow::anyhow!("--fail-on {what}"))),
        false => Ok(()),
    }
}

/// After the report: homes that could not be read make the run a runtime failure.
fn unreadable_homes(report: &report::Report) -> Result<(), Failure> {
    if report.unreadable_homes.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = report
        .unreadable_homes
        .iter()
        .map(|home| home.profile.as_deref().unwrap_or("(root)"))
        .collect();
    Err(Failure::runtime(anyhow::anyhow!(
        "could not read {}; the other homes were read",
        names.join(", ")
    )))
}

/// `scan --apply`: every action carried out, the ledger reconciled with each home, and what
/// changed recorded in the audit log.
fn apply_actions(
    settings: &Settings,
    remedy: &Remedy,
    mut recorder: Recorder,
    analysis: &mut Analysis,
) -> anyhow::Result<()> {
    let outcome = remedy.apply(
        // Only the homes that could be read: the others are reported, never written.
        &analysis
            .homes
            .iter()
            .map(|home| home.target.clone())
            .collect::<Vec<_>>(),
        &analysis.actions,
        &analysis.events,
        |profile| snapshot_in(&analysis.homes, profile),
        settings.now,
    )?;
    for (action, result) in analysis.actions.iter_mut().zip(outcome.results) {
        action.result = result;
    }
    recorder.record(&outcome.events)?;
    analysis.reread_state(&settings.root)
}

/// The remedy, with a broken ledger repaired and the journal's gaps filled (and reported)
/// before anything reads them.
fn open_remedy(settings: &Settings) -> anyhow::Result<(Remedy, Recorder)> {
    let remedy = Remedy::open(&settings.root, settings.policy)?;
    let (audit, torn) = AuditLog::open(&StateFile::Audit.path(&settings.root), Reach::Recent)?;
    let mut recorder = Recorder {
        audit,
        now: settings.now,
    };
    let mut events: Vec<WardenEvent> = torn.into_iter().collect();
    remedy.journal_gaps(&recorder.audit, &mut events)?;
    recorder.record(&events)?;
    Ok((remedy, recorder))
}

/// A one-shot command's sinks, opened once: its log on stderr and the audit log.
struct Recorder {
    audit: AuditLog,
    now: Timestamp,
}

impl Recorder {
    fn record(&mut self, events: &[WardenEvent]) -> anyhow::Result<()> {
        events.iter().for_each(log);
        Ok(self.audit.record(events, self.now)?)
    }
}

fn revive(settings: &Settings, provider: &str, name: &str) -> Result<(), Failure> {
    let [target] = settings.targets.as_slice() else {
        return Err(Failure::usage(anyhow::anyhow!(
            "revive works on one home: use --profile NAME for a profile, not --all-profiles"
        )));
    };
    let (remedy, mut recorder) = open_remedy(settings).map_err(Failure::runtime)?;
    let mut events = Vec::new();
    let revived = remedy.revive(target, provider, name, settings.now, &mut events);
    let revived = revived.map_err(Failure::runtime);
    if let Ok(revived) = &revived {
        events.push(WardenEvent::Revived(revived.clone()));
    }
    recorder.record(&events).map_err(Failure::runtime)?;
    let revived = revived?;
    print(&format!(
        "revived {provider}/{}{}: status cleared, dead mark dropped\n",
        revived.credential_id,
        revived
            .label
            .map(|label| format!(" ({label})"))
            .unwrap_or_default()
    ))
}

fn status(settings: &Settings, format: StatusFormat) -> Result<(), Failure> {
    let analysis = pass::analyse(settings, false).map_err(Failure::runtime)?;
    let report = report::build(settings, &analysis);
    match format {
        StatusFormat::Table => print(&report::to_table(&report, report::View::Pools)),
        StatusFormat::Json => emit(|out| report::write_json(&report, out)),
        StatusFormat::Prometheus => print(
            &Metrics::states()
                .and_then(|metrics| {
                    metrics.set_states(&CredentialState::of_report(&report));
                    metrics.set_compaction(&report.compaction);
                    metrics.text()
                })
                .map_err(|error| Failure::runtime(anyhow::anyhow!("metrics: {error}")))?,
        ),
    }?;
    unreadable_homes(&report)
}

fn rules_check(rules: &RuleSet) -> Result<(), Failure> {
    let (failures, samples) = rules::check_samples(rules);
    for failure in &failures {
        eprintln!("{failure}");
    }
    if !failures.is_empty() {
        return Err(Failure::usage(anyhow::anyhow!(
            "{} of {samples} samples failed",
            failures.len()
        )));
    }
    print(&format!(
        "{} rules, {samples} samples: all passed\n",
        rules.rules().len()
    ))
}

fn rules_test(rules: &RuleSet, input: &str, log: LogFile, max_line: usize) -> Result<(), Failure> {
    let reader: Box<dyn Read> = if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(input)
                .with_context(|| format!("{input}: cannot open"))
                .map_err(Failure::usage)?,
        )
    };
    let mut scanner = LogScanner::new(rules, log, max_line);
    let hits = scan_all(&mut scanner, reader)
        .with_context(|| format!("{input}: cannot read"))
        .map_err(Failure::runtime)?;
    let mut out: String = hits.iter().map(describe_hit).collect();
    out.push_str(&rules_test_summary(rules, &hits, scanner.stats(), max_line));
    print(&out)
}

/// Every hit in what `reader` gives.
fn scan_all<'r>(
    scanner: &mut LogScanner<'r>,
    mut reader: impl Read,
) -> std::io::Result<Vec<Hit<'r>>> {
    let mut hits = Vec::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        scanner.feed(&buffer[..read], &mut hits);
    }
    scanner.finish(&mut hits);
    Ok(hits)
}

/// What one rule found on one line, with its captures (scrubbed, then shortened).
fn describe_hit(hit: &Hit<'_>) -> String {
    let fields = &hit.matched.fields;
    let captures: Vec<String> = fields
        .captures
        .iter()
        .map(|(name, value)| format!("{name}={}", shorten(value)))
        .collect();
    let rule = hit.matched.rule;
    format!(
        "line {}: {} -> {} (action {}, severity {})\n    status={} reason={} captures: {}\n",
        hit.line,
        rule.id,
        rule.kind.as_str(),
        rule.action.as_str(),
        format!("{:?}", rule.severity).to_lowercase(),
        fields.status.map_or("-".into(), |s| s.to_string()),
        fields.reason.as_deref().map_or("-".into(), shorten),
        if captures.is_empty() {
            "-".into()
        } else {
            captures.join(" ")
        },
    )
}

/// Lines matched and missed, and how often each rule matched (like fail2ban-regex).
fn rules_test_summary(
    rules: &RuleSet,
    hits: &[Hit<'_>],
    stats: ScanStats,
    max_line: usize,
) -> String {
    let matched_lines: std::collections::BTreeSet<u64> = hits.iter().map(|hit| hit.line).collect();
    let mut out = format!(
        "\nLines: {} lines, {} matched, {} not matched ({} candidate lines held a rule's literal)\n",
        stats.lines,
        matched_lines.len(),
        stats.lines - matched_lines.len() as u64,
        stats.candidate_lines,
    );
    if stats.cut_lines > 0 {
        out.push_str(&format!(
            "       {} lines longer than {max_line} bytes were cut\n",
            stats.cut_lines
        ));
    }
    out.push_str("Rules:\n");
    for rule in rules.rules() {
        let count = hits
            .iter()
            .filter(|hit| hit.matched.rule.id == rule.id)
            .count();
        out.push_str(&format!("  {count:>7}  {}\n", rule.id));
    }
    out
}

/// Text from a log, fit to print: scrubbed of secrets, then cut to 120 characters. In this
/// order and only here: a token cut in half is no longer recognised as one.
fn shorten(text: &str) -> String {
    const MAX: usize = 120;
    let text = scrub(text);
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.into_owned(),
    }
}

fn print(text: &str) -> Result<(), Failure> {
    emit(|out| out.write_all(text.as_bytes()))
}

/// Writes to a buffered stdout; a reader that went away (`| head`) is not an error.
fn emit(
    write: impl FnOnce(&mut std::io::BufWriter<std::io::StdoutLock>) -> std::io::Result<()>,
) -> Result<(), Failure> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(Failure::runtime(error)),
    }
}
