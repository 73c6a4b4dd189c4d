//! What should be done about the events: one `mark_dead` per credential that a rule asking for
//! it has pinned down (named or correlated), unless that credential is already dead in a form
//! the installed Hermes honours. Unattributed events never lead to an action.

use std::collections::BTreeMap;

use crate::attribute::{Attribution, CredentialRef};
use crate::auth_store::AuthSnapshot;
use crate::availability::{Semantics, State, availability};
use crate::event::Event;
use crate::rules::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionResult {
    WouldApply,
    AlreadyDead,
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

pub fn decide<'s>(
    events: &[Event],
    attributions: &[Attribution],
    snapshot_of: impl Fn(Option<&str>) -> &'s AuthSnapshot,
    semantics: Semantics,
    now: f64,
) -> Vec<PlannedAction> {
    let mut latest: BTreeMap<(Option<String>, CredentialRef), usize> = BTreeMap::new();
    for (index, (event, attribution)) in events.iter().zip(attributions).enumerate() {
        let (Action::MarkDead, Some(credential)) = (event.action, &attribution.credential) else {
            continue;
        };
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
            let dead = entry.is_some_and(|entry| {
                availability(entry, semantics, now).state == Some(State::Dead)
            });
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
