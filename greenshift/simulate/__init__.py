"""`greenshift simulate`: a rehearsal of an UpdateEndpoint before the real run.

The real UpdateEndpoint workflow, the real activities and the real registry (SQLite in a
temporary directory) run on Temporal's time-skipping test server; only the fleet, the traffic
router and the alarm source are simulated, and faults are scripted. An 8-hour deployment takes
seconds because the server jumps over every bake.
"""
