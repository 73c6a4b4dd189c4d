//! Finding rule matches in a stream of Hermes log bytes, fast.
//!
//! The scanner is fed chunks of a log file and reports every line a rule matches, with its line
//! number and the header of the record it belongs to. It never looks at most lines: the rules'
//! literal prefilter runs over the whole buffer, line numbers are counted between hits, and only
//! a candidate line is split into header and message and handed to the rules. Memory is bounded:
//! a line longer than `max_line` bytes is cut to that length (and counted), and only the partial
//! last line of a chunk is carried over. Invalid UTF-8 is decoded lossily. No I/O here.

use std::borrow::Cow;
use std::rc::Rc;

use aho_corasick::Input;

use crate::read::record::{Header, parse_header};
use crate::rules::{LinePart, RuleMatch, RuleSet};

/// Default limit on the length of one line.
pub const DEFAULT_MAX_LINE: usize = 1 << 20;
/// How far back a traceback line looks for the header of its record.
const MAX_RECORD_LINES: usize = 2_000;

/// The header of a record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub timestamp_text: String,
    pub level: String,
    pub session: Option<String>,
}

impl From<&Header<'_>> for RecordHeader {
    fn from(header: &Header<'_>) -> Self {
        RecordHeader {
            timestamp_text: header.timestamp_text.to_owned(),
            level: header.level.to_owned(),
            session: header.session.map(str::to_owned),
        }
    }
}

/// One rule matching one line.
#[derive(Debug, Clone)]
pub struct Hit<'r> {
    /// 1-based line number in the file.
    pub line: u64,
    /// A stable hash of the line's text, to tell copies of one record (errors.log and
    /// agent.log) from different records of the same moment, also across restarts.
    pub text_hash: u64,
    /// The record's header; `None` for a traceback line whose header is out of reach.
    pub header: Option<Rc<RecordHeader>>,
    pub part: LinePart,
    pub matched: RuleMatch<'r>,
}

/// Counters of what was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub lines: u64,
    pub bytes: u64,
    /// Lines longer than the limit, cut to it.
    pub cut_lines: u64,
    /// Lines the prefilter let through to the rules.
    pub candidate_lines: u64,
}

/// Scans one log file, chunk by chunk.
pub struct LogScanner<'r> {
    rules: &'r RuleSet,
    file: String,
    max_line: usize,
    /// The partial last line of the previous chunk, at most `max_line` bytes.
    carry: Vec<u8>,
    /// The carried line was longer than `max_line` and has been cut.
    carry_cut: bool,
    /// The header of the last record that started before the current chunk.
    last_header: Option<RecordHeader>,
    stats: ScanStats,
}

impl<'r> LogScanner<'r> {
    /// `file` is the log's base name (`errors.log`, `agent.log`), which selects the rules.
    pub fn new(rules: &'r RuleSet, file: &str, max_line: usize) -> Self {
        LogScanner {
            rules,
            file: file.to_owned(),
            max_line,
            carry: Vec::new(),
            carry_cut: false,
            last_header: None,
            stats: ScanStats::default(),
        }
    }

    pub fn stats(&self) -> ScanStats {
        self.stats
    }

    /// Continues a file whose earlier lines another scanner read, so that a traceback line
    /// finds the header of its record.
    pub fn continuing(mut self, header: Option<RecordHeader>) -> Self {
        self.last_header = header;
        self
    }

    /// The header of the last record seen.
    pub fn record_header(&self) -> Option<&RecordHeader> {
        self.last_header.as_ref()
    }

    /// Scans the complete lines of `chunk` (together with the carried partial line) and keeps
    /// the new partial line for the next call.
    pub fn feed(&mut self, mut chunk: &[u8], hits: &mut Vec<Hit<'r>>) {
        self.stats.bytes += chunk.len() as u64;
        if !self.carry.is_empty() || self.carry_cut {
            match memchr::memchr(b'\n', chunk) {
                None => {
                    self.extend_carry(chunk);
                    return;
                }
                Some(newline) => {
                    self.extend_carry(&chunk[..newline]);
                    self.flush_carry(hits);
                    chunk = &chunk[newline + 1..];
                }
            }
        }
        match memchr::memrchr(b'\n', chunk) {
            Some(last) => {
                self.scan_block(&chunk[..=last], hits);
                self.extend_carry(&chunk[last + 1..]);
            }
            None => self.extend_carry(chunk),
        }
    }

    /// Scans the unterminated last line, if any, as a complete line (end of a file read once).
    pub fn finish(&mut self, hits: &mut Vec<Hit<'r>>) {
        if !self.carry.is_empty() || self.carry_cut {
            self.flush_carry(hits);
        }
    }

