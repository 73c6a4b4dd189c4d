//! Throughput of `hermes-warden scan` over a large Hermes-format log, beside references.
//!
//! Run with `cargo bench --bench scan_throughput` (see `benches/README.md`). The bench:
//!
//! 1. makes (once, cached under `target/bench-data/`) a Hermes home whose `logs/agent.log` is
//!    `WARDEN_BENCH_BYTES` bytes (default 1 GiB) in Hermes's own log format, with about 2 % of
//!    its records credential failures, and a small `auth.json` with fake tokens;
//! 2. times, warm and in the same run, `cat FILE > /dev/null` (the ceiling), `rg -c` with the
//!    warden's own prefilter literals (the reference), and `hermes-warden scan --format json`,
//!    `WARDEN_BENCH_RUNS` times each (default 3), and prints the medians and ratios;
//! 3. says whether the targets of `quality.md` are met (at least 1 GB/s, and at least half of
//!    ripgrep's throughput). A benchmark never fails on time: it prints, it does not assert.
//!
//! Only the bench's own set-up errors (cannot write the data, the warden fails) end it early.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use hermes_warden::rules::{builtin_sources, load_rule_set};

/// Bump when the generated data changes shape: cached data of another version is made anew.
const DATA_VERSION: u32 = 1;
/// Default size of `logs/agent.log`.
const DEFAULT_BYTES: u64 = 1 << 30;
/// Default size when run as a test (`cargo test --benches`).
const SMOKE_BYTES: u64 = 1 << 20;
/// Smallest size accepted for `WARDEN_BENCH_BYTES`.
const MIN_BYTES: u64 = 64 << 10;
/// Default number of timed runs of each tool.
const DEFAULT_RUNS: usize = 3;
/// Targets from `shared/design/quality.md`.
const TARGET_GB_PER_S: f64 = 1.0;
const TARGET_RATIO_TO_RG: f64 = 0.5;
/// Share of records that are credential failures.
const FAILURE_SHARE: f64 = 0.02;
/// Fixed seed: the same size always gives the same bytes.
const SEED: u64 = 0x4845_524d_4553_2026;

