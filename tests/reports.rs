//! Golden reports (insta) over Hermes homes captured from the real Hermes (tests/fixtures).

use std::path::PathBuf;

use crate::util::{stdout_of, warden_in};

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
