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
//!   whose first line was still incomplete at the last checkpoint. A file that was empty when
//!   the tailer last looked at it (opened it, found it truncated, or read it) and was filled,
//!   copied, truncated and written again before the next poll has its copy delivered after
//!   the newer lines (in full, but out of order). A backup that begins like the file being
//!   read is its copy even when the truncation happens during a poll, after the live file was
//!   looked at: its lines are not delivered a second time;
//! - holds a partial last line until its newline arrives, and cuts a line longer than the limit
//!   (before the run of token characters the cut went through, as `secrets::cut_line` does);
//! - resumes from checkpoints: a file found again (live or as a backup) continues at its
//!   position, files newer than it are read from their start, older ones are skipped;
//! - never opens for reading what is not a regular file after following symlinks (a FIFO, a
//!   device such as `/dev/zero`, a directory, a socket): it looks at the type before opening,
//!   opens with `O_NONBLOCK` (a FIFO swapped in meanwhile does not block the open) and checks
//!   the opened file again. Such a file is skipped with one `NotRegular` note per file (device,
//!   inode and kind), not one per poll, and a regular file found at that path later is
//!   followed as usual.
//!
//! Reading is budgeted, so a backlog never has to fit in memory and the caller gets control
//! back often (to checkpoint, to see a signal). One poll reads about `budget` bytes
//! ([`Tailer::set_budget`], [`DEFAULT_BUDGET`] unless set) and delivers the complete lines
//! among them; the line that crosses the budget is delivered whole, so a poll may exceed the
//! budget by about one line (at most `max_line` bytes once cut), and no line is ever split.
//! `Poll::more` says the poll stopped early: poll again. A poll is a fixed sequence of steps:
//! 1. read the renamed files, then let go of those quiet for the grace period;
//! 2. check the live file for a rewrite (and read the rest of the old content from its copy),
//!    and read it;
//! 3. read the backups nobody has read;
//! 4. check whether the path still names the live file (if not, read the old one to its end
//!    and open the new one), and read the live file.
//!
//! Each check relies only on reads, earlier in the same poll, that went to the end of their
//! file. So when the budget runs out, the poll stops right after that read, before any further
//! check, and the next poll runs the sequence again from its start, where the steps already
//! done find nothing new: no conclusion that needs a file read to its end (a renamed file has
//! finished draining, a backup is unseen, the file at the path is another one) is drawn from a
//! file read part of the way; that a file shorter than the read position was truncated holds
//! however far it was read. Two things carry over a stop, so lines keep the order a poll
//! without a budget gives them: the new file found at the path after a rotation is opened at
//! once (and read after the old one), and a file restarted after a rewrite is read only once
//! the backups of step 3 have been (what it holds now is newer than a copy taken meanwhile).
//! Positions are exact after every poll, complete or not: a tailer restarted from
//! `positions()` goes on at the first line not delivered, and delivers every line once. One
//! poll holds O(budget + `max_line`) bytes, whatever the backlog. (A budget that runs out
//! inside a line longer than one read stops there, holding the partial line; a restart reads
//! that part again.)
//!
//! It knows nothing of rules, Hermes or metrics, and never sleeps: the caller steps it with
//! `poll(now)` whenever a file-system event or its timer says something may have changed, and
//! at once again while `Poll::more` is set.

use std::fs::{File, FileType, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::shared::secrets::trim_cut;

/// How much of the first line identifies a file.
const HEAD_BYTES: usize = 4096;
const READ_CHUNK: usize = 256 * 1024;
/// The smallest read, however little of the budget is left.
const MIN_READ: usize = 4096;
/// How many bytes of lines a poll delivers at most (plus the one line that crosses it), unless
/// [`Tailer::set_budget`] says otherwise.
pub const DEFAULT_BUDGET: u64 = 1 << 20;

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
    /// `path` (the live file or a backup) is not a regular file after following symlinks: a
    /// FIFO, a device, a directory, a socket. It is neither read nor opened in a way that could
    /// block; noted once per file (device, inode, kind).
    NotRegular {
        path: PathBuf,
        kind: &'static str,
    },
}

