//! Which credential an event is about, and how sure we are.
//!
//! Three ways, strongest first:
//! - named: the line names a label or id that matches exactly one pool entry, or, for a line
//!   that names none (a compaction failure, a non-retryable error), the nearest line before it
//!   in its session, within `pair_seconds`, that names a failing entry (`marking LABEL
//!   exhausted/DEAD`): Hermes marks the entry whose request failed, rotates, and logs the
//!   payload of the last request after the last marking, so when several dead entries fail in
//!   a row (chained rotation) the payload belongs to the last one marked. On Hermes <= 0.15
//!   that pair is the main evidence. The marking line's own status and reason, and the error
//!   the entry recorded in auth.json at that moment, must not contradict the line: when they
//!   do, nothing is guessed. Lines that name the entry Hermes rotated TO are context, never
//!   evidence;
//! - correlated: exactly one entry of the provider has a recorded error that agrees with the
//!   line's status and reason, recorded within `correlation_seconds` of the line;
//! - unattributed: nothing agrees, or more than one credential could be meant. Never acted on.

use std::collections::HashMap;

use crate::pool::snapshot::{AuthSnapshot, PoolEntry};
use crate::read::event::Event;
use crate::read::payload;

/// How an event was pinned to a credential (the contract's `attribution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributionKind {
    Named,
    Correlated,
    Unattributed,
}

impl AttributionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AttributionKind::Named => "named",
            AttributionKind::Correlated => "correlated",
            AttributionKind::Unattributed => "unattributed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct CredentialRef {
    pub provider: String,
    pub id: String,
    pub label: Option<String>,
}

/// Which credential an event is about; a named or correlated one always has its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribution {
    /// The line, or a line of the same session that it pairs with, names the credential.
    Named {
        credential: CredentialRef,
        /// For a pairing, the `file:line` of the line that named it.
        via: Option<String>,
    },
    /// Exactly one entry recorded an agreeing error at that time.
    Correlated { credential: CredentialRef },
    /// Nothing agrees, or more than one credential could be meant: never acted on.
    Unattributed { why: String },
}

impl Attribution {
    fn unattributed(why: impl Into<String>) -> Self {
        Attribution::Unattributed { why: why.into() }
    }

    pub fn kind(&self) -> AttributionKind {
        match self {
            Attribution::Named { .. } => AttributionKind::Named,
            Attribution::Correlated { .. } => AttributionKind::Correlated,
            Attribution::Unattributed { .. } => AttributionKind::Unattributed,
        }
    }

    /// The credential, unless unattributed.
    pub fn credential(&self) -> Option<&CredentialRef> {
        match self {
            Attribution::Named { credential, .. } | Attribution::Correlated { credential } => {
                Some(credential)
            }
            Attribution::Unattributed { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Windows {
    pub pair_seconds: f64,
    pub correlation_seconds: f64,
}

impl Default for Windows {
    fn default() -> Self {
        Windows {
            pair_seconds: 5.0,
            correlation_seconds: 120.0,
        }
    }
}

/// Attributes every event; `snapshot_of(profile)` gives the pools the event's home had.
pub fn attribute<'s>(
    events: &[Event],
    snapshot_of: impl Fn(Option<&str>) -> &'s AuthSnapshot,
    windows: Windows,
) -> Vec<Attribution> {
    let namers = NamingLines::index(events);
    events
        .iter()
        .map(|event| {
            let snapshot = snapshot_of(event.profile.as_deref());
            if let Some(name) = event.own_name() {
                return match resolve(snapshot, event.provider.as_deref(), name) {
                    Ok(credential) => Attribution::Named {
                        credential,
                        via: None,
                    },
                    Err(why) => Attribution::unattributed(why),
                };
            }
            if let Some(paired) = pair(event, &namers, snapshot, windows) {
                return paired;
            }
            correlate(event, snapshot, windows)
        })
        .collect()
}

type SessionKey<'e> = (Option<&'e str>, Option<&'e str>);

/// The lines that name a failing credential, by (profile, session), sorted by time.
struct NamingLines<'e> {
    by_session: HashMap<SessionKey<'e>, Vec<(f64, &'e Event)>>,
}

impl<'e> NamingLines<'e> {
    fn index(events: &'e [Event]) -> Self {
        let mut by_session: HashMap<SessionKey<'e>, Vec<(f64, &'e Event)>> = HashMap::new();
        for event in events
            .iter()
            .filter(|e| e.kind.names_failed_credential() && e.own_name().is_some())
        {
            if let Some(at) = event.epoch_seconds() {
                by_session
                    .entry((event.profile.as_deref(), event.session.as_deref()))
                    .or_default()
                    .push((at, event));
            }
        }
        for lines in by_session.values_mut() {
            lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        NamingLines { by_session }
    }

