//! The warden's view as Prometheus metrics, under the names and labels of the contract
//! (`../shared/design/README.md`, prefix `hermes_warden_`).
//!
//! Only this module knows the `prometheus` crate. Two parts:
//! - the state gauges: each pool entry's state as the installed Hermes sees it, set again from
//!   auth.json whenever it is read and on every step (so cooldowns count down); a credential
//!   that left the pool has no series; and `compaction_at_risk` of each home's compression
//!   provider. `status --format prometheus` prints them once;
//! - the counters, fed from the typed internal events ([`Metrics::record`] is the one place
//!   that turns an event into a count, beside the audit log and the daemon's log), which
//!   `watch --textfile` writes with the gauges.
//!
//! Labels never carry a token, an e-mail or a credential label: a credential is `(profile,
//! provider, credential_id)`, the root home's `profile` is `""`, and what came from a log line
//! (a provider name) is scrubbed.

use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::hermes::semantics::State;
use crate::observe::events::{ChangeKind, WardenEvent};
use crate::observe::report::Report;
use crate::pool::compaction::CompactionRisk;
use crate::rules::FindingKind;
use crate::shared::secrets::scrub;

/// The states of `credentials{state}` and `credential_state{state}`: Hermes's three and
/// `unknown` (a status the installed version does not know).
const STATES: [&str; 4] = ["ok", "exhausted", "dead", "unknown"];

/// One pool entry's state, for the gauges.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialState {
    pub profile: Option<String>,
    pub provider: String,
    pub id: String,
    pub state: Option<State>,
    /// Seconds until an exhausted entry is usable again.
    pub available_in_seconds: Option<f64>,
}

impl CredentialState {
    /// The states of a report's credentials (already scrubbed).
    pub fn of_report(report: &Report) -> Vec<CredentialState> {
        report
            .credentials
            .iter()
            .map(|row| CredentialState {
                profile: row.profile.clone(),
                provider: row.provider.clone(),
                id: row.id.clone(),
                state: row.state,
                available_in_seconds: row.available_in_seconds.map(|s| s as f64),
            })
            .collect()
    }
}

pub struct Metrics {
    registry: Registry,
    credentials: GaugeVec,
    credential_state: GaugeVec,
    cooldown: GaugeVec,
    compaction_at_risk: GaugeVec,
    counters: Option<Counters>,
    /// `log_lag_bytes{file}` (the daemon's only).
    log_lag: Option<GaugeVec>,
}

/// The daemon's counters.
struct Counters {
    log_events: IntCounterVec,
    unattributed: IntCounterVec,
    compaction_failures: IntCounterVec,
    remediations: IntCounterVec,
    reverts: IntCounterVec,
    log_lines: IntCounterVec,
    log_bytes: IntCounterVec,
    rotations: IntCounterVec,
    truncations: IntCounterVec,
    auth_writes: IntCounterVec,
    state_file_errors: IntCounterVec,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("hermes_warden")
}

