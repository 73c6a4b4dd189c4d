//! Reports of a pass: the contract's JSON, a terminal table, and markdown for bug reports.
//!
//! The JSON keys are a contract shared with dashboards and outside checks (see the design
//! notes). Every text that came from a log or auth.json (providers, ids, labels, sources,
//! reasons, sessions, fingerprints) goes through `secrets::scrub` when its row is built, before
//! anything can cut it; secrets themselves never reach this module. File names, `file:line`
//! evidence and profile names are the warden's own.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::hermes::semantics::State;
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
    pub warden_version: &'static str,
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
        warden_version: env!("CARGO_PKG_VERSION"),
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

fn summarise(events: &[EventRow], actions: &[ActionRow], compaction: &[CompactionRisk]) -> Summary {
    let failures = || events.iter().filter(|e| e.kind.is_credential_failure());
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

fn sections(report: &Report, include_logs: bool) -> Vec<Section> {
    let mut sections = Vec::new();
    if include_logs {
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

/// Aligned columns for a terminal.
pub fn to_table(report: &Report, include_logs: bool) -> String {
    let mut out = format!(
        "Hermes home {} (Hermes {}), {}\n",
        report.hermes_home,
        report
            .hermes_version
            .as_deref()
            .unwrap_or("version unknown"),
        report.generated_at
    );
    for section in sections(report, include_logs) {
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
    if include_logs {
        let _ = writeln!(out, "\n{}", summary_line(report));
    }
    out
}

/// A report to paste into a bug report or an issue.
pub fn to_markdown(report: &Report) -> String {
    let mut out = String::from("# hermes-warden scan\n\n");
    let _ = writeln!(out, "- Hermes home: `{}`", report.hermes_home);
    let _ = writeln!(
        out,
        "- Hermes version: {}",
        report.hermes_version.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(out, "- hermes-warden: {}", report.warden_version);
    let _ = writeln!(out, "- Generated: {}", report.generated_at);
    let _ = writeln!(out, "\n**Summary:** {}.", summary_line(report));
    for section in sections(report, true) {
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