    /// The naming lines of `event`'s session at most `window` seconds before it (or at the
    /// same millisecond), oldest first.
    fn before(&self, event: &'e Event, at: f64, window: f64) -> &[(f64, &'e Event)] {
        let Some(lines) = self
            .by_session
            .get(&(event.profile.as_deref(), event.session.as_deref()))
        else {
            return &[];
        };
        let start = lines.partition_point(|(t, _)| *t < at - window);
        let end = lines.partition_point(|(t, _)| *t <= at);
        &lines[start..end]
    }
}

/// The one entry called `name` (label, id, or Hermes's `label or id[:8]`).
fn resolve(
    snapshot: &AuthSnapshot,
    provider: Option<&str>,
    name: &str,
) -> Result<CredentialRef, String> {
    let found: Vec<CredentialRef> = entries(snapshot, provider)
        .filter(|(_, entry)| {
            entry.id == name || entry.label.as_deref() == Some(name) || entry.log_name() == name
        })
        .map(|(provider, entry)| credential_ref(provider, entry))
        .collect();
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one")),
        0 => Err(format!("no pool entry is called {name:?}")),
        n => Err(format!("{n} pool entries are called {name:?}")),
    }
}

/// Pairs a line that names no credential with the nearest marking line before it in its
/// session (of its provider, when both say); `None` when there is none.
fn pair<'e>(
    event: &'e Event,
    namers: &NamingLines<'e>,
    snapshot: &AuthSnapshot,
    windows: Windows,
) -> Option<Attribution> {
    let at = event.epoch_seconds()?;
    let (_, marking) = namers
        .before(event, at, windows.pair_seconds)
        .iter()
        .rev()
        .find(|(_, other)| {
            event.provider.is_none() || other.provider.is_none() || other.provider == event.provider
        })?;
    let provider = event.provider.as_deref().or(marking.provider.as_deref());
    let name = marking.own_name().expect("indexed lines name a credential");
    let via = format!("{}:{}", marking.file, marking.line);
    let found = resolve(snapshot, provider, name).and_then(|credential| {
        let entry = entries(snapshot, Some(&credential.provider))
            .find(|(_, entry)| entry.id == credential.id)
            .map(|(_, entry)| entry);
        match contradiction(event, at, marking, entry, windows) {
            Some(why) => Err(why),
            None => Ok(credential),
        }
    });
    Some(match found {
        Ok(credential) => Attribution::Named {
            credential,
            via: Some(via),
        },
        Err(why) => Attribution::unattributed(format!(
            "the nearest marking line before it ({via}) names {name:?}, but {why}"
        )),
    })
}

/// What contradicts pinning `event` (at `at`) on the entry its nearest marking line names:
/// the marking line's own status or reason, or the error the entry recorded in auth.json
/// within the correlation window.
fn contradiction(
    event: &Event,
    at: f64,
    marking: &Event,
    entry: Option<&PoolEntry>,
    windows: Windows,
) -> Option<String> {
    if let (Some(marked), Some(status)) = (marking.status, event.status)
        && marked != status
    {
        return Some(format!("it says status {marked} and the line {status}"));
    }
    if let (Some(marked), Some(reason)) = (&marking.reason, &event.reason)
        && !same_reason(marked, reason)
    {
        return Some(format!("it says {marked:?} and the line {reason:?}"));
    }
    let entry = entry.filter(|e| {
        e.last_status_at
            .is_some_and(|t| (t - at).abs() <= windows.correlation_seconds)
    })?;
    if let (Some(recorded), Some(status)) = (entry.last_error_code, event.status)
        && recorded != i64::from(status)
    {
        return Some(format!(
            "auth.json recorded status {recorded} for it then, the line says {status}"
        ));
    }
    let recorded = recorded_reasons(entry);
    if let Some(reason) = &event.reason
        && !recorded.is_empty()
        && !recorded.iter().any(|r| same_reason(r, reason))
    {
        return Some(format!(
            "auth.json recorded {:?} for it then, the line says {reason:?}",
            recorded[0]
        ));
    }
    None
}

