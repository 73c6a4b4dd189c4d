//! The warden's own state files, `<home>/warden/{ledger.json, checkpoints.json, audit.jsonl}`,
//! broken on disk (truncated in the middle, empty, garbage bytes, a directory in the file's
//! place, a last audit line torn by a crash mid-append), with the daemon as a real process on
//! homes built by the real Hermes: nothing stops, nothing is lost, nothing is recorded twice.
//!
//! * A broken ledger is moved aside to `ledger.json.corrupt-<unix seconds>` (a file keeps its
//!   mode), reported once (one `state_file` audit record, one line on stderr) and rebuilt from
//!   the audit log's journal with alice's mark exactly as it was; a stale Hermes process that
//!   then undoes the mark sees it written again, and new log lines still become findings.
//! * `scan` (dry run) with a broken ledger exits 0 and moves nothing; `scan --apply` repairs it.
//! * Broken checkpoints are moved aside and reported, every log is read from the start again,
//!   and the audit log keeps every finding recorded exactly once.
//! * A torn last audit line is cut back to the last complete line by whichever command opens
//!   the log (`watch`, `scan --apply`, `revive`), reported, and every line parses afterwards.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hermes_warden::shared::secrets::fingerprint_of;
use serde_json::Value;

use crate::util::{HermesHome, copy_dir, pool_probe, read_json, warden_in};
use crate::watch::{Daemon, append, audit, failure_line};

/// The fixture's revoked token (obviously fake), as build_home.py gives it to alice.
const ALICE_TOKEN: &str = "fake-codex-access-token-alice-0000000000";
/// The mode the broken state files are given, to see that moving them aside keeps it.
const ODD_MODE: u32 = 0o640;

/// How a state file is broken.
#[derive(Debug, Clone, Copy)]
enum Corruption {
    /// Cut in the middle, as a torn write leaves it.
    Truncated,
    Empty,
    /// Not UTF-8, not JSON.
    Garbage,
    /// A directory where the file should be.
    Directory,
}

const EVERY_CORRUPTION: [Corruption; 4] = [
    Corruption::Truncated,
    Corruption::Empty,
    Corruption::Garbage,
    Corruption::Directory,
];

/// Breaks the (existing) file at `path`; returns the bytes left in it, `None` for a directory.
fn corrupt(path: &Path, how: Corruption) -> Option<Vec<u8>> {
    let good = std::fs::read(path).expect("the state file exists before it is broken");
    let bytes = match how {
        Corruption::Truncated => good[..good.len() / 2].to_vec(),
        Corruption::Empty => Vec::new(),
        Corruption::Garbage => b"\x00\xff\xfe{\"marks\": [\x07 not json \x80\x81\n".to_vec(),
        Corruption::Directory => {
            std::fs::remove_file(path).unwrap();
            std::fs::create_dir(path).unwrap();
            std::fs::write(path.join("stray"), "left by hand\n").unwrap();
            return None;
        }
    };
    std::fs::write(path, &bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(ODD_MODE)).unwrap();
    Some(bytes)
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Checks that `name` in `warden` was moved aside exactly once, to `<name>.corrupt-<t>` with `t`
/// between `since` and now, and is what was left there (`left`: bytes and mode, or a
/// directory); returns where it went.
fn assert_moved_aside(warden: &Path, name: &str, since: u64, left: &Option<Vec<u8>>) -> PathBuf {
    let prefix = format!("{name}.corrupt-");
    let aside: Vec<PathBuf> = std::fs::read_dir(warden)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect();
    assert_eq!(aside.len(), 1, "{name} moved aside once: {aside:?}");
    let moved = aside[0].clone();
    let file_name = moved.file_name().unwrap().to_string_lossy().into_owned();
    let seconds: u64 = file_name[prefix.len()..]
        .parse()
        .unwrap_or_else(|_| panic!("{file_name} ends in unix seconds"));
    assert!(
        (since..=unix_seconds()).contains(&seconds),
        "{file_name}: {seconds} is not between {since} and now"
    );
    let metadata = std::fs::symlink_metadata(&moved).unwrap();
    match left {
        Some(bytes) => {
            assert!(metadata.is_file(), "{file_name} is the file");
            assert_eq!(&std::fs::read(&moved).unwrap(), bytes, "{file_name}");
            assert_eq!(
                metadata.permissions().mode() & 0o777,
                ODD_MODE,
                "{file_name} keeps its mode"
            );
        }
        None => {
            assert!(metadata.is_dir(), "{file_name} is the directory");
            assert!(moved.join("stray").exists(), "with what was in it");
        }
    }
    moved
}

/// The audit log's lines, each parsed, or which line does not parse.
fn audit_lines(root: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(root.join("warden/audit.jsonl")).unwrap_or_default();
    text.lines()
        .enumerate()
        .map(|(number, line)| {
            serde_json::from_str(line)
                .map_err(|error| format!("audit line {} ({line:?}): {error}", number + 1))
        })
        .collect()
}

/// The `state_file` records about `file` (`ledger`, `checkpoints`, `audit`).
fn state_file_records(records: &[Value], file: &str) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["type"] == "state_file" && r["file"] == file)
        .cloned()
        .collect()
}

