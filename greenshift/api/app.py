"""The control API as an ASGI app: AWS JSON 1.1 dispatch, SigV4, request ids, error mapping.

`POST /` with `X-Amz-Target: SageMaker.<Operation>` or `Greenshift.<Operation>` runs a handler
`(ctx, document) -> document`. CloudWatch requests (`X-Amz-Target:
GraniteServiceVersion20100801.<Operation>` in JSON 1.0, or `POST
/service/GraniteServiceVersion20100801/operation/<Operation>` in Smithy RPC v2 CBOR) go to the
CloudWatch wire adapter in the context. Every response carries `x-amzn-RequestId`; every failure
goes through `greenshift.api.errors`, so nothing escapes as a bare 500.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from greenshift.api import deployments, endpoint_configs, endpoints, groups, models, tags
from greenshift.api.context import ApiContext, principal
from greenshift.api.errors import JSON_11, SerializationError, UnknownOperationError, error_response
from greenshift.settings import parse_access_keys

log = logging.getLogger("greenshift.api")

Handler = Callable[[ApiContext, dict[str, Any]], Awaitable[dict[str, Any]]]

SAGEMAKER: Mapping[str, Handler] = {
    "CreateModel": models.create_model,
    "DescribeModel": models.describe_model,
    "DeleteModel": models.delete_model,
    "ListModels": models.list_models,
    "CreateEndpointConfig": endpoint_configs.create_endpoint_config,
    "DescribeEndpointConfig": endpoint_configs.describe_endpoint_config,
    "DeleteEndpointConfig": endpoint_configs.delete_endpoint_config,
    "ListEndpointConfigs": endpoint_configs.list_endpoint_configs,
    "CreateEndpoint": endpoints.create_endpoint,
    "DescribeEndpoint": endpoints.describe_endpoint,
    "UpdateEndpoint": endpoints.update_endpoint,
    "DeleteEndpoint": endpoints.delete_endpoint,
    "ListEndpoints": endpoints.list_endpoints,
    "UpdateEndpointWeightsAndCapacities": endpoints.update_endpoint_weights_and_capacities,
    "AddTags": tags.add_tags,
    "ListTags": tags.list_tags,
    "DeleteTags": tags.delete_tags,
}

GREENSHIFT: Mapping[str, Handler] = {
    "PlanDeployment": deployments.plan_deployment,
    "PauseDeployment": deployments.pause_deployment,
    "ResumeDeployment": deployments.resume_deployment,
    "PromoteDeployment": deployments.promote_deployment,
    "AbortDeployment": deployments.abort_deployment,
    "DescribeDeployment": deployments.describe_deployment,
    "ListDeployments": deployments.list_deployments,
    "StartRolloutGroup": groups.start_rollout_group,
    "DescribeRolloutGroup": groups.describe_rollout_group,
    "StopRolloutGroup": groups.stop_rollout_group,
}

SERVICES: Mapping[str, Mapping[str, Handler]] = {"SageMaker": SAGEMAKER, "Greenshift": GREENSHIFT}
CLOUDWATCH_TARGET = "GraniteServiceVersion20100801"
# SigV4 signing names accepted on this port: SageMaker, CloudWatch ("monitoring"), extensions.
SIGNING_SERVICES = frozenset({"sagemaker", "monitoring", "greenshift", "logs"})
# CloudWatch Logs (botocore's `logs`: JSON 1.1), served by greenshift.logs.api.
LOGS_TARGET = "Logs_20140328"
# The signing name each target must be scoped to: a CloudWatch-scoped signature is no
# SageMaker authorisation. The extensions accept both the CLI's `sagemaker` and their own.
_SCOPE = {
    "SageMaker": ("sagemaker",),
    "Greenshift": ("sagemaker", "greenshift"),
    CLOUDWATCH_TARGET: ("monitoring",),
    LOGS_TARGET: ("logs",),
}
# A request body larger than this is refused before it is parsed.
MAX_BODY_BYTES = 8 * 1024 * 1024


def decode_json(body: bytes) -> dict[str, Any]:
    """A JSON 1.1 body: empty means {}, anything but an object is a SerializationException."""
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: nesting deeper than the decoder's recursion limit (a few KB of "[").
        raise SerializationError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SerializationError("The request body must be a JSON object.")
    return doc


def build_app(ctx: ApiContext, lifespan_tasks: list[Any] | None = None) -> Starlette:
    """The ASGI app over `ctx`. `lifespan_tasks`: async callables run while the app serves
    (e.g. the event source), cancelled at shutdown."""
    keys = parse_access_keys(ctx.settings.access_keys)

    def authenticate(request: Request, body: bytes, services: Any = SIGNING_SERVICES) -> str | None:
        if not keys:
            return None
        from greenshift.api import sigv4

        access_key: str = sigv4.verify(
            request.method,
            request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
            request.url.query,
            dict(request.headers),
            body,
            keys,
            ctx.clock(),
            ctx.settings.region,
            services,
        )
        return access_key

    async def read_authenticated(request: Request, services: Any = SIGNING_SERVICES) -> bytes:
        """The body of a request whose headers passed SigV4, read up to MAX_BODY_BYTES.

        Headers are checked before a byte of the body is read, and the size while reading (a
        chunked body has no Content-Length to check first), so an anonymous client cannot make
        the API buffer more than the limit (issue 14 item 4)."""
        if keys:
            from greenshift.api import sigv4

            sigv4.check_headers(
                request.headers.items(), keys, ctx.clock(), ctx.settings.region, services
            )
        return await read_body(request)

    async def read_body(request: Request) -> bytes:
        too_big = SerializationError(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        size = int(request.headers.get("content-length") or 0)
        if size > MAX_BODY_BYTES:
            raise too_big
        chunks: list[bytes] = []
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > MAX_BODY_BYTES:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    async def dispatch(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            target = request.headers.get("x-amz-target", "")
            service, _, operation = target.partition(".")
            scope = _SCOPE.get(service, SIGNING_SERVICES)
            body = await read_authenticated(request, scope)
            token = principal.set(authenticate(request, body, scope))
            try:
                if service == CLOUDWATCH_TARGET:
                    return await _cloudwatch(ctx, request, body, request_id)
                if service == LOGS_TARGET:
                    return await _logs(ctx, operation, body, request_id)
                handler = SERVICES.get(service, {}).get(operation)
                if handler is None:
                    raise UnknownOperationError(
                        f"Operation {target!r} is not supported."
                        if target
                        else "Missing X-Amz-Target header."
                    )
                result = await handler(ctx, decode_json(body))
            finally:
                principal.reset(token)
            return Response(
                json.dumps(result), media_type=JSON_11, headers={"x-amzn-RequestId": request_id}
            )
        except Exception as exc:
            return error_response(exc, request_id)

    async def cloudwatch_rpc(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            body = await read_authenticated(request, _SCOPE[CLOUDWATCH_TARGET])
            token = principal.set(authenticate(request, body, _SCOPE[CLOUDWATCH_TARGET]))
            try:
                if request.path_params["service"] != CLOUDWATCH_TARGET:
                    raise UnknownOperationError(
                        f"Service {request.path_params['service']!r} is not supported."
                    )
                return await _cloudwatch(ctx, request, body, request_id)
            finally:
                principal.reset(token)
        except Exception as exc:
            return error_response(exc, request_id)

    async def health(request: Request) -> Response:
        return Response(
            json.dumps({"service": "greenshift", "api": "sagemaker"}),
            media_type="application/json",
            headers={"x-amzn-RequestId": str(uuid.uuid4())},
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        import anyio

        async with anyio.create_task_group() as tg:
            for task in lifespan_tasks or []:
                tg.start_soon(task)
            yield
            tg.cancel_scope.cancel()

    return Starlette(
        routes=[
            Route("/", dispatch, methods=["POST"]),
            Route("/", health, methods=["GET"]),
            Route("/service/{service}/operation/{operation}", cloudwatch_rpc, methods=["POST"]),
        ],
        lifespan=lifespan,
    )


async def _cloudwatch(ctx: ApiContext, request: Request, body: bytes, request_id: str) -> Response:
    """Hand a CloudWatch request to the metrics package (it owns the codecs and its errors)."""
    if ctx.cloudwatch is None:
        raise UnknownOperationError("CloudWatch operations are not served here.")
    from greenshift.metrics.cloudwatch_api import handle_http

    answer = await handle_http(ctx.cloudwatch, request.url.path, dict(request.headers), body)
    if answer is None:
        raise UnknownOperationError("Not a CloudWatch request.")
    status, headers, payload = answer
    headers = {**headers, "x-amzn-RequestId": request_id}
    return Response(payload, status_code=status, headers=headers)


async def _logs(ctx: ApiContext, operation: str, body: bytes, request_id: str) -> Response:
    """Hand a CloudWatch Logs request to the logs package."""
    result = None if ctx.logs is None else await ctx.logs.handle(operation, decode_json(body))
    if result is None:
        raise UnknownOperationError(f"Operation '{LOGS_TARGET}.{operation}' is not supported.")
    return Response(
        json.dumps(result), media_type=JSON_11, headers={"x-amzn-RequestId": request_id}
    )
