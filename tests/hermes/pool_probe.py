"""Drive a Hermes home's credential pool with Hermes's own code, for integration tests.

Run it with the Python of a venv made by setup_venvs.sh, on a home made by build_home.py:

    PY=target/hermes-venvs/0.19.0/bin/python
    $PY tests/hermes/pool_probe.py select  --home H --provider openai-codex --times 4 --offsets 0,400,4000,100000000
    $PY tests/hermes/pool_probe.py churn   --home H --provider openai-codex --seconds 10 --seed 1
    $PY tests/hermes/pool_probe.py observe --home H --seconds 10 --expect-ids a11ce0,b0b000
    $PY tests/hermes/pool_probe.py remove  --home H --provider openai-codex --id a11ce0 [--via pool|auth-remove]
    $PY tests/hermes/pool_probe.py reseed  --home H --provider openai-codex
    $PY tests/hermes/pool_probe.py reauth  --home H --provider openai-codex --access-token T --refresh-token R

Every subcommand prints ONE JSON object on stdout (Hermes's own prints go to stderr) and exits 0;
a non-zero exit means the probe itself broke (bad usage, Hermes not importable, ...). Tokens never
appear in the output: an entry's token is shown as `sha256:<first 16 hex of sha256(token)>`.

What each subcommand does, and with which Hermes code:

* select: for each clock offset (seconds added to the real time, seen by
  `agent.credential_pool` and `hermes_cli.auth` only), `load_pool(P)` then `select()` N times.
  Hermes's default strategy (fill_first) returns the first usable entry every time, so by default
  the probe first sets `credential_pool_strategies[P] = round_robin` in config.yaml, the setting
  `get_pool_strategy` reads, with `hermes config set` (set_config_value); with round_robin every
  select() moves the chosen entry to the back (and persists the new priorities), so N >= the
  number of usable entries visits each of them. `--strategy keep` leaves config.yaml alone.
  select() also runs Hermes's own housekeeping and persists it: on 0.15 an exhausted entry whose
  cooldown has passed is reset to `ok`; on 0.19 a `dead` manual entry older than 24 h is pruned.
  Output: {"hermes_version", "strategy", "selections": {"<offset>": [id|null, ...]},
  "entries": [{"id", "label", "last_status", "last_error_reset_at"}]} (entries: final auth.json).

* churn: a stand-in for a long-lived Hermes process. Loop for T seconds: (re)load the pool only
  every 2-6 iterations (so stale in-memory state is persisted over other writers' changes, as real
  processes do), `select()`, then mark the selected entry with a real `openai.RateLimitError`
  (Codex 429 `usage_limit_reached`, `resets_at` = now + 0..--cooldown-max whole seconds) through Hermes's
  `extract_api_error_context` + `CredentialPool.mark_exhausted_and_rotate`, which persists through
  `write_credential_pool` under Hermes's auth.lock. The short `resets_at` makes the pool's own
  clearing path (select() resets expired exhausted entries to ok and persists) run regularly.
  `--reset-every K` also calls `CredentialPool.reset_statuses()` (= `hermes auth reset`, which
  clears every status, dead included) every K iterations; off by default. TimeoutError from the
  auth lock is counted, other exceptions are collected. Output: {"hermes_version", "iterations",
  "lock_timeouts", "marks", "selected_none", "errors": [...], "error_count"}.

* stale-persist: one live process holding a stale pool: load_pool + select(), create
  <home>/stale-loaded, wait for <home>/persist-now, then mark the selected entry with a 429
  (mark_exhausted_and_rotate persists the whole in-memory pool). Output: {"selected",
  "entries": [{"id", "last_status"}]} as the process persisted them.

* observe: no Hermes code; poll <home>/auth.json as fast as possible for T seconds, or until
  <home>/stop-observe exists (remove a stale one before starting). For every change of content:
  it must parse as JSON, every expected id must be in `credential_pool` (any provider), and every
  entry must keep every key it had when first seen. Output: {"versions", "reads", "absent_reads",
  "unparsable", "missing_ids", "lost_fields": [{"provider", "id", "field", "version"}],
  "stopped_by_file"}.

* remove: take an entry out of the pool. The default `--via pool` calls Hermes's own
  `CredentialPool.remove_index` (the pool's removal, which persists under the lock) WITHOUT the
  source clean-up that `hermes auth remove` adds. Why: in both 0.15.0 and 0.19.0
  `hermes auth remove openai-codex N` (hermes_cli/auth_commands.py auth_remove_command ->
  agent/credential_sources.py _remove_codex_device_code) deletes `providers["openai-codex"]` and
  suppresses the `device_code` source, so nothing can come back. The resurrection the bug report
  describes is the one 0.19 documents next to DEAD_MANUAL_PRUNE_TTL_SECONDS in
  agent/credential_pool.py: a singleton-seeded `device_code` entry that leaves the pool list while
  `providers["openai-codex"].tokens` stays is re-created by `_seed_from_singletons` on the next
  `load_pool()`, under a NEW id, with the same stale token (`_upsert_entry` matches by source
  and appends with a fresh uuid when none matches). `--via auth-remove` runs the real
  `auth_remove_command` instead. Then the pool is re-loaded (`load_pool`, the reseed).
  Note: build_home.py's Codex homes add accounts with `hermes auth add` (`manual:device_code`
  entries) and have NO singleton (`providers` is {}), so nothing can come back there; run
  `reauth` first to get a singleton and its seeded `device_code` entry, then remove that entry.
  Output: {"hermes_version", "removed", "via", "removed_entry", "suppressed",
  "suppressed_sources", "singleton", "entries": [{"id", "source", "label", "last_status",
  "fingerprint"}]} (entries: auth.json after the reseed).

* reseed: `load_pool(P)` and report the entries as above.

* reauth: the fresh device-code login of `hermes model` -> "Reauthenticate":
  `hermes_cli.auth._login_openai_codex(..., force_new_login=True)` with only the network step
  `_codex_device_code_login` replaced by a stub returning the given tokens. It writes
  `providers["openai-codex"]` through `_save_codex_tokens` (which also syncs pool entries: 0.15
  rewrites EVERY `device_code` / `manual:device_code` entry with the new tokens and clears its
  status; 0.19 only the `device_code` entry and manual entries holding the previous singleton
  token). Then `load_pool(P).select()` once. Output as for reseed, plus "selected".

The environment is sandboxed like build_home.py: HERMES_HOME is --home, HOME/TMPDIR/XDG point to a
temporary directory removed at exit, credential variables are scrubbed, non-loopback HTTP goes to
a dead proxy. Nothing is written outside --home.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional
from unittest import mock

from hermes_sandbox import credential_pool_module, extract_api_error_context, hermes_version, sandbox_environment

sys.dont_write_bytecode = True

CODEX = "openai-codex"
MAX_REPORTED = 50  # cap on listed errors / lost fields, so a broken run stays readable


# ---------------------------------------------------------------------------
# Plumbing: sandbox, stdout, clock, auth.json views
# ---------------------------------------------------------------------------

@contextlib.contextmanager
def sandboxed(home: Path) -> Iterator[None]:
    """Point Hermes at HOME and everything else at a throw-away user home (removed at exit).

    Must be entered before any Hermes module is imported (some read settings at import time).
    """
    fake_user_home = Path(tempfile.mkdtemp(prefix="hermes-probe-home-"))
    try:
        env = sandbox_environment(home, fake_user_home)
        os.environ.clear()
        os.environ.update(env)
        time.tzset()
        tempfile.tempdir = None  # re-read TMPDIR
        yield
    finally:
        shutil.rmtree(fake_user_home, ignore_errors=True)


@contextlib.contextmanager
def json_stdout() -> Iterator[Any]:
    """Keep fd 1 for our one JSON object; everything else printed (Hermes's chatter) goes to stderr."""
    sys.stdout.flush()
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull, encoding="utf-8")
    result: Dict[str, Any] = {}
    with os.fdopen(out_fd, "w", encoding="utf-8") as out:
        yield result  # on an exception nothing is printed on stdout: the probe broke
        sys.stdout.flush()
        out.write(json.dumps(result) + "\n")


