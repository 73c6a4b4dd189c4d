//! Remediation against the real Hermes 0.15.0 and 0.19.0: the warden marks a revoked credential
//! dead, and Hermes's own pool code (tests/hermes/pool_probe.py) never selects it again, also
//! after every cooldown, also when live Hermes processes rewrite the pool or re-seed the token;
//! auth.json stays byte for byte what Hermes writes; Hermes's lock is honoured.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use hermes_warden::remediate::dead_mark::STATUS_FIELDS;
use hermes_warden::shared::secrets::fingerprint_of;
use serde_json::Value;

use crate::util::{
    HermesHome, copy_dir, hermes_selections, hermes_venv, pool_probe, probe, read_json, warden_in,
};
use crate::watch::{Daemon, audit};

const ALICE_TOKEN: &str = "fake-codex-access-token-alice-0000000000";
/// Now, 400 s on (past a 401's cooldown), 4000 s on (past a 429's), and three years on.
const OFFSETS: &str = "0,400,4000,100000000";

/// `scan --apply --format json` with `args` before the command.
fn scan_apply(root: &Path, args: &[&str]) -> Value {
    let output = warden_in(root)
        .args(args)
        .args(["scan", "--apply", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "scan --apply: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn ledger(root: &Path) -> Value {
    match std::fs::read(root.join("warden/ledger.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
        Err(_) => serde_json::json!({"marks": []}),
    }
}

fn codex_entries(auth: &Value) -> Vec<Value> {
    auth["credential_pool"]["openai-codex"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn entry_fingerprint(entry: &Value) -> Option<String> {
    entry["access_token"].as_str().map(fingerprint_of)
}

/// Whether Hermes `version` treats the entry as dead for good.
fn is_dead(entry: &Value, version: &str) -> bool {
    match entry["last_status"].as_str() {
        Some("dead") => version != "0.15.0",
        Some("exhausted") => entry["last_error_reset_at"]
            .as_f64()
            .is_some_and(|reset| reset > 4e9),
        _ => false,
    }
}

/// Every id Hermes's `select()` returned, at each clock offset.
fn selected_ids(root: &Path, version: &str) -> Vec<Vec<String>> {
    hermes_selections(root, version, 6, OFFSETS)
        .into_iter()
        .map(|(_, ids)| ids)
        .collect()
}

/// The file is exactly what Hermes writes for its own content: `json.dumps(indent=2) + "\n"`.
fn assert_hermes_layout(path: &Path, version: &str) {
    let output = Command::new(hermes_venv(version).join("bin/python"))
        .args([
            "-c",
            "import json, sys; data = open(sys.argv[1], 'rb').read(); \
             sys.exit(0 if (json.dumps(json.loads(data), indent=2) + '\\n').encode() == data else 1)",
        ])
        .arg(path)
        .status()
        .unwrap();
    assert!(
        output.success(),
        "{} is not in Hermes's layout",
        path.display()
    );
}

/// Only the target's status fields differ, line by line and as parsed documents.
fn assert_only_status_fields_changed(before: &str, after: &str, id: &str) {
    assert_eq!(before.lines().count(), after.lines().count());
    for (old, new) in before.lines().zip(after.lines()) {
        if old != new {
            let key = new.trim_start().split('"').nth(1).unwrap_or_default();
            assert!(
                STATUS_FIELDS.contains(&key),
                "changed line {old:?} -> {new:?}"
            );
        }
    }
    let strip = |text: &str| {
        let mut document: Value = serde_json::from_str(text).unwrap();
        for entry in document["credential_pool"]["openai-codex"]
            .as_array_mut()
            .unwrap()
        {
            if entry["id"] == id {
                for field in STATUS_FIELDS {
                    entry.as_object_mut().unwrap().remove(field);
                }
            }
        }
        document
    };
    assert_eq!(strip(before), strip(after));
}

/// Marks alice with `scan --apply` as Hermes `version` reads her, checks the file, and checks
/// that Hermes `version` never selects her again. The home is the one Hermes 0.15 leaves (alice
/// merely exhausted): Hermes 0.19 would have marked her dead itself, leaving nothing to write,
/// and an upgrade from 0.15 to 0.19 is exactly this case.
fn mark_and_check(version: &str, extra: &[&str], expected_status: &str) {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    let auth_path = root.join("auth.json");
    let alice = home.credential_id("alice@example.com", None);
    let bob = home.credential_id("bob@example.com", None);
    let before = std::fs::read_to_string(&auth_path).unwrap();

    let mut args = vec!["--hermes-version", version];
    args.extend(extra);
    let scan = scan_apply(root, &args);
    let actions = scan["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{scan}");
    assert_eq!(actions[0]["credential_id"], alice.as_str());
    assert_eq!(actions[0]["result"], "applied", "{scan}");
    let after = std::fs::read_to_string(&auth_path).unwrap();
    assert_only_status_fields_changed(&before, &after, &alice);
    assert_hermes_layout(&auth_path, version);
    assert_eq!(
        std::fs::metadata(&auth_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let marked = codex_entries(&read_json(&auth_path))
        .into_iter()
        .find(|e| e["id"] == alice.as_str())
        .unwrap();
    assert_eq!(marked["last_status"], expected_status);
    assert_eq!(marked["last_error_code"], 401);
    assert_eq!(marked["last_error_reason"], "token_invalidated");
    let credential = scan["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == alice.as_str())
        .unwrap();
    assert_eq!(credential["state"], "dead");
    assert_eq!(credential["warden"]["action"], "kept_dead", "{credential}");
    let ledger_marks = ledger(root)["marks"].as_array().unwrap().clone();
    assert_eq!(ledger_marks.len(), 1);
    assert_eq!(ledger_marks[0]["credential_id"], alice.as_str());
    assert_eq!(ledger_marks[0]["fingerprint"], fingerprint_of(ALICE_TOKEN));
    assert!(!ledger_marks[0]["applied_at"].is_null());
    assert_eq!(
        std::fs::metadata(root.join("warden/ledger.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Again: nothing to do, nothing written, nothing recorded twice.
    let inode = std::fs::metadata(&auth_path).unwrap().ino();
    let audit_before = audit(root).len();
    let again = scan_apply(root, &args);
    assert_eq!(again["actions"][0]["result"], "already_dead");
    assert_eq!(std::fs::read_to_string(&auth_path).unwrap(), after);
    assert_eq!(std::fs::metadata(&auth_path).unwrap().ino(), inode);
    assert_eq!(audit(root).len(), audit_before);
    assert_eq!(ledger(root)["marks"].as_array().unwrap().len(), 1);

    for ids in selected_ids(root, version) {
        assert!(
            !ids.contains(&alice),
            "Hermes {version} selected alice: {ids:?}"
        );
        assert!(
            ids.contains(&bob),
            "Hermes {version} never selected bob: {ids:?}"
        );
    }
}

#[test]
fn revive_undoes_the_mark_and_the_old_failures_do_not_mark_it_again() {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    let alice = home.credential_id("alice@example.com", None);
    let args = ["--hermes-version", "0.15.0"];
    assert_eq!(scan_apply(root, &args)["actions"][0]["result"], "applied");
    let revived = crate::util::stdout_of(warden_in(root).args(args).args([
        "revive",
        "openai-codex",
        "alice@example.com",
    ]));
    assert!(revived.contains(&alice), "{revived}");
    assert!(ledger(root)["marks"].as_array().unwrap().is_empty());
    assert!(audit(root).iter().any(|r| r["type"] == "revive"));
    let entries = codex_entries(&read_json(&root.join("auth.json")));
    let entry = entries.iter().find(|e| e["id"] == alice.as_str()).unwrap();
    assert!(
        STATUS_FIELDS.iter().all(|field| entry[*field].is_null()),
        "{entry}"
    );

    let again = scan_apply(root, &args);
    assert_eq!(again["actions"], serde_json::json!([]), "{again}");
    let status: Value = serde_json::from_str(&crate::util::stdout_of(
        warden_in(root)
            .args(args)
            .args(["status", "--format", "json"]),
    ))
    .unwrap();
    let row = status["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == alice.as_str())
        .unwrap();
    assert_eq!(row["state"], "ok", "{row}");
    assert_eq!(row["warden"]["action"], "revived", "{row}");
    let selections = selected_ids(root, "0.15.0");
    assert!(
        selections.iter().all(|ids| ids.contains(&alice)),
        "revived, alice is selected again: {selections:?}"
    );
}

#[test]
fn on_015_the_mark_is_exhausted_for_good_and_hermes_never_selects_it() {
    mark_and_check("0.15.0", &[], "exhausted");
}

#[test]
fn on_019_the_mark_is_dead_and_hermes_never_selects_it() {
    mark_and_check("0.19.0", &[], "dead");
}

#[test]
fn the_form_every_version_honours_can_be_forced_and_019_honours_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("warden.toml");
    std::fs::write(&config, "mark_as = \"exhausted\"\n").unwrap();
    mark_and_check(
        "0.19.0",
        &["--config", config.to_str().unwrap()],
        "exhausted",
    );
}

#[test]
fn a_symlinked_auth_json_stays_a_symlink() {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    std::fs::create_dir(root.join("store")).unwrap();
    std::fs::rename(root.join("auth.json"), root.join("store/real-auth.json")).unwrap();
    std::os::unix::fs::symlink("store/real-auth.json", root.join("auth.json")).unwrap();
    let scan = scan_apply(root, &["--hermes-version", "0.15.0"]);
    assert_eq!(scan["actions"][0]["result"], "applied", "{scan}");
    assert!(
        std::fs::symlink_metadata(root.join("auth.json"))
            .unwrap()
            .is_symlink()
    );
    let real = root.join("store/real-auth.json");
    assert_eq!(
        std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let alice = home.credential_id("alice@example.com", None);
    assert!(
        codex_entries(&read_json(&real))
            .iter()
            .any(|e| e["id"] == alice.as_str() && is_dead(e, "0.15.0"))
    );
}

/// A process holding Hermes's lock (as Hermes does, with `fcntl.flock`) until killed.
fn hold_lock(root: &Path) -> Child {
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); \
             fcntl.flock(f.fileno(), fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)",
        ])
        .arg(root.join("auth.lock"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 holds the lock");
    let mut line = String::new();
    BufReader::new(holder.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    holder
}

#[test]
fn scan_apply_whose_action_failed_prints_the_report_and_exits_1() {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    std::fs::write(root.join("warden.toml"), "lock_timeout_seconds = 0.3\n").unwrap();
    let before = std::fs::read(root.join("auth.json")).unwrap();
    let mut holder = hold_lock(root);
    let output = warden_in(root)
        .args([
            "--hermes-version",
            "0.15.0",
            "scan",
            "--apply",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 of 1 actions failed"), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("the report is printed");
    assert_eq!(report["actions"][0]["result"], "failed", "{report}");
    assert_eq!(std::fs::read(root.join("auth.json")).unwrap(), before);
    // The mark waits in the ledger; the next run writes it and succeeds.
    assert!(ledger(root)["marks"][0]["applied_at"].is_null());
    assert_eq!(
        scan_apply(root, &["--hermes-version", "0.15.0"])["actions"][0]["result"],
        "applied"
    );
}

#[test]
fn a_lock_held_past_the_deadline_means_no_write_a_counted_failure_and_a_retry() {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    std::fs::write(root.join("warden.toml"), "lock_timeout_seconds = 0.3\n").unwrap();
    let alice = home.credential_id("alice@example.com", None);
    let before = std::fs::read(root.join("auth.json")).unwrap();
    let mut holder = hold_lock(root);
    let mut daemon = Daemon::spawn(
        root,
        &[
            "--hermes-version",
            "0.15.0",
            "watch",
            "--poll-interval",
            "0.1",
        ],
    );
    let timeouts = |root: &Path| {
        audit(root)
            .iter()
            .filter(|r| r["type"] == "auth_write" && r["result"] == "lock_timeout")
            .count()
    };
    daemon.wait_until(|| match timeouts(root) {
        n if n >= 2 => Ok(()),
        n => Err(format!("{n} lock timeouts recorded")),
    });
    assert_eq!(std::fs::read(root.join("auth.json")).unwrap(), before);
    let finding = audit(root)
        .into_iter()
        .find(|r| r["action"] == "mark_dead")
        .expect("the finding is recorded");
    assert_eq!(finding["result"], "failed");
    assert!(ledger(root)["marks"][0]["applied_at"].is_null());

    holder.kill().unwrap();
    holder.wait().unwrap();
    // auth.json is written first, the ledger's `applied_at` right after: wait for both.
    daemon.wait_until(|| {
        let auth = read_json(&root.join("auth.json"));
        let marked = codex_entries(&auth)
            .iter()
            .any(|e| e["id"] == alice.as_str() && is_dead(e, "0.15.0"));
        let applied = !ledger(root)["marks"][0]["applied_at"].is_null();
        (marked && applied)
            .then_some(())
            .ok_or("alice marked and applied after the lock was released".to_owned())
    });
    let (code, _) = daemon.stop();
    assert_eq!(code, Some(0));
}

/// Waits until every entry holding a token with `fingerprint` is dead for Hermes `version`,
/// and returns their ids.
fn wait_until_token_dead(
    daemon: &mut Daemon,
    root: &Path,
    version: &str,
    fingerprint: &str,
) -> Vec<String> {
    daemon.wait_until(|| {
        let entries = codex_entries(&read_json(&root.join("auth.json")));
        let holding: Vec<&Value> = entries
            .iter()
            .filter(|e| entry_fingerprint(e).as_deref() == Some(fingerprint))
            .collect();
        let alive: Vec<&Value> = holding
            .iter()
            .copied()
            .filter(|e| !is_dead(e, version))
            .collect();
        if !holding.is_empty() && alive.is_empty() {
            Ok(holding
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect())
        } else {
            Err(format!(
                "entries with the revoked token not dead: {alive:?}"
            ))
        }
    })
}

fn resurrection(version: &str) {
    let scenario = format!("codex-revoked-{}", &version[..4]);
    let home = HermesHome::build(&scenario, version);
    let root = &home.root;
    let revoked = fingerprint_of(ALICE_TOKEN);
    let mut daemon = Daemon::spawn(
        root,
        &[
            "--hermes-version",
            version,
            "watch",
            "--poll-interval",
            "0.1",
        ],
    );
    let marked = wait_until_token_dead(&mut daemon, root, version, &revoked);
    assert_eq!(marked, [home.credential_id("alice@example.com", None)]);

    // A login with the stale token puts it in the singleton; load_pool() seeds it as a new
    // device_code entry, and after a removal from the pool seeds it again under a new id.
    probe(
        root,
        version,
        "reauth",
        &[
            "--access-token",
            ALICE_TOKEN,
            "--refresh-token",
            "fake-codex-refresh-token-stale-0000",
        ],
    );
    let seeded = wait_until_token_dead(&mut daemon, root, version, &revoked);
    let device_code = codex_entries(&read_json(&root.join("auth.json")))
        .into_iter()
        .find(|e| e["source"] == "device_code")
        .expect("the singleton was seeded into the pool");
    let first_id = device_code["id"].as_str().unwrap().to_owned();
    assert!(seeded.contains(&first_id), "{seeded:?}");
    let removed = probe(
        root,
        version,
        "remove",
        &["--id", &first_id, "--via", "pool"],
    );
    let reseeded: Vec<String> = removed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "device_code")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reseeded.len(), 1, "{removed}");
    assert_ne!(reseeded[0], first_id, "re-seeded under a new id");
    let dead = wait_until_token_dead(&mut daemon, root, version, &revoked);
    assert!(dead.contains(&reseeded[0]), "{dead:?}");
    for ids in selected_ids(root, version) {
        assert!(
            ids.iter().all(|id| !dead.contains(id)),
            "{ids:?} vs dead {dead:?}"
        );
    }

    // A real re-login with a new token: the warden leaves the renewed entries alone.
    let renewed_token = "fake-codex-access-token-alice-renewed-0000";
    probe(
        root,
        version,
        "reauth",
        &[
            "--access-token",
            renewed_token,
            "--refresh-token",
            "fake-codex-refresh-token-renewed-0000",
        ],
    );
    let renewed = fingerprint_of(renewed_token);
    daemon.wait_until(|| {
        audit(root)
            .iter()
            .any(|r| r["type"] == "mark" && r["change"] == "revived")
            .then_some(())
            .ok_or("a mark dropped as revived by re-auth".to_owned())
    });
    let selections = selected_ids(root, version);
    let entries = codex_entries(&read_json(&root.join("auth.json")));
    let renewed_ids: Vec<&str> = entries
        .iter()
        .filter(|e| entry_fingerprint(e).as_deref() == Some(renewed.as_str()))
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(!renewed_ids.is_empty());
    assert!(
        entries
            .iter()
            .filter(|e| renewed_ids.contains(&e["id"].as_str().unwrap()))
            .all(|e| !is_dead(e, version)),
        "{entries:?}"
    );
    assert!(
        selections
            .iter()
            .all(|ids| ids.iter().any(|id| renewed_ids.contains(&id.as_str()))),
        "Hermes selects the renewed credential: {selections:?}"
    );
    let (code, _) = daemon.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn a_reseeded_stale_token_is_marked_again_and_a_reauth_is_left_alone_on_015() {
    resurrection("0.15.0");
}

#[test]
fn a_reseeded_stale_token_is_marked_again_and_a_reauth_is_left_alone_on_019() {
    resurrection("0.19.0");
}

/// Three live Hermes `version` processes select, mark and persist the pool in a loop while the
/// daemon marks alice (whom Hermes left merely exhausted): their stale in-memory copies may undo
/// the mark (how often depends on timing; the next test makes it happen), the daemon writes it
/// again.
fn concurrency(version: &str) {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    let alice = home.credential_id("alice@example.com", None);
    let bob = home.credential_id("bob@example.com", None);
    let ids = format!("{alice},{bob}");
    let observer = pool_probe(
        root,
        version,
        "observe",
        &["--seconds", "120", "--expect-ids", &ids],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let churners: Vec<Child> = (0..3)
        .map(|seed| {
            pool_probe(
                root,
                version,
                "churn",
                &[
                    "--provider",
                    "openai-codex",
                    "--seconds",
                    "6",
                    "--seed",
                    &seed.to_string(),
                ],
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let mut daemon = Daemon::spawn(
        root,
        &[
            "--hermes-version",
            version,
            "watch",
            "--poll-interval",
            "0.1",
        ],
    );
    for churner in churners {
        let output = churner.wait_with_output().unwrap();
        assert!(output.status.success());
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["lock_timeouts"], 0, "{report}");
        assert_eq!(report["error_count"], 0, "{report}");
        assert!(report["iterations"].as_u64().unwrap() > 10, "{report}");
    }
    wait_until_token_dead(&mut daemon, root, version, &fingerprint_of(ALICE_TOKEN));
    std::fs::write(root.join("stop-observe"), "").unwrap();
    let observed: Value =
        serde_json::from_slice(&observer.wait_with_output().unwrap().stdout).unwrap();
    assert!(observed["versions"].as_u64().unwrap() > 10, "{observed}");
    assert_eq!(observed["unparsable"], 0, "{observed}");
    assert_eq!(observed["missing_ids"], serde_json::json!([]), "{observed}");
    assert_eq!(observed["lost_fields"], serde_json::json!([]), "{observed}");
    let mark = &ledger(root)["marks"][0];
    assert_eq!(mark["credential_id"], alice.as_str());
    eprintln!(
        "Hermes {version}: {} versions of auth.json observed, {} reverts re-applied",
        observed["versions"], mark["reverts"]
    );
    let (code, _) = daemon.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn live_hermes_processes_rewriting_the_pool_lose_nothing_and_the_mark_ends_in_place_015() {
    concurrency("0.15.0");
}

#[test]
fn live_hermes_processes_rewriting_the_pool_lose_nothing_and_the_mark_ends_in_place_019() {
    concurrency("0.19.0");
}

/// A live Hermes `version` process loaded the pool before the mark and persists it after: the
/// mark is undone, and the daemon writes it again and counts the revert.
fn stale_process_revert(version: &str) {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    let alice = home.credential_id("alice@example.com", None);
    let revoked = fingerprint_of(ALICE_TOKEN);
    let stale = pool_probe(root, version, "stale-persist", &[])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !root.join("stale-loaded").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the stale process never loaded the pool"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut daemon = Daemon::spawn(
        root,
        &[
            "--hermes-version",
            version,
            "watch",
            "--poll-interval",
            "0.1",
        ],
    );
    wait_until_token_dead(&mut daemon, root, version, &revoked);
    std::fs::write(root.join("persist-now"), "").unwrap();
    let output = stale.wait_with_output().unwrap();
    assert!(output.status.success());
    let written: Value = serde_json::from_slice(&output.stdout).unwrap();
    let undone = written["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == alice.as_str())
        .unwrap();
    assert_ne!(undone["last_status"], "dead", "{written}");
    wait_until_token_dead(&mut daemon, root, version, &revoked);
    daemon.wait_until(|| match ledger(root)["marks"][0]["reverts"].as_u64() {
        Some(reverts) if reverts >= 1 => Ok(()),
        _ => Err(format!("a revert counted: {}", ledger(root))),
    });
    assert!(
        audit(root)
            .iter()
            .any(|r| r["type"] == "mark" && r["change"] == "reverted")
    );
    let (code, _) = daemon.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn a_stale_hermes_015_process_undoes_the_mark_and_it_is_written_again() {
    stale_process_revert("0.15.0");
}

#[test]
fn a_stale_hermes_019_process_undoes_the_mark_and_it_is_written_again() {
    stale_process_revert("0.19.0");
}

/// Python writes random documents as Hermes does (`json.dumps(indent=2) + "\n"`: escapes of
/// control, non-ASCII and astral characters, floats in every range, big integers, empty and
/// nested containers); read and written again by the warden, every byte is the same.
#[test]
fn the_warden_writes_json_byte_for_byte_as_python_does() {
    const GENERATE: &str = r#"
import json, random, sys
rng = random.Random(7)
CHARS = [chr(c) for c in range(0, 0x80)] + ['\u00e9', '\u00ff', '\u2028', '\u4e2d', '\ufffd', '\U0001f600', '\U00010348']
def text():
    return ''.join(rng.choice(CHARS) for _ in range(rng.randint(0, 12)))
def number():
    return rng.choice([
        rng.randint(-10**30, 10**30), rng.randint(-5, 5), rng.uniform(-1e6, 1e6),
        rng.uniform(0, 1) * 10.0 ** rng.randint(-320, 308), float(rng.randint(0, 10**6)), -0.0, 1e16, 1e-5,
    ])
def value(depth):
    kind = rng.randint(0, 7 if depth < 4 else 3)
    if kind == 0: return number()
    if kind == 1: return text()
    if kind == 2: return rng.choice([True, False, None])
    if kind == 3: return rng.randint(0, 2**63)
    if kind in (4, 5): return {text(): value(depth + 1) for _ in range(rng.randint(0, 5))}
    return [value(depth + 1) for _ in range(rng.randint(0, 5))]
for i in range(400):
    with open(f"{sys.argv[1]}/{i}.json", "w") as f:
        f.write(json.dumps({"version": 1, "doc": value(0)}, indent=2) + "\n")
"#;
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("python3")
        .args(["-c", GENERATE])
        .arg(dir.path())
        .status()
        .expect("python3 (./scripts/test.sh installs it)");
    assert!(status.success());
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let document: Value = serde_json::from_slice(&bytes).unwrap();
        let written = hermes_warden::remediate::pyjson::dumps(&document);
        assert!(
            written.as_bytes() == bytes,
            "{}: python wrote\n{}\nthe warden wrote\n{written}",
            path.display(),
            String::from_utf8_lossy(&bytes)
        );
        checked += 1;
    }
    assert_eq!(checked, 400);
}

#[test]
fn an_unparsable_auth_json_is_never_written_and_retried_without_hammering() {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    let alice = home.credential_id("alice@example.com", None);
    let good = std::fs::read_to_string(root.join("auth.json")).unwrap();
    let broken = good.replacen("\"credential_pool\": {", "\"credential_pool\": {,", 1);
    // The daemon reads the good pool and decides while Hermes holds its lock; the file breaks
    // before the lock is free.
    std::fs::write(root.join("warden.toml"), "lock_timeout_seconds = 0.3\n").unwrap();
    let mut holder = hold_lock(root);
    let mut daemon = Daemon::spawn(
        root,
        &[
            "--hermes-version",
            "0.15.0",
            "watch",
            "--poll-interval",
            "0.1",
        ],
    );
    daemon.wait_until(|| {
        audit(root)
            .iter()
            .any(|r| r["result"] == "lock_timeout")
            .then_some(())
            .ok_or("a lock timeout".to_owned())
    });
    std::fs::write(root.join("auth.json"), &broken).unwrap();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let parse_errors = |root: &Path| {
        audit(root)
            .iter()
            .filter(|r| r["type"] == "auth_write" && r["result"] == "parse_error")
            .count()
    };
    daemon.wait_until(|| match parse_errors(root) {
        0 => Err("a parse error recorded".to_owned()),
        _ => Ok(()),
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    let errors = parse_errors(root);
    assert!(
        errors <= 4,
        "{errors} attempts in about 3 s: retries back off (1 s, 2 s, ...) instead of every 0.1 s poll"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("auth.json")).unwrap(),
        broken
    );
    std::fs::write(root.join("auth.json"), &good).unwrap();
    daemon.wait_until(|| {
        codex_entries(&read_json(&root.join("auth.json")))
            .iter()
            .any(|e| e["id"] == alice.as_str() && is_dead(e, "0.15.0"))
            .then_some(())
            .ok_or("alice marked once auth.json parses again".to_owned())
    });
    let (code, _) = daemon.stop();
    assert_eq!(code, Some(0));
}

/// SIGKILL at several moments of the first steps (reading, marking, recording), then restarts:
/// auth.json always parses, the mark ends in place, every finding is recorded once, the mark is
/// written once, and a restart after it is done writes and records nothing.
#[test]
fn sigkill_while_marking_then_restarts_write_once_and_record_once() {
    let built = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let alice = built.credential_id("alice@example.com", None);
    let args = [
        "--hermes-version",
        "0.15.0",
        "watch",
        "--poll-interval",
        "0.1",
    ];
    for delay_ms in [0, 3, 10, 30, 80, 200] {
        let dir = tempfile::tempdir().unwrap();
        let root = &dir.path().join("hermes");
        copy_dir(&built.root, root);
        let daemon = Daemon::spawn(root, &args);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        daemon.kill();
        read_json(&root.join("auth.json"));

        let mut daemon = Daemon::spawn(root, &args);
        daemon.wait_for_step();
        daemon.wait_until(|| {
            let dead = codex_entries(&read_json(&root.join("auth.json")))
                .iter()
                .any(|e| e["id"] == alice.as_str() && is_dead(e, "0.15.0"));
            let applied = !ledger(root)["marks"][0]["applied_at"].is_null();
            let recorded = audit(root).iter().any(|r| r["action"] == "mark_dead");
            (dead && applied && recorded).then_some(()).ok_or(format!(
                "after a kill at {delay_ms} ms: marked, applied, recorded"
            ))
        });
        let (code, _) = daemon.stop();
        assert_eq!(code, Some(0));

        let records = audit(root);
        // A finding is a rule's match on a line: (line source, rule).
        let findings: Vec<String> = records
            .iter()
            .filter(|r| !r["source"].is_null())
            .map(|r| format!("{} {}", r["source"], r["rule"]))
            .collect();
        let unique: std::collections::HashSet<&String> = findings.iter().collect();
        assert_eq!(
            unique.len(),
            findings.len(),
            "a finding recorded twice: {records:?}"
        );
        let applied = records
            .iter()
            .filter(|r| r["type"] == "mark" && r["change"] == "applied")
            .count();
        assert!(
            applied <= 1,
            "the mark written {applied} times: {records:?}"
        );

        let inode = std::fs::metadata(root.join("auth.json")).unwrap().ino();
        let mut daemon = Daemon::spawn(root, &args);
        daemon.wait_for_step();
        let (code, _) = daemon.stop();
        assert_eq!(code, Some(0));
        assert_eq!(audit(root).len(), records.len(), "a restart recorded again");
        assert_eq!(
            std::fs::metadata(root.join("auth.json")).unwrap().ino(),
            inode,
            "a restart wrote auth.json again"
        );
    }
}

/// The user logged in again before the warden ever ran: the failures in the logs were about the
/// old token, so `scan --apply` leaves the renewed credential alone.
#[test]
fn a_reauth_before_the_warden_ran_is_not_undone_by_old_failures() {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    let alice = home.credential_id("alice@example.com", None);
    let before = home.scan(&[]);
    assert_eq!(
        before["actions"][0]["result"], "would_apply",
        "the evidence is there"
    );
    let renewed_token = "fake-codex-access-token-alice-renewed-0000";
    probe(
        root,
        "0.15.0",
        "reauth",
        &[
            "--access-token",
            renewed_token,
            "--refresh-token",
            "fake-codex-refresh-token-renewed-0000",
        ],
    );
    let entries = codex_entries(&read_json(&root.join("auth.json")));
    let entry = entries.iter().find(|e| e["id"] == alice.as_str()).unwrap();
    assert_eq!(
        entry_fingerprint(entry),
        Some(fingerprint_of(renewed_token)),
        "Hermes 0.15 gives every device-code entry the new token: {entry}"
    );
    let after = scan_apply(root, &["--hermes-version", "0.15.0"]);
    assert_eq!(after["actions"], serde_json::json!([]), "{after}");
    let entries = codex_entries(&read_json(&root.join("auth.json")));
    let entry = entries.iter().find(|e| e["id"] == alice.as_str()).unwrap();
    assert!(!is_dead(entry, "0.15.0"), "{entry}");
}

/// The same id in the root and in a profile: only the profile's credential is marked, in the
/// profile's auth.json, under the profile's lock; the root's file is not touched.
#[test]
fn a_profile_credential_is_marked_in_the_profile_only() {
    let home = HermesHome::build("profile", "0.19.0");
    let root = &home.root;
    let root_before = std::fs::read(root.join("auth.json")).unwrap();
    // Read as Hermes 0.15, the profile's `dead` alice is usable: she must be marked its way.
    let scan = scan_apply(root, &["--hermes-version", "0.15.0", "--all-profiles"]);
    let actions = scan["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{scan}");
    assert_eq!(actions[0]["profile"], "work");
    assert_eq!(actions[0]["result"], "applied");
    assert_eq!(std::fs::read(root.join("auth.json")).unwrap(), root_before);
    let work = root.join("profiles/work");
    assert!(work.join("auth.lock").exists());
    let alice = home.credential_id("alice@example.com", Some("work"));
    assert!(
        codex_entries(&read_json(&work.join("auth.json")))
            .iter()
            .any(|e| e["id"] == alice.as_str() && is_dead(e, "0.15.0"))
    );
    assert_eq!(ledger(root)["marks"][0]["profile"], "work");
}

/// Runs the daemon on a home Hermes 0.15 built, with `mark_as` in its warden.toml, as Hermes
/// `version` reads it: the mark is written once (no rewrite loop, no revert), and Hermes's own
/// `select()` never picks alice, whichever form was asked for. A form `version` would ignore is
/// refused at start (exit 2, naming the key, the version and the form that works), with nothing
/// written; and refused on SIGHUP, the daemon going on with the form it had.
fn mark_as_on(version: &str, mark_as: &str) {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    let auth_path = root.join("auth.json");
    let alice = home.credential_id("alice@example.com", None);
    let config = root.join("warden.toml");
    std::fs::write(&config, format!("mark_as = {mark_as:?}\n")).unwrap();
    let watch = [
        "--hermes-version",
        version,
        "watch",
        "--poll-interval",
        "0.05",
    ];
    let refused = version == "0.15.0" && mark_as == "dead";
    if refused {
        let before = std::fs::read(&auth_path).unwrap();
        let output = warden_in(root)
            .args(watch)
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        for needle in ["warden.toml", "mark_as", "0.15.0", "\"exhausted\""] {
            assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
        }
        assert_eq!(
            std::fs::read(&auth_path).unwrap(),
            before,
            "nothing written"
        );
        assert!(!root.join("warden/ledger.json").exists());
        std::fs::write(&config, "mark_as = \"auto\"\n").unwrap();
    }
    let mut daemon = Daemon::spawn(root, &watch);
    let marked = |root: &Path| {
        audit(root)
            .into_iter()
            .filter(|r| r["type"] == "mark")
            .map(|r| r["change"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    daemon.wait_until(
        || match marked(root).iter().any(|change| change == "applied") {
            false => Err("alice marked".to_owned()),
            true => Ok(()),
        },
    );
    let inode = std::fs::metadata(&auth_path).unwrap().ino();
    if refused {
        std::fs::write(&config, "mark_as = \"dead\"\n").unwrap();
        daemon.signal("HUP");
    }
    // A rewrite loop writes on every step (every 50 ms here): a second of steps shows it.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        marked(root),
        ["recorded", "applied"],
        "one write, no revert: {stderr}"
    );
    assert_eq!(
        std::fs::metadata(&auth_path).unwrap().ino(),
        inode,
        "written again"
    );
    if refused {
        assert!(
            stderr.contains("keeping the old") && stderr.contains("mark_as"),
            "the reload is refused and says why: {stderr}"
        );
    }
    let entry = codex_entries(&read_json(&auth_path))
        .into_iter()
        .find(|e| e["id"] == alice.as_str())
        .unwrap();
    assert!(is_dead(&entry, version), "{entry}");
    for ids in selected_ids(root, version) {
        assert!(
            !ids.contains(&alice),
            "Hermes {version} selected alice: {ids:?}"
        );
    }
}

#[test]
fn mark_as_auto_on_015_and_019() {
    mark_as_on("0.15.0", "auto");
    mark_as_on("0.19.0", "auto");
}

#[test]
fn mark_as_exhausted_on_015_and_019() {
    mark_as_on("0.15.0", "exhausted");
    mark_as_on("0.19.0", "exhausted");
}

#[test]
fn mark_as_dead_is_refused_on_015_and_honoured_on_019() {
    mark_as_on("0.15.0", "dead");
    mark_as_on("0.19.0", "dead");
}

/// Killed between the auth.json write and the audit append (here: the `applied` line taken
/// back out of the audit log), the warden writes the missing line at its next start, once.
#[test]
fn an_applied_mark_missing_from_the_audit_log_is_recorded_at_the_next_start() {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    let args = ["--hermes-version", "0.15.0"];
    assert_eq!(scan_apply(root, &args)["actions"][0]["result"], "applied");
    let audit_path = root.join("warden/audit.jsonl");
    let applied = |root: &Path| {
        audit(root)
            .iter()
            .filter(|r| r["type"] == "mark" && r["change"] == "applied")
            .count()
    };
    assert_eq!(applied(root), 1);
    let cut_applied = || {
        let text = std::fs::read_to_string(&audit_path).unwrap();
        let kept: String = text
            .lines()
            .filter(|line| !line.contains("\"change\":\"applied\""))
            .map(|line| format!("{line}\n"))
            .collect();
        std::fs::write(&audit_path, kept).unwrap();
        assert_eq!(applied(root), 0);
    };

    cut_applied();
    let mut daemon = Daemon::spawn(
        root,
        &[
            "--hermes-version",
            "0.15.0",
            "watch",
            "--poll-interval",
            "0.1",
        ],
    );
    daemon.wait_until(|| match applied(root) {
        0 => Err("the applied line written again".to_owned()),
        n => Ok(n),
    });
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(applied(root), 1, "once");

    cut_applied();
    assert_eq!(
        scan_apply(root, &args)["actions"][0]["result"],
        "already_dead"
    );
    assert_eq!(applied(root), 1, "scan --apply fills the gap too");
    scan_apply(root, &args);
    assert_eq!(applied(root), 1, "and only once");
}

/// A dry run reads auth.json like a real one: the revoked credential is pinned and would be
/// marked, and nothing is written.
#[test]
fn a_dry_run_daemon_attributes_and_would_mark_but_writes_nothing() {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    let alice = home.credential_id("alice@example.com", None);
    let before = std::fs::read(root.join("auth.json")).unwrap();
    let mut daemon = Daemon::spawn(
        root,
        &[
            "--hermes-version",
            "0.15.0",
            "watch",
            "--dry-run",
            "--poll-interval",
            "0.1",
        ],
    );
    let finding = daemon.wait_until(|| {
        audit(root)
            .into_iter()
            .find(|r| r["action"] == "mark_dead" && !r["result"].is_null())
            .ok_or("a finding with an action".to_owned())
    });
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(finding["result"], "would_apply", "{finding}");
    assert_eq!(finding["credential"]["id"], alice.as_str(), "{finding}");
    assert_eq!(std::fs::read(root.join("auth.json")).unwrap(), before);
    assert!(!root.join("warden/ledger.json").exists());
}

/// auth.json with a UTF-8 byte-order mark: Hermes 0.15 and 0.19 cannot read it (they take it
/// for corrupt), so nothing is written and the write is reported as failed; a Hermes that
/// reads it keeps it, with only the target's status fields changed after it.
#[test]
fn an_auth_json_with_a_byte_order_mark_is_left_alone_or_kept_as_the_version_reads_it() {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    let auth_path = root.join("auth.json");
    let plain = std::fs::read(&auth_path).unwrap();
    let marked = [b"\xEF\xBB\xBF".as_slice(), &plain].concat();
    std::fs::write(&auth_path, &marked).unwrap();
    for version in ["0.15.0", "0.19.0"] {
        let output = warden_in(root)
            .args([
                "--hermes-version",
                version,
                "scan",
                "--apply",
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{version}: {stderr}");
        assert!(stderr.contains("byte-order mark"), "{version}: {stderr}");
        assert_eq!(
            std::fs::read(&auth_path).unwrap(),
            marked,
            "{version}: untouched"
        );
    }
    assert!(
        audit(root)
            .iter()
            .any(|r| r["type"] == "auth_write" && r["result"] == "parse_error"),
        "the refused write is in the audit log"
    );
    let scan = scan_apply(root, &["--hermes-version", "0.20.0"]);
    assert_eq!(scan["actions"][0]["result"], "applied", "{scan}");
    let after = std::fs::read(&auth_path).unwrap();
    let rest = after
        .strip_prefix(b"\xEF\xBB\xBF")
        .expect("the mark is kept");
    let alice = home.credential_id("alice@example.com", None);
    assert_only_status_fields_changed(
        std::str::from_utf8(&plain).unwrap(),
        std::str::from_utf8(rest).unwrap(),
        &alice,
    );
}

/// With --all-profiles, a home that cannot be read is reported and the others go on, the
/// healthy ones' actions included; the run exits 1 at the end.
#[test]
fn one_broken_home_does_not_stop_the_others() {
    let home = HermesHome::build("profile", "0.19.0");
    let root = &home.root;
    std::fs::write(
        root.join("auth.json"),
        "{\"version\": 1, \"credential_pool\": [",
    )
    .unwrap();
    let broken = std::fs::read(root.join("auth.json")).unwrap();
    let output = warden_in(root)
        .args([
            "--hermes-version",
            "0.15.0",
            "--all-profiles",
            "scan",
            "--apply",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("could not read (root)"), "{stderr}");
    let scan: Value = serde_json::from_slice(&output.stdout).expect("the report is printed");
    assert_eq!(scan["actions"][0]["profile"], "work", "{scan}");
    assert_eq!(scan["actions"][0]["result"], "applied", "{scan}");
    let unreadable = scan["unreadable_homes"].as_array().expect("listed");
    assert_eq!(unreadable.len(), 1, "{scan}");
    assert!(unreadable[0]["profile"].is_null());
    assert!(
        unreadable[0]["error"]
            .as_str()
            .unwrap()
            .contains("auth.json:1:"),
        "{scan}"
    );
    assert_eq!(
        std::fs::read(root.join("auth.json")).unwrap(),
        broken,
        "never written"
    );

    let status = warden_in(root)
        .args(["--hermes-version", "0.15.0", "--all-profiles", "status"])
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1));
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        table.contains("UNREADABLE HOMES") && table.contains("work"),
        "{table}"
    );
}

/// The ledger cannot be had (here: a directory where its lock file must be): no line is read
/// while it cannot, the daemon says so and goes on; once it can, the mark is made.
#[test]
fn a_ledger_that_cannot_be_written_holds_the_marks_back_until_it_can() {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    let alice = home.credential_id("alice@example.com", None);
    let lock = root.join("warden/ledger.lock");
    std::fs::create_dir_all(&lock).unwrap();
    let mut daemon = Daemon::spawn(
        root,
        &[
            "--hermes-version",
            "0.15.0",
            "watch",
            "--poll-interval",
            "0.1",
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let auth_before = std::fs::read(root.join("auth.json")).unwrap();
    std::fs::remove_dir(&lock).unwrap();
    daemon.wait_until(|| {
        codex_entries(&read_json(&root.join("auth.json")))
            .iter()
            .any(|e| e["id"] == alice.as_str() && is_dead(e, "0.15.0"))
            .then_some(())
            .ok_or("alice marked once the ledger could be had".to_owned())
    });
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("ledger.json") && stderr.contains("cannot write"),
        "{stderr}"
    );
    assert!(
        codex_entries(&serde_json::from_slice(&auth_before).unwrap())
            .iter()
            .any(|e| e["id"] == alice.as_str() && !is_dead(e, "0.15.0")),
        "not marked while it could not"
    );
    let findings = audit(root)
        .into_iter()
        .filter(|r| r["action"] == "mark_dead")
        .count();
    assert!(findings >= 1);
}
