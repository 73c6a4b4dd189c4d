//! What a Hermes version honours: the statuses a pool entry can have, when Hermes will use an
//! entry again, and the form a dead mark must take. The one place that knows; writing a mark
//! and judging it both ask here, so a mark the installed Hermes would ignore is never written.
//!
//! Hermes 0.13-0.15 know only `ok` and `exhausted`: an exhausted entry is skipped while
//! `now < until` (`last_error_reset_at`, else `last_status_at` + 300 s for a 401 and 3600 s for
//! anything else) and every other status, `dead` included, is usable. Hermes 0.16 and later
//! skip `dead` entries for good. The warden's "dead" for old versions is `exhausted` with a
//! reset time so far ahead that it never passes; every version reads that form as dead, so it
//! is the form used when the version is unknown.

use crate::hermes::version::HermesVersion;
use crate::pool::snapshot::{LastStatus, PoolEntry};

/// A cooldown that ends further ahead than this is the warden's dead mark for old Hermes.
pub const FOREVER_SECONDS: f64 = 10.0 * 365.0 * 86_400.0;
/// The reset time of the `exhausted` form of a dead mark: 2100-01-01T00:00:00Z, far enough
/// ahead to read as dead, and below the 10^12 above which Hermes reads a timestamp as
/// milliseconds.
pub const FOREVER_RESET_AT: f64 = 4_102_444_800.0;
const _: () = assert!(FOREVER_RESET_AT - 1.8e9 > FOREVER_SECONDS && FOREVER_RESET_AT < 1e12);
const TTL_401_SECONDS: f64 = 300.0;
const TTL_OTHER_SECONDS: f64 = 3_600.0;

/// Which status rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantics {
    /// Hermes 0.15 and older: no dead state.
    NoDeadState,
    /// Hermes 0.16 and later: dead is permanent.
    DeadState,
    /// Version unknown: read both forms of dead as dead, write the one every version honours.
    Unknown,
}

/// How a dead mark is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadForm {
    /// `last_status: "dead"` (Hermes 0.16 and later).
    Dead,
    /// `exhausted` until [`FOREVER_RESET_AT`] (every version).
    Exhausted,
}

impl DeadForm {
    /// The form a dead mark takes on Hermes `version` for the configured `choice`. A form that
    /// version would ignore is refused, so a written mark is always one that
    /// [`Semantics::availability`] of the same version reads as dead, and is never rewritten in
    /// a loop.
    pub fn for_hermes(
        choice: MarkAs,
        version: Option<HermesVersion>,
    ) -> Result<DeadForm, FormRefused> {
        match (choice, Semantics::for_version(version), version) {
            (MarkAs::Exhausted, _, _) => Ok(DeadForm::Exhausted),
            (MarkAs::Auto | MarkAs::Dead, Semantics::DeadState, _) => Ok(DeadForm::Dead),
            (MarkAs::Auto, _, _) => Ok(DeadForm::Exhausted),
            (MarkAs::Dead, _, Some(version)) => Err(FormRefused::NoDeadState(version)),
            (MarkAs::Dead, _, None) => Err(FormRefused::UnknownVersion),
        }
    }

    /// How the mark is written, in words: "dead marks are written as ...", for the reports and
    /// the daemon's start line.
    pub fn describe(self) -> String {
        match self {
            DeadForm::Dead => "dead marks are written as `last_status: dead`".to_owned(),
            DeadForm::Exhausted => format!(
                "dead marks are written as `exhausted` until {}, which every version honours",
                jiff::Timestamp::from_second(FOREVER_RESET_AT as i64)
                    .expect("2100-01-01 is a time")
                    .strftime("%Y-%m-%d")
            ),
        }
    }

    /// The `last_status` and `last_error_reset_at` the mark writes.
    pub fn fields(self) -> (LastStatus, Option<f64>) {
        match self {
            DeadForm::Dead => (LastStatus::Dead, None),
            DeadForm::Exhausted => (LastStatus::Exhausted, Some(FOREVER_RESET_AT)),
        }
    }
}

/// The configured choice of form (`mark_as` in warden.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkAs {
    /// The form the installed Hermes honours; the one every version honours when unknown.
    #[default]
    Auto,
    Dead,
    Exhausted,
}

/// `mark_as` asks for a form the installed Hermes would ignore (or might: version unknown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormRefused {
    #[error(
        "mark_as = \"dead\": Hermes {0} has no dead state (it came in 0.16.0) and would keep using \
         the credential; use mark_as = \"exhausted\" or \"auto\", which Hermes {0} honours"
    )]
    NoDeadState(HermesVersion),
    #[error(
        "mark_as = \"dead\": the installed Hermes version is unknown, and Hermes before 0.16.0 \
         ignores dead; set hermes_version (or --hermes-version) to 0.16.0 or later, or use \
         mark_as = \"exhausted\" or \"auto\", which every version honours"
    )]
    UnknownVersion,
}

