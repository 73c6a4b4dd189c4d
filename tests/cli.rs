//! The command line: exit codes, errors that name the file and line, rule tools, secrets.

use std::path::Path;

use predicates::prelude::*;

use crate::util::{warden, warden_in};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn rules_check_passes_on_the_built_in_rules() {
    let home = tempfile::tempdir().unwrap();
    warden_in(home.path())
        .args(["rules", "check"])
        .assert()
        .success()
        .stdout(predicate::str::contains("samples: all passed"));
}

#[test]
fn a_bad_rule_file_is_exit_2_naming_file_line_and_rule() {
    let home = tempfile::tempdir().unwrap();
    let rules = home.path().join("extra");
    write(
        &rules.join("bad.toml"),
        "[[rule]]\nid = \"broken\"\nkind = \"auth_failure\"\npattern = 'Error code: (?P<x'\n",
    );
    warden_in(home.path())
        .arg("--rules")
        .arg(&rules)
        .args(["rules", "check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "bad.toml:4: rule `broken`: bad pattern",
        ));
}

#[test]
fn a_rule_whose_sample_fails_makes_rules_check_fail() {
    let home = tempfile::tempdir().unwrap();
    write(
        &home.path().join("warden/rules.d/local.toml"),
        r#"[[rule]]
id = "local"
kind = "auth_failure"
pattern = '^Something odd happened'
[[rule.must_match]]
line = "2026-05-26 10:00:00,000 WARNING root: Something else happened"
[[rule.must_not_match]]
line = "2026-05-26 10:00:00,000 WARNING root: nothing"
"#,
    );
    warden_in(home.path())
        .args(["rules", "check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "local.toml:5: rule `local`: did not match its sample",
        ));
}

#[test]
fn rules_test_shows_matches_captures_and_a_summary() {
    let home = tempfile::tempdir().unwrap();
    let lines = "2026-05-26 10:27:13,480 WARNING [s] agent.credential_pool: credential pool: marking alice@example.com DEAD (status=401, reason=token_revoked) — permanently failed\n\
                 2026-05-26 10:27:13,481 WARNING root: nothing to see\n";
    warden_in(home.path())
        .args(["rules", "test", "-"])
        .write_stdin(lines)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "line 1: hermes-marked-dead -> dead_by_hermes (action mark_dead",
        ))
        .stdout(predicate::str::contains("label=alice@example.com"))
        .stdout(predicate::str::contains(
            "Lines: 2 lines, 1 matched, 1 not matched",
        ));
}

