//! Fuzzing the parsers of untrusted input with proptest: the log record parser and the scanner,
//! the Python-literal payload parser, the `auth.json` reader and the rule loader.
//!
//! The generators are structure-aware: they start from realistic inputs (Hermes log lines,
//! tracebacks and the built-in rules' sample lines; Python literals of every form; Hermes-shaped
//! `auth.json` documents; the built-in rule files) and mutate them (splices, truncations, byte
//! flips, token replacements, invalid UTF-8, repeated spans, wrong types, deep nesting), so that
//! the deep paths of each parser are reached and not just its first error.
//!
//! Properties (cases per run in brackets; the module runs in about 25 s on 2 cores):
//! * records: `parse_header` / `parse_local_time` never panic and what they return is
//!   consistent with the line (a parsed time renders back to its text) [20 000 each]; the
//!   scanner with the built-in rules never panics on mutated logs fed in random chunkings (small
//!   and default line limits), counts lines and bytes exactly, `feed_lines` finds what `feed`
//!   finds in the joined lines, and, when no line is longer than the limit, the hits do not
//!   depend on the chunking [3 000]; lines longer than the default limit [24];
//! * payloads: `pyliteral::parse`, `parse_prefix`, `parse_lenient` and `payload::find` never
//!   panic and agree with each other [8 000], honour [`pyliteral::MAX_DEPTH`] exactly, up to
//!   100k nested brackets [1 500], and each single call takes less than [`call_limit`] (200 ms,
//!   plus 1 s per MiB of input), also on adversarial inputs of up to 1 MiB (1 MiB strings, a
//!   million list items, huge numbers, integers at [`pyliteral::MAX_RADIX_INT_BITS`]) [200, and
//!   every kind at 1 MiB once];
//! * `auth.json`: `snapshot::parse` returns `Ok` or `Err` (never panics) within 200 ms, and is
//!   deterministic: the same bytes, and the re-serialized document, give the same result
//!   [10 000];
//! * rules: `load_rule_set` over mutated rule files (layers, overrides) never panics, takes less
//!   than [`RULES_LIMIT`] per call, every error names one of the files and a line of it (>= 1),
//!   and a rule set that loads has unique ids and runs its own samples and a log [1 000].
//!
//! Two bugs this module found are fixed and kept as a property and a plain test with the
//! minimal input: `auth_json_entries_have_log_names` / `log_name_of_a_non_ascii_id` (a panic in
//! `PoolEntry::log_name`, an `id` cut inside a character), and
//! `scanner_hits_do_not_depend_on_chunking` / `traceback_record_header_does_not_depend_on_chunking`
//! (the record header of a traceback hit depended on the chunking when the header line is
//! longer than `max_line`).
//!
//! The time bounds are liveness bounds against pathological (quadratic, backtracking)
//! behaviour in a debug build, measured in CPU time of the calling thread (so a busy machine
//! does not make them flake), generous enough not to flake otherwise: the parsers are linear,
//! but unoptimized they take up to ~350 ms for 1 MiB of list items (14 ms for a 1 MiB string),
//! so the bound grows with the input; a quadratic parser would take minutes on such inputs.
//! Failures are not persisted to a regressions file (`failure_persistence: None`): a failing
//! case is recorded as a plain test instead.

use std::fmt::Debug;
use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use hermes_warden::hermes::home::LogFile;
use hermes_warden::pool::snapshot;
use hermes_warden::read::pyliteral::{self, MAX_DEPTH, MAX_RADIX_INT_BITS};
use hermes_warden::read::scanner::{DEFAULT_MAX_LINE, Hit, LogScanner, ScanStats};
use hermes_warden::read::{payload, record};
use hermes_warden::rules::{RuleSet, RuleSource, builtin_sources, check_samples, load_rule_set};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Value};

/// The longest a single call of a payload or `auth.json` parsing function may take on a small
/// input.
const CALL_LIMIT: Duration = Duration::from_millis(200);
/// What each MiB of input adds to [`CALL_LIMIT`].
const CALL_LIMIT_PER_MIB: Duration = Duration::from_secs(1);
/// The longest one `load_rule_set` call (regex compilation included) may take.
const RULES_LIMIT: Duration = Duration::from_secs(2);
/// The longest one scan of a generated log (a few hundred KiB at most) may take.
const SCAN_LIMIT: Duration = Duration::from_secs(2);
/// Inputs grown by mutation stay below this size.
const MAX_GROWN: usize = 1 << 20;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers: time bounds and byte-level mutations.

/// The time bound of one parsing call on `len` bytes: linear in the input.
fn call_limit(len: usize) -> Duration {
    CALL_LIMIT + CALL_LIMIT_PER_MIB.mul_f64(len as f64 / f64::from(1 << 20))
}

/// A short, printable preview of an input for failure messages.
fn preview(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(&input[..input.len().min(160)]);
    format!("{} bytes, starting {text:?}", input.len())
}

/// The CPU time this thread has used: unlike the wall clock, it does not count the time the
/// thread waited for a core, so the bounds hold on a busy machine (the parsers never block).
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(
        u64::try_from(now.tv_sec).expect("non-negative"),
        u32::try_from(now.tv_nsec).expect("below a second"),
    )
}

/// Runs `f`, failing when it takes `limit` of CPU time or longer.
fn bounded<T>(limit: Duration, what: &str, input: &[u8], f: impl FnOnce() -> T) -> T {
    let (start, wall) = (thread_cpu_time(), Instant::now());
    let out = f();
    let took = thread_cpu_time().saturating_sub(start);
    assert!(
        took < limit,
        "{what} took {took:?} of CPU time ({:?} wall, limit {limit:?}) on {}",
        wall.elapsed(),
        preview(input)
    );
    out
}

/// Byte sequences that are not UTF-8 (or only partly): lone continuation bytes, truncated
/// sequences, overlong encodings, surrogates, bytes that never occur.
const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xfe\xff",
    b"\x80",
    b"\xc3",
    b"\xc3\x28",
    b"\xe2\x80",
    b"\xe2\x28\xa1",
    b"\xf0\x9f\x98",
    b"\xf0\x28\x8c\x28",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x00",
    b"\xef\xbb\xbf",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    /// Insert a token.
    Insert(Index, Vec<u8>),
    /// Replace the token at a place (a run of word bytes, or one other byte) with a token.
    Replace(Index, Vec<u8>),
    Delete(Index, usize),
    Truncate(Index),
    /// Copy a span of another input in.
    Splice {
        at: Index,
        donor: Index,
        from: Index,
        len: usize,
    },
    /// Repeat a span of the input in place.
    Repeat {
        at: Index,
        len: usize,
        times: usize,
    },
}

/// A mutation whose inserted tokens come from `dict` (or are random or invalid UTF-8).
fn mutation(dict: &'static [&'static str]) -> impl Strategy<Value = Mutation> {
    let token = prop_oneof![
        4 => select(dict).prop_map(|token| token.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 1..6),
        1 => select(INVALID_UTF8).prop_map(<[u8]>::to_vec),
    ];
    prop_oneof![
        2 => (any::<Index>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        3 => (any::<Index>(), token.clone()).prop_map(|(at, token)| Mutation::Insert(at, token)),
        3 => (any::<Index>(), token).prop_map(|(at, token)| Mutation::Replace(at, token)),
        2 => (any::<Index>(), 1usize..24).prop_map(|(at, len)| Mutation::Delete(at, len)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), any::<Index>(), any::<Index>(), 1usize..200)
            .prop_map(|(at, donor, from, len)| Mutation::Splice { at, donor, from, len }),
        1 => (any::<Index>(), 1usize..48, 2usize..200)
            .prop_map(|(at, len, times)| Mutation::Repeat { at, len, times }),
    ]
}

fn is_word(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Applies `mutations` in order to `bytes`; splices take their text from `donors`.
fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation], donors: &[&[u8]]) -> Vec<u8> {
    for mutation in mutations {
        // A position in 0..=len.
        let len = bytes.len();
        let place = |index: &Index| index.index(len + 1);
        match mutation {
            Mutation::Flip(at, mask) => {
                if len > 0 {
                    bytes[at.index(len)] ^= mask;
                }
            }
            Mutation::Insert(at, token) => {
                let at = place(at);
                bytes.splice(at..at, token.iter().copied());
            }
            Mutation::Replace(at, token) => {
                if len == 0 {
                    bytes.extend_from_slice(token);
                    continue;
                }
                let at = at.index(len);
                let (mut start, mut end) = (at, at + 1);
                if is_word(bytes[at]) {
                    while start > 0 && is_word(bytes[start - 1]) {
                        start -= 1;
                    }
                    while end < len && is_word(bytes[end]) {
                        end += 1;
                    }
                }
                bytes.splice(start..end, token.iter().copied());
            }
            Mutation::Delete(at, count) => {
                let at = place(at);
                bytes.drain(at..(at + count).min(len));
            }
            Mutation::Truncate(at) => bytes.truncate(place(at)),
            Mutation::Splice {
                at,
                donor,
                from,
                len: count,
            } => {
                if donors.is_empty() {
                    continue;
                }
                let donor = donors[donor.index(donors.len())];
                let from = from.index(donor.len() + 1);
                let piece = &donor[from..(from + count).min(donor.len())];
                let at = place(at);
                bytes.splice(at..at, piece.iter().copied());
            }
            Mutation::Repeat {
                at,
                len: count,
                times,
            } => {
                let at = place(at);
                let piece = bytes[at..(at + count).min(len)].to_vec();
                if len + piece.len() * times > MAX_GROWN {
                    continue;
                }
                let repeated = piece.repeat(*times);
                bytes.splice(at..at, repeated);
            }
        }
    }
    bytes
}

