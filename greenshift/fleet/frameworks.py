"""Which framework package an image names, at which version: a pure rule (README "Your own
model").

SageMaker's framework image tags name the framework version, not a package pin:

- scikit-learn (`sagemaker-scikit-learn:<tag>-cpu-py3`): the tag is `<major>.<minor>-<build>`,
  and AWS's container for it ships one patch release (aws/sagemaker-scikit-learn-container, the
  `docker/<tag>/` Dockerfiles and requirements.txt). Known tags map to that exact release; an
  unknown one to the newest patch of `<major>.<minor>`. Releases older than 1.4.2 were built
  against numpy 1.x, so they also get `numpy<2` (numpy 2 breaks their compiled parts at import).
  On this Python (3.11) PyPI has wheels from scikit-learn 1.2 on: `1.2-1`, `1.3-1`, `1.4-2` and
  newer install; `1.0-1` and older have no 3.11 wheel and fail the build with the installer's
  error.
- PyTorch (`pytorch-inference:<major>.<minor>[.<patch>]-cpu-py310`): `torch==<major>.<minor>.*`
  (or the exact patch when the tag names one). PyPI's Linux torch wheels carry CUDA (GBs): serving
  a PyTorch image on the built-in runtime downloads them once, into the environment cache.
"""

from __future__ import annotations

import re

from greenshift.fleet.images import BuiltinImage

# tag -> the scikit-learn release AWS's container of that tag ships.
SKLEARN_RELEASES = {
    "0.20-0": "0.20.0",
    "0.23-1": "0.23.2",
    "1.0-1": "1.0.2",
    "1.2-1": "1.2.1",
    "1.4-2": "1.4.2",
}
_VERSION = re.compile(r"^(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?(?:-\d+)?$")


class UnknownFrameworkVersionError(ValueError):
    """The image tag names no version this rule understands."""


def _release(version: str) -> tuple[int, int, int | None]:
    match = _VERSION.match(version)
    if match is None:
        raise UnknownFrameworkVersionError(f"cannot read a framework version from tag {version!r}")
    patch = match["patch"]
    return int(match["major"]), int(match["minor"]), int(patch) if patch is not None else None


def framework_requirements(image: BuiltinImage) -> list[str]:
    """The requirement lines the image implies (empty for the generic server)."""
    version = image.framework_version
    if image.flavour == "generic" or version is None:
        return []
    major, minor, patch = _release(version)
    if image.flavour == "sklearn":
        exact = SKLEARN_RELEASES.get(version)
        pin = f"scikit-learn=={exact}" if exact else f"scikit-learn=={major}.{minor}.*"
        numpy_1 = (major, minor, int(exact.split(".")[2]) if exact else 0) < (1, 4, 2)
        return [pin, "numpy<2"] if numpy_1 else [pin]
    if patch is not None:
        return [f"torch=={major}.{minor}.{patch}"]
    return [f"torch=={major}.{minor}.*"]