fn correlate(event: &Event, snapshot: &AuthSnapshot, windows: Windows) -> Attribution {
    let (Some(status), Some(at)) = (event.status, event.epoch_seconds()) else {
        return Attribution::unattributed(
            "the line names no credential and carries no status to correlate",
        );
    };
    let found: Vec<CredentialRef> = entries(snapshot, event.provider.as_deref())
        .filter(|(_, entry)| {
            entry.last_error_code == Some(i64::from(status))
                && entry
                    .last_status_at
                    .is_some_and(|t| (t - at).abs() <= windows.correlation_seconds)
                && event
                    .reason
                    .as_deref()
                    .is_none_or(|reason| recorded_reason_agrees(entry, reason))
        })
        .map(|(provider, entry)| credential_ref(provider, entry))
        .collect();
    let mut found = found.into_iter();
    match (found.next(), found.len()) {
        (Some(credential), 0) => Attribution::Correlated { credential },
        (None, _) => {
            Attribution::unattributed("no pool entry recorded an agreeing error at that time")
        }
        (Some(_), others) => Attribution::unattributed(format!(
            "{} pool entries recorded an agreeing error at that time",
            others + 1
        )),
    }
}

/// Whether the entry recorded `reason`.
fn recorded_reason_agrees(entry: &PoolEntry, reason: &str) -> bool {
    recorded_reasons(entry)
        .iter()
        .any(|recorded| same_reason(recorded, reason))
}

/// The reasons an entry recorded: Hermes writes `last_error_reason`, or (on the compaction
/// path) only the raw `last_error_message` text.
fn recorded_reasons(entry: &PoolEntry) -> Vec<String> {
    let in_message = entry
        .last_error_message
        .as_deref()
        .and_then(payload::find)
        .and_then(|payload| payload.reason);
    entry
        .last_error_reason
        .iter()
        .cloned()
        .chain(in_message)
        .collect()
}

fn same_reason(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

fn entries<'a>(
    snapshot: &'a AuthSnapshot,
    provider: Option<&'a str>,
) -> impl Iterator<Item = (&'a str, &'a PoolEntry)> {
    snapshot
        .pools
        .iter()
        .filter(move |pool| provider.is_none_or(|p| p == pool.provider))
        .flat_map(|pool| {
            pool.entries
                .iter()
                .map(|entry| (pool.provider.as_str(), entry))
        })
}

