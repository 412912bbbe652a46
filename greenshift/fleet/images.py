"""Which runtime serves an image: the rule, as a pure function (SEMANTICS.md 9).

- `greenshift/model-server` (any tag) is the built-in model server, generic flavour.
- SageMaker's framework image URIs for scikit-learn and PyTorch inference (the ones the SageMaker
  Python SDK's `image_uris.retrieve` returns, e.g.
  `683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3`,
  `763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310`) run on the
  built-in runtime in that framework's flavour, unless the Docker Engine holds an image of that
  exact name: then the user has AWS's real container and gets it.
- Any other image runs as a container.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

BUILTIN_IMAGE = "greenshift/model-server"

Flavour = Literal["generic", "sklearn", "pytorch"]
RuntimeKind = Literal["process", "container"]

# <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>:<tag>
_ECR = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9._/-]+):(?P<tag>[A-Za-z0-9._-]+)$"
)
_FRAMEWORKS: dict[str, Flavour] = {
    "sagemaker-scikit-learn": "sklearn",
    "pytorch-inference": "pytorch",
}


@dataclass(frozen=True)
class BuiltinImage:
    """An image the built-in runtime serves, and in which flavour. `framework_version` is the
    version the tag names (e.g. "1.2-1" for scikit-learn, "2.1" for PyTorch), None for the
    generic server."""

    flavour: Flavour
    framework_version: str | None = None


def builtin_image(image: str) -> BuiltinImage | None:
    """The built-in flavour `image` names, or None when only a container can run it."""
    name, _, _tag = image.partition(":")
    if name == BUILTIN_IMAGE:
        return BuiltinImage("generic")
    match = _ECR.match(image)
    if match is None:
        return None
    flavour = _FRAMEWORKS.get(match["repository"])
    if flavour is None:
        return None
    return BuiltinImage(flavour, match["tag"].split("-cpu")[0].split("-gpu")[0])


def runtime_kind(image: str, in_engine: Callable[[str], bool]) -> RuntimeKind:
    """`process` for the built-in runtime, `container` for the Docker Engine. `in_engine(image)`
    tells whether the engine holds an image of exactly that name (False when no engine)."""
    if image.partition(":")[0] == BUILTIN_IMAGE:
        return "process"
    if builtin_image(image) is not None and not in_engine(image):
        return "process"
    return "container"