#[derive(Debug, Default)]
pub struct Poll {
    pub lines: Vec<TailedLine>,
    pub notes: Vec<TailNote>,
    /// The budget ran out before the poll was done: more may be waiting, and the checks after
    /// the read that used it up were not made. Poll again (after a checkpoint, if wanted);
    /// the next poll may also find nothing.
    pub more: bool,
}

/// Whether a read went to the end of its file or stopped because the poll's budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
enum Read {
    ToEnd,
    OutOfBudget,
}

/// What is left of one poll's budget, in bytes read.
#[derive(Debug)]
struct Budget {
    left: u64,
}

impl Budget {
    /// Spends `bytes`; returns whether the budget is used up.
    fn spend(&mut self, bytes: u64) -> bool {
        self.left = self.left.saturating_sub(bytes);
        self.left == 0
    }

    /// How much to read next: what is left, within sensible bounds.
    fn next_read(&self) -> usize {
        usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .clamp(MIN_READ, READ_CHUNK)
    }
}

/// A file that is not regular, as noted: a note is given when this changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NotRegular {
    device: u64,
    inode: u64,
    kind: &'static str,
}

/// What [`open_regular`] found at a path.
enum Opened {
    File(File),
    NotRegular(NotRegular),
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
    /// Restarted after a rewrite: what it holds now is newer than the backups nobody has read
    /// yet (a copy taken since), so it is read only once they have been (a poll that stops
    /// early in between leaves it set).
    after_backups: bool,
}

