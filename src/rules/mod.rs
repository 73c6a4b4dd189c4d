//! Rules: what a credential failure looks like in the Hermes logs, kept as data.
//!
//! A rule is a regex on a record's message (or on a traceback line) with named captures, optional
//! conditions on the captures and on the provider's error payload, the kind of finding it yields
//! and the action it asks for. Rules carry their own sample lines; `rules check` runs them. All
//! rules are matched together: a literal prefilter over the whole buffer finds candidate lines,
//! the literals found in a candidate say which rules could match it, and only those run.
//! This module is pure: no I/O beyond what `load` is handed.

mod builtin;
mod load;
mod samples;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use aho_corasick::AhoCorasick;
use regex::Regex;
use serde::Serialize;

use crate::hermes::home::LogFile;
use crate::read::payload::{self, ErrorPayload};

pub use builtin::builtin_sources;
pub use load::{LoadError, RuleSource, load_rule_set};
pub use samples::{SampleFailure, check_samples};

/// What a matched line means.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The provider said the credential is permanently gone (revoked, invalidated...).
    TerminalAuthFailure,
    /// Hermes itself marked the credential dead.
    DeadByHermes,
    /// An authentication failure that may recover (expired token, unknown reason).
    AuthFailure,
    /// Usage limit or rate limit.
    RateLimit,
    /// Any other failed provider call (402, 5xx, a timeout, a connection error).
    ProviderError,
    /// Hermes marked a credential exhausted; names it, says nothing of why.
    CredentialMarked,
    /// Hermes rotated to another entry (names the NEXT entry, not the failed one).
    CredentialRotated,
    /// Refreshing did not help for a named pool entry.
    RefreshFailurePersists,
    /// Hermes pruned a dead manual entry from the pool.
    DeadPruned,
    /// No pool entry was usable; Hermes falls back to the singleton token.
    PoolEmpty,
    /// Context compaction failed or was skipped.
    CompactionFailure,
    /// The auxiliary summary model failed and Hermes fell back to the main model.
    SummaryFallback,
}

impl FindingKind {
    /// Whether the line names the credential that failed (as opposed to the next one).
    pub fn names_failed_credential(self) -> bool {
        matches!(
            self,
            Self::DeadByHermes | Self::CredentialMarked | Self::RefreshFailurePersists
        )
    }

    /// Whether this is a failure of a credential (something attribution should try to pin).
    pub fn is_credential_failure(self) -> bool {
        matches!(
            self,
            Self::TerminalAuthFailure
                | Self::DeadByHermes
                | Self::AuthFailure
                | Self::RateLimit
                | Self::CredentialMarked
                | Self::RefreshFailurePersists
        )
    }

    /// How much a line of this kind says about a credential, strongest first: a line several
    /// rules match is an event of its strongest kind, the others its facets.
    pub fn rank(self) -> u8 {
        match self {
            Self::TerminalAuthFailure => 0,
            Self::DeadByHermes => 1,
            Self::RefreshFailurePersists => 2,
            Self::AuthFailure => 3,
            Self::RateLimit => 4,
            Self::ProviderError => 5,
            Self::CredentialMarked => 6,
            Self::DeadPruned => 7,
            Self::PoolEmpty => 8,
            Self::CompactionFailure => 9,
            Self::SummaryFallback => 10,
            Self::CredentialRotated => 11,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TerminalAuthFailure => "terminal_auth_failure",
            Self::DeadByHermes => "dead_by_hermes",
            Self::AuthFailure => "auth_failure",
            Self::RateLimit => "rate_limit",
            Self::ProviderError => "provider_error",
            Self::CredentialMarked => "credential_marked",
            Self::CredentialRotated => "credential_rotated",
            Self::RefreshFailurePersists => "refresh_failure_persists",
            Self::DeadPruned => "dead_pruned",
            Self::PoolEmpty => "pool_empty",
            Self::CompactionFailure => "compaction_failure",
            Self::SummaryFallback => "summary_fallback",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    MarkDead,
    None,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::MarkDead => "mark_dead",
            Action::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Which lines of a record a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinePart {
    /// The message of a line with a header.
    Message,
    /// A line without a header: tracebacks and multi-line messages.
    Continuation,
}

/// A value a condition compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Int(i64),
    Str(String),
    Bool(bool),
}

#[derive(Debug, Clone)]
pub enum Condition {
    Equals(Scalar),
    OneOf(Vec<Scalar>),
    Matches(Regex),
}

/// Where a rule was defined, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

#[derive(Debug, Clone)]
pub struct Sample {
    /// One or more log lines; the rule must match the last record part of them.
    pub text: String,
    pub file: LogFile,
    pub expect: Vec<(String, Scalar)>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub description: String,
    pub kind: FindingKind,
    pub action: Action,
    pub severity: Severity,
    pub files: Vec<LogFile>,
    pub levels: Vec<String>,
    pub part: LinePart,
    pub pattern: Regex,
    pub prefilter: Vec<String>,
    pub when: Vec<(String, Condition)>,
    pub unless: Vec<(String, Condition)>,
    pub set: Vec<(String, String)>,
    /// Yields nothing on a line where a non-fallback rule of the same kind matched.
    pub fallback: bool,
    pub must_match: Vec<Sample>,
    pub must_not_match: Vec<Sample>,
    pub origin: Origin,
}

impl Rule {
    pub fn applies_to(&self, file: LogFile, level: Option<&str>, part: LinePart) -> bool {
        self.part == part
            && self.files.contains(&file)
            && (self.levels.is_empty()
                || level.is_some_and(|level| self.levels.iter().any(|l| l == level)))
    }
}

/// What one rule read from one line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fields {
    pub provider: Option<String>,
    pub label: Option<String>,
    pub credential_id: Option<String>,
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub captures: BTreeMap<String, String>,
    pub payload: Option<Rc<ErrorPayload>>,
}

/// What providers mean by their messages (`[messages]` in the rule files): the reason for a
/// line that carries only the provider's message (`summary=HTTP 401: <message>`). A message
/// is matched whole, ignoring case, surrounding space and a final full stop.
#[derive(Debug, Clone, Default)]
pub struct ProviderMessages {
    reasons: HashMap<String, String>,
}

impl ProviderMessages {
    /// Adds (or replaces) what `message` means.
    pub fn insert(&mut self, message: &str, reason: &str) {
        self.reasons.insert(Self::key(message), reason.to_owned());
    }

