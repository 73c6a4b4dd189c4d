//! No token in any output or state file, wherever it sits: two obviously fake tokens are slid
//! across every offset before, across and after the 120-character cut of `rules test`, in
//! every field of a log line and of auth.json that reaches an output, and across the cut of a
//! line longer than the line limit (set to 1024 bytes in warden.toml); every command runs once
//! on them (`rules test`, `scan`, `status`, `scan --apply`, `watch --dry-run` and `watch`) and
//! everything printed, every state file and every field written to auth.json is searched for
//! any 12 characters of either token.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use aho_corasick::AhoCorasick;
use serde_json::{Value, json};

use crate::util::{read_json, warden_in};

/// A 48-character OpenAI project key, obviously fake.
const OPENAI: &str = "sk-proj-FAKEq7Xk2mP9vL4nR8tW1zY6bC3dF5gH0jKfake0";
/// A JWT-shaped string (220 characters) whose payload says it is fake.
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJmYWtlLXRlc3QtdXNlci0wMDAwIiwibm90ZSI6IkZBS0UgdG9rZW4gZm9yIGhlcm1lcy13YXJkZW4gdGVzdHMiLCJpYXQiOjE3ODAwMDAwMDB9.RkFLRS1zaWduYXR1cmUtbm90LWEtcmVhbC1vbmUtRkFLRS1zaWduYXR1cmUhIQ";
const TOKENS: [&str; 2] = [OPENAI, JWT];
/// No output may hold this many characters of a token in a row.
const WINDOW: usize = 12;
/// Paddings 0..=MAX_PAD put a token wholly before the cut at 120 characters, across it at
/// every offset, and wholly after it.
const MAX_PAD: usize = 130;
/// What pads a token: a word break, token characters that join its run, and the characters
/// the scrubber treats specially (`..`, paths, base64).
const FILLERS: [char; 5] = [' ', 'x', '.', '/', '='];
/// Every this many paddings, auth.json has an entry labelled with the padded token.
const ENTRY_STEP: usize = 13;
const NOW: &str = "2026-05-26T12:00:00Z";
/// The line limit set in the home's warden.toml (the smallest allowed), which long lines cross.
const MAX_LINE: usize = 1024;
/// The log lines' times start here (UTC).
const LOG_START_EPOCH: f64 = 1_779_789_600.0; // 2026-05-26T10:00:00Z

fn pad(filler: char, count: usize) -> String {
    std::iter::repeat_n(filler, count).collect()
}

/// Every padding of every token: (token, count, padded token). The filler changes with the
/// offset, so that each kind of filler reaches every region of the cut.
fn paddings() -> impl Iterator<Item = (&'static str, usize, String)> {
    TOKENS.into_iter().enumerate().flat_map(|(which, token)| {
        (0..=MAX_PAD).map(move |count| {
            let filler = FILLERS[(count + which) % FILLERS.len()];
            (token, count, pad(filler, count) + token)
        })
    })
}

/// Log lines with `[session] logger: message` headers, 10 ms apart.
#[derive(Default)]
struct Log {
    text: String,
    lines: usize,
}

impl Log {
    fn line(&mut self, session: &str, logger: &str, message: &str) {
        let header = self.header(session, logger);
        let _ = writeln!(self.text, "{header}{message}");
        self.lines += 1;
    }

    /// The header of the next line.
    fn header(&self, session: &str, logger: &str) -> String {
        let ms = self.lines * 10;
        format!(
            "2026-05-26 10:{:02}:{:02},{:03} WARNING [{session}] {logger}: ",
            ms / 60_000,
            (ms / 1000) % 60,
            ms % 1000
        )
    }

    /// A line longer than [`MAX_LINE`] whose cut falls `into` bytes into `token`: `message`,
    /// then `filler` up to the token, then more words.
    fn line_cut_in(
        &mut self,
        session: &str,
        logger: &str,
        message: &str,
        filler: char,
        token: &str,
        into: usize,
    ) {
        let before = self.header(session, logger).len() + message.len();
        let padding = pad(filler, MAX_LINE - into - before);
        self.line(
            session,
            logger,
            &format!("{message}{padding}{token} and more words"),
        );
    }
}