fn mutations(
    dict: &'static [&'static str],
    count: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(dict), count)
}

// ---------------------------------------------------------------------------------------------
// Records and the scanner.

/// Realistic Hermes log lines (without their newline): records with and without a session
/// tag, traceback lines, multi-line messages.
const HERMES_LINES: &[&str] = &[
    "2026-05-26 10:27:13,482 WARNING [20260526_102233_a1b2c3] agent.context_compressor: Failed to generate context summary: Error code: 401 - {'error': {'message': 'Your authentication token has been invalidated. Please try signing in again.', 'type': 'invalid_request_error', 'code': 'token_invalidated', 'param': None}, 'status': 401}. Further summary attempts paused for 60 seconds.",
    "2026-05-26 10:27:13,482 WARNING agent.context_compressor: Failed to generate context summary: Error code: 401 - {'error': {'message': 'Your token was revoked', 'code': 'token_revoked', 'param': No...",
    "2026-05-26 10:27:13,480 WARNING [20260526_102233_a1b2c3] agent.credential_pool: credential pool: marking alice@example.com DEAD (status=401, reason=token_invalidated) — permanently failed, will NOT re-enter rotation until re-auth",
    "2026-05-26 10:27:13,480 INFO agent.credential_pool: credential pool: marking alice@example.com exhausted (status=401), rotating",
    "2026-05-26 10:27:13,481 INFO agent.credential_pool: credential pool: rotated to bob@example.com",
    "2026-05-26 10:27:13,482 INFO [20260526_102233_a1b2c3] agent.agent_runtime_helpers: Credential 401 (auth refresh failed) — rotated to pool entry d4e5f6",
    "2026-05-26 10:27:13,482 WARNING agent.agent_runtime_helpers: Credential auth failure persists after 2 refreshes for pool entry a1b2c3 — treating as unrecoverable and allowing fallback to activate.",
    "2026-05-27 10:30:00,000 WARNING agent.credential_pool: credential pool: pruning DEAD manual entry alice@example.com (reason=token_invalidated, age=24.1h) — re-add via `hermes auth add openai-codex`",
    "2026-05-26 10:27:13,482 INFO agent.credential_pool: credential pool: no available entries (all exhausted or empty)\r",
    "2026-05-26 10:27:14,001 ERROR [20260526_102233_a1b2c3] agent.conversation_loop: API call failed",
    "Traceback (most recent call last):",
    "  File \"/usr/lib/python3/site-packages/openai/_base_client.py\", line 1047, in request",
    "    raise self._make_status_error_from_response(err.response) from None",
    "openai.AuthenticationError: Error code: 401 - {'error': {'message': 'Your authentication token has been invalidated. Please try signing in again.', 'type': 'invalid_request_error', 'code': 'token_invalidated', 'param': None}, 'status': 401}",
    "anthropic.AuthenticationError: Error code: 401 - {'type': 'error', 'error': {'type': 'authentication_error', 'message': 'invalid x-api-key'}, 'request_id': 'req_011CTestFake'}",
    "openai.RateLimitError: Error code: 429 - {'error': {'type': 'usage_limit_reached', 'message': 'The usage limit has been reached', 'plan_type': 'plus', 'resets_at': 1779800000, 'resets_in_seconds': 3600}}",
    "2026-05-26 10:27:14,001 ERROR agent.conversation_loop: Non-retryable client error: Error code: 401 - {'error': {'message': 'Token has been revoked', 'type': 'invalid_request_error', 'code': 'token_revoked', 'param': None}, 'status': 401}",
    "2026-05-26 11:00:00,000 ERROR agent.conversation_loop: Non-retryable client error: Error code: 401 - {'error': {'message': 'User not found.', 'code': 401}}",
    "2026-05-26 10:27:13,100 WARNING [20260526_102233_a1b2c3] agent.conversation_loop: API call failed (attempt 1/3) error_type=AuthenticationError thread=MainThread provider=openai-codex base_url=https://chatgpt.com/backend-api/codex model=gpt-5.1-codex summary=HTTP 401: Your authentication token has been invalidated. Please try signing in again.",
    "2026-05-26 10:27:13,482 WARNING agent.context_compressor: Summary model 'gpt-5.1-codex-mini' failed (Error code: 401 - {'error': {'code': 'token_invalidated'}, 'status': 401}). Falling back to main model 'gpt-5.1-codex' for compression.",
    "2026-05-26 10:27:13,482 WARNING agent.context_compressor: Compression skipped — repeated compaction attempts did not restore healthy context.",
    "2026-05-26 10:27:13,482 WARNING agent.context_compressor: Context compression: no provider available for summary. Middle turns will be dropped without summary for 60 seconds.",
    "2026-13-45 25:61:61,999 WARNING root: impossible date",
    "2026-05-26 10:27:13,482 WARNING [unterminated agent.x: Failed to generate context summary: y",
    "",
];

/// Tokens that mean something to the header parser, the prefilter and the rules.
const LOG_TOKENS: &[&str] = &[
    "\n",
    "\r\n",
    "\r",
    " ",
    ": ",
    "[",
    "]",
    "[s1] ",
    ",",
    "WARNING",
    "ERROR",
    "INFO",
    "warning",
    "2026-05-26 10:27:13,482 ",
    "2026-05-26 10:27:13,482 WARNING agent.context_compressor: ",
    "9999-99-99 99:99:99,999",
    "0000-00-00 00:00:00,000",
    "Error code: ",
    "Error code: 401 - ",
    "Error code: 429 - ",
    "Error: Error code: ",
    "Exception: Error code: ",
    "Failed to generate context summary: ",
    "Non-retryable client error: ",
    "credential pool: marking ",
    " DEAD (status=",
    "reason=",
    "Traceback (most recent call last):",
    "{'error': {'code': 'token_revoked'}}",
    "{'error': ",
    "'code': 'token_invalidated'",
    "'status': 401",
    "None",
    "...",
    "…",
    "—",
    "{",
    "}",
    "'",
    "\"",
    "\\",
    "\t",
    "é",
];

/// Every line of the built-in rules' sample texts.
static SAMPLE_LINES: LazyLock<Vec<String>> = LazyLock::new(|| {
    BUILTIN
        .rules()
        .iter()
        .flat_map(|rule| rule.must_match.iter().chain(&rule.must_not_match))
        .flat_map(|sample| sample.text.lines().map(str::to_owned).collect::<Vec<_>>())
        .collect()
});

/// The built-in rule set, loaded once.
static BUILTIN: LazyLock<RuleSet> = LazyLock::new(|| {
    load_rule_set(&builtin_sources()).unwrap_or_else(|errors| panic!("{errors:?}"))
});

/// Headers longer than the small line limits: a long session tag, a long logger name.
fn long_headers() -> Vec<String> {
    vec![
        format!(
            "2026-05-26 10:27:14,001 ERROR [{}] agent.conversation_loop: API call failed",
            "20260526_102233_a1b2c3".repeat(12)
        ),
        format!(
            "2026-05-26 10:27:14,001 ERROR {}: API call failed",
            "agent.".repeat(60)
        ),
    ]
}

/// The seed lines: Hermes lines, long headers and the rules' sample lines.
static SEED_LINES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    HERMES_LINES
        .iter()
        .map(|line| line.as_bytes().to_vec())
        .chain(long_headers().into_iter().map(String::into_bytes))
        .chain(SAMPLE_LINES.iter().map(|line| line.as_bytes().to_vec()))
        .collect()
});

fn seed_donors() -> Vec<&'static [u8]> {
    SEED_LINES.iter().map(Vec::as_slice).collect()
}

/// One generated log line: a seed line, mutated.
fn log_line() -> impl Strategy<Value = Vec<u8>> {
    // The long headers (right after the Hermes lines) a little more often than the others.
    let long_header = HERMES_LINES.len()..HERMES_LINES.len() + long_headers().len();
    let seed = prop_oneof![
        12 => any::<Index>().prop_map(|seed| seed.index(SEED_LINES.len())),
        1 => long_header,
    ];
    (seed, mutations(LOG_TOKENS, 0..4))
        .prop_map(|(seed, mutations)| mutate(SEED_LINES[seed].clone(), &mutations, &seed_donors()))
}

/// A generated log: mutated lines joined by `\n` (or `\r\n`), maybe without the last newline.
fn log_text() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((log_line(), prop::bool::weighted(0.1)), 0..30),
        any::<bool>(),
    )
        .prop_map(|(lines, terminated)| {
            let mut log = Vec::new();
            for (index, (line, crlf)) in lines.iter().enumerate() {
                log.extend_from_slice(line);
                if index + 1 < lines.len() || terminated {
                    log.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
                }
            }
            log
        })
}

/// What a scan found, every field of every hit, to compare scans.
fn hit_summary(hits: &[Hit]) -> Vec<String> {
    hits.iter()
        .map(|hit| {
            format!(
                "{} {} {:?} {} {:?} {:?}",
                hit.line,
                hit.matched.rule.id,
                hit.part,
                hit.text_hash,
                hit.header,
                hit.matched.fields
            )
        })
        .collect()
}

/// Scans `log` fed in chunks of the sizes given (cycled); returns the hits and the stats.
fn scan_chunked(
    rules: &RuleSet,
    file: LogFile,
    max_line: usize,
    log: &[u8],
    chunks: &[usize],
) -> (Vec<String>, ScanStats) {
    let mut scanner = LogScanner::new(rules, file, max_line);
    let mut hits = Vec::new();
    let mut rest = log;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().unwrap_or(&usize::MAX)).clamp(1, rest.len());
        let (chunk, after) = rest.split_at(size);
        scanner.feed(chunk, &mut hits);
        rest = after;
    }
    scanner.finish(&mut hits);
    let lines = scanner.stats().lines;
    for hit in &hits {
        assert!(
            (1..=lines).contains(&hit.line),
            "hit on line {} of {lines}",
            hit.line
        );
    }
    (hit_summary(&hits), scanner.stats())
}