    pub fn reason_of(&self, message: &str) -> Option<&str> {
        self.reasons.get(&Self::key(message)).map(String::as_str)
    }

    fn key(message: &str) -> String {
        let message = message.trim();
        message
            .strip_suffix('.')
            .unwrap_or(message)
            .trim_end()
            .to_lowercase()
    }
}

/// Payloads already parsed from one line, by the span of text they were parsed from.
type PayloadCache = Vec<(std::ops::Range<usize>, Option<Rc<ErrorPayload>>)>;

impl Fields {
    /// Reads what `pattern` captures in `text`; `payloads` caches the payloads parsed from
    /// this text so far, by span, as several rules usually capture the same one. A line that
    /// gives a message but no reason gets the reason `messages` knows for that message.
    fn read(
        pattern: &Regex,
        text: &str,
        payloads: &mut PayloadCache,
        messages: &ProviderMessages,
    ) -> Option<Fields> {
        let caps = pattern.captures(text)?;
        let captures: BTreeMap<String, String> = pattern
            .capture_names()
            .flatten()
            // The payload is parsed below; its text is never shown.
            .filter(|name| *name != "payload")
            .filter_map(|name| Some((name.to_owned(), caps.name(name)?.as_str().to_owned())))
            .collect();
        let span = caps.name("payload").map_or(0..text.len(), |m| m.range());
        let payload = match payloads.iter().find(|(cached, _)| *cached == span) {
            Some((_, payload)) => payload.clone(),
            None => {
                let payload = payload::find(&text[span.clone()]).map(Rc::new);
                payloads.push((span, payload.clone()));
                payload
            }
        };
        let status = captures
            .get("status")
            .and_then(|status| status.parse().ok())
            .or(payload.as_ref().and_then(|p| p.status));
        let reason = captures
            .get("reason")
            .cloned()
            .or_else(|| payload.as_ref().and_then(|p| p.reason.clone()));
        let message = captures
            .get("message")
            .cloned()
            .or_else(|| payload.as_ref().and_then(|p| p.message.clone()));
        let reason = reason.or_else(|| messages.reason_of(message.as_deref()?).map(str::to_owned));
        Some(Fields {
            provider: captures.get("provider").cloned(),
            label: captures.get("label").cloned(),
            credential_id: captures.get("id").cloned(),
            status,
            reason,
            message,
            captures,
            payload,
        })
    }

    /// The value of a field named in a condition or a sample's expectations.
    pub fn get(&self, name: &str) -> Option<Scalar> {
        let text = |value: &Option<String>| value.clone().map(Scalar::Str);
        match name {
            "provider" => text(&self.provider),
            "label" => text(&self.label),
            "id" => text(&self.credential_id),
            "status" => self.status.map(|status| Scalar::Int(i64::from(status))),
            "reason" => text(&self.reason),
            "message" => text(&self.message),
            _ => match name.strip_prefix("payload.") {
                Some(path) => self.payload_field(path),
                None => self.captures.get(name).cloned().map(Scalar::Str),
            },
        }
    }