/// A Hermes home whose logs and auth.json hold the tokens everywhere a text can go.
fn write_home(root: &Path) {
    let mut errors = Log::default();
    let mut agent = Log::default();
    for (index, (_, _, padded)) in paddings().enumerate() {
        let session = format!("s{index}");
        // `\S+` captures take no spaces.
        let unspaced = padded.replace(' ', "x");
        errors.line(
            &session,
            "agent.context_compressor",
            &format!("Failed to generate context summary: {padded} (no summary)."),
        );
        errors.line(
            &session,
            "agent.credential_pool",
            &format!(
                "credential pool: marking alice@example.com DEAD (status=401, reason={padded}) — permanently failed, will NOT re-enter rotation until re-auth"
            ),
        );
        errors.line(
            &session,
            "agent.credential_pool",
            &format!(
                "credential pool: marking {padded} DEAD (status=401, reason=token_revoked) — permanently failed, will NOT re-enter rotation until re-auth"
            ),
        );
        errors.line(
            &session,
            "agent.conversation_loop",
            &format!(
                "Non-retryable client error: Error code: 401 - {{'error': {{'message': '{padded}', 'type': 'invalid_request_error', 'code': 'token_revoked', 'param': None}}, 'status': 401}}"
            ),
        );
        errors.line(
            &session,
            "agent.conversation_loop",
            &format!(
                "API call failed (attempt 1/3) error_type=AuthenticationError thread=MainThread provider={unspaced} base_url=https://chatgpt.com/backend-api/codex model=gpt-5.1-codex summary=HTTP 401: Your authentication token has been invalidated. Please try signing in again."
            ),
        );
        errors.line(
            &session,
            "agent.agent_runtime_helpers",
            &format!(
                "Credential auth failure persists after 2 refreshes for pool entry {unspaced} — treating as unrecoverable and allowing fallback to activate."
            ),
        );
        // The session tag ends at `]`; the filler is never one.
        errors.line(
            &padded,
            "agent.context_compressor",
            "Failed to generate context summary: Request timed out.",
        );
        agent.line(
            &session,
            "agent.credential_pool",
            &format!("credential pool: marking {padded} exhausted (status=401), rotating"),
        );
        agent.line(
            &session,
            "agent.agent_runtime_helpers",
            &format!(
                "Credential 401 (auth refresh failed {padded}) — rotated to pool entry {unspaced}"
            ),
        );
    }
    // Lines longer than the limit, cut inside a token at every offset: what a rule takes to
    // the end of the cut line (the id of a pool entry) would hold its first part.
    for (which, token) in TOKENS.into_iter().enumerate() {
        for into in 0..=token.len() {
            let filler = FILLERS[(into + which) % FILLERS.len()];
            agent.line_cut_in(
                &format!("long{which}x{into}"),
                "agent.context_compressor",
                "Failed to generate context summary: ",
                filler,
                token,
                into,
            );
            agent.line_cut_in(
                &format!("entry{which}x{into}"),
                "agent.agent_runtime_helpers",
                "Credential auth failure persists after 2 refreshes for pool entry ",
                if filler == ' ' { '.' } else { filler },
                token,
                into,
            );
        }
    }
    std::fs::create_dir_all(root.join("logs")).unwrap();
    std::fs::write(root.join("logs/errors.log"), &errors.text).unwrap();
    std::fs::write(root.join("logs/agent.log"), &agent.text).unwrap();
    let auth = serde_json::to_string_pretty(&auth_json()).unwrap() + "\n";
    std::fs::write(root.join("auth.json"), auth).unwrap();
    std::fs::write(
        root.join("warden.toml"),
        format!("max_line_bytes = {MAX_LINE}\n"),
    )
    .unwrap();
}