class ShiftedTime:
    """Stands in for the `time` module inside a Hermes module: time() = real time + offset.

    Only time()/time_ns() move; monotonic() and sleep() stay real, so the auth lock's 15 s
    deadline keeps its meaning.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def time_ns(self) -> int:
        return time.time_ns() + int(self.offset * 1_000_000_000)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def install_shifted_clock() -> ShiftedTime:
    import hermes_cli.auth as auth_mod

    credential_pool_mod = credential_pool_module()
    clock = ShiftedTime()
    credential_pool_mod.time = clock
    auth_mod.time = clock
    return clock


def fingerprint(token: Optional[str]) -> Optional[str]:
    if not token:
        return None
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def read_store(home: Path) -> Dict[str, Any]:
    path = home / "auth.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def pool_entries(home: Path, provider: str) -> List[Dict[str, Any]]:
    entries = (read_store(home).get("credential_pool") or {}).get(provider) or []
    return [e for e in entries if isinstance(e, dict)]


def entry_views(home: Path, provider: str) -> List[Dict[str, Any]]:
    """Pool entries of PROVIDER on disk, tokens reduced to fingerprints."""
    return [
        {
            "id": e.get("id"),
            "source": e.get("source"),
            "label": e.get("label"),
            "last_status": e.get("last_status"),
            "fingerprint": fingerprint(e.get("access_token")),
        }
        for e in pool_entries(home, provider)
    ]


def singleton_view(home: Path, provider: str) -> Optional[Dict[str, Any]]:
    """`providers[PROVIDER]` on disk: whether it holds tokens, and their fingerprint."""
    state = (read_store(home).get("providers") or {}).get(provider)
    if not isinstance(state, dict):
        return None
    tokens = state.get("tokens") if isinstance(state.get("tokens"), dict) else {}
    return {
        "fingerprint": fingerprint(tokens.get("access_token")),
        "last_refresh": state.get("last_refresh"),
    }


def short_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


# ---------------------------------------------------------------------------
# select
# ---------------------------------------------------------------------------

def set_pool_strategy(provider: str, strategy: str) -> str:
    """`hermes config set credential_pool_strategies.PROVIDER STRATEGY`, unless already set."""
    get_pool_strategy = credential_pool_module().get_pool_strategy

    if strategy != "keep" and get_pool_strategy(provider) != strategy:
        from hermes_cli.config import set_config_value

        set_config_value(f"credential_pool_strategies.{provider}", strategy)
    return get_pool_strategy(provider)


def cmd_select(args: argparse.Namespace, out: Dict[str, Any]) -> None:
    load_pool = credential_pool_module().load_pool

    offsets = [raw.strip() for raw in args.offsets.split(",") if raw.strip()]
    out["strategy"] = set_pool_strategy(args.provider, args.strategy)
    clock = install_shifted_clock()
    selections: Dict[str, List[Optional[str]]] = {}
    for raw in offsets:
        clock.offset = float(raw)
        pool = load_pool(args.provider)
        picked = []
        for _ in range(args.times):
            entry = pool.select()
            picked.append(entry.id if entry is not None else None)
        selections[raw] = picked
    clock.offset = 0.0
    out["selections"] = selections
    out["entries"] = [
        {
            "id": e.get("id"),
            "label": e.get("label"),
            "last_status": e.get("last_status"),
            "last_error_reset_at": e.get("last_error_reset_at"),
        }
        for e in pool_entries(args.home, args.provider)
    ]


# ---------------------------------------------------------------------------
# churn
# ---------------------------------------------------------------------------

def codex_rate_limit_error(resets_at: int) -> Exception:
    """A real openai.RateLimitError for Codex's 429 usage_limit_reached body (no network)."""
    import httpx
    import openai

    body = {
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "plus",
            "resets_at": resets_at,
            "resets_in_seconds": max(0, resets_at - int(time.time())),
        }
    }
    request = httpx.Request("POST", "http://127.0.0.1:9/backend-api/codex/responses")
    response = httpx.Response(429, json=body, request=request)
    return openai.RateLimitError(f"Error code: 429 - {body!r}", response=response, body=body)


