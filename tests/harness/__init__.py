"""The test and benchmark harness, kept out of the product package: chaos trials (`chaos`), the
fuzz suite (`fuzzing`) and helpers to run the control API in a thread (`api_testing`). Used by
tests/ and bench/ only; the product never imports it (tests/unit/test_layering.py)."""
