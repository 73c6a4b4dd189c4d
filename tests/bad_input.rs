//! Hostile input where the warden expects a file: `auth.json`, `warden.toml`, rule files,
//! `config.yaml`, logs, the warden's own state files and the `hermes` program replaced by a
//! FIFO, a character device (`/dev/zero`), a directory or a file of 70 MiB, and a `hermes`
//! whose `--version` never finishes. Each case runs the real binary on a temporary home and
//! checks that it ends in bounded time (a hang fails the test after 20 s instead of blocking
//! it) with bounded memory (the child's own maximum RSS, from `wait4`, under 100 MB), says on
//! stderr which file was wrong and how, exits with the status the README gives (2 for
//! configuration and rules, 1 for runtime failures, 0 when the rest of the work could be
//! done), and leaves the file as it was.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::util::warden_in;
use crate::watch::{append, audit, failure_line, recorded_numbers};

/// Longer than any case takes (the hanging `hermes --version` is given 10 s).
const DEADLINE: Duration = Duration::from_secs(20);
/// Far above what the warden needs for the fixture home (a few MB), far below reading any of
/// the files here whole.
const MAX_RSS_BYTES: u64 = 100_000_000;
const FIXTURE: &str = "tests/fixtures/codex-revoked-0.15";

/// What a run of the warden did.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    max_rss_bytes: u64,
    /// How long it took to exit after SIGTERM, when [`Limits::terminate_at`] sent one.
    exit_after_term: Option<Duration>,
}

/// How long a run may take and how much memory it may use, and when to stop a daemon.
struct Limits {
    deadline: Duration,
    max_rss_bytes: u64,
    /// Send SIGTERM once this file has at least this many lines.
    terminate_at: Option<(PathBuf, usize)>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            deadline: DEADLINE,
            max_rss_bytes: MAX_RSS_BYTES,
            terminate_at: None,
        }
    }
}

/// Set (to a [`RunSpec`] in JSON) when this test binary is started again as the measuring
/// parent of one warden run.
const RUN_SPEC_VAR: &str = "HERMES_WARDEN_BAD_INPUT_RUN";

/// One warden run, for [`measuring_parent_of_one_run`].
#[derive(serde::Serialize, serde::Deserialize)]
struct RunSpec {
    program: String,
    args: Vec<String>,
    dir: Option<String>,
    stdout: String,
    stderr: String,
    report: String,
    deadline_ms: u64,
    terminate_at: Option<(String, usize)>,
}

/// What [`measuring_parent_of_one_run`] saw.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunReport {
    code: Option<i32>,
    max_rss_bytes: u64,
    timed_out: bool,
    exit_after_term_ms: Option<u64>,
}

/// Runs `command` (built by `warden_in`, stdin empty) to its end, failing the test if it takes
/// longer than [`DEADLINE`] (it is killed then) or if its maximum RSS reaches
/// [`MAX_RSS_BYTES`].
fn run(command: &assert_cmd::Command) -> Outcome {
    run_with(command, Limits::default())
}