def cmd_churn(args: argparse.Namespace, out: Dict[str, Any]) -> None:
    extract = extract_api_error_context()
    load_pool = credential_pool_module().load_pool

    rng = random.Random(args.seed)
    iterations = lock_timeouts = marks = selected_none = error_count = 0
    errors: List[str] = []
    pool = None
    uses_left = 0
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        iterations += 1
        try:
            if pool is None or uses_left <= 0:
                pool = load_pool(args.provider)
                uses_left = rng.randint(2, 6)
            uses_left -= 1
            entry = pool.select()
            if entry is None:
                selected_none += 1
            else:
                exc = codex_rate_limit_error(int(time.time()) + rng.randint(0, args.cooldown_max))
                pool.mark_exhausted_and_rotate(
                    status_code=429, error_context=extract(exc)
                )
                marks += 1
            if args.reset_every and iterations % args.reset_every == 0:
                pool.reset_statuses()
        except TimeoutError:
            lock_timeouts += 1
        except Exception as exc:  # keep going: a live process would too
            error_count += 1
            text = short_error(exc)
            if text not in errors and len(errors) < MAX_REPORTED:
                errors.append(text)
        if args.pause_ms:
            time.sleep(rng.uniform(0, 2 * args.pause_ms) / 1000.0)
    out.update({
        "iterations": iterations,
        "lock_timeouts": lock_timeouts,
        "marks": marks,
        "selected_none": selected_none,
        "errors": errors,
        "error_count": error_count,
    })