fn auth_json() -> Value {
    let failed_at = LOG_START_EPOCH + 1.0;
    let mut codex = vec![json!({
        "id": "a11ce0",
        "label": "alice@example.com",
        "auth_type": "oauth",
        "source": format!("manual:{OPENAI}"),
        "access_token": OPENAI,
        "refresh_token": JWT,
        "last_status": "exhausted",
        "last_status_at": failed_at,
        "last_error_code": 401,
        "last_error_reason": "token_revoked",
        "last_error_message": format!("Bearer {OPENAI} was revoked"),
        "last_error_reset_at": null
    })];
    for (index, (token, count, padded)) in paddings().enumerate() {
        if count % ENTRY_STEP != 0 {
            continue;
        }
        codex.push(json!({
            "id": format!("e{index:05}"),
            "label": padded,
            "auth_type": "api_key",
            "source": format!("manual:{padded}"),
            "access_token": format!("{token}-{index}"),
            "last_status": "exhausted",
            "last_status_at": failed_at,
            "last_error_code": 401,
            "last_error_reason": padded,
            "last_error_message": format!("{padded} rejected"),
            "last_error_reset_at": null
        }));
    }
    // A pool named by a token, with an entry whose id, status and fingerprint are tokens.
    let strange = vec![
        json!({
            "id": JWT,
            "label": "plain",
            "source": format!("env:{JWT}"),
            "last_status": OPENAI,
            "secret_fingerprint": format!("sha256:{OPENAI}")
        }),
        json!({
            "id": "0th3r1",
            "label": JWT,
            "access_token": format!("{JWT}-other"),
            "last_status": "exhausted",
            "last_status_at": failed_at,
            "last_error_code": 401,
            "last_error_reason": JWT,
            "last_error_message": format!("Bearer {JWT}")
        }),
    ];
    json!({
        "version": 1,
        "active_provider": OPENAI,
        "credential_pool": { "openai-codex": codex, (OPENAI): strange }
    })
}

/// Finds any `WINDOW` characters of a token in a text.
struct Finder {
    finder: AhoCorasick,
    /// Which token and where in it, for each pattern.
    windows: Vec<(usize, usize)>,
}

impl Finder {
    fn new() -> Finder {
        let mut patterns = Vec::new();
        let mut windows = Vec::new();
        for (which, token) in TOKENS.iter().enumerate() {
            for at in 0..=token.len() - WINDOW {
                patterns.push(&token[at..at + WINDOW]);
                windows.push((which, at));
            }
        }
        Finder {
            finder: AhoCorasick::new(patterns).unwrap(),
            windows,
        }
    }

    fn leaks(&self, text: &str) -> bool {
        self.finder.is_match(text)
    }

    /// Where a leak is: the JSON fields holding one (`type/key/...`), else the first line.
    fn describe(&self, text: &str) -> Option<String> {
        let hit = self.finder.find(text)?;
        let mut fields = BTreeSet::new();
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            self.fields(&value, String::new(), &mut fields);
        } else if let Some(lines) = text
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).ok())
            .collect::<Option<Vec<Value>>>()
        {
            for value in lines {
                let kind = value["type"].as_str().unwrap_or("finding").to_owned();
                self.fields(&value, kind, &mut fields);
            }
        }
        if !fields.is_empty() {
            return Some(format!("in {}", Vec::from_iter(fields).join(", ")));
        }
        let (which, at) = self.windows[hit.pattern().as_usize()];
        let start = text[..hit.start()].rfind('\n').map_or(0, |i| i + 1);
        let end = text[hit.start()..]
            .find('\n')
            .map_or(text.len(), |i| hit.start() + i);
        let line: String = text[start..end].chars().take(300).collect();
        Some(format!("characters {at}.. of token {which} in: {line}"))
    }

    fn fields(&self, value: &Value, path: String, found: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    if self.leaks(key) {
                        found.insert(format!("{path}/<a key>"));
                    }
                    self.fields(value, format!("{path}/{key}"), found);
                }
            }
            Value::Array(values) => {
                for value in values {
                    self.fields(value, format!("{path}[]"), found);
                }
            }
            Value::String(text) if self.leaks(text) => {
                found.insert(path);
            }
            _ => {}
        }
    }
}

/// What leaked where: printed output, and what was stored (state files, auth.json writes).
#[derive(Default)]
struct Leaks {
    printed: BTreeMap<String, String>,
    stored: BTreeMap<String, String>,
}

