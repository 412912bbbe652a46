"""One Python environment per distinct requirement set, built with `uv`, cached and reused.

A model's environment holds exactly: the built-in server's own runtime needs
(`SERVER_REQUIREMENTS`), the framework its image names (greenshift.fleet.frameworks) and the
lines of its `code/requirements.txt`. Never Greenshift: the server runs isolated from it
(greenshift.fleet.serving).

- **Key**: a digest of the interpreter (version, platform), the server's code version and the
  set's lines, normalised (comments, blanks and surrounding spaces dropped, sorted, duplicates
  removed). Two models with the same set share one environment; a changed line is a new one.
- **Atomic**: built in `<cache>/.<key>-*` and renamed to `<cache>/<key>` only once the install
  succeeded, with a `.complete` stamp; a failed or interrupted build leaves nothing that is ever
  reused. Builds of one key are serialised by a lock file, so two agents (two homes) sharing
  the cache build it once.
- **Collected**: every provisioning runs `collect`: stale temporary folders and environments
  unused for `Settings.env_unused_seconds` go, never one a live instance runs from.
- **Bounded**: the build runs against the caller's deadline (the fleet's startup budget) and is
  killed when it passes; a failed build raises ProvisionFailed with the installer's last lines.
- **Heartbeats**: `progress` is called on a timer while the installer runs, whatever it prints.

Limits: `-r` / `-c` includes and relative local paths in requirements.txt are not resolved (the
set is hashed by its own text); a package index other than the default one is the user's line
(`--index-url ...`) and is part of the key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from greenshift.ports import Progress, ProvisionFailed

# The server's own needs: numpy for the toolkits' codecs (a floor only, so a framework or a
# requirements.txt that pins numpy decides its version), httptools and uvloop pinned exactly as
# in Greenshift's own environment (nothing else depends on them).
SERVER_REQUIREMENTS = ("numpy>=1.23", "httptools==0.9.0", "uvloop==0.23.0")
# Bump when the serving package needs different requirements: every environment is rebuilt.
SERVER_ENV_VERSION = "1"
COMPLETE = ".complete"
KEY_LENGTH = 20
HEARTBEAT_SECONDS = 5.0
FAILURE_LINES = 12
FAILURE_CHARS = 900  # FailureReason holds 1024 characters


def normalise(lines: Iterable[str]) -> tuple[str, ...]:
    """Requirement lines as they count for the key: no comments, blanks or padding; sorted."""
    kept = set()
    for raw in lines:
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            kept.add(line)
    return tuple(sorted(kept))


@dataclass(frozen=True)
class RequirementSet:
    """What one model's environment must hold."""

    lines: tuple[str, ...]

    @classmethod
    def of(cls, framework: Iterable[str], requirements_txt: str | None) -> RequirementSet:
        user = requirements_txt.splitlines() if requirements_txt else []
        return cls(normalise([*SERVER_REQUIREMENTS, *framework, *user]))

    @property
    def key(self) -> str:
        return env_key(self.lines)

    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)


def interpreter() -> str:
    """The base interpreter model environments are made from (Greenshift's own Python, outside
    any virtual environment)."""
    return str(getattr(sys, "_base_executable", None) or sys.executable)


def is_env_key(name: str) -> bool:
    """An environment's folder name (env_key's form); the cache also holds the server's copies."""
    return len(name) == KEY_LENGTH and all(c in "0123456789abcdef" for c in name)


def env_key(lines: tuple[str, ...]) -> str:
    identity = [
        f"python {platform.python_version()} {sysconfig.get_platform()}",
        f"server {SERVER_ENV_VERSION}",
        *lines,
    ]
    return hashlib.sha256("\n".join(identity).encode()).hexdigest()[:KEY_LENGTH]


def uv_binary() -> str:
    """The `uv` executable the `uv` PyPI package ships (beside our interpreter), else PATH's."""
    beside = Path(sys.executable).with_name("uv")
    if beside.is_file():
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        raise ProvisionFailed("cannot build the model environment: uv is not installed")
    return found


