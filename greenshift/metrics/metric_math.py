"""CloudWatch metric math for alarms (`PutMetricAlarm` with `Metrics`), as pure functions.

An alarm on "the new fleet's 5XX rate exceeds the old fleet's by 5 points" is standard boto3:

    Metrics=[{"Id": "new", "MetricStat": {...EndpointConfigName new..., "Stat": "Average"},
              "ReturnData": False},
             {"Id": "old", "MetricStat": {...EndpointConfigName old..., "Stat": "Average"},
              "ReturnData": False},
             {"Id": "gap", "Expression": "FILL(new, 0) - FILL(old, 0)", "ReturnData": True}],
    Threshold=0.05, ComparisonOperator="GreaterThanThreshold"

Supported: numbers, query ids, `+ - * /`, comparisons `> < >= <= == !=` (1 or 0), `AND`/`OR`
(`&&`/`||`), unary minus, parentheses, and the functions `FILL(x, value)`, `IF(cond, a[, b])`,
`METRICS()` / `METRICS("prefix")`, `SUM`, `AVG`, `MIN`, `MAX` and `ABS`. Series are aligned on the
alarm's periods; a missing datapoint (None) stays missing through arithmetic unless FILLed, as in
CloudWatch. `SUM`/`AVG`/`MIN`/`MAX` of an array (METRICS() or several arguments) combine the
series period by period; of one series they give one value (CloudWatch's rule), spread over every
period. Division by zero is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Series = list[float | None]
Value = float | Series | list[Series]  # scalar, one time series, or an array of them

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)|(?P<str>\"[^\"]*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>>=|<=|==|!=|&&|\|\||[-+*/(),<>]))"
)
FUNCTIONS = ("FILL", "IF", "METRICS", "SUM", "AVG", "MIN", "MAX", "ABS")
# The built-in baseline judge (greenshift.metrics.judge): the whole expression of an alarm's
# returned query, over two MetricStat ids (new fleet, old fleet).
JUDGES = ("ERROR_JUDGE", "LATENCY_JUDGE")


class MetricMathError(ValueError):
    """An expression Greenshift cannot read or evaluate; the message says where."""


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Ref:
    id: str


@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Neg:
    operand: Node


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


Node = Num | Ref | Text | Neg | BinOp | Call

# Lowest first; every level is left-associative.
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("||", "OR"),
    ("&&", "AND"),
    ("==", "!=", ">", "<", ">=", "<="),
    ("+", "-"),
    ("*", "/"),
)


def tokenize(expression: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    text = expression.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise MetricMathError(f"Unexpected character at {pos + 1} in {expression!r}.")
        tokens.append(match.group(match.lastgroup or "op"))
        pos = match.end()
    return tokens


def parse(expression: str) -> Node:
    tokens = tokenize(expression)
    node, pos = _parse_level(tokens, 0, 0, expression)
    if pos != len(tokens):
        raise MetricMathError(f"Unexpected {tokens[pos]!r} in {expression!r}.")
    return node


def _parse_level(tokens: list[str], pos: int, level: int, src: str) -> tuple[Node, int]:
    if level == len(_LEVELS):
        return _parse_unary(tokens, pos, src)
    left, pos = _parse_level(tokens, pos, level + 1, src)
    while pos < len(tokens) and tokens[pos].upper() in _LEVELS[level]:
        op = {"OR": "||", "AND": "&&"}.get(tokens[pos].upper(), tokens[pos])
        right, pos = _parse_level(tokens, pos + 1, level + 1, src)
        left = BinOp(op, left, right)
    return left, pos


def _parse_unary(tokens: list[str], pos: int, src: str) -> tuple[Node, int]:
    if pos >= len(tokens):
        raise MetricMathError(f"The expression {src!r} ends too early.")
    token = tokens[pos]
    if token == "-":
        operand, pos = _parse_unary(tokens, pos + 1, src)
        return Neg(operand), pos
    if token == "(":
        node, pos = _parse_level(tokens, pos + 1, 0, src)
        return node, _expect(tokens, pos, ")", src)
    if token[0].isdigit() or token[0] == ".":
        return Num(float(token)), pos + 1
    if token[0] == '"':
        return Text(token[1:-1]), pos + 1
    if token[0].isalpha() or token[0] == "_":
        if pos + 1 < len(tokens) and tokens[pos + 1] == "(":
            name = token.upper()
            if name not in FUNCTIONS + JUDGES:
                raise MetricMathError(
                    f"The function {token} is not supported; Greenshift has "
                    + ", ".join(FUNCTIONS + JUDGES)
                    + "."
                )
            args: list[Node] = []
            pos += 2
            if pos < len(tokens) and tokens[pos] == ")":
                return Call(name, ()), pos + 1
            while True:
                arg, pos = _parse_level(tokens, pos, 0, src)
                args.append(arg)
                if pos < len(tokens) and tokens[pos] == ",":
                    pos += 1
                    continue
                return Call(name, tuple(args)), _expect(tokens, pos, ")", src)
        return Ref(token), pos + 1
    raise MetricMathError(f"Unexpected {token!r} in {src!r}.")


def _expect(tokens: list[str], pos: int, want: str, src: str) -> int:
    if pos >= len(tokens) or tokens[pos] != want:
        raise MetricMathError(f"Expected {want!r} in {src!r}.")
    return pos + 1


def references(node: Node) -> set[str]:
    """The query ids an expression reads (METRICS() reads the metrics, not named here)."""
    if isinstance(node, Ref):
        return {node.id}
    if isinstance(node, Neg):
        return references(node.operand)
    if isinstance(node, BinOp):
        return references(node.left) | references(node.right)
    if isinstance(node, Call):
        return set().union(*(references(a) for a in node.args)) if node.args else set()
    return set()


# --- evaluation ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Env:
    """What an expression is evaluated over: every query id's series so far (metrics and
    expressions already evaluated), which ids are metrics (METRICS() returns those), and the
    number of periods."""

    values: dict[str, Series]
    metric_ids: tuple[str, ...]
    length: int


def _missing(length: int) -> Series:
    return [None] * length


def evaluate(node: Node, env: Env) -> Value:
    """Evaluate over aligned series."""
    metrics, length = env.values, env.length
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Text):
        raise MetricMathError(f'A string ("{node.value}") is only an argument of METRICS().')
    if isinstance(node, Ref):
        if node.id not in metrics:
            raise MetricMathError(f"The expression refers to {node.id}, which is not a query id.")
        return metrics[node.id]
    if isinstance(node, Neg):
        return _map(lambda v: -v, evaluate(node.operand, env))
    if isinstance(node, BinOp):
        return _binary(node.op, evaluate(node.left, env), evaluate(node.right, env), length)
    return _call(node, env)


def as_series(value: Value, length: int) -> Series:
    """The value as one time series (a scalar spread over every period)."""
    if isinstance(value, int | float):
        return [float(value)] * length
    if value and isinstance(value[0], list):
        raise MetricMathError("An alarm's expression must give one time series, not an array.")
    return list(value)  # type: ignore[arg-type]


_OPS: dict[str, Callable[[float, float], float | None]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: None if b == 0 else a / b,
    ">": lambda a, b: float(a > b),
    "<": lambda a, b: float(a < b),
    ">=": lambda a, b: float(a >= b),
    "<=": lambda a, b: float(a <= b),
    "==": lambda a, b: float(a == b),
    "!=": lambda a, b: float(a != b),
    "&&": lambda a, b: float(bool(a) and bool(b)),
    "||": lambda a, b: float(bool(a) or bool(b)),
}


def _binary(op: str, left: Value, right: Value, length: int) -> Value:
    fn = _OPS[op]
    if _is_array(left) or _is_array(right):
        raise MetricMathError(f"The operator {op} needs numbers or single time series.")
    if isinstance(left, int | float) and isinstance(right, int | float):
        result = fn(float(left), float(right))
        return result if result is not None else _missing(length)
    a, b = as_series(left, length), as_series(right, length)
    return [None if x is None or y is None else fn(x, y) for x, y in zip(a, b, strict=True)]


def _map(fn: Callable[[float], float], value: Value) -> Value:
    if isinstance(value, int | float):
        return fn(float(value))
    if _is_array(value):
        return [_map_series(fn, s) for s in value]  # type: ignore[arg-type]
    return _map_series(fn, value)  # type: ignore[arg-type]


def _map_series(fn: Callable[[float], float], series: Series) -> Series:
    return [None if v is None else fn(v) for v in series]


def _is_array(value: Value) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], list)


_REDUCERS: dict[str, Callable[[Sequence[float]], float]] = {
    "SUM": sum,
    "AVG": lambda xs: sum(xs) / len(xs),
    "MIN": min,
    "MAX": max,
}


def judge_of(node: Node) -> tuple[str, str, str] | None:
    """(judge, new id, old id) when the expression is a judge call over two ids."""
    if isinstance(node, Call) and node.name in JUDGES:
        if len(node.args) != 2 or not all(isinstance(a, Ref) for a in node.args):
            raise MetricMathError(f"{node.name} takes two metric ids: {node.name}(new, old).")
        new, old = node.args
        assert isinstance(new, Ref) and isinstance(old, Ref)
        return node.name, new.id, old.id
    return None


def _call(node: Call, env: Env) -> Value:
    name, args, length = node.name, node.args, env.length
    if name in JUDGES:
        raise MetricMathError(f"{name} must be the whole expression of the returned metric.")
    if name == "METRICS":
        prefix = ""
        if args:
            if len(args) != 1 or not isinstance(args[0], Text):
                raise MetricMathError('METRICS takes nothing or one string: METRICS("prefix").')
            prefix = args[0].value
        return [env.values[i] for i in env.metric_ids if i.startswith(prefix)]
    values = [evaluate(a, env) for a in args]
    if name == "FILL":
        if len(values) != 2 or not isinstance(values[1], int | float):
            raise MetricMathError("FILL takes a series and a number: FILL(m1, 0).")
        fill = float(values[1])

        def filled(series: Series) -> Series:
            return [fill if v is None else v for v in series]

        if _is_array(values[0]):
            return [filled(s) for s in values[0]]  # type: ignore[arg-type, union-attr]
        return filled(as_series(values[0], length))
    if name == "IF":
        if len(values) not in (2, 3):
            raise MetricMathError("IF takes a condition and one or two values: IF(c, a, b).")
        cond = as_series(values[0], length)
        then = as_series(values[1], length)
        other = as_series(values[2], length) if len(values) == 3 else [None] * length
        return [
            None if c is None else (t if c else o)
            for c, t, o in zip(cond, then, other, strict=True)
        ]
    if name == "ABS":
        if len(values) != 1:
            raise MetricMathError("ABS takes one argument.")
        return _map(abs, values[0])
    reduce = _REDUCERS[name]
    if len(values) == 1 and not _is_array(values[0]):
        # One series: one value over the whole range (CloudWatch), as a flat series.
        present = [v for v in as_series(values[0], length) if v is not None]
        return reduce(present) if present else _missing(length)
    series: list[Series] = []
    for value in values:
        if _is_array(value):
            series.extend(value)  # type: ignore[arg-type]
        else:
            series.append(as_series(value, length))
    if not series:
        return _missing(length)
    out: Series = []
    for i in range(length):
        column = [v for v in (s[i] for s in series) if v is not None]
        out.append(reduce(column) if column else None)
    return out


@dataclass(frozen=True)
class Query:
    """One entry of an alarm's Metrics: a metric (its series is given) or an expression."""

    id: str
    expression: str | None = None
    return_data: bool = False


def evaluate_alarm(
    queries: Sequence[Query], metric_series: dict[str, Series], length: int
) -> Series:
    """The series the alarm watches: the query with ReturnData, after evaluating every
    expression (in dependency order; a cycle is an error)."""
    nodes = {q.id: parse(q.expression) for q in queries if q.expression is not None}
    values: dict[str, Series] = dict(metric_series)
    metric_ids = tuple(q.id for q in queries if q.id in metric_series)
    visiting: set[str] = set()

    def resolve(query_id: str) -> None:
        if query_id in values:
            return
        if query_id not in nodes:
            raise MetricMathError(f"The expression refers to {query_id}, which is not a query id.")
        if query_id in visiting:
            raise MetricMathError(f"The expressions refer to each other in a cycle ({query_id}).")
        visiting.add(query_id)
        for ref in references(nodes[query_id]):
            resolve(ref)
        env = Env(values, metric_ids, length)
        values[query_id] = as_series(evaluate(nodes[query_id], env), length)

    for query_id in nodes:
        resolve(query_id)
    returned = [q for q in queries if q.return_data]
    if len(returned) != 1:
        raise MetricMathError("Exactly one of the alarm's Metrics must have ReturnData true.")
    return values[returned[0].id]
