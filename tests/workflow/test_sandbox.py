"""The sandbox Greenshift's workers run workflows in (worker/build.py): Temporal's default, the
workflows passed through, and the builtins module left alone while a workflow task runs."""

from __future__ import annotations

import builtins
import dataclasses
import uuid

from temporalio import workflow

# The sandbox imports this module again to check the workflow below: the rest passes through.
with workflow.unsafe.imports_passed_through():
    import pytest
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker, WorkflowRunner
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from worker.build import PASSTHROUGH_MODULES, sandbox_restrictions, workflow_runner

SEEN = ("isinstance", "issubclass", "open", "input")


@workflow.defn(sandboxed=True)
class BuiltinsSeen:
    """What the builtins module holds while this workflow's task runs, by type name."""

    @workflow.run
    async def run(self) -> list[str]:
        return [type(getattr(builtins, name)).__name__ for name in SEEN]


@pytest.mark.parametrize(
    ("runner", "seen"),
    [
        # Temporal's default swaps them for the whole process while the task runs: every
        # thread's isinstance became a Python call (issue 17).
        (SandboxedWorkflowRunner(), "_ThreadLocalCallable"),
        (workflow_runner(), "builtin_function_or_method"),
    ],
    ids=["temporal-default", "greenshift"],
)
async def test_a_workflow_task_leaves_the_process_builtins_alone(
    env: WorkflowEnvironment, runner: WorkflowRunner, seen: str
) -> None:
    queue = f"sandbox-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client, task_queue=queue, workflows=[BuiltinsSeen], workflow_runner=runner
    ):
        result = await env.client.execute_workflow(
            BuiltinsSeen.run, id=f"builtins-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
    assert result == [seen] * len(SEEN)


def test_only_the_builtins_restriction_is_dropped() -> None:
    ours, default = sandbox_restrictions(), SandboxRestrictions.default
    assert "__builtins__" in default.invalid_module_members.children
    expected = {
        k: v for k, v in default.invalid_module_members.children.items() if k != "__builtins__"
    }
    assert ours.invalid_module_members.children == expected
    assert dataclasses.replace(ours.invalid_module_members, children={}) == dataclasses.replace(
        default.invalid_module_members, children={}
    )
    assert set(PASSTHROUGH_MODULES) <= ours.passthrough_modules
    assert ours.passthrough_modules - set(PASSTHROUGH_MODULES) == default.passthrough_modules
