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

/// A copy of the fixture whose credential alice was revoked (three markings, three compaction
/// failures carrying the 401), with informational lines added: two empty pools, a timeout,
/// and a 401 an hour earlier that names no credential.
fn revoked_home() -> tempfile::TempDir {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codex-revoked-0.15");
    let home = tempfile::tempdir().unwrap();
    for file in [
        "auth.json",
        "config.yaml",
        "logs/agent.log",
        "logs/errors.log",
    ] {
        write(
            &home.path().join(file),
            &std::fs::read_to_string(fixture.join(file)).unwrap(),
        );
    }
    let append = |file: &str, lines: &str| {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(home.path().join(file))
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
    };
    append(
        "logs/agent.log",
        "2026-05-28 20:27:00,000 INFO agent.credential_pool: credential pool: no available entries (all exhausted or empty)\n\
         2026-05-28 20:27:05,000 INFO agent.credential_pool: credential pool: no available entries (all exhausted or empty)\n",
    );
    append(
        "logs/errors.log",
        "2026-05-28 20:27:10,000 WARNING [s9] agent.conversation_loop: API call failed (attempt 1/3) error_type=APITimeoutError thread=MainThread provider=openai-codex base_url=https://chatgpt.com/backend-api/codex model=gpt-5.1-codex summary=Request timed out.\n\
         2026-05-28 19:00:00,000 ERROR agent.conversation_loop: Non-retryable client error: Error code: 401 - {'error': {'message': 'User not found.', 'code': 401}}\n",
    );
    home
}

/// `hermes-warden --hermes-home HOME --now ... ARGS`: exit code, stdout, stderr.
fn run_in(home: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let output = warden_in(home)
        .args(["--now", "2026-05-28T20:28:00Z"])
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// The lines of a table section, headers included, up to the blank line that ends it.
fn section<'t>(table: &'t str, title: &str) -> Vec<&'t str> {
    table
        .lines()
        .skip_while(|line| *line != title)
        .skip(1)
        .take_while(|line| !line.is_empty())
        .collect()
}

#[test]
fn the_default_scan_shows_failing_credentials_and_counts_the_rest() {
    let home = revoked_home();
    let (code, table, stderr) = run_in(home.path(), &["--hermes-version", "0.15.0", "scan"]);
    assert_eq!(code, Some(0), "{stderr}");
    let failing = section(&table, "FAILING CREDENTIALS");
    assert_eq!(failing.len(), 2, "a header and one row:\n{table}");
    assert!(
        failing[1].starts_with("(root)   openai-codex  a11ce0  alice@example.com  exhausted"),
        "{table}"
    );
    // Three compactions: each a marking line and the payload paired with it, one failure.
    assert!(failing[1].contains("  3  "), "three failures:\n{table}");
    assert!(
        failing[1].ends_with("logs/errors.log:3  mark_dead: would_apply"),
        "{table}"
    );
    assert!(
        table.contains(
            "\n4 informational events (not a credential failure, or not pinned to a \
             credential): pool_empty 2, auth_failure 1, provider_error 1; `scan --events` \
             lists them\n10 events, 4 credential failures (1 unattributed),"
        ),
        "{table}"
    );
    assert!(!table.contains("EVENTS"), "{table}");
    assert!(!table.contains("pool-empty"), "{table}");
    assert!(!table.contains("api-call-failed"), "{table}");
}

