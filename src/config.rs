//! The warden's own optional configuration, `<hermes home>/warden.toml` or `--config FILE`.
//!
//! Everything has a default and the program runs without the file. Unknown keys and bad
//! values are errors naming the file and line, so a typo never silently changes behaviour.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::hermes::semantics::MarkAs;
use crate::pool::attribute::Windows;
use crate::read::scanner::DEFAULT_MAX_LINE;
use crate::shared::files;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WardenConfig {
    /// The Hermes version whose rules apply (`"0.15.0"`); found from the installation when unset.
    pub hermes_version: Option<String>,
    /// The `hermes` program to ask for its version; `hermes` on PATH when unset.
    pub hermes_bin: Option<PathBuf>,
    /// A line naming a credential pairs with a payload line of the same session within this many seconds.
    pub pair_window_seconds: f64,
    /// A recorded error in auth.json agrees with a log line within this many seconds.
    pub correlation_window_seconds: f64,
    /// Lines longer than this are cut (and counted).
    pub max_line_bytes: usize,
    /// The time zone Hermes wrote its log times in (IANA name); the system's when unset.
    pub timezone: Option<String>,
    /// `watch`: seconds between checks when no file-system event arrives.
    pub poll_interval_seconds: f64,
    /// `watch`: how long a renamed log is still read for late writes after it went quiet.
    pub drain_grace_seconds: f64,
    /// How a dead mark is written: `auto` (the form the installed Hermes honours, or the one
    /// every version honours when the version is unknown), `dead` (refused for a Hermes without
    /// a dead state, or of unknown version) or `exhausted`.
    pub mark_as: MarkAs,
    /// How long to try for Hermes's auth lock before giving up (and retrying later).
    pub lock_timeout_seconds: f64,
}

impl Default for WardenConfig {
    fn default() -> Self {
        let windows = Windows::default();
        WardenConfig {
            hermes_version: None,
            hermes_bin: None,
            pair_window_seconds: windows.pair_seconds,
            correlation_window_seconds: windows.correlation_seconds,
            max_line_bytes: DEFAULT_MAX_LINE,
            timezone: None,
            poll_interval_seconds: 1.0,
            drain_grace_seconds: 30.0,
            mark_as: MarkAs::Auto,
            lock_timeout_seconds: 10.0,
        }
    }
}

impl WardenConfig {
    pub fn windows(&self) -> Windows {
        Windows {
            pair_seconds: self.pair_window_seconds,
            correlation_seconds: self.correlation_window_seconds,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

/// Reads the config file; a missing default file is the defaults, a missing `--config` is an error.
/// So is anything but a regular file (a FIFO, a device, a directory: found without blocking)
/// and a file larger than [`files::CONFIG_LIMIT`].
pub fn load(path: &Path, required: bool) -> Result<WardenConfig, ConfigError> {
    let unreadable = |error: std::io::Error| ConfigError {
        path: path.to_owned(),
        line: 0,
        message: files::without_path(error).to_string(),
    };
    let bytes = match files::read_limited(path, files::CONFIG_LIMIT) {
        Ok(Some(bytes)) => bytes,
        Ok(None) if !required => return Ok(WardenConfig::default()),
        Ok(None) => {
            return Err(unreadable(std::io::Error::from_raw_os_error(libc::ENOENT)));
        }
        Err(error) => return Err(unreadable(error)),
    };
    let text = String::from_utf8(bytes).map_err(|_| {
        unreadable(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<WardenConfig, ConfigError> {
    let config: WardenConfig = toml::from_str(text).map_err(|error| ConfigError {
        path: path.to_owned(),
        line: error
            .span()
            .map_or(1, |span| 1 + text[..span.start].matches('\n').count()),
        message: error.message().to_owned(),
    })?;
    let invalid = |message: &str| ConfigError {
        path: path.to_owned(),
        line: 1,
        message: message.to_owned(),
    };
    if !(config.pair_window_seconds >= 0.0 && config.correlation_window_seconds >= 0.0) {
        return Err(invalid("windows must be zero or more seconds"));
    }
    if !(config.poll_interval_seconds > 0.0 && config.drain_grace_seconds >= 0.0) {
        return Err(invalid(
            "poll_interval_seconds must be above zero and drain_grace_seconds zero or more",
        ));
    }
    if !(config.lock_timeout_seconds > 0.0 && config.lock_timeout_seconds < 15.0) {
        return Err(invalid(
            "lock_timeout_seconds must be above zero and below Hermes's own 15 seconds",
        ));
    }
    if config.max_line_bytes < 1024 {
        return Err(invalid("max_line_bytes must be at least 1024"));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(
            parse(Path::new("w.toml"), "").unwrap(),
            WardenConfig::default()
        );
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let error = parse(
            Path::new("w.toml"),
            "pair_window_seconds = 2.0\ncorelation_window_seconds = 3.0\n",
        )
        .unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.to_string().starts_with("w.toml:2:"), "{error}");
    }

    #[test]
    fn missing_optional_file_is_fine_but_missing_required_is_not() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(&dir.path().join("warden.toml"), false).is_ok());
        assert!(load(&dir.path().join("warden.toml"), true).is_err());
    }

    #[test]
    fn a_device_or_an_oversize_file_is_an_error_at_line_0() {
        let error = load(Path::new("/dev/zero"), true).unwrap_err();
        assert_eq!(error.line, 0);
        assert_eq!(
            error.to_string(),
            "/dev/zero:0: not a regular file (a character device)"
        );
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("warden.toml");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(files::CONFIG_LIMIT + 1)
            .unwrap();
        let error = load(&big, false).unwrap_err();
        assert!(
            error.to_string().ends_with(":0: larger than 1 MiB"),
            "{error}"
        );
    }
}
