"""EventBridge-shaped events about endpoints and deployments, and their webhook delivery.

`greenshift.events.model` builds the events (pure), `greenshift.events.webhook` delivers them
without ever blocking the caller, and `greenshift.events.source` derives them from the registry.
"""