    fn payload_field(&self, path: &str) -> Option<Scalar> {
        let mut value = &self.payload.as_ref()?.body;
        for key in path.split('.') {
            value = value.get(key)?;
        }
        match value {
            serde_json::Value::String(text) => Some(Scalar::Str(text.clone())),
            serde_json::Value::Bool(flag) => Some(Scalar::Bool(*flag)),
            serde_json::Value::Number(number) => number.as_i64().map(Scalar::Int),
            _ => None,
        }
    }

    fn set(&mut self, name: &str, value: &str) {
        let slot = match name {
            "provider" => &mut self.provider,
            "label" => &mut self.label,
            "id" => &mut self.credential_id,
            "reason" => &mut self.reason,
            "message" => &mut self.message,
            _ => return,
        };
        slot.get_or_insert_with(|| value.to_owned());
    }
}

impl Condition {
    fn holds(&self, value: Option<&Scalar>) -> bool {
        let Some(value) = value else {
            return false;
        };
        match self {
            Condition::Equals(expected) => scalars_equal(value, expected),
            Condition::OneOf(options) => options.iter().any(|option| scalars_equal(value, option)),
            Condition::Matches(regex) => match value {
                Scalar::Str(text) => regex.is_match(text),
                Scalar::Int(number) => regex.is_match(&number.to_string()),
                Scalar::Bool(flag) => regex.is_match(if *flag { "true" } else { "false" }),
            },
        }
    }
}

/// Strings compare case-insensitively after trimming, as Hermes compares reasons.
pub fn scalars_equal(a: &Scalar, b: &Scalar) -> bool {
    match (a, b) {
        (Scalar::Str(a), Scalar::Str(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
        (Scalar::Int(a), Scalar::Int(b)) => a == b,
        (Scalar::Int(a), Scalar::Str(b)) | (Scalar::Str(b), Scalar::Int(a)) => {
            b.trim().parse::<i64>().ok() == Some(*a)
        }
        (Scalar::Bool(a), Scalar::Bool(b)) => a == b,
        _ => false,
    }
}

/// A rule that matched a line, with what it read.
#[derive(Debug, Clone)]
pub struct RuleMatch<'r> {
    pub rule: &'r Rule,
    pub fields: Fields,
}

/// All rules, compiled for matching in one pass.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    messages: ProviderMessages,
    /// Finds candidate lines in a whole buffer (leftmost-first is the fastest search).
    prefilter: AhoCorasick,
    /// Finds every literal in one candidate line, to know which rules could match it.
    line_literals: AhoCorasick,
    /// The rule each literal of `line_literals` belongs to.
    rule_of_literal: Vec<usize>,
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>, messages: ProviderMessages) -> RuleSet {
        let (literals, rule_of_literal): (Vec<&str>, Vec<usize>) = rules
            .iter()
            .enumerate()
            .flat_map(|(index, rule)| {
                rule.prefilter
                    .iter()
                    .map(move |literal| (literal.as_str(), index))
            })
            .unzip();
        let build = |kind| {
            AhoCorasick::builder()
                .match_kind(kind)
                .build(&literals)
                .expect("prefilter literals are plain strings")
        };
        RuleSet {
            prefilter: build(aho_corasick::MatchKind::LeftmostFirst),
            line_literals: build(aho_corasick::MatchKind::Standard),
            rule_of_literal,
            rules,
            messages,
        }
    }

    pub fn messages(&self) -> &ProviderMessages {
        &self.messages
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Finds the literals every rule needs; a line without one cannot match.
    pub fn prefilter(&self) -> &AhoCorasick {
        &self.prefilter
    }

    /// Runs every applicable rule over one line's text.
    pub fn match_text(
        &self,
        file: LogFile,
        level: Option<&str>,
        part: LinePart,
        text: &str,
    ) -> Vec<RuleMatch<'_>> {
        let mut candidates: Vec<usize> = self
            .line_literals
            .find_overlapping_iter(text)
            .map(|found| self.rule_of_literal[found.pattern().as_usize()])
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        let mut payloads = PayloadCache::new();
        let mut matches: Vec<RuleMatch<'_>> = candidates
            .into_iter()
            .map(|index| &self.rules[index])
            .filter(|rule| rule.applies_to(file, level, part))
            .filter_map(|rule| {
                let mut fields = Fields::read(&rule.pattern, text, &mut payloads, &self.messages)?;
                let holds = |(name, condition): &(String, Condition)| {
                    condition.holds(fields.get(name).as_ref())
                };
                if !rule.when.iter().all(holds) || rule.unless.iter().any(holds) {
                    return None;
                }
                for (name, value) in &rule.set {
                    fields.set(name, value);
                }
                Some(RuleMatch { rule, fields })
            })
            .collect();
        let specific_kinds: Vec<FindingKind> = matches
            .iter()
            .filter(|m| !m.rule.fallback)
            .map(|m| m.rule.kind)
            .collect();
        matches.retain(|m| !m.rule.fallback || !specific_kinds.contains(&m.rule.kind));
        matches
    }
}
