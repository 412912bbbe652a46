"""Real models end to end (issue 19): a scikit-learn model trained here, packaged the way
SageMaker documents it, deployed through boto3 on a live stack, with its requirements installed
into an environment of its own; isolation, fast failures, two conflicting pins side by side, a
rebuilt archive at the same path, a TorchScript model served by the PyTorch flavour's defaults
(torch from the CPU wheel on this machine's disk), and a 150 s model load (marked `slow`).

The stack runs with access keys and a database URL set, so the isolation test proves that the
worker's secrets never reach a model. scikit-learn is not in Greenshift's environment: the test
trains the model with the interpreter of an environment it builds with the same requirement set
the model declares (so the suite builds that set once)."""

from __future__ import annotations

import json
import subprocess
import tarfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from greenshift.fleet.frameworks import framework_requirements
from greenshift.fleet.images import builtin_image
from greenshift.fleet.modelenv import ModelEnvironments, RequirementSet
from greenshift.loadgen import SteadyLoad
from greenshift.settings import Settings
from tests.e2e.stack import Stack, processes_mentioning, running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
GENERIC_IMAGE = "greenshift/model-server"
ACCESS_KEY, SECRET_KEY = "AKIDMODELTEST0001", "model-test-secret-do-not-leak"
SKLEARN_REQUIREMENTS = "scikit-learn==1.2.1\njoblib\n"

TRAIN = """
import sys
import joblib
import numpy as np
from sklearn.linear_model import LinearRegression

a, b, c = (float(v) for v in sys.argv[2:5])
x = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [2, 3], [5, 1]], dtype=float)
joblib.dump(LinearRegression().fit(x, a * x[:, 0] + b * x[:, 1] + c), sys.argv[1])
"""

# model_fn only: SageMaker's scikit-learn container supplies input_fn, predict_fn, output_fn.
MODEL_FN_ONLY = """
import os

import joblib


def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("greenshift-home")
    secrets = {
        "GREENSHIFT_ACCESS_KEYS": f"{ACCESS_KEY}:{SECRET_KEY}",
        "GREENSHIFT_DATABASE_URL": f"sqlite:///{home / 'registry.db'}",
    }
    with running_stack(home, extra_env=secrets) as running:
        yield running
    assert processes_mentioning(str(running.settings.home_dir)) == []


def client(stack: Stack, service: str) -> Any:
    url = stack.settings.runtime_url if service == "sagemaker-runtime" else stack.settings.api_url
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=stack.settings.region,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=30),
    )


def tarball(path: Path, files: dict[str, str | bytes]) -> Path:
    """model.tar.gz in SageMaker's layout, rebuilt in place when it exists."""
    staging = path.parent / f".{path.name}.d"
    for name, content in files.items():
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    with tarfile.open(path, "w:gz") as tar:
        for name in files:
            tar.add(staging / name, arcname=name)
    return path


def sklearn_python() -> Path:
    """The interpreter of an environment holding what the model's requirements + image name."""
    framework = framework_requirements(builtin_image(SKLEARN_IMAGE))  # type: ignore[arg-type]
    requirements = RequirementSet.of(framework, SKLEARN_REQUIREMENTS)
    envs = ModelEnvironments(Settings().env_cache)
    envs.ensure(requirements, time.monotonic() + 600, lambda _: None)
    return envs.python(requirements)


def sklearn_model(folder: Path, coefficients: tuple[float, float, float]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.joblib"
    subprocess.run(
        [str(sklearn_python()), "-c", TRAIN, str(weights), *map(str, coefficients)],
        check=True,
        timeout=120,
    )
    return tarball(
        folder / "model.tar.gz",
        {
            "model.joblib": weights.read_bytes(),
            "code/inference.py": MODEL_FN_ONLY,
            "code/requirements.txt": SKLEARN_REQUIREMENTS,
        },
    )


def create(
    sm: Any,
    name: str,
    archive: Path | str,
    image: str = GENERIC_IMAGE,
    environment: dict[str, str] | None = None,
    startup: int | None = None,
    count: int = 1,
) -> None:
    container: dict[str, Any] = {"Image": image, "ModelDataUrl": f"file://{archive}"}
    if environment:
        container["Environment"] = environment
    sm.create_model(ModelName=name, PrimaryContainer=container)
    variant: dict[str, Any] = {
        "VariantName": "AllTraffic",
        "ModelName": name,
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": count,
        "InitialVariantWeight": 1.0,
    }
    if startup is not None:
        variant["ContainerStartupHealthCheckTimeoutInSeconds"] = startup
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])


