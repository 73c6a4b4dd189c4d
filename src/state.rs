//! The warden's own durable state in `<hermes home>/warden/` (mode 0700): checkpoints of how
//! far each log was read, and `audit.jsonl`, one JSON object per finding.
//!
//! Order makes restarts exact: a batch's findings are appended to the audit log and fsynced
//! first, the checkpoint is replaced second. An audit record carries the position of its line,
//! so after a crash between the two writes the lines read again are recognised and not
//! recorded twice. Checkpoints are written to a temporary file, fsynced, renamed over the old
//! one, and the directory is fsynced: the file is always either old or new, never torn.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::tailer::{FileIdentity, FilePosition};

/// Creates the state directory with mode 0700 if it is missing.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Replaces `path` with `bytes` (mode 0600, owned by `owner` (uid, gid) when given) so that a
/// reader sees the old or the new content, never a mix: a temporary file in the same directory,
/// fsynced, renamed over `path`, then the directory fsynced.
pub fn write_atomically(path: &Path, bytes: &[u8], owner: Option<(u32, u32)>) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no parent directory"))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    if let Some((uid, gid)) = owner {
        use std::os::unix::fs::MetadataExt;
        let created = temp.as_file().metadata()?;
        if (created.uid(), created.gid()) != (uid, gid) {
            std::os::unix::fs::fchown(temp.as_file(), Some(uid), Some(gid))?;
        }
    }
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|error| error.error)?;
    File::open(dir)?.sync_all()
}

/// Read positions by log file (path relative to the Hermes home).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoints {
    pub version: u32,
    pub files: BTreeMap<String, Vec<FilePosition>>,
}

impl Checkpoints {
    pub fn load(path: &Path) -> anyhow::Result<Checkpoints> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|error| anyhow::anyhow!("{}: {error}", path.display())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Checkpoints {
                version: 1,
                ..Checkpoints::default()
            }),
            Err(error) => Err(anyhow::anyhow!("{}: {error}", path.display())),
        }
    }

    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write_atomically(path, &bytes, None)
    }
}

/// Where a finding's line was: the file and the offset just past the line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Source {
    pub device: u64,
    pub inode: u64,
    pub head: Option<String>,
    pub end: u64,
}

impl Source {
    pub fn new(file: &FileIdentity, end: u64) -> Source {
        Source {
            device: file.device,
            inode: file.inode,
            head: file.head.clone(),
            end,
        }
    }

    fn file_key(&self) -> (u64, u64, Option<String>) {
        (self.device, self.inode, self.head.clone())
    }
}

/// The append-only record of findings.
pub struct AuditLog {
    path: PathBuf,
    /// The furthest recorded line per file: lines up to there are already in the log.
    recorded: HashMap<(u64, u64, Option<String>), u64>,
    /// Recent records: (record id, log key, event time in epoch seconds).
    recent: Vec<(String, String, f64)>,
}

/// How much of the end of the audit log is read at start to learn what is already recorded.
const RECENT_AUDIT_BYTES: u64 = 8 << 20;

impl AuditLog {
    pub fn open(path: &Path) -> anyhow::Result<AuditLog> {
        let mut recorded = HashMap::new();
        let mut recent = Vec::new();
        match File::open(path) {
            Ok(mut file) => {
                let length = file.metadata()?.len();
                let start = length.saturating_sub(RECENT_AUDIT_BYTES);
                file.seek(SeekFrom::Start(start))?;
                let mut lines = BufReader::new(file).lines();
                if start > 0 {
                    lines.next(); // a partial first line
                }
                for line in lines {
                    let line = line?;
                    let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
                        continue;
                    };
                    if let (Some(id), Some(file)) =
                        (record["record"].as_str(), record["file"].as_str())
                    {
                        let time = record["time"]
                            .as_str()
                            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                            .map_or(0.0, |t| t.as_millisecond() as f64 / 1000.0);
                        recent.push((id.to_owned(), file.to_owned(), time));
                    }
                    let Some(source) = record
                        .get("source")
                        .and_then(|s| serde_json::from_value::<Source>(s.clone()).ok())
                    else {
                        continue;
                    };
                    let end = recorded.entry(source.file_key()).or_insert(0);
                    *end = source.end.max(*end);
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(anyhow::anyhow!("{}: {error}", path.display())),
        }
        Ok(AuditLog {
            path: path.to_owned(),
            recorded,
            recent,
        })
    }

    /// The records found at the end of the log when it was opened: (record id, log key, time).
    pub fn recent_records(&self) -> &[(String, String, f64)] {
        &self.recent
    }

    /// Whether the finding of the line ending at `source.end` is already in the log.
    pub fn already_recorded(&self, source: &Source) -> bool {
        self.recorded
            .get(&source.file_key())
            .is_some_and(|end| source.end <= *end)
    }

    /// Appends records (JSON objects; a finding's carries the `source` of its line) and makes
    /// them durable.
    pub fn append(&mut self, records: &[(Option<Source>, serde_json::Value)]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for (_, record) in records {
            text.push_str(&serde_json::to_string(record).map_err(io::Error::other)?);
            text.push('\n');
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()?;
        for source in records.iter().filter_map(|(source, _)| source.as_ref()) {
            let end = self.recorded.entry(source.file_key()).or_insert(0);
            *end = source.end.max(*end);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> FileIdentity {
        FileIdentity {
            device: 1,
            inode: 2,
            head: Some("abc".into()),
        }
    }

    #[test]
    fn checkpoints_round_trip_atomically_with_private_mode() {
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
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers.len(),
            1,
            "no temporary file left behind: {leftovers:?}"
        );
    }

    #[test]
    fn the_audit_log_remembers_what_it_recorded_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let source = Source::new(&identity(), 100);
        let mut audit = AuditLog::open(&path).unwrap();
        assert!(!audit.already_recorded(&source));
        let record = serde_json::json!({"rule": "x", "source": source});
        audit.append(&[(Some(source.clone()), record)]).unwrap();
        let reopened = AuditLog::open(&path).unwrap();
        assert!(reopened.already_recorded(&source));
        assert!(reopened.already_recorded(&Source::new(&identity(), 50)));
        assert!(!reopened.already_recorded(&Source::new(&identity(), 150)));
        let other_file = FileIdentity {
            inode: 3,
            ..identity()
        };
        assert!(!reopened.already_recorded(&Source::new(&other_file, 50)));
    }
}