fn main() {
    if let Err(error) = run() {
        eprintln!("scan_throughput: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    // `cargo bench` passes `--bench`; `cargo test --benches` (or `--all-targets`) runs this
    // binary without it: then a quick smoke run on a small file, not minutes of benchmark.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let (default_bytes, default_runs) = if benchmarking {
        (DEFAULT_BYTES, DEFAULT_RUNS)
    } else {
        println!("scan_throughput: not run by `cargo bench`: smoke run on a small file");
        (SMOKE_BYTES, 1)
    };
    let bytes = env_bytes("WARDEN_BENCH_BYTES", default_bytes)?;
    let runs = env_count("WARDEN_BENCH_RUNS", default_runs)?;
    let warden = PathBuf::from(env!("CARGO_BIN_EXE_hermes-warden"));
    // `<target>/release/hermes-warden` -> `<target>/bench-data`.
    let target_dir = warden
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot find the target directory from the warden's path")?;
    let data = dataset(&target_dir.join("bench-data"), bytes)?;
    let log = data.home.join("logs").join("agent.log");
    let literals = prefilter_literals()?;

    println!();
    println!("scan_throughput: {}", data.home.display());
    println!(
        "  agent.log: {} bytes ({:.2} GiB), {} lines, {} records, {} sessions",
        data.manifest.bytes,
        data.manifest.bytes as f64 / f64::from(1u32 << 30),
        data.manifest.lines,
        data.manifest.records,
        data.manifest.sessions,
    );
    println!(
        "  credential-failure records: {} ({:.2} %); lines holding a prefilter literal: {} ({:.2} % of lines)",
        data.manifest.failure_records,
        100.0 * data.manifest.failure_records as f64 / data.manifest.records as f64,
        data.manifest.candidate_lines,
        100.0 * data.manifest.candidate_lines as f64 / data.manifest.lines as f64,
    );
    println!(
        "  prefilter literals ({}, from the warden's built-in rules): {}",
        literals.len(),
        literals
            .iter()
            .map(|l| format!("{l:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  {runs} timed runs each, median reported; {} CPUs",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let mut tools = vec![Tool::cat(&log)];
    let rg = std::env::var_os("WARDEN_BENCH_RG").map_or_else(|| PathBuf::from("rg"), PathBuf::from);
    match rg_version(&rg) {
        Some((version, major)) => {
            println!("  {version} ({})", rg.display());
            if major < 14 {
                println!(
                    "  note: ripgrep before 14 drops its literal prefilter when the literals add up to more \
                     than 250 bytes (these: {} bytes) and runs its regex engine over every byte, so its \
                     row is slower than a literal search; for the reference row use ripgrep >= 14 \
                     (`cargo install ripgrep`, then WARDEN_BENCH_RG=~/.cargo/bin/rg)",
                    literals.iter().map(String::len).sum::<usize>()
                );
            }
            tools.push(Tool::rg(&rg, &log, &literals));
        }
        None => println!(
            "  rg (ripgrep) not found: install it with `apt-get install ripgrep` to get the reference row"
        ),
    }
    tools.push(Tool::warden(&warden, &data.home));

    // One untimed run of each: brings the file (and the programs) into the page cache, so every
    // timed run is warm, and checks that each tool read what was generated.
    for tool in &tools {
        let output = tool.run_captured()?;
        tool.check(&output, &data.manifest);
    }

    // Timed runs, interleaved so that drift on a noisy machine hits every tool alike.
    let mut times: Vec<Vec<Sample>> = vec![Vec::new(); tools.len()];
    for _ in 0..runs {
        for (tool, samples) in tools.iter().zip(&mut times) {
            samples.push(tool.run_timed()?);
        }
    }

    let medians: Vec<Medians> = times.iter().map(|samples| Medians::of(samples)).collect();
    print_table(&tools, &times, &medians, data.manifest.bytes);
    if benchmarking {
        print_verdict(&tools, &medians, data.manifest.bytes);
    } else {
        println!("smoke run: no verdict on the targets (`cargo bench --bench scan_throughput`)");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// A size from the environment: plain bytes, or with a binary suffix (`64K`, `256M`, `1G`).
fn env_bytes(name: &str, default: u64) -> Result<u64, String> {
    let Ok(text) = std::env::var(name) else {
        return Ok(default);
    };
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("{name}={text:?}: use bytes, or a suffix K, M or G")),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{name}={text:?} is not a size"))?;
    let bytes = value
        .checked_shl(shift)
        .ok_or_else(|| format!("{name}={text:?} is too large"))?;
    if bytes < MIN_BYTES {
        return Err(format!("{name}={text:?}: at least {MIN_BYTES} bytes"));
    }
    Ok(bytes)
}

fn env_count(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(text) => match text.trim().parse::<usize>() {
            Ok(count) if count > 0 => Ok(count),
            _ => Err(format!("{name}={text:?} is not a positive count")),
        },
    }
}

/// The warden's prefilter: the union of every built-in rule's literals, exactly as the
/// scanner builds it (`RuleSet::new` in src/rules/mod.rs), taken from the library itself so the
/// reference row can never drift from the rules.
fn prefilter_literals() -> Result<Vec<String>, String> {
    let rules = load_rule_set(&builtin_sources()).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("the built-in rules do not load:\n{}", lines.join("\n"))
    })?;
    let mut literals: Vec<String> = Vec::new();
    for literal in rules.rules().iter().flat_map(|rule| &rule.prefilter) {
        if !literals.contains(literal) {
            literals.push(literal.clone());
        }
    }
    Ok(literals)
}

// ---------------------------------------------------------------------------------------------
// The data set: a cached Hermes home
// ---------------------------------------------------------------------------------------------

/// What the generator wrote; stored beside the data as `manifest.txt`.
#[derive(Debug, Default, Clone, PartialEq)]
struct Manifest {
    version: u32,
    bytes: u64,
    lines: u64,
    records: u64,
    /// Records that are credential failures (marking lines, 401/429 payload lines, tracebacks
    /// ending in an authentication error, refresh failures).
    failure_records: u64,
    /// Lines holding at least one prefilter literal: what `rg -c` should count.
    candidate_lines: u64,
    sessions: u64,
}

impl Manifest {
    const KEYS: [&'static str; 7] = [
        "version",
        "bytes",
        "lines",
        "records",
        "failure_records",
        "candidate_lines",
        "sessions",
    ];

    fn values(&self) -> [u64; 7] {
        [
            u64::from(self.version),
            self.bytes,
            self.lines,
            self.records,
            self.failure_records,
            self.candidate_lines,
            self.sessions,
        ]
    }

    fn to_text(&self) -> String {
        let mut text = String::new();
        for (key, value) in Self::KEYS.iter().zip(self.values()) {
            let _ = writeln!(text, "{key}={value}");
        }
        text
    }

    fn parse(text: &str) -> Option<Manifest> {
        let mut values = [None; 7];
        for line in text.lines() {
            let (key, value) = line.split_once('=')?;
            let index = Self::KEYS.iter().position(|k| *k == key)?;
            values[index] = Some(value.parse::<u64>().ok()?);
        }
        let [
            version,
            bytes,
            lines,
            records,
            failure_records,
            candidate_lines,
            sessions,
        ] = values;
        Some(Manifest {
            version: u32::try_from(version?).ok()?,
            bytes: bytes?,
            lines: lines?,
            records: records?,
            failure_records: failure_records?,
            candidate_lines: candidate_lines?,
            sessions: sessions?,
        })
    }
}

struct Dataset {
    home: PathBuf,
    manifest: Manifest,
}

/// The cached home for `bytes`, made anew when missing, of another `DATA_VERSION`, or altered.
fn dataset(cache: &Path, bytes: u64) -> Result<Dataset, String> {
    let home = cache.join(format!("hermes-home-{bytes}"));
    let manifest_path = home.join("manifest.txt");
    let cached = fs::read_to_string(&manifest_path)
        .ok()
        .and_then(|text| Manifest::parse(&text));
    let log_len = fs::metadata(home.join("logs").join("agent.log")).map(|m| m.len());
    if let Some(manifest) = cached
        && manifest.version == DATA_VERSION
        && manifest.bytes == bytes
        && log_len.as_ref().ok() == Some(&bytes)
        && home.join("auth.json").is_file()
    {
        return Ok(Dataset { home, manifest });
    }

    // Build in a scratch directory and rename it into place: an interrupted run never leaves
    // a home that looks complete.
    let scratch = cache.join(format!("hermes-home-{bytes}.partial"));
    for dir in [&home, &scratch] {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
    }
    fs::create_dir_all(scratch.join("logs")).map_err(|e| format!("{}: {e}", scratch.display()))?;
    println!(
        "scan_throughput: generating {bytes} bytes of Hermes log in {} ...",
        scratch.display()
    );
    let started = Instant::now();
    let log_path = scratch.join("logs").join("agent.log");
    let file = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let (manifest, last_second) =
        generate_log(file, bytes).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "scan_throughput: generated in {elapsed:.1} s ({:.0} MB/s)",
        bytes as f64 / 1e6 / elapsed
    );
    let write = |name: &str, text: &str| {
        let path = scratch.join(name);
        fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    write("auth.json", &auth_json(last_second))?;
    write("config.yaml", CONFIG_YAML)?;
    write("manifest.txt", &manifest.to_text())?;
    fs::rename(&scratch, &home).map_err(|e| format!("{}: {e}", home.display()))?;
    Ok(Dataset { home, manifest })
}

const CONFIG_YAML: &str = "model:
  provider: openai-codex
  default: gpt-5.1-codex
auxiliary:
  compression:
    provider: auto
";

/// The pool named in the log: (id, label). Tokens are obviously fake.
const POOL: [(&str, &str); 4] = [
    ("a11ce0", "alice@example.com"),
    ("b0b000", "bob@example.com"),
    ("ca201e", "carol@example.com"),
    ("da7e00", "dave@example.com"),
];

/// A Hermes-style `auth.json` (`json.dumps(indent=2)`): an `openai-codex` pool whose first
/// entry Hermes last recorded as failed at the end of the log.
fn auth_json(last_second: u64) -> String {
    let mut entries = Vec::new();
    for (index, (id, label)) in POOL.iter().enumerate() {
        let number = index + 1;
        let failed = index == 0;
        let null_or = |value: String| if failed { value } else { "null".to_owned() };
        entries.push(format!(
            r#"      {{
        "id": "{id}",
        "label": "{label}",
        "auth_type": "oauth",
        "priority": {index},
        "source": "manual:device_code",
        "access_token": "fake-bench-token-{number:04}",
        "refresh_token": "fake-bench-refresh-{number:04}",
        "last_status": {status},
        "last_status_at": {status_at},
        "last_error_code": {code},
        "last_error_reason": {reason},
        "last_error_message": {message},
        "last_error_reset_at": null,
        "base_url": "https://chatgpt.com/backend-api/codex",
        "request_count": {requests}
      }}"#,
            status = null_or("\"exhausted\"".to_owned()),
            status_at = null_or(format!("{last_second}.25")),
            code = null_or("401".to_owned()),
            reason = null_or("\"token_invalidated\"".to_owned()),
            message = null_or(
                "\"Your authentication token has been invalidated. Please try signing in again.\""
                    .to_owned()
            ),
            requests = 1000 + 37 * index,
        ));
    }
    format!(
        r#"{{
  "version": 1,
  "providers": {{}},
  "credential_pool": {{
    "openai-codex": [
{}
    ]
  }},
  "updated_at": "2026-05-28T09:00:00.000000+00:00",
  "active_provider": "openai-codex"
}}
"#,
        entries.join(",\n")
    )
}