/// Waits until the daemon recorded one `state_file` record about `file`, and returns it.
fn wait_for_state_file(daemon: &mut Daemon, root: &Path, file: &str) -> Value {
    daemon.wait_until(
        || match state_file_records(&audit_lines(root)?, file).first() {
            Some(record) => Ok(record.clone()),
            None => Err(format!("a state_file record about the {file}")),
        },
    )
}

/// The findings (records without a `type`), keyed by their line's `source` and their rule (two
/// rules may match one line); fails on a finding recorded twice.
fn finding_sources(records: &[Value]) -> Vec<String> {
    let sources: Vec<String> = records
        .iter()
        .filter(|r| r.get("type").is_none())
        .map(|r| format!("{} {}", r["source"], r["rule"]))
        .collect();
    let unique: std::collections::HashSet<&String> = sources.iter().collect();
    assert_eq!(
        unique.len(),
        sources.len(),
        "a finding was recorded twice: {records:#?}"
    );
    sources
}

/// The findings of lines from session `s<number>`.
fn findings_of(records: &[Value], number: usize) -> usize {
    let session = format!("s{number}");
    records
        .iter()
        .filter(|r| r.get("type").is_none() && r["session"] == session.as_str())
        .count()
}

/// Lines of stderr that report trouble with the state file `name`.
fn reports_on_stderr(stderr: &str, name: &str) -> usize {
    let needle = format!("file=\"{name}\"");
    stderr.lines().filter(|line| line.contains(&needle)).count()
}

/// Cuts the file in the middle of its last line, as a crash mid-append leaves it; returns the
/// complete lines before it.
fn tear_last_line(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.ends_with(b"\n") && bytes.len() > 1,
        "{}",
        path.display()
    );
    let start = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |at| at + 1);
    let cut = start + (bytes.len() - start) / 2;
    std::fs::write(path, &bytes[..cut]).unwrap();
    bytes[..start].to_vec()
}

/// `scan --apply --format json` as Hermes 0.15 reads the home: exit code, report, stderr.
fn scan_apply(root: &Path) -> (Option<i32>, Value, String) {
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
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("scan --apply prints JSON ({error}): {stderr}"));
    (output.status.code(), report, stderr)
}

fn ledger_marks(root: &Path) -> Vec<Value> {
    read_json(&root.join("warden/ledger.json"))["marks"]
        .as_array()
        .expect("the ledger has marks")
        .clone()
}

/// Whether alice's entry in auth.json is dead for Hermes 0.15: exhausted for good.
fn alice_is_dead(root: &Path, alice: &str) -> bool {
    read_json(&root.join("auth.json"))["credential_pool"]["openai-codex"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| {
            e["id"] == alice
                && e["last_status"] == "exhausted"
                && e["last_error_reset_at"]
                    .as_f64()
                    .is_some_and(|reset| reset > 4e9)
        })
}