    fn extend_carry(&mut self, bytes: &[u8]) {
        let room = self.max_line.saturating_sub(self.carry.len());
        if bytes.len() > room {
            self.carry_cut = true;
        }
        self.carry
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn flush_carry(&mut self, hits: &mut Vec<Hit<'r>>) {
        let mut line = std::mem::take(&mut self.carry);
        if std::mem::take(&mut self.carry_cut) {
            self.stats.cut_lines += 1;
        }
        line.push(b'\n');
        self.scan_block(&line, hits);
        line.clear();
        self.carry = line;
    }

    /// Scans a block of complete lines, each ending in `\n`.
    fn scan_block(&mut self, block: &[u8], hits: &mut Vec<Hit<'r>>) {
        let mut counted_to = 0;
        let mut lines_before = self.stats.lines;
        let mut from = 0;
        while let Some(found) = self.rules.prefilter().find(Input::new(block).range(from..)) {
            let at = found.start();
            let start = memchr::memrchr(b'\n', &block[..at]).map_or(0, |i| i + 1);
            let end = at + memchr::memchr(b'\n', &block[at..]).expect("blocks end in a newline");
            lines_before += count_newlines(&block[counted_to..start]);
            counted_to = start;
            self.stats.candidate_lines += 1;
            self.match_line(block, start, end, lines_before + 1, hits);
            from = end + 1;
            if from >= block.len() {
                break;
            }
        }
        self.stats.lines = lines_before + count_newlines(&block[counted_to..]);
        self.stats.cut_lines += self.count_long_lines(block);
        if let Some(header) = header_before(block, block.len(), None) {
            self.last_header = header;
        }
    }

    fn match_line(
        &self,
        block: &[u8],
        start: usize,
        end: usize,
        number: u64,
        hits: &mut Vec<Hit<'r>>,
    ) {
        let mut line = &block[start..end];
        line = &line[..line.len().min(self.max_line)];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        let own_header = parse_header(line);
        let (part, text) = match &own_header {
            Some(header) => (LinePart::Message, &line[header.message_start..]),
            None => (LinePart::Continuation, line),
        };
        // A traceback line belongs to the record above it.
        let record_header = match own_header {
            Some(_) => None,
            None => header_before(block, start, Some(self.max_line))
                .unwrap_or_else(|| self.last_header.clone()),
        };
        let level = own_header
            .as_ref()
            .map(|h| h.level)
            .or(record_header.as_ref().map(|h| h.level.as_str()));
        let text: Cow<str> = String::from_utf8_lossy(text);
        let matches = self.rules.match_text(&self.file, level, part, &text);
        if matches.is_empty() {
            return;
        }
        // Owned copies only for lines a rule matched, shared by all of its matches.
        let header = own_header
            .as_ref()
            .map(RecordHeader::from)
            .or(record_header)
            .map(Rc::new);
        let text_hash = line_digest(line);
        for matched in matches {
            hits.push(Hit {
                line: number,
                text_hash,
                header: header.clone(),
                part,
                matched,
            });
        }
    }

    /// Counts lines longer than `max_line` without visiting every line: jump from newline to
    /// the last newline within the next `max_line` bytes; a window with none holds a long line.
    fn count_long_lines(&self, block: &[u8]) -> u64 {
        let mut long = 0;
        let mut at = 0;
        while block.len() - at > self.max_line {
            let window = &block[at..=at + self.max_line];
            match memchr::memrchr(b'\n', window) {
                Some(newline) => at += newline + 1,
                None => {
                    long += 1;
                    at += memchr::memchr(b'\n', &block[at..]).map_or(block.len() - at, |i| i + 1);
                }
            }
        }
        long
    }
}

/// The header of the record that line `before` (an offset at a line start or the block end)
/// belongs to: `Some(Some(h))` found, `Some(None)` gave up, `None` reached the block start.
fn header_before(
    block: &[u8],
    before: usize,
    max_line: Option<usize>,
) -> Option<Option<RecordHeader>> {
    let mut end = before;
    for _ in 0..MAX_RECORD_LINES {
        if end == 0 {
            return None;
        }
        let line_end = end - 1; // the newline ending the previous line
        let start = memchr::memrchr(b'\n', &block[..line_end]).map_or(0, |i| i + 1);
        let line = &block[start..line_end];
        let line = &line[..line.len().min(max_line.unwrap_or(usize::MAX))];
        if let Some(header) = parse_header(line) {
            return Some(Some(RecordHeader::from(&header)));
        }
        end = start;
    }
    Some(None)
}

/// The first 8 bytes of the line's SHA-256: stable across runs and versions.
fn line_digest(line: &[u8]) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(line);
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RuleSource, load_rule_set};

    const RULES: &str = r#"
