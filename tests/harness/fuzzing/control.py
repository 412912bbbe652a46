"""Fuzz cases for the control API: every SageMaker operation Greenshift serves, its Greenshift.*
extension operations and the CloudWatch operations, as valid-ish documents from botocore's model,
mutated documents, and raw garbage (bodies, content types, targets, methods, SigV4 headers)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import Shape, ShapeResolver

from tests.harness.fuzzing.values import encode, mutate, valid_ish
from tests.harness.fuzzing.wire import RawRequest

JSON_11 = "application/x-amz-json-1.1"
JSON_10 = "application/x-amz-json-1.0"
CLOUDWATCH_TARGET = "GraniteServiceVersion20100801"

# The extension operations' inputs (greenshift/api/deployments.py), in botocore's model form so
# one generator serves all three services. PlanDeployment takes UpdateEndpoint's input.
_NAME = {"type": "string", "max": 63, "pattern": "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"}
_EXTENSION_SHAPES: dict[str, Any] = {
    "EndpointName": _NAME,
    "Text": {"type": "string", "max": 1024},
    "DeploymentId": {"type": "string", "max": 64},
    "MaxResults": {"type": "integer", "min": 1, "max": 100},
    "DeploymentControlInput": {
        "type": "structure",
        "required": ["EndpointName"],
        "members": {
            "EndpointName": {"shape": "EndpointName"},
            "Reason": {"shape": "Text"},
            "Actor": {"shape": "Text"},
        },
    },
    "GroupName": {"type": "string", "max": 32},
    "RolloutGroupRefInput": {
        "type": "structure",
        "required": ["RolloutGroupName"],
        "members": {
            "RolloutGroupName": {"shape": "GroupName"},
            "Reason": {"shape": "Text"},
            "Actor": {"shape": "Text"},
        },
    },
    # Waves hold UpdateEndpoint requests: the fuzzer mutates the outer shape; the inner
    # requests are opaque documents here (their own operation is fuzzed on its own).
    "Update": {"type": "structure", "members": {"EndpointName": {"shape": "EndpointName"}}},
    "Updates": {"type": "list", "member": {"shape": "Update"}, "max": 10},
    "Wave": {"type": "structure", "members": {"Updates": {"shape": "Updates"}}},
    "Waves": {"type": "list", "member": {"shape": "Wave"}, "max": 20},
    "StartRolloutGroupInput": {
        "type": "structure",
        "required": ["RolloutGroupName", "Waves"],
        "members": {
            "RolloutGroupName": {"shape": "GroupName"},
            "Waves": {"shape": "Waves"},
        },
    },
    "DescribeDeploymentInput": {
        "type": "structure",
        "members": {
            "DeploymentId": {"shape": "DeploymentId"},
            "EndpointName": {"shape": "EndpointName"},
        },
    },
    "ListDeploymentsInput": {
        "type": "structure",
        "members": {
            "EndpointName": {"shape": "EndpointName"},
            "MaxResults": {"shape": "MaxResults"},
        },
    },
}
_EXTENSION_INPUTS = {
    "StartRolloutGroup": "StartRolloutGroupInput",
    "DescribeRolloutGroup": "RolloutGroupRefInput",
    "StopRolloutGroup": "RolloutGroupRefInput",
    "PauseDeployment": "DeploymentControlInput",
    "ResumeDeployment": "DeploymentControlInput",
    "PromoteDeployment": "DeploymentControlInput",
    "AbortDeployment": "DeploymentControlInput",
    "DescribeDeployment": "DescribeDeploymentInput",
    "ListDeployments": "ListDeploymentsInput",
}


@dataclass(frozen=True)
class Operation:
    service: str  # "SageMaker", "Greenshift" or CloudWatch's target prefix
    name: str
    shape: Shape | None

    @property
    def target(self) -> str:
        return f"{self.service}.{self.name}"

    @property
    def content_type(self) -> str:
        return JSON_10 if self.service == CLOUDWATCH_TARGET else JSON_11


def served_operations() -> list[Operation]:
    """Every operation the control API serves, with the botocore shape of its input."""
    from greenshift.api.app import GREENSHIFT, SAGEMAKER
    from greenshift.contracts.operations import CLOUDWATCH

    session = botocore.session.get_session()
    sagemaker = session.get_service_model("sagemaker")
    cloudwatch = session.get_service_model("cloudwatch")
    resolver = ShapeResolver(_EXTENSION_SHAPES)
    ops = [
        Operation("SageMaker", name, sagemaker.operation_model(name).input_shape)
        for name in sorted(SAGEMAKER)
    ]
    for name in sorted(GREENSHIFT):
        shape = (
            sagemaker.operation_model("UpdateEndpoint").input_shape
            if name == "PlanDeployment"
            else resolver.get_shape_by_name(_EXTENSION_INPUTS[name])
        )
        ops.append(Operation("Greenshift", name, shape))
    ops += [
        Operation(CLOUDWATCH_TARGET, name, cloudwatch.operation_model(name).input_shape)
        for name in sorted(CLOUDWATCH)
    ]
    return ops


@dataclass(frozen=True)
class Keys:
    access_key: str
    secret: str
    region: str = "us-east-1"


def sign(
    request: RawRequest, host: str, keys: Keys, service: str = "sagemaker"
) -> tuple[tuple[str, str], ...]:
    """The request's headers with a valid SigV4 signature added."""
    aws = AWSRequest(
        method=request.method,
        url=f"http://{host}{request.path}",
        data=request.body,
        headers=dict(request.headers),
    )
    aws.headers["Host"] = host
    SigV4Auth(Credentials(keys.access_key, keys.secret), service, keys.region).add_auth(aws)
    return tuple((k, v) for k, v in aws.headers.items() if k.lower() != "host")