/// Alice marked by `scan --apply` on a home Hermes 0.15 built (where Hermes left her merely
/// exhausted); returns the home, alice's id and the ledger's marks.
fn marked_home() -> (HermesHome, String, Vec<Value>) {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let alice = home.credential_id("alice@example.com", None);
    let (code, scan, stderr) = scan_apply(&home.root);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(scan["actions"][0]["result"], "applied", "{scan}");
    let marks = ledger_marks(&home.root);
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0]["credential_id"], alice.as_str());
    assert_eq!(marks[0]["fingerprint"], fingerprint_of(ALICE_TOKEN));
    assert!(!marks[0]["applied_at"].is_null());
    (home, alice, marks)
}

/// A child process killed when the test ends, whatever way it ends.
struct Reaped(Option<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A live Hermes 0.15 process that loaded the pool before alice was marked (pool_probe
/// `stale-persist`), waiting for `<root>/persist-now` to write its stale pool over the mark.
fn stale_hermes(root: &Path) -> Reaped {
    let child = pool_probe(root, "0.15.0", "stale-persist", &[])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start pool_probe.py stale-persist");
    let stale = Reaped(Some(child));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !root.join("stale-loaded").exists() {
        assert!(
            Instant::now() < deadline,
            "the stale Hermes process never loaded the pool"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stale
}

/// The daemon on a home whose ledger is broken `how` after alice was marked: the ledger is
/// moved aside, reported once, rebuilt with alice's mark as it was; the daemon writes the mark
/// again after a stale Hermes process undid it, and still records new log lines.
fn a_broken_ledger_does_not_stop_the_daemon(how: Corruption) {
    let home = HermesHome::build("codex-revoked-0.15", "0.15.0");
    let root = &home.root;
    let mut stale = stale_hermes(root);
    let alice = home.credential_id("alice@example.com", None);
    let (code, scan, stderr) = scan_apply(root);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(scan["actions"][0]["result"], "applied", "{scan}");
    let marks = ledger_marks(root);
    assert_eq!(marks.len(), 1);

    let since = unix_seconds();
    let left = corrupt(&root.join("warden/ledger.json"), how);
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
    let report = wait_for_state_file(&mut daemon, root, "ledger");
    let moved = assert_moved_aside(&root.join("warden"), "ledger.json", since, &left);
    assert_eq!(report["moved_to"], moved.display().to_string(), "{report}");
    assert!(
        report["problem"]
            .as_str()
            .is_some_and(|p| p.contains("ledger.json")),
        "{report}"
    );
    assert_eq!(
        ledger_marks(root),
        marks,
        "the rebuilt ledger holds alice's mark as it was"
    );

    // The stale process writes its pool, loaded before the mark, over it.
    std::fs::write(root.join("persist-now"), "").unwrap();
    let output = stale.0.take().unwrap().wait_with_output().unwrap();
    assert!(output.status.success(), "stale-persist failed");
    daemon.wait_until(|| {
        let reverted = audit_lines(root)?
            .iter()
            .any(|r| r["type"] == "mark" && r["change"] == "reverted");
        let reverts = ledger_marks(root)[0]["reverts"].as_u64().unwrap_or(0);
        (reverted && reverts >= 1 && alice_is_dead(root, &alice))
            .then_some(())
            .ok_or(format!(
                "the undone mark written again and counted: {:?}",
                ledger_marks(root)
            ))
    });

    append(&root.join("logs/errors.log"), &failure_line(901));
    daemon.wait_until(|| match findings_of(&audit_lines(root)?, 901) {
        0 => Err("a finding for a line appended after the repair".to_owned()),
        _ => Ok(()),
    });
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");

    let records = audit_lines(root).unwrap();
    assert_eq!(
        state_file_records(&records, "ledger").len(),
        1,
        "reported once"
    );
    assert_eq!(
        reports_on_stderr(&stderr, "ledger.json"),
        1,
        "one line on stderr: {stderr}"
    );
    assert_eq!(findings_of(&records, 901), 1);
    finding_sources(&records);
    let after = ledger_marks(root);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["credential_id"], alice.as_str());
    assert_eq!(after[0]["fingerprint"], fingerprint_of(ALICE_TOKEN));
    assert_eq!(after[0]["applied_at"], marks[0]["applied_at"]);
    assert!(alice_is_dead(root, &alice));
}

#[test]
fn a_truncated_ledger_is_rebuilt_and_the_daemon_keeps_the_mark() {
    a_broken_ledger_does_not_stop_the_daemon(Corruption::Truncated);
}

#[test]
fn an_empty_ledger_is_rebuilt_and_the_daemon_keeps_the_mark() {
    a_broken_ledger_does_not_stop_the_daemon(Corruption::Empty);
}

#[test]
fn a_garbage_ledger_is_rebuilt_and_the_daemon_keeps_the_mark() {
    a_broken_ledger_does_not_stop_the_daemon(Corruption::Garbage);
}

#[test]
fn a_directory_in_place_of_the_ledger_is_moved_aside_and_the_daemon_keeps_the_mark() {
    a_broken_ledger_does_not_stop_the_daemon(Corruption::Directory);
}

/// What is at `path`: its bytes, or `None` for a directory.
fn contents(path: &Path) -> Option<Vec<u8>> {
    std::fs::symlink_metadata(path)
        .unwrap()
        .is_file()
        .then(|| std::fs::read(path).unwrap())
}

/// For each way of breaking the ledger, on a copy of one marked home: `scan` exits 0, moves
/// and writes nothing, and still knows alice's mark (rebuilt in memory); `scan --apply` exits
/// 0, moves the ledger aside, reports it once and writes it rebuilt.
#[test]
fn scan_with_a_broken_ledger_moves_nothing_and_scan_apply_repairs_it() {
    let (built, alice, marks) = marked_home();
    for how in EVERY_CORRUPTION {
        let dir = tempfile::tempdir().unwrap();
        let root = &dir.path().join("hermes");
        copy_dir(&built.root, root);
        let ledger = root.join("warden/ledger.json");
        let since = unix_seconds();
        let left = corrupt(&ledger, how);
        let audit_before = std::fs::read(root.join("warden/audit.jsonl")).unwrap();
        let auth_before = std::fs::read(root.join("auth.json")).unwrap();
        let listing = |root: &Path| {
            let mut names: Vec<String> = std::fs::read_dir(root.join("warden"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let files_before = listing(root);

        let output = warden_in(root)
            .args(["--hermes-version", "0.15.0", "scan", "--format", "json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{how:?}: {stderr}");
        assert_eq!(listing(root), files_before, "{how:?}: nothing moved");
        assert_eq!(contents(&ledger), left, "{how:?}: the ledger left as it is");
        assert_eq!(
            std::fs::read(root.join("warden/audit.jsonl")).unwrap(),
            audit_before,
            "{how:?}: nothing recorded"
        );
        assert_eq!(std::fs::read(root.join("auth.json")).unwrap(), auth_before);
        let scan: Value = serde_json::from_slice(&output.stdout).unwrap();
        let row = scan["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == alice.as_str())
            .unwrap()
            .clone();
        assert_eq!(row["warden"]["action"], "kept_dead", "{how:?}: {row}");

        let (code, scan, stderr) = scan_apply(root);
        assert_eq!(code, Some(0), "{how:?}: {stderr}");
        assert_eq!(
            scan["actions"][0]["result"], "already_dead",
            "{how:?}: {scan}"
        );
        let moved = assert_moved_aside(&root.join("warden"), "ledger.json", since, &left);
        assert_eq!(ledger_marks(root), marks, "{how:?}: rebuilt as it was");
        let records = audit_lines(root).unwrap();
        let reports = state_file_records(&records, "ledger");
        assert_eq!(reports.len(), 1, "{how:?}: reported once: {records:?}");
        assert_eq!(reports[0]["moved_to"], moved.display().to_string());
        let lines = stderr.lines().filter(|l| l.contains("ledger.json"));
        assert_eq!(
            lines.collect::<Vec<_>>(),
            stderr
                .lines()
                .filter(|l| l.contains("moved_to="))
                .collect::<Vec<_>>(),
            "{how:?}: one line on stderr, the move: {stderr}"
        );
        assert_eq!(
            stderr.lines().filter(|l| l.contains("moved_to=")).count(),
            1,
            "{how:?}: the move reported on stderr once: {stderr}"
        );
        assert_eq!(std::fs::read(root.join("auth.json")).unwrap(), auth_before);
        assert!(alice_is_dead(root, &alice));
    }
}

/// The daemon with checkpoints broken `how`: they are moved aside and reported once, a line
/// written while it was down and one written after it started are recorded, and no finding is
/// recorded twice although every log is read from the start again.
fn broken_checkpoints_read_everything_again_and_record_nothing_twice(how: Corruption) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let logs = root.join("logs");
    append(&logs.join("errors.log"), &failure_line(1));
    // Hermes writes a WARNING record to agent.log, then the same record to errors.log.
    append(&logs.join("agent.log"), &failure_line(2));
    append(&logs.join("errors.log"), &failure_line(2));
    append(&logs.join("errors.log"), &failure_line(3));
    let mut daemon = Daemon::start(root, &[]);
    daemon.wait_for_audit(3);
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let before = finding_sources(&audit(root));
    assert_eq!(before.len(), 3);

    let since = unix_seconds();
    let left = corrupt(&root.join("warden/checkpoints.json"), how);
    append(&logs.join("errors.log"), &failure_line(4));
    let mut daemon = Daemon::start(root, &[]);
    let report = wait_for_state_file(&mut daemon, root, "checkpoints");
    daemon.wait_until(|| match findings_of(&audit_lines(root)?, 4) {
        0 => Err("the line written while the daemon was down".to_owned()),
        _ => Ok(()),
    });
    append(&logs.join("errors.log"), &failure_line(5));
    daemon.wait_until(|| match findings_of(&audit_lines(root)?, 5) {
        0 => Err("the line written after the repair".to_owned()),
        _ => Ok(()),
    });
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");

    let moved = assert_moved_aside(&root.join("warden"), "checkpoints.json", since, &left);
    assert_eq!(report["moved_to"], moved.display().to_string(), "{report}");
    let records = audit_lines(root).unwrap();
    assert_eq!(
        state_file_records(&records, "checkpoints").len(),
        1,
        "reported once"
    );
    assert_eq!(
        reports_on_stderr(&stderr, "checkpoints.json"),
        1,
        "one line on stderr: {stderr}"
    );
    let after = finding_sources(&records);
    assert_eq!(&after[..before.len()], &before[..], "the old findings kept");
    assert_eq!(after.len(), before.len() + 2, "{records:#?}");
    for number in 1..=5 {
        assert_eq!(findings_of(&records, number), 1, "record {number}");
    }
    read_json(&root.join("warden/checkpoints.json"));
}

#[test]
fn truncated_checkpoints_read_every_log_again_and_record_nothing_twice() {
    broken_checkpoints_read_everything_again_and_record_nothing_twice(Corruption::Truncated);
}

#[test]
fn empty_checkpoints_read_every_log_again_and_record_nothing_twice() {
    broken_checkpoints_read_everything_again_and_record_nothing_twice(Corruption::Empty);
}

#[test]
fn garbage_checkpoints_read_every_log_again_and_record_nothing_twice() {
    broken_checkpoints_read_everything_again_and_record_nothing_twice(Corruption::Garbage);
}

#[test]
fn a_directory_in_place_of_the_checkpoints_reads_every_log_again_and_records_nothing_twice() {
    broken_checkpoints_read_everything_again_and_record_nothing_twice(Corruption::Directory);
}

/// After `tear_last_line` left `kept` (the complete lines): the log starts with them byte for
/// byte, every line parses, and one `state_file` record about the audit log follows them.
fn assert_cut_back(root: &Path, kept: &[u8]) -> Vec<Value> {
    let bytes = std::fs::read(root.join("warden/audit.jsonl")).unwrap();
    assert!(
        bytes.starts_with(kept),
        "the complete lines are kept as they were"
    );
    assert!(bytes.ends_with(b"\n"));
    let records = audit_lines(root).unwrap_or_else(|error| panic!("{error}"));
    let reports = state_file_records(&records, "audit");
    assert_eq!(reports.len(), 1, "reported once: {records:#?}");
    let kept_lines = kept.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(
        records[kept_lines], reports[0],
        "the report follows the kept lines"
    );
    assert!(reports[0]["moved_to"].is_null(), "{}", reports[0]);
    records
}

/// A crash while the daemon appended record 3's finding: the log's last line is torn and the
/// checkpoints are those from before record 3. The restarted daemon cuts the torn line,
/// reports it, and records record 3 again and a new line, every record once.
#[test]
fn a_torn_last_audit_line_is_cut_back_when_the_daemon_opens_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let errors = root.join("logs/errors.log");
    append(&errors, &failure_line(1));
    append(&errors, &failure_line(2));
    let mut daemon = Daemon::start(root, &[]);
    daemon.wait_for_audit(2);
    assert_eq!(daemon.stop().0, Some(0));
    let checkpoints = std::fs::read(root.join("warden/checkpoints.json")).unwrap();
    append(&errors, &failure_line(3));
    let mut daemon = Daemon::start(root, &[]);
    daemon.wait_for_audit(3);
    assert_eq!(daemon.stop().0, Some(0));
    let records = audit(root);
    assert_eq!(records.len(), 3, "{records:#?}");
    assert_eq!(
        findings_of(&records[2..], 3),
        1,
        "record 3 is the last line"
    );

    let kept = tear_last_line(&root.join("warden/audit.jsonl"));
    std::fs::write(root.join("warden/checkpoints.json"), checkpoints).unwrap();
    let mut daemon = Daemon::start(root, &[]);
    wait_for_state_file(&mut daemon, root, "audit");
    daemon.wait_until(|| match findings_of(&audit_lines(root)?, 3) {
        0 => Err("record 3 recorded again".to_owned()),
        _ => Ok(()),
    });
    append(&errors, &failure_line(4));
    daemon.wait_until(|| match findings_of(&audit_lines(root)?, 4) {
        0 => Err("a line appended after the cut".to_owned()),
        _ => Ok(()),
    });
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(reports_on_stderr(&stderr, "audit.jsonl"), 1, "{stderr}");
    let records = assert_cut_back(root, &kept);
    finding_sources(&records);
    for number in 1..=4 {
        assert_eq!(findings_of(&records, number), 1, "record {number}");
    }
}

/// `scan --apply` on a home whose audit log lost the end of its last line: cut back, reported.
#[test]
fn a_torn_last_audit_line_is_cut_back_by_scan_apply() {
    let (home, alice, marks) = marked_home();
    let root = &home.root;
    let kept = tear_last_line(&root.join("warden/audit.jsonl"));
    let (code, scan, stderr) = scan_apply(root);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(scan["actions"][0]["result"], "already_dead", "{scan}");
    assert_eq!(reports_on_stderr(&stderr, "audit.jsonl"), 1, "{stderr}");
    assert_cut_back(root, &kept);
    assert_eq!(ledger_marks(root), marks);
    assert!(alice_is_dead(root, &alice));
}

/// `revive` on a home whose audit log lost the end of its last line: cut back, reported, and
/// the revive recorded after the report.
#[test]
fn a_torn_last_audit_line_is_cut_back_by_revive() {
    let (home, alice, _) = marked_home();
    let root = &home.root;
    let kept = tear_last_line(&root.join("warden/audit.jsonl"));
    let output = warden_in(root)
        .args([
            "--hermes-version",
            "0.15.0",
            "revive",
            "openai-codex",
            "alice@example.com",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(reports_on_stderr(&stderr, "audit.jsonl"), 1, "{stderr}");
    let records = assert_cut_back(root, &kept);
    let last = records.last().unwrap();
    assert_eq!(last["type"], "revive", "{records:#?}");
    assert_eq!(last["credential_id"], alice.as_str());
    assert!(ledger_marks(root).is_empty());
    assert!(!alice_is_dead(root, &alice));
}