// ---------------------------------------------------------------------------------------------
// The log generator
// ---------------------------------------------------------------------------------------------

/// 2026-05-26 00:00:00 UTC, in milliseconds: where the log starts.
const START_MS: u64 = 1_779_753_600_000;
/// Buffer written to the file in one call.
const FLUSH_BYTES: usize = 16 << 20;
/// Headroom kept before the end: no single step writes more than this.
const STEP_MAX: u64 = 16 << 10;
/// Concurrent sessions; one is replaced by a new one every few hundred records.
const ACTIVE_SESSIONS: usize = 48;

/// SplitMix64: tiny, fast, good enough to vary log text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` below 2^32).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// The log clock: increasing milliseconds, rendered as `2026-05-26 10:27:13,482`.
struct Clock {
    ms: u64,
    second: u64,
    /// `YYYY-MM-DD HH:MM:SS` of `second`, re-rendered only when the second changes.
    text: [u8; 19],
}

impl Clock {
    fn new(ms: u64) -> Clock {
        let mut clock = Clock {
            ms,
            second: u64::MAX,
            text: [b'0'; 19],
        };
        clock.render();
        clock
    }

    fn advance(&mut self, ms: u64) {
        self.ms += ms;
        self.render();
    }

    fn render(&mut self) {
        let second = self.ms / 1000;
        if second == self.second {
            return;
        }
        self.second = second;
        let (year, month, day) = civil_from_days((second / 86_400) as i64);
        let of_day = second % 86_400;
        let text = format!(
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60
        );
        self.text.copy_from_slice(text.as_bytes());
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.text);
        let ms = self.ms % 1000;
        out.extend_from_slice(&[
            b',',
            b'0' + (ms / 100) as u8,
            b'0' + (ms / 10 % 10) as u8,
            b'0' + (ms % 10) as u8,
        ]);
    }

    /// `YYYYMMDD_HHMMSS`, as in Hermes's session ids.
    fn session_stamp(&self) -> String {
        let t = &self.text;
        let pick = |range: std::ops::Range<usize>| std::str::from_utf8(&t[range]).unwrap_or("0");
        format!(
            "{}{}{}_{}{}{}",
            pick(0..4),
            pick(5..7),
            pick(8..10),
            pick(11..13),
            pick(14..16),
            pick(17..19)
        )
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// Payloads as the OpenAI SDK renders them (`Error code: <status> - <repr of the body>`), from
// the samples in rules/*.toml.
const PAYLOAD_INVALIDATED: &str = "Error code: 401 - {'error': {'message': 'Your authentication token has been invalidated. Please try signing in again.', 'type': 'invalid_request_error', 'code': 'token_invalidated', 'param': None}, 'status': 401}";
const PAYLOAD_REVOKED: &str = "Error code: 401 - {'error': {'message': 'Token has been revoked', 'type': 'invalid_request_error', 'code': 'token_revoked', 'param': None}, 'status': 401}";
const PAYLOAD_EXPIRED: &str = "Error code: 401 - {'error': {'message': 'Provided authentication token is expired.', 'type': 'invalid_request_error', 'code': 'token_expired', 'param': None}, 'status': 401}";
const API_CALL_FAILED: &str = "API call failed (attempt 1/3) error_type=";
const API_CALL_TAIL: &str = " thread=MainThread provider=openai-codex base_url=https://chatgpt.com/backend-api/codex model=gpt-5.1-codex summary=";
const PAUSED: &str = ". Further summary attempts paused for 60 seconds.";

#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "a", "of", "to", "and", "in", "is", "for", "on", "with", "that", "this", "file",
    "function", "return", "value", "error", "result", "user", "project", "build", "test",
    "config", "module", "import", "self", "None", "True", "False", "def", "class", "async",
    "await", "let", "mut", "fn", "pub", "struct", "impl", "match", "Some", "Ok", "Err", "println!",
    "{", "}", "(", ")", "=>", "->", "::", "==", "//", "#", "TODO:", "fix", "refactor", "parse",
    "request", "response", "timeout", "retry", "cache", "index", "query", "items", "path",
    "src/main.rs", "README.md", "Cargo.toml", "package.json", "docs/", "0", "1", "42", "200",
    "3.14", "utf-8", "json", "yaml", "http", "https://example.com/docs", "line", "column",
    "width", "height", "count", "total", "summary", "session", "model", "tokens", "context",
    "window", "draft",
];

const TOOL_CALLS: &[(&str, &str)] = &[
    ("terminal", "command='git status --short'"),
    ("terminal", "command='cargo test --release 2>&1 | tail -20'"),
    ("terminal", "command='npm run build'"),
    ("read_file", "path='src/main.rs', offset=1, limit=200"),
    ("write_file", "path='notes/todo.md'"),
    (
        "search_files",
        "pattern='fn main', path='.', file_glob='*.rs'",
    ),
    ("web_search", "query='python asyncio cancel task timeout'"),
    (
        "web_extract",
        "urls=['https://docs.python.org/3/library/asyncio-task.html']",
    ),
    ("patch", "path='src/app.py', mode='replace'"),
    (
        "browser_navigate",
        "url='https://github.com/NousResearch/hermes-agent'",
    ),
    ("todo", "todos=[3 items], merge=True"),
    ("memory", "action='add', target='user'"),
    ("execute_code", "code=<412 chars>"),
    ("skill_view", "name='github-pr-workflow'"),
];

