"""HAProxy runtime API client over the admin unix socket (one command per connection).

Everything here is blocking and small: the router controller calls it from its own thread.
"""

from __future__ import annotations

import csv
import io
import socket
from dataclasses import dataclass
from pathlib import Path

from greenshift.errors import GreenshiftError


class RuntimeApiError(GreenshiftError):
    code = "DataPlaneError"
    http_status = 500


@dataclass(frozen=True)
class ServerState:
    backend: str
    name: str
    address: str
    port: int
    admin_maint: bool  # put in maintenance by us (`set server state maint` / `disabled`)
    weight: int


class RuntimeApi:
    def __init__(self, socket_path: Path | str, timeout: float = 5.0) -> None:
        self.socket_path = str(socket_path)
        self.timeout = timeout

    def command(self, line: str, payload: str | None = None) -> str:
        """Send one command (optionally with a `<<` payload) and return the whole answer."""
        data = line
        if payload is not None:
            data += " <<\n" + payload.rstrip("\n") + "\n\n"
        else:
            data += "\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
            sock.sendall(data.encode())
            sock.shutdown(socket.SHUT_WR)  # the master CLI answers only once input ends
            chunks: list[bytes] = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def checked(self, line: str, payload: str | None = None) -> str:
        """A command whose answer must not report an error."""
        out = self.command(line, payload)
        low = out.lower()
        if any(
            marker in low
            for marker in ("unknown", "not found", "error", "invalid", "no such", "cannot", "can't")
        ):
            raise RuntimeApiError(f"HAProxy refused `{line}`: {out.strip()}")
        return out

    def ping(self) -> bool:
        try:
            return "Pid:" in self.command("show info")
        except OSError:
            return False

    # --- servers ---------------------------------------------------------------------------
    def servers(self) -> list[ServerState]:
        """`show servers state`: every server of every backend."""
        out = self.command("show servers state")
        result: list[ServerState] = []
        for line in out.splitlines():
            if not line or line.startswith("#") or (line[0].isalpha() and " " not in line):
                continue
            f = line.split()
            if len(f) < 19 or not f[0].isdigit():
                continue
            # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight
            # srv_iweight srv_time_since_last_change srv_check_status srv_check_result
            # srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id
            # srv_fqdn srv_port ...
            result.append(
                ServerState(
                    backend=f[1],
                    name=f[3],
                    address=f[4],
                    port=int(f[18]) if f[18].isdigit() else 0,
                    admin_maint=bool(int(f[6]) & 0x01),
                    weight=int(f[7]),
                )
            )
        return result

    def add_server(self, backend: str, line: str) -> None:
        """`add server backend/<line>` (line from config.server_line); enabled unless `disabled`.

        A dynamic server's health checks stay off until `enable health` (HAProxy's rule)."""
        self.checked(f"add server {backend}/{line}")
        if " check" in line:
            self.checked(f"enable health {backend}/{line.split()[0]}")

    def set_state(self, backend: str, server: str, enabled: bool) -> None:
        self.checked(f"set server {backend}/{server} state {'ready' if enabled else 'maint'}")

    def del_server(self, backend: str, server: str) -> bool:
        """Remove a server; False while it still has connections (it stays in maintenance)."""
        out = self.command(f"del server {backend}/{server}")
        return "removed" in out.lower() or "not found" in out.lower()

    # --- maps --------------------------------------------------------------------------------
    def replace_map(self, map_path: Path | str, content: str) -> None:
        """Atomically replace a map's entries (prepare / add @ver / commit)."""
        out = self.checked(f"prepare map {map_path}")
        try:
            version = out.split(":")[1].strip().split()[0]
        except IndexError as exc:
            raise RuntimeApiError(f"unexpected answer to prepare map: {out!r}") from exc
        if content.strip():
            self.checked(f"add map @{version} {map_path}", content)
        self.checked(f"commit map @{version} {map_path}")

    # --- counters ------------------------------------------------------------------------------
    def stats(self) -> list[dict[str, str]]:
        """`show stat`: one row per frontend, backend and server (HAProxy's CSV columns)."""
        out = self.command("show stat")
        text = out.lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))