/// [`run`] within other limits.
///
/// A process's maximum RSS (`getrusage`, `wait4`) starts from the peak RSS of the process it
/// was `exec`ed from: started from this test process, which holds many tests' data (70 MiB
/// here), every warden would seem that large. So the warden is started by a small, freshly
/// started parent, this test binary again running only [`measuring_parent_of_one_run`], which
/// reaps it with `wait4` and reports the warden's own maximum RSS and exit status.
fn run_with(command: &assert_cmd::Command, limits: Limits) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let text = |text: &std::ffi::OsStr| text.to_str().expect("UTF-8 arguments").to_owned();
    let spec = RunSpec {
        program: text(command.get_program()),
        args: command.get_args().map(text).collect(),
        dir: command
            .get_current_dir()
            .map(|dir| dir.to_str().unwrap().to_owned()),
        stdout: file("stdout"),
        stderr: file("stderr"),
        report: file("report.json"),
        deadline_ms: limits.deadline.as_millis() as u64,
        terminate_at: limits
            .terminate_at
            .as_ref()
            .map(|(path, lines)| (path.to_str().unwrap().to_owned(), *lines)),
    };
    let mut parent = Command::new(std::env::current_exe().unwrap());
    parent
        .args(["--exact", "bad_input::measuring_parent_of_one_run"])
        .args(["--nocapture", "--quiet", "--test-threads", "1"])
        .env(RUN_SPEC_VAR, serde_json::to_string(&spec).unwrap());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => parent.env(key, value),
            None => parent.env_remove(key),
        };
    }
    let log = std::fs::File::create(dir.path().join("parent.log")).unwrap();
    let mut parent = parent
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start the measuring parent");
    // It enforces the deadline itself; this is only for a parent that went wrong.
    let started = Instant::now();
    while parent.try_wait().unwrap().is_none() {
        if started.elapsed() > limits.deadline + Duration::from_secs(30) {
            parent.kill().unwrap();
            parent.wait().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let read =
        |path: &str| String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let report: RunReport = match std::fs::read(&spec.report) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
        Err(_) => panic!(
            "the measuring parent reported nothing:\n{}",
            read(dir.path().join("parent.log").to_str().unwrap())
        ),
    };
    let outcome = Outcome {
        code: report.code,
        stdout: read(&spec.stdout),
        stderr: read(&spec.stderr),
        max_rss_bytes: report.max_rss_bytes,
        exit_after_term: report.exit_after_term_ms.map(Duration::from_millis),
    };
    assert!(
        !report.timed_out,
        "{:?} did not finish within {:?}; stderr:\n{}",
        spec.args, limits.deadline, outcome.stderr
    );
    assert!(
        report.max_rss_bytes < limits.max_rss_bytes,
        "{:?} reached a maximum RSS of {} MB; stderr:\n{}",
        spec.args,
        report.max_rss_bytes / 1_000_000,
        outcome.stderr
    );
    outcome
}

/// Not a test of its own: started by [`run`] with [`RUN_SPEC_VAR`] set, it runs the warden
/// once (stdin empty, stdout and stderr to files), sends it SIGTERM when the spec says, kills
/// it after the deadline, reaps it with `wait4` and writes a [`RunReport`]. Without the
/// variable it does nothing.
#[test]
#[expect(
    clippy::zombie_processes,
    reason = "reaped by wait4, which also gives its resource usage"
)]
fn measuring_parent_of_one_run() {
    let Some(spec) = std::env::var_os(RUN_SPEC_VAR) else {
        return;
    };
    let spec: RunSpec = serde_json::from_str(spec.to_str().unwrap()).unwrap();
    let mut warden = Command::new(&spec.program);
    warden
        .args(&spec.args)
        .env_remove(RUN_SPEC_VAR)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&spec.stdout).unwrap())
        .stderr(std::fs::File::create(&spec.stderr).unwrap());
    if let Some(dir) = &spec.dir {
        warden.current_dir(dir);
    }
    let mut child = warden.spawn().expect("start hermes-warden");
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut status = 0;
    // SAFETY: all-zero is a valid `rusage`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut timed_out = false;
    let deadline = Duration::from_millis(spec.deadline_ms);
    let mut lines = LineCounter::default();
    let mut terminated: Option<Instant> = None;
    loop {
        // SAFETY: wait4 on our own child, with valid pointers.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4: {}", std::io::Error::last_os_error());
        if reaped == pid {
            break;
        }
        if let Some((path, count)) = &spec.terminate_at
            && terminated.is_none()
            && lines.count(Path::new(path)) >= *count
        {
            // SAFETY: a signal to our own child, not yet reaped.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
            terminated = Some(Instant::now());
        }
        if !timed_out && started.elapsed() > deadline {
            timed_out = true;
            child.kill().expect("kill a warden that hangs");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = RunReport {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        // Linux gives KiB.
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
        timed_out,
        exit_after_term_ms: terminated.map(|at| at.elapsed().as_millis() as u64),
    };
    std::fs::write(&spec.report, serde_json::to_vec(&report).unwrap()).unwrap();
}

/// Counts the lines of a growing file, reading only what was added since the last count.
#[derive(Default)]
struct LineCounter {
    read: u64,
    lines: usize,
}

impl LineCounter {
    fn count(&mut self, path: &Path) -> usize {
        use std::io::{Read, Seek};
        if let Ok(mut file) = std::fs::File::open(path) {
            let mut added = Vec::new();
            file.seek(std::io::SeekFrom::Start(self.read)).unwrap();
            file.read_to_end(&mut added).unwrap();
            self.read += added.len() as u64;
            self.lines += added.iter().filter(|&&byte| byte == b'\n').count();
        }
        self.lines
    }
}

impl Outcome {
    /// Checks the exit status and that stderr says `needle`.
    fn expect(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit status; stderr:\n{}\nstdout:\n{}",
            self.stderr,
            self.stdout
        );
        assert!(
            self.stderr.contains(needle),
            "stderr should say {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).expect("scan prints JSON")
    }
}

/// A copy of the fixture home (auth.json, config.yaml, both logs) in a temporary directory.
fn home() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("hermes");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    std::fs::create_dir_all(root.join("logs")).unwrap();
    for name in [
        "auth.json",
        "config.yaml",
        "logs/errors.log",
        "logs/agent.log",
    ] {
        std::fs::copy(fixture.join(name), root.join(name)).unwrap();
    }
    (dir, root)
}