/// Whether Hermes reads an auth.json that starts with a UTF-8 byte-order mark. 0.13-0.19
/// (every PyPI release) read it with plain `json.loads(read_text())`, which rejects the BOM:
/// they take the file for corrupt, move it to `auth.json.corrupt` and start with an empty
/// store. Hermes from git reads it as `utf-8-sig`; 0.20.0 is the first version not on PyPI.
/// Unknown version: not assumed.
pub fn reads_bom(version: Option<HermesVersion>) -> bool {
    const FIRST_READING_BOM: HermesVersion = HermesVersion {
        major: 0,
        minor: 20,
        patch: 0,
    };
    version.is_some_and(|version| version >= FIRST_READING_BOM)
}

/// What to do with an auth.json that starts with a UTF-8 byte-order mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bom {
    /// The installed Hermes reads it: write it back, so no byte outside the edit changes.
    Keep,
    /// The installed Hermes cannot read such a file (its credentials are gone for it already):
    /// write nothing, say why.
    Refuse,
}

impl Bom {
    pub fn for_version(version: Option<HermesVersion>) -> Bom {
        match reads_bom(version) {
            true => Bom::Keep,
            false => Bom::Refuse,
        }
    }
}

/// An entry's state as Hermes sees it.
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
    /// `None` for a status Hermes does not know.
    pub state: Option<State>,
    pub reason: Option<String>,
    /// Epoch seconds of the last status change.
    pub since: Option<f64>,
    /// Seconds until an exhausted entry is usable again.
    pub available_in_seconds: Option<f64>,
    /// Whether Hermes would select it now.
    pub usable: bool,
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

    /// Whether `status` is one this version acts on (an unknown one reads as usable).
    pub fn knows(self, status: &LastStatus) -> bool {
        match status {
            LastStatus::Ok | LastStatus::Exhausted => true,
            LastStatus::Dead => self != Semantics::NoDeadState,
            LastStatus::Other(_) => false,
        }
    }

    /// Whether Hermes will never select the entry again (until something clears its status).
    pub fn is_dead(self, entry: &PoolEntry, now: f64) -> bool {
        self.availability(entry, now).state == Some(State::Dead)
    }

    /// The entry's state as this version sees it at `now` (epoch seconds).
    pub fn availability(self, entry: &PoolEntry, now: f64) -> Availability {
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
        let unusable = |state| Availability {
            state: Some(state),
            reason: recorded_reason.clone(),
            usable: false,
            ..base.clone()
        };
        match &entry.last_status {
            None | Some(LastStatus::Ok) => base,
            Some(status @ LastStatus::Dead) if !self.knows(status) => Availability {
                reason: Some("marked dead, which this Hermes version ignores".into()),
                ..base
            },
            Some(LastStatus::Dead) => unusable(State::Dead),
            Some(LastStatus::Exhausted) => {
                let until = entry.last_error_reset_at.or_else(|| {
                    let ttl = if entry.last_error_code == Some(401) {
                        TTL_401_SECONDS
                    } else {
                        TTL_OTHER_SECONDS
                    };
                    entry.last_status_at.map(|at| at + ttl)
                });
                match until {
                    Some(until) if until - now > FOREVER_SECONDS => unusable(State::Dead),
                    Some(until) if now < until => Availability {
                        available_in_seconds: Some(until - now),
                        ..unusable(State::Exhausted)
                    },
                    _ => Availability {
                        reason: Some(
                            "cooldown over; Hermes resets it on the next selection".into(),
                        ),
                        ..base
                    },
                }
            }
            Some(LastStatus::Other(other)) => Availability {
                state: None,
                reason: Some(format!("unknown status {other:?}")),
                ..base
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        status: Option<LastStatus>,
        at: Option<f64>,
        code: Option<i64>,
        reset: Option<f64>,
    ) -> PoolEntry {
        PoolEntry {
            last_status: status,
            last_status_at: at,
            last_error_code: code,
            last_error_reset_at: reset,
            id: "a1b2c3".into(),
            ..PoolEntry::default()
        }
    }

    const NOW: f64 = 1_780_000_000.0;
    fn version(text: &str) -> Option<HermesVersion> {
        HermesVersion::parse(text)
    }

    #[test]
    fn exhausted_401_cools_down_for_five_minutes() {
        let e = entry(
            Some(LastStatus::Exhausted),
            Some(NOW - 100.0),
            Some(401),
            None,
        );
        let a = Semantics::NoDeadState.availability(&e, NOW);
        assert_eq!(a.state, Some(State::Exhausted));
        assert_eq!(a.available_in_seconds, Some(200.0));
        let later = Semantics::NoDeadState.availability(&e, NOW + 201.0);
        assert_eq!(later.state, Some(State::Ok));
        assert!(later.usable);
    }

    #[test]
    fn other_codes_cool_down_for_an_hour_and_reset_at_wins() {
        let e = entry(Some(LastStatus::Exhausted), Some(NOW), Some(429), None);
        assert_eq!(
            Semantics::DeadState
                .availability(&e, NOW)
                .available_in_seconds,
            Some(3600.0)
        );
        let e = entry(
            Some(LastStatus::Exhausted),
            Some(NOW),
            Some(429),
            Some(NOW + 10.0),
        );
        assert_eq!(
            Semantics::DeadState
                .availability(&e, NOW)
                .available_in_seconds,
            Some(10.0)
        );
    }

    #[test]
    fn dead_depends_on_the_version() {
        let e = entry(Some(LastStatus::Dead), Some(NOW), Some(401), None);
        assert!(Semantics::NoDeadState.availability(&e, NOW).usable);
        assert!(Semantics::DeadState.is_dead(&e, NOW + 1e9));
        assert!(Semantics::Unknown.is_dead(&e, NOW));
        // Dead by a failed refresh has no error code (newer Hermes): dead all the same.
        let by_refresh = entry(Some(LastStatus::Dead), Some(NOW), None, None);
        assert!(Semantics::DeadState.is_dead(&by_refresh, NOW));
    }

    #[test]
    fn far_future_cooldown_is_dead_on_every_version() {
        let e = entry(
            Some(LastStatus::Exhausted),
            Some(NOW),
            Some(401),
            Some(NOW + 100.0 * 365.0 * 86_400.0),
        );
        for semantics in [
            Semantics::NoDeadState,
            Semantics::DeadState,
            Semantics::Unknown,
        ] {
            let a = semantics.availability(&e, NOW);
            assert_eq!(a.state, Some(State::Dead));
            assert!(!a.usable);
        }
    }

    #[test]
    fn unknown_status_is_usable_but_unknown() {
        let a = Semantics::DeadState.availability(
            &entry(Some(LastStatus::Other("weird".into())), None, None, None),
            NOW,
        );
        assert_eq!(a.state, None);
        assert!(a.usable);
    }

    #[test]
    fn the_form_follows_the_version_and_a_form_it_would_ignore_is_refused() {
        let form = |choice, text| DeadForm::for_hermes(choice, version(text));
        assert_eq!(form(MarkAs::Auto, "0.15.2"), Ok(DeadForm::Exhausted));
        assert_eq!(form(MarkAs::Auto, "0.16.0"), Ok(DeadForm::Dead));
        assert_eq!(form(MarkAs::Auto, "no version"), Ok(DeadForm::Exhausted));
        assert_eq!(form(MarkAs::Exhausted, "0.19.0"), Ok(DeadForm::Exhausted));
        assert_eq!(form(MarkAs::Dead, "0.19.0"), Ok(DeadForm::Dead));
        let refused = form(MarkAs::Dead, "0.15.0").unwrap_err().to_string();
        for needle in ["mark_as", "0.15.0", "exhausted"] {
            assert!(refused.contains(needle), "{refused}");
        }
        assert_eq!(
            form(MarkAs::Dead, "no version"),
            Err(FormRefused::UnknownVersion)
        );
    }

    /// The property the refusal guarantees: whatever is configured, a mark that is written is
    /// read back as dead by the same version, now and long after, so it is never written again.
    #[test]
    fn every_accepted_form_reads_as_dead_on_its_version() {
        for text in ["0.15.0", "0.16.0", "0.19.0", "unknown"] {
            let semantics = Semantics::for_version(version(text));
            for choice in [MarkAs::Auto, MarkAs::Dead, MarkAs::Exhausted] {
                let Ok(form) = DeadForm::for_hermes(choice, version(text)) else {
                    continue;
                };
                let (status, reset_at) = form.fields();
                let marked = entry(Some(status), Some(NOW), Some(401), reset_at);
                for later in [0.0, 301.0, 3601.0, 5.0 * 365.0 * 86_400.0] {
                    assert!(
                        semantics.is_dead(&marked, NOW + later),
                        "{semantics:?} {choice:?} {form:?} +{later}s"
                    );
                }
            }
        }
    }
}
