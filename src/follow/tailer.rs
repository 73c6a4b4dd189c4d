//! Following one log file by name, through rotation and truncation, losing and repeating nothing.
//!
//! Several Hermes processes append to the same `errors.log` and each rotates it itself (rename
//! to `.1`, open a new file); a process that has not noticed yet still appends to the renamed
//! file for a while. So the tailer:
//! - knows a file by its identity: (device, inode) plus a hash of its first line, which tells a
//!   re-created file from the old one even when the inode number is reused;
//! - after a rename, keeps reading the old file (`draining`) until it has been quiet for a grace
//!   period, and reads the new file from its start;
//! - treats a file shorter than the read position as truncated and starts again at 0; when a
//!   backup `NAME.1` begins with the same first line (copytruncate), it first reads the rest of
//!   the old content from there. Lines appended between the copy and the truncation are lost:
//!   that is copytruncate's own window, and nothing can read them. A truncation is seen when
//!   the file is shorter than our position, its first line changed, or the partial line we
//!   hold is no longer on disk; a file truncated and written again past our position between
//!   two polls, before it had a complete first line, with the same bytes where our partial line
//!   was, is not (Hermes lines begin with a millisecond timestamp, so this needs two records
//!   of the same millisecond); nor is a copytruncate, while the warden was stopped, of a file
//!   whose first line was still incomplete at the last checkpoint. A file that was empty at
//!   one poll and was filled, copied, truncated and written again before the next has its
//!   copy delivered after the newer lines (in full, but out of order);
//! - holds a partial last line until its newline arrives, and cuts a line longer than the limit;
//! - resumes from checkpoints: a file found again (live or as a backup) continues at its
//!   position, files newer than it are read from their start, older ones are skipped.
//!
//! It knows nothing of rules, Hermes or metrics, and never sleeps: the caller steps it with
//! `poll(now)` whenever a file-system event or its timer says something may have changed.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How much of the first line identifies a file.
const HEAD_BYTES: usize = 4096;
const READ_CHUNK: usize = 256 * 1024;

/// Which file this is, independent of its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    pub device: u64,
    pub inode: u64,
    /// Hash of the first line (up to 4 KiB); `None` while the file has no complete line.
    pub head: Option<String>,
}

impl FileIdentity {
    /// Same file: same inode, and the first lines agree where both are known.
    pub fn same_file(&self, other: &FileIdentity) -> bool {
        self.device == other.device
            && self.inode == other.inode
            && (self.head.is_none() || other.head.is_none() || self.head == other.head)
    }
}

/// Where reading of one file stands: every line ending before `offset` has been delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePosition {
    pub identity: FileIdentity,
    pub offset: u64,
    /// How many lines end before `offset`.
    #[serde(default)]
    pub lines: u64,
}

/// One complete line (without its newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailedLine {
    pub bytes: Vec<u8>,
    pub file: FileIdentity,
    /// Offset just past the line's newline.
    pub end: u64,
    /// 1-based line number in the file.
    pub number: u64,
    /// The line was longer than the limit and has been cut to it.
    pub cut: bool,
}

/// Something that happened to the file, for logs and counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailNote {
    Opened {
        resumed_at: u64,
    },
    Rotated,
    Truncated,
    Recreated,
    /// After a copytruncate, the rest of the old content was read from this backup.
    ReadRestFromCopy {
        backup: PathBuf,
    },
    Missing,
}

#[derive(Debug, Default)]
pub struct Poll {
    pub lines: Vec<TailedLine>,
    pub notes: Vec<TailNote>,
}

/// One open file being read.
#[derive(Debug)]
struct Reader {
    file: File,
    identity: FileIdentity,
    /// Offset past the last delivered newline.
    delivered: u64,
    /// Lines delivered so far (the number of the last one).
    lines: u64,
    /// Offset up to which bytes have been read (includes the held partial line).
    read: u64,
    partial: Vec<u8>,
    partial_cut: bool,
    /// The beginning (up to `HEAD_BYTES`) of the file's first line, as read: its hash becomes
    /// the identity's head, so the head always describes the bytes delivered, even when the
    /// file is rewritten while it is being read.
    first_line: Vec<u8>,
    last_growth: Instant,
}

