//! What should be done about the events: one `mark_dead` per credential that a rule asking for
//! it has pinned down (named or correlated), unless that credential is already dead in a form
//! the installed Hermes honours. Unattributed events never lead to an action, and neither do
//! failures logged before the credential was last revived (by `revive` or a re-auth the ledger
//! saw) or before its tokens were last obtained or refreshed (`last_refresh`): they were about
//! the token it had then.

use std::collections::BTreeMap;

use crate::hermes::semantics::Semantics;
use crate::pool::attribute::{Attribution, CredentialRef};
use crate::pool::snapshot::AuthSnapshot;
use crate::read::event::Event;
use crate::rules::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionResult {
    WouldApply,
    /// Written to auth.json (by `scan --apply` or `watch`).
    Applied,
    AlreadyDead,
    /// Not written (the lock stayed taken, auth.json did not parse, the token changed);
    /// a mark in the ledger is retried.
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAction {
    pub profile: Option<String>,
    pub credential: CredentialRef,
    pub rule: String,
    pub reason: Option<String>,
    /// The event that decided it (the latest one for the credential).
    pub event: usize,
    pub result: ActionResult,
}

/// `revived_at(profile, credential)` is when the credential was last revived (epoch seconds).
pub fn decide<'s>(
    events: &[Event],
    attributions: &[Attribution],
    snapshot_of: impl Fn(Option<&str>) -> &'s AuthSnapshot,
    revived_at: impl Fn(Option<&str>, &CredentialRef) -> Option<f64>,
    semantics: Semantics,
    now: f64,
) -> Vec<PlannedAction> {
    let mut latest: BTreeMap<(Option<String>, CredentialRef), usize> = BTreeMap::new();
    for (index, (event, attribution)) in events.iter().zip(attributions).enumerate() {
        let (Action::MarkDead, Some(credential)) = (event.action, attribution.credential()) else {
            continue;
        };
        let renewed_at = snapshot_of(event.profile.as_deref())
            .pool(&credential.provider)
            .and_then(|pool| pool.entries.iter().find(|entry| entry.id == credential.id))
            .and_then(|entry| entry.renewed_at);
        let superseded = [revived_at(event.profile.as_deref(), credential), renewed_at]
            .into_iter()
            .flatten()
            .reduce(f64::max);
        if let Some(since) = superseded
            && event.epoch_seconds().is_none_or(|at| at <= since)
        {
            continue;
        }
        let key = (event.profile.clone(), credential.clone());
        let later = |previous: &usize| event.epoch_seconds() >= events[*previous].epoch_seconds();
        if latest.get(&key).is_none_or(later) {
            latest.insert(key, index);
        }
    }
    latest
        .into_iter()
        .map(|((profile, credential), index)| {
            let event = &events[index];
            let entry = snapshot_of(profile.as_deref())
                .pool(&credential.provider)
                .and_then(|pool| pool.entries.iter().find(|entry| entry.id == credential.id));
            let dead = entry.is_some_and(|entry| semantics.is_dead(entry, now));
            PlannedAction {
                reason: event
                    .reason
                    .clone()
                    .or_else(|| event.status.map(|status| format!("HTTP {status}"))),
                rule: event.rule.clone(),
                event: index,
                result: if dead {
                    ActionResult::AlreadyDead
                } else {
                    ActionResult::WouldApply
                },
                profile,
                credential,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::snapshot::{Pool, PoolEntry};
    use crate::rules::FindingKind;

    fn entry(status: Option<&str>, reset_at: Option<f64>) -> PoolEntry {
        PoolEntry {
            id: "a1".into(),
            label: None,
            auth_type: None,
            source: None,
            last_status: status.map(crate::pool::snapshot::LastStatus::parse),
            last_status_at: Some(NOW),
            last_error_code: Some(401),
            last_error_reason: None,
            last_error_message: None,
            last_error_reset_at: reset_at,
            fingerprint: None,
            renewed_at: None,
        }
    }

    const NOW: f64 = 1_780_000_000.0;

    fn event(action: Action, line: u64) -> Event {
        Event {
            profile: None,
            file: "logs/errors.log".into(),
            log: crate::hermes::home::LogFile::Errors,
            line,
            time: Some(
                jiff::Timestamp::from_second(NOW as i64 + line as i64)
                    .unwrap()
                    .to_zoned_datetime(jiff::tz::TimeZone::UTC),
            ),
            text_hash: 0,
            session: None,
            rule: format!("rule-{line}"),
            kind: FindingKind::TerminalAuthFailure,
            facets: Vec::new(),
            action,
            provider: None,
            label: None,
            credential_id: None,
            status: Some(401),
            reason: Some("token_revoked".into()),
        }
    }

    fn attribution(credential: bool) -> Attribution {
        match credential {
            true => Attribution::Named {
                credential: CredentialRef {
                    provider: "openai-codex".into(),
                    id: "a1".into(),
                    label: None,
                },
                via: None,
            },
            false => Attribution::Unattributed { why: "test".into() },
        }
    }

    fn run(
        events: &[Event],
        attributions: &[Attribution],
        entry: PoolEntry,
        semantics: Semantics,
    ) -> Vec<PlannedAction> {
        let snapshot = AuthSnapshot {
            active_provider: None,
            pools: vec![Pool {
                provider: "openai-codex".into(),
                entries: vec![entry],
            }],
        };
        decide(
            events,
            attributions,
            |_| &snapshot,
            |_, _| None,
            semantics,
            NOW,
        )
    }

    #[test]
    fn one_action_per_credential_from_its_latest_event() {
        let events = [
            event(Action::MarkDead, 1),
            event(Action::MarkDead, 3),
            event(Action::MarkDead, 2),
        ];
        let attributions = [attribution(true), attribution(true), attribution(true)];
        let actions = run(
            &events,
            &attributions,
            entry(Some("exhausted"), None),
            Semantics::NoDeadState,
        );
        assert_eq!(actions.len(), 1);
        assert_eq!(actions[0].rule, "rule-3");
        assert_eq!(actions[0].result, ActionResult::WouldApply);
    }

    #[test]
    fn unattributed_or_actionless_events_do_nothing() {
        let events = [event(Action::MarkDead, 1), event(Action::None, 2)];
        let attributions = [attribution(false), attribution(true)];
        assert!(
            run(
                &events,
                &attributions,
                entry(None, None),
                Semantics::DeadState
            )
            .is_empty()
        );
    }

    #[test]
    fn failures_before_a_revival_are_old_news() {
        let events = [event(Action::MarkDead, 1), event(Action::MarkDead, 5)];
        let attributions = [attribution(true), attribution(true)];
        let snapshot = AuthSnapshot::default();
        let revived = |at: f64| {
            decide(
                &events,
                &attributions,
                |_| &snapshot,
                |_, _| Some(at),
                Semantics::DeadState,
                NOW,
            )
        };
        assert_eq!(revived(NOW + 3.0)[0].rule, "rule-5");
        assert!(revived(NOW + 5.0).is_empty());
    }

    #[test]
    fn failures_before_the_tokens_were_renewed_are_old_news() {
        let events = [event(Action::MarkDead, 1), event(Action::MarkDead, 5)];
        let attributions = [attribution(true), attribution(true)];
        let renewed = |at: f64| {
            let mut renewed = entry(None, None);
            renewed.renewed_at = Some(at);
            run(&events, &attributions, renewed, Semantics::DeadState)
        };
        assert_eq!(renewed(NOW + 3.0)[0].rule, "rule-5");
        assert!(renewed(NOW + 5.0).is_empty());
    }

    #[test]
    fn already_dead_only_in_a_form_the_version_honours() {
        let events = [event(Action::MarkDead, 1)];
        let attributions = [attribution(true)];
        let result = |entry, semantics| run(&events, &attributions, entry, semantics)[0].result;
        assert_eq!(
            result(entry(Some("dead"), None), Semantics::DeadState),
            ActionResult::AlreadyDead
        );
        assert_eq!(
            result(entry(Some("dead"), None), Semantics::NoDeadState),
            ActionResult::WouldApply
        );
        let forever = Some(NOW + 50.0 * 365.0 * 86_400.0);
        assert_eq!(
            result(entry(Some("exhausted"), forever), Semantics::NoDeadState),
            ActionResult::AlreadyDead
        );
    }
}
