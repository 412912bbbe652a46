"""Generators and a runner for the fuzz suite (bench/fuzz.py, tests/fuzz): random valid-ish and
malformed requests for the control API and the runtime, sent as raw HTTP so that nothing in a
client library can tidy them up first."""