impl Reader {
    fn open(path: &Path, start: Start, now: Instant) -> io::Result<Reader> {
        let file = File::open(path)?;
        let identity = identity_with_head(&file)?;
        Ok(Reader {
            file,
            identity,
            delivered: start.offset,
            lines: start.lines,
            read: start.offset,
            partial: Vec::new(),
            partial_cut: false,
            first_line: Vec::new(),
            last_growth: now,
        })
    }

    fn position(&self) -> FilePosition {
        FilePosition {
            identity: self.identity.clone(),
            offset: self.delivered,
            lines: self.lines,
        }
    }

    fn restart_at_zero(&mut self) {
        self.first_line.clear();
        self.delivered = 0;
        self.lines = 0;
        self.read = 0;
        self.partial.clear();
        self.partial_cut = false;
    }

    /// Reads everything up to the end of the file, delivering complete lines.
    fn read_to_end(
        &mut self,
        max_line: usize,
        now: Instant,
        lines: &mut Vec<TailedLine>,
    ) -> io::Result<()> {
        let mut buffer = vec![0; READ_CHUNK];
        loop {
            let count = self.file.read_at(&mut buffer, self.read)?;
            if count == 0 {
                return Ok(());
            }
            self.last_growth = now;
            let chunk = &buffer[..count];
            let mut start = 0;
            for newline in memchr::memchr_iter(b'\n', chunk) {
                self.take(&chunk[start..newline], max_line);
                let bytes = std::mem::take(&mut self.partial);
                let cut = std::mem::take(&mut self.partial_cut);
                let end = self.read + newline as u64 + 1;
                if self.delivered == 0 {
                    self.identity.head = Some(head_hash(&std::mem::take(&mut self.first_line)));
                }
                self.delivered = end;
                self.lines += 1;
                lines.push(TailedLine {
                    bytes,
                    file: self.identity.clone(),
                    end,
                    number: self.lines,
                    cut,
                });
                start = newline + 1;
            }
            self.take(&chunk[start..], max_line);
            self.read += count as u64;
        }
    }

    /// The held partial line is still what the file holds at that place (it is not when the
    /// file was truncated and written again past our position between two polls).
    fn holds_what_is_on_disk(&self) -> io::Result<bool> {
        bytes_match(&self.file, self.delivered, &self.partial)
    }

    /// `file` is a copy of what this reader was reading (copytruncate): same first line, and
    /// the same bytes where the held partial line is.
    fn is_copied_to(&self, file: &File) -> io::Result<bool> {
        let head_agrees = match &self.identity.head {
            Some(head) => current_head(file)?.as_ref() == Some(head),
            None => self.delivered == 0 && !self.partial.is_empty(),
        };
        Ok(head_agrees && bytes_match(file, self.delivered, &self.partial)?)
    }

