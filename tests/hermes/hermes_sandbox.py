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
from typing import Dict

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


def hermes_file_handlers() -> list:
    """Hermes's rotating file handlers (0.19 keeps them behind a QueueListener)."""
    import hermes_logging

    if hasattr(hermes_logging, "rotating_file_handlers"):  # 0.19
        return list(hermes_logging.rotating_file_handlers())
    return [h for h in logging.getLogger().handlers if isinstance(h, logging.handlers.RotatingFileHandler)]


def flush_hermes_logs() -> None:
    """Write out what Hermes has logged so far."""
    import hermes_logging

    if hasattr(hermes_logging, "flush_log_queue"):  # 0.19: QueueListener
        hermes_logging.flush_log_queue()
    for handler in hermes_file_handlers():
        handler.flush()


def close_hermes_logs() -> None:
    """Flush, stop the 0.19 queue listener, and close every Hermes file handler."""
    import hermes_logging

    hermes_logging.clear_session_context()
    flush_hermes_logs()
    if hasattr(hermes_logging, "_reset_queued_handlers"):  # 0.19: stops the listener first
        hermes_logging._reset_queued_handlers()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.handlers.RotatingFileHandler):
            root.removeHandler(handler)
            handler.flush()
            handler.close()
    hermes_logging._logging_initialized = False
