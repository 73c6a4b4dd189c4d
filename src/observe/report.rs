//! Reports of a pass: the contract's JSON, a terminal table, and markdown for bug reports.
//!
//! The JSON keys are a contract shared with dashboards and outside checks (see the design
//! notes). Every text that came from a log or auth.json (providers, ids, labels, sources,
//! reasons, sessions, fingerprints) goes through `secrets::scrub` when its row is built, before
//! anything can cut it; secrets themselves never reach this module. File names, `file:line`
//! evidence and profile names are the warden's own.
//!
//! The text reports answer "what is wrong and what will be done" first: one row per credential
//! with failures (its state, how often and how long it failed, the strongest evidence, the
//! action), then the pools and the compaction risk, then a count of the informational events;
//! `scan --events` lists every event and action as well. The JSON holds everything.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::hermes::semantics::State;
use crate::hermes::version::VersionHow;
use crate::pass::{Analysis, Settings, Unreadable};
use crate::pool::attribute::{Attribution, AttributionKind, CredentialRef};
use crate::pool::compaction::{self, CompactionRisk};
use crate::pool::decide::ActionResult;
use crate::pool::snapshot::PoolEntry;
use crate::remediate::ledger::Ledger;
use crate::rules::{Action, FindingKind};
use crate::shared::secrets::scrub;

#[derive(Debug, Serialize)]
pub struct Report {
    pub hermes_home: String,
    pub generated_at: String,
    pub hermes_version: Option<String>,
    /// Why that version was assumed.
    pub hermes_version_source: VersionSourceRow,
    pub warden_version: &'static str,
    /// One row per credential with failures (empty for `status`, which reads no logs).
    pub failing_credentials: Vec<FailingCredentialRow>,
    pub events: Vec<EventRow>,
    pub actions: Vec<ActionRow>,
    pub credentials: Vec<CredentialRow>,
    pub compaction: Vec<CompactionRisk>,
    pub files: Vec<FileRow>,
    /// Homes that could not be read (with `--all-profiles`; the others were reported).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable_homes: Vec<Unreadable>,
    pub summary: Summary,
}

/// Where the assumed Hermes version came from, and what follows from it.
#[derive(Debug, Serialize)]
pub struct VersionSourceRow {
    pub how: VersionHow,
    /// `--hermes-version`, `hermes_version in FILE`, the program read, or `PATH (...)`.
    pub from: String,
    /// Why the version is unknown, if it is, and the form dead marks take.
    pub note: String,
    /// Set when the version is newer than the newest the warden was tested with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// A credential with failures: what is wrong with it and what is done about it.
#[derive(Debug, Serialize)]
pub struct FailingCredentialRow {
    pub profile: Option<String>,
    pub provider: String,
    pub credential_id: String,
    pub label: Option<String>,
    /// Its state in auth.json as the installed Hermes sees it (null: unknown).
    pub state: Option<State>,
    pub reason: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// How many times it failed: its events that are credential failures (a line several
    /// rules matched is one), a marking line and the payload line paired with it being one.
    pub failures: usize,
    /// `file:line` of the strongest evidence: the strongest kind (a terminal failure over a
    /// marking), then named over correlated, then the latest.
    pub evidence: String,
    pub evidence_kind: FindingKind,
    pub evidence_attribution: AttributionKind,
    /// The action decided for it, and its result; null when none (a failure that may recover).
    pub action: Option<Action>,
    pub result: Option<ActionResult>,
}

#[derive(Debug, Serialize)]
pub struct EventRow {
    pub file: String,
    pub line: u64,
    pub timestamp: Option<String>,
    pub rule: String,
    pub kind: FindingKind,
    /// The other kinds the line has (other rules matched it too); left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub facets: Vec<FindingKind>,
    pub provider: Option<String>,
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub profile: Option<String>,
    pub session: Option<String>,
    pub credential: Option<CredentialRef>,
    pub attribution: AttributionKind,
    /// The line that named the credential, for a pairing.
    pub named_by: Option<String>,
    /// Why an event is unattributed.
    pub unattributed_because: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ActionRow {
    pub profile: Option<String>,
    pub provider: String,
    pub credential_id: String,
    pub label: Option<String>,
    pub action: Action,
    pub rule: String,
    pub reason: Option<String>,
    pub result: ActionResult,
    /// `file:line` of the event that decided it.
    pub evidence: String,
}

#[derive(Debug, Serialize)]
pub struct CredentialRow {
    pub profile: Option<String>,
    pub provider: String,
    pub id: String,
    pub label: Option<String>,
    pub source: Option<String>,
    pub state: Option<State>,
    pub reason: Option<String>,
    pub since: Option<String>,
    pub available_in_seconds: Option<u64>,
    pub fingerprint: Option<String>,
    /// What the warden did to it, from the ledger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warden: Option<WardenNote>,
}

/// What the warden did to a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WardenAction {
    /// The mark is in auth.json.
    KeptDead,
    /// The mark is in the ledger, not written yet.
    Pending,
    Revived,
}

impl WardenAction {
    fn as_str(self) -> &'static str {
        match self {
            WardenAction::KeptDead => "kept_dead",
            WardenAction::Pending => "pending",
            WardenAction::Revived => "revived",
        }
    }
}

