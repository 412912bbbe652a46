"""The Docker Engine for tests: whether one answers, the example images, and clean-up by label.

Tests that need the engine use the `docker_engine` fixture: with no engine they FAIL where
GREENSHIFT_REQUIRE_DOCKER is set (CI's .ci/run sets it, so a broken engine cannot pass as
"skipped"), and skip with the reason on a developer machine without Docker.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from greenshift.fleet.containers import LABEL_HOME

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "container"
IMAGE = "greenshift-test/example:serve"  # answers /ping and /invocations
FAILING_IMAGE = "greenshift-test/example:fail"  # answers every invocation 500
EXITING_IMAGE = "greenshift-test/example:exit"  # exits with code 3 at once
SILENT_IMAGE = "greenshift-test/example:noping"  # never answers /ping
STREAM_IMAGE = "greenshift-test/example:stream"  # answers invocations with chunks, streaming
MISSING_IMAGE = "greenshift-test/not-built:never"
# AWS's PyTorch inference image, as a user who pulled AWS's real container has it in the engine
# (`framework_image` tags STREAM_IMAGE so): greenshift.fleet.images runs it as that container.
FRAMEWORK_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"


# Where the engine listens when DOCKER_HOST does not say.
DEFAULT_SOCKET = Path("/var/run/docker.sock")


def engine_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not DEFAULT_SOCKET.exists():
        # No engine to ask. (docker-py leaves the socket of a failed connect open, a
        # ResourceWarning that pytest pins on whichever test runs next.)
        return False
    try:
        client = docker.from_env(timeout=10)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def require_engine() -> None:
    if engine_answers():
        return
    reason = "no Docker Engine answers at DOCKER_HOST or the default socket"
    if os.environ.get("GREENSHIFT_REQUIRE_DOCKER"):
        pytest.fail(f"{reason}, and GREENSHIFT_REQUIRE_DOCKER is set")
    pytest.skip(f"{reason} (set GREENSHIFT_REQUIRE_DOCKER=1 to make this a failure)")


def build_images(workdir: Path) -> None:
    """The example container in each mode, over one imported rootfs (cached in the engine by a
    fingerprint of the interpreter and the server, so a second session builds in about a
    second)."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        import build_image  # examples/container/build_image.py
    finally:
        sys.path.remove(str(EXAMPLE))
    for tag, mode in (
        (IMAGE, "serve"),
        (FAILING_IMAGE, "fail"),
        (EXITING_IMAGE, "exit"),
        (SILENT_IMAGE, "noping"),
        (STREAM_IMAGE, "stream"),
    ):
        build_image.build(tag, mode, workdir)


def our_containers(home: Path | str | None = None) -> list[str]:
    """Names of containers with Greenshift's labels (of one home, or of any)."""
    label = LABEL_HOME if home is None else f"{LABEL_HOME}={home}"
    client = docker.from_env(timeout=30)
    try:
        return [
            c.name
            for c in client.containers.list(all=True, ignore_removed=True, filters={"label": label})
        ]
    finally:
        client.close()


def remove_containers(home: Path | str) -> list[str]:
    """Remove every container of `home`; returns their names (a test's leftovers)."""
    client = docker.from_env(timeout=30)
    removed = []
    try:
        for container in client.containers.list(
            all=True, ignore_removed=True, filters={"label": f"{LABEL_HOME}={home}"}
        ):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
                removed.append(container.name)
    finally:
        client.close()
    return removed


@pytest.fixture(scope="session")
def docker_images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    require_engine()
    build_images(tmp_path_factory.mktemp("images"))
    yield


@pytest.fixture
def framework_image() -> Iterator[str]:
    """STREAM_IMAGE also tagged FRAMEWORK_IMAGE in the engine (built first: the caller's own
    fixture builds the images); the tag is removed afterwards, the image keeps its own."""
    client = docker.from_env(timeout=30)
    try:
        repository, tag = FRAMEWORK_IMAGE.rsplit(":", 1)
        assert client.images.get(STREAM_IMAGE).tag(repository, tag)
        yield FRAMEWORK_IMAGE
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(FRAMEWORK_IMAGE)
        client.close()
