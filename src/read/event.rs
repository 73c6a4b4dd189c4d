//! Events: what the rules found on one log line, placed in time and in a Hermes home.
//!
//! The rules that match a line become one event once it knows its file, its line, its profile
//! and its moment: one failure is one event, of the strongest kind found, with the others as
//! its facets (a compaction failure that carries a terminal 401 is a terminal failure with the
//! facet `compaction_failure`), so counts count failures, not rule hits.
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
    /// The rule of the strongest kind that matched the line.
    pub rule: String,
    /// Its kind.
    pub kind: FindingKind,
    /// The other kinds the line has, from the other rules that matched it (a compaction
    /// failure that carries a terminal 401 is a terminal failure with the facet
    /// `compaction_failure`), strongest first.
    pub facets: Vec<FindingKind>,
    /// The strongest action any of them asks for.
    pub action: Action,
    pub provider: Option<String>,
    pub label: Option<String>,
    pub credential_id: Option<String>,
    pub status: Option<u16>,
    pub reason: Option<String>,
}

impl Event {
    /// One event per line from the scanner's hits (one per rule that matched, a line's hits
    /// next to each other): one failure is one event, whatever number of rules saw it.
    pub fn from_hits(
        hits: &[Hit<'_>],
        profile: Option<&str>,
        file: &str,
        log: LogFile,
        zone: &TimeZone,
    ) -> Vec<Event> {
        hits.chunk_by(|a, b| a.line == b.line)
            .map(|line| Event::from_line(line, profile, file, log, zone))
            .collect()
    }

    /// The event of one line, from every rule that matched it: the strongest kind leads, its
    /// fields first, the others' filling what it lacks.
    fn from_line(
        hits: &[Hit<'_>],
        profile: Option<&str>,
        file: &str,
        log: LogFile,
        zone: &TimeZone,
    ) -> Event {
        let mut matches: Vec<&Hit<'_>> = hits.iter().collect();
        matches.sort_by_key(|hit| hit.matched.rule.kind.rank());
        let first = matches[0];
        let header = first.header.as_ref();
        let field = |get: &dyn Fn(&crate::rules::Fields) -> Option<String>| {
            matches.iter().find_map(|hit| get(&hit.matched.fields))
        };
        let mut facets: Vec<FindingKind> = Vec::new();
        for hit in &matches[1..] {
            let kind = hit.matched.rule.kind;
            if kind != first.matched.rule.kind && !facets.contains(&kind) {
                facets.push(kind);
            }
        }
        Event {
            profile: profile.map(str::to_owned),
            file: file.to_owned(),
            log,
            line: first.line,
            time: header.and_then(|h| record_time(&h.timestamp_text, zone)),
            text_hash: first.text_hash,
            session: header.and_then(|h| h.session.clone()),
            rule: first.matched.rule.id.clone(),
            kind: first.matched.rule.kind,
            facets,
            action: match matches
                .iter()
                .any(|hit| hit.matched.rule.action == Action::MarkDead)
            {
                true => Action::MarkDead,
                false => Action::None,
            },
            provider: field(&|f| f.provider.clone()),
            label: field(&|f| f.label.clone()),
            credential_id: field(&|f| f.credential_id.clone()),
            status: matches.iter().find_map(|hit| hit.matched.fields.status),
            reason: field(&|f| f.reason.clone()),
        }
    }

    /// Whether the event is of `kind`, or has it as a facet.
    pub fn has(&self, kind: FindingKind) -> bool {
        self.kind == kind || self.facets.contains(&kind)
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
    /// different records, stable across restarts: the first 8 bytes of the SHA-256 of
    /// profile, rule and the line's text.
    pub fn record_key(&self) -> u64 {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.profile.as_deref().unwrap_or("").as_bytes());
        hasher.update([0]);
        hasher.update(self.rule.as_bytes());
        hasher.update([0]);
        hasher.update(self.text_hash.to_be_bytes());
        let digest = hasher.finalize();
        u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
    }

    /// [`Self::record_key`] in 16 hex digits, as the audit log keeps it.
    pub fn record_id(&self) -> String {
        format!("{:016x}", self.record_key())
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
        *originals.entry(event.record_key()).or_default() += 1;
    }
    events
        .into_iter()
        .filter(|event| {
            if event.log != LogFile::Agent {
                return true;
            }
            match originals.get_mut(&event.record_key()) {
                Some(count) if *count > 0 => {
                    *count -= 1;
                    false
                }
                _ => true,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::scanner::LogScanner;
    use crate::rules::{builtin_sources, load_rule_set};

    fn events(lines: &str) -> Vec<Event> {
        let rules = load_rule_set(&builtin_sources()).unwrap();
        let mut scanner = LogScanner::new(&rules, LogFile::Errors, 1 << 20);
        let mut hits = Vec::new();
        scanner.feed(lines.as_bytes(), &mut hits);
        assert!(hits.len() > lines.lines().count(), "several rules match");
        Event::from_hits(
            &hits,
            None,
            "logs/errors.log",
            LogFile::Errors,
            &TimeZone::UTC,
        )
    }

    #[test]
    fn a_line_several_rules_match_is_one_event_with_facets() {
        let found = events(concat!(
            "2026-05-26 10:27:13,482 WARNING [s1] agent.context_compressor: Failed to generate context summary: Error code: 401 - {'error': {'message': 'x', 'code': 'token_invalidated'}, 'status': 401}\n",
            "2026-05-26 10:27:14,482 WARNING [s1] agent.context_compressor: Summary model 'gpt-5.1-codex-mini' failed (Error code: 401 - {'error': {'message': 'x', 'code': 'token_revoked'}, 'status': 401}). Falling back to main model 'gpt-5.1-codex' for compression.\n",
        ));
        let summary: Vec<(&str, FindingKind, &[FindingKind], Action)> = found
            .iter()
            .map(|e| (e.rule.as_str(), e.kind, &e.facets[..], e.action))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "summary-failed-terminal-auth",
                    FindingKind::TerminalAuthFailure,
                    &[FindingKind::CompactionFailure][..],
                    Action::MarkDead
                ),
                (
                    "summary-model-failed-terminal-auth",
                    FindingKind::TerminalAuthFailure,
                    &[FindingKind::SummaryFallback][..],
                    Action::MarkDead
                ),
            ]
        );
        assert_eq!(found[0].line, 1);
        assert_eq!(found[1].reason.as_deref(), Some("token_revoked"));
        assert!(found[0].has(FindingKind::CompactionFailure));
    }
}
