"""Write many log records from several processes at once through Hermes's own handlers.

Usage (with the Python of a venv made by setup_venvs.sh):

    target/hermes-venvs/0.19.0/bin/python tests/hermes/write_logs.py HOME_DIR \
        --processes 4 --records 3000 --max-size-mb 1 [--seed N] [--profile NAME] \
        [--backup-count 200] [--start-delay SECONDS] [--no-redact] [--allow-loss] \
        [--serialize-rotation]

Several Hermes processes (CLI, gateway, cron) log to the same files and each one
rotates them on its own. This script reproduces that: it starts PROCESSES writer
processes (this script re-invoked with `--writer W`), each a fresh interpreter
that, with HERMES_HOME = HOME_DIR (or HOME_DIR/profiles/NAME), calls

    hermes_logging.setup_logging(hermes_home=HOME, max_size_mb=MAX, backup_count=B, force=True)

and logs through the handlers Hermes installs (0.19: behind its QueueListener),
so Hermes's own `RotatingFileHandler.doRollover()` runs concurrently in every
process on the same agent.log and errors.log.

What each writer W logs (session context `set_session_context(<writer's id>)`, so
every line carries ` [session_id]`), RECORDS rounds of:

* the tracked WARNING (errors.log and agent.log), logger `agent.context_compressor`:
  `Failed to generate context summary: Request timed out (writer W record R).
  Further summary attempts paused for 60 seconds.`
* a padding WARNING (both files), logger `tools.browser_tool`, shaped like Hermes's
  `browser '%s' returned non-JSON output (rc=%s): %s` with 500 characters of page
  text (Hermes cuts it at 500): it makes errors.log rotate several times;
* three INFO lines (agent.log only), logger `agent.tool_executor`, shaped like
  Hermes's `tool %s completed (%.2fs, %d chars)`.

Writers sleep now and then for a millisecond or two (seeded), so they interleave.

Rotation settings. agent.log: `max_size_mb` and `backup_count` are setup_logging
keywords. errors.log: Hermes fixes it at 2 MiB and 2 backups (hermes_logging.py,
0.15 and 0.19; not configurable). The size stays at 2 MiB; the backup count of
Hermes's errors.log handler is raised to B after setup_logging (the handler's
`backupCount` attribute; its rotation code is untouched), because with 2 backups
Hermes deletes old errors.log content by design and "every record is still on
disk" could not be checked. B (default 200) must exceed the highest backup index reached (concurrent
rotations make many more, smaller files than the size limit implies: 8 writers
x 2000 records reached agent.log.52).

At the end, stdout gets one JSON object:

    {"warnings_written", "info_written", "padding_warnings_written", "processes",
     "records", "hermes_version", "logs_dir", "sessions": [id per writer],
     "errors_log_files": [...], "agent_log_files": [...], "logging_errors",
     "missing_from_errors_log": [[W, R], ...], "missing_from_agent_log": [[W, R], ...],
     "lines_lost": {"errors.log": n, "agent.log": n}, "seconds"}

`warnings_written` counts the tracked WARNINGs (PROCESSES x RECORDS),
`info_written` the INFO lines; file lists are the names in the logs dir, in
rotation order (x.log, x.log.1, x.log.2, ...); `logging_errors` counts
"--- Logging error ---" reports (failed emits) on the writers' stderr.

Before printing, the files are checked: every tracked WARNING must appear exactly
once, well-formed and with its writer's session tag, in the union of errors.log*
and once in the union of agent.log*; the padding and INFO line counts must match
too (INFO never in errors.log). On any discrepancy the details go to stderr (with
the JSON) and the exit status is 1.

Known result (hermes-agent 0.19.0, Linux): this check often FAILS, because Hermes's
POSIX rotation is not safe across processes. When the file passes the limit, every
writer's next emit wants to roll over; two `doRollover()` loops that overlap
(`exists(.i)` / `remove(.i+1)` / `rename(.i, .i+1)`, then `rename(x.log, x.log.1)`,
which silently replaces an existing target) delete or overwrite whole rotated
files, and a rename whose source another process just moved raises
FileNotFoundError, which drops that record ("--- Logging error ---"). Extra
rotations of nearly empty files also happen. Options:

* `--allow-loss`: lost lines are not an error; they are listed in the JSON
  (`missing_from_*`, `lines_lost`). Duplicated, mangled or mis-tagged lines still fail.
* `--serialize-rotation`: an flock (in the temp dir) around every emit of both
  handlers, as Hermes has on Windows through concurrent-log-handler; then nothing
  is lost and rotations happen exactly at the size limit.
* `--no-redact`: HERMES_REDACT_SECRETS=false (Hermes's `security.redact_secrets:
  false`). RedactingFormatter is still used and the bytes on disk are the same (no
  line holds anything it would redact), but writing is about 10x faster: Hermes's
  redaction costs about 1 microsecond per character.

`--records 0` only creates the logs dir (no writer, no log file). `--start-delay S`:
no record is written before S seconds after start (the logs dir exists at once;
Hermes creates the empty log files during the delay).

Nothing is written outside HOME_DIR: HOME and TMPDIR point to a temporary directory
removed at exit, credential variables are scrubbed, no network is used.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from hermes_sandbox import close_hermes_logs, hermes_file_handlers, sandbox_environment

sys.dont_write_bytecode = True

TRACKED_LOGGER = "agent.context_compressor"
TRACKED_MESSAGE = ("Failed to generate context summary: Request timed out (writer %d record %d). "
                   "Further summary attempts paused for 60 seconds.")
PADDING_LOGGER = "tools.browser_tool"
PADDING_MESSAGE = "browser '%s' returned non-JSON output (rc=%s): %s"
PADDING_CHARS = 500  # Hermes logs raw[:500]
INFO_LOGGER = "agent.tool_executor"
INFO_MESSAGE = "tool %s completed (%.2fs, %d chars)"
INFO_PER_RECORD = 3
TOOLS = ("terminal", "read_file", "search_files", "patch", "web_search", "browser_snapshot")
PAGE_WORDS = ("<div", "class=\"row\">", "<span>", "quarterly", "report", "table", "loading",
              "</span>", "please", "enable", "javascript", "to", "continue", "</div>", "cookie",
              "banner", "accept", "settings", "navigation", "footer")

SLEEP_PROBABILITY = 0.02
SLEEP_MAX_SECONDS = 0.002
ERRORS_LOG_MAX_BYTES = 2 * 1024 * 1024  # fixed by Hermes

_LOGGING_ERROR_MARK = "--- Logging error ---"

_TRACKED_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING \[(?P<session>[^\]]+)\] "
    + re.escape(TRACKED_LOGGER) + r": "
    + re.escape(TRACKED_MESSAGE.split("(writer")[0])
    + r"\(writer (?P<w>\d+) record (?P<r>\d+)\)"
    + re.escape(TRACKED_MESSAGE.split("%d)")[-1]) + r"$"
)
_WRITER_MARK = re.compile(r"\(writer (\d+) record (\d+)\)")
_PADDING_MARK = " WARNING [%s] " + PADDING_LOGGER + ": browser "
_INFO_MARK = " INFO [%s] " + INFO_LOGGER + ": tool "


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------

def writer_environment(hermes_home: Path, fake_user_home: Path, redact: bool) -> Dict[str, str]:
    """A scrubbed environment for the writers: Hermes at HOME_DIR, HOME/TMPDIR in a temp dir.

    redact=False is Hermes's own opt-out (`security.redact_secrets: false`, bridged to
    HERMES_REDACT_SECRETS): RedactingFormatter then returns the text unchanged.
    """
    env = sandbox_environment(hermes_home, fake_user_home)
    env["HERMES_REDACT_SECRETS"] = "true" if redact else "false"
    return env


def session_ids(processes: int, seed: int) -> List[str]:
    """One Hermes-style session id (YYYYMMDD_HHMMSS_xxxxxx) per writer, all distinct."""
    stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime())
    rng = random.Random(seed)
    prefix = f"{rng.randrange(16 ** 3):03x}"
    return [f"{stamp}_{prefix}{w:03x}" for w in range(processes)]


# ---------------------------------------------------------------------------
# Writer process (this script with --writer W)
# ---------------------------------------------------------------------------

def serialize_emits(handler: logging.Handler, lock_path: Path) -> None:
    """Hold an exclusive flock on LOCK_PATH around each emit of HANDLER, across processes.

    What Hermes gets on Windows from concurrent-log-handler; on POSIX Hermes has no such lock.
    """
    import fcntl

    lock_file = open(lock_path, "a")
    plain_emit = handler.emit

    def emit(record: logging.LogRecord) -> None:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            plain_emit(record)
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)

    handler.emit = emit  # type: ignore[method-assign]


def open_hermes_logs(home: Path, max_size_mb: int, backup_count: int, lock_dir: Optional[Path]) -> None:
    """setup_logging() as Hermes runs it, then errors.log's backup count raised (see module doc).

    With LOCK_DIR, every emit also takes a cross-process lock (--serialize-rotation).
    """
    import hermes_logging

    hermes_logging.setup_logging(hermes_home=home, max_size_mb=max_size_mb,
                                 backup_count=backup_count, force=True)
    by_name = {Path(h.baseFilename).name: h for h in hermes_file_handlers()}
    agent, errors = by_name["agent.log"], by_name["errors.log"]
    assert agent.maxBytes == max_size_mb * 1024 * 1024 and agent.backupCount == backup_count, agent
    assert errors.maxBytes == ERRORS_LOG_MAX_BYTES, errors
    errors.backupCount = backup_count
    if lock_dir is not None:
        for handler in (agent, errors):
            serialize_emits(handler, lock_dir / (Path(handler.baseFilename).name + ".lock"))


def page_text(rng: random.Random) -> str:
    """PADDING_CHARS characters of plausible page text (nothing that looks like a secret)."""
    words: List[str] = []
    length = 0
    while length < PADDING_CHARS:
        word = rng.choice(PAGE_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:PADDING_CHARS]


def write_records(writer: int, records: int, session: str, rng: random.Random) -> Dict[str, int]:
    """Log RECORDS rounds (tracked WARNING, padding WARNING, INFO lines) on this thread."""
    import hermes_logging

    tracked = logging.getLogger(TRACKED_LOGGER)
    padding = logging.getLogger(PADDING_LOGGER)
    info = logging.getLogger(INFO_LOGGER)
    hermes_logging.set_session_context(session)
    counts = Counter()
    for record in range(records):
        info.info(INFO_MESSAGE, rng.choice(TOOLS), rng.random() * 3, rng.randrange(50, 40000))
        tracked.warning(TRACKED_MESSAGE, writer, record)
        counts["warnings"] += 1
        info.info(INFO_MESSAGE, rng.choice(TOOLS), rng.random() * 3, rng.randrange(50, 40000))
        padding.warning(PADDING_MESSAGE, "snapshot", 1, page_text(rng))
        counts["padding"] += 1
        info.info(INFO_MESSAGE, rng.choice(TOOLS), rng.random() * 3, rng.randrange(50, 40000))
        counts["info"] += INFO_PER_RECORD
        if rng.random() < SLEEP_PROBABILITY:
            time.sleep(rng.random() * SLEEP_MAX_SECONDS)
    hermes_logging.clear_session_context()
    return dict(counts)


def run_writer(args: argparse.Namespace) -> int:
    """Child: set up Hermes logging, say "ready", wait for "go", write, close, report counts."""
    home = Path(os.environ["HERMES_HOME"])
    lock_dir = Path(os.environ["TMPDIR"]) if args.serialize_rotation else None
    open_hermes_logs(home, args.max_size_mb, args.backup_count, lock_dir)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        close_hermes_logs()
        return 3
    rng = random.Random(args.seed * 1_000_003 + args.writer)
    counts = write_records(args.writer, args.records, args.session, rng)
    close_hermes_logs()
    print(json.dumps(counts), flush=True)
    return 0


# ---------------------------------------------------------------------------
# Parent: start writers, wait, verify
# ---------------------------------------------------------------------------

def start_writers(args: argparse.Namespace, sessions: List[str], env: Dict[str, str],
                  stderr_dir: Path) -> List[Tuple[subprocess.Popen, Path]]:
    writers = []
    for writer, session in enumerate(sessions):
        cmd = [sys.executable, str(Path(__file__).resolve()), str(args.home_dir),
               "--writer", str(writer), "--session", session,
               "--records", str(args.records), "--max-size-mb", str(args.max_size_mb),
               "--backup-count", str(args.backup_count), "--seed", str(args.seed)]
        if args.serialize_rotation:
            cmd.append("--serialize-rotation")
        err_path = stderr_dir / f"writer-{writer}.stderr"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, text=True, cwd=env["TMPDIR"])
        writers.append((proc, err_path))
    return writers


def release_writers(writers: List[Tuple[subprocess.Popen, Path]], not_before: float) -> None:
    """Wait until every writer has set up its logging, then let them all go at once.

    If one fails to get ready, nobody gets "go" (their stdin just closes) and they exit.
    """
    try:
        for proc, _ in writers:
            if proc.stdout.readline().strip() != "ready":
                return
        time.sleep(max(0.0, not_before - time.monotonic()))
        for proc, _ in writers:
            proc.stdin.write("go\n")
            proc.stdin.flush()
    finally:
        for proc, _ in writers:
            try:
                proc.stdin.close()
            except OSError:
                pass


def collect_writers(writers: List[Tuple[subprocess.Popen, Path]]) -> Tuple[Counter, int, List[str]]:
    """Wait for every writer; relay its stderr; return summed counts, logging errors, failures."""
    totals: Counter = Counter()
    logging_errors = 0
    failures: List[str] = []
    for writer, (proc, err_path) in enumerate(writers):
        out = proc.stdout.read()
        rc = proc.wait()
        err = err_path.read_text(encoding="utf-8", errors="replace")
        if err:
            sys.stderr.write(f"--- writer {writer} stderr ---\n{err}")
        logging_errors += err.count(_LOGGING_ERROR_MARK)
        if rc != 0:
            failures.append(f"writer {writer} exited with status {rc}")
            continue
        totals.update(json.loads(out.strip().splitlines()[-1]))
    return totals, logging_errors, failures


def rotation_key(name: str) -> Tuple[str, int]:
    base, _, suffix = name.partition(".log")
    return base, int(suffix[1:]) if suffix.startswith(".") and suffix[1:].isdigit() else 0


def log_files(logs_dir: Path, base: str) -> List[str]:
    """Names of BASE.log and its rotated copies, in rotation order."""
    names = [p.name for p in logs_dir.iterdir()
             if p.name == f"{base}.log" or re.fullmatch(re.escape(base) + r"\.log\.\d+", p.name)]
    return sorted(names, key=rotation_key)


def scan_family(logs_dir: Path, names: List[str], sessions: List[str]) -> Tuple[Counter, Counter, List[str]]:
    """Count tracked records (by (writer, record)) and line kinds over a family of files."""
    tracked: Counter = Counter()
    kinds: Counter = Counter()
    problems: List[str] = []
    padding_marks = {_PADDING_MARK % s for s in sessions}
    info_marks = {_INFO_MARK % s for s in sessions}
    for name in names:
        with open(logs_dir / name, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if _WRITER_MARK.search(line):
                    m = _TRACKED_LINE.match(line)
                    if not m:
                        problems.append(f"{name}:{lineno}: malformed tracked line: {line[:300]!r}")
                        continue
                    key = (int(m["w"]), int(m["r"]))
                    if key[0] >= len(sessions) or m["session"] != sessions[key[0]]:
                        problems.append(f"{name}:{lineno}: wrong session tag: {line[:300]!r}")
                    tracked[key] += 1
                elif any(mark in line for mark in padding_marks):
                    kinds["padding"] += 1
                elif any(mark in line for mark in info_marks):
                    kinds["info"] += 1
                else:
                    kinds["other"] += 1
                    problems.append(f"{name}:{lineno}: unexpected line: {line[:300]!r}")
    return tracked, kinds, problems


def describe(keys: List[Tuple[int, int]]) -> str:
    sample = ", ".join(f"(writer {w} record {r})" for w, r in keys[:10])
    return sample + (" ..." if len(keys) > 10 else "")


def verify(logs_dir: Path, families: Dict[str, List[str]], sessions: List[str], records: int,
           totals: Counter, allow_loss: bool) -> Tuple[List[str], Dict[str, dict]]:
    """Every tracked WARNING once per family; padding/INFO counts as written.

    Returns (problems, loss) where loss[base] = {"missing": [[w, r], ...], "lines_lost": n}.
    With allow_loss, missing lines are reported in `loss` only; duplicated, mangled,
    unexpected or mis-tagged lines are always problems.
    """
    expected = {(w, r) for w in range(len(sessions)) for r in range(records)}
    problems: List[str] = []
    loss: Dict[str, dict] = {}
    for base, names in families.items():
        tracked, kinds, family_problems = scan_family(logs_dir, names, sessions)
        problems += family_problems[:20]
        if len(family_problems) > 20:
            problems.append(f"{base}.log*: {len(family_problems) - 20} more line problems")
        missing = sorted(expected - set(tracked))
        duplicated = sorted(k for k, n in tracked.items() if n > 1)
        unexpected = sorted(set(tracked) - expected)
        for label, keys in (("duplicated", duplicated), ("unexpected", unexpected)):
            if keys:
                problems.append(f"{base}.log*: {len(keys)} tracked WARNING(s) {label}: {describe(keys)}")
        if missing and not allow_loss:
            problems.append(f"{base}.log*: {len(missing)} tracked WARNING(s) missing: {describe(missing)}")
        want = {"padding": totals["padding"], "info": totals["info"] if base == "agent" else 0}
        lost = len(missing)
        for kind, n in want.items():
            lost += n - kinds[kind]
            if kinds[kind] > n or (kinds[kind] < n and not allow_loss):
                problems.append(f"{base}.log*: {kinds[kind]} {kind} lines, expected {n}")
        loss[base] = {"missing": [list(k) for k in missing], "lines_lost": lost}
    return problems, loss


def hermes_version() -> Optional[str]:
    try:
        from importlib.metadata import version

        return version("hermes-agent")
    except Exception:
        return None


def run_parent(args: argparse.Namespace) -> int:
    started = time.monotonic()
    not_before = started + args.start_delay
    root = args.home_dir.resolve()
    home = root / "profiles" / args.profile if args.profile else root
    logs_dir = home / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    sessions = session_ids(args.processes, args.seed) if args.records > 0 else []

    totals: Counter = Counter()
    logging_errors = 0
    failures: List[str] = []
    if sessions:
        fake_user_home = Path(tempfile.mkdtemp(prefix="hermes-write-logs-"))
        try:
            env = writer_environment(home, fake_user_home, redact=not args.no_redact)
            writers = start_writers(args, sessions, env, fake_user_home)
            release_writers(writers, not_before)
            totals, logging_errors, failures = collect_writers(writers)
        finally:
            shutil.rmtree(fake_user_home, ignore_errors=True)
    else:
        time.sleep(max(0.0, not_before - time.monotonic()))

    families = {"errors": log_files(logs_dir, "errors"), "agent": log_files(logs_dir, "agent")}
    problems = list(failures)
    loss = {base: {"missing": [], "lines_lost": 0} for base in families}
    if sessions and not failures:
        found, loss = verify(logs_dir, families, sessions, args.records, totals, args.allow_loss)
        problems += found
        for base, names in families.items():
            if f"{base}.log.{args.backup_count}" in names:
                problems.append(f"{base}.log.{args.backup_count} exists: Hermes may have deleted "
                                "the oldest backup by design; raise --backup-count")
    summary = {
        "warnings_written": totals["warnings"],
        "info_written": totals["info"],
        "padding_warnings_written": totals["padding"],
        "processes": args.processes,
        "records": args.records,
        "hermes_version": hermes_version(),
        "logs_dir": str(logs_dir),
        "sessions": sessions,
        "errors_log_files": families["errors"],
        "agent_log_files": families["agent"],
        "logging_errors": logging_errors,
        "missing_from_errors_log": loss["errors"]["missing"],
        "missing_from_agent_log": loss["agent"]["missing"],
        "lines_lost": {"errors.log": loss["errors"]["lines_lost"], "agent.log": loss["agent"]["lines_lost"]},
        "seconds": round(time.monotonic() - started, 3),
    }
    if problems:
        print("write_logs.py: verification FAILED (Hermes's concurrent rotation lost, duplicated or "
              "mangled lines, or a writer failed):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        print(json.dumps(summary), file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("home_dir", type=Path)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--records", type=int, default=3000, help="tracked WARNINGs per process")
    parser.add_argument("--max-size-mb", type=int, default=1, help="agent.log rotation size (setup_logging)")
    parser.add_argument("--backup-count", type=int, default=200,
                        help="backups kept for agent.log and errors.log; must exceed the rotations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", help="write to HOME_DIR/profiles/NAME (what `hermes -p NAME` uses)")
    parser.add_argument("--start-delay", type=float, default=0.0,
                        help="write no record before this many seconds after start")
    parser.add_argument("--no-redact", action="store_true",
                        help="HERMES_REDACT_SECRETS=false (same bytes on disk, ~10x faster)")
    parser.add_argument("--allow-loss", action="store_true",
                        help="lines lost by concurrent rotation are reported in the JSON, not an error")
    parser.add_argument("--serialize-rotation", action="store_true",
                        help="flock around every emit, as Hermes has on Windows only; then nothing is lost")
    parser.add_argument("--writer", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--session", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.processes < 1 or args.records < 0 or args.max_size_mb < 1 or args.backup_count < 1:
        parser.error("need --processes >= 1, --records >= 0, --max-size-mb >= 1, --backup-count >= 1")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.writer is not None:
        return run_writer(args)
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
