from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, processes_mentioning, running_stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("greenshift-home")
    with running_stack(home) as running:
        yield running
    # `greenshift up` stopped: nothing it started may survive it, model instances included.
    assert processes_mentioning(str(running.settings.home_dir)) == []


def create_model(
    sm: object, name: str, example: str, environment: dict[str, str] | None = None
) -> None:
    container: dict[str, object] = {
        "Image": "greenshift/model-server",
        "ModelDataUrl": f"file://{EXAMPLES / example}",
    }
    if environment:
        container["Environment"] = environment
    sm.create_model(ModelName=name, PrimaryContainer=container)  # type: ignore[attr-defined]


def create_config(
    sm: object, name: str, model: str, count: int = 2, variant: str = "AllTraffic"
) -> None:
    sm.create_endpoint_config(  # type: ignore[attr-defined]
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": model,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": count,
                "InitialVariantWeight": 1.0,
            }
        ],
    )