/// The ledger's word on a credential.
#[derive(Debug, Serialize)]
pub struct WardenNote {
    pub action: WardenAction,
    pub since: String,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub reverts: u64,
}

fn is_zero_u64(count: &u64) -> bool {
    *count == 0
}

impl WardenNote {
    fn of(
        ledger: &Ledger,
        profile: Option<&str>,
        provider: &str,
        entry: &PoolEntry,
    ) -> Option<Self> {
        if let Some(index) = ledger.find(profile, provider, entry) {
            let mark = &ledger.marks[index];
            return Some(match &mark.applied_at {
                Some(at) => WardenNote {
                    action: WardenAction::KeptDead,
                    since: at.clone(),
                    reverts: mark.reverts,
                },
                None => WardenNote {
                    action: WardenAction::Pending,
                    since: mark.recorded_at.clone(),
                    reverts: mark.reverts,
                },
            });
        }
        ledger
            .revived
            .iter()
            .find(|r| {
                r.profile.as_deref() == profile
                    && r.provider == provider
                    && r.credential_id == entry.id
            })
            .map(|revival| WardenNote {
                action: WardenAction::Revived,
                since: revival.revived_at.clone(),
                reverts: 0,
            })
    }

    fn describe(&self) -> String {
        match self.reverts {
            0 => format!("{} {}", self.action.as_str(), self.since),
            n => format!("{} {} ({n} reverts)", self.action.as_str(), self.since),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FileRow {
    pub profile: Option<String>,
    pub file: String,
    pub lines: u64,
    pub bytes: u64,
    pub cut_lines: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub events: usize,
    pub credential_failures: usize,
    pub unattributed_failures: usize,
    pub compaction_failures: usize,
    pub would_apply: usize,
    pub already_dead: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub applied: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub failed: usize,
    pub compaction_at_risk: usize,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

pub fn build(settings: &Settings, analysis: &Analysis) -> Report {
    let zone = &settings.zone;
    let events = event_rows(analysis, zone);
    let actions = action_rows(analysis);
    let (credentials, compaction) = pool_rows(settings, analysis);
    let summary = summarise(&events, &actions, &compaction);
    Report {
        hermes_home: settings.root.display().to_string(),
        generated_at: format_time(settings.now, zone),
        hermes_version: settings.hermes_version.map(|v| v.to_string()),
        hermes_version_source: version_source_row(settings),
        warden_version: env!("CARGO_PKG_VERSION"),
        failing_credentials: failing_rows(&events, &actions, &credentials),
        events,
        actions,
        credentials,
        compaction,
        files: analysis
            .files
            .iter()
            .map(|f| FileRow {
                profile: f.profile.clone(),
                file: f.file.clone(),
                lines: f.stats.lines,
                bytes: f.stats.bytes,
                cut_lines: f.stats.cut_lines,
            })
            .collect(),
        unreadable_homes: analysis
            .unreadable
            .iter()
            .map(|home| Unreadable {
                profile: home.profile.clone(),
                error: clean(&home.error),
            })
            .collect(),
        summary,
    }
}

fn version_source_row(settings: &Settings) -> VersionSourceRow {
    let source = &settings.hermes_version_source;
    let form = settings.policy.form.describe();
    VersionSourceRow {
        how: source.how(),
        from: source.from(),
        note: match source.unknown_because() {
            Some(why) => format!("{why}; {form}"),
            None => form,
        },
        warning: settings
            .hermes_version
            .and_then(|version| version.untested_warning()),
    }
}

/// The credential an event is a failure of; `None` for an informational event (not a
/// credential failure, or pinned to no credential).
fn failure_of(event: &EventRow) -> Option<&CredentialRef> {
    event
        .kind
        .is_credential_failure()
        .then_some(event.credential.as_ref())
        .flatten()
}

/// One row per credential with failures, in the order they first failed (events are ordered
/// by profile and time), built from the rows already scrubbed.
fn failing_rows(
    events: &[EventRow],
    actions: &[ActionRow],
    credentials: &[CredentialRow],
) -> Vec<FailingCredentialRow> {
    type Key<'r> = (&'r Option<String>, &'r str, &'r str);
    let paired = paired_markings(events);
    let mut index: HashMap<Key<'_>, usize> = HashMap::new();
    let mut groups: Vec<(&CredentialRef, Vec<&EventRow>)> = Vec::new();
    for event in events {
        let Some(credential) = failure_of(event) else {
            continue;
        };
        let key = (
            &event.profile,
            credential.provider.as_str(),
            credential.id.as_str(),
        );
        let at = *index.entry(key).or_insert_with(|| {
            groups.push((credential, Vec::new()));
            groups.len() - 1
        });
        groups[at].1.push(event);
    }
    groups
        .into_iter()
        .map(|(credential, failures)| {
            let profile = &failures[0].profile;
            let strength = |(at, event): &(usize, &&EventRow)| {
                let attribution = match event.attribution {
                    AttributionKind::Named => 0,
                    _ => 1,
                };
                (event.kind.rank(), attribution, Reverse(*at))
            };
            let (_, strongest) = failures
                .iter()
                .enumerate()
                .min_by_key(strength)
                .expect("a group has an event");
            let same = |p: &Option<String>, provider: &str, id: &str| {
                p == profile && provider == credential.provider && id == credential.id
            };
            let pool_entry = credentials
                .iter()
                .find(|c| same(&c.profile, &c.provider, &c.id));
            let action = actions
                .iter()
                .find(|a| same(&a.profile, &a.provider, &a.credential_id));
            FailingCredentialRow {
                profile: profile.clone(),
                provider: credential.provider.clone(),
                credential_id: credential.id.clone(),
                label: pool_entry
                    .and_then(|c| c.label.clone())
                    .or_else(|| credential.label.clone()),
                state: pool_entry.and_then(|c| c.state),
                reason: strongest
                    .reason
                    .clone()
                    .or_else(|| failures.iter().rev().find_map(|e| e.reason.clone())),
                first_seen: failures.iter().find_map(|e| e.timestamp.clone()),
                last_seen: failures.iter().rev().find_map(|e| e.timestamp.clone()),
                failures: failures
                    .iter()
                    .filter(|e| counted_failure(e, &paired))
                    .count(),
                evidence: format!("{}:{}", strongest.file, strongest.line),
                evidence_kind: strongest.kind,
                evidence_attribution: strongest.attribution,
                action: action.map(|a| a.action),
                result: action.map(|a| a.result),
            }
        })
        .collect()
}

/// Every event with its attribution, ordered by profile, time, file and line.
fn event_rows(analysis: &Analysis, zone: &TimeZone) -> Vec<EventRow> {
    let mut events: Vec<(Option<f64>, EventRow)> = analysis
        .events
        .iter()
        .zip(&analysis.attributions)
        .map(|(event, attribution)| {
            let row = EventRow {
                file: event.file.clone(),
                line: event.line,
                timestamp: event
                    .time
                    .as_ref()
                    .map(|time| format_time(time.timestamp(), zone)),
                rule: event.rule.clone(),
                kind: event.kind,
                facets: event.facets.clone(),
                provider: event
                    .provider
                    .as_deref()
                    .or_else(|| attribution.credential().map(|c| c.provider.as_str()))
                    .map(clean),
                status: event.status,
                reason: event.reason.as_deref().map(clean),
                profile: event.profile.clone(),
                session: event.session.as_deref().map(clean),
                credential: attribution.credential().map(scrubbed_ref),
                attribution: attribution.kind(),
                // `file:line` of the naming line: the warden's own words.
                named_by: match attribution {
                    Attribution::Named { via, .. } => via.clone(),
                    _ => None,
                },
                unattributed_because: match attribution {
                    Attribution::Unattributed { why } => Some(clean(why)),
                    _ => None,
                },
            };
            (event.epoch_seconds(), row)
        })
        .collect();
    events.sort_by(|(a_time, a), (b_time, b)| {
        (&a.profile, a_time.unwrap_or(f64::MIN), &a.file, a.line)
            .partial_cmp(&(&b.profile, b_time.unwrap_or(f64::MIN), &b.file, b.line))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    events.into_iter().map(|(_, row)| row).collect()
}

fn action_rows(analysis: &Analysis) -> Vec<ActionRow> {
    analysis
        .actions
        .iter()
        .map(|action| {
            let event = &analysis.events[action.event];
            ActionRow {
                profile: action.profile.clone(),
                provider: clean(&action.credential.provider),
                credential_id: clean(&action.credential.id),
                label: action.credential.label.as_deref().map(clean),
                action: Action::MarkDead,
                rule: action.rule.clone(),
                reason: action.reason.as_deref().map(clean),
                result: action.result,
                evidence: format!("{}:{}", event.file, event.line),
            }
        })
        .collect()
}

/// Every credential of every pool as Hermes sees it now, and each home's compaction risk.
fn pool_rows(
    settings: &Settings,
    analysis: &Analysis,
) -> (Vec<CredentialRow>, Vec<CompactionRisk>) {
    let now = settings.now_seconds();
    let semantics = settings.semantics();
    let mut credentials = Vec::new();
    let mut compaction = Vec::new();
    for home in &analysis.homes {
        let profile = home.target.profile.as_deref();
        for pool in &home.snapshot.pools {
            for entry in &pool.entries {
                let state = semantics.availability(entry, now);
                credentials.push(CredentialRow {
                    profile: profile.map(str::to_owned),
                    provider: clean(&pool.provider),
                    id: clean(&entry.id),
                    label: entry.label.as_deref().map(clean),
                    source: entry.source.as_deref().map(clean),
                    state: state.state,
                    reason: state.reason.as_deref().map(clean),
                    since: state
                        .since
                        .and_then(|at| Timestamp::from_millisecond((at * 1000.0) as i64).ok())
                        .map(|t| format_time(t, &settings.zone)),
                    available_in_seconds: state.available_in_seconds.map(|s| s.ceil() as u64),
                    // Computed, or the entry's own `secret_fingerprint`: text from auth.json.
                    fingerprint: entry.fingerprint.as_deref().map(clean),
                    warden: WardenNote::of(&analysis.ledger, profile, &pool.provider, entry),
                });
            }
        }
        if let Some(provider) = &home.compression_provider {
            let risk = compaction::risk(profile, provider, &home.snapshot, semantics, now);
            compaction.push(CompactionRisk {
                provider: clean(&risk.provider),
                ..risk
            });
        }
    }
    (credentials, compaction)
}

impl Report {
    /// How many credentials are dead in auth.json or are, were or would be marked dead.
    pub fn dead_credentials(&self) -> usize {
        let dead = self
            .credentials
            .iter()
            .filter(|c| c.state == Some(State::Dead))
            .map(|c| (&c.profile, &c.provider, &c.id));
        let marked = self
            .actions
            .iter()
            .map(|a| (&a.profile, &a.provider, &a.credential_id));
        dead.chain(marked).collect::<BTreeSet<_>>().len()
    }
}

/// The `file:line` of the marking lines a payload line was paired with: a marking and its
/// payload are one failure, counted once.
fn paired_markings(events: &[EventRow]) -> HashSet<&str> {
    events
        .iter()
        .filter_map(|event| event.named_by.as_deref())
        .collect()
}

/// Whether `event` counts as a failure: a credential failure, unless it is a marking line a
/// payload was paired with.
fn counted_failure(event: &EventRow, paired: &HashSet<&str>) -> bool {
    event.kind.is_credential_failure()
        && !paired.contains(format!("{}:{}", event.file, event.line).as_str())
}

fn summarise(events: &[EventRow], actions: &[ActionRow], compaction: &[CompactionRisk]) -> Summary {
    let paired = paired_markings(events);
    let failures = || events.iter().filter(|e| counted_failure(e, &paired));
    let results = |result| actions.iter().filter(|a| a.result == result).count();
    Summary {
        events: events.len(),
        credential_failures: failures().count(),
        unattributed_failures: failures()
            .filter(|e| e.attribution == AttributionKind::Unattributed)
            .count(),
        compaction_failures: events
            .iter()
            .filter(|e| {
                e.kind == FindingKind::CompactionFailure
                    || e.facets.contains(&FindingKind::CompactionFailure)
            })
            .count(),
        would_apply: results(ActionResult::WouldApply),
        already_dead: results(ActionResult::AlreadyDead),
        applied: results(ActionResult::Applied),
        failed: results(ActionResult::Failed),
        compaction_at_risk: compaction.iter().filter(|c| c.at_risk).count(),
    }
}

fn scrubbed_ref(credential: &CredentialRef) -> CredentialRef {
    CredentialRef {
        provider: clean(&credential.provider),
        id: clean(&credential.id),
        label: credential.label.as_deref().map(clean),
    }
}

/// Text from a log or auth.json, scrubbed of anything token-like: fit to be shown.
fn clean(text: &str) -> String {
    scrub(text).into_owned()
}

fn format_time(timestamp: Timestamp, zone: &TimeZone) -> String {
    timestamp
        .to_zoned_datetime(zone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// Writes the report as pretty JSON, streamed: a scan of a large log has a large report.
pub fn write_json(report: &Report, out: &mut impl std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

fn profile_name(profile: &Option<String>) -> String {
    profile.clone().unwrap_or_else(|| "(root)".into())
}

fn credential_name(credential: &Option<CredentialRef>) -> String {
    credential.as_ref().map_or("-".into(), |c| match &c.label {
        Some(label) => format!("{}/{} ({label})", c.provider, c.id),
        None => format!("{}/{}", c.provider, c.id),
    })
}

struct Section {
    title: &'static str,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

/// What a text report shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// `status`: the pools and the compaction risk.
    Pools,
    /// `scan`: the credentials with failures, then the pools, then a count of the rest.
    Failures,
    /// `scan --events`: as `Failures`, with every event and every action listed.
    Events,
}

fn sections(report: &Report, view: View) -> Vec<Section> {
    let mut sections = Vec::new();
    if view != View::Pools {
        sections.push(failing_section(report));
    }
    if view == View::Events {
        sections.push(events_section(report));
        sections.push(actions_section(report));
    }
    sections.push(credentials_section(report));
    sections.push(compaction_section(report));
    if !report.unreadable_homes.is_empty() {
        sections.push(Section {
            title: "Unreadable homes",
            headers: vec!["PROFILE", "ERROR"],
            rows: report
                .unreadable_homes
                .iter()
                .map(|home| vec![profile_name(&home.profile), home.error.clone()])
                .collect(),
        });
    }
    sections
}

fn failing_section(report: &Report) -> Section {
    Section {
        title: "Failing credentials",
        headers: vec![
            "PROFILE",
            "PROVIDER",
            "ID",
            "LABEL",
            "STATE",
            "REASON",
            "FIRST SEEN",
            "LAST SEEN",
            "FAILURES",
            "EVIDENCE",
            "ACTION",
        ],
        rows: report
            .failing_credentials
            .iter()
            .map(|f| {
                vec![
                    profile_name(&f.profile),
                    f.provider.clone(),
                    f.credential_id.clone(),
                    or_dash(f.label.as_deref()),
                    f.state.map_or("unknown", State::as_str).into(),
                    or_dash(f.reason.as_deref()),
                    or_dash(f.first_seen.as_deref()),
                    or_dash(f.last_seen.as_deref()),
                    f.failures.to_string(),
                    f.evidence.clone(),
                    match (f.action, f.result) {
                        (Some(action), Some(result)) => {
                            format!("{}: {}", action.as_str(), result_name(result))
                        }
                        _ => "-".into(),
                    },
                ]
            })
            .collect(),
    }
}

/// How many events are informational (not a credential failure, or pinned to no credential),
/// by kind, most frequent first.
fn informational_line(report: &Report, view: View) -> String {
    let mut by_kind: BTreeMap<FindingKind, usize> = BTreeMap::new();
    for event in report.events.iter().filter(|e| failure_of(e).is_none()) {
        *by_kind.entry(event.kind).or_default() += 1;
    }
    let total: usize = by_kind.values().sum();
    let mut kinds: Vec<(FindingKind, usize)> = by_kind.into_iter().collect();
    kinds.sort_by_key(|&(kind, count)| (Reverse(count), kind));
    let mut line = format!(
        "{total} informational events (not a credential failure, or not pinned to a credential)"
    );
    if total > 0 {
        let counts: Vec<String> = kinds
            .iter()
            .map(|(kind, count)| format!("{} {count}", kind.as_str()))
            .collect();
        let _ = write!(line, ": {}", counts.join(", "));
        if view == View::Failures {
            line.push_str("; `scan --events` lists them");
        }
    }
    line
}

fn events_section(report: &Report) -> Section {
    Section {
        title: "Events",
        headers: vec![
            "TIME",
            "PROFILE",
            "FILE:LINE",
            "RULE",
            "PROVIDER",
            "STATUS",
            "REASON",
            "CREDENTIAL",
            "ATTRIBUTION",
        ],
        rows: report
            .events
            .iter()
            .map(|e| {
                vec![
                    or_dash(e.timestamp.as_deref()),
                    profile_name(&e.profile),
                    format!("{}:{}", e.file, e.line),
                    e.rule.clone(),
                    or_dash(e.provider.as_deref()),
                    e.status.map_or("-".into(), |s| s.to_string()),
                    or_dash(e.reason.as_deref()),
                    credential_name(&e.credential),
                    match (&e.named_by, &e.unattributed_because) {
                        (Some(via), _) => {
                            format!("{} via {via}", e.attribution.as_str())
                        }
                        (_, Some(why)) => format!("{}: {why}", e.attribution.as_str()),
                        _ => e.attribution.as_str().into(),
                    },
                ]
            })
            .collect(),
    }
}

fn actions_section(report: &Report) -> Section {
    Section {
        title: "Actions",
        headers: vec![
            "PROFILE",
            "CREDENTIAL",
            "ACTION",
            "RULE",
            "REASON",
            "RESULT",
            "EVIDENCE",
        ],
        rows: report
            .actions
            .iter()
            .map(|a| {
                vec![
                    profile_name(&a.profile),
                    credential_name(&Some(CredentialRef {
                        provider: a.provider.clone(),
                        id: a.credential_id.clone(),
                        label: a.label.clone(),
                    })),
                    a.action.as_str().into(),
                    a.rule.clone(),
                    or_dash(a.reason.as_deref()),
                    result_name(a.result).into(),
                    a.evidence.clone(),
                ]
            })
            .collect(),
    }
}

fn credentials_section(report: &Report) -> Section {
    Section {
        title: "Credentials",
        headers: vec![
            "PROFILE",
            "PROVIDER",
            "ID",
            "LABEL",
            "SOURCE",
            "STATE",
            "REASON",
            "SINCE",
            "USABLE IN",
            "WARDEN",
        ],
        rows: report
            .credentials
            .iter()
            .map(|c| {
                vec![
                    profile_name(&c.profile),
                    c.provider.clone(),
                    c.id.clone(),
                    or_dash(c.label.as_deref()),
                    or_dash(c.source.as_deref()),
                    c.state.map_or("unknown", State::as_str).into(),
                    or_dash(c.reason.as_deref()),
                    or_dash(c.since.as_deref()),
                    c.available_in_seconds.map_or("-".into(), format_duration),
                    c.warden.as_ref().map_or("-".into(), WardenNote::describe),
                ]
            })
            .collect(),
    }
}

fn compaction_section(report: &Report) -> Section {
    Section {
        title: "Compaction",
        headers: vec!["PROFILE", "PROVIDER", "USABLE CREDENTIALS", "AT RISK"],
        rows: report
            .compaction
            .iter()
            .map(|c| {
                vec![
                    profile_name(&c.profile),
                    c.provider.clone(),
                    c.usable_credentials.to_string(),
                    if c.at_risk { "YES".into() } else { "no".into() },
                ]
            })
            .collect(),
    }
}

fn result_name(result: ActionResult) -> &'static str {
    match result {
        ActionResult::WouldApply => "would_apply",
        ActionResult::Applied => "applied",
        ActionResult::AlreadyDead => "already_dead",
        ActionResult::Failed => "failed",
    }
}

fn format_duration(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let mut done = String::new();
    if s.applied > 0 {
        done.push_str(&format!(", {} marked dead", s.applied));
    }
    if s.failed > 0 {
        done.push_str(&format!(", {} failed (retried from the ledger)", s.failed));
    }
    format!(
        "{} events, {} credential failures ({} unattributed), {} compaction failures; {} would be marked dead, {} already dead{done}; {} compaction providers at risk",
        s.events,
        s.credential_failures,
        s.unattributed_failures,
        s.compaction_failures,
        s.would_apply,
        s.already_dead,
        s.compaction_at_risk
    )
}

/// The assumed Hermes version and why, short: `0.15.0, configured by --hermes-version`,
/// `0.19.0, detected from the package metadata of /usr/bin/hermes`; `None` when unknown.
fn version_phrase(report: &Report) -> Option<String> {
    let source = &report.hermes_version_source;
    let version = report.hermes_version.as_deref()?;
    Some(format!(
        "{version}, {} {}",
        source.how.phrase()?,
        source.from
    ))
}

/// What to say about the version beside the header: a warning when it is newer than tested,
/// the note when it is unknown.
fn version_remarks(report: &Report) -> Vec<String> {
    let source = &report.hermes_version_source;
    let mut remarks = Vec::new();
    if let Some(warning) = &source.warning {
        remarks.push(format!("warning: {warning}"));
    }
    if source.how == VersionHow::Unknown {
        remarks.push(format!("Hermes version unknown: {}", source.note));
    }
    remarks
}

/// Aligned columns for a terminal.
pub fn to_table(report: &Report, view: View) -> String {
    let mut out = format!(
        "Hermes home {} (Hermes {}), {}\n",
        report.hermes_home,
        version_phrase(report).unwrap_or_else(|| "version unknown".into()),
        report.generated_at
    );
    for remark in version_remarks(report) {
        let _ = writeln!(out, "{remark}");
    }
    for section in sections(report, view) {
        let _ = writeln!(out, "\n{}", section.title.to_uppercase());
        if section.rows.is_empty() {
            out.push_str("  (none)\n");
            continue;
        }
        let widths: Vec<usize> = (0..section.headers.len())
            .map(|i| {
                section
                    .rows
                    .iter()
                    .map(|row| row[i].chars().count())
                    .chain([section.headers[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let render = |cells: Vec<&str>| {
            let line: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            line.join("  ").trim_end().to_owned() + "\n"
        };
        out.push_str(&render(section.headers.clone()));
        for row in &section.rows {
            out.push_str(&render(row.iter().map(String::as_str).collect()));
        }
    }
    if view != View::Pools {
        let _ = writeln!(out, "\n{}", informational_line(report, view));
        let _ = writeln!(out, "{}", summary_line(report));
    }
    out
}

/// A report to paste into a bug report or an issue.
pub fn to_markdown(report: &Report, view: View) -> String {
    let mut out = String::from("# hermes-warden scan\n\n");
    let _ = writeln!(out, "- Hermes home: `{}`", report.hermes_home);
    let _ = writeln!(
        out,
        "- Hermes version: {}",
        version_phrase(report).unwrap_or_else(|| "unknown".into())
    );
    for remark in version_remarks(report) {
        let _ = writeln!(out, "- {remark}");
    }
    let _ = writeln!(out, "- hermes-warden: {}", report.warden_version);
    let _ = writeln!(out, "- Generated: {}", report.generated_at);
    let _ = writeln!(out, "\n**Summary:** {}.", summary_line(report));
    for section in sections(report, view) {
        let _ = writeln!(out, "\n## {}\n", section.title);
        if section.rows.is_empty() {
            out.push_str("None.\n");
            continue;
        }
        let cell = |text: &str| text.replace('|', "\\|");
        let _ = writeln!(out, "| {} |", section.headers.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(section.headers.len()));
        for row in &section.rows {
            let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    }
    let _ = writeln!(out, "\n{}.", informational_line(report, view));
    if !report.files.is_empty() {
        out.push_str(
            "\n## Files read\n\n| FILE | LINES | BYTES | CUT LINES |\n|---|---|---|---|\n",
        );
        for file in &report.files {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                file.file, file.lines, file.bytes, file.cut_lines
            );
        }
    }
    out
}