const HTTP_URLS: &[&str] = &[
    "POST https://chatgpt.com/backend-api/codex/responses",
    "POST https://chatgpt.com/backend-api/codex/responses",
    "POST https://openrouter.ai/api/v1/chat/completions",
    "POST https://api.telegram.org/bot***/getUpdates",
    "GET https://api.github.com/repos/NousResearch/hermes-agent/pulls?state=open",
];

const HTTP_STATUSES: &[&str] = &[
    "200 OK",
    "200 OK",
    "200 OK",
    "200 OK",
    "200 OK",
    "429 Too Many Requests",
    "502 Bad Gateway",
    "503 Service Unavailable",
];

const FRAMES: &[(&str, u32, &str, &str)] = &[
    (
        "/usr/lib/python3.11/site-packages/httpx/_transports/default.py",
        101,
        "map_httpcore_exceptions",
        "yield",
    ),
    (
        "/usr/lib/python3.11/site-packages/httpx/_transports/default.py",
        250,
        "handle_request",
        "resp = self._pool.handle_request(req)",
    ),
    (
        "/usr/lib/python3.11/site-packages/httpcore/_sync/connection_pool.py",
        256,
        "handle_request",
        "raise exc from None",
    ),
    (
        "/usr/lib/python3.11/site-packages/httpcore/_sync/http11.py",
        136,
        "handle_request",
        "raise exc",
    ),
    (
        "/opt/hermes/lib/python3.11/site-packages/tools/web_tools.py",
        412,
        "web_extract",
        "response = client.get(url, timeout=30)",
    ),
    (
        "/opt/hermes/lib/python3.11/site-packages/tools/terminal_tool.py",
        288,
        "_run",
        "proc = subprocess.run(cmd, shell=True, capture_output=True, timeout=timeout)",
    ),
    (
        "/usr/lib/python3.11/subprocess.py",
        550,
        "run",
        "stdout, stderr = process.communicate(input, timeout=timeout)",
    ),
    (
        "/opt/hermes/lib/python3.11/site-packages/gateway/platforms/telegram.py",
        733,
        "_handle_update",
        "await self._dispatch(message)",
    ),
    (
        "/opt/hermes/lib/python3.11/site-packages/run_agent.py",
        1874,
        "_execute_tool_call",
        "result = handler(**args)",
    ),
    (
        "/usr/lib/python3.11/json/decoder.py",
        355,
        "raw_decode",
        "raise JSONDecodeError(\"Expecting value\", s, err.value) from None",
    ),
    (
        "/opt/hermes/lib/python3.11/site-packages/tools/file_tools.py",
        97,
        "read_file",
        "with open(path, encoding=\"utf-8\") as fh:",
    ),
];

/// Last lines of ordinary tracebacks: none holds a prefilter literal.
const EXCEPTIONS: &[&str] = &[
    "httpx.ReadTimeout: timed out",
    "httpx.ConnectError: [Errno 111] Connection refused",
    "subprocess.TimeoutExpired: Command 'npm test' timed out after 300 seconds",
    "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    "FileNotFoundError: [Errno 2] No such file or directory: '/home/user/project/notes.md'",
    "telegram.error.NetworkError: httpx.RemoteProtocolError: Server disconnected without sending a response.",
    "openai.APITimeoutError: Request timed out.",
    "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
    "KeyError: 'choices'",
];

/// (level, logger, message) of the record that an ordinary traceback follows.
const TRACEBACK_HEADS: &[(&str, &str, &str)] = &[
    (
        "ERROR",
        "tools.web_tools",
        "web_extract failed for https://example.com/blog/post",
    ),
    ("ERROR", "run_agent", "Tool terminal raised an exception"),
    (
        "WARNING",
        "gateway.platforms.telegram",
        "Error while handling update",
    ),
    (
        "ERROR",
        "agent.conversation_loop",
        "Tool execution failed: read_file",
    ),
];

/// Writes the log and counts what it wrote.
struct Generator {
    rng: Rng,
    clock: Clock,
    sessions: Vec<String>,
    out: Vec<u8>,
    counts: Manifest,
}

impl Generator {
    fn new() -> Generator {
        let mut generator = Generator {
            rng: Rng(SEED),
            clock: Clock::new(START_MS),
            sessions: Vec::with_capacity(ACTIVE_SESSIONS),
            out: Vec::with_capacity(FLUSH_BYTES + STEP_MAX as usize),
            counts: Manifest {
                version: DATA_VERSION,
                ..Manifest::default()
            },
        };
        for _ in 0..ACTIVE_SESSIONS {
            let id = generator.new_session();
            generator.sessions.push(id);
        }
        generator
    }

    fn new_session(&mut self) -> String {
        self.counts.sessions += 1;
        format!(
            "{}_{:06x}",
            self.clock.session_stamp(),
            self.rng.next() & 0xff_ffff
        )
    }

    /// A session for an ordinary record: most records carry one, some (gateway, start-up) none.
    fn some_session(&mut self) -> Option<usize> {
        if self.rng.chance(150) {
            None
        } else {
            Some(self.rng.below(ACTIVE_SESSIONS as u64) as usize)
        }
    }

    /// `2026-05-26 10:27:13,482 LEVEL [session] logger: `, after moving the clock on.
    fn header(&mut self, advance_ms: u64, level: &str, session: Option<usize>, logger: &str) {
        self.clock.advance(advance_ms);
        self.counts.records += 1;
        self.clock.write(&mut self.out);
        self.out.push(b' ');
        self.out.extend_from_slice(level.as_bytes());
        if let Some(index) = session {
            self.out.extend_from_slice(b" [");
            self.out.extend_from_slice(self.sessions[index].as_bytes());
            self.out.push(b']');
        }
        self.out.push(b' ');
        self.out.extend_from_slice(logger.as_bytes());
        self.out.extend_from_slice(b": ");
    }

