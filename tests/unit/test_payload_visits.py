"""worker/payload_visits.py against the pinned SDK: its walks of an activation and a completion
change nothing without a codec or external storage, so skipping them changes nothing; with a
codec they run in full."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import temporalio.bridge.worker as sdk_bridge
from temporalio.api.common.v1 import Payload
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from worker import payload_visits


class Marking(PayloadCodec):
    """Marks each payload it decodes or encodes."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._marked(p, b"encoded") for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._marked(p, b"decoded") for p in payloads]

    @staticmethod
    def _marked(payload: Payload, how: bytes) -> Payload:
        marked = Payload()
        marked.CopyFrom(payload)
        marked.metadata["codec"] = how
        return marked


@dataclasses.dataclass(frozen=True)
class CountingConverter(DataConverter):
    """No codec, no storage; counts the sequences a codec walk hands it."""

    walked: list[int] = dataclasses.field(default_factory=list)

    async def _decode_payload_sequence(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.walked.append(len(payloads))
        return await super()._decode_payload_sequence(payloads)


def payload() -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=b'{"EndpointName":"e1"}')


def activation() -> WorkflowActivation:
    message = WorkflowActivation(run_id="run")
    job = message.jobs.add()
    job.resolve_activity.seq = 1
    job.resolve_activity.result.completed.result.CopyFrom(payload())
    message.jobs.add().initialize_workflow.arguments.add().CopyFrom(payload())
    return message


def completion() -> WorkflowActivationCompletion:
    message = WorkflowActivationCompletion(run_id="run")
    command = message.successful.commands.add()
    command.schedule_activity.arguments.add().CopyFrom(payload())
    return message


def test_install_wraps_both_functions_once() -> None:
    payload_visits.install()
    payload_visits.install()
    assert payload_visits.installed()
    for visit in (sdk_bridge.decode_activation, sdk_bridge.encode_completion):
        original = visit.__wrapped__  # type: ignore[attr-defined]
        assert not hasattr(original, "__wrapped__")  # not wrapped twice


async def test_the_sdk_walks_change_nothing_without_codec_or_storage() -> None:
    """What is skipped: the pinned SDK's own walks, with the converter every worker uses."""
    payload_visits.install()
    assert not payload_visits.visits_have_effect(pydantic_data_converter)
    message = activation()
    before = message.SerializeToString()
    await sdk_bridge.decode_activation.__wrapped__(  # type: ignore[attr-defined]
        message, pydantic_data_converter, decode_headers=False, storage_concurrency_limit=1
    )
    assert message.SerializeToString() == before
    message_out = completion()
    before = message_out.SerializeToString()
    await sdk_bridge.encode_completion.__wrapped__(  # type: ignore[attr-defined]
        message_out, pydantic_data_converter, encode_headers=False, storage_concurrency_limit=1
    )
    assert message_out.SerializeToString() == before


async def test_without_codec_or_storage_nothing_is_walked() -> None:
    payload_visits.install()
    converter = CountingConverter()
    await sdk_bridge.decode_activation(
        activation(), converter, decode_headers=False, storage_concurrency_limit=1
    )
    assert converter.walked == []
    # The same call unwrapped walks both payload sequences: the count above can see a walk.
    await sdk_bridge.decode_activation.__wrapped__(  # type: ignore[attr-defined]
        activation(), converter, decode_headers=False, storage_concurrency_limit=1
    )
    assert converter.walked == [1, 1]


async def test_with_a_codec_every_payload_is_still_decoded_and_encoded() -> None:
    payload_visits.install()
    converter = dataclasses.replace(pydantic_data_converter, payload_codec=Marking())
    assert payload_visits.visits_have_effect(converter)
    message = activation()
    await sdk_bridge.decode_activation(
        message, converter, decode_headers=False, storage_concurrency_limit=1
    )
    resolved = message.jobs[0].resolve_activity.result.completed.result
    started = message.jobs[1].initialize_workflow.arguments[0]
    assert resolved.metadata["codec"] == started.metadata["codec"] == b"decoded"
    message_out = completion()
    await sdk_bridge.encode_completion(
        message_out, converter, encode_headers=False, storage_concurrency_limit=1
    )
    scheduled = message_out.successful.commands[0].schedule_activity.arguments[0]
    assert scheduled.metadata["codec"] == b"encoded"