fn count_lines(log: &[u8]) -> u64 {
    let newlines = log.iter().filter(|&&byte| byte == b'\n').count() as u64;
    newlines + u64::from(log.last().is_some_and(|&byte| byte != b'\n'))
}

fn max_line() -> impl Strategy<Value = usize> {
    prop_oneof![2 => Just(DEFAULT_MAX_LINE), 1 => 16usize..600]
}

/// Checks what `parse_header` makes of one line.
fn check_header(line: &[u8]) {
    let Some(header) = record::parse_header(line) else {
        return;
    };
    assert_eq!(header.timestamp_text.as_bytes(), &line[..23]);
    assert!(!header.level.is_empty() && header.level.bytes().all(|b| b.is_ascii_uppercase()));
    assert!(!header.logger.is_empty() && !header.logger.contains(' '));
    assert!(header.message_start <= line.len());
    assert_eq!(&line[header.message_start - 2..header.message_start], b": ");
    if let Some(time) = header.local_time() {
        check_time_round_trip(header.timestamp_text, time);
    }
}

/// A parsed timestamp renders back to its text.
fn check_time_round_trip(text: &str, time: jiff::civil::DateTime) {
    let rendered = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.subsec_nanosecond() / 1_000_000
    );
    assert_eq!(rendered, text);
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn record_headers_of_mutated_lines(line in log_line()) {
        check_header(&line);
        if let Some(cr) = line.strip_suffix(b"\r") {
            check_header(cr);
        }
    }

    #[test]
    fn local_times_of_mutated_timestamps(
        // Mostly valid fields, some out of range (month 13, day 32, hour 24, second 60...).
        fields in (0u32..10_000, 0u32..14, 0u32..33, 0u32..25, 0u32..61, 0u32..62, 0u32..1000),
        mutations in prop_oneof![
            2 => Just(Vec::new()),
            1 => mutations(&["-", " ", ":", ",", "0", "9", "99", "+1", "é", "\u{0660}"], 1..3),
        ],
    ) {
        let (year, month, day, hour, minute, second, millis) = fields;
        let text = format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02},{millis:03}");
        let bytes = mutate(text.into_bytes(), &mutations, &[b"2026-05-26 10:27:13,482".as_slice()]);
        let text = String::from_utf8_lossy(&bytes);
        if let Some(time) = record::parse_local_time(&text) {
            check_time_round_trip(&text, time);
        }
        // A header with that timestamp.
        let line = format!("{text} WARNING root: message");
        check_header(line.as_bytes());
    }
}

/// Scans `log` whole and in `chunks`, and the lines of `log` with `feed_lines`; checks the
/// counts and that `feed_lines` finds what `feed` finds in the joined lines. Returns the hits of
/// the whole and of the chunked scan.
fn check_scans(
    file: LogFile,
    max_line: usize,
    log: &[u8],
    chunks: &[usize],
) -> Result<(Vec<String>, Vec<String>), TestCaseError> {
    let rules = &*BUILTIN;
    let (chunked, stats) = bounded(SCAN_LIMIT, "LogScanner::feed (chunked)", log, || {
        scan_chunked(rules, file, max_line, log, chunks)
    });
    prop_assert_eq!(stats.lines, count_lines(log));
    prop_assert_eq!(stats.bytes, log.len() as u64);
    let (whole, whole_stats) = scan_chunked(rules, file, max_line, log, &[usize::MAX]);
    prop_assert_eq!(stats.lines, whole_stats.lines);

    // The same lines given split, as the daemon gives them.
    let lines: Vec<&[u8]> = log.split(|&byte| byte == b'\n').collect();
    let mut scanner = LogScanner::new(rules, file, max_line);
    let mut hits = Vec::new();
    bounded(SCAN_LIMIT, "LogScanner::feed_lines", log, || {
        scanner.feed_lines(lines.iter().copied(), &mut hits);
        scanner.finish(&mut hits);
    });
    prop_assert_eq!(scanner.stats().lines, lines.len() as u64);
    // `feed_lines` scans as `feed` scans the lines joined, each followed by a newline.
    let mut joined = lines.join(&b'\n');
    joined.push(b'\n');
    let (fed, _) = scan_chunked(rules, file, max_line, &joined, &[usize::MAX]);
    prop_assert_eq!(hit_summary(&hits), fed);
    Ok((whole, chunked))
}

proptest! {
    #![proptest_config(config(3000))]

    /// With lines within the limit, the hits do not depend on the chunking either.
    #[test]
    fn scanner_on_mutated_logs_in_random_chunks(
        log in log_text(),
        chunks in prop::collection::vec(1usize..400, 1..12),
        file in select(LogFile::ALL.to_vec()),
        max_line in max_line(),
    ) {
        let (whole, chunked) = check_scans(file, max_line, &log, &chunks)?;
        let longest = log.split(|&byte| byte == b'\n').map(<[u8]>::len).max().unwrap_or(0);
        if longest <= max_line {
            prop_assert_eq!(&chunked, &whole, "chunkings {:?} and whole", chunks);
        }
    }
}

proptest! {
    #![proptest_config(config(20_000))]

    /// Found a bug, now fixed: a traceback line's record header depended on where a chunk ended
    /// when the header line is longer than `max_line` (read cut within a block, uncut at a
    /// block's end).
    #[test]
    fn scanner_hits_do_not_depend_on_chunking(
        log in log_text(),
        chunks in prop::collection::vec(1usize..400, 1..12),
        file in select(LogFile::ALL.to_vec()),
        max_line in max_line(),
    ) {
        let (whole, chunked) = check_scans(file, max_line, &log, &chunks)?;
        prop_assert_eq!(&chunked, &whole, "chunkings {:?} and whole", chunks);
    }
}

