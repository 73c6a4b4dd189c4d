//! Where things are in a Hermes home: the root, its profiles, the logs and their backups.
//!
//! The root is `--hermes-home`, else `$HERMES_HOME`, else `~/.hermes`. A profile lives in
//! `<root>/profiles/<name>/` with its own `auth.json`, `config.yaml` and `logs/`. Log backups
//! are `errors.log.1`, `errors.log.2`, ... with the highest number the oldest.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The two logs Hermes writes in a home's `logs/`: `errors.log` (WARNING and above) and
/// `agent.log` (INFO and above, so every errors.log record is in agent.log too).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
pub enum LogFile {
    #[serde(rename = "errors.log")]
    #[value(name = "errors.log")]
    Errors,
    #[serde(rename = "agent.log")]
    #[value(name = "agent.log")]
    Agent,
}

impl LogFile {
    pub const ALL: [LogFile; 2] = [LogFile::Errors, LogFile::Agent];

    /// The file's name in `logs/`.
    pub fn name(self) -> &'static str {
        match self {
            LogFile::Errors => "errors.log",
            LogFile::Agent => "agent.log",
        }
    }

    pub fn parse(name: &str) -> Option<LogFile> {
        LogFile::ALL.into_iter().find(|log| log.name() == name)
    }
}

/// One Hermes home to look at: the root (`profile: None`) or a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub profile: Option<String>,
    pub dir: PathBuf,
}

impl Target {
    pub fn auth_json(&self) -> PathBuf {
        self.dir.join("auth.json")
    }

    pub fn config_yaml(&self) -> PathBuf {
        self.dir.join("config.yaml")
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }
}

/// The root Hermes home from the flag, the environment, or the default.
pub fn root(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_owned());
    }
    if let Some(dir) = std::env::var_os("HERMES_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("neither HERMES_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".hermes"))
}

/// The homes selected by `--profile` / `--all-profiles` (the root alone by default).
pub fn targets(
    root: &Path,
    profile: Option<&str>,
    all_profiles: bool,
) -> anyhow::Result<Vec<Target>> {
    if let Some(name) = profile {
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            bail!("{name:?} is not a profile name");
        }
        let dir = root.join("profiles").join(name);
        if !dir.is_dir() {
            bail!("no profile {name:?}: {} is not a directory", dir.display());
        }
        return Ok(vec![Target {
            profile: Some(name.to_owned()),
            dir,
        }]);
    }
    let mut targets = vec![Target {
        profile: None,
        dir: root.to_owned(),
    }];
    if all_profiles {
        let mut names: Vec<String> = match std::fs::read_dir(root.join("profiles")) {
            Ok(entries) => entries
                .flatten()
                .filter(|entry| entry.path().is_dir())
                .filter_map(|entry| entry.file_name().into_string().ok())
                .collect(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot list {}", root.join("profiles").display()));
            }
        };
        names.sort();
        targets.extend(names.into_iter().map(|name| Target {
            dir: root.join("profiles").join(&name),
            profile: Some(name),
        }));
    }
    Ok(targets)
}

/// `<logs>/<base>.N ... <base>.1, <base>`: the backups oldest first, then the live file; only
/// the files that exist, whatever they are (the reader refuses, and says so, what is not a
/// regular file).
pub fn log_files_oldest_first(logs: &Path, base: &str) -> Vec<PathBuf> {
    let mut backups: Vec<(u32, PathBuf)> = std::fs::read_dir(logs)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let number = name.strip_prefix(base)?.strip_prefix('.')?.parse().ok()?;
            Some((number, entry.path()))
        })
        .collect();
    backups.sort_by_key(|(number, _)| std::cmp::Reverse(*number));
    let mut files: Vec<PathBuf> = backups.into_iter().map(|(_, path)| path).collect();
    let live = logs.join(base);
    if live.exists() {
        files.push(live);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_come_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "errors.log",
            "errors.log.1",
            "errors.log.2",
            "errors.log.10",
            "errors.log.bak",
            "agent.log.1",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = log_files_oldest_first(dir.path(), "errors.log")
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "errors.log.10",
                "errors.log.2",
                "errors.log.1",
                "errors.log"
            ]
        );
    }

    #[test]
    fn profiles_are_listed_in_order_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("profiles/work")).unwrap();
        std::fs::create_dir_all(dir.path().join("profiles/home")).unwrap();
        let all = targets(dir.path(), None, true).unwrap();
        let names: Vec<_> = all.iter().map(|t| t.profile.clone()).collect();
        assert_eq!(names, [None, Some("home".into()), Some("work".into())]);
        assert!(targets(dir.path(), Some("missing"), false).is_err());
        assert!(targets(dir.path(), Some("../x"), false).is_err());
    }
}
