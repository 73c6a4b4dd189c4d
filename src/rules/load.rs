//! Reading rule files: TOML in, validated rules out, every error naming file, line and rule.
//!
//! Sources come in layers: the files compiled into the binary, then `<home>/warden/rules.d/`,
//! then `--rules DIR`. A later layer replaces a rule of the same id (or switches it off with
//! `enabled = false`) and may add new ones; the same id twice within one layer is an error.
//! Named lists (`[lists]`, e.g. the terminal reasons) and what providers' messages mean
//! (`[messages]`) are shared by all files and may be redefined by a later layer.

use std::collections::{BTreeMap, HashMap};

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::hermes::home::LogFile;

use super::{
    Action, Condition, FindingKind, LinePart, Origin, ProviderMessages, Rule, RuleSet, Sample,
    Scalar, Severity,
};

/// One rule file's text and where it came from.
#[derive(Debug, Clone)]
pub struct RuleSource {
    /// The path shown in messages (e.g. `rules/auth.toml`).
    pub name: String,
    pub text: String,
    /// 0 for the built-in rules; higher layers override lower ones.
    pub layer: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {}{message}", rule.as_ref().map(|id| format!("rule `{id}`: ")).unwrap_or_default())]
pub struct LoadError {
    pub file: String,
    pub line: usize,
    pub rule: Option<String>,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    lists: BTreeMap<String, Spanned<Vec<toml::Value>>>,
    /// A provider's message to the reason it means.
    #[serde(default)]
    messages: BTreeMap<String, String>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    #[serde(default)]
    description: String,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    kind: FindingKind,
    #[serde(default = "no_action")]
    action: Action,
    severity: Option<Severity>,
    files: Option<Vec<String>>,
    #[serde(default)]
    levels: Vec<String>,
    #[serde(default = "message_part")]
    part: LinePart,
    pattern: Spanned<String>,
    prefilter: Option<Vec<String>>,
    #[serde(default)]
    when: BTreeMap<String, toml::Value>,
    #[serde(default)]
    unless: BTreeMap<String, toml::Value>,
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    fallback: bool,
    #[serde(default)]
    must_match: Vec<Spanned<RawSample>>,
    #[serde(default)]
    must_not_match: Vec<Spanned<RawSample>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSample {
    line: String,
    file: Option<String>,
    #[serde(default)]
    expect: BTreeMap<String, toml::Value>,
}

fn enabled_by_default() -> bool {
    true
}
fn no_action() -> Action {
    Action::None
}
fn message_part() -> LinePart {
    LinePart::Message
}

/// Shortest literal accepted as a prefilter: shorter ones would make most lines candidates.
const MIN_PREFILTER_LEN: usize = 4;
const SETTABLE_FIELDS: [&str; 5] = ["provider", "label", "id", "reason", "message"];

struct ParsedFile<'s> {
    source: &'s RuleSource,
    raw: RawFile,
}

/// Loads every source into one rule set, or every error found.
pub fn load_rule_set(sources: &[RuleSource]) -> Result<RuleSet, Vec<LoadError>> {
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for source in sources {
        match toml::from_str::<RawFile>(&source.text) {
            Ok(raw) => parsed.push(ParsedFile { source, raw }),
            Err(error) => errors.push(LoadError {
                file: source.name.clone(),
                line: error
                    .span()
                    .map_or(1, |span| line_of(&source.text, span.start)),
                rule: None,
                message: error.message().to_owned(),
            }),
        }
    }
    let lists = collect_lists(&parsed, &mut errors);
    let mut rules: Vec<Rule> = Vec::new();
    let mut placed: HashMap<String, (u8, Origin)> = HashMap::new();
    for file in &parsed {
        for raw in &file.raw.rule {
            let origin = Origin {
                file: file.source.name.clone(),
                line: line_of(&file.source.text, raw.span().start),
            };
            let id = raw.get_ref().id.clone();
            if let Some((layer, first)) = placed.get(&id)
                && *layer == file.source.layer
            {
                errors.push(LoadError {
                    file: origin.file.clone(),
                    line: origin.line,
                    rule: Some(id.clone()),
                    message: format!("duplicate rule id (first defined at {first})"),
                });
                continue;
            }
            placed.insert(id.clone(), (file.source.layer, origin.clone()));
            let existing = rules.iter().position(|rule| rule.id == id);
            if !raw.get_ref().enabled {
                if let Some(index) = existing {
                    rules.remove(index);
                }
                continue;
            }
            match build_rule(raw.get_ref(), file.source, origin, &lists) {
                Ok(rule) => match existing {
                    Some(index) => rules[index] = rule,
                    None => rules.push(rule),
                },
                Err(error) => errors.push(error),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Later layers say again, or say otherwise, what a message means.
    let mut messages = ProviderMessages::default();
    for file in &parsed {
        for (message, reason) in &file.raw.messages {
            messages.insert(message, reason);
        }
    }
    Ok(RuleSet::new(rules, messages))
}

fn collect_lists(
    parsed: &[ParsedFile],
    errors: &mut Vec<LoadError>,
) -> HashMap<String, Vec<Scalar>> {
    let mut lists = HashMap::new();
    for file in parsed {
        for (name, values) in &file.raw.lists {
            let line = line_of(&file.source.text, values.span().start);
            let scalars: Result<Vec<Scalar>, String> =
                values.get_ref().iter().map(scalar).collect();
            match scalars {
                Ok(scalars) => {
                    lists.insert(name.clone(), scalars);
                }
                Err(message) => errors.push(LoadError {
                    file: file.source.name.clone(),
                    line,
                    rule: None,
                    message: format!("list `{name}`: {message}"),
                }),
            }
        }
    }
    lists
}

/// Checks one rule and builds it; the checks run in order and the first failure is the error.
fn build_rule(
    raw: &RawRule,
    source: &RuleSource,
    origin: Origin,
    lists: &HashMap<String, Vec<Scalar>>,
) -> Result<Rule, LoadError> {
    let site = Site {
        source,
        id: &raw.id,
        line: origin.line,
    };
    check_id(&site)?;
    let pattern = compile_pattern(&raw.pattern, &site)?;
    let prefilter = prefilter_literals(raw.prefilter.as_deref(), &raw.pattern, &site)?;
    let files = log_files(raw.files.as_deref(), &site)?;
    let when = conditions(&raw.when, lists, &site)?;
    let unless = conditions(&raw.unless, lists, &site)?;
    check_set(&raw.set, &site)?;
    let (must_match, must_not_match) = samples(raw, &files, &site)?;
    Ok(Rule {
        id: raw.id.clone(),
        description: raw.description.clone(),
        kind: raw.kind,
        action: raw.action,
        severity: raw
            .severity
            .unwrap_or(default_severity(raw.kind, raw.action)),
        files,
        levels: raw.levels.clone(),
        part: raw.part,
        pattern,
        prefilter,
        when,
        unless,
        set: raw
            .set
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        fallback: raw.fallback,
        must_match,
        must_not_match,
        origin,
    })
}

/// The rule being built and where it is written, so that every error names file, line and id.
struct Site<'a> {
    source: &'a RuleSource,
    id: &'a str,
    /// The line of the rule's `[[rule]]` header.
    line: usize,
}

impl Site<'_> {
    /// An error at the rule's own line.
    fn error(&self, message: String) -> LoadError {
        self.error_at(self.line, message)
    }

    /// An error at `line` of the rule's file.
    fn error_at(&self, line: usize, message: String) -> LoadError {
        LoadError {
            file: self.source.name.clone(),
            line,
            rule: Some(self.id.to_owned()),
            message,
        }
    }

    /// The line where `value` is written.
    fn line_of<T>(&self, value: &Spanned<T>) -> usize {
        line_of(&self.source.text, value.span().start)
    }
}

/// Checks that the id is non-empty and made of ASCII letters, digits, `-` and `_`.
fn check_id(site: &Site) -> Result<(), LoadError> {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if site.id.trim().is_empty() || !site.id.chars().all(valid) {
        return Err(site.error("an id is letters, digits, `-` and `_`".into()));
    }
    Ok(())
}

/// Checks that the pattern is a valid regex, reporting a bad one at the pattern's line.
fn compile_pattern(pattern: &Spanned<String>, site: &Site) -> Result<Regex, LoadError> {
    Regex::new(pattern.get_ref())
        .map_err(|error| site.error_at(site.line_of(pattern), format!("bad pattern: {error}")))
}

/// Checks that the prefilter (given, or else derived from the pattern) has only long enough literals.
fn prefilter_literals(
    given: Option<&[String]>,
    pattern: &Spanned<String>,
    site: &Site,
) -> Result<Vec<String>, LoadError> {
    let prefilter = match given {
        Some(literals) => literals.to_vec(),
        None => derive_prefilter(pattern.get_ref()).ok_or_else(|| {
            site.error_at(
                site.line_of(pattern),
                format!(
                    "no literal of at least {MIN_PREFILTER_LEN} bytes starts every match of the pattern; \
                     give one with `prefilter = [\"...\"]`"
                ),
            )
        })?,
    };
    if let Some(short) = prefilter
        .iter()
        .find(|literal| literal.len() < MIN_PREFILTER_LEN)
    {
        return Err(site.error(format!(
            "prefilter literal {short:?} is shorter than {MIN_PREFILTER_LEN} bytes"
        )));
    }
    Ok(prefilter)
}

/// Checks that every log file the rule reads (all of them by default) is a known one, and
/// that it reads at least one.
fn log_files(given: Option<&[String]>, site: &Site) -> Result<Vec<LogFile>, LoadError> {
    let Some(given) = given else {
        return Ok(LogFile::ALL.to_vec());
    };
    if given.is_empty() {
        return Err(site.error("`files` is empty: the rule would read no log".into()));
    }
    given
        .iter()
        .map(|name| {
            LogFile::parse(name).ok_or_else(|| {
                site.error(format!(
                    "unknown log file {name:?} (known: {})",
                    LogFile::ALL.map(LogFile::name).join(", ")
                ))
            })
        })
        .collect()
}

/// Checks every condition of a `when` or `unless` table, with `{ in = "..." }` naming a known list.
fn conditions(
    table: &BTreeMap<String, toml::Value>,
    lists: &HashMap<String, Vec<Scalar>>,
    site: &Site,
) -> Result<Vec<(String, Condition)>, LoadError> {
    table
        .iter()
        .map(|(name, value)| {
            condition(value, lists)
                .map(|condition| (name.clone(), condition))
                .map_err(|message| site.error(format!("condition on `{name}`: {message}")))
        })
        .collect()
}

/// Checks that `set` fills only the settable fields.
fn check_set(set: &BTreeMap<String, String>, site: &Site) -> Result<(), LoadError> {
    if let Some(name) = set
        .keys()
        .find(|name| !SETTABLE_FIELDS.contains(&name.as_str()))
    {
        return Err(site.error(format!(
            "`set` can fill {}, not `{name}`",
            SETTABLE_FIELDS.join(", ")
        )));
    }
    Ok(())
}

/// Checks every `must_match` and `must_not_match` sample, and that there is at least one of each.
fn samples(
    raw: &RawRule,
    files: &[LogFile],
    site: &Site,
) -> Result<(Vec<Sample>, Vec<Sample>), LoadError> {
    let read_all = |raw_samples: &[Spanned<RawSample>]| -> Result<Vec<Sample>, LoadError> {
        raw_samples
            .iter()
            .map(|raw_sample| sample(raw_sample, files, site))
            .collect()
    };
    let must_match = read_all(&raw.must_match)?;
    let must_not_match = read_all(&raw.must_not_match)?;
    if must_match.is_empty() {
        return Err(site.error("a rule needs at least one `[[rule.must_match]]` sample".into()));
    }
    if must_not_match.is_empty() {
        return Err(site.error("a rule needs at least one `[[rule.must_not_match]]` sample".into()));
    }
    Ok((must_match, must_not_match))
}

/// Checks that one sample names a known log file (the rule's first by default) and scalar expectations.
fn sample(
    raw_sample: &Spanned<RawSample>,
    files: &[LogFile],
    site: &Site,
) -> Result<Sample, LoadError> {
    let line = site.line_of(raw_sample);
    let body = raw_sample.get_ref();
    let file = match body.file.as_deref() {
        None => files[0],
        Some(name) => LogFile::parse(name).ok_or_else(|| {
            site.error_at(line, format!("sample names unknown log file {name:?}"))
        })?,
    };
    let expect = body
        .expect
        .iter()
        .map(|(name, value)| scalar(value).map(|value| (name.clone(), value)))
        .collect::<Result<_, _>>()
        .map_err(|message| site.error_at(line, format!("sample expectation: {message}")))?;
    Ok(Sample {
        text: body.line.clone(),
        file,
        expect,
        origin: Origin {
            file: site.source.name.clone(),
            line,
        },
    })
}

fn default_severity(kind: FindingKind, action: Action) -> Severity {
    match (kind, action) {
        (_, Action::MarkDead) => Severity::Critical,
        (
            FindingKind::CompactionFailure
            | FindingKind::SummaryFallback
            | FindingKind::AuthFailure
            | FindingKind::PoolEmpty,
            _,
        ) => Severity::Warning,
        _ => Severity::Info,
    }
}

/// The literals that begin every match of `pattern`, when there are few enough and they are long enough.
fn derive_prefilter(pattern: &str) -> Option<Vec<String>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let seq = regex_syntax::hir::literal::Extractor::new().extract(&hir);
    let literals = seq.literals()?;
    if literals.is_empty() || literals.len() > 16 {
        return None;
    }
    literals
        .iter()
        .map(|literal| {
            String::from_utf8(literal.as_bytes().to_vec())
                .ok()
                .filter(|text| text.len() >= MIN_PREFILTER_LEN)
        })
        .collect()
}

fn condition(
    value: &toml::Value,
    lists: &HashMap<String, Vec<Scalar>>,
) -> Result<Condition, String> {
    match value {
        toml::Value::Array(items) => Ok(Condition::OneOf(
            items.iter().map(scalar).collect::<Result<_, _>>()?,
        )),
        toml::Value::Table(table) if table.len() == 1 => {
            let (operator, operand) = table.iter().next().expect("one entry");
            let operand = operand
                .as_str()
                .ok_or_else(|| format!("`{operator}` takes a string"))?;
            match operator.as_str() {
                "in" => lists
                    .get(operand)
                    .map(|list| Condition::OneOf(list.clone()))
                    .ok_or_else(|| format!("no list named `{operand}`")),
                "matches" => Regex::new(operand)
                    .map(Condition::Matches)
                    .map_err(|error| format!("bad regex: {error}")),
                other => Err(format!(
                    "unknown operator `{other}` (use `in` or `matches`)"
                )),
            }
        }
        other => scalar(other).map(Condition::Equals),
    }
}

fn scalar(value: &toml::Value) -> Result<Scalar, String> {
    match value {
        toml::Value::String(text) => Ok(Scalar::Str(text.clone())),
        toml::Value::Integer(number) => Ok(Scalar::Int(*number)),
        toml::Value::Boolean(flag) => Ok(Scalar::Bool(*flag)),
        other => Err(format!(
            "expected a string, integer or boolean, found {}",
            other.type_str()
        )),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..offset.min(text.len())]).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RuleSet, Vec<LoadError>> {
        load_rule_set(&[RuleSource {
            name: "test.toml".into(),
            text: text.into(),
            layer: 0,
        }])
    }

