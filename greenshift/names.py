"""Names that cross a process boundary, written once: the API, the CLI, the alarm watcher and
the reconciler speak to workflows running in the worker by these strings, so a drift between two
copies (the memo key, an update's name) would leave an endpoint stuck in `Updating` with nobody
noticing until it happened. Standard library only: the workflows import it in their sandbox.
"""

from __future__ import annotations

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