def settle(sm: Any, endpoint: str, timeout: float = 240) -> dict[str, Any]:
    """DescribeEndpoint once it is InService or Failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d: dict[str, Any] = sm.describe_endpoint(EndpointName=endpoint)
        if d["EndpointStatus"] in ("InService", "Failed") and "PendingDeploymentSummary" not in d:
            return d
        time.sleep(0.5)
    raise AssertionError(f"{endpoint} did not settle within {timeout} s")


def invoke(runtime: Any, endpoint: str, body: str, content_type: str, accept: str) -> str:
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint, Body=body, ContentType=content_type, Accept=accept
    )
    return str(answer["Body"].read().decode())


def generic_model(folder: Path, code: str, requirements: str | None = None) -> Path:
    files: dict[str, str | bytes] = {"code/inference.py": textwrap.dedent(code)}
    if requirements is not None:
        files["code/requirements.txt"] = requirements
    folder.mkdir(parents=True, exist_ok=True)
    return tarball(folder / "model.tar.gz", files)


def test_sklearn_model_fn_only_answers_csv_and_json_then_canary_under_traffic(
    stack: Stack, tmp_path: Path
) -> None:
    sm, runtime = client(stack, "sagemaker"), client(stack, "sagemaker-runtime")
    create(sm, "sk-v1", sklearn_model(tmp_path / "v1", (1, 2, 0)), SKLEARN_IMAGE, count=2)
    create(sm, "sk-v2", sklearn_model(tmp_path / "v2", (10, 0, 1)), SKLEARN_IMAGE, count=2)
    sm.create_endpoint(EndpointName="sk", EndpointConfigName="sk-v1")
    described = settle(sm, "sk")
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")

    csv = invoke(runtime, "sk", "1,2\n3,4", "text/csv", "text/csv")
    assert [round(float(v), 6) for v in csv.split()] == [5.0, 11.0]  # the prediction, not "1,2"
    answer = json.loads(invoke(runtime, "sk", "[[1, 2]]", "application/json", "application/json"))
    assert [round(v, 6) for v in answer] == [5.0]
    with pytest.raises(ClientError) as refused:
        invoke(runtime, "sk", "1,2", "text/csv", "text/html")
    error = refused.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 500
    assert "Content type text/html is not supported by this framework." in error["OriginalMessage"]

    load = SteadyLoad(
        stack.settings.runtime_url,
        "sk",
        rate=20,
        duration=120,
        payload=[[1, 2]],
        credentials=(ACCESS_KEY, SECRET_KEY),
    )
    load.start()
    try:
        sm.update_endpoint(
            EndpointName="sk",
            EndpointConfigName="sk-v2",
            DeploymentConfig={
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY",
                        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                        "WaitIntervalInSeconds": 3,
                    },
                    "TerminationWaitInSeconds": 1,
                }
            },
        )
        time.sleep(1)
        described = settle(sm, "sk")
        time.sleep(1)
    finally:
        report = load.stop()
    assert described["EndpointConfigName"] == "sk-v2", described.get("FailureReason")
    assert report.sent > 20
    assert report.failed == [], f"{len(report.failed)} failed: {report.failed[:5]}"
    retrained = json.loads(invoke(runtime, "sk", "[[1, 2]]", "application/json", "*/*"))
    assert [round(v, 6) for v in retrained] == [11.0]


SIX = """
import json

import six


def model_fn(model_dir):
    return six.__version__


def transform_fn(model, body, content_type, accept):
    return json.dumps({"six": model}), "application/json"
