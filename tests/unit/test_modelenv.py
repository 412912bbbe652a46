"""Model environments: the requirement set and its key, the image -> framework rule, and the
cache (built once, atomically, within the deadline, heartbeating). The builds here are real `uv`
runs of the server's own small set (from uv's package cache after the first run)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from greenshift.fleet.frameworks import framework_requirements
from greenshift.fleet.images import BUILTIN_IMAGE, builtin_image
from greenshift.fleet.modelenv import (
    SERVER_REQUIREMENTS,
    ModelEnvironments,
    RequirementSet,
    environments_in_use,
    shorten,
)
from greenshift.fleet.processes import ProcessRuntime, requirements_of
from greenshift.ports import ProvisionFailed
from tests.registry_records import fleet as fleet_record

ECR = "683313688378.dkr.ecr.us-east-1.amazonaws.com"


def test_the_key_ignores_comments_blanks_and_order_not_content() -> None:
    a = RequirementSet.of([], "joblib==1.4.2\n# a comment\n\nsix  # why\n")
    b = RequirementSet.of([], "six\njoblib==1.4.2\n")
    assert a == b and a.key == b.key
    assert set(SERVER_REQUIREMENTS) <= set(a.lines)
    assert RequirementSet.of([], "six\njoblib==1.4.1\n").key != a.key
    assert RequirementSet.of(["scikit-learn==1.2.1"], "six\njoblib==1.4.2\n").key != a.key


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("greenshift/model-server", []),
        (f"{ECR}/sagemaker-scikit-learn:1.2-1-cpu-py3", ["scikit-learn==1.2.1", "numpy<2"]),
        (f"{ECR}/sagemaker-scikit-learn:1.4-2-cpu-py3", ["scikit-learn==1.4.2"]),
        (f"{ECR}/sagemaker-scikit-learn:1.5-1-cpu-py3", ["scikit-learn==1.5.*"]),
        (f"{ECR}/sagemaker-scikit-learn:1.3-1-cpu-py3", ["scikit-learn==1.3.*", "numpy<2"]),
        (
            "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference:2.1-cpu-py310",
            ["torch==2.1.*"],
        ),
        (
            "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-inference:2.0.1-gpu-py310",
            ["torch==2.0.1"],
        ),
    ],
)
def test_the_image_tag_names_the_framework_release(image: str, expected: list[str]) -> None:
    named = builtin_image(image)
    assert named is not None
    assert framework_requirements(named) == expected


def _envs(tmp_path: Path, **kwargs: object) -> ModelEnvironments:
    return ModelEnvironments(tmp_path / "envs", **kwargs)  # type: ignore[arg-type]


def test_an_environment_is_built_once_then_reused(tmp_path: Path) -> None:
    envs = _envs(tmp_path)
    requirements = RequirementSet.of([], None)
    messages: list[str] = []
    path = envs.ensure(requirements, time.monotonic() + 300, messages.append)
    assert envs.ready(requirements) and path == envs.path(requirements)
    python = envs.python(requirements)
    assert python.exists()
    assert os.system(f"{python} -I -c 'import numpy, httptools, uvloop'") == 0
    began = time.monotonic()
    again: list[str] = []
    assert envs.ensure(requirements, time.monotonic() + 300, again.append) == path
    assert time.monotonic() - began < 0.5 and again == []  # reused: no build, no message
    assert [p.name for p in (tmp_path / "envs").iterdir() if p.is_dir()] == [requirements.key]


def test_a_failed_build_says_why_and_leaves_nothing_reused(tmp_path: Path) -> None:
    envs = _envs(tmp_path)
    broken = RequirementSet.of([], "this is not a requirement !!\n")
    with pytest.raises(ProvisionFailed) as raised:
        envs.ensure(broken, time.monotonic() + 300, lambda _: None)
    assert str(raised.value).startswith("Building the model environment failed: ")
    assert "this is not a requirement" in str(raised.value)
    assert not envs.ready(broken)
    assert [p for p in (tmp_path / "envs").iterdir() if p.is_dir()] == []


def _slow_uv(tmp_path: Path, seconds: float) -> str:
    script = tmp_path / "uv"
    script.write_text(f"#!/bin/sh\nsleep {seconds}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_a_build_heartbeats_on_a_timer_and_is_killed_at_the_deadline(tmp_path: Path) -> None:
    """A stand-in `uv` that only sleeps: what is under test is the timer and the bound."""
    envs = _envs(tmp_path, uv=_slow_uv(tmp_path, 30), heartbeat=0.2)
    beats: list[str] = []
    began = time.monotonic()
    with pytest.raises(ProvisionFailed, match="did not finish within the startup limit"):
        envs.ensure(RequirementSet.of([], None), time.monotonic() + 1.5, beats.append)
    assert time.monotonic() - began < 5
    assert len([b for b in beats if b.startswith("Building the model environment (")]) >= 4
    assert [p for p in (tmp_path / "envs").iterdir() if p.is_dir()] == []


def test_installer_output_is_shortened_to_its_end() -> None:
    text = "\n".join(f"line {i}" for i in range(100)) + "\nerror: the cause\n"
    short = shorten(text)
    assert short.endswith("error: the cause") and "line 0\n" not in short
    assert len(shorten("x" * 5000)) <= 900


def _fake_env(envs: ModelEnvironments, name: str, age_seconds: float) -> Path:
    """A built environment whose python is this interpreter, last used `age_seconds` ago."""
    folder = envs.cache_dir / name
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").symlink_to(sys.executable)
    stamp = folder / ".complete"
    stamp.write_text("")
    when = time.time() - age_seconds
    os.utime(stamp, (when, when))
    return folder


def test_collection_removes_old_environments_but_never_one_a_live_process_runs_from(
    tmp_path: Path,
) -> None:
    envs = _envs(tmp_path)
    names = {"aged": "a" * 20, "busy": "b" * 20, "fresh": "f" * 20, "kept": "c" * 20}  # key-like
    old, running, _fresh, kept = (
        _fake_env(envs, names[label], age)
        for label, age in (("aged", 10_000), ("busy", 10_000), ("fresh", 10), ("kept", 10_000))
    )
    not_an_env = envs.cache_dir / "server-0123"  # the server's copy: never collected here
    not_an_env.mkdir()
    # An instance that has served for weeks never touched its stamp: its process tells.
    proc = subprocess.Popen(
        [str(running / "bin" / "python"), "-c", "import time; time.sleep(30)"],
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while running.name not in environments_in_use(envs.cache_dir):
            assert time.monotonic() < deadline, "the process never showed in /proc"
            time.sleep(0.05)
        assert envs.collect(unused_for_seconds=3600, keep=[kept]) == [old]
    finally:
        proc.kill()
        proc.wait(timeout=10)
    left = sorted(p.name for p in envs.cache_dir.iterdir())
    assert left == sorted([names["fresh"], names["kept"], names["busy"], not_an_env.name])
    # Once its process is gone, it is as old as it looks.
    assert sorted(envs.collect(unused_for_seconds=3600)) == sorted([kept, running])


def test_preparing_a_fleet_collects_environments_unused_too_long(tmp_path: Path) -> None:
    envs = _envs(tmp_path)
    fleet = fleet_record(model_spec={"Image": BUILTIN_IMAGE})
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    ours = requirements_of(fleet, model_dir)
    _fake_env(envs, ours.key, age_seconds=10_000)  # built long ago: reused, not collected
    _fake_env(envs, "e" * 20, age_seconds=10_000)  # an abandoned environment
    runtime = ProcessRuntime(envs, unused_seconds=3600)
    server = runtime.server_copy()
    os.utime(server, (time.time() - 10_000, time.time() - 10_000))
    runtime.prepare(fleet, model_dir, lambda _message: None)
    # The abandoned environment goes; ours and the server's copy (which instances run) stay.
    assert sorted(p.name for p in envs.cache_dir.iterdir()) == sorted([ours.key, server.name])