/// The minimal failing input of `scanner_hits_do_not_depend_on_chunking`, shortened: a record
/// whose header (a long session tag) is longer than `max_line`, then a traceback line. Scanned
/// as one block, the header above is read cut to `max_line`, is no header, and the hit has no
/// record; fed in two chunks split after the header, the header ended the first block and was
/// read uncut, so the hit got it. Now the header is read cut at a block's end too.
#[test]
fn traceback_record_header_does_not_depend_on_chunking() {
    let header = &long_headers()[0];
    let log = format!("{header}\n{}\n", HERMES_LINES[13]);
    let scan =
        |chunks: &[usize]| scan_chunked(&BUILTIN, LogFile::Errors, 208, log.as_bytes(), chunks).0;
    let whole = scan(&[usize::MAX]);
    assert_eq!(whole.len(), 1, "{whole:?}");
    assert_eq!(scan(&[header.len() + 1, usize::MAX]), whole);
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn scanner_on_lines_longer_than_the_limit(
        seed in log_line(),
        filler in prop_oneof![Just(b'x'), Just(b'\''), Just(b'{'), Just(b'\xff')],
        long in (DEFAULT_MAX_LINE - 64)..(DEFAULT_MAX_LINE + DEFAULT_MAX_LINE / 2),
        after in log_text(),
        chunk in prop_oneof![Just(usize::MAX), 4096usize..(1 << 18)],
    ) {
        let mut log = seed;
        log.resize(log.len() + long, filler);
        log.push(b'\n');
        log.extend_from_slice(&after);
        let rules = &*BUILTIN;
        let (_, stats) = bounded(SCAN_LIMIT, "LogScanner::feed (long line)", &log, || {
            scan_chunked(rules, LogFile::Errors, DEFAULT_MAX_LINE, &log, &[chunk])
        });
        prop_assert_eq!(stats.lines, count_lines(&log));
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads: Python literals.

/// `valid` most of the time, else `invalid`: mostly well-formed input reaches the deep paths,
/// the rest the error paths.
fn mostly<T: Debug + Clone + 'static>(
    valid: impl Strategy<Value = T> + 'static,
    invalid: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![40 => valid, 1 => invalid].boxed()
}

fn py_name() -> impl Strategy<Value = String> {
    mostly(
        select(&[
            "None", "True", "False", "inf", "nan", "-inf", "+nan", "- inf",
        ]),
        select(&[
            "Non", "Tru", "none", "null", "true", "__x", "Infinity", "NaN", "+ 1",
        ]),
    )
    .prop_map(str::to_owned)
}

fn py_number() -> impl Strategy<Value = String> {
    let radix_at_limit =
        (select(&["0x", "0b", "0o", "-0X", "0B"]), 0usize..9).prop_map(|(prefix, extra)| {
            let bits = MAX_RADIX_INT_BITS - 4 + extra;
            match &prefix[prefix.len() - 1..] {
                "x" | "X" => format!("{prefix}{}", "f".repeat(bits / 4)),
                "o" => format!("{prefix}{}", "7".repeat(bits / 3)),
                _ => format!("{prefix}1{}", "0".repeat(bits - 1)),
            }
        });
    let valid = prop_oneof![
        6 => "[-+]?(0|[1-9][0-9]{0,18})",
        2 => "[-+]? ?[1-9]([0-9]|_[0-9]){0,20}",
        2 => "[-+]?0[xX](_?[0-9a-fA-F]){1,40}",
        1 => "[-+]?0[oO](_?[0-7]){1,40}",
        1 => "[-+]?0[bB](_?[01]){1,140}",
        4 => "[-+]?([0-9]{1,6}\\.[0-9]{0,6}|\\.[0-9]{1,6}|[0-9]{1,6})([eE][-+]?[0-9]{1,3})?",
        1 => "[0-9]{1,3}[eE][-+]?[0-9]{3,6}",
        1 => "[1-9][0-9]{30,400}",
        1 => radix_at_limit,
    ];
    let invalid = prop_oneof![
        "[1-9][0-9_]{0,30}_",
        "[1-9]__[0-9]",
        "0[0-9_]{1,5}",
        "0[xob][g-z_]?",
        "[0-9]{1,3}\\.?[0-9]{0,3}[jJ]",
        "[0-9]{1,3}[eE][-+]?",
        "\\.",
        "[-+]",
    ];
    mostly(valid, invalid)
}

fn py_string() -> impl Strategy<Value = String> {
    let prefix = mostly(
        select(&[
            "", "", "", "", "", "", "r", "u", "b", "br", "rb", "R", "U", "B", "Br", "bR", "RB",
        ]),
        select(&["f", "rf", "ub", "x", "bb"]),
    );
    let quote = select(&["'", "'", "'", "\"", "'''", "\"\"\""]);
    let valid_part = prop_oneof![
        8 => "[a-zA-Z0-9 ,.:;{}()<>=_-]{0,12}",
        2 => r#"\\['"\\abfnrtv]"#,
        1 => r"\\x[0-9a-fA-F]{2}",
        1 => r"\\u[0-9a-fA-F]{4}",
        1 => r"\\U(0010[0-9a-f]{4}|000[0-9a-f]{5})",
        1 => r"\\N\{[A-Z ]{1,12}\}",
        1 => r"\\[0-7]{1,3}",
        1 => r"\\\n|\\\r\n|\\[qz%\x{e9}]",
        1 => select(&["é", "😀", "\u{2028}", "\u{fffd}", "\u{0}", "\t", "\u{7f}"])
            .prop_map(str::to_owned),
        1 => any::<char>()
            .prop_filter("not a quote", |c| !matches!(c, '\'' | '"' | '\\' | '\n' | '\r'))
            .prop_map(String::from),
        1 => "[a-z]{100,3000}",
    ];
    let invalid_part = prop_oneof![
        r"\\x[0-9a-fA-F]?",
        r"\\u[0-9a-fA-F]{0,3}",
        r"\\U0011[0-9a-f]{4}|\\U[0-9a-fA-F]{0,7}",
        r"\\N\{[A-Z ]{0,12}",
        select(&["'", "\"", "''", "\"\"", "\n", "\r", "\\"]).prop_map(str::to_owned),
    ];
    let part = prop_oneof![30 => valid_part, 1 => invalid_part];
    let body = (quote, prop::collection::vec(part, 0..8))
        .prop_map(|(quote, parts)| format!("{quote}{}{quote}", parts.concat()));
    // Adjacent literals concatenate; mostly all str or all bytes, as Python requires.
    let other_prefix = select(&["", "r", "b", "u", "rb"]);
    (
        prefix,
        prop_oneof![
            6 => body.clone().prop_map(|body| vec![(None, body)]),
            1 => prop::collection::vec((prop::option::weighted(0.1, other_prefix), body), 2..4),
        ],
        select(&[" ", "", "\n", "  "]),
    )
        .prop_map(|(prefix, strings, sep)| {
            let strings: Vec<String> = strings
                .iter()
                .map(|(other, body)| format!("{}{body}", other.unwrap_or(prefix)))
                .collect();
            strings.join(sep)
        })
}

/// A Python literal, valid or nearly: containers of every kind, nested up to 6 deep.
fn py_literal() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![3 => py_number(), 4 => py_string(), 1 => py_name()];
    leaf.prop_recursive(6, 96, 8, |inner| {
        let items = prop::collection::vec(inner.clone(), 0..8);
        let sep = mostly(
            select(&[", ", ",", " , ", ",\n  ", ",\t", ",\r\n"]),
            select(&[",,", " ", ";", ", \\\n"]),
        );
        let colon = mostly(select(&[": ", ":", " : ", ":\n"]), select(&["", "::", "="]));
        let trailing = prop::bool::weighted(0.2);
        prop_oneof![
            3 => (items.clone(), sep.clone(), trailing).prop_map(|(items, sep, trailing)| {
                let comma = trailing && !items.is_empty();
                format!("[{}{}]", items.join(sep), if comma { "," } else { "" })
            }),
            2 => (items, sep.clone(), trailing).prop_map(|(items, sep, trailing)| {
                let comma = (trailing && !items.is_empty()) || items.len() == 1;
                format!("({}{})", items.join(sep), if comma { "," } else { "" })
            }),
            1 => inner.clone().prop_map(|value| format!("( {value} )")),
            1 => (prop::collection::vec(inner.clone(), 1..6), sep.clone())
                .prop_map(|(items, sep)| format!("{{{}}}", items.join(sep))),
            4 => (
                prop::collection::vec(
                    (prop_oneof![4 => py_string(), 1 => py_number(), 1 => inner.clone()], inner),
                    0..7
                ),
                sep,
                colon,
            )
                .prop_map(|(entries, sep, colon)| {
                    let entries: Vec<String> =
                        entries.iter().map(|(k, v)| format!("{k}{colon}{v}")).collect();
                    format!("{{{}}}", entries.join(sep))
                }),
        ]
    })
}

/// Fragments of Python literals, to insert and replace.
const PY_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    ": ",
    ", ",
    ",",
    "'",
    "\"",
    "'''",
    "\"\"\"",
    "\\",
    "\\x",
    "\\u",
    "\\U",
    "\\N{",
    "...",
    "…",
    "None",
    "True",
    "False",
    "inf",
    "nan",
    "-",
    "+",
    "0x",
    "0o",
    "0b",
    "_",
    ".",
    "e",
    "e+",
    "j",
    "r",
    "b",
    "rb",
    "f",
    "u",
    " ",
    "\n",
    "\t",
    "\r",
    "\x0c",
    "#",
    "1",
    "0",
    "00",
    "1_000",
    "9999999999999999999999",
    "1e999",
    "'a' 'b'",
    "{'a': 1}",
    "[[[",
    "]]]",
    "((",
    "))",
    "é",
    "😀",
    "\u{feff}",
    "<Response [401]>",
    "Error code: 401 - ",
];

/// Calls every Python-literal entry point on `text`, each within the time limit, and checks
/// that they agree.
fn check_pyliteral(text: &str) {
    let input = text.as_bytes();
    let limit = call_limit(text.len());
    let full = bounded(limit, "pyliteral::parse", input, || pyliteral::parse(text));
    let prefix = bounded(limit, "pyliteral::parse_prefix", input, || {
        pyliteral::parse_prefix(text)
    });
    let lenient = bounded(limit, "pyliteral::parse_lenient", input, || {
        pyliteral::parse_lenient(text)
    });
    let found = bounded(limit, "payload::find", input, || payload::find(text));
    let marked = format!("Error code: 401 - {text}. Further summary attempts paused.");
    let marked_found = bounded(
        limit,
        "payload::find (after a marker)",
        marked.as_bytes(),
        || payload::find(&marked),
    );
    assert_eq!(marked_found.and_then(|p| p.status), Some(401));

    if let Ok(value) = &full {
        assert_eq!(prefix.as_ref().map(|p| &p.0), Ok(value), "{text:?}");
    }
    if let Err(error) = &full {
        assert!(error.offset <= text.len(), "{text:?}: {error:?}");
    }
    if let Err(error) = &prefix {
        assert!(error.offset <= text.len(), "{text:?}: {error:?}");
    }
    if let Ok((value, consumed)) = &prefix {
        assert!(*consumed <= text.len() && text.is_char_boundary(*consumed));
        let lenient = lenient
            .as_ref()
            .expect("lenient accepts what parse_prefix accepts");
        assert_eq!(
            (&lenient.value, lenient.consumed, lenient.truncated),
            (value, *consumed, false),
            "{text:?}"
        );
        if text.trim_start().starts_with('{') {
            let found = found.as_ref().expect("a literal dict is a payload");
            if !text.contains("Error code: ") {
                assert_eq!(&found.body, value, "{text:?}");
            }
        }
    }
    match &lenient {
        Ok(lenient) => {
            assert!(lenient.consumed <= text.len() && text.is_char_boundary(lenient.consumed))
        }
        Err(error) => assert!(error.offset <= text.len(), "{text:?}: {error:?}"),
    }
}

/// A generated literal, maybe mutated, maybe cut short (with or without an ellipsis).
fn payload_text() -> impl Strategy<Value = String> {
    (
        py_literal(),
        prop_oneof![2 => Just(Vec::new()), 1 => mutations(PY_TOKENS, 1..4)],
        prop::option::weighted(0.3, (any::<Index>(), select(&["", "...", "…", " ..."]))),
        select(&["", "", "", "", "", "", "", "   ", "\n", "\u{a0}"]),
        select(&[
            "",
            "",
            ". Further summary attempts paused for 60 seconds.",
            ")",
            " trailing",
        ]),
    )
        .prop_map(|(literal, mutations, cut, before, after)| {
            let donors: [&[u8]; 2] = [HERMES_LINES[0].as_bytes(), HERMES_LINES[14].as_bytes()];
            let mut bytes = mutate(literal.into_bytes(), &mutations, &donors);
            if let Some((at, ellipsis)) = cut {
                bytes.truncate(at.index(bytes.len() + 1));
                bytes.extend_from_slice(ellipsis.as_bytes());
            }
            format!("{before}{}{after}", String::from_utf8_lossy(&bytes))
        })
}

/// A well-formed scalar, to nest.
fn valid_leaf() -> impl Strategy<Value = &'static str> {
    select(&["1", "'x'", "None", "0x1f", "1.5", "b'\\x00'", "-7", "\"q\""])
}