fn credential_ref(provider: &str, entry: &PoolEntry) -> CredentialRef {
    CredentialRef {
        provider: provider.to_owned(),
        id: entry.id.clone(),
        label: entry.label.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::snapshot::Pool;
    use crate::rules::{Action, FindingKind};

    const T: f64 = 1_780_000_000.0;

    fn entry(id: &str, label: &str) -> PoolEntry {
        PoolEntry {
            id: id.into(),
            label: Some(label.into()),
            auth_type: None,
            source: None,
            last_status: None,
            last_status_at: None,
            last_error_code: None,
            last_error_reason: None,
            last_error_message: None,
            last_error_reset_at: None,
            fingerprint: None,
            renewed_at: None,
        }
    }

    fn snapshot(entries: Vec<PoolEntry>) -> AuthSnapshot {
        AuthSnapshot {
            active_provider: None,
            pools: vec![Pool {
                provider: "openai-codex".into(),
                entries,
            }],
        }
    }

    fn event(kind: FindingKind, at: f64, session: &str) -> Event {
        Event {
            profile: None,
            file: "logs/errors.log".into(),
            log: crate::hermes::home::LogFile::Errors,
            line: 1,
            time: Some(
                jiff::Timestamp::from_millisecond((at * 1000.0) as i64)
                    .unwrap()
                    .to_zoned_datetime(jiff::tz::TimeZone::UTC),
            ),
            text_hash: 0,
            session: Some(session.into()),
            rule: "r".into(),
            kind,
            facets: Vec::new(),
            action: Action::None,
            provider: None,
            label: None,
            credential_id: None,
            status: Some(401),
            reason: Some("token_invalidated".into()),
        }
    }

    fn marking(label: &str, at: f64, session: &str) -> Event {
        Event {
            label: Some(label.into()),
            reason: None,
            kind: FindingKind::CredentialMarked,
            ..event(FindingKind::CredentialMarked, at, session)
        }
    }

    fn run(events: &[Event], snapshot: &AuthSnapshot) -> Vec<Attribution> {
        attribute(events, |_| snapshot, Windows::default())
    }

    #[test]
    fn a_payload_line_pairs_with_the_marking_line_of_its_session() {
        let pool = snapshot(vec![entry("a1", "alice"), entry("b2", "bob")]);
        let events = [
            marking("alice", T, "s1"),
            event(FindingKind::TerminalAuthFailure, T + 0.01, "s1"),
        ];
        let result = run(&events, &pool);
        assert_eq!(result[1].kind(), AttributionKind::Named);
        assert_eq!(result[1].credential().unwrap().id, "a1");
        assert!(
            matches!(&result[1], Attribution::Named { via: Some(via), .. } if via == "logs/errors.log:1")
        );
    }

    #[test]
    fn other_sessions_and_distant_lines_do_not_pair() {
        let pool = snapshot(vec![entry("a1", "alice"), entry("b2", "bob")]);
        for events in [
            [
                marking("alice", T, "s2"),
                event(FindingKind::TerminalAuthFailure, T, "s1"),
            ],
            [
                marking("alice", T - 60.0, "s1"),
                event(FindingKind::TerminalAuthFailure, T, "s1"),
            ],
        ] {
            assert_eq!(run(&events, &pool)[1].kind(), AttributionKind::Unattributed);
        }
    }

    #[test]
    fn chained_rotation_pins_the_payload_on_the_last_entry_marked() {
        let pool = snapshot(vec![
            entry("a1", "alice"),
            entry("b2", "bob"),
            entry("c3", "carol"),
        ]);
        let events = [
            marking("alice", T, "s1"),
            marking("bob", T + 0.5, "s1"),
            event(FindingKind::TerminalAuthFailure, T + 0.51, "s1"),
        ];
        let result = run(&events, &pool);
        assert_eq!(result[2].credential().unwrap().id, "b2", "{:?}", result[2]);
        // A marking after the payload, or of another session, is not its pair.
        let events = [
            marking("alice", T, "s1"),
            marking("carol", T + 0.505, "s2"),
            event(FindingKind::TerminalAuthFailure, T + 0.51, "s1"),
            marking("bob", T + 0.52, "s1"),
        ];
        assert_eq!(run(&events, &pool)[2].credential().unwrap().id, "a1");
    }

    #[test]
    fn a_contradicting_marking_or_record_leaves_it_unattributed() {
        let why = |events: &[Event], pool: &AuthSnapshot| match &run(events, pool)[events.len() - 1]
        {
            Attribution::Unattributed { why } => why.clone(),
            other => panic!("attributed: {other:?}"),
        };
        let pool = snapshot(vec![entry("a1", "alice"), entry("b2", "bob")]);
        // The nearest marking says 429: the 401 payload is not its request's error.
        let rate_limited = Event {
            status: Some(429),
            ..marking("bob", T + 0.5, "s1")
        };
        let payload = event(FindingKind::TerminalAuthFailure, T + 0.51, "s1");
        let said = why(
            &[marking("alice", T, "s1"), rate_limited, payload.clone()],
            &pool,
        );
        assert!(
            said.contains("\"bob\"") && said.contains("status 429"),
            "{said}"
        );
        // Its DEAD line gave another reason.
        let revoked = Event {
            reason: Some("token_revoked".into()),
            ..marking("bob", T + 0.5, "s1")
        };
        let said = why(&[revoked, payload.clone()], &pool);
        assert!(said.contains("token_revoked"), "{said}");
        // auth.json recorded another error for bob at that moment.
        let mut bob = entry("b2", "bob");
        bob.last_error_code = Some(401);
        bob.last_error_reason = Some("token_expired".into());
        bob.last_status_at = Some(T + 0.5);
        let pool = snapshot(vec![entry("a1", "alice"), bob.clone()]);
        let said = why(&[marking("bob", T + 0.5, "s1"), payload.clone()], &pool);
        assert!(
            said.contains("auth.json recorded \"token_expired\""),
            "{said}"
        );
        // A record from long ago says nothing about this failure; an agreeing one confirms it.
        bob.last_status_at = Some(T - 3600.0);
        let pool = snapshot(vec![entry("a1", "alice"), bob.clone()]);
        let events = [marking("bob", T + 0.5, "s1"), payload.clone()];
        assert_eq!(run(&events, &pool)[1].credential().unwrap().id, "b2");
        bob.last_status_at = Some(T + 0.5);
        bob.last_error_reason = Some("token_invalidated".into());
        let pool = snapshot(vec![entry("a1", "alice"), bob]);
        assert_eq!(run(&events, &pool)[1].credential().unwrap().id, "b2");
    }

    #[test]
    fn a_recorded_error_in_auth_json_correlates() {
        // The compaction path records no reason, only the whole error text.
        let mut alice = entry("a1", "alice");
        alice.last_error_code = Some(401);
        alice.last_status_at = Some(T + 0.2);
        alice.last_error_message =
            Some("Error code: 401 - {'error': {'code': 'token_invalidated'}}".into());
        let mut bob = entry("b2", "bob");
        bob.last_error_code = Some(429);
        bob.last_status_at = Some(T);
        let events = [event(FindingKind::TerminalAuthFailure, T, "s1")];
        let result = run(&events, &snapshot(vec![alice.clone(), bob]));
        assert_eq!(result[0].kind(), AttributionKind::Correlated);
        assert_eq!(result[0].credential().unwrap().id, "a1");
        // A disagreeing reason, or a record far from the line, does not correlate.
        let mut other_reason = alice.clone();
        other_reason.last_error_message =
            Some("Error code: 401 - {'error': {'code': 'token_expired'}}".into());
        assert_eq!(
            run(&events, &snapshot(vec![other_reason]))[0].kind(),
            AttributionKind::Unattributed
        );
        let mut stale = alice.clone();
        stale.last_status_at = Some(T - 3600.0);
        assert_eq!(
            run(&events, &snapshot(vec![stale]))[0].kind(),
            AttributionKind::Unattributed
        );
        // Two agreeing records: no guess.
        let mut twin = alice.clone();
        twin.id = "c3".into();
        assert_eq!(
            run(&events, &snapshot(vec![alice, twin]))[0].kind(),
            AttributionKind::Unattributed
        );
    }

    #[test]
    fn a_named_line_needs_exactly_one_matching_entry() {
        let mut named = event(FindingKind::DeadByHermes, T, "s1");
        named.label = Some("alice".into());
        assert_eq!(
            run(
                std::slice::from_ref(&named),
                &snapshot(vec![entry("a1", "alice")])
            )[0]
            .kind(),
            AttributionKind::Named
        );
        let twins = snapshot(vec![entry("a1", "alice"), entry("a2", "alice")]);
        assert_eq!(
            run(std::slice::from_ref(&named), &twins)[0].kind(),
            AttributionKind::Unattributed
        );
        named.label = Some("a1".into());
        assert_eq!(
            run(&[named], &twins)[0].credential().unwrap().id,
            "a1",
            "Hermes logs id[:8] when there is no label"
        );
    }
}
