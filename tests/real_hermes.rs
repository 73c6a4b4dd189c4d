//! What `scan` finds in Hermes homes produced by the real Hermes 0.15.0 and 0.19.0.

use serde_json::Value;

use crate::util::{HermesHome, actions, events_of};

/// The only action of a scan, with its credential checked.
fn only_action<'v>(scan: &'v Value, id: &str) -> &'v Value {
    let actions = actions(scan);
    assert_eq!(
        actions.len(),
        1,
        "expected one action: {}",
        serde_json::to_string_pretty(scan).unwrap()
    );
    assert_eq!(actions[0]["credential_id"], id);
    assert_eq!(actions[0]["action"], "mark_dead");
    &actions[0]
}

fn credential<'v>(scan: &'v Value, id: &str, profile: Option<&str>) -> &'v Value {
    scan["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id && c["profile"].as_str() == profile)
        .unwrap_or_else(|| panic!("no credential {id}"))
}

#[test]
fn revoked_codex_on_015_is_found_every_time_it_fails_again() {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let scan = home.scan(&[]);
    let alice = home.credential_id("alice@example.com", None);
    let terminal = events_of(&scan, "summary-failed-terminal-auth");
    assert_eq!(
        terminal.len(),
        3,
        "one per failed compaction:\n{}",
        home.describe()
    );
    for event in &terminal {
        assert_eq!(event["attribution"], "named", "{event}");
        assert_eq!(event["credential"]["id"], alice.as_str());
        assert_eq!(event["reason"], "token_invalidated");
        assert!(
            event["named_by"]
                .as_str()
                .unwrap()
                .starts_with("logs/agent.log:"),
            "{event}"
        );
    }
    // One failure, one event: each is also a compaction failure (a facet), not a second event.
    assert!(events_of(&scan, "compaction-failed").is_empty());
    for event in &terminal {
        assert_eq!(
            event["facets"],
            serde_json::json!(["compaction_failure"]),
            "{event}"
        );
    }
    assert_eq!(scan["summary"]["compaction_failures"], 3);
    let action = only_action(&scan, &alice);
    assert_eq!(action["result"], "would_apply");
    assert_eq!(action["reason"], "token_invalidated");
    // Hermes 0.15 only knows a cooldown: the revoked credential is merely exhausted.
    assert_eq!(credential(&scan, &alice, None)["state"], "exhausted");
    assert_eq!(scan["summary"]["unattributed_failures"], 0);
}

#[test]
fn revoked_codex_on_019_is_already_dead() {
    let home = HermesHome::build("codex-revoked-0.19", "0.19.0");
    let scan = home.scan(&[]);
    let alice = home.credential_id("alice@example.com", None);
    let marked = events_of(&scan, "hermes-marked-dead");
    assert_eq!(
        marked.len(),
        1,
        "the DEAD line is in errors.log and agent.log, counted once"
    );
    assert_eq!(marked[0]["credential"]["id"], alice.as_str());
    assert_eq!(marked[0]["file"], "logs/errors.log");
    let terminal = events_of(&scan, "summary-failed-terminal-auth");
    assert_eq!(terminal.len(), 1);
    assert_eq!(
        terminal[0]["credential"]["id"],
        alice.as_str(),
        "paired with the DEAD line"
    );
    assert_eq!(only_action(&scan, &alice)["result"], "already_dead");
    assert_eq!(credential(&scan, &alice, None)["state"], "dead");
}

#[test]
fn the_version_is_read_from_the_installed_hermes() {
    let home = HermesHome::build("codex-revoked-0.19", "0.19.0");
    let config = home.root.join("warden-test.toml");
    let hermes = crate::util::hermes_venv("0.19.0").join("bin/hermes");
    std::fs::write(
        &config,
        format!("hermes_bin = {:?}\n", hermes.display().to_string()),
    )
    .unwrap();
    let output = crate::util::stdout_of(
        crate::util::warden_in(&home.root)
            .arg("--config")
            .arg(&config)
            .args(["scan", "--format", "json"]),
    );
    let scan: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(scan["hermes_version"], "0.19.0");
}

#[test]
fn a_non_terminal_401_is_reported_but_not_acted_on() {
    let home = HermesHome::build("non-terminal-401", "0.19.0");
    let scan = home.scan(&[]);
    let bob = home.credential_id("bob@example.com", None);
    let events = events_of(&scan, "other-auth-401");
    assert!(!events.is_empty(), "{}", home.describe());
    assert!(events.iter().all(|e| e["reason"] == "token_expired"));
    assert!(
        events.iter().any(|e| e["credential"]["id"] == bob.as_str()),
        "{scan}"
    );
    assert!(events_of(&scan, "summary-failed-terminal-auth").is_empty());
    assert!(actions(&scan).is_empty());
    assert_eq!(credential(&scan, &bob, None)["state"], "exhausted");
}