def shorten(output: str) -> str:
    """The installer's last lines, bounded (they go into FailureReason)."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    tail = "\n".join(lines[-FAILURE_LINES:])
    return tail if len(tail) <= FAILURE_CHARS else tail[-FAILURE_CHARS:].split("\n", 1)[-1]


class ModelEnvironments:
    """The cache of built environments under `cache_dir` (shared by homes)."""

    def __init__(
        self, cache_dir: Path, uv: str | None = None, heartbeat: float = HEARTBEAT_SECONDS
    ) -> None:
        self.cache_dir = cache_dir.expanduser()
        self._uv = uv
        self.heartbeat = heartbeat

    def path(self, requirements: RequirementSet) -> Path:
        return self.cache_dir / requirements.key

    def python(self, requirements: RequirementSet) -> Path:
        return self.path(requirements) / "bin" / "python"

    def ready(self, requirements: RequirementSet) -> bool:
        return (self.path(requirements) / COMPLETE).is_file()

    def ensure(self, requirements: RequirementSet, deadline: float, progress: Progress) -> Path:
        """The environment's folder, built first when missing. `deadline` is a
        `time.monotonic()` instant."""
        final = self.path(requirements)
        if self.ready(requirements):
            _touch(final / COMPLETE)
            return final
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with _locked(self.cache_dir / f".{requirements.key}.lock", deadline, progress):
            if self.ready(requirements):  # another agent built it while we waited
                return final
            progress(f"Building the model environment ({len(requirements.lines)} requirements).")
            tmp = Path(tempfile.mkdtemp(prefix=f".{requirements.key}-", dir=self.cache_dir))
            try:
                self._build(tmp, requirements, deadline, progress)
                (tmp / COMPLETE).write_text(requirements.text())
                shutil.rmtree(final, ignore_errors=True)  # an incomplete leftover, never used
                os.rename(tmp, final)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        progress("Model environment ready.")
        return final

    def _build(
        self, folder: Path, requirements: RequirementSet, deadline: float, progress: Progress
    ) -> None:
        uv = self._uv or uv_binary()
        # `--clear`: the folder is our own fresh temporary one (mkdtemp made it, empty).
        venv = [uv, "venv", "--quiet", "--clear", "--relocatable", "--python", interpreter()]
        _run([*venv, str(folder)], deadline, progress, self.heartbeat)
        (folder / "requirements.txt").write_text(requirements.text())
        steps = [
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(folder / "bin" / "python"),
                "-r",
                str(folder / "requirements.txt"),
            ],
        ]
        for command in steps:
            _run(command, deadline, progress, self.heartbeat)

    def collect(self, unused_for_seconds: float, keep: Iterable[Path] = ()) -> list[Path]:
        """Remove environments not used for that long, and leftovers of failed builds. Never
        one in `keep`, nor one a live process runs from (any home's: the cache is shared, and
        an instance that has served for weeks does not touch its stamp)."""
        removed: list[Path] = []
        now = time.time()
        if not self.cache_dir.is_dir():
            return removed
        kept = {path.name for path in keep} | environments_in_use(self.cache_dir)
        for entry in self.cache_dir.iterdir():
            if entry.name in kept:
                continue
            if entry.name.startswith(".") and entry.is_dir():
                stale = now - entry.stat().st_mtime > 3600  # a build in progress is younger
            elif entry.is_dir() and is_env_key(entry.name):  # never the server's copy
                stamp = entry / COMPLETE
                stale = not stamp.is_file() or now - stamp.stat().st_mtime > unused_for_seconds
            else:
                continue
            if stale:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        return removed


def environments_in_use(cache_dir: Path) -> set[str]:
    """Names of the environments under `cache_dir` that a live process runs from: the first
    word of its command line lies inside one (instances start as `<env>/bin/python -I ...`)."""
    prefix = str(cache_dir.expanduser()).rstrip("/") + "/"
    used: set[str] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            program = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
        except (OSError, UnicodeDecodeError):
            continue
        if program.startswith(prefix):
            used.add(program[len(prefix) :].split("/", 1)[0])
    return used


def _run(command: list[str], deadline: float, progress: Progress, heartbeat: float) -> None:
    """Run one installer step, heartbeating every `heartbeat` seconds, killed at the deadline."""
    began = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GREENSHIFT_", "VIRTUAL_ENV"))}
    with tempfile.TemporaryFile() as output:
        proc = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    proc.kill()
                    proc.wait()
                    raise ProvisionFailed(
                        "Building the model environment did not finish within the startup "
                        f"limit ({time.monotonic() - began:.0f} s)."
                    )
                try:
                    code = proc.wait(timeout=min(heartbeat, remaining))
                    break
                except subprocess.TimeoutExpired:
                    progress(f"Building the model environment ({time.monotonic() - began:.0f} s).")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if code != 0:
            output.seek(0)
            text = output.read().decode("utf-8", "replace")
            raise ProvisionFailed(f"Building the model environment failed: {shorten(text)}")


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(path)


@contextlib.contextmanager
def _locked(path: Path, deadline: float, progress: Progress) -> Iterator[None]:
    """An exclusive lock file, waited for with heartbeats and within the deadline."""
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ProvisionFailed(
                        "Building the model environment did not finish within the startup limit "
                        "(another build of the same environment held it)."
                    ) from None
                progress("Waiting for another build of the same model environment.")
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
