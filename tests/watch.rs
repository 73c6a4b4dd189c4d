//! The `watch` daemon as a real process: findings recorded once, signals, new profiles, Debian's
//! logrotate in both modes, and SIGKILL at any moment followed by a restart.

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `hermes-warden watch`.
pub struct Daemon {
    child: Option<Child>,
    home: PathBuf,
    started: std::time::SystemTime,
}

impl Daemon {
    /// A dry-run daemon for Hermes 0.19 with `extra` global flags.
    pub fn start(home: &Path, extra: &[&str]) -> Daemon {
        let mut args = vec!["--hermes-version", "0.19.0"];
        args.extend(extra);
        args.extend(["watch", "--dry-run", "--poll-interval", "0.1"]);
        Daemon::spawn(home, &args)
    }

    /// `hermes-warden --hermes-home HOME --tz UTC ARGS...`.
    pub fn spawn(home: &Path, args: &[&str]) -> Daemon {
        let started = std::time::SystemTime::now();
        let child = Command::new(assert_cmd::cargo::cargo_bin!("hermes-warden"))
            .arg("--hermes-home")
            .arg(home)
            .args(["--tz", "UTC"])
            .args(args)
            .env_remove("HERMES_HOME")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hermes-warden watch");
        Daemon {
            child: Some(child),
            home: home.to_owned(),
            started,
        }
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("running")
    }