    fn text(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    fn number(&mut self, value: u64) {
        let _ = write!(self.out, "{value}");
    }

    /// Ends a line; `candidate` says whether it holds a prefilter literal.
    fn end_line(&mut self, candidate: bool) {
        self.out.push(b'\n');
        self.counts.lines += 1;
        self.counts.candidate_lines += u64::from(candidate);
    }

    /// Random words until the line has grown by about `bytes`.
    fn words(&mut self, bytes: usize) {
        let goal = self.out.len() + bytes;
        let mut wrote = false;
        while self.out.len() < goal {
            let word = *self.rng.pick(WORDS);
            self.out.extend_from_slice(word.as_bytes());
            self.out.push(b' ');
            wrote = true;
        }
        if wrote {
            self.out.pop(); // the last separator
        }
    }

    /// Gaps between records: mostly a few milliseconds, sometimes seconds of quiet.
    fn gap(&mut self) -> u64 {
        if self.rng.chance(20) {
            self.rng.range(1_000, 30_000)
        } else {
            self.rng.below(40)
        }
    }

    /// One step: an ordinary record, a traceback, a near miss, or a credential-failure incident.
    /// Credential failures are kept at `FAILURE_SHARE` of the records: incidents start at
    /// random while the share is below it.
    fn step(&mut self) {
        if self.rng.chance(3) {
            let index = self.rng.below(ACTIVE_SESSIONS as u64) as usize;
            self.sessions[index] = self.new_session();
        }
        let below_share =
            (self.counts.failure_records as f64) < FAILURE_SHARE * self.counts.records as f64;
        if below_share && self.rng.chance(60) {
            self.incident();
        } else if self.rng.chance(15) {
            self.traceback();
        } else if self.rng.chance(3) {
            self.near_miss();
        } else {
            self.ordinary();
        }
    }

    /// An ordinary INFO/WARNING record: tool calls, HTTP, gateway, turns, long previews.
    fn ordinary(&mut self) {
        let gap = self.gap();
        let session = self.some_session();
        let roll = self.rng.below(1000);
        match roll {
            0..300 => {
                let (tool, args) = *self.rng.pick(TOOL_CALLS);
                self.header(gap, "INFO", session, "run_agent");
                self.text("Tool call: ");
                self.text(tool);
                self.text("(");
                self.text(args);
                self.text(") -> ok, ");
                let chars = self.rng.range(20, 60_000);
                self.number(chars);
                self.text(" chars in ");
                let ms = self.rng.range(5, 90_000);
                let _ = write!(self.out, "{}.{:02}s", ms / 1000, ms % 1000 / 10);
            }
            300..520 => {
                let url = *self.rng.pick(HTTP_URLS);
                let status = *self.rng.pick(HTTP_STATUSES);
                self.header(gap, "INFO", session, "httpx");
                self.text("HTTP Request: ");
                self.text(url);
                self.text(" \"HTTP/1.1 ");
                self.text(status);
                self.text("\"");
            }
            520..610 => {
                self.header(gap, "INFO", session, "agent.conversation_loop");
                self.text("Turn ");
                let turn = self.rng.range(1, 90);
                self.number(turn);
                self.text(" finished: ");
                let calls = self.rng.below(9);
                self.number(calls);
                self.text(" tool calls, prompt_tokens=");
                let prompt = self.rng.range(2_000, 250_000);
                self.number(prompt);
                self.text(" completion_tokens=");
                let completion = self.rng.range(20, 8_000);
                self.number(completion);
                self.text(" cache_read=");
                self.number(prompt / 10 * 9);
            }
            610..730 => {
                let platform = *self.rng.pick(&["telegram", "discord", "slack"]);
                let logger = format!("gateway.platforms.{platform}");
                self.header(gap, "INFO", None, &logger);
                if self.rng.chance(500) {
                    self.text("Received message from chat ");
                    let chat = self.rng.range(100_000_000, 999_999_999);
                    self.number(chat);
                    self.text(" (user ");
                    let user = self.rng.range(1_000_000, 9_999_999);
                    self.number(user);
                    self.text("): ");
                    let chars = self.rng.range(1, 2_000);
                    self.number(chars);
                    self.text(" chars");
                } else {
                    self.text("Delivered response to ");
                    self.text(platform);
                    self.text(" chat in ");
                    let chunks = self.rng.range(1, 4);
                    self.number(chunks);
                    self.text(" chunk(s) — ");
                    let chars = self.rng.range(10, 12_000);
                    self.number(chars);
                    self.text(" chars");
                }
            }
            730..770 => {
                self.header(gap, "INFO", session, "openai._base_client");
                self.text("Retrying request to /responses in 0.");
                let fraction = self.rng.range(100_000, 999_999);
                self.number(fraction);
                self.text(" seconds");
            }
            770..810 => {
                let status = *self.rng.pick(&HTTP_STATUSES[5..]);
                self.header(gap, "WARNING", session, "agent.conversation_loop");
                self.text("Transient provider error (HTTP ");
                self.text(status);
                self.text(") from openai-codex; retrying in ");
                let wait = self.rng.range(1, 30);
                self.number(wait);
                self.text(".0s (retry ");
                let attempt = self.rng.range(1, 3);
                self.number(attempt);
                self.text(" of 3)");
            }
            810..830 => {
                self.header(gap, "INFO", session, "agent.context_compressor");
                if self.rng.chance(500) {
                    self.text("Compression threshold reached: prompt_tokens=");
                    let tokens = self.rng.range(136_000, 260_000);
                    self.number(tokens);
                    self.text(" >= 0.50 of 272000; summarising turns 3-");
                    let turn = self.rng.range(10, 80);
                    self.number(turn);
                } else {
                    self.text("Generated context summary in ");
                    let ms = self.rng.range(800, 9_000);
                    let _ = write!(self.out, "{}.{}s", ms / 1000, ms % 1000 / 100);
                }
            }
            830..890 => {
                // The long ones: previews of tool output, 150 bytes to 2 KB.
                self.header(gap, "INFO", session, "run_agent");
                let (tool, _) = *self.rng.pick(TOOL_CALLS);
                self.text("Tool result preview (");
                self.text(tool);
                self.text("): ");
                let len = self.rng.range(150, 2_000) as usize;
                self.words(len);
            }
            890..930 => {
                self.header(gap, "WARNING", session, "tools.web_tools");
                self.text("web_extract failed for https://example.com/");
                let page = self.rng.below(100_000);
                self.number(page);
                self.text(": HTTP 403 Forbidden");
            }
            930..950 => {
                self.header(gap, "INFO", None, "cron.scheduler");
                self.text("Running cron job '");
                let job = *self
                    .rng
                    .pick(&["daily-digest", "inbox-triage", "backup-notes"]);
                self.text(job);
                self.text("' (id ");
                let id = self.rng.next() & 0xff_ffff;
                let _ = write!(self.out, "{id:06x}");
                self.text(")");
            }
            _ => {
                self.header(gap, "WARNING", session, "tools.terminal_tool");
                self.text("Command still running after ");
                let secs = self.rng.range(30, 600);
                self.number(secs);
                self.text("s (pid ");
                let pid = self.rng.range(1_000, 99_999);
                self.number(pid);
                self.text("), streaming output");
            }
        }
        self.end_line(false);
    }

    /// `Traceback (most recent call last):` and a few frames; the caller writes the last line.
    fn frames(&mut self) {
        self.text("Traceback (most recent call last):");
        self.end_line(false);
        let count = self.rng.range(2, 9);
        for _ in 0..count {
            let (file, line, function, code) = *self.rng.pick(FRAMES);
            self.text("  File \"");
            self.text(file);
            self.text("\", line ");
            self.number(u64::from(line));
            self.text(", in ");
            self.text(function);
            self.end_line(false);
            self.text("    ");
            self.text(code);
            self.end_line(false);
        }
    }

    /// A multi-line traceback that is not a credential failure.
    fn traceback(&mut self) {
        let gap = self.gap();
        let session = self.some_session();
        let (level, logger, message) = *self.rng.pick(TRACEBACK_HEADS);
        self.header(gap, level, session, logger);
        self.text(message);
        self.end_line(false);
        self.frames();
        if self.rng.chance(200) {
            // A chained exception, with Python's blank lines around the separator.
            let cause = *self.rng.pick(EXCEPTIONS);
            self.text(cause);
            self.end_line(false);
            self.end_line(false);
            self.text("The above exception was the direct cause of the following exception:");
            self.end_line(false);
            self.end_line(false);
            self.frames();
        }
        let exception = *self.rng.pick(EXCEPTIONS);
        self.text(exception);
        self.end_line(false);
    }

    /// A line that holds a prefilter literal but is no credential failure.
    fn near_miss(&mut self) {
        let gap = self.gap();
        let session = self.some_session();
        match self.rng.below(4) {
            0 => {
                self.header(gap, "WARNING", session, "agent.context_compressor");
                self.text("Failed to generate context summary: Request timed out.");
                self.text(PAUSED);
            }
            1 => {
                self.header(gap, "ERROR", session, "agent.conversation_loop");
                self.text("Non-retryable client error: Error code: 400 - {'error': {'message': 'context too long', 'code': 'context_length_exceeded'}}");
            }
            2 => {
                self.header(gap, "WARNING", session, "agent.conversation_loop");
                self.text(API_CALL_FAILED);
                self.text("APITimeoutError");
                self.text(API_CALL_TAIL);
                self.text("Request timed out.");
            }
            _ => {
                self.header(gap, "ERROR", session, "agent.conversation_loop");
                self.text("API call failed");
                self.end_line(false);
                self.frames();
                self.text("openai.InternalServerError: Error code: 500 - {'error': {'message': 'The server had an error while processing your request.', 'type': 'server_error', 'param': None, 'code': None}}");
            }
        }
        self.end_line(true);
    }

    /// A credential failure as Hermes logs it: the pool's marking line and, within
    /// milliseconds in the same session, the line that carries the provider's payload.
    fn incident(&mut self) {
        let gap = self.gap();
        let session = Some(self.rng.below(ACTIVE_SESSIONS as u64) as usize);
        let victim = self.rng.below(POOL.len() as u64) as usize;
        let (id, label) = POOL[victim];
        let (next_id, next_label) = POOL[(victim + 1) % POOL.len()];
        let mut failures = 0;
        match self.rng.below(9) {
            // 0.15: quiet rotation in agent.log, then the compaction warning with the payload.
            0 | 1 => {
                self.marking(gap, session, label, "401");
                self.header(2, "INFO", session, "agent.credential_pool");
                self.text("credential pool: rotated to ");
                self.text(next_label);
                self.end_line(false);
                self.header(0, "WARNING", session, "agent.context_compressor");
                self.text("Failed to generate context summary: ");
                self.text(PAYLOAD_INVALIDATED);
                self.text(PAUSED);
                self.end_line(true);
                failures += 2;
            }
            // >= 0.16: Hermes marks the entry dead itself; the request is aborted.
            2 => {
                self.header(gap, "WARNING", session, "agent.credential_pool");
                self.text("credential pool: marking ");
                self.text(label);
                self.text(" DEAD (status=401, reason=token_revoked) — permanently failed, will NOT re-enter rotation until re-auth");
                self.end_line(true);
                self.header(1, "ERROR", session, "agent.conversation_loop");
                self.text("Non-retryable client error: ");
                self.text(PAYLOAD_REVOKED);
                self.end_line(true);
                failures += 2;
            }
            // The API call's own warning (no reason code), the marking, the rotation.
            3 => {
                self.header(gap, "WARNING", session, "agent.conversation_loop");
                self.text(API_CALL_FAILED);
                self.text("AuthenticationError");
                self.text(API_CALL_TAIL);
                self.text("HTTP 401: Your authentication token has been invalidated. Please try signing in again.");
                self.end_line(true);
                self.marking(1, session, label, "401");
                self.header(2, "INFO", session, "agent.agent_runtime_helpers");
                self.text("Credential 401 (auth refresh failed) — rotated to pool entry ");
                self.text(next_id);
                self.end_line(true);
                failures += 2;
            }
            // Codex usage limit: 429 with resets_at.
            4 => {
                self.marking(gap, session, label, "429");
                let wait = self.rng.range(600, 18_000);
                if self.rng.chance(500) {
                    self.header(1, "WARNING", session, "agent.context_compressor");
                    self.text("Failed to generate context summary: Error code: 429 - {'error': {'type': 'usage_limit_reached', 'message': 'The usage limit has been reached', 'plan_type': 'plus', 'resets_at': ");
                    self.number(self.clock.ms / 1000 + wait);
                    self.text(", 'resets_in_seconds': ");
                    self.number(wait);
                    self.text("}}");
                    self.text(PAUSED);
                } else {
                    self.header(1, "WARNING", session, "agent.conversation_loop");
                    self.text(API_CALL_FAILED);
                    self.text("RateLimitError");
                    self.text(API_CALL_TAIL);
                    self.text("HTTP 429: The usage limit has been reached");
                }
                self.end_line(true);
                failures += 2;
            }
            // A traceback ending in the SDK's AuthenticationError.
            5 => {
                self.header(gap, "ERROR", session, "agent.conversation_loop");
                self.text("API call failed");
                self.end_line(false);
                self.text("Traceback (most recent call last):");
                self.end_line(false);
                self.text("  File \"/usr/lib/python3/site-packages/openai/_base_client.py\", line 1047, in request");
                self.end_line(false);
                self.text(
                    "    raise self._make_status_error_from_response(err.response) from None",
                );
                self.end_line(false);
                self.text("openai.AuthenticationError: ");
                self.text(PAYLOAD_INVALIDATED);
                self.end_line(true);
                failures += 1;
            }
            // Refreshing did not help; then the pool runs dry.
            6 => {
                self.header(gap, "WARNING", session, "agent.agent_runtime_helpers");
                self.text("Credential auth failure persists after 2 refreshes for pool entry ");
                self.text(id);
                self.text(" — treating as unrecoverable and allowing fallback to activate.");
                self.end_line(true);
                self.header(3, "INFO", session, "agent.credential_pool");
                self.text("credential pool: no available entries (all exhausted or empty)");
                self.end_line(true);
                failures += 1;
            }
            // An expired (not revoked) token during compaction.
            7 => {
                self.marking(gap, session, label, "401");
                self.header(1, "WARNING", session, "agent.context_compressor");
                self.text("Failed to generate context summary: ");
                self.text(PAYLOAD_EXPIRED);
                self.text(PAUSED);
                self.end_line(true);
                failures += 2;
            }
            // The auxiliary summary model's credential was revoked.
            _ => {
                self.header(gap, "WARNING", session, "agent.context_compressor");
                self.text("Summary model 'gpt-5.1-codex-mini' failed (");
                self.text(PAYLOAD_INVALIDATED);
                self.text("). Falling back to main model 'gpt-5.1-codex' for compression.");
                self.end_line(true);
                failures += 1;
            }
        }
        self.counts.failure_records += failures;
    }

    /// `credential pool: marking LABEL exhausted (status=S), rotating` (INFO, agent.log only).
    fn marking(&mut self, gap: u64, session: Option<usize>, label: &str, status: &str) {
        self.header(gap, "INFO", session, "agent.credential_pool");
        self.text("credential pool: marking ");
        self.text(label);
        self.text(" exhausted (status=");
        self.text(status);
        self.text("), rotating");
        self.end_line(true);
    }

    /// An INFO line of exactly `len` bytes (newline included), to end the file at its size.
    fn filler_line(&mut self, len: usize) {
        let goal = self.out.len() + len - 1;
        self.header(7, "INFO", None, "run_agent");
        self.text("Tool result preview (read_file): ");
        let have = self.out.len();
        self.words(goal.saturating_sub(have) + 1);
        self.out.truncate(goal);
        self.end_line(false);
    }
}

/// Writes `bytes` bytes of log to `file`; returns the counts and the last record's second.
fn generate_log(mut file: File, bytes: u64) -> io::Result<(Manifest, u64)> {
    let mut generator = Generator::new();
    let mut written: u64 = 0;
    while written + generator.out.len() as u64 + STEP_MAX < bytes {
        generator.step();
        if generator.out.len() >= FLUSH_BYTES {
            file.write_all(&generator.out)?;
            written += generator.out.len() as u64;
            generator.out.clear();
        }
    }
    // Fill the rest (between STEP_MAX and twice that) with lines of exact length, none
    // shorter than 300 bytes.
    let mut rest = bytes - written - generator.out.len() as u64;
    while rest > 0 {
        let len = if rest <= 4_000 {
            rest
        } else if rest - 4_000 < 300 {
            rest - 300
        } else {
            4_000
        };
        generator.filler_line(len as usize);
        rest -= len;
    }
    file.write_all(&generator.out)?;
    file.sync_all()?;
    generator.counts.bytes = bytes;
    Ok((generator.counts, generator.clock.ms / 1000))
}

// ---------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Cat,
    Rg,
    Warden,
}

