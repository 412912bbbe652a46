"""Names that cross a process boundary, written once: the API, the CLI, the alarm watcher and
the reconciler speak to workflows running in the worker by these strings, so a drift between two
copies (the memo key, an update's name) would leave an endpoint stuck in `Updating` with nobody
noticing until it happened. Standard library only: the workflows import it in their sandbox.
"""

from __future__ import annotations

from typing import NewType

# Workflow types, as `temporal workflow start --type ...` names them. The endpoint operations'
# are SageMaker's operation names too: the API starts the workflow of the operation it serves.
CREATE_ENDPOINT = "CreateEndpoint"
UPDATE_ENDPOINT = "UpdateEndpoint"
DELETE_ENDPOINT = "DeleteEndpoint"
UPDATE_WEIGHTS = "UpdateEndpointWeightsAndCapacities"
SETTLE_ENDPOINT = "SettleEndpoint"  # the reconciler's (greenshift.orphans)
ROLLOUT_GROUP = "RolloutGroup"
REPLACE_INSTANCES = "ReplaceInstances"  # the hosts' healer (greenshift.hosts)
DRAIN_HOST = "DrainHost"

# The workflow's memo entry carrying the deployment id the API (or the reconciler) reserved.
MEMO_DEPLOYMENT_ID = "deployment_id"

# Deployment workflow handlers, as `temporal workflow update execute --name ...` uses them.
ALARM_TRIPPED = "alarm_tripped"  # signal
PAUSE = "pause"
RESUME = "resume"
PROMOTE = "promote"
ABORT = "abort"
CONTROL_UPDATES = (PAUSE, RESUME, PROMOTE, ABORT)  # input {"actor", "reason"}
PROGRESS = "progress"  # query

# The rollout group workflow's query.
GROUP_QUERY = "group"

# --- activity names: registered by the classes in activities/ (and greenshift/hosts), called
# by name from workflows/, which never import the classes (they hold the registry, boto3...).
# The registry's (activities/registry.py).
PREPARE_CREATE = "prepare_create"
PREPARE_UPDATE = "prepare_update"
PREPARE_WEIGHTS = "prepare_weights"
PREPARE_DELETE = "prepare_delete"
PLAN_ROLLBACK = "plan_rollback"
RECORD_PROGRESS = "record_progress"
RECORD_EVENT = "record_event"
SET_STATUS = "set_status"
FINISH = "finish_deployment"
REMOVE_ENDPOINT = "remove_endpoint"
RELEASE_ENDPOINT = "release_endpoint"
# The fleet's, the traffic router's and the alarms' (activities/fleet.py, traffic.py, alarms.py).
PROVISION = "provision"
TERMINATE = "terminate"
RETIRE_FLEETS = "retire_fleets"
SHIFT_TRAFFIC = "shift_traffic"
CLEAR_ROUTING = "clear_routing"
CHECK_ALARMS = "check_alarms"
# The reconciler's, the rollout group's and the judge's (activities/settle.py, groups.py,
# judging.py).
PREPARE_SETTLE = "prepare_settle"
HOLD_GROUP = "hold_group_endpoints"
RELEASE_GROUP = "release_group_endpoints"
JUDGE_BAKE = "judge_bake"
# Placement, on the shared task queue (activities/hosts.py).
PLACE_FLEET = "PlaceFleet"
PLACE_STEP = "PlaceStep"  # a deployment's step: its progress, then PlaceFleet's placement
HOST_FLEETS = "HostFleets"
RECORD_HOST_EVENT = "RecordHostEvent"
# On each host's own task queue (greenshift.hosts.activities, run by the host agents).
HOST_SCALE_UP = "HostScaleUp"
HOST_SCALE_DOWN = "HostScaleDown"
HOST_STATUS = "HostStatus"
HOST_ADOPT = "HostAdopt"

# What a worker (worker/build.py) registers on the shared task queue, and what each host agent
# registers on its own; tests/unit/test_names.py checks both against the registrations.
WORKER_ACTIVITIES = frozenset(
    {
        PREPARE_CREATE,
        PREPARE_UPDATE,
        PREPARE_WEIGHTS,
        PREPARE_DELETE,
        PLAN_ROLLBACK,
        RECORD_PROGRESS,
        RECORD_EVENT,
        SET_STATUS,
        FINISH,
        REMOVE_ENDPOINT,
        RELEASE_ENDPOINT,
        PROVISION,
        TERMINATE,
        RETIRE_FLEETS,
        SHIFT_TRAFFIC,
        CLEAR_ROUTING,
        CHECK_ALARMS,
        PREPARE_SETTLE,
        HOLD_GROUP,
        RELEASE_GROUP,
        JUDGE_BAKE,
        PLACE_FLEET,
        PLACE_STEP,
        HOST_FLEETS,
        RECORD_HOST_EVENT,
    }
)
HOST_AGENT_ACTIVITIES = frozenset({HOST_SCALE_UP, HOST_SCALE_DOWN, HOST_STATUS, HOST_ADOPT})
ACTIVITIES = WORKER_ACTIVITIES | HOST_AGENT_ACTIVITIES

# --- task queues ------------------------------------------------------------------------------
# The shared queue every worker polls (Settings.task_queue's default).
DEFAULT_TASK_QUEUE = "greenshift"


def host_task_queue(base: str, address: str) -> str:
    """The task queue of one host's instance activities (Temporal worker-specific task queues):
    `<shared queue>-host-<address>`, so every deployment can address one host's agent."""
    return f"{base}-host-{address}"


# --- fleet keys -------------------------------------------------------------------------------
# A deployment's fleets are keyed `<role>/<variant>` ("blue/A", "green/A") in the fleet id maps
# that activities return to workflows and that recorded histories hold.
FleetKey = NewType("FleetKey", str)


def fleet_key(role: str, variant: str) -> FleetKey:
    """The key of `variant`'s fleet on side `role` ("blue" or "green", or a Role)."""
    return FleetKey(f"{role}/{variant}")


def parse_fleet_key(key: str) -> tuple[str, str]:
    """`(role, variant)` of a key `fleet_key` made."""
    role, _, variant = key.partition("/")
    return role, variant