"""


def test_two_models_pinning_different_versions_serve_side_by_side(
    stack: Stack, tmp_path: Path
) -> None:
    sm, runtime = client(stack, "sagemaker"), client(stack, "sagemaker-runtime")
    for version in ("1.16.0", "1.17.0"):
        name = f"six-{version.replace('.', '-')}"
        create(sm, name, generic_model(tmp_path / name, SIX, f"six=={version}\n"))
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    for version in ("1.16.0", "1.17.0"):
        name = f"six-{version.replace('.', '-')}"
        described = settle(sm, name)
        assert described["EndpointStatus"] == "InService", described.get("FailureReason")
        assert json.loads(invoke(runtime, name, "{}", "application/json", "*/*")) == {
            "six": version
        }


def test_missing_dependency_fails_fast_with_the_module_error(stack: Stack, tmp_path: Path) -> None:
    sm = client(stack, "sagemaker")
    code = "import sklearn\n\ndef model_fn(model_dir):\n    return sklearn\n"
    create(sm, "nodep", generic_model(tmp_path / "nodep", code), startup=600)
    began = time.monotonic()
    sm.create_endpoint(EndpointName="nodep", EndpointConfigName="nodep")
    described = settle(sm, "nodep", timeout=120)
    took = time.monotonic() - began
    assert described["EndpointStatus"] == "Failed"
    reason = described["FailureReason"]
    assert reason.startswith(
        "The primary container for production variant AllTraffic did not pass the ping"
        " health check."
    )
    assert "ModuleNotFoundError: No module named 'sklearn'" in reason
    assert took < 90, f"failed after {took:.0f} s of a 600 s limit"


def test_a_failed_environment_build_fails_with_the_installers_words(
    stack: Stack, tmp_path: Path
) -> None:
    sm = client(stack, "sagemaker")
    code = "def model_fn(model_dir):\n    return 1\n"
    archive = generic_model(tmp_path / "badreq", code, "joblib\nthis is not a requirement !!\n")
    create(sm, "badreq", archive)
    sm.create_endpoint(EndpointName="badreq", EndpointConfigName="badreq")
    described = settle(sm, "badreq", timeout=120)
    assert described["EndpointStatus"] == "Failed"
    reason = described["FailureReason"]
    assert reason.startswith("Building the model environment failed: "), reason
    assert "this is not a requirement" in reason and len(reason) <= 1024


ISOLATION = """
import importlib.util
import json
import os
import sys


def model_fn(model_dir):
    return None


def transform_fn(model, body, content_type, accept):
    found = {m: importlib.util.find_spec(m) is not None for m in ("greenshift", "temporalio")}
    return json.dumps({"env": dict(os.environ), "found": found, "path": sys.path}), accept
"""


def test_a_model_sees_no_greenshift_setting_secret_or_package(stack: Stack, tmp_path: Path) -> None:
    sm, runtime = client(stack, "sagemaker"), client(stack, "sagemaker-runtime")
    create(sm, "iso", generic_model(tmp_path / "iso", ISOLATION), environment={"MINE": "yes"})
    sm.create_endpoint(EndpointName="iso", EndpointConfigName="iso")
    assert settle(sm, "iso")["EndpointStatus"] == "InService"
    seen = json.loads(invoke(runtime, "iso", "{}", "application/json", "application/json"))
    env: dict[str, str] = seen["env"]
    assert [k for k in env if k.startswith("GREENSHIFT")] == []
    assert not any(SECRET_KEY in v or ACCESS_KEY in v or "registry.db" in v for v in env.values())
    assert env["MINE"] == "yes" and env["SAGEMAKER_PROGRAM"] == "inference.py"
    assert {"SM_MODEL_DIR", "SAGEMAKER_BIND_TO_PORT", "PATH", "HOME", "LANG"} <= set(env)
    assert seen["found"] == {"greenshift": False, "temporalio": False}
    assert not any("site-packages" in p and ".venv" in p for p in seen["path"])


VERSIONED = """
import json

VERSION = "{version}"


def model_fn(model_dir):
    return VERSION


def transform_fn(model, body, content_type, accept):
    return json.dumps({{"version": model}}), "application/json"
