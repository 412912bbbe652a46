"""`greenshift up`: start every component on one machine, keep them running, stop them all.

One concern a module:

- `components`: the stack in start order (commands, health checks) and the ports it opens;
- `probes`: the health probes of the components with a port;
- `lifecycle`: the `Supervisor` (lock, takeover after a dead supervisor, start, restart, stop);
- `processes`: signals to process groups and what /proc says about a pid;
- `state`: `<home>/run/up.json`, what the running `up` records;
- `status_report`: what `greenshift status` reports;
- `environment`: the environment handed to child processes and the one printed for boto3;
- `home`: the home directory, made usable and private.

Heartbeat files live in `greenshift.heartbeat` (the watched processes write them and need not
import this package). The names below stay importable from `greenshift.supervisor`.
"""

from greenshift.heartbeat import touch_heartbeat
from greenshift.supervisor.components import (
    TEMPORAL_HOST,
    Component,
    HealthCheck,
    components,
    stack_ports,
)
from greenshift.supervisor.environment import client_environment, settings_env
from greenshift.supervisor.home import PRIVATE_FILES, HomeError, home_path, prepare_home
from greenshift.supervisor.lifecycle import AlreadyRunningError, Supervisor
from greenshift.supervisor.probes import http_ok, port_open
from greenshift.supervisor.processes import pid_alive
from greenshift.supervisor.state import read_state, supervisor_alive
from greenshift.supervisor.status_report import component_health

__all__ = [
    "PRIVATE_FILES",
    "TEMPORAL_HOST",
    "AlreadyRunningError",
    "Component",
    "HealthCheck",
    "HomeError",
    "Supervisor",
    "client_environment",
    "component_health",
    "components",
    "home_path",
    "http_ok",
    "pid_alive",
    "port_open",
    "prepare_home",
    "read_state",
    "settings_env",
    "stack_ports",
    "supervisor_alive",
    "touch_heartbeat",
]