fn assert_none(leaks: &BTreeMap<String, String>) {
    let report: Vec<String> = leaks
        .iter()
        .map(|(output, leak)| format!("- {output}: {leak}"))
        .collect();
    assert!(report.is_empty(), "tokens leaked:\n{}", report.join("\n"));
}

/// Runs every command on the homes once, for both tests.
static LEAKS: LazyLock<Leaks> = LazyLock::new(run_everything);

struct Run {
    finder: Finder,
    leaks: Leaks,
}

impl Run {
    fn printed(&mut self, output: &str, text: &str) {
        if let Some(leak) = self.finder.describe(text) {
            self.leaks.printed.insert(output.to_owned(), leak);
        }
    }

    fn stored(&mut self, output: &str, text: &str) {
        if let Some(leak) = self.finder.describe(text) {
            self.leaks.stored.insert(output.to_owned(), leak);
        }
    }

    /// Runs the warden on `home` with `args`, which must succeed, and checks what it printed.
    fn warden(&mut self, home: &Path, args: &[&str]) -> String {
        let output = warden_in(home)
            .args(["--hermes-version", "0.19.0", "--now", NOW])
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{args:?} failed: {stderr}");
        let name = args.join(" ").replace(&home.display().to_string(), "HOME");
        self.printed(&format!("{name} (stdout)"), &stdout);
        self.printed(&format!("{name} (stderr)"), &stderr);
        stdout
    }

    /// Checks every file in `<home>/warden/`; returns their names.
    fn state_files(&mut self, home: &Path, after: &str) -> Vec<String> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(home.join("warden")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_file() {
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                self.stored(&format!("warden/{name} after {after}"), &text);
                names.push(name);
            }
        }
        names.sort();
        names
    }

    /// Checks the auth.json fields the warden changed since `before`; returns how many.
    fn auth_writes(&mut self, home: &Path, before: &Value, after: &str) -> usize {
        let now = read_json(&home.join("auth.json"));
        let written = changed_fields(before, &now);
        self.stored(
            &format!("auth.json fields written by {after}"),
            &serde_json::to_string(&Value::Object(written.clone())).unwrap(),
        );
        written.len()
    }
}

/// Every field of every pool entry that differs between two auth.json documents, by
/// `FIELD of entry N` (N counting entries in provider and id order; provider and id hold
/// tokens here).
fn changed_fields(before: &Value, after: &Value) -> serde_json::Map<String, Value> {
    let entries = |document: &Value| -> BTreeMap<(String, String), Value> {
        let mut entries = BTreeMap::new();
        for (provider, pool) in document["credential_pool"].as_object().unwrap() {
            for entry in pool.as_array().unwrap() {
                let id = entry["id"].as_str().unwrap().to_owned();
                entries.insert((provider.clone(), id), entry.clone());
            }
        }
        entries
    };
    let before = entries(before);
    let mut changed = serde_json::Map::new();
    for (n, (key, entry)) in entries(after).into_iter().enumerate() {
        for (field, value) in entry.as_object().unwrap() {
            if before.get(&key).map(|old| &old[field]) != Some(value) {
                changed.insert(format!("{field} of entry {n}"), value.clone());
            }
        }
    }
    changed
}

