//! Finding rule matches in a stream of Hermes log bytes, fast.
//!
//! The scanner is fed chunks of a log file and reports every line a rule matches, with its line
//! number and the header of the record it belongs to. It never looks at most lines: the rules'
//! literal prefilter runs over the whole buffer, line numbers are counted between hits, and only
//! a candidate line is split into header and message and handed to the rules. Memory is bounded:
//! a line longer than `max_line` bytes is cut to that length, and before the run of token
//! characters the cut went through ([`cut_line`]), and counted; only the partial last line of a
//! chunk is carried over. Invalid UTF-8 is decoded lossily. No I/O here.

use std::borrow::Cow;
use std::rc::Rc;

use aho_corasick::Input;

use crate::hermes::home::LogFile;
use crate::read::record::{Header, parse_header};
use crate::rules::{LinePart, RuleMatch, RuleSet};
use crate::shared::secrets::{cut_line, trim_cut};

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
    file: LogFile,
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
    pub fn new(rules: &'r RuleSet, file: LogFile, max_line: usize) -> Self {
        LogScanner {
            rules,
            file,
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

    /// Scans lines that are already split, each given without its `\n` (and holding none),
    /// exactly as [`feed`](Self::feed) would scan them joined, each followed by `\n`: the same
    /// hits, stats and state afterwards, without making the joined copy. Meant for a scanner with
    /// no carried partial line; if there is one (an earlier `feed` ended mid-line), the first
    /// line completes it, as in `feed`.
    pub fn feed_lines<'l>(
        &mut self,
        lines: impl IntoIterator<Item = &'l [u8]>,
        hits: &mut Vec<Hit<'r>>,
    ) {
        let lines: Vec<&[u8]> = lines.into_iter().collect();
        self.stats.bytes += lines.iter().map(|line| line.len() as u64 + 1).sum::<u64>();
        let mut rest = &lines[..];
        if let Some((first, others)) = rest.split_first()
            && (!self.carry.is_empty() || self.carry_cut)
        {
            self.extend_carry(first);
            self.flush_carry(hits);
            rest = others;
        }
        self.scan_lines(rest, hits);
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
            line.truncate(trim_cut(&line).len());
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
            let above = lines_back(block, start);
            self.scan_candidate(&block[start..end], lines_before + 1, above, hits);
            from = end + 1;
            if from >= block.len() {
                break;
            }
        }
        self.stats.lines = lines_before + count_newlines(&block[counted_to..]);
        self.stats.cut_lines += self.count_long_lines(block);
        self.end_block(lines_back(block, block.len()));
    }

    /// Scans complete lines given without their newlines, as `scan_block` scans their join.
    /// (Only a prefilter literal holding a `\n`, which no rule can match in one line, differs:
    /// it is looked for within lines, so it can change `candidate_lines`, never the hits.)
    fn scan_lines(&mut self, lines: &[&[u8]], hits: &mut Vec<Hit<'r>>) {
        let lines_before = self.stats.lines;
        for (index, line) in lines.iter().enumerate() {
            if self.rules.prefilter().is_match(*line) {
                let above = lines[..index].iter().rev().copied();
                self.scan_candidate(line, lines_before + index as u64 + 1, above, hits);
            }
        }
        self.stats.lines = lines_before + lines.len() as u64;
        self.stats.cut_lines += lines
            .iter()
            .filter(|line| line.len() > self.max_line)
            .count() as u64;
        self.end_block(lines.iter().rev().copied());
    }

    /// Remembers the header of the last record of a scanned block, given its lines last first
    /// (each read cut to `max_line`, as a candidate line reads the lines above it, so where a
    /// chunk ends changes nothing).
    fn end_block<'b>(&mut self, lines_last_first: impl Iterator<Item = &'b [u8]>) {
        if let Some(header) = header_before(lines_last_first, self.max_line) {
            self.last_header = header;
        }
    }

    /// Runs the rules over one candidate line (without its newline, not yet cut), numbered
    /// `number`; `above` are the lines of the same block before it, nearest first.
    fn scan_candidate<'b>(
        &mut self,
        line: &[u8],
        number: u64,
        above: impl Iterator<Item = &'b [u8]>,
        hits: &mut Vec<Hit<'r>>,
    ) {
        self.stats.candidate_lines += 1;
        let mut line = cut_line(line, self.max_line);
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
            None => header_before(above, self.max_line).unwrap_or_else(|| self.last_header.clone()),
        };
        let level = own_header
            .as_ref()
            .map(|h| h.level)
            .or(record_header.as_ref().map(|h| h.level.as_str()));
        let text: Cow<str> = String::from_utf8_lossy(text);
        let matches = self.rules.match_text(self.file, level, part, &text);
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

