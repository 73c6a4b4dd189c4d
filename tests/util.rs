//! Shared helpers: running the binary, building Hermes homes with the real Hermes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

pub fn warden() -> assert_cmd::Command {
    let mut command = assert_cmd::Command::cargo_bin("hermes-warden").expect("binary built");
    command.env_remove("HERMES_HOME").env("TZ", "UTC");
    command
}

/// `hermes-warden --hermes-home HOME`.
pub fn warden_in(home: &Path) -> assert_cmd::Command {
    let mut command = warden();
    command.arg("--hermes-home").arg(home);
    command
}

/// Runs `command`, fails the test with its stderr unless it succeeds, returns its stdout.
pub fn stdout_of(command: &mut assert_cmd::Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .to_owned()
}

/// The virtual environment with `hermes-agent==version`, or a failure saying how to get it.
pub fn hermes_venv(version: &str) -> PathBuf {
    let venv = target_dir().join("hermes-venvs").join(version);
    assert!(
        venv.join("bin/python").exists(),
        "hermes-agent {version} is not installed for the tests ({} is missing).\n\
         Run ./scripts/test.sh, or tests/hermes/setup_venvs.sh {version}, to install it from PyPI.",
        venv.display()
    );
    venv
}

/// A Hermes home built by Hermes's own code (tests/hermes/build_home.py).
pub struct HermesHome {
    _dir: TempDir,
    pub root: PathBuf,
    pub version: String,
    pub manifest: Value,
}

impl HermesHome {
    pub fn build(scenario: &str, version: &str) -> HermesHome {
        let python = hermes_venv(version).join("bin/python");
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("hermes");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hermes/build_home.py");
        let output = Command::new(&python)
            .arg(&script)
            .arg(scenario)
            .arg(&root)
            .env("TZ", "UTC")
            .env_remove("HERMES_HOME")
            .output()
            .expect("run build_home.py");
        assert!(
            output.status.success(),
            "build_home.py {scenario} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let manifest: Value = serde_json::from_slice(&output.stdout).expect("manifest is JSON");
        HermesHome {
            _dir: dir,
            root,
            version: version.to_owned(),
            manifest,
        }
    }

    /// A moment just after the scenario's last step, in RFC 3339.
    pub fn just_after(&self) -> String {
        let end = self.manifest["clock"]["end"].as_f64().expect("clock.end");
        jiff::Timestamp::from_millisecond(((end + 1.0) * 1000.0) as i64)
            .unwrap()
            .to_string()
    }

    /// `scan --format json` with the home's Hermes version; panics with the home's files on failure.
    pub fn scan(&self, extra: &[&str]) -> Value {
        self.scan_as(&self.version, extra)
    }

    /// `scan --format json` read with the rules of Hermes `version`.
    pub fn scan_as(&self, version: &str, extra: &[&str]) -> Value {
        let output = warden_in(&self.root)
            .args(["--hermes-version", version, "--now", &self.just_after()])
            .args(extra)
            .args(["scan", "--format", "json"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "scan failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.describe()
        );
        serde_json::from_slice(&output.stdout).expect("scan prints JSON")
    }

    /// The home's logs and auth.json, for failure messages.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        for entry in walk(&self.root) {
            let name = entry
                .strip_prefix(&self.root)
                .unwrap()
                .display()
                .to_string();
            if name.ends_with(".log") || name.contains(".log.") || name.ends_with("auth.json") {
                let body = std::fs::read_to_string(&entry).unwrap_or_default();
                text.push_str(&format!("--- {name}\n{body}\n"));
            }
        }
        text
    }

    pub fn credential_id(&self, label: &str, profile: Option<&str>) -> String {
        self.manifest["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["label"] == label && c["profile"].as_str() == profile)
            .unwrap_or_else(|| panic!("no credential {label} in the manifest: {}", self.manifest))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The events of a scan whose rule is `rule`.
pub fn events_of<'v>(scan: &'v Value, rule: &str) -> Vec<&'v Value> {
    scan["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["rule"] == rule)
        .collect()
}

pub fn actions(scan: &Value) -> &Vec<Value> {
    scan["actions"].as_array().unwrap()
}

/// `tests/hermes/pool_probe.py SUBCOMMAND --home HOME ARGS...` with Hermes `version`, ready to
/// run or spawn: Hermes's own pool code acting on the home.
pub fn pool_probe(home: &Path, version: &str, subcommand: &str, args: &[&str]) -> Command {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hermes/pool_probe.py");
    let mut command = Command::new(hermes_venv(version).join("bin/python"));
    command
        .arg(script)
        .arg(subcommand)
        .arg("--home")
        .arg(home)
        .args(args)
        .env("TZ", "UTC")
        .env_remove("HERMES_HOME");
    command
}

/// Runs a pool probe to its end and returns the JSON it prints.
pub fn probe(home: &Path, version: &str, subcommand: &str, args: &[&str]) -> Value {
    let output = pool_probe(home, version, subcommand, args)
        .output()
        .expect("run pool_probe.py");
    assert!(
        output.status.success(),
        "pool_probe.py {subcommand} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("pool_probe.py prints JSON")
}

/// What Hermes's own `select()` returned, `times` times at each clock offset (`offsets`:
/// seconds, comma-separated), as (offset, ids) in offset order; fails unless the probe ran
/// Hermes `version`.
pub fn hermes_selections(
    home: &Path,
    version: &str,
    times: usize,
    offsets: &str,
) -> Vec<(String, Vec<String>)> {
    let times = times.to_string();
    let args = [
        "--provider",
        "openai-codex",
        "--times",
        &times,
        "--offsets",
        offsets,
    ];
    let result = probe(home, version, "select", &args);
    assert_eq!(result["hermes_version"], version, "{result}");
    let selections = result["selections"].as_object().unwrap();
    let wanted: Vec<&str> = offsets.split(',').collect();
    assert_eq!(selections.len(), wanted.len(), "{result}");
    wanted
        .into_iter()
        .map(|offset| {
            let ids = selections[offset]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect();
            (offset.to_owned(), ids)
        })
        .collect()
}

/// A JSON file, parsed (the test fails when it is not JSON).
pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Copies a directory tree, files and all.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `promtool check metrics` on `text`: Prometheus's own linter accepts it.
pub fn promtool_accepts(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("promtool is needed for this test ({error}): apt-get install prometheus, or run ./scripts/test.sh")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics refused:\n{}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The value of the one sample `series` (name and labels as printed) in `text`.
pub fn sample(text: &str, series: &str) -> f64 {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .collect();
    assert_eq!(values.len(), 1, "one sample {series} in:\n{text}");
    values[0]
}