/// `hermes-warden watch` (`--dry-run` or not) with `-vv` on `home` until it recorded
/// `findings` and finished a step; stops it with SIGTERM and returns its stderr (kept in a
/// file: `-vv` says more than a pipe holds).
fn watch(home: &Path, dry_run: bool, findings: usize, stderr: &Path) -> String {
    let started = std::time::SystemTime::now();
    let mut command = Command::new(assert_cmd::cargo::cargo_bin!("hermes-warden"));
    command
        .arg("--hermes-home")
        .arg(home)
        .args(["--tz", "UTC", "--hermes-version", "0.19.0", "-vv", "watch"])
        .args(["--poll-interval", "0.1"])
        .env_remove("HERMES_HOME")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap());
    if dry_run {
        command.arg("--dry-run");
    }
    let mut daemon = Running(command.spawn().expect("start hermes-warden watch"));
    let checkpoint = home.join("warden/checkpoints.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let recorded = std::fs::read_to_string(home.join("warden/audit.jsonl")).map_or(0, |text| {
            text.lines().filter(|l| !l.contains("\"type\"")).count()
        });
        let stepped = std::fs::metadata(&checkpoint)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified >= started);
        if recorded >= findings && stepped {
            break;
        }
        if let Some(status) = daemon.0.try_wait().unwrap() {
            panic!(
                "watch exited early ({status}):\n{}",
                std::fs::read_to_string(stderr).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "after 60 s: {recorded} of {findings} findings recorded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = daemon.0.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let status = daemon.0.wait().unwrap();
    let text = std::fs::read_to_string(stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    text
}

/// A child process, killed if the test fails while it runs.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn run_everything() -> Leaks {
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run {
        finder: Finder::new(),
        leaks: Leaks::default(),
    };
    let home = dir.path().join("hermes");
    write_home(&home);
    let pristine = read_json(&home.join("auth.json"));

    let lines = TOKENS.len() * (MAX_PAD + 1);
    let errors = home.join("logs/errors.log").display().to_string();
    let tested = run.warden(&home, &["rules", "test", &errors]);
    assert!(
        tested.contains(&format!("{0} lines, {0} matched", 7 * lines)),
        "every line matched a rule:\n{}",
        &tested[tested.len().saturating_sub(2000)..]
    );
    assert!(tested.contains("..."), "captures were cut");
    let agent = home.join("logs/agent.log").display().to_string();
    run.warden(&home, &["rules", "test", "--log", "agent.log", &agent]);

    let scan: Value =
        serde_json::from_str(&run.warden(&home, &["scan", "--format", "json"])).unwrap();
    let findings = scan["events"].as_array().unwrap().len();
    assert!(findings >= 9 * lines, "{findings} events");
    let cut_lines = scan["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["session"].as_str().unwrap_or("").starts_with("long"))
        .count();
    let expected: usize = TOKENS.iter().map(|token| token.len() + 1).sum();
    assert_eq!(cut_lines, expected, "every line cut in a token was read");
    assert!(
        scan["actions"].as_array().unwrap().len() > 2,
        "alice and the labelled entries are to be marked"
    );
    for args in [
        &["scan"][..],
        &["scan", "--format", "markdown"],
        &["status"],
        &["status", "--format", "json"],
        &["status", "--format", "prometheus"],
    ] {
        run.warden(&home, args);
    }

    run.warden(&home, &["scan", "--apply", "--format", "json"]);
    let files = run.state_files(&home, "scan --apply");
    assert!(files.contains(&"ledger.json".into()), "{files:?}");
    assert!(run.auth_writes(&home, &pristine, "scan --apply") > 0);
    run.warden(&home, &["status"]);
    run.warden(&home, &["status", "--format", "json"]);
    run.warden(&home, &["scan", "--format", "markdown"]);

    // The daemon, on fresh copies of the home, with its most talkative log.
    for (name, dry_run) in [("watch --dry-run", true), ("watch", false)] {
        let watched = dir.path().join(name.replace([' ', '-'], ""));
        write_home(&watched);
        let stderr = watch(&watched, dry_run, findings, &dir.path().join("stderr"));
        run.printed(&format!("{name} -vv (stderr)"), &stderr);
        let files = run.state_files(&watched, name);
        assert!(files.contains(&"checkpoints.json".into()), "{files:?}");
        let writes = run.auth_writes(&watched, &pristine, name);
        assert_eq!(
            writes == 0,
            dry_run,
            "{name} wrote {writes} fields of auth.json"
        );
    }
    run.leaks
}

#[test]
fn the_test_tokens_look_real() {
    assert_eq!(OPENAI.len(), 48);
    assert!(JWT.starts_with("eyJ") && JWT.split('.').count() == 3 && JWT.len() > 200);
}

#[test]
fn no_token_is_printed_at_any_offset() {
    assert_none(&LEAKS.printed);
}

#[test]
fn no_token_is_stored_at_any_offset() {
    assert_none(&LEAKS.stored);
}
