//! Golden reports (insta) over Hermes homes captured from the real Hermes (tests/fixtures).

use std::path::PathBuf;

use crate::util::{promtool_accepts, sample, stdout_of, warden_in};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs a command on a fixture home at a fixed moment and returns its standard output, with
/// the machine-specific home path replaced.
fn report(name: &str, version: &str, args: &[&str]) -> String {
    let home = fixture(name);
    stdout_of(
        warden_in(&home)
            .args(["--hermes-version", version, "--now", "2026-05-28T20:28:00Z"])
            .args(args),
    )
    .replace(&home.display().to_string(), "[HOME]")
}

#[test]
fn scan_table() {
    insta::assert_snapshot!(report("codex-revoked-0.15", "0.15.0", &["scan"]));
}

#[test]
fn scan_json() {
    insta::assert_snapshot!(report(
        "codex-revoked-0.15",
        "0.15.0",
        &["scan", "--format", "json"]
    ));
}

#[test]
fn scan_markdown() {
    insta::assert_snapshot!(report(
        "codex-revoked-0.15",
        "0.15.0",
        &["scan", "--format", "markdown"]
    ));
}

#[test]
fn scan_all_profiles_table() {
    insta::assert_snapshot!(report("profile", "0.19.0", &["--all-profiles", "scan"]));
}

#[test]
fn status_table() {
    insta::assert_snapshot!(report("profile", "0.19.0", &["--all-profiles", "status"]));
}

#[test]
fn status_json() {
    insta::assert_snapshot!(report(
        "codex-revoked-0.15",
        "0.15.0",
        &["status", "--format", "json"]
    ));
}

#[test]
fn scan_events_table() {
    insta::assert_snapshot!(report(
        "codex-revoked-0.15",
        "0.15.0",
        &["scan", "--events"]
    ));
}

#[test]
fn scan_markdown_events() {
    insta::assert_snapshot!(report(
        "codex-revoked-0.15",
        "0.15.0",
        &["scan", "--format", "markdown", "--events"]
    ));
}