"""


def test_rebuilt_archive_at_the_same_path_serves_the_new_code(stack: Stack, tmp_path: Path) -> None:
    sm, runtime = client(stack, "sagemaker"), client(stack, "sagemaker-runtime")
    folder = tmp_path / "rebuilt"
    archive = generic_model(folder, VERSIONED.format(version="one"))
    create(sm, "rb-1", archive)
    sm.create_endpoint(EndpointName="rb", EndpointConfigName="rb-1")
    assert settle(sm, "rb")["EndpointStatus"] == "InService"
    assert json.loads(invoke(runtime, "rb", "{}", "application/json", "*/*"))["version"] == "one"

    assert generic_model(folder, VERSIONED.format(version="two")) == archive  # same path
    create(sm, "rb-2", archive)
    sm.update_endpoint(EndpointName="rb", EndpointConfigName="rb-2")
    time.sleep(1)
    described = settle(sm, "rb")
    assert described["EndpointConfigName"] == "rb-2", described.get("FailureReason")
    assert json.loads(invoke(runtime, "rb", "{}", "application/json", "*/*"))["version"] == "two"


SLOW_LOAD = """
import json
import os
import time


def model_fn(model_dir):
    time.sleep(float(os.environ["LOAD_SECONDS"]))
    return "loaded"


def transform_fn(model, body, content_type, accept):
    return json.dumps({"model": model}), "application/json"
"""


@pytest.mark.slow
def test_a_model_that_loads_for_150_s_becomes_in_service(stack: Stack, tmp_path: Path) -> None:
    """150 s of model_fn against a 600 s startup limit: the health wait heartbeats on a timer,
    so the activity's 30 s heartbeat timeout never fires. Takes about 155 s."""
    sm, runtime = client(stack, "sagemaker"), client(stack, "sagemaker-runtime")
    archive = generic_model(tmp_path / "slow", SLOW_LOAD)
    create(sm, "slowload", archive, environment={"LOAD_SECONDS": "150"}, startup=600)
    began = time.monotonic()
    sm.create_endpoint(EndpointName="slowload", EndpointConfigName="slowload")
    described = settle(sm, "slowload", timeout=400)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    assert time.monotonic() - began >= 150
    assert json.loads(invoke(runtime, "slowload", "{}", "application/json", "*/*")) == {
        "model": "loaded"
    }


# PyTorch's CPU wheel lies on this machine's disk (PyPI's Linux wheels carry CUDA: GBs); a model
# that pins it by path is what a user with a local wheel or mirror writes.
TORCH_WHEELS = sorted(Path("/opt/wheels").glob("torch-2.13.0+cpu-cp311-*.whl"))
PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.13.0-cpu-py311"

SCRIPT_MODEL = """
import sys
import torch

linear = torch.nn.Linear(2, 1)
with torch.no_grad():
    linear.weight.copy_(torch.tensor([[2.0, 3.0]]))
    linear.bias.fill_(1.0)
torch.jit.script(linear).save(sys.argv[1])
"""


def test_a_torchscript_model_serves_with_the_pytorch_toolkits_defaults(
    stack: Stack, tmp_path: Path
) -> None:
    """No inference.py at all: the PyTorch flavour loads model.pt as TorchScript and answers
    JSON with the toolkit's default input, predict and output functions."""
    if not TORCH_WHEELS:
        pytest.skip("no local CPU wheel of torch 2.13.0 in /opt/wheels")
    requirements_txt = f"torch @ {TORCH_WHEELS[0].as_uri()}\n"
    framework = framework_requirements(builtin_image(PYTORCH_IMAGE))  # type: ignore[arg-type]
    assert framework == ["torch==2.13.0"]
    requirements = RequirementSet.of(framework, requirements_txt)
    envs = ModelEnvironments(Settings().env_cache)
    envs.ensure(requirements, time.monotonic() + 600, lambda _: None)  # the stack reuses it
    weights = tmp_path / "model.pt"
    subprocess.run(
        [str(envs.python(requirements)), "-c", SCRIPT_MODEL, str(weights)], check=True, timeout=120
    )
    archive = tarball(
        tmp_path / "model.tar.gz",
        {"model.pt": weights.read_bytes(), "code/requirements.txt": requirements_txt},
    )
    sm, runtime = client(stack, "sagemaker"), client(stack, "sagemaker-runtime")
    create(sm, "torch", archive, PYTORCH_IMAGE)
    sm.create_endpoint(EndpointName="torch", EndpointConfigName="torch")
    described = settle(sm, "torch")
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    answer = json.loads(
        invoke(runtime, "torch", "[[1, 2], [0, 0]]", "application/json", "application/json")
    )
    assert answer == [[9.0], [1.0]]  # 2*1 + 3*2 + 1, and the bias alone