[[rule]]
id = "summary"
kind = "compaction_failure"
pattern = '^Failed to generate context summary: (?P<message>.*)'
[[rule.must_match]]
line = "2026-05-26 10:27:13,482 WARNING agent.context_compressor: Failed to generate context summary: x"
[[rule.must_not_match]]
line = "2026-05-26 10:27:13,482 WARNING agent.context_compressor: ok"

[[rule]]
id = "exception"
kind = "auth_failure"
part = "continuation"
pattern = '^(?P<exception>[\w.]+Error): (?P<payload>Error code: .*)'
prefilter = ["Error: Error code: "]
[[rule.must_match]]
line = "2026-05-26 10:27:13,482 ERROR root: boom\nopenai.AuthenticationError: Error code: 401 - {}"
[[rule.must_not_match]]
line = "2026-05-26 10:27:13,482 ERROR root: openai.AuthenticationError: Error code: 401 - {}"
"#;

    fn rules() -> RuleSet {
        load_rule_set(&[RuleSource {
            name: "t.toml".into(),
            text: RULES.into(),
            layer: 0,
        }])
        .unwrap()
    }

    fn scan(
        rules: &RuleSet,
        text: &[u8],
        chunk: usize,
        max_line: usize,
    ) -> (Vec<(u64, String, Option<String>)>, ScanStats) {
        let mut scanner = LogScanner::new(rules, "errors.log", max_line);
        let mut hits = Vec::new();
        for piece in text.chunks(chunk.max(1)) {
            scanner.feed(piece, &mut hits);
        }
        scanner.finish(&mut hits);
        let found = hits
            .iter()
            .map(|hit| {
                (
                    hit.line,
                    hit.matched.rule.id.clone(),
                    hit.header.as_ref().map(|h| h.timestamp_text.clone()),
                )
            })
            .collect();
        (found, scanner.stats())
    }

    const LOG: &str = "2026-05-26 10:00:00,001 WARNING root: nothing\n\
2026-05-26 10:00:01,002 WARNING [s1] agent.context_compressor: Failed to generate context summary: Error code: 401 - {}\n\
2026-05-26 10:00:02,003 ERROR [s1] agent.conversation_loop: call failed\n\
Traceback (most recent call last):\n\
  File \"x.py\", line 1, in <module>\n\
openai.AuthenticationError: Error code: 401 - {'error': {'code': 'token_revoked'}}\n\
2026-05-26 10:00:03,004 WARNING root: Failed to generate context summary: again";

    #[test]
    fn finds_lines_numbers_and_record_headers_at_any_chunk_size() {
        let rules = rules();
        let expected = vec![
            (
                2,
                "summary".to_owned(),
                Some("2026-05-26 10:00:01,002".to_owned()),
            ),
            (
                6,
                "exception".to_owned(),
                Some("2026-05-26 10:00:02,003".to_owned()),
            ),
            (
                7,
                "summary".to_owned(),
                Some("2026-05-26 10:00:03,004".to_owned()),
            ),
        ];
        for chunk in [1, 2, 7, 50, 100, 4096] {
            let (found, stats) = scan(&rules, LOG.as_bytes(), chunk, DEFAULT_MAX_LINE);
            assert_eq!(found, expected, "chunk size {chunk}");
            assert_eq!(stats.lines, 7, "chunk size {chunk}");
            assert_eq!(stats.bytes, LOG.len() as u64);
        }
    }

    #[test]
    fn long_lines_are_cut_and_counted() {
        let rules = rules();
        let long = format!(
            "2026-05-26 10:00:01,002 WARNING root: Failed to generate context summary: {}\nshort\n",
            "x".repeat(5000)
        );
        for chunk in [64, 1000, 100_000] {
            let (found, stats) = scan(&rules, long.as_bytes(), chunk, 200);
            assert_eq!(found.len(), 1, "chunk size {chunk}");
            assert_eq!(stats.cut_lines, 1, "chunk size {chunk}");
            assert_eq!(stats.lines, 2, "chunk size {chunk}");
        }
    }

    #[test]
    fn invalid_utf8_is_read_lossily() {
        let rules = rules();
        let mut bytes =
            b"2026-05-26 10:00:01,002 WARNING root: Failed to generate context summary: \xff\xfe\n"
                .to_vec();
        bytes.extend_from_slice(b"\x00\x01binary\n");
        let (found, stats) = scan(&rules, &bytes, 8, DEFAULT_MAX_LINE);
        assert_eq!(found.len(), 1);
        assert_eq!(stats.lines, 2);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000), chunk in 1usize..300) {
            let rules = rules();
            let (_, stats) = scan(&rules, &bytes, chunk, 64);
            let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
            let unterminated = u64::from(bytes.last().is_some_and(|&b| b != b'\n'));
            proptest::prop_assert_eq!(stats.lines, newlines + unterminated);
        }
    }
}
