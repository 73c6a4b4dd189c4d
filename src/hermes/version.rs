//! Which Hermes version is installed, because the form of "dead" depends on it.
//!
//! Asking `hermes --version` starts a Python interpreter (about a second), so the installed
//! package's metadata is read first: the `hermes` script's interpreter lives in a virtual
//! environment whose `site-packages` holds `hermes_agent-X.Y.Z.dist-info`. Running the command
//! is the fallback. Parsing is pure; finding the program is the only I/O.

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

/// How long `hermes --version` may take: starting Python takes about a second.
const VERSION_COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a running `hermes --version` is looked at.
const VERSION_COMMAND_POLL: Duration = Duration::from_millis(20);
/// How much of what `hermes --version` prints is kept (the version is on the first line).
const VERSION_OUTPUT_LIMIT: usize = 4 << 10;

/// Finds the installed version: `program` if given, else `hermes` on `PATH`. A `program` that
/// is not a regular file, cannot be run, does not finish `--version` within 10 s or prints no
/// version leaves it unknown, with a warning naming the program.
pub fn detect(program: Option<&Path>) -> Option<HermesVersion> {
    let program = match program {
        Some(program) => program.to_owned(),
        None => find_on_path("hermes")?,
    };
    match from_package_metadata(&program) {
        Ok(Some(version)) => Some(version),
        Ok(None) => from_version_command(&program, VERSION_COMMAND_TIMEOUT),
        Err(error) => {
            tracing::warn!("{error}; the Hermes version is unknown (give --hermes-version)");
            None
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
    Ok(version_beside_interpreter(&first_line))
}

fn version_beside_interpreter(first_line: &[u8]) -> Option<HermesVersion> {
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

/// Runs `program --version` for at most `timeout` (then it and whatever it started are
/// killed and reaped), keeping the first [`VERSION_OUTPUT_LIMIT`] bytes it prints.
fn from_version_command(program: &Path, timeout: Duration) -> Option<HermesVersion> {
    let unknown = |why: String| {
        tracing::warn!(
            "{}: {why}; the Hermes version is unknown (give --hermes-version)",
            program.display()
        );
        None
    };
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
        Err(error) => return unknown(format!("cannot run `--version`: {error}")),
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
            return unknown(why);
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
    match first_line.as_deref().and_then(HermesVersion::parse) {
        Some(version) => Some(version),
        None => unknown(format!("`--version` printed no version ({status})")),
    }
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
            Some("0.19.0".into())
        );
    }

    #[test]
    fn a_version_command_that_hangs_is_stopped_and_the_version_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let hangs = script(dir.path(), "#!/bin/sh\nsleep 1000\n");
        let started = Instant::now();
        assert_eq!(
            from_version_command(&hangs, Duration::from_millis(300)),
            None
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
        assert_eq!(detect(Some(Path::new("/dev/zero"))), None);
    }
}