def cmd_stale_persist(args: argparse.Namespace, out: Dict[str, Any]) -> None:
    """One live process with a stale pool: load_pool + select(), then create <home>/stale-loaded
    and wait for <home>/persist-now (60 s at most); then mark the selected entry with a 429
    through mark_exhausted_and_rotate, which persists the whole in-memory pool, as any live
    Hermes process does after a failed request. Output: the entries (id, last_status) it wrote."""
    extract = extract_api_error_context()
    load_pool = credential_pool_module().load_pool

    pool = load_pool(args.provider)
    entry = pool.select()
    (args.home / "stale-loaded").write_text("")
    deadline = time.monotonic() + 60
    while not (args.home / "persist-now").exists():
        if time.monotonic() > deadline:
            raise RuntimeError("persist-now never appeared")
        time.sleep(0.02)
    exc = codex_rate_limit_error(int(time.time()) + 3600)
    pool.mark_exhausted_and_rotate(status_code=429, error_context=extract(exc))
    out["selected"] = entry.id if entry is not None else None
    # What this process persisted (its memory), not auth.json, which others may change at once.
    out["entries"] = [{"id": e.id, "last_status": e.last_status} for e in pool.entries()]


# ---------------------------------------------------------------------------
# observe (no Hermes code)
# ---------------------------------------------------------------------------

def cmd_observe(args: argparse.Namespace, out: Dict[str, Any]) -> None:
    path = args.home / "auth.json"
    stop = args.home / "stop-observe"
    expected = [i.strip() for i in (args.expect_ids or "").split(",") if i.strip()]
    first_keys: Dict[tuple, set] = {}  # (provider, id) -> keys when first seen
    missing: set = set()
    lost: List[Dict[str, Any]] = []
    lost_seen: set = set()
    last: Optional[bytes] = None
    versions = reads = unparsable = absent = 0
    deadline = time.monotonic() + args.seconds
    stopped = False
    while not stopped:
        # Read first, then check the stop conditions: the version current when the stop file
        # appears is always examined.
        stopped = time.monotonic() >= deadline or stop.exists()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            absent += 1
            continue
        reads += 1
        if data == last:
            continue
        last = data
        versions += 1
        try:
            store = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            unparsable += 1
            continue
        pools = store.get("credential_pool") if isinstance(store, dict) else None
        present = set()
        for provider, entries in (pools or {}).items() if isinstance(pools, dict) else []:
            for entry in entries if isinstance(entries, list) else []:
                if not isinstance(entry, dict):
                    continue
                key = (provider, entry.get("id"))
                present.add(entry.get("id"))
                keys = set(entry)
                if key not in first_keys:
                    first_keys[key] = keys
                    continue
                for field in sorted(first_keys[key] - keys):
                    if (key, field) not in lost_seen:
                        lost_seen.add((key, field))
                        if len(lost) < MAX_REPORTED:
                            lost.append({"provider": provider, "id": key[1], "field": field,
                                         "version": versions})
        missing.update(i for i in expected if i not in present)
    out.update({
        "versions": versions,
        "reads": reads,
        "absent_reads": absent,
        "unparsable": unparsable,
        "missing_ids": sorted(missing),
        "lost_fields": lost,
        "stopped_by_file": stop.exists(),
    })


# ---------------------------------------------------------------------------
# remove / reseed / reauth
# ---------------------------------------------------------------------------

def reseed(home: Path, provider: str) -> List[Dict[str, Any]]:
    """`load_pool(provider)`: re-seeds singleton/env entries and persists if anything changed."""
    load_pool = credential_pool_module().load_pool

    load_pool(provider)
    return entry_views(home, provider)


def cmd_remove(args: argparse.Namespace, out: Dict[str, Any]) -> None:
    import hermes_cli.auth as auth_mod
    load_pool = credential_pool_module().load_pool

    pool = load_pool(args.provider)
    index, matched, error = pool.resolve_target(args.id)
    out["via"] = args.via
    if matched is None or index is None:
        out.update({"removed": False, "error": error})
    else:
        out["removed_entry"] = {"id": matched.id, "source": matched.source, "label": matched.label,
                                "fingerprint": fingerprint(matched.access_token)}
        if args.via == "auth-remove":
            # `hermes auth remove PROVIDER ID`: pool removal + the source's RemovalStep
            # (clears providers[PROVIDER], suppresses device_code for openai-codex).
            from hermes_cli.auth_commands import auth_remove_command

            auth_remove_command(types.SimpleNamespace(provider=args.provider, target=args.id))
            out["removed"] = True
        else:
            # The pool's own removal only: the entry leaves credential_pool, the singleton and the
            # suppression list are untouched (see the module docstring for why).
            out["removed"] = pool.remove_index(index) is not None
    suppressed = (read_store(args.home).get("suppressed_sources") or {}).get(args.provider) or []
    out["suppressed"] = bool(auth_mod.is_source_suppressed(args.provider, "device_code"))
    out["suppressed_sources"] = list(suppressed)
    out["singleton"] = singleton_view(args.home, args.provider)
    out["entries"] = reseed(args.home, args.provider)