/// `warden_in(root)` with a known Hermes version (no `hermes` is looked for) and clock.
fn warden(root: &Path) -> assert_cmd::Command {
    let mut command = warden_in(root);
    command.args([
        "--hermes-version",
        "0.15.0",
        "--now",
        "2026-05-28T20:28:00Z",
    ]);
    command
}

fn mkfifo(path: &Path) {
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let made = unsafe { libc::mkfifo(name.as_ptr(), 0o600) };
    assert_eq!(made, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

fn replace_with_fifo(path: &Path) {
    std::fs::remove_file(path).unwrap();
    mkfifo(path);
}

fn is_fifo(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .unwrap()
        .file_type()
        .is_fifo()
}

/// `status`, `scan` and `revive` all refuse the auth.json at `root` with `problem`, exit 1.
fn every_reader_refuses_auth_json(root: &Path, problem: &str) {
    let needle = format!(
        "{}: cannot read: {problem}",
        root.join("auth.json").display()
    );
    run(warden(root).arg("status")).expect(1, &needle);
    run(warden(root).args(["scan", "--format", "json"])).expect(1, &needle);
    // The write path reads it again under Hermes's lock: nothing to parse, nothing written.
    run(warden(root).args(["revive", "openai-codex", "alice@example.com"])).expect(1, problem);
}

#[test]
fn auth_json_symlinked_to_dev_zero_is_refused_unread() {
    let (_dir, root) = home();
    let auth = root.join("auth.json");
    std::fs::remove_file(&auth).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &auth).unwrap();
    every_reader_refuses_auth_json(&root, "not a regular file (a character device)");
    assert_eq!(std::fs::read_link(&auth).unwrap(), Path::new("/dev/zero"));
}

#[test]
fn auth_json_as_a_fifo_is_refused_without_blocking() {
    let (_dir, root) = home();
    let auth = root.join("auth.json");
    replace_with_fifo(&auth);
    every_reader_refuses_auth_json(&root, "not a regular file (a FIFO)");
    assert!(is_fifo(&auth), "auth.json is still the FIFO it was");
}

#[test]
fn auth_json_as_a_directory_is_refused() {
    let (_dir, root) = home();
    let auth = root.join("auth.json");
    std::fs::remove_file(&auth).unwrap();
    std::fs::create_dir(&auth).unwrap();
    every_reader_refuses_auth_json(&root, "not a regular file (a directory)");
    assert!(auth.is_dir());
}

#[test]
fn an_auth_json_of_70_mib_is_refused_unread_and_unchanged() {
    let (_dir, root) = home();
    let auth = root.join("auth.json");
    // Valid JSON, padded past the 64 MiB limit.
    let mut big = Vec::with_capacity((70 << 20) + 3);
    big.extend_from_slice(br#"{"version": 1, "credential_pool": {}, "padding": ""#);
    big.resize(70 << 20, b'x');
    big.extend_from_slice(b"\"}\n");
    std::fs::write(&auth, &big).unwrap();
    every_reader_refuses_auth_json(&root, "larger than 64 MiB");
    assert!(std::fs::read(&auth).unwrap() == big, "auth.json unchanged");
}

#[test]
fn config_dev_zero_is_a_configuration_error() {
    let (_dir, root) = home();
    let before = std::fs::read(root.join("auth.json")).unwrap();
    run(warden(&root).args(["--config", "/dev/zero", "status"]))
        .expect(2, "/dev/zero:0: not a regular file (a character device)");
    assert_eq!(std::fs::read(root.join("auth.json")).unwrap(), before);
}

#[test]
fn config_as_a_fifo_is_a_configuration_error() {
    let (_dir, root) = home();
    let fifo = root.join("other.toml");
    mkfifo(&fifo);
    run(warden(&root).arg("--config").arg(&fifo).arg("status")).expect(
        2,
        &format!("{}:0: not a regular file (a FIFO)", fifo.display()),
    );
    // The default warden.toml too.
    let default = root.join("warden.toml");
    mkfifo(&default);
    run(warden(&root).args(["scan", "--format", "json"])).expect(
        2,
        &format!("{}:0: not a regular file (a FIFO)", default.display()),
    );
    assert!(is_fifo(&fifo) && is_fifo(&default));
}

#[test]
fn a_rule_file_that_is_a_fifo_or_a_device_is_a_rules_error() {
    let (_dir, root) = home();
    let rules_d = root.join("warden/rules.d");
    std::fs::create_dir_all(&rules_d).unwrap();
    let fifo = rules_d.join("local.toml");
    mkfifo(&fifo);
    run(warden(&root).args(["rules", "check"])).expect(
        2,
        &format!("{}: not a regular file (a FIFO)", fifo.display()),
    );
    run(warden(&root).args(["scan", "--format", "json"])).expect(2, "local.toml: not a regular");
    std::fs::remove_file(&fifo).unwrap();
    let extra = root.join("extra-rules");
    std::fs::create_dir(&extra).unwrap();
    let zero = extra.join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    run(warden(&root).arg("--rules").arg(&extra).arg("status")).expect(
        2,
        &format!(
            "{}: not a regular file (a character device)",
            zero.display()
        ),
    );
}

#[test]
fn hermes_bin_dev_zero_is_neither_read_nor_run_and_the_version_is_unknown() {
    let (_dir, root) = home();
    std::fs::write(root.join("warden.toml"), "hermes_bin = \"/dev/zero\"\n").unwrap();
    // No --hermes-version: the warden asks hermes_bin.
    let outcome =
        run(warden_in(&root).args(["--now", "2026-05-28T20:28:00Z", "scan", "--format", "json"]));
    outcome.expect(
        0,
        "/dev/zero: not a regular file (a character device); the Hermes version is unknown",
    );
    assert_eq!(outcome.json()["hermes_version"], Value::Null);
}

#[test]
fn a_hermes_bin_whose_version_command_hangs_is_stopped_after_10_s() {
    let (dir, root) = home();
    let hermes = dir.path().join("hermes-that-hangs");
    std::fs::write(&hermes, "#!/bin/sh\nsleep 1000\n").unwrap();
    std::fs::set_permissions(&hermes, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        root.join("warden.toml"),
        format!("hermes_bin = {:?}\n", hermes.display().to_string()),
    )
    .unwrap();
    let before = std::fs::read(root.join("auth.json")).unwrap();
    let started = Instant::now();
    let outcome =
        run(warden_in(&root).args(["--now", "2026-05-28T20:28:00Z", "scan", "--format", "json"]));
    outcome.expect(
        0,
        &format!(
            "{}: `--version` did not finish within 10s; the Hermes version is unknown",
            hermes.display()
        ),
    );
    assert!(started.elapsed() >= Duration::from_secs(10));
    let scan = outcome.json();
    assert_eq!(scan["hermes_version"], Value::Null);
    assert!(
        !scan["events"].as_array().unwrap().is_empty(),
        "the logs were read"
    );
    assert_eq!(std::fs::read(root.join("auth.json")).unwrap(), before);
    // The script's `sleep` was stopped with it (its whole process group).
    let script = hermes.as_os_str().as_bytes();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        assert!(
            !cmdline.windows(script.len()).any(|w| w == script),
            "{} still runs: {}",
            hermes.display(),
            String::from_utf8_lossy(&cmdline)
        );
    }
}

#[test]
fn config_yaml_as_a_fifo_is_refused_without_blocking() {
    let (_dir, root) = home();
    let config = root.join("config.yaml");
    replace_with_fifo(&config);
    let needle = format!(
        "{}: cannot read: not a regular file (a FIFO)",
        config.display()
    );
    run(warden(&root).arg("status")).expect(1, &needle);
    run(warden(&root).args(["scan", "--format", "json"])).expect(1, &needle);
    assert!(is_fifo(&config));
}

#[test]
fn a_log_that_is_a_fifo_or_a_device_is_skipped_with_a_warning_and_the_others_are_read() {
    let (_dir, root) = home();
    let logs = root.join("logs");
    replace_with_fifo(&logs.join("errors.log"));
    // A rotated backup that leads to a device that never ends.
    std::os::unix::fs::symlink("/dev/zero", logs.join("agent.log.1")).unwrap();
    let outcome = run(warden(&root).args(["scan", "--format", "json"]));
    outcome
        .expect(
            0,
            &format!(
                "{}: not a regular file (a FIFO); skipped",
                logs.join("errors.log").display()
            ),
        )
        .expect(
            0,
            &format!(
                "{}: not a regular file (a character device); skipped",
                logs.join("agent.log.1").display()
            ),
        );
    let scan = outcome.json();
    let files: Vec<&str> = scan["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["logs/agent.log"]);
    let events = scan["events"].as_array().unwrap();
    assert!(!events.is_empty(), "agent.log was read");
    assert!(events.iter().all(|event| event["file"] == "logs/agent.log"));
    assert!(is_fifo(&logs.join("errors.log")));
}

#[test]
fn an_audit_log_that_is_a_fifo_or_a_directory_is_refused_naming_it() {
    let (_dir, root) = home();
    let warden_dir = root.join("warden");
    std::fs::create_dir_all(&warden_dir).unwrap();
    let audit = warden_dir.join("audit.jsonl");
    let before = std::fs::read(root.join("auth.json")).unwrap();
    mkfifo(&audit);
    run(warden(&root).args(["scan", "--apply", "--format", "json"])).expect(
        1,
        &format!("{}: not a regular file (a FIFO)", audit.display()),
    );
    run(warden(&root).args(["revive", "openai-codex", "alice@example.com"])).expect(
        1,
        &format!("{}: not a regular file (a FIFO)", audit.display()),
    );
    assert!(is_fifo(&audit));
    std::fs::remove_file(&audit).unwrap();
    std::fs::create_dir(&audit).unwrap();
    run(warden(&root).args(["scan", "--apply", "--format", "json"])).expect(
        1,
        &format!("{}: not a regular file (a directory)", audit.display()),
    );
    assert_eq!(std::fs::read(root.join("auth.json")).unwrap(), before);
}

#[test]
fn an_audit_line_of_150_mib_is_skipped_unheld_and_kept() {
    let (_dir, root) = home();
    std::fs::create_dir_all(root.join("warden")).unwrap();
    let audit = root.join("warden/audit.jsonl");
    // A line far longer than any record, then nothing else; the ledger cannot be parsed, so it
    // is rebuilt from this journal, which replays all of it.
    let mut long = vec![b'x'; 150 << 20];
    long.push(b'\n');
    std::fs::write(&audit, &long).unwrap();
    std::fs::write(root.join("warden/ledger.json"), "not a ledger").unwrap();
    let outcome = run(warden(&root).args(["scan", "--apply", "--format", "json"]));
    assert_eq!(outcome.code, Some(0), "stderr:\n{}", outcome.stderr);
    assert!(
        !outcome.json()["actions"].as_array().unwrap().is_empty(),
        "the fixture's revoked credential is marked"
    );
    let after = std::fs::read(&audit).unwrap();
    assert!(after.starts_with(&long), "the long line is kept as it was");
    assert!(after.len() > long.len(), "the new records follow it");
}

#[test]
fn a_ledger_that_is_a_fifo_is_unreadable_rebuilt_and_moved_aside_by_apply() {
    let (_dir, root) = home();
    let warden_dir = root.join("warden");
    std::fs::create_dir_all(&warden_dir).unwrap();
    let ledger = warden_dir.join("ledger.json");
    mkfifo(&ledger);
    let problem = format!(
        "{}: cannot read: not a regular file (a FIFO)",
        ledger.display()
    );
    // A dry run rebuilds it in memory and moves nothing.
    run(warden(&root).args(["scan", "--format", "json"])).expect(0, &problem);
    assert!(is_fifo(&ledger));
    // --apply moves it aside and writes a ledger again.
    run(warden(&root).args(["scan", "--apply", "--format", "json"])).expect(0, &problem);
    let aside: Vec<PathBuf> = std::fs::read_dir(&warden_dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("ledger.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "moved aside once: {aside:?}");
    assert!(is_fifo(&aside[0]));
    assert!(std::fs::metadata(&ledger).unwrap().is_file());
}

#[test]
fn lock_files_that_are_fifos_are_refused_without_blocking() {
    let (_dir, root) = home();
    let before = std::fs::read(root.join("auth.json")).unwrap();
    let auth_lock = root.join("auth.lock");
    mkfifo(&auth_lock);
    run(warden(&root).args(["revive", "openai-codex", "alice@example.com"])).expect(
        1,
        &format!("{}: not a regular file (a FIFO)", auth_lock.display()),
    );
    std::fs::remove_file(&auth_lock).unwrap();
    let ledger_lock = root.join("warden/ledger.lock");
    // The revive above made it.
    std::fs::remove_file(&ledger_lock).unwrap();
    mkfifo(&ledger_lock);
    run(warden(&root).args(["scan", "--apply", "--format", "json"])).expect(
        1,
        &format!(
            "{}: cannot open: not a regular file (a FIFO)",
            ledger_lock.display()
        ),
    );
    assert!(is_fifo(&ledger_lock));
    assert_eq!(std::fs::read(root.join("auth.json")).unwrap(), before);
}

/// 200,000 failure lines wait in both logs (Hermes writes every WARNING record to both) at the
/// daemon's first start: it reads them in bounded batches, in at most 64 MiB, honours SIGTERM
/// between two batches, says a few lines on stderr, not one per finding, and after a restart
/// goes on from its checkpoint: every finding recorded once.
#[test]
fn a_backlog_of_200000_failures_is_read_in_bounded_memory_and_sigterm_is_honoured() {
    const LINES: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("hermes");
    let text: String = (0..LINES).map(failure_line).collect();
    for log in ["logs/agent.log", "logs/errors.log"] {
        append(&root.join(log), &text);
    }
    std::fs::write(
        root.join("auth.json"),
        r#"{"version": 1, "credential_pool": {}}"#,
    )
    .unwrap();
    let audit_path = root.join("warden/audit.jsonl");
    let limits = |stop_at: usize| Limits {
        // Far more than the debug build needs; a hang is still caught.
        deadline: Duration::from_secs(300),
        max_rss_bytes: 64 << 20,
        terminate_at: Some((audit_path.clone(), stop_at)),
    };
    let mut watch = warden(&root);
    watch.args(["watch", "--dry-run"]);
    let few_lines = |outcome: &Outcome| {
        assert!(
            outcome.stderr.lines().count() <= 10,
            "a few lines on stderr, not one per finding:\n{}",
            outcome.stderr
        );
    };

    let first = run_with(&watch, limits(10_000));
    assert_eq!(first.code, Some(0), "stderr:\n{}", first.stderr);
    let exit_after_term = first.exit_after_term.unwrap();
    assert!(
        exit_after_term < Duration::from_secs(5),
        "SIGTERM in the middle of a backlog took {exit_after_term:?}"
    );
    let recorded = audit(&root).len();
    assert!(
        recorded < LINES,
        "stopped in the middle of the backlog, not after it ({recorded} findings)"
    );
    few_lines(&first);

    let second = run_with(&watch, limits(LINES));
    assert_eq!(second.code, Some(0), "stderr:\n{}", second.stderr);
    few_lines(&second);
    let numbers = recorded_numbers(&audit(&root));
    assert_eq!(numbers, (0..LINES).collect(), "every finding recorded once");
    eprintln!(
        "maximum RSS {} MiB then {} MiB; SIGTERM answered in {exit_after_term:?}",
        first.max_rss_bytes >> 20,
        second.max_rss_bytes >> 20
    );
}