#[test]
fn a_usage_limit_is_counted_but_not_acted_on() {
    let home = HermesHome::build("rate-limit-429", "0.19.0");
    let scan = home.scan(&[]);
    let bob = home.credential_id("bob@example.com", None);
    let events = events_of(&scan, "usage-limit-429");
    assert!(!events.is_empty(), "{}", home.describe());
    assert!(
        events
            .iter()
            .all(|e| e["reason"] == "usage_limit_reached" && e["status"] == 429)
    );
    assert!(actions(&scan).is_empty());
    let bob_state = credential(&scan, &bob, None);
    assert_eq!(bob_state["state"], "exhausted");
    assert!(
        bob_state["available_in_seconds"].as_u64().unwrap() > 3600,
        "resets_at is three hours away: {bob_state}"
    );
}

#[test]
fn evidence_only_in_a_rotated_backup_is_found() {
    let home = HermesHome::build("rotated-backup", "0.15.0");
    let scan = home.scan(&[]);
    let alice = home.credential_id("alice@example.com", None);
    let action = only_action(&scan, &alice);
    assert_eq!(action["result"], "would_apply");
    assert_eq!(
        action["evidence"]
            .as_str()
            .unwrap()
            .rsplit_once(':')
            .unwrap()
            .0,
        "logs/errors.log.1"
    );
    let terminal = events_of(&scan, "summary-failed-terminal-auth");
    assert!(!terminal.is_empty());
    assert!(
        terminal
            .iter()
            .all(|e| e["file"] == "logs/errors.log.1" && e["credential"]["id"] == alice.as_str())
    );
}

#[test]
fn evidence_at_the_end_of_a_traceback_is_found() {
    let home = HermesHome::build("traceback", "0.19.0");
    let scan = home.scan_as("0.15.0", &[]);
    let alice = home.credential_id("alice@example.com", None);
    let events = events_of(&scan, "traceback-terminal-auth");
    assert_eq!(events.len(), 1, "{}", home.describe());
    let event = events[0];
    assert_eq!(event["reason"], "token_invalidated");
    assert_eq!(
        event["credential"]["id"],
        alice.as_str(),
        "paired with the DEAD line of the same session"
    );
    assert!(
        event["timestamp"].is_string(),
        "takes the time of the record the traceback belongs to"
    );
    // Read with Hermes 0.15's rules, a `dead` status is not honoured: the mark must be applied.
    assert_eq!(only_action(&scan, &alice)["result"], "would_apply");
}

#[test]
fn a_profile_is_told_apart_from_the_root() {
    let home = HermesHome::build("profile", "0.19.0");
    let alice_work = home.credential_id("alice@example.com", Some("work"));
    let scan = home.scan(&["--all-profiles"]);
    let action = only_action(&scan, &alice_work);
    assert_eq!(action["profile"], "work");
    assert_eq!(action["result"], "already_dead");
    assert!(
        events_of(&scan, "hermes-marked-dead")
            .iter()
            .all(|e| e["profile"] == "work")
    );
    assert_eq!(
        credential(&scan, &alice_work, Some("work"))["state"],
        "dead"
    );
    assert_eq!(
        credential(&scan, &alice_work, None)["state"],
        "ok",
        "the root's entry with the same id is healthy"
    );
    let root_only = home.scan(&[]);
    assert!(actions(&root_only).is_empty());
    let work_only = home.scan(&["--profile", "work"]);
    assert_eq!(only_action(&work_only, &alice_work)["profile"], "work");
}

#[test]
fn an_unattributable_failure_is_reported_and_never_acted_on() {
    let home = HermesHome::build("unattributable", "0.15.0");
    let scan = home.scan(&[]);
    let terminal = events_of(&scan, "summary-failed-terminal-auth");
    assert_eq!(terminal.len(), 1, "{}", home.describe());
    assert_eq!(terminal[0]["attribution"], "unattributed");
    assert!(terminal[0]["credential"].is_null());
    assert!(terminal[0]["unattributed_because"].is_string());
    assert!(actions(&scan).is_empty());
    assert!(scan["summary"]["unattributed_failures"].as_u64().unwrap() >= 1);
}

#[test]
fn openrouter_and_anthropic_key_failures_are_counted_not_acted_on() {
    for (scenario, rule, label) in [
        (
            "openrouter-user-not-found",
            "openrouter-user-not-found",
            "openrouter-carol",
        ),
        (
            "anthropic-auth-error",
            "anthropic-authentication-error",
            "anthropic-dave",
        ),
    ] {
        let home = HermesHome::build(scenario, "0.19.0");
        let scan = home.scan(&[]);
        let id = home.credential_id(label, None);
        let events = events_of(&scan, rule);
        assert!(!events.is_empty(), "{scenario}:\n{}", home.describe());
        assert!(
            events
                .iter()
                .any(|e| e["credential"]["id"] == id.as_str() && e["attribution"] == "named"),
            "{scenario}: {}",
            serde_json::to_string_pretty(&scan["events"]).unwrap()
        );
        assert!(actions(&scan).is_empty(), "{scenario}");
        assert!(
            events_of(&scan, "other-auth-401").is_empty(),
            "{scenario}: the specific rule takes it"
        );
    }
}