#[test]
fn scan_events_lists_every_event_and_action() {
    let home = revoked_home();
    let (code, json, stderr) = run_in(
        home.path(),
        &["--hermes-version", "0.15.0", "scan", "--format", "json"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let events = json["events"].as_array().unwrap();
    assert_eq!(events.len(), 10);
    // JSON: every event, and one failing credential beside them.
    assert_eq!(json["failing_credentials"].as_array().unwrap().len(), 1);
    assert_eq!(json["failing_credentials"][0]["failures"], 3);

    let (code, table, stderr) = run_in(
        home.path(),
        &["--hermes-version", "0.15.0", "scan", "--events"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let rows = section(&table, "EVENTS");
    assert_eq!(rows.len(), 1 + events.len(), "{table}");
    for (row, event) in rows[1..].iter().zip(events) {
        let place = format!("{}:{}", event["file"].as_str().unwrap(), event["line"]);
        assert!(row.contains(&format!("  {place}  ")), "{place} in {row}");
        assert!(row.contains(event["rule"].as_str().unwrap()), "{row}");
    }
    assert!(table.contains("pool-empty") && table.contains("openrouter-user-not-found"));
    assert_eq!(section(&table, "ACTIONS").len(), 2, "{table}");
    assert_eq!(section(&table, "FAILING CREDENTIALS").len(), 2, "{table}");

    let (code, markdown, _) = run_in(
        home.path(),
        &[
            "--hermes-version",
            "0.15.0",
            "scan",
            "--format",
            "markdown",
            "--events",
        ],
    );
    assert_eq!(code, Some(0));
    assert!(markdown.contains("\n## Events\n"), "{markdown}");
    assert!(
        markdown.contains("| logs/agent.log:11 | pool-empty |"),
        "{markdown}"
    );
    let (_, markdown, _) = run_in(
        home.path(),
        &["--hermes-version", "0.15.0", "scan", "--format", "markdown"],
    );
    assert!(!markdown.contains("## Events"), "{markdown}");
    assert!(markdown.contains("## Failing credentials"), "{markdown}");
}

#[test]
fn fail_on_exits_3_after_the_report_when_it_holds_that_kind() {
    // alice is to be marked dead; the compaction provider still has bob.
    let revoked = revoked_home();
    // Only a 401 that names no credential: a failure, nothing dead, no compaction provider.
    let unpinned = tempfile::tempdir().unwrap();
    write(
        &unpinned.path().join("logs/errors.log"),
        "2026-05-28 20:27:20,000 ERROR agent.conversation_loop: Non-retryable client error: Error code: 401 - {'error': {'message': 'User not found.', 'code': 401}}\n",
    );
    // A single credential, dead, that compaction depends on; no logs.
    let at_risk = tempfile::tempdir().unwrap();
    write(
        &at_risk.path().join("auth.json"),
        r#"{"version": 1, "credential_pool": {"openai-codex": [{"id": "a11ce0", "label": "alice@example.com",
        "source": "manual", "access_token": "fake-token", "last_status": "dead", "last_status_at": 1780000001.0,
        "last_error_code": 401, "last_error_reason": "token_invalidated"}]}}"#,
    );
    write(
        &at_risk.path().join("config.yaml"),
        "model:\n  provider: openai-codex\n",
    );
    let empty = tempfile::tempdir().unwrap();
    let cases: [(&Path, &str, [i32; 3]); 4] = [
        // home, what it holds, exit for dead, at-risk, any
        (revoked.path(), "revoked", [3, 0, 3]),
        (unpinned.path(), "unpinned", [0, 0, 3]),
        (at_risk.path(), "at risk", [3, 3, 3]),
        (empty.path(), "empty", [0, 0, 0]),
    ];
    for (home, what, codes) in cases {
        for (kind, code) in ["dead", "at-risk", "any"].into_iter().zip(codes) {
            let (got, stdout, stderr) = run_in(
                home,
                &["--hermes-version", "0.19.0", "scan", "--fail-on", kind],
            );
            assert_eq!(got, Some(code), "{what}, --fail-on {kind}: {stderr}");
            assert!(
                stdout.contains("compaction providers at risk\n"),
                "{what}, --fail-on {kind}: the report is printed first:\n{stdout}"
            );
            match code {
                3 => assert!(
                    stderr.contains(&format!("hermes-warden: --fail-on {kind}: ")),
                    "{stderr}"
                ),
                _ => assert!(!stderr.contains("--fail-on"), "{stderr}"),
            }
        }
        let (got, _, stderr) = run_in(home, &["--hermes-version", "0.19.0", "scan"]);
        assert_eq!(got, Some(0), "{what} without --fail-on: {stderr}");
    }
    // JSON too: the report, then 3.
    let (got, stdout, _) = run_in(
        revoked.path(),
        &[
            "--hermes-version",
            "0.15.0",
            "scan",
            "--format",
            "json",
            "--fail-on",
            "dead",
        ],
    );
    assert_eq!(got, Some(3));
    assert!(serde_json::from_str::<serde_json::Value>(&stdout).is_ok());
    // Not a value it knows: usage.
    let (got, _, _) = run_in(empty.path(), &["scan", "--fail-on", "everything"]);
    assert_eq!(got, Some(2));
}