def _garble_signature(
    headers: tuple[tuple[str, str], ...], rng: random.Random
) -> tuple[str, tuple[tuple[str, str], ...]]:
    kind = rng.choice(["missing", "garbled", "wrong_secret_sig", "bad_date", "unknown_key"])
    out = dict(headers)
    auth = out.get("Authorization", "")
    if kind == "missing":
        out.pop("Authorization", None)
    elif kind == "garbled":
        out["Authorization"] = rng.choice(
            ["AWS4-HMAC-SHA256", "Bearer x", "AWS4-HMAC-SHA256 Credential=", "é" * 300, ""]
        )
    elif kind == "wrong_secret_sig":
        out["Authorization"] = auth[:-8] + "00000000"
    elif kind == "bad_date":
        out["X-Amz-Date"] = rng.choice(["20000101T000000Z", "garbage", "", "99999999T999999Z"])
    else:
        out["Authorization"] = auth.replace("Credential=", "Credential=AKIDFUZZUNKNOWN", 1)
    return f"sigv4_{kind}", tuple(out.items())


@dataclass(frozen=True)
class ControlCase:
    label: str  # the operation (or "raw") and what was done to it, for the report
    target: str  # the X-Amz-Target the case is counted under
    request: RawRequest


def _json_request(target: str, content_type: str, body: bytes) -> RawRequest:
    return RawRequest("POST", "/", (("Content-Type", content_type), ("X-Amz-Target", target)), body)


def _raw_case(op: Operation, rng: random.Random) -> tuple[str, RawRequest]:
    kind = rng.choice(
        [
            "invalid_json",
            "not_object",
            "empty",
            "wrong_content_type",
            "unknown_target",
            "missing_target",
            "get",
            "huge_body",
            "deep_nesting",
            "bad_utf8",
            "wrong_path",
        ]
    )
    target, ctype = op.target, op.content_type
    body = b"{}"
    method, path = "POST", "/"
    if kind == "invalid_json":
        body = rng.choice([b"{", b"{'a': 1}", b'{"EndpointName": NaN}', b"\x00\x01", b'{"a":}'])
    elif kind == "not_object":
        body = rng.choice([b"[]", b"1", b'"x"', b"null", b"true"])
    elif kind == "empty":
        body = b""
    elif kind == "wrong_content_type":
        ctype = rng.choice(["text/plain", "application/json", "", "application/cbor", "é/é"])
    elif kind == "unknown_target":
        target = rng.choice(
            ["SageMaker.Nope", "Nope.CreateModel", "SageMaker.", ".", "x" * 5000, "SageMaker"]
        )
    elif kind == "missing_target":
        target = ""
    elif kind == "get":
        method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "FUZZ"])
    elif kind == "huge_body":
        body = b'{"EndpointName": "' + b"a" * rng.choice([1_000_000, 9_000_000]) + b'"}'
    elif kind == "deep_nesting":
        body = b'{"EndpointName": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    elif kind == "bad_utf8":
        body = b'{"EndpointName": "\xff\xfe\xc3"}'
    else:
        path = rng.choice(["/x", "/service/Nope/operation/X", "/%2e%2e/", "/" + "a" * 5000])
    headers = [("Content-Type", ctype)]
    if target:
        headers.append(("X-Amz-Target", target))
    return kind, RawRequest(method, path, tuple(headers), body)


def generate(
    ops: Sequence[Operation],
    rng: random.Random,
    names: Sequence[str],
    host: str,
    keys: Keys | None = None,
) -> ControlCase:
    """One random case. With `keys`, most cases are signed correctly (so they reach the
    handlers) and the rest carry a missing or broken signature."""
    op = rng.choice(ops)
    roll = rng.random()
    if roll < 0.25:
        kind, request = _raw_case(op, rng)
        label = f"raw:{kind}"
    else:
        # Deletes never name the fixtures: the other cases (and the runtime pass) need them.
        pool = () if op.name.startswith("Delete") else names
        doc = valid_ish(op.shape, rng, pool) if op.shape is not None else {}
        label = "valid_ish"
        if roll > 0.45:
            label, doc = mutate(doc, rng)
        request = _json_request(op.target, op.content_type, encode(doc))
    if keys is not None:
        service = "monitoring" if op.service == CLOUDWATCH_TARGET else "sagemaker"
        signed = sign(request, host, keys, service)
        if rng.random() < 0.3:
            kind, signed = _garble_signature(signed, rng)
            label = f"{label}+{kind}"
        request = RawRequest(request.method, request.path, signed, request.body)
    return ControlCase(f"{op.target}:{label}", op.target, request)


def call(target: str, document: dict[str, Any]) -> RawRequest:
    """A well-formed request (for the registry snapshot)."""
    content_type = JSON_10 if target.startswith(CLOUDWATCH_TARGET) else JSON_11
    return _json_request(target, content_type, json.dumps(document).encode())
