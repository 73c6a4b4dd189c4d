//! How long from a failure line appended to `errors.log` to the dead mark durable in
//! `auth.json`, with the real `watch` daemon (quality target: p50 under 5 ms, p99 under 25 ms
//! over 1,000 events), beside the bare cost of the same atomic write (temporary file, fsync,
//! rename, directory fsync) measured in the same run.
//!
//! Each round revives the credential with `hermes-warden revive` (so the next failure is news),
//! waits for the daemon to settle, appends a `marking alice DEAD` line and polls `auth.json` until
//! alice is dead there. `cargo bench --bench remediation_latency`; `WARDEN_BENCH_EVENTS` sets the
//! number of rounds (default 1,000; `cargo test --benches` runs 20 as a smoke test).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AUTH: &str = r#"{
  "version": 1,
  "providers": {},
  "credential_pool": {
    "openai-codex": [
      {
        "id": "a11ce0",
        "label": "alice@example.com",
        "auth_type": "oauth",
        "priority": 0,
        "source": "manual:device_code",
        "access_token": "fake-codex-access-token-alice-0000000000",
        "refresh_token": "fake-codex-refresh-token-alice-0000000000",
        "last_status": null,
        "last_status_at": null,
        "last_error_code": null,
        "last_error_reason": null,
        "last_error_message": null,
        "last_error_reset_at": null,
        "base_url": "https://chatgpt.com/backend-api/codex",
        "request_count": 0
      },
      {
        "id": "b0b000",
        "label": "bob@example.com",
        "auth_type": "oauth",
        "priority": 1,
        "source": "manual:device_code",
        "access_token": "fake-codex-access-token-bob-0000000000",
        "refresh_token": "fake-codex-refresh-token-bob-0000000000",
        "last_status": null,
        "last_status_at": null,
        "last_error_code": null,
        "last_error_reason": null,
        "last_error_message": null,
        "last_error_reset_at": null,
        "base_url": "https://chatgpt.com/backend-api/codex",
        "request_count": 0
      }
    ]
  },
  "active_provider": "openai-codex",
  "updated_at": "2026-11-29T00:00:00+00:00"
}
"#;

fn main() {
    if let Err(error) = run() {
        eprintln!("remediation_latency: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let default_events = if benchmarking { 1000 } else { 20 };
    let events = match std::env::var("WARDEN_BENCH_EVENTS") {
        Ok(text) => text
            .parse::<usize>()
            .map_err(|_| format!("WARDEN_BENCH_EVENTS={text:?} is not a count"))?,
        Err(_) => default_events,
    };
    let warden = PathBuf::from(env!("CARGO_BIN_EXE_hermes-warden"));
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let home = dir.path().join("hermes");
    std::fs::create_dir_all(home.join("logs")).map_err(|e| e.to_string())?;
    std::fs::write(home.join("auth.json"), AUTH).map_err(|e| e.to_string())?;

    let mut daemon = Daemon::start(&warden, &home)?;
    let mut latencies = Vec::with_capacity(events);
    for round in 0..events {
        revive(&warden, &home)?;
        // Let the daemon see the revived auth.json and go idle, and move past the revival's
        // millisecond (the log's time resolution).
        std::thread::sleep(Duration::from_millis(30));
        let line = format!(
            "{} WARNING [s{round}] agent.credential_pool: credential pool: marking alice@example.com DEAD (status=401, reason=token_revoked) — permanently failed, will NOT re-enter rotation until re-auth\n",
            jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S,%3f")
        );
        let started = Instant::now();
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(home.join("logs/errors.log"))
            .and_then(|mut file| file.write_all(line.as_bytes()))
            .map_err(|e| e.to_string())?;
        wait_until_dead(&home, &mut daemon, started)?;
        latencies.push(started.elapsed());
    }
    daemon.stop();

    let bare = bare_writes(&dir.path().join("bare"), events)?;
    println!();
    println!("remediation_latency: {events} events, one credential marked dead each");
    println!(
        "{:<44} {:>9} {:>9} {:>9} {:>9}",
        "", "p50", "p90", "p99", "max"
    );
    report("log line -> dead mark durable in auth.json", &latencies);
    report("bare atomic write of auth.json (reference)", &bare);
    println!(
        "ratio at p50: {:.1}x the bare write; target: p50 < 5 ms, p99 < 25 ms",
        percentile(&latencies, 50.0).as_secs_f64() / percentile(&bare, 50.0).as_secs_f64()
    );
    Ok(())
}

struct Daemon(Child);

impl Daemon {
    fn start(warden: &Path, home: &Path) -> Result<Daemon, String> {
        let child = Command::new(warden)
            .arg("--hermes-home")
            .arg(home)
            .args(["--hermes-version", "0.19.0", "--tz", "UTC", "watch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", warden.display()))?;
        let daemon = Daemon(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !home.join("warden/checkpoints.json").exists() {
            if Instant::now() > deadline {
                return Err("the daemon never finished its first step".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(daemon)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn revive(warden: &Path, home: &Path) -> Result<(), String> {
    let status = Command::new(warden)
        .arg("--hermes-home")
        .arg(home)
        .args([
            "--hermes-version",
            "0.19.0",
            "revive",
            "openai-codex",
            "a11ce0",
        ])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| "revive failed".into())
}

fn wait_until_dead(home: &Path, daemon: &mut Daemon, started: Instant) -> Result<(), String> {
    loop {
        let bytes = std::fs::read(home.join("auth.json")).map_err(|e| e.to_string())?;
        let auth: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        if auth["credential_pool"]["openai-codex"][0]["last_status"] == "dead" {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(10) {
            let exited = daemon.0.try_wait().ok().flatten();
            return Err(format!("no mark after 10 s (daemon exited: {exited:?})"));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// The same write without the warden: `state::write_atomically` of auth.json's bytes.
fn bare_writes(dir: &Path, count: usize) -> Result<Vec<Duration>, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let path = dir.join("auth.json");
    (0..count)
        .map(|_| {
            let started = Instant::now();
            hermes_warden::shared::files::write_atomically(&path, AUTH.as_bytes(), None)
                .map_err(|e| e.to_string())?;
            Ok(started.elapsed())
        })
        .collect()
}

fn percentile(values: &[Duration], percent: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let index = ((percent / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index]
}

fn report(name: &str, values: &[Duration]) {
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "{name:<44} {:>9} {:>9} {:>9} {:>9}",
        ms(percentile(values, 50.0)),
        ms(percentile(values, 90.0)),
        ms(percentile(values, 99.0)),
        ms(*values.iter().max().unwrap_or(&Duration::ZERO)),
    );
}