impl Reader {
    fn new(file: File, start: Start, now: Instant) -> io::Result<Reader> {
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
            after_backups: false,
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

    /// Reads up to the end of the file, delivering complete lines, or until the budget runs
    /// out: then it stops just past the line that used it up (or, inside a line longer than a
    /// read, at the end of the read, the partial line held), so what is left is read next time.
    fn read_on(
        &mut self,
        max_line: usize,
        now: Instant,
        budget: &mut Budget,
        lines: &mut Vec<TailedLine>,
    ) -> io::Result<Read> {
        // With nothing left (a partial line at the end of a file used it up), a line that
        // arrived since is still delivered: the poll then stops after it.
        let mut buffer = vec![0; budget.next_read()];
        loop {
            let want = budget.next_read().min(buffer.len());
            let count = self.file.read_at(&mut buffer[..want], self.read)?;
            if count == 0 {
                return Ok(Read::ToEnd);
            }
            self.last_growth = now;
            let chunk = &buffer[..count];
            // Bytes before this offset are paid for.
            let mut paid = self.read;
            let mut start = 0;
            for newline in memchr::memchr_iter(b'\n', chunk) {
                self.take(&chunk[start..newline], max_line);
                let mut bytes = std::mem::take(&mut self.partial);
                let cut = std::mem::take(&mut self.partial_cut);
                if cut {
                    // No piece of a token is delivered (see `secrets::cut_line`).
                    bytes.truncate(trim_cut(&bytes).len());
                }
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
                if budget.spend(end - paid) {
                    // The rest of the chunk is read again next time.
                    self.read = end;
                    return Ok(Read::OutOfBudget);
                }
                paid = end;
            }
            self.take(&chunk[start..], max_line);
            self.read += count as u64;
            // Inside a line longer than the read, with more of it waiting (a short read is the
            // end of the file: the next one says so). A line begun in this read is finished
            // first, in the next.
            if budget.spend(self.read - paid) && count == want && start == 0 {
                return Ok(Read::OutOfBudget);
            }
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
    /// Bytes one poll reads at most (plus the line that crosses it).
    budget: u64,
    current: Option<Reader>,
    /// Renamed-away files still being read for late writes.
    draining: Vec<Reader>,
    /// The checkpoint to start from; consumed by the first poll.
    resume_from: Option<Vec<FilePosition>>,
    /// Where the live file continues, when the checkpoint said so; consumed when it is opened.
    live_start: Option<FilePosition>,
    /// The backups that existed at the last poll, with their length then.
    seen_backups: Vec<FilePosition>,
    /// The files that are not regular, as of the last complete poll (each was noted once).
    not_regular: Vec<NotRegular>,
    /// Those found by the poll under way.
    not_regular_now: Vec<NotRegular>,
    /// An error met after a poll had read lines: those lines were delivered, the error is
    /// the next poll's answer.
    deferred: Option<io::Error>,
}

impl Tailer {
    /// A tailer that starts from the checkpointed `positions` (empty: from the beginning of
    /// every backup and the live file), reading at most [`DEFAULT_BUDGET`] bytes a poll.
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
            budget: DEFAULT_BUDGET,
            current: None,
            draining: Vec::new(),
            resume_from: Some(positions.to_vec()),
            live_start: None,
            seen_backups: Vec::new(),
            not_regular: Vec::new(),
            not_regular_now: Vec::new(),
            deferred: None,
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

    /// How many bytes one poll reads at most, from the next poll on: it delivers the lines
    /// read, and the line that crosses the budget whole, so at most `max_bytes` plus one line
    /// (`u64::MAX`: everything there is, in one poll). Zero counts as one: every poll makes
    /// progress. The default is [`DEFAULT_BUDGET`].
    pub fn set_budget(&mut self, max_bytes: u64) {
        self.budget = max_bytes.max(1);
    }

    /// How many bytes the files being read hold beyond what was delivered (the live file and
    /// the renamed ones still drained), as of now; 0 before the first poll.
    pub fn lag_bytes(&self) -> u64 {
        self.current
            .iter()
            .chain(&self.draining)
            .map(|reader| {
                let length = reader.file.metadata().map_or(0, |m| m.len());
                length.saturating_sub(reader.delivered)
            })
            .sum()
    }

    /// Where every file stands, for a checkpoint (before the first poll: the one it started from).
    /// Exact after any poll, one that stopped early included.
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

    /// Every backup there is now, at its current length; as in `read_unseen_backups`, not
    /// those without a first line yet (an identity without a head would claim any file given
    /// its inode later, and a poll that stops early keeps this list until the next one).
    fn backup_positions(&self) -> Vec<FilePosition> {
        backups_oldest_first(&self.path)
            .iter()
            .filter_map(|backup| {
                let file = open_if_regular(backup)?;
                Some(FilePosition {
                    identity: identity_with_head(&file).ok()?,
                    offset: file.metadata().ok()?.len(),
                    lines: 0,
                })
            })
            .filter(|position| position.identity.head.is_some())
            .collect()
    }

    /// Reads whatever is new, up to the budget (see the module documentation: `Poll::more`
    /// says it stopped early, and the next poll goes on exactly there). `now` only decides
    /// when a drained file may be let go.
    /// An error is returned only once the lines read before it were delivered: a poll that
    /// read lines and then failed delivers them (with `more`), and the next poll returns the
    /// error; the one after goes on.
    pub fn poll(&mut self, now: Instant) -> io::Result<Poll> {
        if let Some(error) = self.deferred.take() {
            return Err(error);
        }
        let mut poll = Poll::default();
        let mut budget = Budget {
            left: self.budget.max(1),
        };
        let result = self.steps(now, &mut budget, &mut poll);
        let found = std::mem::take(&mut self.not_regular_now);
        if matches!(result, Ok(Read::ToEnd)) {
            // Every path was looked at: what is no longer there is forgotten.
            self.not_regular = found;
        } else {
            for file in found {
                if !self.not_regular.contains(&file) {
                    self.not_regular.push(file);
                }
            }
        }
        poll.more = match result {
            Ok(read) => read == Read::OutOfBudget,
            Err(error) if poll.lines.is_empty() => return Err(error),
            // Their positions have moved on: dropping them would lose them.
            Err(error) => {
                self.deferred = Some(error);
                true
            }
        };
        Ok(poll)
    }

    /// The steps of one poll, in order; stops right after a read that used up the budget, so
    /// no later check looks at a file that was not read to its end.
    fn steps(&mut self, now: Instant, budget: &mut Budget, poll: &mut Poll) -> io::Result<Read> {
        let max_line = self.max_line;
        if let Some(positions) = self.resume_from.take() {
            let plan = plan_start(&self.path, &positions);
            self.live_start = plan.live;
            // Read below, with the other renamed files, as far as the budget goes.
            for (path, start) in plan.backups {
                if let Some(file) = open_if_regular(&path)
                    && let Ok(reader) = Reader::new(file, start, now)
                {
                    self.draining.push(reader);
                }
            }
            self.seen_backups = self.backup_positions();
            // Opened now, read after the backups: a restart position is never left to claim,
            // poll after poll while a backlog is read, a file nobody is reading.
            self.open_live(now, poll)?;
        }
        for reader in &mut self.draining {
            if reader.read_on(max_line, now, budget, &mut poll.lines)? == Read::OutOfBudget {
                return Ok(Read::OutOfBudget);
            }
        }
        // Every renamed file was just read to its end.
        let grace = self.drain_grace;
        self.draining
            .retain(|reader| now.duration_since(reader.last_growth) < grace);

        // Oldest content first: what the current file still had, then backups nobody has read,
        // then what is newer.
        if let Some(mut reader) = self.current.take() {
            let read = self.read_current(&mut reader, now, budget, poll);
            self.current = Some(reader);
            if read? == Read::OutOfBudget {
                return Ok(Read::OutOfBudget);
            }
        }
        if self.read_unseen_backups(now, budget, poll)? == Read::OutOfBudget {
            return Ok(Read::OutOfBudget);
        }
        let metadata = match std::fs::metadata(&self.path) {
            Ok(metadata) => Some(metadata),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(error),
        };
        match (self.current.take(), metadata) {
            (Some(reader), Some(metadata))
                if metadata.dev() == reader.identity.device
                    && metadata.ino() == reader.identity.inode =>
            {
                self.current = Some(reader);
            }
            (Some(mut old), metadata) => {
                let read = old.read_on(max_line, now, budget, &mut poll.lines);
                old.last_growth = now;
                self.draining.push(old);
                poll.notes.push(if metadata.is_some() {
                    TailNote::Rotated
                } else {
                    TailNote::Missing
                });
                // The new file is opened (not read) even when the old one is not done: the
                // next poll then knows its first line, and reads it after the old one.
                let read = read?;
                if metadata.is_some() {
                    self.open_live(now, poll)?;
                }
                if read == Read::OutOfBudget {
                    return Ok(Read::OutOfBudget);
                }
            }
            (None, Some(_)) => self.open_live(now, poll)?,
            (None, None) => {}
        }
        match &mut self.current {
            Some(reader) => {
                // The backups have been read.
                reader.after_backups = false;
                reader.read_on(max_line, now, budget, &mut poll.lines)
            }
            None => Ok(Read::ToEnd),
        }
    }

    /// Reads on in the live file, or, when it was rewritten, from its copy.
    fn read_current(
        &mut self,
        reader: &mut Reader,
        now: Instant,
        budget: &mut Budget,
        poll: &mut Poll,
    ) -> io::Result<Read> {
        match self.notice_rewrite(reader, now, budget, poll)? {
            Some(read) => Ok(read),
            // Read again from its start, after the backups.
            None if reader.after_backups => Ok(Read::ToEnd),
            None => reader.read_on(self.max_line, now, budget, &mut poll.lines),
        }
    }

    /// A file truncated (or rewritten in place) since the last poll is read again from its
    /// start, after the rest of its old content is read from a copy, if there is one.
    /// Returns how reading the copy went when it was (`ToEnd` when there is none).
    fn notice_rewrite(
        &mut self,
        reader: &mut Reader,
        now: Instant,
        budget: &mut Budget,
        poll: &mut Poll,
    ) -> io::Result<Option<Read>> {
        let length = reader.file.metadata()?.len();
        let note = if length < reader.read || !reader.holds_what_is_on_disk()? {
            TailNote::Truncated
        } else if reader.identity.head.is_some()
            && current_head(&reader.file)? != reader.identity.head
        {
            TailNote::Recreated
        } else {
            return Ok(None);
        };
        // As for a file just opened: its first line as it is now. A poll that stops in the copy
        // leaves the new content unread, and a copytruncate of it before the next poll is then
        // still seen (its first line changes) and read from its copy, in order.
        let head = current_head(&reader.file)?;
        let copy = self.find_copy(reader, now)?;
        reader.restart_at_zero();
        reader.identity.head = head;
        reader.after_backups = true;
        let Some((backup, mut copy)) = copy else {
            poll.notes.push(note);
            return Ok(Some(Read::ToEnd));
        };
        let read = copy.read_on(self.max_line, now, budget, &mut poll.lines);
        // Kept with the drained files, so a checkpoint records how far the copy was read, and
        // the next poll reads on in it when the budget ran out.
        self.draining.push(copy);
        poll.notes.push(TailNote::ReadRestFromCopy { backup });
        poll.notes.push(note);
        read.map(Some)
    }

    fn open_live(&mut self, now: Instant, poll: &mut Poll) -> io::Result<()> {
        let file = match open_regular(&self.path) {
            Ok(Opened::File(file)) => file,
            Ok(Opened::NotRegular(found)) => {
                let path = self.path.clone();
                self.note_not_regular(path, found, poll);
                return Ok(());
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        let mut reader = Reader::new(file, Start::default(), now)?;
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
        self.current = Some(reader);
        Ok(())
    }

    /// A file that is not regular is noted the first time it is found (per device, inode and
    /// kind), not at every poll.
    fn note_not_regular(&mut self, path: PathBuf, found: NotRegular, poll: &mut Poll) {
        if self.not_regular_now.contains(&found) {
            return;
        }
        self.not_regular_now.push(found);
        if !self.not_regular.contains(&found) {
            poll.notes.push(TailNote::NotRegular {
                path,
                kind: found.kind,
            });
        }
    }

    /// After a truncation: the backup that is a copy of the old content (copytruncate), if
    /// there is one, with a reader to read on from where `old` stands.
    fn find_copy(&self, old: &Reader, now: Instant) -> io::Result<Option<(PathBuf, Reader)>> {
        for backup in backups_oldest_first(&self.path).into_iter().rev() {
            let Some(file) = open_if_regular(&backup) else {
                continue;
            };
            if !old.is_copied_to(&file)? {
                continue;
            }
            let copy = Reader {
                identity: identity_with_head(&file)?,
                file,
                delivered: old.delivered,
                lines: old.lines,
                read: old.read,
                partial: old.partial.clone(),
                partial_cut: old.partial_cut,
                first_line: old.first_line.clone(),
                last_growth: now,
                after_backups: false,
            };
            return Ok(Some((backup, copy)));
        }
        Ok(None)
    }

    /// Reads backups that appeared since the last poll and hold content nobody has read: a
    /// file created and rotated away between two polls, or a copy taken after a truncation.
    /// A backup that begins like the live file is a copy of it (copytruncate about to
    /// truncate) and is left for `notice_rewrite`.
    fn read_unseen_backups(
        &mut self,
        now: Instant,
        budget: &mut Budget,
        poll: &mut Poll,
    ) -> io::Result<Read> {
        let tracked = self.tracked();
        // The live file's first line as it is on disk now: the reader may just have been
        // restarted after a truncation and not know it yet.
        let live_head = match &self.current {
            Some(reader) => current_head(&reader.file)?,
            None => None,
        };
        // And as it was when the reader last read it: logrotate may have truncated the live file
        // since step 2 of this poll looked at it, and a backup that begins like the file being
        // read is its copy (copytruncate), whose unread rest the next poll's truncation check
        // reads. Read here whole, it would deliver every line again.
        let reading_head = self
            .current
            .as_ref()
            .and_then(|reader| reader.identity.head.clone());
        let mut seen = Vec::new();
        for backup in backups_oldest_first(&self.path) {
            let file = match open_regular(&backup) {
                Ok(Opened::File(file)) => file,
                Ok(Opened::NotRegular(found)) => {
                    self.note_not_regular(backup, found, poll);
                    continue;
                }
                Err(_) => continue,
            };
            let Ok(mut reader) = Reader::new(file, Start::default(), now) else {
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
                || (identity.head.is_some()
                    && (identity.head == live_head || identity.head == reading_head));
            let length = reader.file.metadata()?.len();
            seen.push(FilePosition {
                identity,
                offset: length,
                lines: 0,
            });
            if !known {
                let read = reader.read_on(self.max_line, now, budget, &mut poll.lines);
                self.draining.push(reader);
                if read? == Read::OutOfBudget {
                    // The backups not looked at yet keep what was known of them.
                    let rest: Vec<FilePosition> = self
                        .seen_backups
                        .iter()
                        .filter(|s| !seen.iter().any(|n| n.identity.same_file(&s.identity)))
                        .cloned()
                        .collect();
                    seen.extend(rest);
                    self.seen_backups = seen;
                    return Ok(Read::OutOfBudget);
                }
            }
        }
        self.seen_backups = seen;
        Ok(Read::ToEnd)
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
            let file = open_if_regular(&path)?;
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

/// Opens `path` for reading if it is a regular file (after following symlinks). Anything else
/// is never read, nor opened in a way that could block: its type is looked at before opening
/// (opening some devices does something), the open does not wait (`O_NONBLOCK`: a FIFO swapped
/// in meanwhile opens at once instead of waiting for a writer) and the opened file is checked
/// again. Reads of a regular file never wait, whatever `O_NONBLOCK` says.
fn open_regular(path: &Path) -> io::Result<Opened> {
    let not_regular = |metadata: &std::fs::Metadata| {
        kind_of(metadata.file_type()).map(|kind| NotRegular {
            device: metadata.dev(),
            inode: metadata.ino(),
            kind,
        })
    };
    if let Some(found) = not_regular(&std::fs::metadata(path)?) {
        return Ok(Opened::NotRegular(found));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    match not_regular(&file.metadata()?) {
        Some(found) => Ok(Opened::NotRegular(found)),
        None => Ok(Opened::File(file)),
    }
}

/// [`open_regular`], for a path where anything but a regular file is passed over silently.
fn open_if_regular(path: &Path) -> Option<File> {
    match open_regular(path) {
        Ok(Opened::File(file)) => Some(file),
        _ => None,
    }
}

/// What a file that is not regular is, for the note; `None` for a regular file.
fn kind_of(file_type: FileType) -> Option<&'static str> {
    if file_type.is_file() {
        None
    } else if file_type.is_dir() {
        Some("directory")
    } else if file_type.is_fifo() {
        Some("FIFO")
    } else if file_type.is_char_device() {
        Some("character device")
    } else if file_type.is_block_device() {
        Some("block device")
    } else if file_type.is_socket() {
        Some("socket")
    } else {
        Some("not a regular file")
    }
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::mpsc;

    use super::*;

    /// Polls on another thread, so a poll that blocks fails the test instead of hanging it.
    fn poll_within(mut tailer: Tailer, limit: Duration) -> (Tailer, Poll) {
        let (send, receive) = mpsc::channel();
        std::thread::spawn(move || {
            let poll = tailer.poll(Instant::now());
            let _ = send.send((tailer, poll));
        });
        let (tailer, poll) = receive
            .recv_timeout(limit)
            .expect("the poll did not return in time");
        (tailer, poll.unwrap())
    }

    fn not_regular(poll: &Poll) -> Vec<(String, &'static str)> {
        poll.notes
            .iter()
            .filter_map(|note| match note {
                TailNote::NotRegular { path, kind } => Some((
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    *kind,
                )),
                _ => None,
            })
            .collect()
    }

    fn texts(poll: &Poll) -> Vec<String> {
        poll.lines
            .iter()
            .map(|line| String::from_utf8_lossy(&line.bytes).into_owned())
            .collect()
    }

    const LIMIT: Duration = Duration::from_secs(10);

    #[test]
    fn a_fifo_at_the_path_does_not_block_is_noted_once_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errors.log");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "mkfifo");
        let tailer = Tailer::new(&path, &[], 1024, Duration::from_secs(60));
        let (tailer, first) = poll_within(tailer, LIMIT);
        assert_eq!(not_regular(&first), [("errors.log".to_owned(), "FIFO")]);
        assert!(first.lines.is_empty());
        // A writer on the FIFO (read-write: opening it does not wait for a reader) changes
        // nothing: it is not read, and not noted again.
        let mut writer = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        writer.write_all(b"not for us\n").unwrap();
        let (tailer, second) = poll_within(tailer, LIMIT);
        assert!(second.notes.is_empty(), "{:?}", second.notes);
        assert!(second.lines.is_empty());
        // A regular file there later is followed.
        drop(writer);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "one\n").unwrap();
        let (_, third) = poll_within(tailer, LIMIT);
        assert_eq!(texts(&third), ["one"]);
        assert!(not_regular(&third).is_empty());
    }

    #[test]
    fn devices_symlinked_as_the_log_and_a_backup_are_noted_once_and_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errors.log");
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        std::os::unix::fs::symlink("/dev/urandom", dir.path().join("errors.log.1")).unwrap();
        let tailer = Tailer::new(&path, &[], 1024, Duration::from_secs(60));
        let started = Instant::now();
        let (tailer, first) = poll_within(tailer, LIMIT);
        let mut noted = not_regular(&first);
        noted.sort();
        assert_eq!(
            noted,
            [
                ("errors.log".to_owned(), "character device"),
                ("errors.log.1".to_owned(), "character device"),
            ]
        );
        assert!(first.lines.is_empty());
        assert!(!first.more);
        let (mut tailer, second) = poll_within(tailer, LIMIT);
        assert!(second.notes.is_empty(), "{:?}", second.notes);
        assert!(second.lines.is_empty());
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(tailer.positions().is_empty());
        // Another kind at the same path is noted again.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let third = tailer.poll(Instant::now()).unwrap();
        assert_eq!(
            not_regular(&third),
            [("errors.log".to_owned(), "directory")]
        );
    }

    #[test]
    fn a_directory_as_a_backup_is_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errors.log");
        std::fs::create_dir(dir.path().join("errors.log.1")).unwrap();
        std::fs::write(&path, "one\n").unwrap();
        let mut tailer = Tailer::new(&path, &[], 1024, Duration::from_secs(60));
        let first = tailer.poll(Instant::now()).unwrap();
        assert_eq!(texts(&first), ["one"]);
        assert_eq!(
            not_regular(&first),
            [("errors.log.1".to_owned(), "directory")]
        );
        let restarted = Tailer::new(&path, &tailer.positions(), 1024, Duration::from_secs(60));
        let (_, again) = poll_within(restarted, LIMIT);
        assert!(again.lines.is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn files_are_opened_without_waiting() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errors.log");
        std::fs::write(&path, "one\n").unwrap();
        let Opened::File(file) = open_regular(&path).unwrap() else {
            panic!("a regular file");
        };
        let fdinfo =
            std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd())).unwrap();
        let flags = fdinfo
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .unwrap();
        let flags = i32::from_str_radix(flags.trim(), 8).unwrap();
        assert_ne!(flags & libc::O_NONBLOCK, 0, "{fdinfo}");
    }

    /// `count` lines of different lengths, numbered from 1.
    fn numbered_lines(count: u64) -> String {
        (1..=count)
            .map(|n| format!("{n:06} {}\n", "x".repeat((n % 97) as usize)))
            .collect()
    }

    fn number(line: &TailedLine) -> u64 {
        std::str::from_utf8(&line.bytes[..6])
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn a_budget_delivers_a_big_file_in_batches_with_exact_positions() {
        const LINES: u64 = 20_000;
        const BUDGET: u64 = 4096;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errors.log");
        let content = numbered_lines(LINES);
        std::fs::write(&path, &content).unwrap();
        let longest = content.lines().map(|l| l.len() as u64 + 1).max().unwrap();
        let new = |positions: &[FilePosition]| {
            let mut tailer = Tailer::new(&path, positions, 1 << 20, Duration::from_secs(60));
            tailer.set_budget(BUDGET);
            tailer
        };
        let mut tailer = new(&[]);
        let mut delivered = Vec::new();
        let mut batches = 0;
        loop {
            let poll = tailer.poll(Instant::now()).unwrap();
            batches += 1;
            let sizes: Vec<u64> = poll
                .lines
                .iter()
                .map(|l| l.bytes.len() as u64 + 1)
                .collect();
            let total: u64 = sizes.iter().sum();
            // Only the last line crosses the budget.
            assert!(total - sizes.last().unwrap_or(&0) < BUDGET, "{total} bytes");
            assert!(total < BUDGET + longest);
            for line in &poll.lines {
                assert_eq!(number(line), line.number);
            }
            delivered.extend(poll.lines.iter().map(number));
            let positions = tailer.positions();
            if !poll.more {
                assert_eq!(positions[0].offset, content.len() as u64);
                break;
            }
            assert_eq!(positions.len(), 1);
            assert_eq!(positions[0].lines, delivered.len() as u64);
            let end = poll.lines.last().unwrap().end;
            assert_eq!(positions[0].offset, end);
            // A restart from the checkpoint goes on at the next line; every third batch goes
            // on with the restarted tailer.
            let mut restarted = new(&positions);
            if batches % 3 == 0 {
                tailer = restarted;
            } else {
                let next = restarted.poll(Instant::now()).unwrap();
                assert_eq!(number(&next.lines[0]), delivered.len() as u64 + 1);
                assert_eq!(next.lines[0].number, delivered.len() as u64 + 1);
            }
        }
        assert_eq!(delivered, (1..=LINES).collect::<Vec<_>>());
        // Every batch but the last read the budget, and at most one line more.
        let length = content.len() as u64;
        assert!(
            (length / (BUDGET + longest)..=length / BUDGET + 1).contains(&batches),
            "{batches} batches"
        );
    }

    #[test]
    fn a_renamed_file_read_in_batches_is_drained_to_its_end_whatever_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errors.log");
        std::fs::write(&path, numbered_lines(2000)).unwrap();
        let grace = Duration::from_secs(5);
        let mut tailer = Tailer::new(&path, &[], 1 << 20, grace);
        tailer.set_budget(1000);
        let start = Instant::now();
        let mut delivered: Vec<u64> = tailer
            .poll(start)
            .unwrap()
            .lines
            .iter()
            .map(number)
            .collect();
        std::fs::rename(&path, dir.path().join("errors.log.1")).unwrap();
        std::fs::write(&path, "002001 new\n").unwrap();
        // Each poll a minute after the last: far past the grace period.
        for minute in 1.. {
            let poll = tailer
                .poll(start + Duration::from_secs(60 * minute))
                .unwrap();
            delivered.extend(poll.lines.iter().map(number));
            if !poll.more {
                break;
            }
        }
        assert_eq!(delivered, (1..=2001).collect::<Vec<_>>());
    }

    #[test]
    fn a_line_longer_than_the_budget_is_delivered_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errors.log");
        let long = "y".repeat(600_000);
        std::fs::write(&path, format!("000001 {long}\n000002 short\n")).unwrap();
        let mut tailer = Tailer::new(&path, &[], 1 << 20, Duration::from_secs(60));
        tailer.set_budget(100);
        let mut delivered = Vec::new();
        let mut polls = 0;
        loop {
            polls += 1;
            assert!(polls < 1000);
            let poll = tailer.poll(Instant::now()).unwrap();
            delivered.extend(poll.lines.iter().map(|l| (number(l), l.bytes.len())));
            if !poll.more {
                break;
            }
        }
        assert_eq!(delivered, [(1, 600_007), (2, 12)]);
        // Each poll read about the smallest read, not the whole line.
        assert!(polls > 100, "{polls} polls");
    }
}
