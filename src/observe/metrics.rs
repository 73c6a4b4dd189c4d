//! The warden's view as Prometheus metrics, under the names and labels of the contract
//! (`../shared/design/README.md`, prefix `hermes_warden_`).
//!
//! Only this module knows the `prometheus` crate. For now it turns a report's credentials (each
//! pool entry's state as the installed Hermes sees it) into the state gauges, which
//! `status --format prometheus` prints once, for cron users and node_exporter's textfile
//! collector. Labels never carry a token, an e-mail or a label: a credential is `(profile,
//! provider, credential_id)`, and the root home's `profile` is `""`. A credential that left
//! the pool has no series.

use prometheus::{Encoder, GaugeVec, Opts, Registry, TextEncoder};

use crate::hermes::semantics::State;
use crate::observe::report::{CredentialRow, Report};

/// The states of `credentials{state}` and `credential_state{state}`: Hermes's three and
/// `unknown` (a status the installed version does not know).
const STATES: [&str; 4] = ["ok", "exhausted", "dead", "unknown"];

fn state_label(state: Option<State>) -> &'static str {
    state.map_or("unknown", State::as_str)
}

fn profile_label(row: &CredentialRow) -> &str {
    row.profile.as_deref().unwrap_or("")
}

/// The state gauges of `report`'s credentials, registered in a new registry.
pub fn state_gauges(report: &Report) -> prometheus::Result<Registry> {
    let registry = Registry::new();
    let gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<GaugeVec> {
        let gauge = GaugeVec::new(Opts::new(name, help).namespace("hermes_warden"), labels)?;
        registry.register(Box::new(gauge.clone()))?;
        Ok(gauge)
    };
    let credentials = gauge(
        "credentials",
        "Pool entries per state, as the installed Hermes sees them",
        &["profile", "provider", "state"],
    )?;
    let credential_state = gauge(
        "credential_state",
        "1 for the entry's current state, 0 for the others",
        &["profile", "provider", "credential_id", "state"],
    )?;
    let cooldown = gauge(
        "credential_cooldown_seconds",
        "Seconds until an exhausted entry is usable again (0 when usable now)",
        &["profile", "provider", "credential_id"],
    )?;
    for row in &report.credentials {
        let profile = profile_label(row);
        let current = state_label(row.state);
        // Every state of every pool, zeros included, so a count that drops to 0 is a 0.
        for state in STATES {
            credentials
                .with_label_values(&[profile, &row.provider, state])
                .add(f64::from(u8::from(state == current)));
            credential_state
                .with_label_values(&[profile, &row.provider, &row.id, state])
                .set(f64::from(u8::from(state == current)));
        }
        if row.state != Some(State::Dead) {
            cooldown
                .with_label_values(&[profile, &row.provider, &row.id])
                .set(row.available_in_seconds.unwrap_or(0) as f64);
        }
    }
    Ok(registry)
}

/// The Prometheus text format of `registry`.
pub fn to_text(registry: &Registry) -> prometheus::Result<String> {
    let mut out = Vec::new();
    TextEncoder::new().encode(&registry.gather(), &mut out)?;
    String::from_utf8(out).map_err(|error| prometheus::Error::Msg(error.to_string()))
}
