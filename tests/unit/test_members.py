"""The member audit (SEMANTICS.md 8): every member of every supported operation's input has a
rule, honoured (shown by a named test) or refused by name; the table in docs/members.md is the
rules as they are; a member botocore gains makes this fail until someone decides its fate."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.model import ServiceModel

from greenshift.contracts import sagemaker_shapes
from greenshift.contracts.support import (
    ELSEWHERE,
    REFUSED,
    RULES,
    check_supported,
    reachable_members,
    render_table,
)
from greenshift.errors import ValidationError

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = list(sagemaker_shapes.OPERATIONS)


@pytest.fixture(scope="module", name="model")
def model_fixture() -> ServiceModel:
    model: ServiceModel = botocore.session.get_session().get_service_model("sagemaker")
    return model


def test_every_member_botocore_has_has_a_rule(model: ServiceModel) -> None:
    reached = reachable_members(model, OPERATIONS)
    assert len(reached) > 100
    assert [key for key in reached if key not in RULES] == []


def test_every_rule_is_for_a_member_botocore_has(model: ServiceModel) -> None:
    reached = reachable_members(model, OPERATIONS)
    assert sorted(set(RULES) - set(reached)) == []


def test_a_member_botocore_gains_has_no_rule_and_is_reported() -> None:
    loader = botocore.session.get_session().get_component("data_loader")
    raw = copy.deepcopy(loader.load_service_model("sagemaker", "service-2"))
    raw["shapes"]["ProductionVariant"]["members"]["QuantumAccelerator"] = {"shape": "String"}
    grown = ServiceModel(raw, service_name="sagemaker")
    reached = reachable_members(grown, OPERATIONS)
    assert [key for key in reached if key not in RULES] == ["ProductionVariant.QuantumAccelerator"]
    assert "**no rule**" in render_table(grown, OPERATIONS)


def test_every_rule_names_a_test_that_exists() -> None:
    missing = []
    for key, rule in RULES.items():
        path, _, name = rule.test.partition("::")
        if path in ELSEWHERE:
            continue  # built by another area at the same time (see support.ELSEWHERE)
        file = ROOT / path
        if not name or not file.is_file() or f"def {name}(" not in file.read_text():
            missing.append(f"{key}: {rule.test}")
    assert missing == []


def test_docs_table_is_the_rules(model: ServiceModel) -> None:
    text = (ROOT / "docs" / "members.md").read_text()
    assert text == render_table(model, OPERATIONS), (
        "docs/members.md is stale: python -m greenshift.contracts.support > docs/members.md"
    )


def _paths(model: ServiceModel) -> dict[str, tuple[str, list[tuple[str, bool]]]]:
    """For each `Shape.Member`, one operation and the chain of (member, is_list) reaching it."""
    found: dict[str, tuple[str, list[tuple[str, bool]]]] = {}

    def visit(shape: Any, op: str, chain: list[tuple[str, bool]], seen: set[str]) -> None:
        if shape.type_name != "structure" or shape.name in seen:
            return
        for name, member in shape.members.items():
            key = f"{shape.name}.{name}"
            is_list = member.type_name == "list"
            step = [*chain, (name, is_list)]
            found.setdefault(key, (op, step))
            rule = RULES.get(key)
            if rule is None or rule.status == REFUSED:
                continue
            visit(member.member if is_list else member, op, step, seen | {shape.name})

    for op in OPERATIONS:
        visit(model.operation_model(op).input_shape, op, [], set())
    return found


def _document(chain: list[tuple[str, bool]], value: Any) -> dict[str, Any]:
    doc: Any = value
    for i, (name, is_list) in enumerate(reversed(chain)):
        last = i == 0
        doc = {name: [doc] if is_list and not last else doc}
    assert isinstance(doc, dict)
    return doc


def test_every_refused_member_is_refused_by_name(model: ServiceModel) -> None:
    paths = _paths(model)
    refused = {k: r for k, r in RULES.items() if r.status == REFUSED or r.refused_when}
    assert len(refused) > 30
    for key, rule in refused.items():
        operation, chain = paths[key]
        shape = getattr(sagemaker_shapes, sagemaker_shapes.OPERATION_SHAPES[operation][0])
        doc = _document(chain, rule.example)
        with pytest.raises(ValidationError) as exc:
            check_supported(shape, doc)
        message = exc.value.message
        assert exc.value.code == "ValidationException"
        assert message.startswith("Greenshift does not support "), key
        assert key.split(".")[1] in message, (key, message)


def test_honoured_values_of_partly_refused_members_pass() -> None:
    check_supported(
        sagemaker_shapes.CreateModelInput,
        {
            "ModelName": "m",
            "Containers": [{"Image": "greenshift/model-server", "Mode": "SingleModel"}],
            "InferenceExecutionConfig": {"Mode": "Serial"},
            "EnableNetworkIsolation": False,
            "ExecutionRoleArn": "arn:aws:iam::000000000000:role/r",
            "Tags": [{"Key": "a", "Value": "b"}],
        },
    )


def test_refusals_name_the_path() -> None:
    doc = {
        "EndpointConfigName": "c",
        "ProductionVariants": [
            {"VariantName": "A", "ModelName": "m"},
            {"VariantName": "B", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 2048}},
        ],
    }
    with pytest.raises(ValidationError) as exc:
        check_supported(sagemaker_shapes.CreateEndpointConfigInput, doc)
    assert exc.value.message.startswith(
        "Greenshift does not support ServerlessConfig (at 'ProductionVariants[1].ServerlessConfig'"
    )
    with pytest.raises(ValidationError) as exc:
        check_supported(
            sagemaker_shapes.CreateModelInput,
            {"ModelName": "m", "PrimaryContainer": {"Mode": "MultiModel"}},
        )
    assert exc.value.message.startswith(
        "Greenshift does not support Mode MultiModel (at 'PrimaryContainer.Mode')"
    )