    fn take(&mut self, bytes: &[u8], max_line: usize) {
        if self.delivered == 0 {
            let room = HEAD_BYTES.saturating_sub(self.first_line.len());
            self.first_line
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        let room = max_line.saturating_sub(self.partial.len());
        if bytes.len() > room {
            self.partial_cut = true;
        }
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// Follows one path.
#[derive(Debug)]
pub struct Tailer {
    path: PathBuf,
    max_line: usize,
    drain_grace: Duration,
    current: Option<Reader>,
    /// Renamed-away files still being read for late writes.
    draining: Vec<Reader>,
    /// The checkpoint to start from; consumed by the first poll.
    resume_from: Option<Vec<FilePosition>>,
    /// Where the live file continues, when the checkpoint said so; consumed when it is opened.
    live_start: Option<FilePosition>,
    /// The backups that existed at the last poll, with their length then.
    seen_backups: Vec<FilePosition>,
}

impl Tailer {
    /// A tailer that starts from the checkpointed `positions` (empty: from the beginning of
    /// every backup and the live file).
    pub fn new(
        path: &Path,
        positions: &[FilePosition],
        max_line: usize,
        drain_grace: Duration,
    ) -> Tailer {
        Tailer {
            path: path.to_owned(),
            max_line,
            drain_grace,
            current: None,
            draining: Vec::new(),
            resume_from: Some(positions.to_vec()),
            live_start: None,
            seen_backups: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// New limits (a reloaded configuration), from the next poll on.
    pub fn set_limits(&mut self, max_line: usize, drain_grace: Duration) {
        self.max_line = max_line;
        self.drain_grace = drain_grace;
    }

    /// Where every file stands, for a checkpoint (before the first poll: the one it started from).
    pub fn positions(&self) -> Vec<FilePosition> {
        if let Some(positions) = &self.resume_from {
            return positions.clone();
        }
        let mut positions = self.tracked();
        let untracked: Vec<FilePosition> = self
            .seen_backups
            .iter()
            .filter(|seen| {
                !positions
                    .iter()
                    .any(|p| p.identity.same_file(&seen.identity))
            })
            .cloned()
            .collect();
        positions.extend(untracked);
        // Offset 0 says nothing was read, exactly as an unknown file; leaving it out keeps an
        // empty file's identity from claiming a new file on its reused inode.
        positions.retain(|position| position.offset > 0);
        positions
    }

    /// The files being read (or about to be), wherever they stand.
    fn tracked(&self) -> Vec<FilePosition> {
        let mut tracked: Vec<FilePosition> = self
            .draining
            .iter()
            .chain(&self.current)
            .map(Reader::position)
            .collect();
        tracked.extend(self.live_start.clone());
        tracked
    }

    /// Every backup there is now, at its current length.
    fn backup_positions(&self) -> Vec<FilePosition> {
        backups_oldest_first(&self.path)
            .iter()
            .filter_map(|backup| {
                let file = File::open(backup).ok()?;
                Some(FilePosition {
                    identity: identity_with_head(&file).ok()?,
                    offset: file.metadata().ok()?.len(),
                    lines: 0,
                })
            })
            .collect()
    }

    /// Reads whatever is new. `now` only decides when a drained file may be let go.
    pub fn poll(&mut self, now: Instant) -> io::Result<Poll> {
        let mut poll = Poll::default();
        if let Some(positions) = self.resume_from.take() {
            let plan = plan_start(&self.path, &positions);
            self.live_start = plan.live;
            for (path, start) in plan.backups {
                if let Ok(mut reader) = Reader::open(&path, start, now) {
                    reader.read_to_end(self.max_line, now, &mut poll.lines)?;
                    self.draining.push(reader);
                }
            }
            self.seen_backups = self.backup_positions();
        }
        for reader in &mut self.draining {
            reader.read_to_end(self.max_line, now, &mut poll.lines)?;
        }
        let grace = self.drain_grace;
        self.draining
            .retain(|reader| now.duration_since(reader.last_growth) < grace);

        // Oldest content first: what the current file still had, then backups nobody has read,
        // then what is newer.
        if let Some(mut reader) = self.current.take() {
            if !self.notice_rewrite(&mut reader, now, &mut poll)? {
                reader.read_to_end(self.max_line, now, &mut poll.lines)?;
            }
            self.current = Some(reader);
        }
        self.read_unseen_backups(now, &mut poll)?;
        let metadata = match std::fs::metadata(&self.path) {
            Ok(metadata) => Some(metadata),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(error),
        };
        match (self.current.take(), metadata) {
            (Some(mut reader), Some(metadata))
                if metadata.dev() == reader.identity.device
                    && metadata.ino() == reader.identity.inode =>
            {
                reader.read_to_end(self.max_line, now, &mut poll.lines)?;
                self.current = Some(reader);
            }
            (Some(mut old), metadata) => {
                old.read_to_end(self.max_line, now, &mut poll.lines)?;
                old.last_growth = now;
                self.draining.push(old);
                poll.notes.push(if metadata.is_some() {
                    TailNote::Rotated
                } else {
                    TailNote::Missing
                });
                if metadata.is_some() {
                    self.open_live(now, &mut poll)?;
                }
            }
            (None, Some(_)) => self.open_live(now, &mut poll)?,
            (None, None) => {}
        }
        Ok(poll)
    }

    /// A file truncated (or rewritten in place) since the last poll is read again from its
    /// start, after the rest of its old content is read from a copy, if there is one.
    /// Returns whether it was.
    fn notice_rewrite(
        &mut self,
        reader: &mut Reader,
        now: Instant,
        poll: &mut Poll,
    ) -> io::Result<bool> {
        let length = reader.file.metadata()?.len();
        let note = if length < reader.read || !reader.holds_what_is_on_disk()? {
            TailNote::Truncated
        } else if reader.identity.head.is_some()
            && current_head(&reader.file)? != reader.identity.head
        {
            TailNote::Recreated
        } else {
            return Ok(false);
        };
        self.read_rest_from_copy(reader, now, poll)?;
        reader.restart_at_zero();
        reader.identity.head = None;
        poll.notes.push(note);
        Ok(true)
    }

    fn open_live(&mut self, now: Instant, poll: &mut Poll) -> io::Result<()> {
        let mut reader = match Reader::open(&self.path, Start::default(), now) {
            Ok(reader) => reader,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        if let Some(saved) = self.live_start.take()
            && saved.identity.same_file(&reader.identity)
        {
            reader.delivered = saved.offset;
            reader.read = saved.offset;
            reader.lines = saved.lines;
        }
        poll.notes.push(TailNote::Opened {
            resumed_at: reader.delivered,
        });
        reader.read_to_end(self.max_line, now, &mut poll.lines)?;
        self.current = Some(reader);
        Ok(())
    }

    /// After a truncation: if a backup is a copy of the old content (copytruncate), read on
    /// from there.
    fn read_rest_from_copy(
        &mut self,
        old: &Reader,
        now: Instant,
        poll: &mut Poll,
    ) -> io::Result<()> {
        for backup in backups_oldest_first(&self.path).into_iter().rev() {
            let Ok(file) = File::open(&backup) else {
                continue;
            };
            if !old.is_copied_to(&file)? {
                continue;
            }
            let mut copy = Reader {
                identity: identity_with_head(&file)?,
                file,
                delivered: old.delivered,
                lines: old.lines,
                read: old.read,
                partial: old.partial.clone(),
                partial_cut: old.partial_cut,
                first_line: old.first_line.clone(),
                last_growth: now,
            };
            copy.read_to_end(self.max_line, now, &mut poll.lines)?;
            // Kept with the drained files, so a checkpoint records how far the copy was read.
            self.draining.push(copy);
            poll.notes.push(TailNote::ReadRestFromCopy { backup });
            break;
        }
        Ok(())
    }

    /// Reads backups that appeared since the last poll and hold content nobody has read: a
    /// file created and rotated away between two polls, or a copy taken after a truncation.
    /// A backup that begins like the live file is a copy of it (copytruncate about to
    /// truncate) and is left for `read_rest_from_copy`.
    fn read_unseen_backups(&mut self, now: Instant, poll: &mut Poll) -> io::Result<()> {
        let tracked = self.tracked();
        // The live file's first line as it is on disk now: the reader may just have been
        // restarted after a truncation and not know it yet.
        let live_head = match &self.current {
            Some(reader) => current_head(&reader.file)?,
            None => None,
        };
        let mut seen = Vec::new();
        for backup in backups_oldest_first(&self.path) {
            let Ok(mut reader) = Reader::open(&backup, Start::default(), now) else {
                continue;
            };
            let identity = reader.identity.clone();
            if identity.head.is_none() {
                // Being written (a copy in progress): judge it once it has a first line.
                continue;
            }
            let known = tracked.iter().any(|p| p.identity.same_file(&identity))
                || self
                    .seen_backups
                    .iter()
                    .any(|s| s.identity.same_file(&identity))
                || (identity.head.is_some() && identity.head == live_head);
            let length = reader.file.metadata()?.len();
            seen.push(FilePosition {
                identity,
                offset: length,
                lines: 0,
            });
            if !known {
                reader.read_to_end(self.max_line, now, &mut poll.lines)?;
                self.draining.push(reader);
            }
        }
        self.seen_backups = seen;
        Ok(())
    }
}

/// Where reading of a file begins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Start {
    offset: u64,
    lines: u64,
}

impl From<&FilePosition> for Start {
    fn from(position: &FilePosition) -> Self {
        Start {
            offset: position.offset,
            lines: position.lines,
        }
    }
}

/// Where to start after a restart.
#[derive(Debug, Default)]
struct StartPlan {
    /// Backups to read first, oldest first, and where to begin in each.
    backups: Vec<(PathBuf, Start)>,
    /// Where the live file starts, when it exists.
    live: Option<FilePosition>,
}

/// A checkpoint lists every file there was (backups included), so at start: a checkpointed
/// file found again intact continues at its offset; any other file appeared since and is read
/// from its start. A checkpointed file truncated or removed while the warden was down may have
/// left a copy of its old content (copytruncate): that copy continues at the old offset.
fn plan_start(path: &Path, positions: &[FilePosition]) -> StartPlan {
    struct Candidate {
        path: PathBuf,
        identity: FileIdentity,
        length: u64,
        start: Option<Start>,
    }
    let mut candidates: Vec<Candidate> = backups_oldest_first(path)
        .into_iter()
        .chain([path.to_owned()])
        .filter_map(|path| {
            let file = File::open(&path).ok()?;
            let identity = identity_with_head(&file).ok()?;
            let length = file.metadata().ok()?.len();
            Some(Candidate {
                path,
                identity,
                length,
                start: None,
            })
        })
        .collect();
    // Every checkpointed offset is past at least one line, so its first line is known.
    let intact = |c: &Candidate, saved: &FilePosition| {
        c.identity.device == saved.identity.device
            && c.identity.inode == saved.identity.inode
            && c.identity.head == saved.identity.head
            && c.length >= saved.offset
    };
    let mut lost = Vec::new();
    for saved in positions {
        match candidates
            .iter()
            .position(|c| c.start.is_none() && intact(c, saved))
        {
            Some(index) => candidates[index].start = Some(saved.into()),
            None => lost.push(saved),
        }
    }
    // Rewritten in place, or gone: its old content may survive in a copy (copytruncate). A
    // file on the same inode with another first line is a new file, read from its start.
    for saved in lost {
        if let Some(copy) = candidates.iter().rposition(|c| {
            c.start.is_none()
                && c.identity.inode != saved.identity.inode
                && c.identity.head == saved.identity.head
        }) {
            candidates[copy].start = Some(saved.into());
        }
    }
    // A backup still being written, or beginning like the live file, is a copy in progress
    // (copytruncate): the live file holds the same lines, and the copy is read from where the
    // live file was left if the truncation follows.
    let live_head = candidates
        .last()
        .filter(|c| c.path == path)
        .and_then(|c| c.identity.head.clone());
    let mut plan = StartPlan::default();
    for candidate in candidates {
        let copy_in_progress = candidate.path != path
            && (candidate.identity.head.is_none() || candidate.identity.head == live_head);
        if candidate.start.is_none() && copy_in_progress {
            continue;
        }
        let start = candidate.start.unwrap_or_default();
        if candidate.path == path {
            plan.live = Some(FilePosition {
                identity: candidate.identity,
                offset: start.offset,
                lines: start.lines,
            });
        } else {
            plan.backups.push((candidate.path, start));
        }
    }
    plan
}

/// `NAME.N ... NAME.1`, the ones that exist.
pub fn backups_oldest_first(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    crate::hermes::home::log_files_oldest_first(dir, name)
        .into_iter()
        .filter(|candidate| candidate != path)
        .collect()
}

fn identity_of(file: &File) -> io::Result<FileIdentity> {
    let metadata = file.metadata()?;
    Ok(FileIdentity {
        device: metadata.dev(),
        inode: metadata.ino(),
        head: None,
    })
}

fn identity_with_head(file: &File) -> io::Result<FileIdentity> {
    let mut identity = identity_of(file)?;
    identity.head = current_head(file)?;
    Ok(identity)
}

/// The hash of the file's first line as it is on disk now, if it has a complete one.
fn current_head(file: &File) -> io::Result<Option<String>> {
    let mut buffer = vec![0; HEAD_BYTES + 1];
    let mut filled = 0;
    while filled < buffer.len() {
        let count = file.read_at(&mut buffer[filled..], filled as u64)?;
        if count == 0 {
            break;
        }
        filled += count;
        if let Some(newline) = memchr::memchr(b'\n', &buffer[..filled]) {
            return Ok(Some(head_hash(&buffer[..newline])));
        }
    }
    // A first line longer than HEAD_BYTES is identified by its beginning.
    Ok((filled > HEAD_BYTES).then(|| head_hash(&buffer[..HEAD_BYTES])))
}

/// Whether `file` holds `expected` at `offset`.
fn bytes_match(file: &File, offset: u64, expected: &[u8]) -> io::Result<bool> {
    if expected.is_empty() {
        return Ok(true);
    }
    let mut actual = vec![0; expected.len()];
    let mut filled = 0;
    while filled < actual.len() {
        let count = file.read_at(&mut actual[filled..], offset + filled as u64)?;
        if count == 0 {
            return Ok(false);
        }
        filled += count;
    }
    Ok(actual == expected)
}

fn head_hash(line: &[u8]) -> String {
    crate::shared::secrets::short_hash(&line[..line.len().min(HEAD_BYTES)])
}
