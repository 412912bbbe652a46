"""The home is private and its failures are sentences (issue 14 item 8 and the smaller items):
0700 home, 0600 databases, files the components create 0600; a read-only home is a clear error,
not a traceback; the banner shows the configured key's id, never a placeholder or a secret."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from greenshift.settings import Settings
from greenshift.supervisor import (
    Component,
    HomeError,
    Supervisor,
    client_environment,
    prepare_home,
)
from tests.e2e.stack import free_port


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_home_is_private(tmp_path: Path) -> None:
    home = prepare_home(Settings(home=tmp_path / "new" / "home"))
    assert mode(home) == 0o700


def test_an_existing_readable_home_and_its_databases_are_tightened(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    for name in ("registry.db", "registry.db-wal", "temporal.db", "other.txt"):
        (home / name).write_text("x")
        (home / name).chmod(0o644)
    prepare_home(Settings(home=home))
    assert mode(home) == 0o700
    assert mode(home / "registry.db") == 0o600
    assert mode(home / "registry.db-wal") == 0o600
    assert mode(home / "temporal.db") == 0o600
    assert mode(home / "other.txt") == 0o644  # not ours to judge


def test_a_shared_sticky_directory_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    prepare_home(Settings(home=shared))
    assert mode(shared) == 0o1777


def _read_only_homes(tmp_path: Path) -> list[Path]:
    below_a_file = tmp_path / "a-file"
    below_a_file.write_text("")
    homes = [below_a_file / "home"]
    # Root ignores permission bits: a read-only file system is the honest read-only home.
    if Path("/sys/kernel").is_dir() and _mkdir_fails(Path("/sys/kernel/greenshift-probe")):
        homes.append(Path("/sys/kernel"))
    return homes


def _mkdir_fails(path: Path) -> bool:
    try:
        path.mkdir()
    except OSError:
        return True
    path.rmdir()
    return False


def test_an_unusable_home_is_a_sentence(tmp_path: Path) -> None:
    homes = _read_only_homes(tmp_path)
    for home in homes:
        with pytest.raises(HomeError, match=r"cannot use .* as its home"):
            prepare_home(Settings(home=home))


def test_up_on_a_read_only_home_says_so_without_a_traceback(tmp_path: Path) -> None:
    for home in _read_only_homes(tmp_path):
        done = subprocess.run(
            [sys.executable, "-m", "greenshift", "up"],
            env={**os.environ, "GREENSHIFT_HOME": str(home)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert f"cannot use {home} as its home" in done.stderr
        assert "--home" in done.stderr


# Creates the registry the way SQLite does (mode 0666 & ~umask), then idles.
MAKES_A_DB = (
    "import sqlite3,sys,time\n"
    "sqlite3.connect(sys.argv[1]).execute('create table t(x int)').connection.commit()\n"
    "time.sleep(60)"
)


def test_files_the_components_create_are_private(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        api_port=free_port(),
        runtime_port=free_port(),
        stats_port=free_port(),
        temporal_port=free_port(),
        ui_port=free_port(),
    )
    db = settings.home_dir / "made.db"
    supervisor = Supervisor(settings, say=lambda _: None)
    supervisor.stack = [
        Component("api", [sys.executable, "-c", MAKES_A_DB, str(db)], health=db.exists)
    ]
    old = os.umask(0o022)  # a usual umask: without the fix the file is 0644
    try:
        supervisor.start()
        deadline = time.monotonic() + 10
        while db.stat().st_size == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mode(db) == 0o600
    finally:
        os.umask(old)
        supervisor.stop()


def test_the_banner_shows_the_configured_key_id_and_no_secret() -> None:
    env = client_environment(Settings(access_keys="AKIDREAL0001:s3cr3t,AKID2:other"))
    assert env["AWS_ACCESS_KEY_ID"] == "AKIDREAL0001"
    assert "s3cr3t" not in "".join(env.values())
    assert "GREENSHIFT_ACCESS_KEYS" in env["AWS_SECRET_ACCESS_KEY"]
    open_env = client_environment(Settings(access_keys=None))
    assert open_env["AWS_ACCESS_KEY_ID"] == "greenshift"
