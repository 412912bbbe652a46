"""Generate pydantic contracts from botocore's service model.

botocore's model is the authority for every shape, limit, pattern and enum (SEMANTICS.md), so the
contracts are generated from it rather than typed by hand: a hand-written copy would drift.

    python tools/gen_contracts.py sagemaker > greenshift/contracts/sagemaker_shapes.py
    python tools/gen_contracts.py cloudwatch > greenshift/contracts/cloudwatch_shapes.py

The output is committed; `tests/unit/test_contracts.py` fails when it is stale (`make contracts`
regenerates it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import botocore.session
from botocore.model import ServiceModel, Shape

OPERATIONS: dict[str, list[str]] = {
    "sagemaker": [
        "CreateModel",
        "DescribeModel",
        "DeleteModel",
        "ListModels",
        "CreateEndpointConfig",
        "DescribeEndpointConfig",
        "DeleteEndpointConfig",
        "ListEndpointConfigs",
        "CreateEndpoint",
        "DescribeEndpoint",
        "UpdateEndpoint",
        "DeleteEndpoint",
        "ListEndpoints",
        "UpdateEndpointWeightsAndCapacities",
        "AddTags",
        "ListTags",
        "DeleteTags",
    ],
    "cloudwatch": [
        "PutMetricAlarm",
        "DescribeAlarms",
        "DeleteAlarms",
        "SetAlarmState",
        "DescribeAlarmHistory",
        "GetMetricStatistics",
        "GetMetricData",
        "ListMetrics",
    ],
}

# Local extensions, the only places where the contracts differ from botocore's model on purpose.
# DESIGN.md: `ModelDataUrl` may be a `file://` path (a directory or a .tar.gz) on this host. AWS's
# message keeps quoting AWS's own pattern, so a URL refused here reads as it would on AWS.
PATTERN_EXTENSIONS: dict[tuple[str, str], str] = {
    ("sagemaker", "Url"): r"(https|s3)://([^/]+)/?(.*)|file://.+",
    # DataCaptureConfig's destination: a local directory, as greenshift/capture writes it.
    ("sagemaker", "DestinationS3Uri"): r"file://.+",
}

# Python names that a botocore shape name must not shadow in the generated module.
RESERVED = {"Annotated", "Any", "BaseModel", "Field", "Literal", "StringConstraints", "datetime"}


def collect(model: ServiceModel, operations: Iterable[str]) -> list[Shape]:
    """Every shape reachable from the operations, dependencies first."""
    ordered: list[Shape] = []
    seen: set[str] = set()

    def visit(shape: Shape) -> None:
        if shape.name in seen:
            return
        seen.add(shape.name)
        if shape.type_name == "structure":
            for member in shape.members.values():
                visit(member)
        elif shape.type_name == "list":
            visit(shape.member)
        elif shape.type_name == "map":
            visit(shape.key)
            visit(shape.value)
        ordered.append(shape)

    for name in operations:
        op = model.operation_model(name)
        for shape in (op.input_shape, op.output_shape):
            if shape is not None:
                visit(shape)
        for error in op.error_shapes:
            visit(error)
    return ordered


def operation_shapes(model: ServiceModel, service: str) -> dict[str, tuple[str, str | None]]:
    """Each operation's input and output shape names (None: the operation returns nothing)."""
    table: dict[str, tuple[str, str | None]] = {}
    for name in OPERATIONS[service]:
        op = model.operation_model(name)
        assert op.input_shape is not None, name
        output = op.output_shape
        table[name] = (py_name(op.input_shape), py_name(output) if output is not None else None)
    return table


def shadowed_types(shape: Shape) -> list[str]:
    """Shape names a structure uses after a member of the same name was declared."""
    declared: set[str] = set()
    shadowed: list[str] = []
    for member_name, member in shape.members.items():
        type_ = py_name(member)
        if type_ in declared and type_ not in shadowed:
            shadowed.append(type_)
        declared.add(member_name)
    return shadowed


def py_name(shape: Shape) -> str:
    return shape.name + "_" if shape.name in RESERVED else shape.name


