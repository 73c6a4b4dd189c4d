//! The tailer against a model (as Vector tests its file source): random sequences of appends,
//! partial writes, rename rotations with late writes to the renamed file, copytruncate,
//! truncation, delete and re-create, and restarts from the checkpoint; and the same with a
//! random read budget (small ones too, so a poll stops anywhere: in a backlog, in the middle
//! of a rotation, in a copy), single batches between the changes on disk, and restarts from
//! the checkpoint between the batches of a poll.
//!
//! Properties: no line is delivered twice; the lines of one file arrive in the order they were
//! written; every line that was on disk (in the live file or a backup) when the tailer was
//! polled (batch after batch until nothing more was waiting) is delivered; no batch delivers
//! much more than its budget. Lines written and destroyed between two polls (truncated or
//! deleted before anyone could read them) may be lost: no reader could have seen them. The
//! remaining copytruncate window of the tailer's documentation is left out of the generated
//! sequences.

use std::collections::{BTreeMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hermes_warden::follow::tailer::{FilePosition, Tailer};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    /// A line written in two parts with a poll between them.
    SplitAppend,
    /// Polls until nothing more is waiting.
    Poll,
    /// One poll, which may stop early and leave more for later.
    Batch,
    Rotate,
    LateWrite,
    CopyTruncate,
    Truncate,
    DeleteAndRecreate,
    Restart,
}

fn op(batches: bool) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..4).prop_map(Op::Append),
        2 => Just(Op::SplitAppend),
        5 => Just(Op::Poll),
        if batches { 4 } else { 0 } => Just(Op::Batch),
        2 => Just(Op::Rotate),
        2 => Just(Op::LateWrite),
        1 => Just(Op::CopyTruncate),
        1 => Just(Op::Truncate),
        1 => Just(Op::DeleteAndRecreate),
        2 => Just(Op::Restart),
    ]
}

/// Bytes a poll may read: mostly less than a line or a few lines, so polls stop everywhere.
fn budget() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 1u64..200,
        1 => 200u64..2000,
        1 => Just(u64::MAX),
    ]
}

/// The longest line the model writes, newline included.
const LONGEST_LINE: u64 = 80;

/// What is on disk: per name, the lines it holds, each tagged (file lineage, line number).
#[derive(Default)]
struct Disk {
    files: BTreeMap<String, Vec<(u32, u64)>>,
    live_lineage: u32,
    next_lineage: u32,
    /// A rename rotation made `.1` a file a late Hermes process may still write to.
    late_writes_allowed: bool,
    /// The live file had no line at the last poll (see the tailer's copytruncate window).
    live_empty_at_last_poll: bool,
}

const BACKUPS: u32 = 2;

struct World {
    dir: tempfile::TempDir,
    disk: Disk,
    next_line: u64,
    tailer: Tailer,
    budget: u64,
    /// Whether to restart from the checkpoint after a poll that stopped early, in turn.
    restarts_between_batches: Vec<bool>,
    restart_turn: usize,
    clock: Instant,
    delivered: Vec<(u32, u64)>,
    must_deliver: HashSet<(u32, u64)>,
}

impl World {
    fn new(budget: u64, restarts_between_batches: Vec<bool>) -> World {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("errors.log");
        World {
            tailer: Self::tailer(&live, &[], budget),
            budget,
            restarts_between_batches,
            restart_turn: 0,
            dir,
            disk: Disk::default(),
            next_line: 0,
            clock: Instant::now(),
            delivered: Vec::new(),
            must_deliver: HashSet::new(),
        }
    }

    fn tailer(live: &Path, positions: &[FilePosition], budget: u64) -> Tailer {
        let mut tailer = Tailer::new(live, positions, 1 << 20, Duration::from_secs(3600));
        tailer.set_budget(budget);
        tailer
    }