    const GOOD: &str = r#"
[lists]
terminal = ["token_revoked"]

[[rule]]
id = "x"
kind = "terminal_auth_failure"
action = "mark_dead"
pattern = '^Failed to generate context summary: (?P<payload>.*)'
when = { status = 401, reason = { in = "terminal" } }
[[rule.must_match]]
line = "2026-05-26 10:27:13,482 WARNING agent.context_compressor: Failed to generate context summary: Error code: 401 - {'error': {'code': 'token_revoked'}}"
expect = { reason = "token_revoked" }
[[rule.must_not_match]]
line = "2026-05-26 10:27:13,482 WARNING agent.context_compressor: Failed to generate context summary: timed out"
"#;

    #[test]
    fn loads_and_derives_prefilter() {
        let set = load(GOOD).unwrap();
        assert_eq!(
            set.rules()[0].prefilter,
            vec!["Failed to generate context summary: "]
        );
        assert_eq!(set.rules()[0].severity, Severity::Critical);
    }

    #[test]
    fn bad_regex_names_file_line_and_rule() {
        let errors = load(&GOOD.replace("(?P<payload>.*)", "(?P<payload>.*")).unwrap_err();
        assert_eq!(errors.len(), 1);
        let text = errors[0].to_string();
        assert!(
            text.starts_with("test.toml:9: rule `x`: bad pattern"),
            "{text}"
        );
    }