#[test]
fn an_unparsable_auth_json_is_an_error_naming_file_and_line() {
    let home = tempfile::tempdir().unwrap();
    write(
        &home.path().join("auth.json"),
        "{\n  \"credential_pool\": {\n    \"x\": [,]\n  }\n}\n",
    );
    warden_in(home.path())
        .args(["--hermes-version", "0.19.0", "status"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("auth.json:3:"));
}

#[test]
fn bad_configuration_and_usage_are_exit_2() {
    let home = tempfile::tempdir().unwrap();
    write(&home.path().join("warden.toml"), "pair_window_secs = 3\n");
    warden_in(home.path())
        .args(["rules", "check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("warden.toml:1:"));
    let clean = tempfile::tempdir().unwrap();
    for args in [
        &["--profile", "nope", "status"][..],
        &["--tz", "Mars/Olympus", "status"],
        &["--hermes-version", "latest", "status"],
        &["scan", "--format", "yaml"],
    ] {
        warden_in(clean.path()).args(args).assert().code(2);
    }
}

#[test]
fn an_empty_home_scans_cleanly() {
    let home = tempfile::tempdir().unwrap();
    warden_in(home.path())
        .args(["--hermes-version", "0.19.0", "scan", "--format", "json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"events\": []"));
}

#[test]
fn no_secret_reaches_any_output_even_without_hermes_redaction() {
    const ACCESS: &str = "sk-proj-AbCdEf0123456789GhIjKl0123456789MnOpQr";
    const REFRESH: &str = "rt-ZyXwVu9876543210TsRqPo9876543210NmLk";
    let home = tempfile::tempdir().unwrap();
    write(
        &home.path().join("auth.json"),
        &format!(
            r#"{{"version": 1, "credential_pool": {{"openai-codex": [{{"id": "a1b2c3", "label": "{ACCESS}",
            "source": "manual", "access_token": "{ACCESS}", "refresh_token": "{REFRESH}", "last_status": "exhausted",
            "last_status_at": 1779791233.4, "last_error_code": 401, "last_error_reason": "token_revoked",
            "last_error_message": "Bearer {ACCESS} revoked", "last_error_reset_at": null}}]}}}}"#
        ),
    );
    write(
        &home.path().join("logs/errors.log"),
        &format!(
            "2026-05-26 10:27:13,400 WARNING [s1] agent.credential_pool: credential pool: marking {ACCESS} DEAD (status=401, reason=token_revoked) — permanently failed\n\
             2026-05-26 10:27:13,410 WARNING [s1] agent.context_compressor: Failed to generate context summary: Error code: 401 - {{'error': {{'message': 'token {ACCESS} revoked', 'code': 'token_revoked', 'refresh': '{REFRESH}'}}}}\n"
        ),
    );
    let runs: [&[&str]; 9] = [
        &["scan"],
        &["scan", "--format", "json"],
        &["scan", "--format", "markdown"],
        &["status"],
        &["status", "--format", "json"],
        &["rules", "test"],
        &["scan", "--apply", "--format", "json"],
        &["status", "--format", "json"],
        &["revive", "openai-codex", "a1b2c3"],
    ];
    for args in runs {
        let mut command = warden();
        command
            .arg("--hermes-home")
            .arg(home.path())
            .args(["--hermes-version", "0.19.0"])
            .args(args);
        if args[0] == "rules" {
            command.arg(home.path().join("logs/errors.log"));
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        for secret in [ACCESS, REFRESH, &ACCESS[..20], &REFRESH[..20]] {
            assert!(
                !printed.contains(secret),
                "{args:?} printed a secret:\n{printed}"
            );
        }
    }
    let audit = std::fs::read_to_string(home.path().join("warden/audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"applied\"") && audit.contains("\"revive\""),
        "the state files below were written: {audit}"
    );
    for entry in std::fs::read_dir(home.path().join("warden")).unwrap() {
        let path = entry.unwrap().path();
        let stored = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        for secret in [ACCESS, REFRESH, &ACCESS[..20], &REFRESH[..20]] {
            assert!(
                !stored.contains(secret),
                "{} stores a secret:\n{stored}",
                path.display()
            );
        }
    }
}

#[test]
fn a_home_that_does_not_exist_is_exit_2_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-home");
    for args in [
        &["scan"][..],
        &["scan", "--apply"],
        &["status"],
        &["revive", "openai-codex", "alice"],
        &["watch", "--poll-interval", "0.1"],
    ] {
        warden_in(&missing)
            .args(["--hermes-version", "0.19.0"])
            .args(args)
            .timeout(std::time::Duration::from_secs(20))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "no-such-home: no Hermes home here",
            ));
        assert!(!missing.exists(), "{args:?} created the home");
    }
}

#[test]
fn watch_waits_for_a_home_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let later = dir.path().join("later");
    let mut daemon = crate::watch::Daemon::spawn(
        &later,
        &[
            "--hermes-version",
            "0.19.0",
            "watch",
            "--dry-run",
            "--wait-for-home",
            "--poll-interval",
            "0.1",
        ],
    );
    std::fs::create_dir_all(later.join("logs")).unwrap();
    std::fs::write(
        later.join("logs/errors.log"),
        "2026-05-26 10:00:00,000 WARNING [s1] agent.context_compressor: Failed to generate context summary: Request timed out.\n",
    )
    .unwrap();
    daemon.wait_for_audit(1);
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");

    // Waiting, a stop request ends it cleanly.
    let never = dir.path().join("never");
    let waiting = crate::watch::Daemon::spawn(&never, &["watch", "--wait-for-home"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, stderr) = waiting.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!never.exists());
}

#[test]
fn a_poll_interval_of_zero_is_refused() {
    let home = tempfile::tempdir().unwrap();
    for value in ["0", "-1", "nan", "inf"] {
        warden_in(home.path())
            .args(["watch", &format!("--poll-interval={value}")])
            .timeout(std::time::Duration::from_secs(20))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--poll-interval"));
    }
}
