"""A real, throw-away PostgreSQL server for the tests (no mocks).

`initdb` into a temporary directory owned by an unprivileged user (PostgreSQL refuses to run as
root, and the tests run as root here and in CI), listening on 127.0.0.1 at a free port and on a
unix socket inside the same directory; stopped and deleted at the end of the session, and also
when the process that started it dies without stopping it (killed, crashed: see
``tests/pg_watchdog.py``), so no server outlives its test run. Each test
gets its own database, so tests are independent and the server starts once per worker.

When the binaries are absent the tests that need them skip with the reason; with
``ACCORD_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) they fail instead, so CI cannot pass by
skipping them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REQUIRE_ENV = "ACCORD_REQUIRE_POSTGRES"
BIN_ENV = "ACCORD_PG_BIN"
RUN_AS = "postgres"  # Debian's postgresql-common creates this user
SUPERUSER = "accord"


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl live: $ACCORD_PG_BIN, else Debian's newest /usr/lib/postgresql/N/bin."""
    explicit = os.environ.get(BIN_ENV)
    if explicit:
        return Path(explicit) if (Path(explicit) / "initdb").exists() else None
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing_reason() -> str | None:
    """Why a server cannot be started here, or None when it can."""
    if find_bindir() is None:
        return ("PostgreSQL binaries not found (install Debian's `postgresql` package, or set "
                f"${BIN_ENV} to the directory holding initdb and pg_ctl)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return f"running as root and there is no '{RUN_AS}' user to run PostgreSQL as"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """One running cluster; ``url(db)`` gives a connection URL for one of its databases."""

    root: Path
    bindir: Path
    port: int
    as_root: bool
    # the write end of the watchdog's pipe and the watchdog itself (tests/pg_watchdog.py)
    _lifeline: int | None = field(default=None, repr=False)
    _watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _command(self, *args: str) -> list[str]:
        if self.as_root:
            # runuser drops root for this one command; PostgreSQL refuses to run as root.
            return ["runuser", "-u", RUN_AS, "--", *args]
        return list(args)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._command(*args), check=check, capture_output=True, text=True,
                              timeout=120)

    def _start_watchdog(self) -> None:
        """Before anything is started: a process that stops the server and deletes its directory
        once this process is gone (the pipe's write end is not inherited by other children)."""
        read_end, write_end = os.pipe()
        stop = self._command(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                             "-w", "stop")
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("pg_watchdog.py")), str(read_end),
                 str(self.root), "--", *stop],
                pass_fds=(read_end,), start_new_session=True, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._lifeline = write_end

    @classmethod
    def start(cls) -> PostgresServer:
        bindir = find_bindir()
        assert bindir is not None
        as_root = os.geteuid() == 0
        root = Path(tempfile.mkdtemp(prefix="accord-pg-"))
        if as_root:
            entry = pwd.getpwnam(RUN_AS)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server = cls(root, bindir, _free_port(), as_root)
        server._start_watchdog()
        try:
            server._run(str(bindir / "initdb"), "-D", str(server.data), "-U", SUPERUSER, "-A", "trust",
                        "-E", "UTF8", "--locale", "C", "--no-sync")
        except BaseException:
            server.stop()
            raise
        # Durability settings off: a test cluster is thrown away; crash safety of the *hub* is
        # PostgreSQL's own, and the atomicity tests kill the client, not the server.
        opts = (f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        last_error = ""
        for _ in range(3):  # another process may take the free port between probe and start
            done = server._run(str(bindir / "pg_ctl"), "-D", str(server.data), "-l",
                               str(root / "server.log"), "-o", opts, "-w", "-t", "60", "start", check=False)
            if done.returncode == 0:
                return server
            last_error = done.stderr + (root / "server.log").read_text(errors="replace")[-2000:]
            server.port = _free_port()
            opts = opts.replace(opts.split(" -p ")[1].split()[0], str(server.port))
        server.stop()
        raise RuntimeError(f"PostgreSQL did not start: {last_error}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            if self._lifeline is not None:  # the watchdog stops the server and deletes the directory
                os.close(self._lifeline)
                self._lifeline = None
                if self._watchdog is not None:
                    self._watchdog.wait(timeout=150)
        finally:  # and if the watchdog could not, do it here
            if self.data.exists():
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                          "stop", check=False)
            shutil.rmtree(self.root, ignore_errors=True)
