"""The CloudWatch subset Greenshift serves, and its wire protocol.

Protocol: the pinned botocore (1.43.11) lists `smithy-rpc-v2-cbor`, `json` and `query` for
cloudwatch and picks the first it prefers, `json`: AWS JSON 1.0, `POST /`,
`X-Amz-Target: GraniteServiceVersion20100801.<Operation>`, `Content-Type:
application/x-amz-json-1.0`, plus `x-amzn-query-mode: true` because CloudWatch is
"awsQueryCompatible". That is what we speak. Errors are `{"__type", "message"}` with the header
`x-amzn-query-error: <Code>;Sender`, from which botocore takes the query-era code
(`ResourceNotFound`, `InvalidParameterValue`, ...) that its modeled exceptions are keyed on.
rpc-v2-cbor (`/service/GraniteServiceVersion20100801/operation/<Op>`) is refused with a JSON
error: no client we pin sends it.

The API server mounts this by calling `handle_http(api, path, headers, body)` (or
`decode_request` / `CloudWatchApi.handle` / `encode_response` itself) for requests whose
X-Amz-Target starts with `GraniteServiceVersion20100801.`; `cloudwatch_app()` is a standalone
Starlette app for tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from greenshift.contracts import cloudwatch_shapes as cw
from greenshift.contracts.validation import parse_request
from greenshift.errors import GreenshiftError, ServiceUnavailable, ValidationError
from greenshift.metrics import stats
from greenshift.metrics.alarms import ANOMALY_COMPARISONS, COMPARISONS, TREAT_MISSING
from greenshift.metrics.math_alarms import check_metrics
from greenshift.metrics.store import AlarmRow, AlarmStore, HistoryRow, MetricStore
from greenshift.settings import Settings

log = logging.getLogger(__name__)

TARGET_PREFIX = "GraniteServiceVersion20100801."
CBOR_PATH_PREFIX = "/service/GraniteServiceVersion20100801/operation/"
JSON_10 = "application/x-amz-json-1.0"
DEFAULT_MAX_ALARMS = 5000
LIST_METRICS_PAGE = 500
UNITS = {"ModelLatency": "Microseconds", "OverheadLatency": "Microseconds"}


# --- errors: code = the query-era code botocore reports; type_name = the JSON __type --------------


class CloudWatchError(GreenshiftError):
    code = "InternalServiceError"
    type_name = "InternalServiceFault"
    http_status = 500


class CloudWatchValidationError(CloudWatchError):
    code = "ValidationError"
    type_name = "ValidationException"
    http_status = 400


class InvalidParameterValueError(CloudWatchError):
    code = "InvalidParameterValue"
    type_name = "InvalidParameterValueException"
    http_status = 400


class InvalidParameterCombinationError(CloudWatchError):
    code = "InvalidParameterCombination"
    type_name = "InvalidParameterCombinationException"
    http_status = 400


class MissingParameterError(CloudWatchError):
    code = "MissingParameter"
    type_name = "MissingRequiredParameterException"
    http_status = 400


class LimitExceededError(CloudWatchError):
    code = "LimitExceeded"
    type_name = "LimitExceededFault"
    http_status = 400


class AlarmNotFoundError(CloudWatchError):
    code = "ResourceNotFound"
    type_name = "ResourceNotFound"
    http_status = 404


class InvalidNextTokenError(CloudWatchError):
    code = "InvalidNextToken"
    type_name = "InvalidNextToken"
    http_status = 400


class InvalidFormatError(CloudWatchError):
    code = "InvalidFormat"
    type_name = "InvalidFormatFault"
    http_status = 400


class UnknownOperationError(CloudWatchError):
    code = "UnknownOperationException"
    type_name = "UnknownOperationException"
    http_status = 400


class SerializationFailureError(CloudWatchError):
    code = "SerializationException"
    type_name = "SerializationException"
    http_status = 400


# --- the operations -----------------------------------------------------------------------------


class CloudWatchApi:
    """PutMetricAlarm, DescribeAlarms, DeleteAlarms, SetAlarmState, DescribeAlarmHistory,
    GetMetricStatistics, GetMetricData and ListMetrics over the metric store."""

    def __init__(
        self,
        store: MetricStore,
        alarms_repo: AlarmStore | None = None,
        settings: Settings | None = None,
        max_alarms: int = DEFAULT_MAX_ALARMS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.alarms = alarms_repo or store.alarms
        self.settings = settings or Settings()
        self.max_alarms = max_alarms
        self.clock = clock
        self._operations: dict[str, tuple[type[cw.AwsShape], Callable[[Any], dict[str, Any]]]] = {
            "PutMetricAlarm": (cw.PutMetricAlarmInput, self.put_metric_alarm),
            "DescribeAlarms": (cw.DescribeAlarmsInput, self.describe_alarms),
            "DeleteAlarms": (cw.DeleteAlarmsInput, self.delete_alarms),
            "SetAlarmState": (cw.SetAlarmStateInput, self.set_alarm_state),
            "DescribeAlarmHistory": (cw.DescribeAlarmHistoryInput, self.describe_alarm_history),
            "GetMetricStatistics": (cw.GetMetricStatisticsInput, self.get_metric_statistics),
            "GetMetricData": (cw.GetMetricDataInput, self.get_metric_data),
            "ListMetrics": (cw.ListMetricsInput, self.list_metrics),
        }

    async def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one operation; raises CloudWatchError (or GreenshiftError) on failure."""
        return await asyncio.to_thread(self.handle_sync, operation, params)

    def handle_sync(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        entry = self._operations.get(operation)
        if entry is None:
            raise UnknownOperationError(f"Operation {operation} is not supported by Greenshift.")
        shape, method = entry
        try:
            request = parse_request(shape, params)
        except ValidationError as exc:
            if exc.code == "SerializationException":
                raise SerializationFailureError(exc.message) from None
            raise CloudWatchValidationError(exc.message) from None
        return method(request)

    def alarm_arn(self, name: str) -> str:
        s = self.settings
        return f"arn:aws:cloudwatch:{s.region}:{s.account_id}:alarm:{name}"

    # --- alarms ---------------------------------------------------------------------------
    def put_metric_alarm(self, req: cw.PutMetricAlarmInput) -> dict[str, Any]:
        _check_alarm(req)
        if self.alarms.get(req.AlarmName) is None and self.alarms.count() >= self.max_alarms:
            raise LimitExceededError(
                f"The maximum number of alarms ({self.max_alarms}) has been reached."
            )
        self.alarms.put(req.AlarmName, req.to_wire(), self.clock())
        return {}

    def describe_alarms(self, req: cw.DescribeAlarmsInput) -> dict[str, Any]:
        if req.AlarmNames and req.AlarmNamePrefix:
            raise InvalidParameterCombinationError(
                "AlarmNames and AlarmNamePrefix cannot be specified together."
            )
        composite_only = req.AlarmTypes is not None and "MetricAlarm" not in req.AlarmTypes
        if composite_only or req.ChildrenOfAlarmName or req.ParentsOfAlarmName:
            rows: list[AlarmRow] = []  # Greenshift has no composite alarms
        else:
            rows = self.alarms.all()
        if req.AlarmNames is not None:
            wanted = set(req.AlarmNames)
            rows = [r for r in rows if r.name in wanted]
        if req.AlarmNamePrefix:
            rows = [r for r in rows if r.name.startswith(req.AlarmNamePrefix)]
        if req.StateValue:
            rows = [r for r in rows if r.state_value == req.StateValue]
        if req.ActionPrefix:
            prefix = req.ActionPrefix
            rows = [
                r
                for r in rows
                if any(a.startswith(prefix) for a in r.definition.get("AlarmActions") or [])
            ]
        page, token = _page(rows, req.NextToken, req.MaxRecords or 50)
        out = cw.DescribeAlarmsOutput(
            MetricAlarms=[self._metric_alarm(r) for r in page], CompositeAlarms=[], NextToken=token
        )
        return out.to_wire()

    def _metric_alarm(self, row: AlarmRow) -> cw.MetricAlarm:
        d = dict(row.definition)
        d.pop("Tags", None)
        evaluation_periods = d.get("EvaluationPeriods")
        return cw.MetricAlarm.model_validate(
            {
                "ActionsEnabled": True,
                "OKActions": [],
                "AlarmActions": [],
                "InsufficientDataActions": [],
                "TreatMissingData": "missing",
                **d,
                "DatapointsToAlarm": d.get("DatapointsToAlarm") or evaluation_periods,
                "AlarmArn": self.alarm_arn(row.name),
                "AlarmConfigurationUpdatedTimestamp": row.config_updated,
                "StateValue": row.state_value,
                "StateReason": row.state_reason[:1023],
                "StateReasonData": row.state_reason_data,
                "StateUpdatedTimestamp": row.state_updated,
                "StateTransitionedTimestamp": row.state_transitioned,
            }
        )

    def delete_alarms(self, req: cw.DeleteAlarmsInput) -> dict[str, Any]:
        missing = self.alarms.delete(list(dict.fromkeys(req.AlarmNames)), self.clock())
        if missing:
            names = ", ".join(missing)
            raise AlarmNotFoundError(f"{len(missing)} alarm(s) not found: {names}"[:255])
        return {}

    def set_alarm_state(self, req: cw.SetAlarmStateInput) -> dict[str, Any]:
        if req.StateReasonData is not None:
            try:
                json.loads(req.StateReasonData)
            except ValueError:
                raise InvalidFormatError("StateReasonData is not valid JSON.") from None
        if not self.alarms.set_state(
            req.AlarmName, req.StateValue, req.StateReason, req.StateReasonData, self.clock()
        ):
            raise AlarmNotFoundError(f"Alarm {req.AlarmName} not found"[:255])
        return {}

    def describe_alarm_history(self, req: cw.DescribeAlarmHistoryInput) -> dict[str, Any]:
        if req.AlarmTypes is not None and "MetricAlarm" not in req.AlarmTypes:
            rows: list[HistoryRow] = []
        else:
            rows = self.alarms.history(
                req.AlarmName,
                req.HistoryItemType,
                _epoch(req.StartDate),
                _epoch(req.EndDate),
                descending=(req.ScanBy or "TimestampDescending") == "TimestampDescending",
            )
        page, token = _page(rows, req.NextToken, req.MaxRecords or 100)
        items = [
            {
                "AlarmName": r.alarm_name,
                "AlarmType": "MetricAlarm",
                "Timestamp": r.ts,
                "HistoryItemType": r.item_type,
                "HistorySummary": r.summary,
                "HistoryData": r.data[:4095],
            }
            for r in page
        ]
        return cw.DescribeAlarmHistoryOutput.model_validate(
            {"AlarmHistoryItems": items, "NextToken": token}
        ).to_wire()

    # --- metrics --------------------------------------------------------------------------
    def get_metric_statistics(self, req: cw.GetMetricStatisticsInput) -> dict[str, Any]:
        if bool(req.Statistics) == bool(req.ExtendedStatistics):
            raise InvalidParameterCombinationError(
                "Must specify either Statistics or ExtendedStatistics, but not both."
            )
        for name in req.ExtendedStatistics or []:
            if stats.parse_percentile(name) is None:
                raise InvalidParameterValueError(
                    f"The value {name} for parameter ExtendedStatistics is not supported."
                )
        start, end = _time_range(req.StartTime, req.EndTime, req.Period)
        dims = {d.Name: d.Value for d in req.Dimensions or []}
        unit = UNITS.get(req.MetricName, "None")
        datapoints: list[cw.Datapoint] = []
        if req.Unit is None or req.Unit == unit:
            seconds = self.store.seconds(req.Namespace, req.MetricName, dims, start, end)
            buckets = stats.bucketize(seconds, start, end, req.Period)
            for ts in sorted(buckets):
                agg = buckets[ts]
                point: dict[str, Any] = {"Timestamp": ts, "Unit": unit}
                for name in req.Statistics or []:
                    point[name] = agg.statistic(name)
                if req.ExtendedStatistics:
                    point["ExtendedStatistics"] = {
                        name: agg.statistic(name) for name in req.ExtendedStatistics
                    }
                datapoints.append(cw.Datapoint.model_validate(point))
        return cw.GetMetricStatisticsOutput(Label=req.MetricName, Datapoints=datapoints).to_wire()

    def get_metric_data(self, req: cw.GetMetricDataInput) -> dict[str, Any]:
        queries = req.MetricDataQueries
        if not queries:
            raise MissingParameterError("The request must contain the parameter MetricDataQueries.")
        if len(queries) > 500:
            raise CloudWatchValidationError(
                "The collection MetricDataQueries must not have more than 500 elements."
            )
        if len({q.Id for q in queries}) != len(queries):
            raise CloudWatchValidationError(
                "The values for parameter id in MetricDataQueries are not unique."
            )
        if req.NextToken is not None:
            raise InvalidNextTokenError("The service cannot find the NextToken.")
        results = []
        descending = (req.ScanBy or "TimestampDescending") == "TimestampDescending"
        for q in queries:
            if q.Expression is not None:
                raise InvalidParameterValueError(
                    f"Metric math expressions are not supported by Greenshift (query {q.Id})."
                )
            if q.MetricStat is None:
                raise CloudWatchValidationError(
                    f"Exactly one of MetricStat and Expression must be set (query {q.Id})."
                )
            ms = q.MetricStat
            if not stats.is_statistic(ms.Stat):
                raise InvalidParameterValueError(f"The statistic {ms.Stat} is not supported.")
            if ms.Metric.Namespace is None or ms.Metric.MetricName is None:
                raise MissingParameterError(
                    f"The MetricStat of query {q.Id} must name a Namespace and a MetricName."
                )
            start, end = _time_range(req.StartTime, req.EndTime, ms.Period)
            dims = {d.Name: d.Value for d in ms.Metric.Dimensions or []}
            seconds = self.store.seconds(
                ms.Metric.Namespace, ms.Metric.MetricName, dims, start, end
            )
            buckets = stats.bucketize(seconds, start, end, ms.Period)
            stamps = sorted(buckets, reverse=descending)
            if q.ReturnData is False:
                continue
            results.append(
                {
                    "Id": q.Id,
                    "Label": q.Label or ms.Metric.MetricName,
                    "Timestamps": stamps,
                    "Values": [float(buckets[t].statistic(ms.Stat) or 0.0) for t in stamps],
                    "StatusCode": "Complete",
                }
            )
        return cw.GetMetricDataOutput.model_validate(
            {"MetricDataResults": results, "Messages": []}
        ).to_wire()

    def list_metrics(self, req: cw.ListMetricsInput) -> dict[str, Any]:
        active_since = int(self.clock()) - 3 * 3600 if req.RecentlyActive == "PT3H" else None
        series = self.store.list_series(
            req.Namespace,
            req.MetricName,
            [(f.Name, f.Value) for f in req.Dimensions or []],
            active_since,
        )
        page, token = _page(series, req.NextToken, LIST_METRICS_PAGE)
        metrics = [
            {
                "Namespace": s.namespace,
                "MetricName": s.metric_name,
                "Dimensions": [{"Name": n, "Value": v} for n, v in s.dimensions],
            }
            for s in page
        ]
        return cw.ListMetricsOutput.model_validate(
            {"Metrics": metrics, "NextToken": token}
        ).to_wire()


def _check_alarm(req: cw.PutMetricAlarmInput) -> None:
    """CloudWatch's checks beyond the shape (which `parse_request` already enforced)."""
    if req.ThresholdMetricId is not None:
        raise InvalidParameterValueError(
            "Anomaly detection alarms are not supported by Greenshift."
        )
    if req.Metrics is not None:
        _check_math_alarm(req)
        return
    if req.EvaluationCriteria is not None or req.EvaluationInterval is not None:
        raise InvalidParameterValueError("PromQL alarms are not supported by Greenshift.")
    for member in (
        "Namespace",
        "MetricName",
        "Period",
        "EvaluationPeriods",
        "Threshold",
        "ComparisonOperator",
    ):
        if getattr(req, member) is None:
            raise MissingParameterError(f"The request must contain the parameter {member}.")
    if (req.Statistic is None) == (req.ExtendedStatistic is None):
        raise InvalidParameterCombinationError(
            "Exactly one element of the Statistic and ExtendedStatistic parameters must be "
            "specified."
        )
    if req.ExtendedStatistic is not None and stats.parse_percentile(req.ExtendedStatistic) is None:
        raise InvalidParameterValueError(
            f"The value {req.ExtendedStatistic} for parameter ExtendedStatistic is not supported."
        )
    assert req.Period is not None and req.EvaluationPeriods is not None
    if not stats.is_valid_alarm_period(req.Period):
        raise InvalidParameterValueError(
            f"The parameter Period must be 10, 20, 30 or a multiple of 60 (got {req.Period})."
        )
    if req.Period * req.EvaluationPeriods > 86400:
        raise CloudWatchValidationError(
            "Metrics cannot be checked across more than a day (EvaluationPeriods * Period must "
            "be <= 86400)."
        )
    if req.DatapointsToAlarm is not None and req.DatapointsToAlarm > req.EvaluationPeriods:
        raise CloudWatchValidationError(
            "DatapointsToAlarm must be less than or equal to EvaluationPeriods."
        )
    if req.ComparisonOperator in ANOMALY_COMPARISONS:
        raise InvalidParameterValueError(
            f"ComparisonOperator {req.ComparisonOperator} needs an anomaly detection band, "
            "which Greenshift does not support; use one of " + ", ".join(COMPARISONS) + "."
        )
    if req.TreatMissingData is not None and req.TreatMissingData not in TREAT_MISSING:
        raise CloudWatchValidationError(
            f"Option {req.TreatMissingData} is not supported. Supported options for parameter "
            "TreatMissingData are: " + ", ".join(TREAT_MISSING) + "."
        )


def _check_math_alarm(req: cw.PutMetricAlarmInput) -> None:
    """A metric-math alarm (greenshift.metrics.metric_math): Metrics instead of one metric."""
    for member in ("Namespace", "MetricName", "Statistic", "ExtendedStatistic", "Dimensions"):
        if getattr(req, member) is not None:
            raise InvalidParameterCombinationError(
                f"{member} cannot be specified together with Metrics."
            )
    for member in ("EvaluationPeriods", "Threshold", "ComparisonOperator"):
        if getattr(req, member) is None:
            raise MissingParameterError(f"The request must contain the parameter {member}.")
    if req.ComparisonOperator not in COMPARISONS:
        raise InvalidParameterValueError(
            f"ComparisonOperator {req.ComparisonOperator} is not supported for metric math."
        )
    problem = check_metrics(req.to_wire()["Metrics"])
    if problem is not None:
        raise CloudWatchValidationError(problem)


def _time_range(start_time: datetime, end_time: datetime, period: int) -> tuple[int, int]:
    """[start, end) in epoch seconds, start aligned down to the period (as CloudWatch rounds)."""
    if not stats.is_valid_period(period):
        raise InvalidParameterValueError(
            f"The parameter Period must be 1, 5, 10, 20, 30 or a multiple of 60 (got {period})."
        )
    if start_time >= end_time:
        raise InvalidParameterValueError(
            "The parameter StartTime must be less than the parameter EndTime."
        )
    start = stats.period_start(int(start_time.timestamp()), period)
    end = int(-(-end_time.timestamp() // 1))
    requested = -(-(end - start) // period)
    if requested > stats.MAX_DATAPOINTS:
        raise InvalidParameterCombinationError(
            f"You have requested up to {requested} datapoints, which exceeds the limit of "
            f"{stats.MAX_DATAPOINTS}. You may reduce the datapoints requested by increasing "
            "Period, or decreasing the time range."
        )
    return start, end


def _page(rows: list[Any], token: str | None, size: int) -> tuple[list[Any], str | None]:
    """Offset paging; the token is the offset of the next page."""
    offset = 0
    if token is not None:
        if not token.isdigit() or int(token) > len(rows):
            raise InvalidNextTokenError("The service cannot find the NextToken.")
        offset = int(token)
    page = rows[offset : offset + size]
    nxt = offset + size
    return page, (str(nxt) if nxt < len(rows) else None)


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


# --- wire ---------------------------------------------------------------------------------------

PROTOCOL_JSON = "json"


def decode_request(
    path: str, headers: Mapping[str, str], body: bytes
) -> tuple[str, dict[str, Any]] | None:
    """(operation, params) of a CloudWatch request, or None when the request is not CloudWatch's.

    Raises CloudWatchError for a CloudWatch request that cannot be decoded (bad JSON, the CBOR
    protocol); encode that with `encode_response` like any other error.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    target = lowered.get("x-amz-target", "")
    if target.startswith(TARGET_PREFIX):
        operation = target[len(TARGET_PREFIX) :]
        if not body or not body.strip():
            return operation, {}
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            # RecursionError: nesting deeper than the decoder's recursion limit.
            raise SerializationFailureError(f"The request body is not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise SerializationFailureError("The request body must be a JSON object.")
        return operation, document
    if path.startswith(CBOR_PATH_PREFIX):
        raise SerializationFailureError(
            "Greenshift speaks CloudWatch's AWS JSON 1.0 protocol (X-Amz-Target), not "
            "smithy-rpc-v2-cbor."
        )
    return None


def encode_response(
    result: dict[str, Any] | BaseException, protocol: str = PROTOCOL_JSON
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a result or an error, in AWS JSON 1.0."""
    if protocol != PROTOCOL_JSON:
        raise ValueError(f"unsupported protocol {protocol!r}")
    headers = {"Content-Type": JSON_10, "x-amzn-RequestId": str(uuid.uuid4())}
    if not isinstance(result, BaseException):
        return 200, headers, json.dumps(result).encode()
    code, type_name, status, message = _error_parts(result)
    fault = "Sender" if status < 500 else "Receiver"
    headers["x-amzn-query-error"] = f"{code};{fault}"
    body = {"__type": type_name, "message": message}
    return status, headers, json.dumps(body).encode()


def _error_parts(exc: BaseException) -> tuple[str, str, int, str]:
    if isinstance(exc, CloudWatchError):
        return exc.code, exc.type_name, exc.http_status, exc.message
    if isinstance(exc, ServiceUnavailable):
        return "ServiceUnavailable", "ServiceUnavailable", 503, exc.message
    if isinstance(exc, ValidationError):
        return "ValidationError", "ValidationException", 400, exc.message
    if isinstance(exc, GreenshiftError) and exc.http_status < 500:
        return exc.code, exc.code, exc.http_status, exc.message
    log.error("CloudWatch request failed", exc_info=exc)
    return "InternalServiceError", "InternalServiceFault", 500, "An internal error occurred."


async def handle_http(
    api: CloudWatchApi, path: str, headers: Mapping[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes] | None:
    """The whole round trip for one HTTP request; None when it is not a CloudWatch request."""
    try:
        decoded = decode_request(path, headers, body)
        if decoded is None:
            return None
        result: dict[str, Any] | BaseException = await api.handle(*decoded)
    except Exception as exc:
        result = exc
    return encode_response(result)


def cloudwatch_app(api: CloudWatchApi) -> Starlette:
    """A Starlette app serving only the CloudWatch subset (tests, or a separate port)."""

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        answer = await handle_http(api, request.url.path, request.headers, body)
        if answer is None:
            status, headers, payload = encode_response(
                UnknownOperationError("Not a CloudWatch request (no X-Amz-Target).")
            )
        else:
            status, headers, payload = answer
        return Response(payload, status_code=status, headers=headers)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST"])])


__all__ = [
    "CloudWatchApi",
    "CloudWatchError",
    "cloudwatch_app",
    "decode_request",
    "encode_response",
    "handle_http",
]
