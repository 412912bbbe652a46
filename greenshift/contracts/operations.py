"""The operations Greenshift serves, each with its input and output contract.

Built from the generated `OPERATION_SHAPES` tables (which tools/gen_contracts.py takes from
botocore's model), so the API dispatches generically: look the operation up, `parse_request` its
input, call the handler, `to_wire()` its output. An operation AWS answers with an empty body
(`DeleteEndpoint`, `PutMetricAlarm`, ...) has `output=None`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType, ModuleType
from typing import NamedTuple

from greenshift.contracts import cloudwatch_shapes, sagemaker_shapes
from greenshift.contracts.base import AwsShape


class Operation(NamedTuple):
    """One operation: unpacks as `(input, output)` plus its name."""

    input: type[AwsShape]
    output: type[AwsShape] | None
    name: str


def _table(module: ModuleType) -> Mapping[str, Operation]:
    table: dict[str, Operation] = {}
    shapes: dict[str, tuple[str, str | None]] = module.OPERATION_SHAPES
    for name, (input_name, output_name) in shapes.items():
        output = getattr(module, output_name) if output_name is not None else None
        table[name] = Operation(getattr(module, input_name), output, name)
    return MappingProxyType(table)


SAGEMAKER: Mapping[str, Operation] = _table(sagemaker_shapes)
"""SageMaker operations by name (`X-Amz-Target: SageMaker.<name>`)."""

CLOUDWATCH: Mapping[str, Operation] = _table(cloudwatch_shapes)
"""CloudWatch operations by name (the `Action` of the query protocol, or the JSON target)."""

SERVICES: Mapping[str, Mapping[str, Operation]] = MappingProxyType(
    {"sagemaker": SAGEMAKER, "cloudwatch": CLOUDWATCH}
)


def lookup(service: str, name: str) -> Operation | None:
    """The operation, or None when the service lacks it (AWS: UnknownOperationException)."""
    return SERVICES.get(service, {}).get(name)
