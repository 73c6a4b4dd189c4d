//! Which Hermes version is installed, because the form of "dead" depends on it.
//!
//! Asking `hermes --version` starts a Python interpreter (about a second), so the installed
//! package's metadata is read first: the `hermes` script's interpreter lives in a virtual
//! environment whose `site-packages` holds `hermes_agent-X.Y.Z.dist-info`. Running the command
//! is the fallback. Parsing is pure; finding the program is the only I/O.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HermesVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl HermesVersion {
    /// The first release with a `dead` credential state.
    pub const FIRST_WITH_DEAD_STATE: HermesVersion = HermesVersion {
        major: 0,
        minor: 16,
        patch: 0,
    };

    /// Reads `0.19.0`, `v0.19.0` or the first line of `hermes --version`
    /// (`Hermes Agent v0.19.0 (2026.7.20)`).
    pub fn parse(text: &str) -> Option<HermesVersion> {
        let start = text.find(|c: char| c.is_ascii_digit())?;
        let mut parts = text[start..]
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()?
            .split('.')
            .map(|part| part.parse::<u32>().ok());
        Some(HermesVersion {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next().flatten().unwrap_or(0),
        })
    }
}

impl std::fmt::Display for HermesVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Finds the installed version: `program` if given, else `hermes` on `PATH`.
pub fn detect(program: Option<&Path>) -> Option<HermesVersion> {
    let program = match program {
        Some(program) => program.to_owned(),
        None => find_on_path("hermes")?,
    };
    from_package_metadata(&program).or_else(|| from_version_command(&program))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn from_package_metadata(program: &Path) -> Option<HermesVersion> {
    let script = std::fs::read(program).ok()?;
    let first_line = script.split(|&b| b == b'\n').next()?;
    let interpreter = std::str::from_utf8(first_line.strip_prefix(b"#!")?)
        .ok()?
        .trim();
    let environment = Path::new(interpreter).parent()?.parent()?;
    for lib in std::fs::read_dir(environment.join("lib")).ok()?.flatten() {
        let site_packages = lib.path().join("site-packages");
        let Ok(entries) = std::fs::read_dir(&site_packages) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(version) = name
                .strip_prefix("hermes_agent-")
                .and_then(|rest| rest.strip_suffix(".dist-info"))
            {
                return HermesVersion::parse(version);
            }
        }
    }
    None
}

fn from_version_command(program: &Path) -> Option<HermesVersion> {
    let output = Command::new(program).arg("--version").output().ok()?;
    HermesVersion::parse(String::from_utf8_lossy(&output.stdout).lines().next()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_hermes_prints() {
        let v = |text| HermesVersion::parse(text).map(|v| v.to_string());
        assert_eq!(
            v("Hermes Agent v0.19.0 (2026.7.20)").as_deref(),
            Some("0.19.0")
        );
        assert_eq!(v("0.15.2").as_deref(), Some("0.15.2"));
        assert_eq!(v("v1.2").as_deref(), Some("1.2.0"));
        assert_eq!(v("no version"), None);
        assert!(HermesVersion::parse("0.15.2").unwrap() < HermesVersion::FIRST_WITH_DEAD_STATE);
        assert!(HermesVersion::parse("0.16.0").unwrap() >= HermesVersion::FIRST_WITH_DEAD_STATE);
    }
}
