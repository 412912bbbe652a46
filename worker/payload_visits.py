"""The SDK's payload visits of workflow activations and completions, skipped when they can do
nothing (issue 17).

temporalio 1.35 walks every workflow activation three times before the workflow sees it (codec
decode of storage references, retrieval from external storage, codec decode) and every
completion three times after (the encoding twins), and for each payload sequence it meets it
asks the workflow for its serialization context through the sandbox. With no payload codec and
no external storage, each walk hands every payload back unchanged. Greenshift configures
neither (greenshift/temporal.py: the pydantic converter alone), so the walks are overhead only:
skipping them takes 8-10 % off the worker's CPU per deployment, and the p50 at 50 concurrent
deployments from 1.62-1.78 s to 1.40-1.46 s (docs/benchmarks.md, "Workflows").

`install()` wraps the two SDK functions (idempotent): for a converter with neither codec nor
storage they return at once, for any other they run in full, so a codec configured later is
honoured. What a skipped walk would also have done: refuse an externally stored payload with
no storage configured (the SDK's TMPRL1105); no Greenshift worker stores payloads externally,
so no history holds one. tests/unit/test_payload_visits.py holds the pinned SDK to all of this.
"""

from __future__ import annotations

from typing import Any

import temporalio.bridge.worker as sdk_bridge
from temporalio.converter import DataConverter
from temporalio.converter._extstore import StorageOperationMetrics

_MARK = "_greenshift_skips_idle_visits"


def visits_have_effect(converter: DataConverter) -> bool:
    """Whether the SDK's walks could change a payload: only a codec or external storage can."""
    return converter.payload_codec is not None or converter.external_storage is not None


def _skipping(visit: Any) -> Any:
    async def visit_if_it_has_effect(
        message: Any, converter: DataConverter, *args: Any, **kwargs: Any
    ) -> StorageOperationMetrics:
        if visits_have_effect(converter):
            metrics: StorageOperationMetrics = await visit(message, converter, *args, **kwargs)
            return metrics
        return StorageOperationMetrics()

    setattr(visit_if_it_has_effect, _MARK, True)
    visit_if_it_has_effect.__wrapped__ = visit  # type: ignore[attr-defined]
    return visit_if_it_has_effect


def install() -> None:
    """Wrap the SDK's decode_activation and encode_completion, once per process."""
    for name in ("decode_activation", "encode_completion"):
        visit = getattr(sdk_bridge, name)
        if not getattr(visit, _MARK, False):
            setattr(sdk_bridge, name, _skipping(visit))


def installed() -> bool:
    return all(
        getattr(getattr(sdk_bridge, name), _MARK, False)
        for name in ("decode_activation", "encode_completion")
    )
