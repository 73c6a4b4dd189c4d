//! When Hermes will use a pool entry again, by the rules of the installed Hermes version.
//!
//! Hermes 0.13-0.15 know only `ok` and `exhausted`: an exhausted entry is skipped while
//! `now < until` (`last_error_reset_at`, else `last_status_at` + 300 s for a 401 and 3600 s for
//! anything else) and every other status, `dead` included, is usable. Hermes 0.16 and later
//! skip `dead` entries for good. The warden's own "dead" for old versions is `exhausted` with a
//! reset time so far ahead that it never passes; this module recognises that form as dead.

use crate::hermes::version::HermesVersion;
use crate::pool::snapshot::PoolEntry;

/// A cooldown that ends further ahead than this is the warden's dead mark for old Hermes.
pub const FOREVER_SECONDS: f64 = 10.0 * 365.0 * 86_400.0;
const TTL_401_SECONDS: f64 = 300.0;
const TTL_OTHER_SECONDS: f64 = 3_600.0;

/// Which status rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantics {
    /// Hermes 0.15 and older: no dead state.
    NoDeadState,
    /// Hermes 0.16 and later: dead is permanent.
    DeadState,
    /// Version unknown: read both forms of dead as dead.
    Unknown,
}

impl Semantics {
    pub fn for_version(version: Option<HermesVersion>) -> Semantics {
        match version {
            None => Semantics::Unknown,
            Some(version) if version < HermesVersion::FIRST_WITH_DEAD_STATE => {
                Semantics::NoDeadState
            }
            Some(_) => Semantics::DeadState,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    Exhausted,
    Dead,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Exhausted => "exhausted",
            State::Dead => "dead",
        }
    }
}

/// An entry's state as Hermes sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Availability {
    /// `None` for a status string Hermes does not know.
    pub state: Option<State>,
    pub reason: Option<String>,
    /// Epoch seconds of the last status change.
    pub since: Option<f64>,
    /// Seconds until an exhausted entry is usable again.
    pub available_in_seconds: Option<f64>,
    /// Whether Hermes would select it now.
    pub usable: bool,
}

pub fn availability(entry: &PoolEntry, semantics: Semantics, now: f64) -> Availability {
    let recorded_reason = entry
        .last_error_reason
        .clone()
        .or_else(|| entry.last_error_code.map(|code| format!("HTTP {code}")));
    let base = Availability {
        state: Some(State::Ok),
        reason: None,
        since: entry.last_status_at,
        available_in_seconds: None,
        usable: true,
    };
    match entry.last_status.as_deref() {
        None | Some("ok") => base,
        Some("dead") if semantics == Semantics::NoDeadState => Availability {
            reason: Some("marked dead, which this Hermes version ignores".into()),
            ..base
        },
        Some("dead") => Availability {
            state: Some(State::Dead),
            reason: recorded_reason,
            usable: false,
            ..base
        },
        Some("exhausted") => {
            let until = entry.last_error_reset_at.or_else(|| {
                let ttl = if entry.last_error_code == Some(401) {
                    TTL_401_SECONDS
                } else {
                    TTL_OTHER_SECONDS
                };
                entry.last_status_at.map(|at| at + ttl)
            });
            match until {
                Some(until) if until - now > FOREVER_SECONDS => Availability {
                    state: Some(State::Dead),
                    reason: recorded_reason,
                    usable: false,
                    ..base
                },
                Some(until) if now < until => Availability {
                    state: Some(State::Exhausted),
                    reason: recorded_reason,
                    available_in_seconds: Some(until - now),
                    usable: false,
                    ..base
                },
                _ => Availability {
                    reason: Some("cooldown over; Hermes resets it on the next selection".into()),
                    ..base
                },
            }
        }
        Some(other) => Availability {
            state: None,
            reason: Some(format!("unknown status {other:?}")),
            ..base
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        status: Option<&str>,
        at: Option<f64>,
        code: Option<i64>,
        reset: Option<f64>,
    ) -> PoolEntry {
        PoolEntry {
            id: "a1b2c3".into(),
            label: None,
            auth_type: None,
            source: None,
            last_status: status.map(str::to_owned),
            last_status_at: at,
            last_error_code: code,
            last_error_reason: None,
            last_error_message: None,
            last_error_reset_at: reset,
            fingerprint: None,
            renewed_at: None,
        }
    }

    const NOW: f64 = 1_780_000_000.0;

    #[test]
    fn exhausted_401_cools_down_for_five_minutes() {
        let e = entry(Some("exhausted"), Some(NOW - 100.0), Some(401), None);
        let a = availability(&e, Semantics::NoDeadState, NOW);
        assert_eq!(a.state, Some(State::Exhausted));
        assert_eq!(a.available_in_seconds, Some(200.0));
        let later = availability(&e, Semantics::NoDeadState, NOW + 201.0);
        assert_eq!(later.state, Some(State::Ok));
        assert!(later.usable);
    }

    #[test]
    fn other_codes_cool_down_for_an_hour_and_reset_at_wins() {
        let e = entry(Some("exhausted"), Some(NOW), Some(429), None);
        assert_eq!(
            availability(&e, Semantics::DeadState, NOW).available_in_seconds,
            Some(3600.0)
        );
        let e = entry(Some("exhausted"), Some(NOW), Some(429), Some(NOW + 10.0));
        assert_eq!(
            availability(&e, Semantics::DeadState, NOW).available_in_seconds,
            Some(10.0)
        );
    }

    #[test]
    fn dead_depends_on_the_version() {
        let e = entry(Some("dead"), Some(NOW), Some(401), None);
        assert!(availability(&e, Semantics::NoDeadState, NOW).usable);
        assert_eq!(
            availability(&e, Semantics::DeadState, NOW + 1e9).state,
            Some(State::Dead)
        );
        assert_eq!(
            availability(&e, Semantics::Unknown, NOW).state,
            Some(State::Dead)
        );
    }

    #[test]
    fn far_future_cooldown_is_dead_on_every_version() {
        let e = entry(
            Some("exhausted"),
            Some(NOW),
            Some(401),
            Some(NOW + 100.0 * 365.0 * 86_400.0),
        );
        for semantics in [
            Semantics::NoDeadState,
            Semantics::DeadState,
            Semantics::Unknown,
        ] {
            let a = availability(&e, semantics, NOW);
            assert_eq!(a.state, Some(State::Dead));
            assert!(!a.usable);
        }
    }

    #[test]
    fn unknown_status_is_usable_but_unknown() {
        let a = availability(
            &entry(Some("weird"), None, None, None),
            Semantics::DeadState,
            NOW,
        );
        assert_eq!(a.state, None);
        assert!(a.usable);
    }
}