/// Adversarial inputs of about `n` bytes: deep nesting, huge strings and numbers, long runs of
/// what each loop of the parser consumes.
fn adversarial(kind: usize, n: usize) -> String {
    let n = n.max(1);
    let hex_at_limit = "f".repeat(MAX_RADIX_INT_BITS / 4);
    match kind {
        0 => "[".repeat(n),
        1 => "(".repeat(n),
        2 => "{'a': ".repeat(n / 6 + 1),
        3 => format!("{}{}", "[".repeat(n / 2), "]".repeat(n / 2)),
        4 => format!("'{}'", "a".repeat(n)),
        5 => format!("'{}", "a".repeat(n)),
        6 => format!("'''{}'''", "a\n".repeat(n / 2)),
        7 => format!("b'{}'", "\\x41".repeat(n / 4)),
        8 => format!("'{}'", "\\N{LATIN SMALL LETTER A}".repeat(n / 24 + 1)),
        9 => "'a' ".repeat(n / 4 + 1),
        10 => format!("[{}]", "1, ".repeat(n / 3)),
        11 => format!(
            "{{{}}}",
            (0..n / 14 + 1)
                .map(|i| format!("'k{i}': None, "))
                .collect::<String>()
        ),
        12 => format!("{{{}}}", "'k': 1, ".repeat(n / 8)),
        13 => "1".repeat(n),
        14 => format!("{}.5e-3", "1".repeat(n)),
        15 => format!("0x{hex_at_limit}"),
        16 => format!("0x{}", "f".repeat(n)),
        17 => format!("0b{}", "1".repeat(MAX_RADIX_INT_BITS)),
        18 => format!("0o{}", "7".repeat(MAX_RADIX_INT_BITS / 3)),
        19 => format!("[{}]", format!("0x{hex_at_limit}, ").repeat(n / 1030 + 1)),
        20 => "a".repeat(n),
        21 => format!("{}'x'", "r".repeat(n)),
        22 => "- ".repeat(n / 2 + 1),
        23 => format!("Error code: 401 - {}", "{'error': ".repeat(n / 10 + 1)),
        24 => "Error code: ".repeat(n / 12 + 1),
        25 => format!("{}{{", " ".repeat(n)),
        26 => format!("'{}'", "\\".repeat(n)),
        27 => format!("r'{}'", "\\'".repeat(n / 2)),
        28 => format!("{{{}}}", "(1, 2, (3, 4)): 1, ".repeat(n / 19 + 1)),
        29 => format!("1e{}", "9".repeat(n)),
        30 => format!("0.{}1", "0".repeat(n)),
        31 => format!("{}...", "…".repeat(n / 3 + 1)),
        32 => format!("{}'{}", "[".repeat(MAX_DEPTH - 1), "a".repeat(n)),
        33 => format!("{{'a': [{}", "1, ".repeat(n / 3)),
        34 => format!("{}{}...", "{'a': ".repeat(MAX_DEPTH), "'x".repeat(n / 2)),
        35 => format!("({})", "'a' ".repeat(n / 4 + 1)),
        36 => "1_".repeat(n / 2 + 1),
        37 => format!("'{}'", "\\u00e9".repeat(n / 6 + 1)),
        38 => format!("'{}'", "é".repeat(n / 2 + 1)),
        _ => format!("{{{}", "1: [], ".repeat(n / 7 + 1)),
    }
}

const ADVERSARIAL_KINDS: usize = 40;

proptest! {
    #![proptest_config(config(8000))]

    #[test]
    fn python_literals_mutated_never_panic_and_finish_quickly(text in payload_text()) {
        check_pyliteral(&text);
    }
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn nesting_is_limited_to_max_depth(
        depth in prop_oneof![0usize..=MAX_DEPTH + 2, (MAX_DEPTH - 2)..=(MAX_DEPTH + 2), 100usize..100_000],
        kinds in prop::collection::vec(0usize..4, 1..6),
        leaf in valid_leaf(),
        closed in any::<bool>(),
        ellipsis in any::<bool>(),
    ) {
        const OPEN: [&str; 4] = ["[", "(", "{", "{'k': "];
        const CLOSE: [&str; 4] = ["]", ")", "}", "}"];
        let mut text = String::new();
        for level in 0..depth {
            text.push_str(OPEN[kinds[level % kinds.len()]]);
        }
        text.push_str(leaf);
        if closed {
            for level in (0..depth).rev() {
                text.push_str(CLOSE[kinds[level % kinds.len()]]);
            }
        } else if ellipsis {
            text.push_str("...");
        }
        check_pyliteral(&text);
        let full = pyliteral::parse(&text);
        let lenient = pyliteral::parse_lenient(&text);
        if depth > MAX_DEPTH {
            prop_assert!(full.is_err() && lenient.is_err(), "depth {}: {:?}", depth, lenient);
        } else if closed {
            prop_assert!(full.is_ok(), "depth {}: {:?}", depth, full);
        } else if depth > 0 {
            let lenient = lenient.expect("a cut literal is salvaged");
            prop_assert!(lenient.truncated);
        }
    }
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn adversarial_payloads_finish_quickly(
        kind in 0..ADVERSARIAL_KINDS,
        n in prop_oneof![0usize..1000, 1000usize..300_000],
        mutations in mutations(PY_TOKENS, 0..3),
    ) {
        let text = adversarial(kind, n);
        let bytes = mutate(text.into_bytes(), &mutations, &[]);
        check_pyliteral(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn adversarial_payloads_of_one_mebibyte_finish_quickly() {
    for kind in 0..ADVERSARIAL_KINDS {
        check_pyliteral(&adversarial(kind, 1 << 20));
    }
}

// ---------------------------------------------------------------------------------------------
// auth.json.

/// Strings that mean something somewhere in `auth.json`.
fn json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(
            &[
                "a1b2c3", "d4e5f6a7b8", "alice@example.com", "", " ", "ok", "exhausted", "dead",
                "DEAD", "cooling", "oauth", "api_key", "manual:device_code", "env:OPENAI_API_KEY",
                "token_invalidated", "401", " 401 ", "4o1", "-1", "1e400", "nan", "NaN", "inf",
                "1780000000", "1780000000123", "1780000000.5", "0", "-0",
                "2026-05-28T20:00:00.5Z", "2026-05-28T20:00:00Z", "2026-05-28T20:00:00+02:00",
                "2026-05-28 20:00:00Z", "2026-13-45T99:99:99Z", "9999-12-31T23:59:59Z",
                "-009999-01-01T00:00:00Z", "2026-05-28T20:00:00", "ZZZ", "sha256:0123456789abcdef",
                "sha256:", "aéééééé", "é", "日本語のラベル", "\u{0}", "\u{feff}", "😀😀😀",
            ],
        )
        .prop_map(str::to_owned),
        1 => any::<String>(),
        1 => "[a-zA-Z0-9:@._-]{0,40}",
    ]
}

fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => any::<i64>().prop_map(Value::from),
        2 => (0i64..2_000_000_000_000).prop_map(Value::from),
        2 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => select(
            &[
                "1e400", "-1e400", "123456789012345678901234567890", "-0", "0.0", "1E-400",
                "401.0", "401.5", "1780000000.5", "1.7976931348623157e308", "4.9e-324",
            ],
        )
        .prop_map(|text| Value::Number(serde_json::from_str(text).expect("a JSON number"))),
    ]
}

fn json_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => json_number(),
        4 => json_text().prop_map(Value::String),
    ]
}

/// Any JSON value, nested a little.
fn json_any() -> impl Strategy<Value = Value> {
    json_scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,12}", inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

const ENTRY_KEYS: &[&str] = &[
    "id",
    "label",
    "auth_type",
    "source",
    "priority",
    "last_status",
    "last_status_at",
    "last_error_code",
    "last_error_reason",
    "last_error_message",
    "last_error_reset_at",
    "last_refresh",
    "access_token",
    "refresh_token",
    "agent_key",
    "api_key",
    "token",
    "secret",
    "secret_fingerprint",
    "expires_at",
    "base_url",
    "unknown_field",
    "request_count",
];

/// A value for an entry key: mostly of the right type, sometimes any value.
fn entry_value(key: &'static str) -> BoxedStrategy<Value> {
    let right = match key {
        "last_status_at" | "last_error_reset_at" | "last_refresh" | "expires_at" => prop_oneof![
            json_number(),
            json_text().prop_map(Value::String),
            Just(Value::Null),
        ]
        .boxed(),
        "last_error_code" | "priority" | "request_count" => prop_oneof![
            json_number(),
            json_text().prop_map(Value::String),
            Just(Value::Null),
        ]
        .boxed(),
        _ => prop_oneof![4 => json_text().prop_map(Value::String), 1 => Just(Value::Null)].boxed(),
    };
    prop_oneof![12 => right, 1 => json_any()].boxed()
}

fn pool_entry() -> impl Strategy<Value = Value> {
    (
        mostly(json_text().prop_map(Value::String), json_any()),
        prop::collection::vec(
            select(ENTRY_KEYS).prop_flat_map(|key| (Just(key), entry_value(key))),
            0..14,
        ),
    )
        .prop_map(|(id, fields)| {
            let mut entry = Map::new();
            entry.insert("id".into(), id);
            for (key, value) in fields {
                entry.insert(key.into(), value);
            }
            Value::Object(entry)
        })
}

