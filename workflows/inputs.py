"""Parse a workflow's input (the SageMaker request JSON) inside the workflow: pure, so an invalid
request fails the workflow at once with a non-retryable error naming the field, instead of a
workflow task that fails and retries forever."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.models import ReleaseInput
    from greenshift import names
    from greenshift.contracts.support import check_supported
    from greenshift.contracts.validation import parse_request
    from greenshift.errors import GreenshiftError
    from workflows import options
    from workflows.calls import run_activity

ShapeT = TypeVar("ShapeT", bound=BaseModel)


def parse_input(shape_cls: type[ShapeT], document: Any) -> ShapeT:
    """The request as the API would take it, and stricter: unknown members at any depth are
    refused (nobody validated a request started from the temporal CLI, and a typo such as
    `DeploymentConifg` would deploy with no guardrail), as are non-finite numbers."""
    try:
        parsed = parse_request(shape_cls, document, forbid_unknown=True)
        check_supported(shape_cls, document)
        return parsed
    except GreenshiftError as error:
        raise ApplicationError(error.message, type=error.code, non_retryable=True) from None


def business_failure(error: ActivityError) -> ApplicationError:
    """The activity's typed failure, re-raised as the workflow's own (non-retryable)."""
    cause = error.cause
    if isinstance(cause, ApplicationError):
        return ApplicationError(cause.message, type=cause.type, non_retryable=True)
    return ApplicationError(str(cause or error), type="InternalFailure", non_retryable=True)


def failure_message(error: BaseException) -> str:
    """The innermost message of an activity failure: what FailureReason should say."""
    cause: BaseException | None = error
    while isinstance(cause, ActivityError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause)


def failure_type(error: BaseException) -> str | None:
    cause = error.cause if isinstance(error, ActivityError) else None
    return cause.type if isinstance(cause, ApplicationError) else None


MEMO_DEPLOYMENT_ID = names.MEMO_DEPLOYMENT_ID


def deployment_id_of(given: str | None) -> str:
    """The deployment id: the second argument, else the memo the API sets (`deployment_id`: it
    reserved the endpoint under it), else derived deterministically (started from the CLI)."""
    if given:
        return given
    memo = workflow.memo_value(MEMO_DEPLOYMENT_ID, None, type_hint=str)
    return memo or str(workflow.uuid4())


async def release_after_failed_prepare(
    endpoint: Any, deployment_id: str, error: ApplicationError
) -> None:
    """If this deployment holds the endpoint (the API reserved it before the workflow's own
    checks refused), let go of it with the refusal as FailureReason. Best effort: the refusal
    is what the workflow reports either way."""
    if not isinstance(endpoint, str) or not endpoint:
        return
    try:
        await run_activity(
            names.RELEASE_ENDPOINT,
            ReleaseInput(
                endpoint=endpoint,
                deployment_id=deployment_id,
                reason=error.message,
                at=workflow.now(),
            ),
            options.REGISTRY,
        )
    except ActivityError:
        workflow.logger.warning("could not release endpoint %s", endpoint)