#[test]
fn a_runtime_failure_wins_over_fail_on() {
    let home = revoked_home();
    write(&home.path().join("profiles/broken/auth.json"), "{\n");
    let (code, stdout, stderr) = run_in(
        home.path(),
        &[
            "--hermes-version",
            "0.15.0",
            "--all-profiles",
            "scan",
            "--fail-on",
            "any",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("could not read broken"), "{stderr}");
    assert!(stdout.contains("UNREADABLE HOMES"), "{stdout}");
}

/// The `hermes_version_source` of `status --format json`, and the stderr of the run.
fn version_source(home: &Path, args: &[&str], path: &Path) -> (serde_json::Value, String) {
    let output = warden_in(home)
        .env("PATH", path)
        .args(args)
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    (json["hermes_version_source"].clone(), stderr)
}

fn version_script(dir: &Path, output: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let program = dir.join("bin/hermes");
    write(&program, &format!("#!/bin/sh\necho '{output}'\n"));
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    program
}

#[test]
fn the_report_says_which_hermes_version_was_assumed_and_why() {
    let home = tempfile::tempdir().unwrap();
    let no_hermes = tempfile::tempdir().unwrap();
    let dead_form = "dead marks are written as `last_status: dead`";
    let exhausted_form =
        "dead marks are written as `exhausted` until 2100-01-01, which every version honours";

    let (source, _) = version_source(
        home.path(),
        &["--hermes-version", "0.19.0"],
        no_hermes.path(),
    );
    assert_eq!(
        source,
        serde_json::json!({"how": "configured", "from": "--hermes-version", "note": dead_form})
    );

    let config = home.path().join("warden.toml");
    write(&config, "hermes_version = \"0.15.0\"\n");
    let (source, _) = version_source(home.path(), &[], no_hermes.path());
    assert_eq!(
        source,
        serde_json::json!({
            "how": "configured",
            "from": format!("hermes_version in {}", config.display()),
            "note": exhausted_form
        })
    );
    // The flag wins over the file.
    let (source, _) = version_source(
        home.path(),
        &["--hermes-version", "0.19.0"],
        no_hermes.path(),
    );
    assert_eq!(source["from"], "--hermes-version");

    // Nothing configured, no hermes on PATH: unknown, and the form every version honours.
    std::fs::remove_file(&config).unwrap();
    let (source, _) = version_source(home.path(), &[], no_hermes.path());
    assert_eq!(source["how"], "unknown");
    assert_eq!(source["from"], "PATH (hermes, hermesx)");
    assert_eq!(
        source["note"],
        format!(
            "no hermes or hermesx found on PATH (give --hermes-version, or hermes_bin in \
             warden.toml); {exhausted_form}"
        )
    );
    let (code, table, _) = {
        let output = warden_in(home.path())
            .env("PATH", no_hermes.path())
            .arg("scan")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            (),
        )
    };
    assert_eq!(code, Some(0));
    let header: Vec<&str> = table.lines().take(2).collect();
    assert!(header[0].contains(" (Hermes version unknown), "), "{table}");
    assert!(
        header[1].starts_with("Hermes version unknown: no hermes or hermesx found on PATH")
            && header[1].ends_with(exhausted_form),
        "{table}"
    );

    // A program that cannot be read: which, and why.
    write(&config, "hermes_bin = \"/dev/null\"\n");
    let (source, _) = version_source(home.path(), &[], no_hermes.path());
    assert_eq!(source["how"], "unknown");
    assert_eq!(source["from"], "/dev/null");
    assert_eq!(
        source["note"],
        format!("/dev/null: not a regular file (a character device); {exhausted_form}")
    );

    // Detected from `hermes --version` of the program found on PATH.
    let programs = tempfile::tempdir().unwrap();
    let program = version_script(programs.path(), "Hermes Agent v0.18.2 (2026.7.1)");
    std::fs::remove_file(&config).unwrap();
    let (source, stderr) = version_source(home.path(), &[], program.parent().unwrap());
    assert_eq!(
        source,
        serde_json::json!({
            "how": "detected",
            "from": format!("{} --version", program.display()),
            "note": dead_form
        })
    );
    assert!(!stderr.contains("newer than"), "{stderr}");
    let table = crate::util::stdout_of(
        warden_in(home.path())
            .env("PATH", program.parent().unwrap())
            .arg("status"),
    );
    assert!(
        table.lines().next().unwrap().contains(&format!(
            "(Hermes 0.18.2, detected from {} --version), ",
            program.display()
        )),
        "{table}"
    );
}

#[test]
fn a_hermes_newer_than_tested_is_warned_about_once() {
    let home = tempfile::tempdir().unwrap();
    let programs = tempfile::tempdir().unwrap();
    let program = version_script(programs.path(), "Hermes Agent v0.23.0 (2026.10.1)");
    write(
        &home.path().join("warden.toml"),
        &format!("hermes_bin = \"{}\"\n", program.display()),
    );
    let warning = "Hermes 0.23.0 is newer than 0.22.2, the newest version hermes-warden was \
                   tested with; it is assumed to behave like 0.22.2";
    let (source, stderr) = version_source(home.path(), &[], programs.path());
    assert_eq!(source["how"], "detected");
    assert_eq!(source["warning"], warning);
    assert_eq!(
        stderr.lines().filter(|line| line.contains(warning)).count(),
        1,
        "{stderr}"
    );
    for args in [
        &["scan"][..],
        &["status"],
        &["scan", "--format", "markdown"],
    ] {
        let output = warden_in(home.path()).args(args).output().unwrap();
        assert!(output.status.success());
        let stdout = String::from_utf8(output.stdout).unwrap();
        let header: String = stdout.lines().take(6).collect::<Vec<_>>().join("\n");
        assert!(
            header.contains(&format!("warning: {warning}")),
            "{args:?}:\n{stdout}"
        );
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.matches(warning).count(), 1, "{args:?}: {stderr}");
    }
    // The newest tested version is not warned about.
    let (source, stderr) = version_source(
        home.path(),
        &["--hermes-version", "0.22.2"],
        programs.path(),
    );
    assert!(source.get("warning").is_none(), "{source}");
    assert!(!stderr.contains("newer than"), "{stderr}");
}
