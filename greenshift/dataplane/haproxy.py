"""The HAProxy process: master-worker mode, seamless reloads, supervision.

HAProxy runs as `haproxy -W -S <master.sock> -f haproxy.cfg` (foreground master, one worker).
A reload goes through the master CLI (`reload`, synchronous in 2.8: it answers `Success=1` once
the new worker runs); the admin socket's `expose-fd listeners` hands the listening sockets to the
new worker, so no connection is refused during a reload, and the old worker finishes its
in-flight requests before it exits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from greenshift import binaries
from greenshift.dataplane.config import Paths
from greenshift.dataplane.runtime import RuntimeApi
from greenshift.errors import GreenshiftError


class HAProxyError(GreenshiftError):
    code = "DataPlaneError"
    http_status = 500


def _kill_group(master: int) -> None:
    """SIGKILL a predecessor's master and its workers (its process group: it was started in a
    session of its own). Not a soft stop: on its way out HAProxy unlinks its unix sockets, whose
    paths the new master now owns. Only its in-flight requests are cut, as when HAProxy dies."""
    try:
        if os.getpgid(master) == master:
            os.killpg(master, signal.SIGKILL)
        else:
            os.kill(master, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class HAProxyProcess:
    """One supervised HAProxy master process and its admin/master sockets."""

    def __init__(self, root: Path, binary: str | None = None) -> None:
        self.paths = Paths(root)
        root.mkdir(parents=True, exist_ok=True)
        self.binary = binary or binaries.haproxy()
        self.runtime = RuntimeApi(self.paths.admin_socket)
        self.master = RuntimeApi(self.paths.master_socket, timeout=30.0)
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0  # bumped by every (re)start: the controller rebuilds state when it moves

    # --- files -----------------------------------------------------------------------------
    def write(self, config: str, slots: str, picks: str) -> None:
        """Write the maps first (the config names them), then the config."""
        _write_atomic(self.paths.slots_map, slots)
        _write_atomic(self.paths.picks_map, picks)
        _write_atomic(self.paths.config, config)

    def check(self) -> None:
        """Validate the written config without touching the running process."""
        out = subprocess.run(
            [self.binary, "-c", "-f", str(self.paths.config)],
            capture_output=True,
            timeout=30,
        )
        if out.returncode != 0:
            raise HAProxyError(
                f"invalid HAProxy config: {(out.stdout + out.stderr).decode(errors='replace')}"
            )

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 15.0) -> None:
        """Start the master (config already written) and wait until the admin socket answers.
        Retries while the ports are still held by a worker of a killed predecessor."""
        deadline = time.monotonic() + timeout
        last_error = ""
        predecessor = self._predecessor()
        while True:
            for sock in (self.paths.admin_socket, self.paths.master_socket):
                sock.unlink(missing_ok=True)
            log = open(self.paths.root / "haproxy.log", "ab")
            try:
                self._proc = subprocess.Popen(
                    [
                        self.binary,
                        "-W",
                        "-S",
                        f"{self.paths.master_socket},mode,600",
                        "-f",
                        str(self.paths.config),
                        "-p",
                        str(self.paths.pid_file),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C in the terminal goes to us, not to HAProxy
                )
            finally:
                log.close()
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                if self.runtime.ping():
                    self.starts += 1
                    if predecessor is not None:
                        _kill_group(predecessor)
                    return
                time.sleep(0.05)
            if self._proc.poll() is None:
                self._kill()
                # The attempts before this one may have said why (a port still held).
                said = f"; before that: {last_error}" if last_error else ""
                raise HAProxyError(f"HAProxy did not open its admin socket in time{said}")
            last_error = self._log_tail()
            if time.monotonic() >= deadline:
                raise HAProxyError(f"HAProxy failed to start: {last_error}")
            time.sleep(0.2)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self.runtime.ping()

    def reload(self) -> None:
        """Seamless reload with the config on disk (check it first)."""
        answer = self.master.command("reload")
        if "Success=1" not in answer:
            raise HAProxyError(f"HAProxy reload failed: {answer.strip()}")
        deadline = time.monotonic() + 10
        while not self.runtime.ping():
            if time.monotonic() > deadline:
                raise HAProxyError("HAProxy admin socket did not come back after reload")
            time.sleep(0.02)

    def worker_pids(self) -> list[int]:
        try:
            out = self.master.command("show proc")
        except OSError:
            return []
        pids = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].isdigit() and parts[1] == "worker":
                pids.append(int(parts[0]))
        return pids

    def stop(self, timeout: float = 10.0) -> None:
        """Stop master and workers (hard stop: in-flight requests are cut)."""
        if self._proc is None:
            return
        workers = self.worker_pids()
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        for pid in workers:  # a worker outlives a killed master only briefly; make it certain
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._proc = None

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(5)

    def reap_after_crash(self) -> None:
        """After the master died: kill what is left of its process group and forget it."""
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._proc = None

    def _predecessor(self) -> int | None:
        """The master of an earlier data-plane process (killed without stopping its HAProxy)
        that still runs this config. It binds the same ports (SO_REUSEPORT) and would keep
        serving its stale routing, and outlive `greenshift up`, if left alone."""
        try:
            pid = int(self.paths.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if self._proc is not None and pid == self._proc.pid:
            return None
        try:
            argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if str(self.paths.config).encode() in argv else None

    def _log_tail(self) -> str:
        try:
            return (self.paths.root / "haproxy.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""
