"""Rollout groups: one deployment over several endpoints, in waves (issue 18)."""
