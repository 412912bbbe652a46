"""greenshift.temporal.DATA_CONVERTER: temporalio's pydantic conversion, with one set of
encoding converters shared by every payload converter the SDK makes from it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, WorkflowSerializationContext

from greenshift.temporal import DATA_CONVERTER, SharedPydanticPayloadConverter
from worker import payload_visits


class Step(BaseModel):
    name: str
    at: datetime
    weights: dict[str, float]


VALUES: list[Any] = [
    Step(name="shift", at=datetime(2026, 12, 6, 20, 0, tzinfo=UTC), weights={"A": 0.25}),
    datetime(2026, 12, 6, 20, 0, 1, 500, tzinfo=UTC),
    {"EndpointName": "Shop", "Tags": [{"Key": "k", "Value": "v"}]},
    [1, "two", 3.0, None],
    None,
    b"\x00raw",
]


def test_payloads_are_the_sdk_pydantic_converters_byte_for_byte() -> None:
    ours = DATA_CONVERTER.payload_converter.to_payloads(VALUES)
    sdk = pydantic_data_converter.payload_converter.to_payloads(VALUES)
    assert [(p.metadata, p.data) for p in ours] == [(p.metadata, p.data) for p in sdk]
    hints = [Step, datetime, dict, list, type(None), bytes]
    assert DATA_CONVERTER.payload_converter.from_payloads(ours, hints) == VALUES


@pytest.mark.parametrize(
    "make",
    [
        # what the SDK does per workflow activation: a new DataConverter of the same class
        lambda: DataConverter(payload_converter_class=SharedPydanticPayloadConverter),
        lambda: DATA_CONVERTER.with_context(
            WorkflowSerializationContext(namespace="default", workflow_id="endpoint/Shop/1")
        ),
    ],
)
def test_converters_made_from_it_share_one_set_of_encoding_converters(make: Any) -> None:
    made, ours = composite(make()), composite(DATA_CONVERTER)
    assert isinstance(made, SharedPydanticPayloadConverter)
    assert list(made.converters) == list(ours.converters)
    for encoding, converter in made.converters.items():
        assert converter is ours.converters[encoding], encoding


def composite(converter: DataConverter) -> Any:
    """The payload converter of the class given, inside the SDK's transfer-type wrapper."""
    return getattr(converter.payload_converter, "_inner_payload_converter", None)


def test_it_leaves_the_sdk_payload_walks_nothing_to_do() -> None:
    # worker/payload_visits.py skips the walks only for such a converter
    assert not payload_visits.visits_have_effect(DATA_CONVERTER)
