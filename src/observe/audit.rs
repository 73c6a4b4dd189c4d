//! The audit log, `<hermes home>/warden/audit.jsonl`: one JSON object a line for every finding
//! and every change the warden made, appended and fsynced before the checkpoint moves on.
//!
//! An audit record of a finding carries the position of its line, so after a crash between the
//! append and the checkpoint the lines read again are recognised and not recorded twice.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::follow::tailer::FileIdentity;

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
