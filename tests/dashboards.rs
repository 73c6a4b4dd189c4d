//! `dashboards/prometheus/alerts.yml` against Prometheus's own tools: `promtool check rules`,
//! the unit tests of `alerts_test.yml` (each alert firing and not firing), and what every alert
//! must carry: a severity, a summary, a description, and a runbook that exists in the README
//! for a metric the README documents.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/prometheus")
}

fn promtool(args: &[&str]) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir())
        .output()
        .unwrap_or_else(|error| {
            panic!("promtool is needed for this test ({error}): apt-get install prometheus, or run ./scripts/test.sh")
        });
    assert!(
        output.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[test]
fn promtool_checks_the_alert_rules_and_their_unit_tests_pass() {
    promtool(&["check", "rules", "alerts.yml"]);
    promtool(&["test", "rules", "alerts_test.yml"]);
}

#[test]
fn every_alert_has_a_severity_a_summary_and_a_runbook_in_the_readme() {
    let text = std::fs::read_to_string(dir().join("alerts.yml")).unwrap();
    let file: RuleFile = serde_saphyr::from_str(&text).unwrap();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let tests = std::fs::read_to_string(dir().join("alerts_test.yml")).unwrap();
    let rules: Vec<&Rule> = file.groups.iter().flat_map(|g| &g.rules).collect();
    let names: Vec<&str> = rules.iter().map(|r| r.alert.as_str()).collect();
    for expected in [
        "HermesWardenCredentialDead",
        "HermesWardenCompactionAtRisk",
        "HermesWardenProviderUnusable",
        "HermesWardenUnattributedAuthFailures",
        "HermesWardenRevertLoop",
        "HermesWardenLogStalled",
        "HermesWardenDown",
        "HermesWardenAbsent",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    for rule in rules {
        let name = &rule.alert;
        assert!(name.starts_with("HermesWarden"), "{name}");
        assert!(
            matches!(
                rule.labels.get("severity").map(String::as_str),
                Some("warning" | "critical")
            ),
            "{name}: severity"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(rule.annotations.contains_key(key), "{name}: {key}");
        }
        let anchor = format!("README.md#{}", name.to_lowercase());
        assert_eq!(rule.annotations["runbook_url"], anchor, "{name}");
        assert!(
            readme.contains(&format!("\n#### {name}\n")),
            "{name}: a runbook section `#### {name}` in the README"
        );
        assert!(
            tests.contains(&format!("alertname: {name}\n")),
            "{name}: unit-tested"
        );
        // Every metric it reads is one the README documents.
        for metric in rule
            .expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("hermes_warden_"))
        {
            assert!(
                readme.contains(&format!("`{metric}")),
                "{name}: {metric} documented in the README"
            );
        }
    }
}