/// One command to time.
struct Tool {
    kind: Kind,
    name: String,
    program: PathBuf,
    args: Vec<String>,
}

impl Tool {
    fn cat(log: &Path) -> Tool {
        Tool {
            kind: Kind::Cat,
            name: "cat > /dev/null".to_owned(),
            program: "cat".into(),
            args: vec![log.display().to_string()],
        }
    }

    /// `rg -c` over the same literals as the warden's prefilter, as fixed strings (they are
    /// plain literals by construction). Case-sensitive, like the prefilter.
    fn rg(program: &Path, log: &Path, literals: &[String]) -> Tool {
        let mut args = vec!["--no-config".to_owned(), "-c".to_owned(), "-F".to_owned()];
        for literal in literals {
            args.push("-e".to_owned());
            args.push(literal.clone());
        }
        args.push(log.display().to_string());
        Tool {
            kind: Kind::Rg,
            name: format!("rg -c -F ({} literals)", literals.len()),
            program: program.to_owned(),
            args,
        }
    }

    fn warden(binary: &Path, home: &Path) -> Tool {
        let args = [
            "--hermes-home",
            &home.display().to_string(),
            "--tz",
            "UTC",
            "--hermes-version",
            "0.15.0",
            "scan",
            "--format",
            "json",
        ]
        .map(str::to_owned)
        .to_vec();
        Tool {
            kind: Kind::Warden,
            name: "hermes-warden scan --format json".to_owned(),
            program: binary.to_owned(),
            args,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args).stdin(Stdio::null());
        command
    }

