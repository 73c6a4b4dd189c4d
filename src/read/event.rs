//! Events: what a rule found on one log line, placed in time and in a Hermes home.
//!
//! A rule match becomes an event once it knows its file, its line, its profile and its moment.
//! Hermes writes local time without a zone, so the zone is an input (the system's, or `--tz`).
//! Every WARNING record is written to both errors.log and agent.log; `drop_copies` keeps one.

use std::collections::HashMap;

use jiff::ZonedDateTime;
use jiff::tz::TimeZone;

use crate::hermes::home::LogFile;
use crate::read::scanner::Hit;
use crate::rules::{Action, FindingKind};

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `None` for the root home.
    pub profile: Option<String>,
    /// The file, relative to the root Hermes home (`logs/errors.log.1`).
    pub file: String,
    /// Which log it is (the file may be a backup of it).
    pub log: LogFile,
    pub line: u64,
    pub time: Option<ZonedDateTime>,
    /// Stable hash of the line's text, for telling copies of one record apart.
    pub text_hash: u64,
    pub session: Option<String>,
    pub rule: String,
    pub kind: FindingKind,
    pub action: Action,
    pub provider: Option<String>,
    pub label: Option<String>,
    pub credential_id: Option<String>,
    pub status: Option<u16>,
    pub reason: Option<String>,
}

impl Event {
    pub fn from_hit(
        hit: &Hit<'_>,
        profile: Option<&str>,
        file: &str,
        log: LogFile,
        zone: &TimeZone,
    ) -> Event {
        let header = hit.header.as_ref();
        let fields = &hit.matched.fields;
        let rule = hit.matched.rule;
        Event {
            profile: profile.map(str::to_owned),
            file: file.to_owned(),
            log,
            line: hit.line,
            time: header.and_then(|h| record_time(&h.timestamp_text, zone)),
            text_hash: hit.text_hash,
            session: header.and_then(|h| h.session.clone()),
            rule: rule.id.clone(),
            kind: rule.kind,
            action: rule.action,
            provider: fields.provider.clone(),
            label: fields.label.clone(),
            credential_id: fields.credential_id.clone(),
            status: fields.status,
            reason: fields.reason.clone(),
        }
    }

    /// Epoch seconds, when the record had a readable time.
    pub fn epoch_seconds(&self) -> Option<f64> {
        self.time
            .as_ref()
            .map(|time| time.timestamp().as_millisecond() as f64 / 1000.0)
    }

    /// The name the line itself gives the credential (label or id).
    pub fn own_name(&self) -> Option<&str> {
        self.credential_id.as_deref().or(self.label.as_deref())
    }

    /// The same for the two copies of one record (errors.log and agent.log), different for
    /// different records, stable across restarts: profile, rule and the line's text.
    pub fn record_id(&self) -> String {
        let mut key = Vec::with_capacity(64);
        key.extend_from_slice(self.profile.as_deref().unwrap_or("").as_bytes());
        key.push(0);
        key.extend_from_slice(self.rule.as_bytes());
        key.push(0);
        key.extend_from_slice(&self.text_hash.to_be_bytes());
        crate::shared::secrets::short_hash(&key)
    }
}

/// A record's timestamp (`YYYY-MM-DD HH:MM:SS,mmm`, local time without a zone) placed in `zone`.
pub fn record_time(text: &str, zone: &TimeZone) -> Option<ZonedDateTime> {
    crate::read::record::parse_local_time(text)
        .and_then(|local| local.to_zoned_datetime(zone.clone()).ok())
}

/// Drops agent.log events that are copies of errors.log events (same record id), one copy for
/// one original, so a record logged to both files counts once.
pub fn drop_copies(events: Vec<Event>) -> Vec<Event> {
    let mut originals: HashMap<_, usize> = HashMap::new();
    for event in events.iter().filter(|e| e.log == LogFile::Errors) {
        *originals.entry(event.record_id()).or_default() += 1;
    }
    events
        .into_iter()
        .filter(|event| {
            if event.log != LogFile::Agent {
                return true;
            }
            match originals.get_mut(&event.record_id()) {
                Some(count) if *count > 0 => {
                    *count -= 1;
                    false
                }
                _ => true,
            }
        })
        .collect()
}
