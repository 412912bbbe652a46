"""Names that cross a process boundary, written once: the API, the CLI, the alarm watcher and
the reconciler speak to workflows running in the worker by these strings, so a drift between two
copies (the memo key, an update's name) would leave an endpoint stuck in `Updating` with nobody
noticing until it happened. Standard library only: the workflows import it in their sandbox.
"""

from __future__ import annotations

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
