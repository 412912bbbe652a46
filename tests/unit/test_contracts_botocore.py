"""Our contracts accept and refuse exactly what botocore's model allows, case by case.

The cases come from the model (tests/unit/test_contracts_cases.py): every constrained member
reachable from the input of each operation in `sagemaker_shapes.OPERATIONS` and
`cloudwatch_shapes.OPERATIONS`.
The number checked is printed (visible with `pytest -rA`) and written to
`.pytest_cache/contract_cases_<service>.txt`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import botocore.session
import pytest
from botocore.model import ServiceModel

from greenshift.contracts import cloudwatch_shapes, sagemaker_shapes
from greenshift.contracts.operations import CLOUDWATCH, SAGEMAKER
from greenshift.contracts.validation import parse_request
from greenshift.errors import ValidationError
from tests.unit.test_contracts_cases import MISSING, Case, aws_path, cases, document, wrapper

SERVICES = {
    "sagemaker": (sagemaker_shapes.OPERATIONS, SAGEMAKER),
    "cloudwatch": (cloudwatch_shapes.OPERATIONS, CLOUDWATCH),
}
# The issue asks for every constrained member of the SageMaker operations; CloudWatch comes too.
FLOORS = {"sagemaker": 2000, "cloudwatch": 150}


def _model(service: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def _check(model: ServiceModel, table: object, case: Case) -> str | None:
    """None when our contract agrees with the model on this case, else what went wrong."""
    doc = document(model, case)
    shape_cls = table[case.operation].input  # type: ignore[index]
    try:
        parse_request(shape_cls, doc)
    except ValidationError as exc:
        if case.ok:
            return f"refused a valid request: {exc.message}"
        return _check_message(case, exc)
    return None if case.ok else "accepted a request the model refuses"


def _check_message(case: Case, exc: ValidationError) -> str | None:
    message = exc.message
    if exc.code != "ValidationException":
        return f"wrong code {exc.code}: {message}"
    if not message.startswith("1 validation error detected: "):
        return f"not exactly one error: {message}"
    path = aws_path(case)
    if "KEY" in path:
        return None if case.phrase in message else f"wrong message: {message}"
    if case.value is MISSING:
        expected = f"Value null at '{path}' failed to satisfy constraint: {case.phrase}"
        return None if message.endswith(expected) else f"wrong message: {message}"
    wrap = wrapper(case)
    why = f"{wrap} must satisfy constraint: [{case.phrase}]" if wrap else case.phrase
    expected = f"' at '{path}' failed to satisfy constraint: {why}"
    return None if message.endswith(expected) else f"wrong message: {message}\n want {expected}"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_contracts_agree_with_botocore_model(service: str) -> None:
    operations, table = SERVICES[service]
    model = _model(service)
    all_cases = list(cases(model, list(operations)))
    failures = []
    for case in all_cases:
        problem = _check(model, table, case)
        if problem is not None:
            failures.append(f"{case.operation} {case.label} at {case.path}: {problem}")
    kinds = Counter("accept" if c.ok else "refuse" for c in all_cases)
    summary = (
        f"{service}: {len(all_cases)} botocore-derived contract cases checked "
        f"({kinds['accept']} accept, {kinds['refuse']} refuse) over {len(operations)} operations"
    )
    print(summary)
    out = Path(".pytest_cache")
    out.mkdir(exist_ok=True)
    (out / f"contract_cases_{service}.txt").write_text(summary + "\n")
    assert not failures, f"{len(failures)} disagreements, first:\n" + "\n".join(failures[:20])
    assert len(all_cases) >= FLOORS[service]


def test_every_operation_input_is_reached() -> None:
    model = _model("sagemaker")
    reached = {c.operation for c in cases(model, list(sagemaker_shapes.OPERATIONS))}
    # Operations whose input has no constrained member at all yield no case: none here.
    assert reached == set(sagemaker_shapes.OPERATIONS)
