"""Hosts: the machines whose agents hold model instances, where a fleet's instances go
(placement), whether a host is alive (heartbeats) and what to do when one is lost or drained."""