fn registered<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<T>,
) -> prometheus::Result<T> {
    let metric = metric?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl Metrics {
    /// The state gauges only (`status --format prometheus`).
    pub fn states() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            registered(&registry, GaugeVec::new(opts(name, help), labels))
        };
        Ok(Metrics {
            credentials: gauge(
                "credentials",
                "Pool entries per state, as the installed Hermes sees them",
                &["profile", "provider", "state"],
            )?,
            credential_state: gauge(
                "credential_state",
                "1 for the entry's current state, 0 for the others",
                &["profile", "provider", "credential_id", "state"],
            )?,
            cooldown: gauge(
                "credential_cooldown_seconds",
                "Seconds until an exhausted entry is usable again (0 when usable now)",
                &["profile", "provider", "credential_id"],
            )?,
            compaction_at_risk: gauge(
                "compaction_at_risk",
                "1 when the compression provider has no usable credential",
                &["profile", "provider"],
            )?,
            counters: None,
            log_lag: None,
            registry,
        })
    }

    /// Everything the daemon exports: the state gauges, the counters and `build_info`.
    pub fn daemon() -> prometheus::Result<Metrics> {
        let mut metrics = Metrics::states()?;
        let registry = &metrics.registry;
        let counter = |name: &str, help: &str, labels: &[&str]| {
            registered(registry, IntCounterVec::new(opts(name, help), labels))
        };
        metrics.counters = Some(Counters {
            log_events: counter(
                "log_events_total",
                "Failures and other findings in the logs (one per log line)",
                &["profile", "rule", "provider"],
            )?,
            unattributed: counter(
                "unattributed_events_total",
                "Credential failures that named no credential the warden could trust",
                &["profile", "rule", "provider"],
            )?,
            compaction_failures: counter(
                "compaction_failures_total",
                "Context compaction failures (\"Failed to generate context summary\" and kin)",
                &["profile"],
            )?,
            remediations: counter(
                "remediations_total",
                "Dead marks and their outcome",
                &["profile", "provider", "action", "result"],
            )?,
            reverts: counter(
                "reverts_total",
                "Dead marks undone by a Hermes process and written again",
                &["profile", "provider"],
            )?,
            log_lines: counter("log_lines_total", "Log lines read", &["file"])?,
            log_bytes: counter("log_bytes_total", "Log bytes read", &["file"])?,
            rotations: counter("log_rotations_total", "Log rotations seen", &["file"])?,
            truncations: counter("log_truncations_total", "Log truncations seen", &["file"])?,
            auth_writes: counter(
                "auth_writes_total",
                "auth.json rewrites by their outcome",
                &["result"],
            )?,
            state_file_errors: counter(
                "state_file_errors_total",
                "Warden state files that could not be read and were rebuilt",
                &["file"],
            )?,
        });
        metrics.log_lag = Some(registered(
            registry,
            GaugeVec::new(
                opts(
                    "log_lag_bytes",
                    "Bytes of a log not read yet (file size minus read position)",
                ),
                &["file"],
            ),
        )?);
        let build_info = registered(
            registry,
            GaugeVec::new(
                opts("build_info", "1, with the warden's version"),
                &["version"],
            ),
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        // The daemon's own memory, CPU, open files and start time (`process_*`, from /proc).
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(metrics)
    }

    /// Sets the state gauges to `states`, dropping the series of credentials no longer there.
    pub fn set_states(&self, states: &[CredentialState]) {
        self.credentials.reset();
        self.credential_state.reset();
        self.cooldown.reset();
        for entry in states {
            let profile = entry.profile.as_deref().unwrap_or("");
            let current = entry.state.map_or("unknown", State::as_str);
            // Every state of every pool, zeros included, so a count that drops to 0 is a 0.
            for state in STATES {
                let here = f64::from(u8::from(state == current));
                self.credentials
                    .with_label_values(&[profile, &entry.provider, state])
                    .add(here);
                self.credential_state
                    .with_label_values(&[profile, &entry.provider, &entry.id, state])
                    .set(here);
            }
            if entry.state != Some(State::Dead) {
                self.cooldown
                    .with_label_values(&[profile, &entry.provider, &entry.id])
                    .set(entry.available_in_seconds.unwrap_or(0.0).ceil());
            }
        }
    }

    /// Sets `log_lag_bytes` for each log (by its key, `logs/errors.log`).
    pub fn set_log_lags<'a>(&self, lags: impl IntoIterator<Item = (&'a str, u64)>) {
        if let Some(gauge) = &self.log_lag {
            gauge.reset();
            for (file, lag) in lags {
                gauge.with_label_values(&[file]).set(lag as f64);
            }
        }
    }

    /// Sets `compaction_at_risk` for each home's compression provider.
    pub fn set_compaction(&self, risks: &[CompactionRisk]) {
        self.compaction_at_risk.reset();
        for risk in risks {
            self.compaction_at_risk
                .with_label_values(&[risk.profile.as_deref().unwrap_or(""), &risk.provider])
                .set(f64::from(u8::from(risk.at_risk)));
        }
    }

    /// Counts what `event` says (nothing for the state gauges only).
    pub fn record(&self, event: &WardenEvent) {
        let Some(c) = &self.counters else {
            return;
        };
        let profile = |profile: &Option<String>| profile.clone().unwrap_or_default();
        match event {
            WardenEvent::Finding(finding) => {
                let event = &finding.event;
                let profile = profile(&event.profile);
                let provider = event
                    .provider
                    .as_deref()
                    .or(finding
                        .attribution
                        .credential()
                        .map(|c| c.provider.as_str()))
                    .map_or(String::new(), |p| scrub(p).into_owned());
                let labels = [profile.as_str(), event.rule.as_str(), provider.as_str()];
                c.log_events.with_label_values(&labels).inc();
                if event.kind.is_credential_failure() && finding.attribution.credential().is_none()
                {
                    c.unattributed.with_label_values(&labels).inc();
                }
                if event.has(FindingKind::CompactionFailure) {
                    c.compaction_failures.with_label_values(&[&profile]).inc();
                }
            }
            WardenEvent::Mark(mark) => {
                let profile = profile(&mark.profile);
                let result = match mark.change {
                    ChangeKind::Applied => Some("applied"),
                    ChangeKind::Recorded
                        if mark.recorded.as_ref().is_some_and(|r| r.already_dead) =>
                    {
                        Some("already_dead")
                    }
                    _ => None,
                };
                if let Some(result) = result {
                    c.remediations
                        .with_label_values(&[&profile, &mark.provider, "mark_dead", result])
                        .inc();
                }
                if mark.change == ChangeKind::Reverted {
                    c.reverts
                        .with_label_values(&[&profile, &mark.provider])
                        .inc();
                }
            }
            WardenEvent::AuthWrite(write) => {
                c.auth_writes
                    .with_label_values(&[write.result.as_str()])
                    .inc();
            }
            WardenEvent::LinesRead { file, lines, bytes } => {
                c.log_lines.with_label_values(&[file]).inc_by(*lines);
                c.log_bytes.with_label_values(&[file]).inc_by(*bytes);
            }
            WardenEvent::FileChanged { file, change } => match change {
                crate::follow::tailer::TailNote::Rotated => {
                    c.rotations.with_label_values(&[file]).inc()
                }
                crate::follow::tailer::TailNote::Truncated => {
                    c.truncations.with_label_values(&[file]).inc()
                }
                _ => {}
            },
            WardenEvent::StateFile(trouble) => {
                c.state_file_errors
                    .with_label_values(&[trouble.file.name()])
                    .inc();
            }
            _ => {}
        }
    }

    /// The Prometheus text format of everything registered.
    pub fn text(&self) -> prometheus::Result<String> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|error| prometheus::Error::Msg(error.to_string()))
    }
}
