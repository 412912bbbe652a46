"""`greenshift up` after a kill -9 of the previous `up` (issue 14 item 12).

Before: the second `up` found the ports held by the orphaned components, refused (correctly),
but first stopped the orphaned stack's model instances; `status` went on saying "healthy" with
no supervisor. Now `status` says the supervisor is down, and `up` stops the orphaned components
cleanly, starts a fresh stack and adopts the model instances, which never stop serving.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from tests.cli.cli import command, run, wait_for
from tests.e2e.conftest import create_config, create_model
from tests.e2e.stack import processes_mentioning, running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]


def test_up_after_the_supervisor_was_killed_takes_over_and_keeps_instances(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    second: subprocess.Popen[str] | None = None
    try:
        with running_stack(home) as stack:
            sm = stack.client("sagemaker")
            create_model(sm, "echo-v1", "echo-v1")
            create_config(sm, "orphan-v1", "echo-v1", count=1)
            sm.create_endpoint(EndpointName="orphan", EndpointConfigName="orphan-v1")
            sm.get_waiter("endpoint_in_service").wait(
                EndpointName="orphan", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
            report = json.loads(run(stack, "status", "--json", timeout=30).out)
            components = {int(info["pid"]) for info in report.values()}
            instances = {
                pid
                for pid in set(processes_mentioning(str(home))) - components
                if "--instance-id" in _cmdline(pid)
            }
            assert instances, "expected a model instance process"

            stack.process.send_signal(signal.SIGKILL)  # the supervisor alone
            stack.process.wait(timeout=30)

            down = run(stack, "status", timeout=30)
            assert down.code == 1
            assert "supervisor down" in down.out
            assert "healthy" not in down.out

            second = subprocess.Popen(
                command("up"),
                env=stack.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            lines: list[str] = []

            def pump() -> None:
                assert second is not None and second.stdout is not None
                for line in second.stdout:
                    lines.append(line.rstrip())

            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            wait_for("the second up", lambda: "Greenshift is up." in lines or second.poll(), 180)
            assert second.poll() is None, "\n".join(lines)
            assert any("left by the previous supervisor" in line for line in lines), lines
            # The model instances were never stopped: the new worker adopted them.
            assert all(os.path.exists(f"/proc/{pid}") for pid in instances)
            healthy = wait_for(
                "every component healthy",
                lambda: run(stack, "status", timeout=30).code == 0 or None,
                90,
                every=1.0,
            )
            assert healthy
            answer = stack.client("sagemaker-runtime").invoke_endpoint(
                EndpointName="orphan", Body=b'{"x": 1}', ContentType="application/json"
            )
            assert json.loads(answer["Body"].read())["input"] == {"x": 1}
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=120) == 0
            reader.join(timeout=10)
            if second.stdout is not None:
                second.stdout.close()
    finally:
        if second is not None and second.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(second.pid, signal.SIGKILL)
            second.wait(timeout=10)
        for pid in processes_mentioning(str(home)):  # never leak a stack
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert processes_mentioning(str(home)) == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