/// A Hermes-shaped `auth.json` document.
fn auth_document() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(
            (
                select(&["openai-codex", "anthropic", "openrouter", "nous", "", "é"]),
                prop::collection::vec(pool_entry(), 0..4),
            ),
            0..4,
        ),
        prop::option::of(json_text()),
        prop::collection::vec(("[a-z_]{1,10}", json_any()), 0..3),
    )
        .prop_map(|(pools, active, unknown)| {
            let mut top = Map::new();
            top.insert("version".into(), Value::from(1));
            if let Some(active) = active {
                top.insert("active_provider".into(), Value::String(active));
            }
            let pools: Map<String, Value> = pools
                .into_iter()
                .map(|(provider, entries)| (provider.to_owned(), Value::Array(entries)))
                .collect();
            top.insert("credential_pool".into(), Value::Object(pools));
            for (key, value) in unknown {
                top.insert(key, value);
            }
            Value::Object(top)
        })
}

#[derive(Debug, Clone)]
enum JsonMutation {
    /// Replace the node at a path with a value (a wrong type, most of the time).
    Replace(Vec<Index>, Value),
    /// Remove the node at a path from its parent.
    Remove(Vec<Index>),
    /// Wrap the node at a path in `depth` arrays.
    Nest(Vec<Index>, usize),
}

fn json_mutation() -> impl Strategy<Value = JsonMutation> {
    let path = prop::collection::vec(any::<Index>(), 0..5);
    prop_oneof![
        4 => (path.clone(), json_any()).prop_map(|(path, value)| JsonMutation::Replace(path, value)),
        2 => path.clone().prop_map(JsonMutation::Remove),
        1 => (path, prop_oneof![4 => 1usize..20, 2 => 100usize..128, 1 => 128usize..300])
            .prop_map(|(path, depth)| JsonMutation::Nest(path, depth)),
    ]
}

/// The node at `path` (each index picks a child, stopping at a leaf), with its parent.
fn node_at<'v>(value: &'v mut Value, path: &[Index]) -> &'v mut Value {
    let Some((first, rest)) = path.split_first() else {
        return value;
    };
    let len = match value {
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        _ => 0,
    };
    if len == 0 {
        return value;
    }
    let child = first.index(len);
    match value {
        Value::Array(items) => node_at(&mut items[child], rest),
        Value::Object(map) => node_at(map.values_mut().nth(child).expect("in range"), rest),
        _ => unreachable!("only containers have children"),
    }
}

fn mutate_json(mut document: Value, mutations: &[JsonMutation]) -> Value {
    for mutation in mutations {
        match mutation {
            JsonMutation::Replace(path, value) => *node_at(&mut document, path) = value.clone(),
            JsonMutation::Remove(path) => {
                let Some((last, parent)) = path.split_last() else {
                    continue;
                };
                match node_at(&mut document, parent) {
                    Value::Array(items) if !items.is_empty() => {
                        items.remove(last.index(items.len()));
                    }
                    Value::Object(map) if !map.is_empty() => {
                        let key = map.keys().nth(last.index(map.len())).cloned();
                        map.remove(&key.expect("in range"));
                    }
                    _ => {}
                }
            }
            JsonMutation::Nest(path, depth) => {
                let node = node_at(&mut document, path);
                let mut nested = node.take();
                for _ in 0..*depth {
                    nested = Value::Array(vec![nested]);
                }
                *node = nested;
            }
        }
    }
    document
}

const JSON_TOKENS: &[&str] = &[
    "NaN",
    "Infinity",
    "-Infinity",
    "nan",
    "1e400",
    "-",
    "+1",
    "01",
    "0x10",
    "1.",
    ".5",
    "\"",
    "\\",
    "\\u",
    "\\ud800",
    "\\udc00\\ud800",
    "\\u0000",
    "\\x41",
    ",",
    ",,",
    ":",
    "{",
    "}",
    "[",
    "]",
    "null",
    "true",
    "nul",
    "//",
    "/*",
    "\u{feff}",
    "\u{a0}",
    "'",
    "\"id\": \"x\"",
    "\"credential_pool\": ",
    "\"last_error_code\": \"401\"",
    "[{",
    "}]",
    "\n",
    "\t",
];

/// The bytes of an `auth.json`: a mutated document, rendered and maybe mutated as text.
fn auth_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        auth_document(),
        prop_oneof![1 => Just(Vec::new()), 2 => prop::collection::vec(json_mutation(), 1..4)],
        any::<bool>(),
        prop_oneof![8 => Just(0usize), 3 => Just(1), 1 => Just(2)],
        prop_oneof![3 => Just(Vec::new()), 1 => mutations(JSON_TOKENS, 1..3)],
    )
        .prop_map(|(document, json_mutations, pretty, boms, text_mutations)| {
            let document = mutate_json(document, &json_mutations);
            let text = if pretty {
                serde_json::to_vec_pretty(&document)
            } else {
                serde_json::to_vec(&document)
            }
            .expect("a Value serializes");
            let mut bytes = b"\xEF\xBB\xBF".repeat(boms);
            bytes.extend(mutate(
                text,
                &text_mutations,
                &[br#"{"id": "a", "label": null}"#.as_slice()],
            ));
            bytes
        })
}

fn parse_auth(bytes: &[u8]) -> Result<snapshot::AuthSnapshot, snapshot::AuthError> {
    bounded(CALL_LIMIT, "snapshot::parse", bytes, || {
        snapshot::parse(Path::new("/h/auth.json"), bytes)
    })
}

/// `Debug` text, to compare results holding NaN or errors without `PartialEq`.
fn debug(value: &impl Debug) -> String {
    format!("{value:?}")
}

proptest! {
    #![proptest_config(config(10_000))]

    #[test]
    fn auth_json_parses_or_fails_deterministically(bytes in auth_bytes()) {
        let first = parse_auth(&bytes);
        let again = parse_auth(&bytes);
        prop_assert_eq!(debug(&first), debug(&again));
        if let Err(error) = &first {
            prop_assert!(error.to_string().starts_with("/h/auth.json"), "{}", error);
        }
        if first.is_ok() {
            // The document, written back, reads the same.
            let document = snapshot::parse_document(Path::new("a"), &bytes).expect("it parsed");
            let written = serde_json::to_vec(&document).expect("a Value serializes");
            prop_assert_eq!(debug(&first), debug(&parse_auth(&written)));
        }
    }
}

proptest! {
    #![proptest_config(config(2000))]

    /// Found a panic: `PoolEntry::log_name` cuts `id` at byte 8 whatever the characters.
    #[test]
    fn auth_json_entries_have_log_names(bytes in auth_bytes()) {
        if let Ok(snapshot) = parse_auth(&bytes) {
            for entry in snapshot.pools.iter().flat_map(|pool| &pool.entries) {
                let name = entry.log_name();
                prop_assert!(!name.is_empty() || entry.label.as_deref() == Some(""));
            }
        }
    }
}