/// The fixture's revoked credential is one row: three failures (three compactions, each a
/// marking line and the compaction failure carrying the 401 paired with it), the strongest
/// evidence the last terminal failure.
#[test]
fn the_revoked_credential_is_one_row_with_its_strongest_evidence() {
    let json: serde_json::Value = serde_json::from_str(&report(
        "codex-revoked-0.15",
        "0.15.0",
        &["scan", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(
        json["failing_credentials"],
        serde_json::json!([{
            "profile": null,
            "provider": "openai-codex",
            "credential_id": "a11ce0",
            "label": "alice@example.com",
            "state": "exhausted",
            "reason": "token_invalidated",
            "first_seen": "2026-05-28T20:16:20.978+00:00",
            "last_seen": "2026-05-28T20:26:41.157+00:00",
            "failures": 3,
            "evidence": "logs/errors.log:3",
            "evidence_kind": "terminal_auth_failure",
            "evidence_attribution": "named",
            "action": "mark_dead",
            "result": "would_apply"
        }])
    );
    let failures: u64 = json["failing_credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["failures"].as_u64().unwrap())
        .sum();
    assert_eq!(failures, json["summary"]["credential_failures"]);

    let table = report("codex-revoked-0.15", "0.15.0", &["scan"]);
    let row = table
        .lines()
        .skip_while(|line| *line != "FAILING CREDENTIALS")
        .nth(2)
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "(root)",
            "openai-codex",
            "a11ce0",
            "alice@example.com",
            "exhausted",
            "token_invalidated",
            "2026-05-28T20:16:20.978+00:00",
            "2026-05-28T20:26:41.157+00:00",
            "3",
            "logs/errors.log:3",
            "mark_dead:",
            "would_apply"
        ]
    );
    // One row per credential; the event rows are left to `scan --events`.
    assert!(!table.contains("EVENTS"), "{table}");
    assert!(!table.contains("hermes-marked-exhausted"), "{table}");
}

/// With Hermes 0.19 the work profile's credential is dead already: its row says so.
#[test]
fn an_already_dead_credential_row_says_so() {
    let json: serde_json::Value = serde_json::from_str(&report(
        "profile",
        "0.19.0",
        &["--all-profiles", "scan", "--format", "json"],
    ))
    .unwrap();
    let rows = json["failing_credentials"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["profile"], "work");
    assert_eq!(rows[0]["state"], "dead");
    // The DEAD line and the payload paired with it are one failure.
    assert_eq!(rows[0]["failures"], 1);
    assert_eq!(rows[0]["evidence"], "profiles/work/logs/errors.log:2");
    assert_eq!(rows[0]["result"], "already_dead");
}

#[test]
fn status_prometheus_gives_each_pool_entry_its_state() {
    let text = report(
        "profile",
        "0.19.0",
        &["--all-profiles", "status", "--format", "prometheus"],
    );
    promtool_accepts(&text);
    let credentials = |profile: &str, state: &str| {
        sample(
            &text,
            &format!(
                "hermes_warden_credentials{{profile=\"{profile}\",provider=\"openai-codex\",state=\"{state}\"}}"
            ),
        )
    };
    // The root home's profile label is "": both ok; in `work`, alice is dead.
    assert_eq!(credentials("", "ok"), 2.0);
    assert_eq!(credentials("", "dead"), 0.0);
    assert_eq!(credentials("work", "ok"), 1.0);
    assert_eq!(credentials("work", "dead"), 1.0);
    assert_eq!(credentials("work", "unknown"), 0.0);
    let state = |profile: &str, id: &str, state: &str| {
        sample(
            &text,
            &format!(
                "hermes_warden_credential_state{{credential_id=\"{id}\",profile=\"{profile}\",provider=\"openai-codex\",state=\"{state}\"}}"
            ),
        )
    };
    assert_eq!(state("work", "a11ce0", "dead"), 1.0);
    assert_eq!(state("work", "a11ce0", "ok"), 0.0);
    assert_eq!(state("", "a11ce0", "ok"), 1.0);
    // Each home's compression provider keeps a usable credential.
    for profile in ["", "work"] {
        let at_risk = format!(
            "hermes_warden_compaction_at_risk{{profile=\"{profile}\",provider=\"openai-codex\"}}"
        );
        assert_eq!(sample(&text, &at_risk), 0.0);
    }
    // Labels say which credential by id only: no e-mail, no label.
    assert!(!text.contains('@'), "{text}");
}

#[test]
fn status_prometheus_counts_a_cooldown_down() {
    let text = report(
        "codex-revoked-0.15",
        "0.15.0",
        &["status", "--format", "prometheus"],
    );
    promtool_accepts(&text);
    let series = |id: &str| {
        format!(
            "hermes_warden_credential_cooldown_seconds{{credential_id=\"{id}\",profile=\"\",provider=\"openai-codex\"}}"
        )
    };
    // alice's 401 at 20:26:41 cools down for 300 s: at 20:28:00, 222 s are left.
    let alice = sample(&text, &series("a11ce0"));
    assert_eq!(alice, 222.0);
    assert_eq!(sample(&text, &series("b0b000")), 0.0);
}

#[test]
fn status_prometheus_says_compaction_is_at_risk() {
    // The one credential compaction depends on is dead (Hermes 0.19 knows dead).
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("auth.json"),
        r#"{"version": 1, "credential_pool": {"openai-codex": [{"id": "a11ce0", "label": "alice@example.com",
        "source": "manual", "access_token": "fake-token", "last_status": "dead", "last_status_at": 1780000001.0,
        "last_error_code": 401, "last_error_reason": "token_invalidated"}]}}"#,
    )
    .unwrap();
    std::fs::write(
        home.path().join("config.yaml"),
        "model:\n  provider: openai-codex\n",
    )
    .unwrap();
    let text = stdout_of(warden_in(home.path()).args([
        "--hermes-version",
        "0.19.0",
        "status",
        "--format",
        "prometheus",
    ]));
    promtool_accepts(&text);
    let at_risk = "hermes_warden_compaction_at_risk{profile=\"\",provider=\"openai-codex\"}";
    assert_eq!(sample(&text, at_risk), 1.0);
    // A dead entry has no cooldown that ends.
    assert!(
        !text.contains("hermes_warden_credential_cooldown_seconds{"),
        "{text}"
    );
}