def scalar_alias(shape: Shape, service: str = "") -> str | None:
    """The Annotated alias of a scalar shape, or None when it has no constraint worth naming."""
    meta = shape.metadata
    t = shape.type_name
    if t == "string":
        if shape.enum:
            values = ", ".join(repr(v) for v in shape.enum)
            return f"Literal[{values}]"
        args = []
        if "min" in meta:
            args.append(f"min_length={meta['min']}")
        if "max" in meta:
            args.append(f"max_length={meta['max']}")
        parts = ["str"]
        if args:
            parts.append(f"StringConstraints({', '.join(args)})")
        if "pattern" in meta:
            extension = PATTERN_EXTENSIONS.get((service, shape.name))
            also = f", also={extension!r}" if extension else ""
            parts.append(f"AwsPattern({meta['pattern']!r}{also})")
        return f"Annotated[{', '.join(parts)}]" if len(parts) > 1 else "str"
    if t in ("integer", "long", "float", "double"):
        base = "int" if t in ("integer", "long") else "float"
        args = []
        if "min" in meta:
            args.append(f"ge={meta['min']}")
        if "max" in meta:
            args.append(f"le={meta['max']}")
        return f"Annotated[{base}, Field({', '.join(args)})]" if args else base
    if t == "boolean":
        return "bool"
    if t == "timestamp":
        return "Timestamp"
    if t == "blob":
        return "bytes"
    return None


def container_alias(shape: Shape) -> str:
    meta = shape.metadata
    if shape.type_name == "list":
        args = []
        if "min" in meta:
            args.append(f"min_length={meta['min']}")
        if "max" in meta:
            args.append(f"max_length={meta['max']}")
        inner = f"list[{py_name(shape.member)}]"
        return f"Annotated[{inner}, Field({', '.join(args)})]" if args else inner
    assert shape.type_name == "map"
    args = []
    if "min" in meta:
        args.append(f"min_length={meta['min']}")
    if "max" in meta:
        args.append(f"max_length={meta['max']}")
    inner = f"dict[{py_name(shape.key)}, {py_name(shape.value)}]"
    return f"Annotated[{inner}, Field({', '.join(args)})]" if args else inner


def render(service: str) -> str:
    model = botocore.session.get_session().get_service_model(service)
    shapes = collect(model, OPERATIONS[service])
    out = [
        f'"""Wire shapes of the {service} operations Greenshift serves.',
        "",
        f"GENERATED by tools/gen_contracts.py from botocore {botocore.__version__}'s"
        f" {service} model;",
        "do not edit. Names, members, limits, patterns and enums are exactly the model's.",
        '"""',
        "",
        "# Lint: pyproject's per-file-ignores allow the wire's PascalCase and long lines here.",
        "# No `from __future__ import annotations`: shapes are defined dependencies first.",
        "from typing import Annotated, Literal",
        "",
        "from pydantic import Field, StringConstraints",
        "",
        "from greenshift.contracts.base import AwsPattern, AwsShape, Timestamp",
        "",
        f"OPERATIONS = {OPERATIONS[service]!r}",
        "",
        "# Operation -> (input shape, output shape or None), from the model.",
        "OPERATION_SHAPES: dict[str, tuple[str, str | None]] = "
        f"{operation_shapes(model, service)!r}",
        "",
    ]
    for shape in shapes:
        name = py_name(shape)
        if shape.type_name == "structure":
            out.append("")
            # A member named like a shape hides that shape from mypy for the rest of the class
            # body (CompositeAlarm.AlarmArn, then ActionsSuppressor: AlarmArn): refer to such
            # shapes through a private module-level alias.
            shadowed = shadowed_types(shape)
            for type_name in shadowed:
                out.append(f"_{type_name} = {type_name}")
            out.append(f"class {name}(AwsShape):")
            doc = f"botocore shape `{shape.name}`."
            out.append(f'    """{doc}"""')
            out.append("")
            required = set(shape.required_members)
            if not shape.members:
                out.append("    pass")
            for member_name, member in shape.members.items():
                type_ = py_name(member)
                if type_ in shadowed:
                    type_ = f"_{type_}"
                if member_name in required:
                    out.append(f"    {member_name}: {type_}")
                else:
                    # Annotation only, no `= None`: a class attribute would shadow a shape of
                    # the same name before the annotation is evaluated.
                    out.append(f"    {member_name}: Annotated[{type_} | None, Field(default=None)]")
            out.append("")
        elif shape.type_name in ("list", "map"):
            out.append(f"{name} = {container_alias(shape)}")
        else:
            alias = scalar_alias(shape, service)
            out.append(f"{name} = {alias}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render(sys.argv[1] if len(sys.argv) > 1 else "sagemaker"))