    fn restart(&mut self) {
        let positions: Vec<FilePosition> = self.tailer.positions();
        let live = self.path("errors.log");
        self.tailer = Self::tailer(&live, &positions, self.budget);
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn line_text(lineage: u32, number: u64) -> String {
        // Unique from the first byte, as Hermes's millisecond timestamps nearly always are.
        format!(
            "{number:06} 2026-05-26 10:00:00,000 WARNING root: lineage {lineage} line {number}\n"
        )
    }

    fn append_to(&mut self, name: &str, text: &[u8]) {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))
            .unwrap();
        file.write_all(text).unwrap();
    }

    fn write_line(&mut self, name: &str, split: bool) {
        let lineage = if name == "errors.log" {
            if !self.disk.files.contains_key(name) {
                self.disk.next_lineage += 1;
                self.disk.live_lineage = self.disk.next_lineage;
            }
            self.disk.live_lineage
        } else {
            self.disk.files[name]
                .last()
                .map_or(0, |(lineage, _)| *lineage)
        };
        self.next_line += 1;
        let text = Self::line_text(lineage, self.next_line);
        // A file is only split after its first line: a file without one has no identity to
        // recognise a copy by (the documented copytruncate window).
        let has_first_line = self
            .disk
            .files
            .get(name)
            .is_some_and(|lines| !lines.is_empty());
        if split && has_first_line {
            let (head, tail) = text.as_bytes().split_at(text.len() / 2);
            self.append_to(name, head);
            self.poll();
            self.append_to(name, tail);
        } else {
            self.append_to(name, text.as_bytes());
        }
        self.disk
            .files
            .entry(name.to_owned())
            .or_default()
            .push((lineage, self.next_line));
    }

    /// Hermes's rotation: drop the oldest backup, shift the others, rename the live file.
    fn shift_backups(&mut self) {
        let oldest = format!("errors.log.{BACKUPS}");
        let _ = std::fs::remove_file(self.path(&oldest));
        self.disk.files.remove(&oldest);
        for number in (1..BACKUPS).rev() {
            let from = format!("errors.log.{number}");
            let to = format!("errors.log.{}", number + 1);
            if std::fs::rename(self.path(&from), self.path(&to)).is_ok()
                && let Some(lines) = self.disk.files.remove(&from)
            {
                self.disk.files.insert(to, lines);
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Append(count) => {
                for _ in 0..*count {
                    self.write_line("errors.log", false);
                }
            }
            Op::SplitAppend => self.write_line("errors.log", true),
            Op::Poll => self.poll(),
            Op::Batch => {
                self.batch();
            }
            Op::Rotate => {
                if !self.disk.files.contains_key("errors.log") {
                    return;
                }
                self.shift_backups();
                std::fs::rename(self.path("errors.log"), self.path("errors.log.1")).unwrap();
                let lines = self.disk.files.remove("errors.log").unwrap();
                self.disk.files.insert("errors.log.1".into(), lines);
                self.disk.late_writes_allowed = true;
            }
            Op::LateWrite => {
                if self.disk.late_writes_allowed
                    && self
                        .disk
                        .files
                        .get("errors.log.1")
                        .is_some_and(|l| !l.is_empty())
                {
                    self.write_line("errors.log.1", false);
                }
            }
            Op::CopyTruncate => {
                if !self.disk.files.contains_key("errors.log") || self.disk.live_empty_at_last_poll
                {
                    return;
                }
                self.shift_backups();
                std::fs::copy(self.path("errors.log"), self.path("errors.log.1")).unwrap();
                OpenOptions::new()
                    .write(true)
                    .open(self.path("errors.log"))
                    .unwrap()
                    .set_len(0)
                    .unwrap();
                let lines = std::mem::take(self.disk.files.get_mut("errors.log").unwrap());
                self.disk.files.insert("errors.log.1".into(), lines);
                self.disk.late_writes_allowed = false;
            }
            Op::Truncate => {
                if let Some(lines) = self.disk.files.get_mut("errors.log") {
                    OpenOptions::new()
                        .write(true)
                        .open(self.dir.path().join("errors.log"))
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                    lines.clear();
                }
            }
            Op::DeleteAndRecreate => {
                if self.disk.files.remove("errors.log").is_some() {
                    std::fs::remove_file(self.path("errors.log")).unwrap();
                }
            }
            Op::Restart => self.restart(),
        }
    }

    /// Polls until nothing more is waiting, restarting from the checkpoint between batches
    /// when the turn says so: then everything on disk now must be delivered.
    fn poll(&mut self) {
        for lines in self.disk.files.values() {
            self.must_deliver.extend(lines.iter().copied());
        }
        let mut batches = 0;
        while self.batch() {
            batches += 1;
            assert!(batches < 10_000, "the polls never end");
            let turn = self.restart_turn % self.restarts_between_batches.len();
            self.restart_turn += 1;
            if self.restarts_between_batches[turn] {
                self.restart();
            }
        }
    }

    /// One poll; returns whether more is waiting.
    fn batch(&mut self) -> bool {
        let live_empty = self.disk.files.get("errors.log").is_none_or(Vec::is_empty);
        self.clock += Duration::from_millis(10);
        let poll = self.tailer.poll(self.clock).unwrap();
        // A poll that stopped early may not have looked at the live file yet.
        self.disk.live_empty_at_last_poll =
            live_empty || (poll.more && self.disk.live_empty_at_last_poll);
        // The line that crosses the budget is delivered whole, and each file may deliver a
        // line begun (and paid for) in an earlier poll.
        let bytes: u64 = poll.lines.iter().map(|l| l.bytes.len() as u64 + 1).sum();
        let files: HashSet<_> = poll
            .lines
            .iter()
            .map(|l| (l.file.device, l.file.inode))
            .collect();
        assert!(
            bytes
                <= self
                    .budget
                    .saturating_add((files.len() as u64 + 1) * LONGEST_LINE),
            "{bytes} bytes of lines from {} files for a budget of {}",
            files.len(),
            self.budget
        );
        for line in poll.lines {
            let text = String::from_utf8(line.bytes).unwrap();
            let mut words = text.rsplit(' ');
            let number: u64 = words.next().unwrap().parse().unwrap();
            let lineage: u32 = words.nth(1).unwrap().parse().unwrap();
            self.delivered.push((lineage, number));
        }
        poll.more
    }

    fn check(&self, ops: &[Op]) -> Result<(), TestCaseError> {
        let mut seen = HashSet::new();
        for line in &self.delivered {
            prop_assert!(
                seen.insert(*line),
                "line {line:?} delivered twice; ops {ops:?}; delivered {:?}",
                self.delivered
            );
        }
        let mut last_in_lineage: BTreeMap<u32, u64> = BTreeMap::new();
        for (lineage, number) in &self.delivered {
            let last = last_in_lineage.entry(*lineage).or_default();
            prop_assert!(
                *number > *last,
                "lineage {lineage}: line {number} after {last}; ops {ops:?}; delivered {:?}",
                self.delivered
            );
            *last = *number;
        }
        let mut missing: Vec<_> = self.must_deliver.difference(&seen).collect();
        missing.sort();
        prop_assert!(
            missing.is_empty(),
            "never delivered: {missing:?}; ops {ops:?}; delivered {:?}",
            self.delivered
        );
        Ok(())
    }
}

