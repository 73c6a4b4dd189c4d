//! Running every rule's own sample lines, like fail2ban's filter tests.
//!
//! A `must_match` sample must be matched by its rule, through the same scanner the real scan
//! uses (prefilter, header, traceback handling), with the expected fields; a `must_not_match`
//! sample must not be. A rule without samples does not load at all.

use crate::read::scanner::{DEFAULT_MAX_LINE, LogScanner};

use super::{Origin, Rule, RuleSet, Sample, scalars_equal};

/// A sample that did not behave as its rule says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: rule `{rule}`: {message}")]
pub struct SampleFailure {
    pub origin: Origin,
    pub rule: String,
    pub message: String,
}

/// Runs every sample of every rule; returns the failures (empty when all pass) and the number
/// of samples run.
pub fn check_samples(rules: &RuleSet) -> (Vec<SampleFailure>, usize) {
    let mut failures = Vec::new();
    let mut count = 0;
    for rule in rules.rules() {
        for sample in &rule.must_match {
            count += 1;
            failures.extend(check_must_match(rules, rule, sample));
        }
        for sample in &rule.must_not_match {
            count += 1;
            if !matches_of(rules, rule, sample).is_empty() {
                failures.push(failure(
                    rule,
                    sample,
                    "matched a line it must not match".into(),
                ));
            }
        }
    }
    (failures, count)
}

fn check_must_match(rules: &RuleSet, rule: &Rule, sample: &Sample) -> Option<SampleFailure> {
    let matches = matches_of(rules, rule, sample);
    let Some(fields) = matches.last() else {
        return Some(failure(rule, sample, "did not match its sample".into()));
    };
    let wrong: Vec<String> = sample
        .expect
        .iter()
        .filter_map(|(name, expected)| {
            let actual = fields.get(name);
            match &actual {
                Some(actual) if scalars_equal(actual, expected) => None,
                _ => Some(format!("`{name}` is {actual:?}, expected {expected:?}")),
            }
        })
        .collect();
    (!wrong.is_empty()).then(|| failure(rule, sample, wrong.join("; ")))
}

fn matches_of(rules: &RuleSet, rule: &Rule, sample: &Sample) -> Vec<super::Fields> {
    let mut scanner = LogScanner::new(rules, sample.file, DEFAULT_MAX_LINE);
    let mut hits = Vec::new();
    scanner.feed(sample.text.as_bytes(), &mut hits);
    scanner.finish(&mut hits);
    hits.into_iter()
        .filter(|hit| hit.matched.rule.id == rule.id)
        .map(|hit| hit.matched.fields)
        .collect()
}

fn failure(rule: &Rule, sample: &Sample, message: String) -> SampleFailure {
    SampleFailure {
        origin: sample.origin.clone(),
        rule: rule.id.clone(),
        message,
    }
}