    #[test]
    fn log_files_must_be_known_and_not_none() {
        let with_files =
            |files: &str| GOOD.replace("pattern = ", &format!("files = {files}\npattern = "));
        let set = load(&with_files(r#"["agent.log"]"#)).unwrap();
        assert_eq!(set.rules()[0].files, [LogFile::Agent]);
        for (files, message) in [
            ("[]", "`files` is empty"),
            (r#"["debug.log"]"#, "unknown log file"),
        ] {
            let errors = load(&with_files(files)).unwrap_err();
            let text = errors[0].to_string();
            assert!(
                text.starts_with("test.toml:") && text.contains(message),
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_field_is_an_error_with_its_line() {
        let errors = load(&GOOD.replace("kind = ", "kindd = \"x\"\nkind = ")).unwrap_err();
        assert!(
            errors[0].to_string().starts_with("test.toml:"),
            "{}",
            errors[0]
        );
        assert!(errors[0].message.contains("kindd"), "{}", errors[0]);
    }

    #[test]
    fn duplicate_id_in_one_layer_is_an_error() {
        let twice = format!(
            "{GOOD}\n{}",
            GOOD.split("[[rule]]")
                .nth(1)
                .map(|r| format!("[[rule]]{r}"))
                .unwrap()
        );
        let errors = load(&twice).unwrap_err();
        assert!(
            errors[0].message.contains("duplicate rule id"),
            "{}",
            errors[0]
        );
        assert_eq!(errors[0].rule.as_deref(), Some("x"));
    }

    #[test]
    fn later_layer_replaces_and_disables() {
        let base = RuleSource {
            name: "a.toml".into(),
            text: GOOD.into(),
            layer: 0,
        };
        let replaced = RuleSource {
            name: "b.toml".into(),
            text: GOOD.replace("action = \"mark_dead\"", "action = \"none\""),
            layer: 1,
        };
        let set = load_rule_set(&[base.clone(), replaced]).unwrap();
        assert_eq!(set.rules().len(), 1);
        assert_eq!(set.rules()[0].action, Action::None);
        assert_eq!(set.rules()[0].origin.file, "b.toml");
        let disabled = RuleSource {
            name: "c.toml".into(),
            text: GOOD.replace("kind = ", "enabled = false\nkind = "),
            layer: 1,
        };
        assert!(load_rule_set(&[base, disabled]).unwrap().rules().is_empty());
    }

    #[test]
    fn unknown_list_and_missing_samples_are_errors() {
        let errors = load(&GOOD.replace("in = \"terminal\"", "in = \"nope\"")).unwrap_err();
        assert!(
            errors[0].message.contains("no list named `nope`"),
            "{}",
            errors[0]
        );
        let no_samples = GOOD.split("[[rule.must_match]]").next().unwrap();
        let errors = load(no_samples).unwrap_err();
        assert!(errors[0].message.contains("must_match"), "{}", errors[0]);
    }

    #[test]
    fn pattern_without_literal_needs_a_prefilter() {
        let errors = load(&GOOD.replace(
            "^Failed to generate context summary: (?P<payload>.*)",
            r"^\w+: (?P<payload>.*)",
        ))
        .unwrap_err();
        assert!(errors[0].message.contains("prefilter"), "{}", errors[0]);
    }
}