fn directory_listing(dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.join(", ")
}

fn run(ops: &[Op], budget: u64, restarts_between_batches: Vec<bool>) -> Result<(), TestCaseError> {
    let mut world = World::new(budget, restarts_between_batches);
    for op in ops {
        world.apply(op);
    }
    world.poll();
    world.check(ops).map_err(|error| {
        TestCaseError::fail(format!(
            "{error}\nbudget {budget}; files at the end: {}",
            directory_listing(world.dir.path())
        ))
    })
}

proptest! {
    #[test]
    fn every_line_once_and_in_order(ops in proptest::collection::vec(op(false), 1..40)) {
        run(&ops, u64::MAX, vec![false])?;
    }

    #[test]
    fn every_line_once_and_in_order_in_batches(
        ops in proptest::collection::vec(op(true), 1..40),
        budget in budget(),
        restarts_between_batches in proptest::collection::vec(proptest::bool::weighted(0.3), 1..8),
    ) {
        run(&ops, budget, restarts_between_batches)?;
    }
}

#[test]
fn a_partial_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errors.log");
    std::fs::write(&path, "first half").unwrap();
    let mut tailer = Tailer::new(&path, &[], 1 << 20, Duration::from_secs(60));
    let now = Instant::now();
    assert!(tailer.poll(now).unwrap().lines.is_empty());
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b" and the rest\n")
        .unwrap();
    let lines = tailer.poll(now).unwrap().lines;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].bytes, b"first half and the rest");
    assert_eq!(lines[0].end, 24);
}

#[test]
fn a_long_line_is_cut_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errors.log");
    // Words, then a token-like run that the limit (1024) cuts through.
    let words = "y ".repeat(500);
    let long = format!("{words} sk-proj-{}", "a1".repeat(2000));
    std::fs::write(&path, format!("{long}\nshort\n")).unwrap();
    let mut tailer = Tailer::new(&path, &[], 1024, Duration::from_secs(60));
    let lines = tailer.poll(Instant::now()).unwrap().lines;
    assert_eq!(lines.len(), 2);
    // Cut before the run the limit went through: no piece of a token is delivered.
    assert_eq!(lines[0].bytes, format!("{words} ").as_bytes());
    assert!(lines[0].cut);
    assert_eq!(lines[0].end, long.len() as u64 + 1);
    assert!(!lines[1].cut);
}

#[test]
fn a_missing_file_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/errors.log");
    let mut tailer = Tailer::new(&path, &[], 1 << 20, Duration::from_secs(60));
    assert!(tailer.poll(Instant::now()).unwrap().lines.is_empty());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "hello\n").unwrap();
    assert_eq!(tailer.poll(Instant::now()).unwrap().lines.len(), 1);
}