/// The lines of `block` before offset `end` (a line start or the block end), nearest first,
/// each without its newline.
fn lines_back(block: &[u8], mut end: usize) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let line_end = end.checked_sub(1)?; // the newline ending the previous line
        let start = memchr::memrchr(b'\n', &block[..line_end]).map_or(0, |i| i + 1);
        end = start;
        Some(&block[start..line_end])
    })
}

/// The header of the record that the line after `above` (the lines before it, nearest first)
/// belongs to, reading each line cut to `max_line`: `Some(Some(h))` found, `Some(None)` gave up
/// after `MAX_RECORD_LINES` lines, `None` ran out of lines.
fn header_before<'b>(
    mut above: impl Iterator<Item = &'b [u8]>,
    max_line: usize,
) -> Option<Option<RecordHeader>> {
    for _ in 0..MAX_RECORD_LINES {
        let line = above.next()?;
        if let Some(header) = parse_header(cut_line(line, max_line)) {
            return Some(Some(RecordHeader::from(&header)));
        }
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
        let mut scanner = LogScanner::new(rules, LogFile::Errors, max_line);
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

    /// Realistic Hermes log lines, without newlines: records with and without session tags,
    /// a traceback, CRLF, an empty line, invalid UTF-8 and binary.
    fn hermes_lines() -> Vec<Vec<u8>> {
        let mut lines: Vec<Vec<u8>> = [
            "2026-05-26 10:27:13,480 WARNING [20260526_102233_a1b2c3] agent.credential_pool: credential pool: marking alice@example.com DEAD (status=401, reason=token_invalidated) — permanently failed, will NOT re-enter rotation until re-auth",
            "2026-05-26 10:27:13,480 INFO agent.credential_pool: credential pool: marking alice@example.com exhausted (status=401), rotating",
            "2026-05-26 10:27:13,481 INFO agent.credential_pool: credential pool: rotated to bob@example.com",
            "2026-05-26 10:27:13,482 WARNING [20260526_102233_a1b2c3] agent.context_compressor: Failed to generate context summary: Error code: 401 - {'error': {'message': 'Your authentication token has been invalidated. Please try signing in again.', 'type': 'invalid_request_error', 'code': 'token_invalidated', 'param': None}, 'status': 401}. Further summary attempts paused for 60 seconds.",
            "2026-05-26 10:27:13,482 WARNING agent.context_compressor: Failed to generate context summary: Request timed out.. Further summary attempts paused for 60 seconds.",
            "2026-05-26 10:27:14,001 ERROR [20260526_102233_a1b2c3] agent.conversation_loop: API call failed",
            "Traceback (most recent call last):",
            "  File \"/usr/lib/python3/site-packages/openai/_base_client.py\", line 1047, in request",
            "    raise self._make_status_error_from_response(err.response) from None",
            "openai.AuthenticationError: Error code: 401 - {'error': {'message': 'Your authentication token has been invalidated. Please try signing in again.', 'type': 'invalid_request_error', 'code': 'token_invalidated', 'param': None}, 'status': 401}",
            "2026-05-26 10:27:14,001 ERROR agent.conversation_loop: Non-retryable client error: Error code: 401 - {'error': {'message': 'Token has been revoked', 'type': 'invalid_request_error', 'code': 'token_revoked', 'param': None}, 'status': 401}",
            "2026-05-26 10:27:13,100 WARNING agent.conversation_loop: API call failed (attempt 1/3) error_type=RateLimitError thread=MainThread provider=openai-codex base_url=https://chatgpt.com/backend-api/codex model=gpt-5.1-codex summary=HTTP 429: The usage limit has been reached",
            "2026-05-26 10:27:13,482 INFO agent.credential_pool: credential pool: no available entries (all exhausted or empty)\r",
            "",
        ]
        .map(|line| line.as_bytes().to_vec())
        .to_vec();
        lines.push(
            b"2026-05-26 10:00:01,002 WARNING root: Failed to generate context summary: \xff\xfe"
                .to_vec(),
        );
        lines.push(b"openai.AuthenticationError: Error code: 401 - \xc3\x28 {}".to_vec());
        lines.push(b"\x00\x01binary\r".to_vec());
        lines
    }

    /// Lines longer than a small `max_line`: a matching record, a matching traceback line, a
    /// header whose session tag only closes past the limit (a header uncut, not cut), and lines
    /// exactly at the limits used.
    fn long_lines() -> Vec<Vec<u8>> {
        let filler = "x".repeat(300);
        [
            format!("2026-05-26 10:27:13,482 WARNING [s1] agent.context_compressor: Failed to generate context summary: Error code: 401 - {filler}"),
            format!("openai.AuthenticationError: Error code: 401 - {filler}"),
            format!("2026-05-26 10:27:14,001 ERROR [{filler}] agent.conversation_loop: API call failed"),
            "openai.AuthenticationError: Error code: 401 - {'error': {'code': 'token_revoked'}}".to_owned(),
            format!("{filler}Failed to generate context summary: Error code: 401"),
            // Exactly as long as the limits the tests use: not cut.
            "z".repeat(40),
            "z".repeat(200),
        ]
        .map(String::into_bytes)
        .to_vec()
    }

    /// Everything a scan has produced and left: all hits (every field), stats and the header.
    fn outcome(scanner: &LogScanner, hits: &[Hit]) -> String {
        format!(
            "{hits:#?}\n{:?}\n{:?}",
            scanner.stats(),
            scanner.record_header()
        )
    }

    /// Scans `lines` after `before` once with `feed` over their join and once with
    /// `feed_lines`, then the same tail with `feed`, and asserts both outcomes are identical
    /// after the lines and at the end. Returns the number of hits.
    fn assert_same(
        rules: &RuleSet,
        file: LogFile,
        lines: &[&[u8]],
        before: &[u8],
        header: Option<&RecordHeader>,
        max_line: usize,
    ) -> usize {
        let run = |split: bool| {
            let mut scanner = LogScanner::new(rules, file, max_line).continuing(header.cloned());
            let mut hits = Vec::new();
            scanner.feed(before, &mut hits);
            if split {
                scanner.feed_lines(lines.iter().copied(), &mut hits);
            } else {
                scanner.feed(&joined(lines), &mut hits);
            }
            let after_lines = outcome(&scanner, &hits);
            scanner.feed(
                b"openai.AuthenticationError: Error code: 401 - {'error': {'code': 'token_revoked'}}\nFailed to generate context summary: ",
                &mut hits,
            );
            scanner.finish(&mut hits);
            (after_lines, outcome(&scanner, &hits), hits.len())
        };
        let (joined, split) = (run(false), run(true));
        assert_eq!(joined.0, split.0, "after the lines: {before:?} {max_line}");
        assert_eq!(joined.1, split.1, "at the end: {before:?} {max_line}");
        joined.2
    }

    /// The lines as one buffer, each followed by `\n`, as the daemon used to join them.
    fn joined(lines: &[&[u8]]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|line| [*line, b"\n"])
            .flatten()
            .copied()
            .collect()
    }

    /// What may come before the lines: nothing, complete lines, a partial line, a partial line
    /// already longer than the limit.
    fn befores() -> Vec<Vec<u8>> {
        vec![
            Vec::new(),
            b"2026-05-26 09:00:00,000 ERROR [s0] agent.conversation_loop: boom\nTraceback (most recent call last):\n".to_vec(),
            b"2026-05-26 09:00:00,000 WARNING [s0] agent.context_compressor: Failed to generate con".to_vec(),
            format!("2026-05-26 09:00:00,000 WARNING root: {}", "y".repeat(500)).into_bytes(),
        ]
    }

    fn rule_sets() -> Vec<RuleSet> {
        vec![
            rules(),
            load_rule_set(&crate::rules::builtin_sources()).unwrap(),
        ]
    }

    #[test]
    fn feed_lines_finds_what_feed_finds_in_the_joined_lines() {
        let inherited = RecordHeader {
            timestamp_text: "2026-05-26 08:00:00,000".into(),
            level: "ERROR".into(),
            session: Some("s8".into()),
        };
        let realistic = hermes_lines();
        let long = long_lines();
        let log: Vec<&[u8]> = LOG.as_bytes().split(|&b| b == b'\n').collect();
        let mut deep_traceback: Vec<&[u8]> =
            vec![b"2026-05-26 10:00:02,003 ERROR [s1] root: call failed"];
        deep_traceback.extend(std::iter::repeat_n(
            &b"  File \"x.py\", line 1"[..],
            MAX_RECORD_LINES,
        ));
        deep_traceback.push(b"openai.AuthenticationError: Error code: 401 - {}");
        let inputs: Vec<Vec<&[u8]>> = vec![
            Vec::new(),
            log,
            realistic.iter().map(Vec::as_slice).collect(),
            // A traceback first: its record's header is the inherited one, or out of reach.
            realistic[6..].iter().map(Vec::as_slice).collect(),
            long.iter().map(Vec::as_slice).collect(),
            long.iter()
                .chain(&realistic)
                .rev()
                .map(Vec::as_slice)
                .collect(),
            deep_traceback,
        ];
        let mut total = 0;
        for rules in &rule_sets() {
            for file in LogFile::ALL {
                for lines in &inputs {
                    for before in &befores() {
                        for header in [None, Some(&inherited)] {
                            for max_line in [DEFAULT_MAX_LINE, 200, 40] {
                                total += assert_same(rules, file, lines, before, header, max_line);
                            }
                        }
                    }
                }
            }
        }
        assert!(total > 1000, "the inputs should match many rules: {total}");
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

        #[test]
        fn feed_lines_equals_feed_over_random_hermes_lines(
            picks in proptest::collection::vec((0usize..40, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)), 0..40),
            before in 0usize..4,
            max_line in 16usize..400,
        ) {
            // Mostly realistic lines, some cut short or followed by random bytes, some random.
            let pool: Vec<Vec<u8>> = hermes_lines().into_iter().chain(long_lines()).collect();
            let owned: Vec<Vec<u8>> = picks
                .iter()
                .map(|(pick, noise)| {
                    let mut line = match pool.get(*pick) {
                        Some(line) if noise.len() % 3 == 0 => line[..line.len().min(noise.len() * 4)].to_vec(),
                        Some(line) => line.clone(),
                        None => Vec::new(),
                    };
                    if noise.len() % 2 == 0 || line.is_empty() {
                        line.extend(noise.iter().filter(|&&b| b != b'\n'));
                    }
                    line
                })
                .collect();
            let lines: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
            for rules in &rule_sets() {
                assert_same(rules, LogFile::Errors, &lines, &befores()[before], None, max_line);
            }
        }
    }
}
