"""Chaos testing of a running stack: kill one component with SIGKILL mid-deployment, then check
that everything converged to a known, consistent state (used by bench/chaos.py and tests/chaos)."""