    pub fn signal(&mut self, name: &str) {
        let pid = self.child().id().to_string();
        assert!(
            Command::new("kill")
                .args([&format!("-{name}"), &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Sends SIGTERM and returns the exit code and stderr.
    pub fn stop(mut self) -> (Option<i32>, String) {
        self.signal("TERM");
        let output = self.child.take().unwrap().wait_with_output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Waits (bounded) until the audit log holds `count` records, and returns them.
    pub fn wait_for_audit(&mut self, count: usize) -> Vec<Value> {
        let home = self.home.clone();
        self.wait_until(|| {
            let records = audit(&home);
            match records.len() {
                found if found >= count => Ok(records),
                found => Err(format!("{found} of {count} audit records")),
            }
        })
    }

    /// Waits until this daemon finished a step (it writes its checkpoint after each), so it is
    /// past its start-up and handles signals.
    pub fn wait_for_step(&mut self) {
        let checkpoint = self.home.join("warden/checkpoints.json");
        let started = self.started;
        self.wait_until(|| {
            std::fs::metadata(&checkpoint)
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified >= started)
                .then_some(())
                .ok_or("a first step".to_owned())
        })
    }

    /// Polls `check` until it gives a value, for at most 60 s, while the daemon runs; `check`
    /// says what it is still waiting for.
    pub fn wait_until<T>(&mut self, mut check: impl FnMut() -> Result<T, String>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let waiting = match check() {
                Ok(value) => return value,
                Err(waiting) => waiting,
            };
            if let Some(status) = self.child().try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child().stderr.take() {
                    std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
                }
                panic!("the daemon exited early ({status}) with {waiting}:\n{stderr}");
            }
            assert!(Instant::now() < deadline, "after 60 s: {waiting}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The complete lines of the audit log (a line the daemon is appending right now is not one
/// yet).
pub fn audit(home: &Path) -> Vec<Value> {
    match std::fs::read_to_string(home.join("warden/audit.jsonl")) {
        Ok(text) => text
            .split_inclusive('\n')
            .filter(|line| line.ends_with('\n'))
            .map(|line| serde_json::from_str(line).expect("audit lines are JSON"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A compaction failure line, a millisecond after the one numbered before it; the
/// `compaction-failed` rule records one finding per line.
pub fn failure_line(number: usize) -> String {
    let seconds = number / 1000;
    format!(
        "2026-05-26 {:02}:{:02}:{:02},{:03} WARNING [s{number}] agent.context_compressor: Failed to generate context summary: Request timed out (record {number}).\n",
        10 + seconds / 3600,
        seconds / 60 % 60,
        seconds % 60,
        number % 1000
    )
}

pub fn append(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// The record numbers in the audit log; fails on a record seen twice.
pub fn recorded_numbers(records: &[Value]) -> HashSet<usize> {
    let mut numbers = HashSet::new();
    let sources: Vec<String> = records.iter().map(|r| r["source"].to_string()).collect();
    let unique: HashSet<&String> = sources.iter().collect();
    assert_eq!(unique.len(), sources.len(), "a finding was recorded twice");
    for record in records {
        if let Some(number) = record_number(record) {
            assert!(numbers.insert(number), "record {number} recorded twice");
        }
    }
    numbers
}

fn record_number(record: &Value) -> Option<usize> {
    record["session"]
        .as_str()
        .and_then(|s| s.strip_prefix('s'))
        .and_then(|n| n.parse().ok())
}

#[test]
fn findings_are_recorded_once_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let errors = dir.path().join("logs/errors.log");
    append(&errors, &failure_line(1));
    let mut daemon = Daemon::start(dir.path(), &[]);
    daemon.wait_for_audit(1);
    // Hermes writes a WARNING record to agent.log, then the same record to errors.log: one finding.
    append(&dir.path().join("logs/agent.log"), &failure_line(2));
    append(&errors, &failure_line(2));
    append(&errors, &failure_line(3));
    let records = daemon.wait_for_audit(3);
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(audit(dir.path()).len(), 3, "{records:?}");
    assert!(records.iter().all(|r| r["rule"] == "compaction-failed"));
    assert_eq!(recorded_numbers(&records), HashSet::from([1, 2, 3]));
    assert!(dir.path().join("warden/checkpoints.json").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("warden"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn sighup_with_broken_rules_keeps_the_old_ones_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let errors = dir.path().join("logs/errors.log");
    append(&errors, &failure_line(1));
    let mut daemon = Daemon::start(dir.path(), &[]);
    daemon.wait_for_audit(1);
    append(
        &dir.path().join("warden/rules.d/broken.toml"),
        "[[rule]]\nid = \"x\"\n",
    );
    daemon.signal("HUP");
    append(&errors, &failure_line(2));
    daemon.wait_for_audit(2);
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0));
    assert!(stderr.contains("keeping the old rules"), "{stderr}");
}

#[test]
fn a_profile_created_later_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let mut daemon = Daemon::start(dir.path(), &["--all-profiles"]);
    append(
        &dir.path().join("profiles/work/logs/errors.log"),
        &failure_line(1),
    );
    let records = daemon.wait_for_audit(1);
    assert_eq!(records[0]["profile"], "work");
    assert_eq!(records[0]["file"], "profiles/work/logs/errors.log");
}

fn logrotate(dir: &Path, mode: &str) {
    let config = dir.join("logrotate.conf");
    std::fs::write(
        &config,
        format!(
            "{}/logs/errors.log {{\n  rotate 20\n  {mode}\n  missingok\n  nocompress\n}}\n",
            dir.display()
        ),
    )
    .unwrap();
    let output = Command::new("logrotate")
        .arg("--force")
        .arg("--state")
        .arg(dir.join("logrotate.state"))
        .arg(&config)
        .output()
        .unwrap_or_else(|error| panic!("logrotate is needed for this test ({error}): apt-get install logrotate, or run ./scripts/test.sh"));
    assert!(
        output.status.success(),
        "logrotate: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn survives_logrotate(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let errors = dir.path().join("logs/errors.log");
    let mut daemon = Daemon::start(dir.path(), &[]);
    let mut written = 0;
    for round in 0..8 {
        for _ in 0..25 {
            written += 1;
            append(&errors, &failure_line(written));
        }
        if round % 2 == 1 {
            // Let the daemon see part of the file before some rotations, not before others.
            daemon.wait_for_audit(written);
        }
        logrotate(dir.path(), mode);
    }
    let records = daemon.wait_for_audit(written);
    let (code, _) = daemon.stop();
    assert_eq!(code, Some(0));
    assert_eq!(
        recorded_numbers(&records),
        (1..=written).collect::<HashSet<_>>()
    );
    assert_eq!(audit(dir.path()).len(), written);
}

#[test]
fn every_line_survives_logrotate_create() {
    survives_logrotate("create");
}

#[test]
fn every_line_survives_logrotate_copytruncate() {
    // Nothing is written while logrotate runs here, so its copy-to-truncate window is empty.
    survives_logrotate("copytruncate");
}

#[test]
fn sigkill_at_any_moment_then_restart_misses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let errors = dir.path().join("logs/errors.log");
    let mut written = 0;
    for kill_after in [3usize, 40, 7, 120, 1] {
        let daemon = Daemon::start(dir.path(), &[]);
        for _ in 0..60 {
            written += 1;
            append(&errors, &failure_line(written));
        }
        let wait = Duration::from_millis(kill_after as u64);
        std::thread::sleep(wait);
        daemon.kill();
        if written % 120 == 0 {
            // A rotation while the daemon is down: its backups must be read first.
            let logs = dir.path().join("logs");
            let _ = std::fs::rename(logs.join("errors.log.1"), logs.join("errors.log.2"));
            std::fs::rename(&errors, logs.join("errors.log.1")).unwrap();
        }
    }
    let mut daemon = Daemon::start(dir.path(), &[]);
    let records = daemon.wait_for_audit(written);
    let (code, _) = daemon.stop();
    assert_eq!(code, Some(0));
    assert_eq!(
        recorded_numbers(&records),
        (1..=written).collect::<HashSet<_>>()
    );
}

#[test]
fn a_copy_arriving_after_a_restart_is_still_known_as_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    append(&logs.join("agent.log"), &failure_line(1));
    let mut daemon = Daemon::start(dir.path(), &[]);
    daemon.wait_for_audit(1);
    assert_eq!(daemon.stop().0, Some(0));
    // Hermes wrote the errors.log copy of record 1 while the warden was down.
    append(&logs.join("errors.log"), &failure_line(1));
    append(&logs.join("errors.log"), &failure_line(2));
    let mut daemon = Daemon::start(dir.path(), &[]);
    let records = daemon.wait_for_audit(2);
    assert_eq!(daemon.stop().0, Some(0));
    assert_eq!(recorded_numbers(&records), HashSet::from([1, 2]));
    assert_eq!(audit(dir.path()).len(), 2);
}

#[test]
fn identical_lines_in_both_logs_are_one_finding_each() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    // The same record text three times (a loop logging within one millisecond), written to
    // both logs as Hermes does: three findings, not one and not five.
    let line = failure_line(7);
    for log in ["agent.log", "errors.log"] {
        append(&logs.join(log), &line.repeat(3));
    }
    append(&logs.join("agent.log"), &failure_line(8));
    let mut daemon = Daemon::start(dir.path(), &[]);
    daemon.wait_for_audit(4);
    daemon.wait_for_step();
    assert_eq!(daemon.stop().0, Some(0));
    let records = audit(dir.path());
    let sessions: Vec<&str> = records
        .iter()
        .map(|record| record["session"].as_str().unwrap())
        .collect();
    assert_eq!(sessions, ["s7", "s7", "s7", "s8"], "{records:#?}");
}

/// Several real Hermes 0.19 processes log through Hermes's own handlers and rotate the same
/// files while the daemon follows them. Returns the writers' manifest, the records still on
/// disk at the end (writer, record), and the audit log.
fn follow_real_hermes_writers(extra: &[&str]) -> (Value, HashSet<String>, Vec<Value>) {
    let python = crate::util::hermes_venv("0.19.0").join("bin/python");
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(dir.path(), &[]);
    let output = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hermes/write_logs.py"))
        .arg(dir.path())
        .args([
            "--processes",
            "4",
            "--records",
            "1500",
            "--max-size-mb",
            "1",
            "--start-delay",
            "0.3",
            "--no-redact",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "write_logs.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut on_disk = HashSet::new();
    for entry in std::fs::read_dir(dir.path().join("logs")).unwrap() {
        let text = std::fs::read(entry.unwrap().path()).unwrap();
        for line in text.split(|&b| b == b'\n') {
            if line
                .windows(37)
                .any(|w| w == b"Failed to generate context summary: R")
            {
                on_disk.insert(record_id("compaction-failed", line));
            }
        }
    }
    daemon.wait_for_audit(on_disk.len());
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let records: Vec<Value> = audit(dir.path())
        .into_iter()
        .filter(|r| r["rule"] == "compaction-failed")
        .collect();
    let ids: HashSet<String> = records
        .iter()
        .map(|r| r["record"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), records.len(), "a record was recorded twice");
    let missed: Vec<&String> = on_disk.difference(&ids).collect();
    assert!(
        missed.is_empty(),
        "{} records on disk were never recorded",
        missed.len()
    );
    (manifest, on_disk, records)
}

/// The warden's record id of a root-home line (see `Event::record_id`).
fn record_id(rule: &str, line: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = u64::from_be_bytes(Sha256::digest(line)[..8].try_into().unwrap());
    let mut hasher = Sha256::new();
    hasher.update(b"");
    hasher.update([0]);
    hasher.update(rule.as_bytes());
    hasher.update([0]);
    hasher.update(digest.to_be_bytes());
    hasher.finalize()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[test]
fn concurrent_hermes_writers_with_serialized_rotation_every_record_once() {
    let (manifest, on_disk, records) = follow_real_hermes_writers(&["--serialize-rotation"]);
    let written = manifest["warnings_written"].as_u64().unwrap() as usize;
    assert_eq!(
        on_disk.len(),
        written,
        "nothing is lost with serialized rotation"
    );
    assert_eq!(records.len(), written);
}

#[test]
fn concurrent_hermes_writers_with_hermes_own_racy_rotation_nothing_on_disk_is_missed() {
    // On Linux, Hermes's RotatingFileHandler has no lock between processes: concurrent
    // rotations delete or overwrite backups. No reader can see what was gone before it looked;
    // everything still on disk must be recorded, nothing twice.
    let (manifest, on_disk, records) = follow_real_hermes_writers(&["--allow-loss"]);
    let written = manifest["warnings_written"].as_u64().unwrap() as usize;
    assert!(!on_disk.is_empty() && records.len() <= written);
}

#[test]
fn watch_without_arguments_uses_hermes_home_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("logs/errors.log"), &failure_line(1));
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("hermes-warden"))
        .arg("watch")
        .env("HERMES_HOME", dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while audit(dir.path()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no audit record under $HERMES_HOME/warden"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn sighup_reloads_the_whole_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let errors = dir.path().join("logs/errors.log");
    append(&errors, &failure_line(1));
    let mut daemon = Daemon::start(dir.path(), &[]);
    daemon.wait_for_audit(1);
    std::fs::write(dir.path().join("warden.toml"), "max_line_bytes = 1024\n").unwrap();
    daemon.signal("HUP");
    let home = dir.path().to_owned();
    daemon.wait_until(|| {
        audit(&home)
            .iter()
            .any(|r| r["type"] == "reload" && r["refused"].is_null())
            .then_some(())
            .ok_or("the reload recorded".to_owned())
    });
    // A line over the new limit (and far below the default 1 MiB) is cut, and still found.
    let long = failure_line(2).replace("(record 2)", &format!("(record 2) {}", "x".repeat(3000)));
    append(&errors, &long);
    let records = daemon.wait_for_audit(3);
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(records.iter().any(|r| r["session"] == "s2"), "{records:?}");
    assert!(
        stderr.contains("lines longer than 1024 bytes were cut"),
        "the new line limit is in force: {stderr}"
    );
}

#[test]
fn an_idle_daemon_does_not_rewrite_its_checkpoint() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let errors = dir.path().join("logs/errors.log");
    append(&errors, &failure_line(1));
    let mut daemon = Daemon::start(dir.path(), &[]);
    daemon.wait_for_audit(1);
    let checkpoint = dir.path().join("warden/checkpoints.json");
    let written = daemon.wait_until(|| {
        let text = std::fs::read_to_string(&checkpoint).map_err(|e| e.to_string())?;
        text.contains("errors.log")
            .then(|| std::fs::metadata(&checkpoint).unwrap().ino())
            .ok_or("the checkpoint of the first line".to_owned())
    });
    // Ten steps at 0.1 s with nothing new: the same file (a rewrite renames a new one in).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(std::fs::metadata(&checkpoint).unwrap().ino(), written);
    append(&errors, &failure_line(2));
    daemon.wait_for_audit(2);
    daemon.wait_until(|| {
        (std::fs::metadata(&checkpoint).unwrap().ino() != written)
            .then_some(())
            .ok_or("a new checkpoint after a new line".to_owned())
    });
    let (code, _) = daemon.stop();
    assert_eq!(code, Some(0));
}

/// The state directory stops taking writes while the daemon runs (here: a directory where
/// audit.jsonl must be, which fails every append even for root): the daemon says so once,
/// keeps following, and writes what waited when it can; nothing is lost or written twice.
#[test]
fn an_audit_log_that_cannot_be_written_waits_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let errors = dir.path().join("logs/errors.log");
    append(&errors, &failure_line(1));
    let mut daemon = Daemon::start(dir.path(), &[]);
    daemon.wait_for_audit(1);
    let audit_path = dir.path().join("warden/audit.jsonl");
    let aside = dir.path().join("warden/audit.jsonl.saved");
    std::fs::rename(&audit_path, &aside).unwrap();
    std::fs::create_dir(&audit_path).unwrap();
    append(&errors, &failure_line(2));
    append(&errors, &failure_line(3));
    // Lines keep being read while the audit log refuses them.
    let checkpoint = dir.path().join("warden/checkpoints.json");
    let before = std::fs::read(&checkpoint).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        std::fs::read(&checkpoint).unwrap(),
        before,
        "positions wait for the audit log"
    );
    std::fs::remove_dir(&audit_path).unwrap();
    std::fs::rename(&aside, &audit_path).unwrap();
    let home = dir.path().to_owned();
    daemon.wait_until(|| {
        let numbers = recorded_numbers(
            &audit(&home)
                .into_iter()
                .filter(|r| r["type"].is_null())
                .collect::<Vec<_>>(),
        );
        (numbers == HashSet::from([1, 2, 3]))
            .then_some(())
            .ok_or(format!("records 1-3, have {numbers:?}"))
    });
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("cannot write").count(),
        1,
        "said once: {stderr}"
    );
    let records = audit(dir.path());
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "state_file" || r["file"].is_string())
    );
    assert_ne!(
        std::fs::read(&checkpoint).unwrap(),
        before,
        "the checkpoint moved on after"
    );
}

#[test]
fn the_textfile_holds_the_metrics_and_promtool_accepts_it() {
    use crate::util::{copy_dir, promtool_accepts, sample};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hermes");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codex-revoked-0.15"),
        &home,
    );
    let collector = dir.path().join("textfile_collector");
    std::fs::create_dir(&collector).unwrap();
    let textfile = collector.join("hermes-warden.prom");
    let path = textfile.to_str().unwrap();
    let mut daemon = Daemon::spawn(
        &home,
        &[
            "--hermes-version",
            "0.15.0",
            "watch",
            "--dry-run",
            "--poll-interval",
            "0.1",
            "--textfile",
            path,
        ],
    );
    let read = |needle: &str| {
        let text = std::fs::read_to_string(&textfile).unwrap_or_default();
        match text.contains(needle) {
            true => Ok(text),
            false => Err(format!("{needle} in the textfile:\n{text}")),
        }
    };
    let text = daemon.wait_until(|| read("hermes_warden_log_events_total"));
    promtool_accepts(&text);
    let terminal = "hermes_warden_log_events_total{profile=\"\",provider=\"openai-codex\",rule=\"summary-failed-terminal-auth\"}";
    assert_eq!(sample(&text, terminal), 3.0);
    assert_eq!(
        sample(
            &text,
            "hermes_warden_compaction_failures_total{profile=\"\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(&text, "hermes_warden_build_info{version=\"0.1.0\"}"),
        1.0
    );
    // The daemon's own footprint, from /proc: a few MB, not zero.
    let rss = sample(&text, "process_resident_memory_bytes");
    assert!((1e6..100e6).contains(&rss), "{rss}");
    assert!(sample(&text, "process_start_time_seconds") > 1.7e9);
    // Months after the fixture's failures, Hermes 0.15 sees both entries as usable.
    let credentials = |state: &str| {
        sample(
            &text,
            &format!(
                "hermes_warden_credentials{{profile=\"\",provider=\"openai-codex\",state=\"{state}\"}}"
            ),
        )
    };
    assert_eq!((credentials("ok"), credentials("exhausted")), (2.0, 0.0));
    assert!(
        sample(
            &text,
            "hermes_warden_log_lines_total{file=\"logs/errors.log\"}"
        ) >= 3.0
    );
    // Read to the end: nothing left behind.
    assert_eq!(
        sample(
            &text,
            "hermes_warden_log_lag_bytes{file=\"logs/errors.log\"}"
        ),
        0.0
    );
    // For node_exporter, which runs as another user.
    let mode = std::fs::metadata(&textfile).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    // A new failure is counted.
    append(&home.join("logs/errors.log"), &failure_line(1));
    let counted =
        "hermes_warden_log_events_total{profile=\"\",provider=\"\",rule=\"compaction-failed\"} 1";
    let text = daemon.wait_until(|| read(counted));
    promtool_accepts(&text);
    assert_eq!(daemon.stop().0, Some(0));
    assert!(!text.contains('@'), "no e-mail in a label:\n{text}");
}

#[test]
fn at_start_one_line_says_what_is_watched_and_where_to_look() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("hermes");
    crate::util::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codex-revoked-0.15"),
        &home,
    );
    let mut daemon = Daemon::start(&home, &[]);
    daemon.wait_for_step();
    let (code, stderr) = daemon.stop();
    assert_eq!(code, Some(0));
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("hermes-warden 0.1.0 watching"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one start line at the default verbosity:\n{stderr}"
    );
    for said in [
        &format!("watching {} (root)", home.display()),
        "pools 1, credentials 2",
        "Hermes 0.19.0 (configured by --hermes-version)",
        "dead marks are written as `last_status: dead`",
        "dry run: auth.json is never written",
        "metrics: give --textfile PATH",
        &format!("findings in {}", home.join("warden/audit.jsonl").display()),
    ] {
        assert!(lines[0].contains(said), "{said:?} in {}", lines[0]);
    }
}