def cmd_reseed(args: argparse.Namespace, out: Dict[str, Any]) -> None:
    out["entries"] = reseed(args.home, args.provider)
    out["singleton"] = singleton_view(args.home, args.provider)


def cmd_reauth(args: argparse.Namespace, out: Dict[str, Any]) -> None:
    import hermes_cli.auth as auth_mod
    load_pool = credential_pool_module().load_pool

    if args.provider != CODEX:
        raise SystemExit(f"pool_probe.py reauth: only {CODEX} is supported")

    def fake_device_code_login() -> Dict[str, Any]:
        # Same shape as hermes_cli.auth._codex_device_code_login's result.
        return {
            "tokens": {"access_token": args.access_token, "refresh_token": args.refresh_token},
            "base_url": auth_mod.DEFAULT_CODEX_BASE_URL,
            "last_refresh": _dt.datetime.now(_dt.timezone.utc).isoformat().replace("+00:00", "Z"),
            "auth_mode": "chatgpt",
            "source": "device-code",
        }

    with mock.patch.object(auth_mod, "_codex_device_code_login", fake_device_code_login):
        # `hermes model` -> OpenAI Codex -> "2. Reauthenticate" (hermes_cli/main.py in 0.15,
        # model_setup_flows.py in 0.19) calls exactly this.
        auth_mod._login_openai_codex(argparse.Namespace(), auth_mod.PROVIDER_REGISTRY[CODEX],
                                     force_new_login=True)
    chosen = load_pool(args.provider).select()
    out["selected"] = chosen.id if chosen is not None else None
    out["singleton"] = singleton_view(args.home, args.provider)
    out["entries"] = entry_views(args.home, args.provider)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

COMMANDS = {
    "select": cmd_select,
    "churn": cmd_churn,
    "stale-persist": cmd_stale_persist,
    "observe": cmd_observe,
    "remove": cmd_remove,
    "reseed": cmd_reseed,
    "reauth": cmd_reauth,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str, provider: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--home", type=Path, required=True, help="the Hermes home (HERMES_HOME)")
        if provider:
            p.add_argument("--provider", default=CODEX)
        return p

    p = add("select", "load_pool + select() N times at each clock offset")
    p.add_argument("--times", type=int, default=4)
    p.add_argument("--offsets", default="0", help="comma-separated seconds added to the real time")
    p.add_argument("--strategy", default="round_robin",
                   choices=["round_robin", "fill_first", "least_used", "random", "keep"],
                   help="set credential_pool_strategies[provider] in config.yaml first (keep: don't)")

    p = add("churn", "act like a live Hermes process on the pool for T seconds")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pause-ms", type=float, default=5.0, help="mean pause between iterations")
    p.add_argument("--cooldown-max", type=int, default=1,
                   help="resets_at of each 429 is now + 0..N whole seconds (Codex sends epoch seconds)")
    p.add_argument("--reset-every", type=int, default=0,
                   help="also run reset_statuses() (= hermes auth reset) every K iterations")

    add("stale-persist", "load the pool, wait for <home>/persist-now, then mark and persist it")

    p = add("observe", "watch auth.json for unparsable versions, missing ids, lost fields", provider=False)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--expect-ids", default="")

    p = add("remove", "remove a pool entry, then reload the pool (reseed)")
    p.add_argument("--id", required=True, help="entry id (or label / 1-based index, as Hermes resolves it)")
    p.add_argument("--via", choices=["pool", "auth-remove"], default="pool",
                   help="pool: CredentialPool.remove_index only (default); auth-remove: `hermes auth remove`")

    add("reseed", "load_pool and report the entries")

    p = add("reauth", "fresh device-code login with the given tokens, then load_pool + select")
    p.add_argument("--access-token", required=True)
    p.add_argument("--refresh-token", required=True)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    args.home = args.home.resolve()
    if not args.home.is_dir():
        print(f"pool_probe.py: no such Hermes home: {args.home}", file=sys.stderr)
        return 2
    command = COMMANDS[args.command]
    with json_stdout() as out:
        out["command"] = args.command
        if args.command == "observe":
            command(args, out)
        else:
            with sandboxed(args.home):
                out["hermes_version"] = hermes_version()
                command(args, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
