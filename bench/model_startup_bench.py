"""CreateEndpoint -> InService for a scikit-learn model (SageMaker layout: model.joblib,
code/inference.py with model_fn only, code/requirements.txt), on a live stack through boto3:

- cold: the model's environment is built (`uv`, from uv's package cache when it holds the
  wheels: no download is timed unless --fresh-downloads), then the instance starts;
- warm: the same requirement set again: the environment is reused.

Each cold run uses a requirement set of its own (a distinct, no-op `joblib!=0.0.<n>` line), so
each really builds. One instance per endpoint; each endpoint is deleted after its run.

    .venv/bin/python bench/model_startup_bench.py [--runs 3] [--fresh-downloads] [--write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report_doc import replace_section  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fresh-downloads", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="model-startup-bench-"))
    # Train with an environment cache of its own, so the stack's starts cold.
    os.environ["GREENSHIFT_ENV_CACHE"] = str(scratch / "train-envs")
    from tests.e2e import test_real_models as models
    from tests.e2e.stack import running_stack

    archive = models.sklearn_model(scratch / "model", (1, 2, 0))
    os.environ["GREENSHIFT_ENV_CACHE"] = str(scratch / "serve-envs")
    if args.fresh_downloads:  # the stack's builds start from an empty uv cache: the first downloads
        os.environ["UV_CACHE_DIR"] = str(scratch / "uv-cache")
    models.ACCESS_KEY, models.SECRET_KEY = "bench", "bench"
    cold: list[float] = []
    warm: list[float] = []
    with running_stack(scratch / "home") as stack:
        sm = models.client(stack, "sagemaker")

        def start(name: str, tarball: Path) -> float:
            models.create(sm, name, tarball, models.SKLEARN_IMAGE)
            began = time.monotonic()
            sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
            described = models.settle(sm, name, timeout=600)
            took = time.monotonic() - began
            assert described["EndpointStatus"] == "InService", described.get("FailureReason")
            sm.delete_endpoint(EndpointName=name)
            sm.get_waiter("endpoint_deleted").wait(
                EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
            )
            return took

        for n in range(args.runs):
            variant = models.tarball(
                scratch / f"cold-{n}" / "model.tar.gz",
                {
                    "model.joblib": (scratch / "model" / "model.joblib").read_bytes(),
                    "code/inference.py": models.MODEL_FN_ONLY,
                    "code/requirements.txt": models.SKLEARN_REQUIREMENTS + f"joblib!=0.0.{n}\n",
                },
            )
            cold.append(start(f"cold-{n}", variant))
        start("prime", archive)  # builds the base set once
        for n in range(args.runs):
            warm.append(start(f"warm-{n}", archive))

    lines = [
        "CreateEndpoint -> InService, scikit-learn 1.2.1 model (`sagemaker-scikit-learn:1.2-1`"
        " image on the built-in runtime), 1 instance, through boto3 on a live stack"
        f" (`bench/model_startup_bench.py --runs {args.runs}"
        f"{' --fresh-downloads' if args.fresh_downloads else ''}`):",
        "",
        "| start | runs | median s | min s | max s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, samples in (("cold (environment built)", cold), ("warm (reused)", warm)):
        lines.append(
            f"| {label} | {len(samples)} | {statistics.median(samples):.1f} |"
            f" {min(samples):.1f} | {max(samples):.1f} |"
        )
    lines += [
        "",
        "Cold builds from uv's package cache"
        + (
            " emptied first: the first cold run downloads every wheel from PyPI."
            if args.fresh_downloads
            else " (the wheels were downloaded once before; a first-ever build adds the download of"
            " scikit-learn, scipy and numpy, about 45 MB)."
        ),
        "Both include the workflow, the data plane's reload and the first /ping; the model"
        " loads in well under a second.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        replace_section("Model startup", text)


if __name__ == "__main__":
    main()
