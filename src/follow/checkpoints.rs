//! How far each log was read, `<hermes home>/warden/checkpoints.json`, so a restart neither
//! misses a line nor reads one twice.
//!
//! The daemon appends a batch's findings to the audit log (fsynced) first and replaces the
//! checkpoint second; the audit log knows the positions it recorded, so lines read again after
//! a crash between the two are not recorded twice. The checkpoint is written atomically: it is
//! always either old or new, never torn.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::follow::tailer::FilePosition;
use crate::shared::files::{CHECKPOINTS_LIMIT, read_limited, without_path, write_atomically};

/// Read positions by log file (path relative to the Hermes home).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoints {
    pub version: u32,
    pub files: BTreeMap<String, Vec<FilePosition>>,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Checkpoints {
            version: 1,
            files: BTreeMap::new(),
        }
    }
}

impl Checkpoints {
    /// Reads the checkpoints (none yet: nothing read so far); `Err` says what is wrong with a
    /// file that cannot be read or parsed, for the caller to move it aside and start over.
    /// Anything but a regular file (a FIFO, a device: found without blocking) and a file larger
    /// than [`CHECKPOINTS_LIMIT`] cannot be read.
    pub fn load(path: &Path) -> Result<Checkpoints, String> {
        let problem = match read_limited(path, CHECKPOINTS_LIMIT) {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(checkpoints) => return Ok(checkpoints),
                Err(error) => format!("not checkpoints: {error}"),
            },
            Ok(None) => return Ok(Checkpoints::default()),
            Err(error) => format!("cannot read: {}", without_path(error)),
        };
        Err(format!("{}: {problem}", path.display()))
    }

    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write_atomically(path, &bytes, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::follow::tailer::FileIdentity;
    use std::fs;

    fn identity() -> FileIdentity {
        FileIdentity {
            device: 1,
            inode: 2,
            head: Some("abc".into()),
        }
    }

    #[test]
    fn checkpoints_round_trip_and_a_torn_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.json");
        let mut checkpoints = Checkpoints::load(&path).unwrap();
        checkpoints.files.insert(
            "logs/errors.log".into(),
            vec![FilePosition {
                identity: identity(),
                offset: 10,
                lines: 1,
            }],
        );
        checkpoints.save(&path).unwrap();
        assert_eq!(Checkpoints::load(&path).unwrap(), checkpoints);
        fs::write(&path, b"{\"version\": 1, \"files\": {").unwrap();
        let problem = Checkpoints::load(&path).unwrap_err();
        assert!(problem.contains("checkpoints.json"), "{problem}");
    }

    #[test]
    fn a_fifo_or_an_oversize_file_cannot_be_read_and_nothing_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.json");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap()
                .success()
        );
        let problem = Checkpoints::load(&path).unwrap_err();
        assert_eq!(
            problem,
            format!(
                "{}: cannot read: not a regular file (a FIFO)",
                path.display()
            )
        );
        fs::remove_file(&path).unwrap();
        fs::File::create(&path)
            .unwrap()
            .set_len(CHECKPOINTS_LIMIT + 1)
            .unwrap();
        let problem = Checkpoints::load(&path).unwrap_err();
        assert!(
            problem.ends_with("cannot read: larger than 64 MiB"),
            "{problem}"
        );
    }
}