/// The minimal failing input of `auth_json_entries_have_log_names` (and a simpler one): Hermes
/// names an entry `label or id[:8]`, eight characters, but `log_name` cuts eight bytes.
#[test]
fn log_name_of_a_non_ascii_id() {
    for (id, name) in [("ⶰண𑜀", "ⶰண𑜀"), ("aéééééééé", "aééééééé")] {
        let bytes =
            format!(r#"{{"version":1,"credential_pool":{{"openai-codex":[{{"id":"{id}"}}]}}}}"#);
        let snapshot = snapshot::parse(Path::new("auth.json"), bytes.as_bytes()).unwrap();
        assert_eq!(snapshot.pools[0].entries[0].log_name(), name);
    }
}

// ---------------------------------------------------------------------------------------------
// The rule loader.

/// Values to put after `key = `: wrong types, bad or huge regexes, unknown names.
const TOML_VALUES: &[&str] = &[
    "42",
    "-1",
    "true",
    "1.5",
    "nan",
    "inf",
    "1979-05-27T07:32:00Z",
    "[]",
    "[1, \"a\"]",
    "{}",
    "\"\"",
    "\"bogus\"",
    "{ in = \"nope\" }",
    "{ in = \"terminal_reasons\" }",
    "{ in = 3 }",
    "{ matches = \"(\" }",
    "{ matches = '(?i)token' }",
    "{ bogus = \"x\" }",
    "{ in = \"terminal_reasons\", matches = \"x\" }",
    "{ reason = { in = \"missing_list\" } }",
    "{ status = 401, reason = { in = \"terminal_reasons\" } }",
    "{ \"payload.error.code\" = [\"a\", 1, true] }",
    "{ status = 1.5 }",
    "'a{100000}'",
    "'(?:a{1000}){1000}'",
    "'x{1000}{1000}'",
    "'\\w{5000}'",
    "'(?P<payload>.*'",
    "'(?P<x>a)(?P<x>b)'",
    "'\\p{Bogus}'",
    "'[z-a]'",
    "'(?P<payload>.*)'",
    "'^Error code: (?P<status>\\d+) - (?P<payload>.*)'",
    "'((((((((((((((((((((a))))))))))))))))))))'",
    "'(a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q)xyzw'",
    "'[^\\x00-\\x{10FFFF}]'",
    "\"terminal_auth_failure\"",
    "\"mark_dead\"",
    "\"critical\"",
    "\"continuation\"",
    "[\"errors.log\"]",
    "[\"debug.log\"]",
    "[\"agent.log\", \"agent.log\"]",
    "[\"ab\"]",
    "[\"\\n\\n\\n\\n\"]",
    "[\"\"]",
    "'''multi\nline'''",
    "\"\\u0000\"",
    "\"\\x41\"",
    "\"unterminated",
];

/// Whole lines to insert: fields with bad values, table headers, duplicates.
const TOML_LINES: &[&str] = &[
    "files = []",
    "files = [\"debug.log\"]",
    "files = \"errors.log\"",
    "when = { reason = { in = \"missing_list\" } }",
    "when = { message = { matches = \"(\" } }",
    "when = { status = [401, \"x\", 1.5] }",
    "unless = { status = 1.5 }",
    "unless = { x = { bogus = \"y\" } }",
    "set = { status = \"x\" }",
    "set = { reason = \"r\" }",
    "set = { reason = 1 }",
    "prefilter = []",
    "prefilter = [\"ab\"]",
    "prefilter = [\"Error code: \"]",
    "enabled = false",
    "enabled = \"no\"",
    "part = \"continuation\"",
    "part = \"header\"",
    "fallback = true",
    "levels = [\"WARNING\"]",
    "levels = []",
    "severity = \"critical\"",
    "severity = \"loud\"",
    "action = \"delete_everything\"",
    "kind = \"nope\"",
    "bogus_key = 1",
    "id = \"compaction-failed\"",
    "id = \"\"",
    "id = \"with space\"",
    "id = 7",
    "pattern = 'a{100000}'",
    "pattern = '(?P<payload>.*)'",
    "pattern = '^(?P<message>.*)'",
    "[[rule]]",
    "[[rule.must_match]]",
    "[[rule.must_not_match]]",
    "[rule.must_match]",
    "[lists]",
    "[[lists]]",
    "terminal_reasons = []",
    "terminal_reasons = [1.5]",
    "terminal_reasons = \"x\"",
    "line = \"x\"",
    "line = \"2026-05-26 10:27:13,482 WARNING root: Failed to generate context summary: x\"",
    "file = \"debug.log\"",
    "file = \"agent.log\"",
    "expect = { status = 1.5 }",
    "expect = { \"payload.error.code\" = \"x\" }",
    "rule = 5",
    "# a comment",
    "",
];

const TOML_TOKENS: &[&str] = &[
    "=",
    "\"",
    "'",
    "'''",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ",",
    ".",
    "\n",
    "#",
    "\\",
    "\\u",
    "\\U0011ffff",
    "rule",
    "lists",
    "must_match",
    "id",
    "pattern",
    "true",
    "1",
    "a{100000}",
    "(",
    ")",
    "?P<",
    "é",
];

/// Fields of a rule with values of the right TOML type that the loader must still check: bad
/// or huge regexes, unknown files, empty lists, conditions on missing lists, duplicate ids.
const RULE_FIELDS: &[(&str, &str)] = &[
    ("id", "\"compaction-failed\""),
    ("id", "\"summary-failed-terminal-auth\""),
    ("id", "\"\""),
    ("id", "\"with space\""),
    ("id", "\"ünïcode\""),
    ("id", "\"new-rule\""),
    ("kind", "\"terminal_auth_failure\""),
    ("kind", "\"nope\""),
    ("action", "\"mark_dead\""),
    ("action", "\"delete_everything\""),
    ("severity", "\"loud\""),
    ("severity", "\"info\""),
    ("enabled", "false"),
    ("fallback", "true"),
    ("part", "\"continuation\""),
    ("part", "\"header\""),
    ("levels", "[\"WARNING\", \"ERROR\"]"),
    ("levels", "[]"),
    ("files", "[]"),
    ("files", "[\"debug.log\"]"),
    ("files", "[\"agent.log\"]"),
    ("files", "[\"agent.log\", \"agent.log\", \"errors.log\"]"),
    ("files", "[\"\"]"),
    ("pattern", "'a{100000}'"),
    ("pattern", "'(?:a{1000}){1000}'"),
    ("pattern", "'x{1000}{1000}'"),
    ("pattern", "'\\w{5000}'"),
    ("pattern", "'(?P<payload>.*'"),
    ("pattern", "'(?P<x>a)(?P<x>b)'"),
    ("pattern", "'\\p{Bogus}'"),
    ("pattern", "'[z-a]'"),
    ("pattern", "'(?P<payload>.*)'"),
    ("pattern", "'^(?P<message>.*)'"),
    ("pattern", "''"),
    (
        "pattern",
        "'^Error code: (?P<status>\\d+) - (?P<payload>.*)'",
    ),
    ("pattern", "'(?i)token (?P<reason>\\w+)'"),
    ("pattern", "'(a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q|r)wxyz'"),
    ("pattern", "'[^\\x00-\\x{10FFFF}]'"),
    ("pattern", "'((((((((((((((((((((a))))))))))))))))))))'"),
    (
        "pattern",
        "'Failed to generate context summary: (?P<status>\\d+)?'",
    ),
    ("prefilter", "[]"),
    ("prefilter", "[\"ab\"]"),
    ("prefilter", "[\"\"]"),
    ("prefilter", "[\"Error code: \", \"Failed to \"]"),
    ("prefilter", "[\"\\n\\n\\n\\n\"]"),
    ("prefilter", "[\"é\"]"),
    ("when", "{ reason = { in = \"missing_list\" } }"),
    ("when", "{ reason = { in = \"terminal_reasons\" } }"),
    ("when", "{ reason = { in = 3 } }"),
    ("when", "{ message = { matches = \"(\" } }"),
    ("when", "{ message = { matches = 'a{100000}' } }"),
    ("when", "{ message = { matches = '(?:a{1000}){1000}' } }"),
    ("when", "{ message = { bogus = \"x\" } }"),
    (
        "when",
        "{ message = { in = \"terminal_reasons\", matches = \"x\" } }",
    ),
    ("when", "{ status = [401, \"x\", true] }"),
    ("when", "{ status = 1.5 }"),
    ("when", "{ status = [1.5] }"),
    ("when", "{ \"payload.error.code\" = \"token_revoked\" }"),
    ("when", "{ \"payload.\" = 1, \"payload..x\" = true }"),
    ("when", "{}"),
    ("unless", "{ reason = { in = \"nope\" } }"),
    ("unless", "{ status = 401 }"),
    ("set", "{ status = \"x\" }"),
    ("set", "{ reason = \"r\", label = \"\" }"),
    ("set", "{}"),
];

/// Fields of a sample, right TOML type, maybe wrong for the loader.
const SAMPLE_FIELDS: &[(&str, &str)] = &[
    ("file", "\"debug.log\""),
    ("file", "\"agent.log\""),
    ("file", "\"errors.log\""),
    ("file", "\"\""),
    ("expect", "{ status = 1.5 }"),
    ("expect", "{ status = [401] }"),
    ("expect", "{ status = 401, reason = \"token_revoked\" }"),
    ("expect", "{ \"payload.error.code\" = \"x\" }"),
    ("expect", "{ nothing = true }"),
    ("line", "\"\""),
    ("line", "\"x\""),
    ("line", "\"\\n\\n\""),
    (
        "line",
        "\"2026-05-26 10:27:13,482 WARNING root: Failed to generate context summary: Error code: 401 - {'error': {'code': 'token_revoked'}}\"",
    ),
    (
        "line",
        "\"Traceback (most recent call last):\\nopenai.AuthenticationError: Error code: 401 - {'error': {'code': 'token_revoked'\"",
    ),
    (
        "line",
        "\"2026-05-26 10:27:13,482 WARNING root: Error code: 401 - [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"",
    ),
];

/// Named lists, maybe of the wrong types.
const LIST_VALUES: &[&str] = &[
    "[]",
    "[\"token_revoked\"]",
    "[\"x\", 1, true]",
    "[1.5]",
    "[[1]]",
    "[{ a = 1 }]",
    "\"x\"",
];

#[derive(Debug, Clone)]
enum TomlMutation {
    /// Remove the nearest `key = value` line at or after a line.
    DeleteField(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    /// Replace the value of the nearest `key = value` line with any value (mostly a wrong type).
    ReplaceValue(Index, &'static str),
    InsertLine(Index, &'static str),
    /// Set a field of a `[[rule]]` (replacing it if present, so the TOML stays valid).
    SetRuleField(Index, &'static str, &'static str),
    /// Set a field of a `[[rule.must_match]]` or `[[rule.must_not_match]]` sample.
    SetSampleField(Index, &'static str, &'static str),
    /// Remove every sample of one kind from a rule.
    DropSamples(Index, &'static str),
    /// Define a named list.
    SetList(&'static str, &'static str),
    /// Append a copy of the `[[rule]]` block around a line (a duplicate id).
    DuplicateRule(Index),
}

fn toml_mutation() -> impl Strategy<Value = TomlMutation> {
    let index = any::<Index>;
    prop_oneof![
        2 => index().prop_map(TomlMutation::DeleteField),
        1 => index().prop_map(TomlMutation::DuplicateLine),
        1 => (index(), index()).prop_map(|(a, b)| TomlMutation::SwapLines(a, b)),
        2 => (index(), select(TOML_VALUES)).prop_map(|(at, v)| TomlMutation::ReplaceValue(at, v)),
        1 => (index(), select(TOML_LINES)).prop_map(|(at, l)| TomlMutation::InsertLine(at, l)),
        8 => (index(), select(RULE_FIELDS))
            .prop_map(|(at, (key, value))| TomlMutation::SetRuleField(at, key, value)),
        3 => (index(), select(SAMPLE_FIELDS))
            .prop_map(|(at, (key, value))| TomlMutation::SetSampleField(at, key, value)),
        1 => (index(), select(&["[[rule.must_match]]", "[[rule.must_not_match]]"]))
            .prop_map(|(at, header)| TomlMutation::DropSamples(at, header)),
        1 => (select(&["terminal_reasons", "extra", "missing_list"]), select(LIST_VALUES))
            .prop_map(|(name, value)| TomlMutation::SetList(name, value)),
        1 => index().prop_map(TomlMutation::DuplicateRule),
    ]
}

/// The sections (a header line up to the next line starting with `[`) whose header is one of
/// `headers`, as line ranges.
fn sections(lines: &[String], headers: &[&str]) -> Vec<std::ops::Range<usize>> {
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| headers.contains(&lines[i].trim()))
        .collect();
    starts
        .into_iter()
        .map(|start| {
            let end = (start + 1..lines.len())
                .find(|&i| lines[i].starts_with('['))
                .unwrap_or(lines.len());
            start..end
        })
        .collect()
}

/// Sets `key = value` in the section picked by `at` among those with one of `headers`.
fn set_field(lines: &mut Vec<String>, headers: &[&str], at: &Index, key: &str, value: &str) {
    let sections = sections(lines, headers);
    if sections.is_empty() {
        return;
    }
    let section = sections[at.index(sections.len())].clone();
    let field = format!("{key} = {value}");
    let prefix = format!("{key} = ");
    match section.clone().find(|&i| lines[i].starts_with(&prefix)) {
        Some(line) => lines[line] = field,
        None => lines.insert(section.start + 1, field),
    }
}

/// The nearest line at or after `at` (wrapping around) that is a `key = value` line.
fn field_line(lines: &[String], at: &Index) -> Option<usize> {
    let at = at.index(lines.len());
    (0..lines.len())
        .map(|offset| (at + offset) % lines.len())
        .find(|&i| lines[i].contains(" = ") && !lines[i].starts_with(' '))
}

fn mutate_toml(text: &str, mutations: &[TomlMutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for mutation in mutations {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let len = lines.len();
        match mutation {
            TomlMutation::DeleteField(at) => {
                if let Some(line) = field_line(&lines, at) {
                    lines.remove(line);
                }
            }
            TomlMutation::DuplicateLine(at) => {
                let at = at.index(len);
                lines.insert(at, lines[at].clone());
            }
            TomlMutation::SwapLines(a, b) => lines.swap(a.index(len), b.index(len)),
            TomlMutation::ReplaceValue(at, value) => {
                if let Some(line) = field_line(&lines, at) {
                    let key = lines[line]
                        .split(" = ")
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    lines[line] = format!("{key} = {value}");
                }
            }
            TomlMutation::InsertLine(at, line) => {
                lines.insert(at.index(len + 1), (*line).to_owned())
            }
            TomlMutation::SetRuleField(at, key, value) => {
                set_field(&mut lines, &["[[rule]]"], at, key, value)
            }
            TomlMutation::SetSampleField(at, key, value) => set_field(
                &mut lines,
                &["[[rule.must_match]]", "[[rule.must_not_match]]"],
                at,
                key,
                value,
            ),
            TomlMutation::DropSamples(at, header) => {
                let rules = sections(&lines, &["[[rule]]"]);
                if rules.is_empty() {
                    continue;
                }
                let rule = rules[at.index(rules.len())].clone();
                // The rule's samples follow it up to the next `[[rule]]`.
                let end = (rule.end..lines.len())
                    .find(|&i| lines[i].trim() == "[[rule]]")
                    .unwrap_or(lines.len());
                let mut keep = Vec::new();
                let mut dropping = false;
                for (i, line) in lines.iter().enumerate() {
                    if (rule.end..end).contains(&i) && line.starts_with('[') {
                        dropping = line.trim() == *header;
                    }
                    if !(dropping && (rule.end..end).contains(&i)) {
                        keep.push(line.clone());
                    }
                }
                lines = keep;
            }
            TomlMutation::SetList(name, value) => {
                let field = format!("{name} = {value}");
                match lines.iter().position(|line| line.trim() == "[lists]") {
                    Some(at) => lines.insert(at + 1, field),
                    None => {
                        lines.insert(0, "[lists]".into());
                        lines.insert(1, field);
                    }
                }
            }
            TomlMutation::DuplicateRule(at) => {
                let at = at.index(len);
                let Some(start) = (0..=at).rev().find(|&i| lines[i] == "[[rule]]") else {
                    continue;
                };
                let end = (start + 1..len)
                    .find(|&i| lines[i] == "[[rule]]")
                    .unwrap_or(len);
                let block: Vec<String> = lines[start..end].to_vec();
                lines.push(String::new());
                lines.extend(block);
            }
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// Line mutations (none a third of the time) and, less often, text mutations.
fn rule_file_mutations() -> impl Strategy<Value = (Vec<TomlMutation>, Vec<Mutation>)> {
    (
        prop_oneof![4 => Just(Vec::new()), 1 => prop::collection::vec(toml_mutation(), 1..4)],
        prop_oneof![5 => Just(Vec::new()), 1 => mutations(TOML_TOKENS, 1..3)],
    )
}

fn rule_source(
    base: &RuleSource,
    name: String,
    layer: u8,
    (line_mutations, text_mutations): &(Vec<TomlMutation>, Vec<Mutation>),
) -> RuleSource {
    let text = mutate_toml(&base.text, line_mutations);
    let text = mutate(text.into_bytes(), text_mutations, &[base.text.as_bytes()]);
    RuleSource {
        name,
        text: String::from_utf8_lossy(&text).into_owned(),
        layer,
    }
}

/// Rule files: the built-in files (each maybe left out, maybe mutated) as layer 0, then a few
/// mutated copies of them as higher layers (which replace or disable rules of the same id).
fn rule_sources() -> impl Strategy<Value = Vec<RuleSource>> {
    let builtin = builtin_sources();
    let count = builtin.len();
    (
        prop::collection::vec((prop::bool::weighted(0.95), rule_file_mutations()), count),
        prop::collection::vec(
            (0..count, prop::bool::weighted(0.1), rule_file_mutations()),
            0..3,
        ),
    )
        .prop_map(move |(base, overrides)| {
            let mut sources: Vec<RuleSource> = base
                .iter()
                .zip(&builtin)
                .filter(|((keep, _), _)| *keep)
                .map(|((_, mutations), file)| rule_source(file, file.name.clone(), 0, mutations))
                .collect();
            for (index, (pick, same_layer, mutations)) in overrides.iter().enumerate() {
                let file = &builtin[*pick];
                let name = format!("rules.d/{index}-{}", &file.name["rules/".len()..]);
                // Each in its own layer, or sometimes in the layer of the one before.
                let layer = u8::try_from(index).expect("few") + u8::from(!same_layer);
                sources.push(rule_source(file, name, layer, mutations));
            }
            sources
        })
}

fn check_rule_sources(sources: &[RuleSource]) -> Result<(), TestCaseError> {
    let all_text: Vec<u8> = sources.iter().flat_map(|s| s.text.bytes()).collect();
    let loaded = bounded(RULES_LIMIT, "load_rule_set", &all_text, || {
        load_rule_set(sources)
    });
    match loaded {
        Err(errors) => {
            prop_assert!(!errors.is_empty());
            for error in &errors {
                let source = sources.iter().find(|source| source.name == error.file);
                prop_assert!(source.is_some(), "{} names no file given", error);
                let lines = source.map_or(0, |source| source.text.lines().count());
                prop_assert!(
                    (1..=lines + 1).contains(&error.line),
                    "{} names line {} of a {}-line file",
                    error,
                    error.line,
                    lines
                );
                prop_assert!(!error.message.is_empty(), "{:?}", error);
            }
        }
        Ok(rules) => {
            // A later layer replaces a rule of the same id, never adds a second one.
            let mut ids: Vec<&str> = rules.rules().iter().map(|rule| rule.id.as_str()).collect();
            ids.sort_unstable();
            let count = ids.len();
            ids.dedup();
            prop_assert_eq!(ids.len(), count, "duplicate ids in {:?}", ids);
            let _ = bounded(RULES_LIMIT, "check_samples", &all_text, || {
                check_samples(&rules)
            });
            let log: Vec<u8> = SEED_LINES.join(&b'\n');
            bounded(SCAN_LIMIT, "LogScanner::feed (loaded rules)", &log, || {
                scan_chunked(&rules, LogFile::Agent, DEFAULT_MAX_LINE, &log, &[777]);
            });
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn rule_loader_on_mutated_rule_files(sources in rule_sources()) {
        check_rule_sources(&sources)?;
    }
}

#[test]
fn huge_repetitions_are_rejected_quickly_with_their_line() {
    let terminal = &builtin_sources()[0];
    let original = "pattern = '^Failed to generate context summary: (?P<payload>.*)'";
    // Errors name the pattern's line.
    let pattern_line = 1 + terminal.text[..terminal.text.find(original).unwrap()]
        .matches('\n')
        .count();
    // `a{100000}` is a plain literal and fits the regex size limit; the others exceed it.
    for (pattern, fits) in [
        ("a{100000}", true),
        ("(?:a{1000}){1000}", false),
        ("\\w{100000}", false),
        ("x{1000}{1000}", false),
        ("\\w{5000}", false),
    ] {
        let text = terminal
            .text
            .replacen(original, &format!("pattern = '{pattern}'"), 1);
        assert_ne!(text, terminal.text);
        let source = RuleSource {
            name: "rules/terminal.toml".into(),
            text,
            layer: 0,
        };
        let loaded = bounded(RULES_LIMIT, "load_rule_set", pattern.as_bytes(), || {
            load_rule_set(std::slice::from_ref(&source))
        });
        match loaded {
            Ok(_) => assert!(fits, "{pattern} should exceed the size limit"),
            Err(errors) => {
                assert!(!fits, "{pattern}: {errors:?}");
                assert_eq!(errors.len(), 1, "{errors:?}");
                assert_eq!(errors[0].file, "rules/terminal.toml");
                assert_eq!(errors[0].line, pattern_line, "{}", errors[0]);
                assert!(errors[0].message.contains("size limit"), "{}", errors[0]);
            }
        }
    }
}
