"""A throwaway PostgreSQL server for tests: its own cluster in a temp dir, on 127.0.0.1 and a free
port, TCP only, fsync off. Used by the session fixture in tests/conftest.py.

PostgreSQL refuses to run as root, so as root the cluster belongs to a system user
(`greenshift-pg`, created once with useradd) and initdb / pg_ctl run as that user through
runuser. Every wait is bounded; `stop()` is safe to call whatever state the server is in.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tests.ports import free_port

PG_USER = "greenshift-pg"
START_TIMEOUT_SECONDS = 60
COMMAND_TIMEOUT_SECONDS = 90


class PostgresUnavailableError(Exception):
    """No PostgreSQL binaries here (the tests that need them are skipped with this reason)."""


def find_bin_dir() -> Path:
    """The directory holding initdb and pg_ctl: PATH, then Debian's and common locations."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [Path(p) for p in versions]
    candidates += [Path("/usr/local/bin"), Path("/usr/local/pgsql/bin"), Path("/usr/pgsql/bin")]
    for directory in candidates:
        if (directory / "pg_ctl").is_file() and (directory / "initdb").is_file():
            return directory
    raise PostgresUnavailableError(
        "no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin; "
        "install postgresql to run the PostgreSQL registry tests"
    )


def _ensure_user() -> str:
    """As root: the unprivileged system user that owns the cluster (created once)."""
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=False,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )
        pwd.getpwnam(PG_USER)  # raises if it still does not exist
    return PG_USER


@dataclass
class PostgresServer:
    """Start with `start()`, stop with `stop()`; `url(db)` for SQLAlchemy."""

    bin_dir: Path = field(default_factory=find_bin_dir)
    port: int = 0
    root: Path | None = None
    _run_as: str | None = None
    _started: bool = False

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def postmaster_pid(self) -> int:
        """The running server's postmaster (the first line of its postmaster.pid)."""
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])

    @property
    def log_file(self) -> Path:
        assert self.root is not None
        return self.root / "postgres.log"

    def _command(self, args: Sequence[str]) -> list[str]:
        if self._run_as is None:
            return list(args)
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runuser, "-u", self._run_as, "--", *args]

    def _run(self, *args: str) -> None:
        # Output goes to a file, never a pipe: the postmaster inherits pg_ctl's descriptors, and
        # a pipe it holds open would make this call wait for the server to exit.
        assert self.root is not None
        with open(self.root / "commands.log", "ab") as out:
            result = subprocess.run(
                self._command(args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=COMMAND_TIMEOUT_SECONDS,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}):\n{self.diagnostics()}")

    def diagnostics(self) -> str:
        assert self.root is not None
        parts = []
        for path in (self.root / "commands.log", self.log_file):
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def start(self) -> PostgresServer:
        self.root = Path(tempfile.mkdtemp(prefix="greenshift-pg-"))
        if os.geteuid() == 0:
            self._run_as = _ensure_user()
            entry = pwd.getpwnam(self._run_as)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.port = self.port or free_port()
        self._run(
            str(self.bin_dir / "initdb"),
            "-D", str(self.data_dir),
            "-U", "postgres",
            "-A", "trust",
            "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._started = True  # from here on, stop() must try
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D", str(self.data_dir),
            "-l", str(self.log_file),
            "-o", options,
            "-w",
            "-t", str(START_TIMEOUT_SECONDS),
            "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        if self.root is None:
            return
        try:
            if self._started:
                self._run(
                    str(self.bin_dir / "pg_ctl"),
                    "-D", str(self.data_dir),
                    "-m", "immediate",
                    "-w",
                    "-t", "30",
                    "stop",
                )  # fmt: skip
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        finally:
            self._started = False
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def url(self, database: str = "postgres", schema: str | None = None) -> str:
        """SQLAlchemy URL; with `schema`, every connection works in that schema only."""
        url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"
        return url if schema is None else f"{url}?options=-csearch_path%3D{schema}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
            autocommit=True, connect_timeout=10,
        )  # fmt: skip

    def create_database(self) -> str:
        """A fresh, empty database; returns its name."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def create_schema(self) -> str:
        """A fresh, empty schema in the `postgres` database: much cheaper than a database, and
        as isolated for tests that pass `url(schema=...)`."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        return name

    def drop_schema(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