    fn describe_failure(&self, what: &str) -> String {
        format!("{} failed: {what}", self.name)
    }

    /// Runs once, keeping standard output (for the checks).
    fn run_captured(&self) -> Result<Vec<u8>, String> {
        let output = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| self.describe_failure(&e.to_string()))?;
        if !output.status.success() {
            return Err(self.describe_failure(&format!(
                "{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(output.stdout)
    }

    /// Runs once and returns the wall and CPU time. Output goes to /dev/null, except rg's: its
    /// one number goes through a pipe, so that no optimisation for a /dev/null output can skip
    /// the counting.
    fn run_timed(&self) -> Result<Sample, String> {
        let mut command = self.command();
        command.stderr(Stdio::piped());
        command.stdout(if self.kind == Kind::Rg {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let cpu_before = children_cpu_seconds();
        let started = Instant::now();
        let output = command
            .output()
            .map_err(|e| self.describe_failure(&e.to_string()))?;
        let wall = started.elapsed().as_secs_f64();
        let cpu = children_cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        if !output.status.success() {
            return Err(self.describe_failure(&format!(
                "{}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(Sample { wall, cpu })
    }

    /// Says, after the untimed run, whether the tool saw the data the generator wrote.
    fn check(&self, stdout: &[u8], manifest: &Manifest) {
        match self.kind {
            Kind::Cat => {}
            Kind::Rg => {
                let count = String::from_utf8_lossy(stdout).trim().parse::<u64>().ok();
                if count == Some(manifest.candidate_lines) {
                    println!(
                        "  check: rg counted {} candidate lines, as generated",
                        manifest.candidate_lines
                    );
                } else {
                    println!(
                        "  check: WARNING rg counted {count:?} lines, the generator expected {} \
                         (rules or templates changed? bump DATA_VERSION after fixing)",
                        manifest.candidate_lines
                    );
                }
            }
            Kind::Warden => check_warden_report(stdout, manifest),
        }
    }
}

/// The warden's JSON report must have read every line and byte, and found events.
fn check_warden_report(stdout: &[u8], manifest: &Manifest) {
    let report: serde_json::Value = match serde_json::from_slice(stdout) {
        Ok(report) => report,
        Err(error) => {
            println!("  check: WARNING the warden's report is not JSON: {error}");
            return;
        }
    };
    let agent_log = report["files"].as_array().and_then(|files| {
        files
            .iter()
            .find(|f| f["file"].as_str().is_some_and(|n| n.ends_with("agent.log")))
    });
    let read = agent_log.map(|f| (f["lines"].as_u64(), f["bytes"].as_u64()));
    let events = report["events"].as_array().map_or(0, Vec::len);
    let actions = report["actions"].as_array().map_or(0, Vec::len);
    if read == Some((Some(manifest.lines), Some(manifest.bytes))) && events > 0 {
        println!(
            "  check: the warden read {} lines and {} bytes, reported {events} events and {actions} actions",
            manifest.lines, manifest.bytes
        );
    } else {
        println!(
            "  check: WARNING the warden read (lines, bytes) {read:?} of ({}, {}) and reported {events} events",
            manifest.lines, manifest.bytes
        );
    }
}

/// `ripgrep 13.0.0` and its major version, or `None` when `rg` cannot be run.
fn rg_version(program: &Path) -> Option<(String, u32)> {
    let output = Command::new(program).arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let first = text.lines().next().unwrap_or("ripgrep").to_owned();
    let major = first
        .split_whitespace()
        .nth(1)
        .and_then(|version| version.split('.').next()?.parse().ok())
        .unwrap_or(0);
    Some((first, major))
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Wall seconds, spawn to exit.
    wall: f64,
    /// User + system CPU seconds of the child (10 ms resolution), when the OS tells.
    cpu: Option<f64>,
}

/// Linux's USER_HZ, the unit of the times in /proc (100 on every mainstream architecture).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) used so far by this process's waited-for children, from
/// /proc/self/stat; `None` where there is no /proc. On a shared machine, wall time well above
/// CPU time means the run waited for a CPU.
fn children_cpu_seconds() -> Option<f64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name's closing parenthesis come the fields from 3 (state) on;
    // cutime and cstime are fields 16 and 17 of proc(5).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(13)?.parse::<u64>().ok()? + fields.get(14)?.parse::<u64>().ok()?;
    Some(ticks as f64 / CLOCK_TICKS_PER_SECOND)
}

fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

/// The medians of one tool's runs.
struct Medians {
    wall: f64,
    cpu: Option<f64>,
}

impl Medians {
    fn of(samples: &[Sample]) -> Medians {
        let cpu: Option<Vec<f64>> = samples.iter().map(|sample| sample.cpu).collect();
        Medians {
            wall: median(samples.iter().map(|sample| sample.wall)).unwrap_or(f64::NAN),
            cpu: cpu.and_then(median),
        }
    }
}

/// GB/s (10^9 bytes per second) of `bytes` read in `seconds`.
fn rate(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / 1e9 / seconds
}

/// The throughput of the first tool of `kind`, from its median wall time.
fn rate_of(kind: Kind, tools: &[Tool], medians: &[Medians], bytes: u64) -> Option<f64> {
    let index = tools.iter().position(|tool| tool.kind == kind)?;
    Some(rate(bytes, medians[index].wall))
}

fn print_table(tools: &[Tool], times: &[Vec<Sample>], medians: &[Medians], bytes: u64) {
    let cat = rate_of(Kind::Cat, tools, medians, bytes);
    let rg = rate_of(Kind::Rg, tools, medians, bytes);
    println!();
    println!(
        "{:<34} {:>9} {:>7} {:>7} {:>7} {:>7}   wall s of each run",
        "tool", "median s", "cpu s", "GB/s", "x cat", "x rg"
    );
    for ((tool, samples), median) in tools.iter().zip(times).zip(medians) {
        let gbps = rate(bytes, median.wall);
        let ratio = |reference: Option<f64>| {
            reference.map_or("-".to_owned(), |reference| {
                format!("{:.3}", gbps / reference)
            })
        };
        let cpu = median.cpu.map_or("-".to_owned(), |cpu| format!("{cpu:.2}"));
        let runs: Vec<String> = samples.iter().map(|s| format!("{:.3}", s.wall)).collect();
        println!(
            "{:<34} {:>9.3} {:>7} {:>7.2} {:>7} {:>7}   {}",
            tool.name,
            median.wall,
            cpu,
            gbps,
            ratio(cat),
            ratio(rg),
            runs.join(" ")
        );
    }
    println!();
}

/// Whether the warden meets the targets of quality.md, as text: a benchmark never fails.
fn print_verdict(tools: &[Tool], medians: &[Medians], bytes: u64) {
    let Some(warden_index) = tools.iter().position(|tool| tool.kind == Kind::Warden) else {
        return;
    };
    let warden = rate(bytes, medians[warden_index].wall);
    let verdict = |met: bool| if met { "met" } else { "MISSED" };
    let mut line = format!(
        "targets: throughput {warden:.2} GB/s (>= {TARGET_GB_PER_S} GB/s): {}",
        verdict(warden >= TARGET_GB_PER_S)
    );
    match rate_of(Kind::Rg, tools, medians, bytes) {
        Some(rg) => {
            let ratio = warden / rg;
            let _ = write!(
                line,
                "; {ratio:.2}x rg (>= {TARGET_RATIO_TO_RG}x): {}",
                verdict(ratio >= TARGET_RATIO_TO_RG)
            );
        }
        None => line.push_str("; ratio to rg: not measured (rg missing)"),
    }
    println!("{line}");
    if let Some(cpu) = medians[warden_index].cpu {
        println!(
            "         per CPU second: {:.2} GB/s (the warden is single-threaded; wall above CPU \
             time means it waited for a core)",
            rate(bytes, cpu)
        );
    }
}