#[test]
fn a_drained_file_is_let_go_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errors.log");
    std::fs::write(&path, "one\n").unwrap();
    let mut tailer = Tailer::new(&path, &[], 1 << 20, Duration::from_secs(5));
    let start = Instant::now();
    tailer.poll(start).unwrap();
    std::fs::rename(&path, dir.path().join("errors.log.1")).unwrap();
    std::fs::write(&path, "two\n").unwrap();
    tailer.poll(start).unwrap();
    let late = |tailer: &mut Tailer, at: Duration| {
        OpenOptions::new()
            .append(true)
            .open(dir.path().join("errors.log.1"))
            .unwrap()
            .write_all(b"late\n")
            .unwrap();
        tailer.poll(start + at).unwrap().lines.len()
    };
    assert_eq!(
        late(&mut tailer, Duration::from_secs(1)),
        1,
        "the renamed file is still read"
    );
    tailer.poll(start + Duration::from_secs(7)).unwrap();
    assert_eq!(
        late(&mut tailer, Duration::from_secs(8)),
        0,
        "quiet for longer than the grace period: let go"
    );
}

#[test]
fn line_numbers_carry_over_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errors.log");
    std::fs::write(&path, "one\ntwo\n").unwrap();
    let mut tailer = Tailer::new(&path, &[], 1 << 20, Duration::from_secs(60));
    let numbers = |lines: Vec<hermes_warden::follow::tailer::TailedLine>| {
        lines.iter().map(|l| l.number).collect::<Vec<_>>()
    };
    assert_eq!(numbers(tailer.poll(Instant::now()).unwrap().lines), [1, 2]);
    let positions = tailer.positions();
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"three\n")
        .unwrap();
    let mut restarted = Tailer::new(&path, &positions, 1 << 20, Duration::from_secs(60));
    assert_eq!(numbers(restarted.poll(Instant::now()).unwrap().lines), [3]);
}

#[test]
fn a_poll_that_stops_in_a_copy_keeps_the_new_first_line() {
    // The truncation is seen, the rest is read from the copy until the budget runs out; the
    // live file, already written again, is copied and truncated once more before the next poll.
    use Op::*;
    let ops = [
        Append(1),
        Poll,
        Append(2),
        CopyTruncate,
        Append(1),
        Batch,
        CopyTruncate,
        Append(1),
    ];
    run(&ops, 1, vec![false]).unwrap();
}

#[test]
fn polls_end_even_when_restarted_after_every_batch() {
    use Op::*;
    run(&[Append(1), SplitAppend], 1, vec![true]).unwrap();
}

#[test]
fn after_a_truncation_the_copies_come_before_the_new_content_across_batches() {
    // The poll that sees the truncation stops in the copy; the next one must read the later
    // copy (`.1`) before what the live file holds now.
    use Op::*;
    let ops = [
        Append(1),
        SplitAppend,
        Append(2),
        CopyTruncate,
        Append(1),
        CopyTruncate,
        Append(1),
        Append(1),
    ];
    run(&ops, 63, vec![false]).unwrap();
}

#[test]
fn a_copy_truncated_file_copied_again_after_a_batch() {
    use Op::*;
    let ops = [
        Append(1),
        CopyTruncate,
        Batch,
        Append(1),
        CopyTruncate,
        Append(1),
        Append(1),
    ];
    run(&ops, 1, vec![false]).unwrap();
}

#[test]
fn an_empty_backup_seen_at_a_stopped_poll_does_not_claim_its_reused_inode() {
    // The empty `.1` seen when the first poll stops is deleted; its inode is reused by a copy
    // of the new live file, which must still be read.
    use Op::*;
    let ops = [
        Append(1),
        CopyTruncate,
        CopyTruncate,
        Append(2),
        Batch,
        Rotate,
        Append(1),
        CopyTruncate,
        Append(1),
    ];
    run(&ops, 1, vec![false]).unwrap();
}

#[test]
fn lines_read_before_an_error_are_delivered_and_the_error_comes_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("errors.log");
    std::fs::write(&path, "one\n").unwrap();
    let mut tailer = Tailer::new(&path, &[], 1 << 20, Duration::from_secs(60));
    let now = Instant::now();
    assert_eq!(tailer.poll(now).unwrap().lines.len(), 1);
    // Rotated: the renamed file is drained first, then looking at the path fails (a symlink
    // loop, ELOOP), after "two" was read.
    let renamed = dir.path().join("errors.log.1");
    std::fs::rename(&path, &renamed).unwrap();
    std::fs::write(&renamed, "one\ntwo\n").unwrap();
    std::os::unix::fs::symlink(&path, &path).unwrap();
    let poll = tailer.poll(now).unwrap();
    let lines: Vec<&[u8]> = poll.lines.iter().map(|line| &line.bytes[..]).collect();
    assert_eq!(lines, [b"two"]);
    assert!(poll.more, "poll again: the error is waiting");
    let error = tailer.poll(now).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::ELOOP), "{error}");
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, "three\n").unwrap();
    let lines: Vec<Vec<u8>> = (0..3)
        .flat_map(|_| tailer.poll(now).unwrap().lines)
        .map(|line| line.bytes)
        .collect();
    assert_eq!(lines, [b"three".to_vec()], "goes on after the error");
}
