"""template.yaml's monitoring, read the way CloudWatch reads it, and applied to local metrics.

- `metric_references`: every metric an alarm or a dashboard widget names (plain metrics,
  metric-math inputs, SEARCH expressions, Metrics Insights queries), with its dimension set.
- `emf_points`: the metric values the handlers printed as EMF, with their timestamps.
- `evaluate_alarm`: what an alarm would say about the newest local run.

The cross-check test and the local dashboard both build on these, so the template, the code
that emits metrics and what a person sees locally cannot drift apart.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from license_sync_local.template import resources_of_type

OUR_NAMESPACE = "<MetricsNamespace>"
"""How the template's namespace parameter reads in a `MetricReference` (a literal namespace
written instead of the parameter reads as itself, and the cross-check test rejects it)."""
_NAMESPACE_PARAMETER = {"MetricsNamespace": OUR_NAMESPACE}

_SEARCH = re.compile(
    r"SEARCH\(\s*'\{(?P<schema>[^}]*)\}\s+MetricName=\"(?P<name>[A-Za-z0-9_]+)\"'\s*,"
    r"\s*'(?P<stat>[A-Za-z0-9.]+)'\s*,\s*(?P<period>\d+)\s*\)"
)
_SQL = re.compile(
    r"SELECT\s+(?P<function>[A-Z]+)\((?P<name>[A-Za-z0-9_]+)\)\s+FROM\s+"
    r"SCHEMA\((?P<schema>[^)]*)\)(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+GROUP\s+BY\s+(?P<group>[A-Za-z0-9_, ]+?))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9:._-]+)\}")


# --- reading the template ---------------------------------------------------------------------


def read_sub(value: Any, values: Mapping[str, str] | None = None) -> Any:
    """A value with `Fn::Sub` and `Ref` turned into text.

    `${Name}` (and `Ref: Name`) become `values[Name]` when given, else stay `${Name}`, so
    the namespace parameter reads as `OUR_NAMESPACE` unless a value is supplied.
    """
    known = values or {}

    def substitute(text: str) -> str:
        return _PLACEHOLDER.sub(lambda match: known.get(match[1], match[0]), text)

    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if set(value) == {"Fn::Sub"}:
            body = value["Fn::Sub"]
            return substitute(body if isinstance(body, str) else body[0])
        if set(value) == {"Ref"}:
            return substitute("${" + value["Ref"] + "}")
        if set(value) == {"Fn::GetAtt"}:
            logical_id, attribute = value["Fn::GetAtt"]
            return substitute("${" + f"{logical_id}.{attribute}" + "}")
        return {key: read_sub(inner, values) for key, inner in value.items()}
    if isinstance(value, list):
        return [read_sub(inner, values) for inner in value]
    return value


def alarms(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of_type(dict(template), "AWS::CloudWatch::Alarm")


def dashboard_body(template: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """The dashboard's JSON, with `values` substituted (all placeholders must be known)."""
    dashboards = resources_of_type(dict(template), "AWS::CloudWatch::Dashboard")
    (properties,) = dashboards.values()
    text = read_sub(properties["DashboardBody"], values)
    missing = _PLACEHOLDER.findall(text)
    if missing:
        raise ValueError(f"the dashboard names values the local run lacks: {sorted(missing)}")
    body: dict[str, Any] = json.loads(text)
    return body


def local_values(
    template: Mapping[str, Any], *, stack_name: str, region: str, account_id: str
) -> dict[str, str]:
    """What each `${...}` in the template would be for a stack of this name, locally."""
    values = {
        "AWS::StackName": stack_name,
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": "aws",
    }
    for name, definition in template.get("Parameters", {}).items():
        values[name] = str(definition.get("Default", f"<{name}>"))
    for logical_id, resource in template["Resources"].items():
        physical = f"{stack_name}-{logical_id}"
        values[logical_id] = physical
        for attribute in ("Arn", "QueueName", "TopicName"):
            values[f"{logical_id}.{attribute}"] = physical
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            name = read_sub(resource["Properties"].get("AlarmName", physical), values)
            values[f"{logical_id}.Arn"] = f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{name}"
    return values


# --- what the template references ---------------------------------------------------------------


@dataclass(frozen=True)
class MetricReference:
    where: str
    """The alarm's logical ID, or `dashboard: <widget title>`."""
    namespace: str
    name: str
    dimensions: frozenset[str]


def _schema(text: str) -> tuple[str, frozenset[str]]:
    parts = [part.strip().strip('"') for part in text.split(",")]
    return parts[0], frozenset(part for part in parts[1:] if part)


def expression_references(expression: str) -> list[tuple[str, str, frozenset[str]]]:
    """(namespace, metric, dimension names) named by a SEARCH or Metrics Insights expression."""
    found = []
    for match in _SEARCH.finditer(expression):
        namespace, dimensions = _schema(match["schema"])
        found.append((namespace, match["name"], dimensions))
    sql = _SQL.match(" ".join(expression.split()))
    if sql:
        namespace, dimensions = _schema(sql["schema"])
        found.append((namespace, sql["name"], dimensions))
    return found


def _alarm_references(logical_id: str, properties: Mapping[str, Any]) -> list[MetricReference]:
    found = []
    if "MetricName" in properties:
        found.append(
            MetricReference(
                logical_id,
                read_sub(properties["Namespace"], _NAMESPACE_PARAMETER),
                properties["MetricName"],
                frozenset(item["Name"] for item in properties.get("Dimensions", [])),
            )
        )
    for query in properties.get("Metrics", []):
        stat = query.get("MetricStat")
        if stat:
            metric = stat["Metric"]
            found.append(
                MetricReference(
                    logical_id,
                    read_sub(metric["Namespace"], _NAMESPACE_PARAMETER),
                    metric["MetricName"],
                    frozenset(item["Name"] for item in metric.get("Dimensions", [])),
                )
            )
        elif "Expression" in query:
            for namespace, name, dimensions in expression_references(
                read_sub(query["Expression"], _NAMESPACE_PARAMETER)
            ):
                found.append(MetricReference(logical_id, namespace, name, dimensions))
    return found


@dataclass(frozen=True)
class WidgetMetric:
    """One line of a metric widget: a plain metric, or an expression."""

    namespace: str = ""
    name: str = ""
    dimensions: Mapping[str, str] = field(default_factory=dict)
    expression: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)


def widget_metrics(properties: Mapping[str, Any]) -> list[WidgetMetric]:
    """The widget's `metrics` rows, with the "..." shorthand expanded."""
    rows: list[WidgetMetric] = []
    previous: list[str] = []
    for entry in properties.get("metrics", []):
        options = entry[-1] if entry and isinstance(entry[-1], Mapping) else {}
        fields = [item for item in entry if not isinstance(item, Mapping)]
        if not fields and "expression" in options:
            rows.append(WidgetMetric(expression=options["expression"], options=options))
            continue
        if fields and fields[0] == "...":
            rest = fields[1:]
            fields = previous[: len(previous) - len(rest)] + rest
        previous = list(fields)
        dimensions = dict(zip(fields[2::2], fields[3::2], strict=True))
        rows.append(WidgetMetric(fields[0], fields[1], dimensions, options=options))
    return rows


def metric_references(template: Mapping[str, Any]) -> list[MetricReference]:
    """Every metric an alarm or a dashboard widget of the template names."""
    found: list[MetricReference] = []
    for logical_id, properties in alarms(template).items():
        found.extend(_alarm_references(logical_id, properties))
    body = dashboard_body(template, _keep_namespace_values(template))
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        where = f"dashboard: {widget['properties'].get('title', '')}"
        for row in widget_metrics(widget["properties"]):
            if row.expression:
                for namespace, name, dimensions in expression_references(row.expression):
                    found.append(MetricReference(where, namespace, name, dimensions))
            else:
                found.append(
                    MetricReference(where, row.namespace, row.name, frozenset(row.dimensions))
                )
    return found


def _keep_namespace_values(template: Mapping[str, Any]) -> dict[str, str]:
    values = local_values(template, stack_name="stack", region="us-east-1", account_id="1")
    values["MetricsNamespace"] = OUR_NAMESPACE
    return values


# --- local metric data ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricPoint:
    namespace: str
    name: str
    dimensions: Mapping[str, str]
    value: float
    timestamp_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "dimensions": dict(self.dimensions),
            "value": self.value,
            "timestamp_ms": self.timestamp_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetricPoint:
        return cls(
            data["namespace"],
            data["name"],
            dict(data["dimensions"]),
            float(data["value"]),
            int(data["timestamp_ms"]),
        )


def emitted_metrics(output: str) -> list[dict[str, Any]]:
    """Each metric of each EMF document among the handlers' output, as one row.

    `value` is as the document holds it (Powertools writes a list of values).
    """
    rows = []
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            dimension_names = [name for group in directive["Dimensions"] for name in group]
            dimensions = {name: document[name] for name in dimension_names if name in document}
            for metric in directive["Metrics"]:
                rows.append(
                    {
                        "namespace": directive["Namespace"],
                        "name": metric["Name"],
                        "unit": metric.get("Unit"),
                        "value": document[metric["Name"]],
                        "dimensions": dimensions,
                        "timestamp_ms": int(document["_aws"]["Timestamp"]),
                    }
                )
    return rows


def emf_points(output: str) -> list[MetricPoint]:
    """Each value of each metric in the EMF documents among the handlers' output."""
    return [
        MetricPoint(
            row["namespace"],
            row["name"],
            {name: str(value) for name, value in row["dimensions"].items()},
            float(value),
            row["timestamp_ms"],
        )
        for row in emitted_metrics(output)
        for value in (row["value"] if isinstance(row["value"], list) else [row["value"]])
    ]


def aggregate(values: Sequence[float], stat: str) -> float | None:
    if not values:
        return None
    match stat:
        case "Sum":
            return math.fsum(values)
        case "Maximum":
            return max(values)
        case "Minimum":
            return min(values)
        case "Average":
            return math.fsum(values) / len(values)
        case "SampleCount":
            return float(len(values))
    raise ValueError(f"statistic {stat} is not evaluated locally")


def select(
    points: Iterable[MetricPoint], namespace: str, name: str, dimensions: Mapping[str, str]
) -> list[float]:
    """Values of one metric: CloudWatch matches the dimension set and values exactly."""
    wanted = dict(dimensions)
    return [
        point.value
        for point in points
        if point.namespace == namespace and point.name == name and dict(point.dimensions) == wanted
    ]


def search(
    points: Iterable[MetricPoint], namespace: str, name: str, schema: frozenset[str]
) -> dict[str, list[float]]:
    """SEARCH / SCHEMA(...) semantics: metrics with exactly `schema` as dimension names,
    one series per combination of the dimension values (labelled by the non-service ones)."""
    series: dict[str, list[float]] = {}
    for point in points:
        if point.namespace != namespace or point.name != name:
            continue
        if frozenset(point.dimensions) != schema:
            continue
        label = " ".join(
            value for key, value in sorted(point.dimensions.items()) if key != "service"
        )
        series.setdefault(label, []).append(point.value)
    return series


# --- alarms over local data -----------------------------------------------------------------------

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}


@dataclass(frozen=True)
class AlarmEvaluation:
    logical_id: str
    name: str
    state: str
    """ALARM, OK, INSUFFICIENT_DATA, or NOT_LOCAL (an AWS service metric: no local data)."""
    reason: str
    values: Mapping[str, float] = field(default_factory=dict)
    """The value per contributor ("" for a single series)."""


def evaluate_alarm(
    logical_id: str,
    properties: Mapping[str, Any],
    points: Sequence[MetricPoint],
    values: Mapping[str, str],
) -> AlarmEvaluation:
    """The state the alarm would take on `points` (the newest run's data)."""
    name = str(read_sub(properties.get("AlarmName", logical_id), values))
    namespace = values.get("MetricsNamespace", OUR_NAMESPACE)
    references = _alarm_references(logical_id, properties)
    if any(ref.namespace not in (OUR_NAMESPACE, namespace) for ref in references):
        return AlarmEvaluation(logical_id, name, "NOT_LOCAL", "an AWS service metric")
    threshold = float(read_sub(properties["Threshold"], values))
    compare = _COMPARE[properties["ComparisonOperator"]]
    series = _alarm_series(properties, points, namespace, values)
    if not series:
        missing = properties.get("TreatMissingData", "missing")
        state = {"breaching": "ALARM", "notBreaching": "OK"}.get(missing, "INSUFFICIENT_DATA")
        return AlarmEvaluation(logical_id, name, state, f"no data (TreatMissingData: {missing})")
    breaching = {label: value for label, value in series.items() if compare(value, threshold)}
    if breaching:
        described = ", ".join(
            f"{label or 'value'} {_short(value)}" for label, value in sorted(breaching.items())
        )
        return AlarmEvaluation(
            logical_id, name, "ALARM", f"{described} vs threshold {_short(threshold)}", series
        )
    described = ", ".join(
        f"{label or 'value'} {_short(value)}" for label, value in sorted(series.items())
    )
    return AlarmEvaluation(
        logical_id, name, "OK", f"{described} vs threshold {_short(threshold)}", series
    )


def _alarm_series(
    properties: Mapping[str, Any],
    points: Sequence[MetricPoint],
    namespace: str,
    values: Mapping[str, str],
) -> dict[str, float]:
    if "MetricName" in properties:
        dimensions = {item["Name"]: item["Value"] for item in properties.get("Dimensions", [])}
        value = aggregate(
            select(points, namespace, properties["MetricName"], dimensions),
            properties["Statistic"],
        )
        return {} if value is None else {"": value}
    inputs: dict[str, float | None] = {}
    result: dict[str, float] = {}
    for query in properties["Metrics"]:
        if "MetricStat" in query:
            stat = query["MetricStat"]
            metric = stat["Metric"]
            dimensions = {item["Name"]: item["Value"] for item in metric.get("Dimensions", [])}
            inputs[query["Id"]] = aggregate(
                select(points, namespace, metric["MetricName"], dimensions), stat["Stat"]
            )
            continue
        expression = " ".join(str(read_sub(query["Expression"], values)).split())
        if _SQL.match(expression):
            grouped = _insights(expression, points, namespace)
            if query.get("ReturnData", True):
                result = grouped
            continue
        value = evaluate_math(expression, inputs)
        if query.get("ReturnData", True) and value is not None:
            result = {"": value}
    return result


def _insights(expression: str, points: Sequence[MetricPoint], namespace: str) -> dict[str, float]:
    match = _SQL.match(expression)
    assert match is not None
    schema_namespace, dimensions = _schema(match["schema"])
    if schema_namespace not in (OUR_NAMESPACE, namespace):
        return {}
    function = {"MAX": "Maximum", "MIN": "Minimum", "SUM": "Sum", "AVG": "Average"}.get(
        match["function"].upper(), "SampleCount"
    )
    series = search(points, namespace, match["name"], dimensions)
    if not match["group"]:
        series = {"": [value for values in series.values() for value in values]}
    aggregated = {label: aggregate(values, function) for label, values in series.items()}
    return {label: value for label, value in aggregated.items() if value is not None}


def evaluate_math(expression: str, inputs: Mapping[str, float | None]) -> float | None:
    """A metric-math expression over single values: + - * /, comparisons, IF, FILL,
    METRICS() and SUM. None when an input it needs has no data."""
    tree = ast.parse(expression, mode="eval")

    def value(node: ast.AST) -> Any:
        match node:
            case ast.Expression(body=body):
                return value(body)
            case ast.Constant(value=constant) if isinstance(constant, int | float):
                return float(constant)
            case ast.Name(id=name):
                return inputs[name]
            case ast.UnaryOp(op=ast.USub(), operand=operand):
                inner = value(operand)
                return None if inner is None else -inner
            case ast.BinOp(left=left, op=op, right=right):
                a, b = value(left), value(right)
                if a is None or b is None:
                    return None
                if isinstance(op, ast.Div) and b == 0:
                    return None
                binary: dict[type[ast.operator], Callable[[float, float], float]] = {
                    ast.Add: operator.add,
                    ast.Sub: operator.sub,
                    ast.Mult: operator.mul,
                    ast.Div: operator.truediv,
                }
                return binary[type(op)](a, b)
            case ast.Compare(left=left, ops=[op], comparators=[right]):
                a, b = value(left), value(right)
                if a is None or b is None:
                    return None
                comparisons: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
                    ast.Gt: operator.gt,
                    ast.GtE: operator.ge,
                    ast.Lt: operator.lt,
                    ast.LtE: operator.le,
                    ast.Eq: operator.eq,
                    ast.NotEq: operator.ne,
                }
                return float(comparisons[type(op)](a, b))
            case ast.Call(func=ast.Name(id="IF"), args=[condition, when_true, when_false]):
                test = value(condition)
                if test is None:
                    return None
                return value(when_true) if test else value(when_false)
            case ast.Call(func=ast.Name(id="METRICS"), args=[]):
                return list(inputs.values())
            case ast.Call(func=ast.Name(id="FILL"), args=[series, fill]):
                inner, default = value(series), value(fill)
                if isinstance(inner, list):
                    return [default if item is None else item for item in inner]
                return default if inner is None else inner
            case ast.Call(func=ast.Name(id="SUM"), args=[series]):
                inner = value(series)
                items = inner if isinstance(inner, list) else [inner]
                present = [item for item in items if item is not None]
                return math.fsum(present) if present else None
        raise ValueError(f"not evaluated locally: {ast.unparse(node)}")

    result = value(tree)
    return None if result is None else float(result)


# --- the local summary ----------------------------------------------------------------------------


def metric_summary(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Lines for `license-sync run`'s summary from `emitted_metrics` rows: run-level metrics
    one per line, per-instance ones as a table (metric by instance)."""
    run_level: dict[str, list[float]] = {}
    per_instance: dict[str, dict[str, float]] = {}
    hosts: list[str] = []
    for row in rows:
        values = row["value"] if isinstance(row["value"], list) else [row["value"]]
        host = row["dimensions"].get("Instance")
        if host is None:
            run_level.setdefault(row["name"], []).extend(float(value) for value in values)
            continue
        if host not in hosts:
            hosts.append(host)
        # The newest value wins (GitHub's view is emitted by finalize and the heartbeat).
        per_instance.setdefault(row["name"], {})[host] = float(values[-1])
    if not rows:
        return []
    lines = ["  metrics emitted (read from the handlers' EMF output):"]
    for name, values in run_level.items():
        lines.append(f"    {name:<30} {', '.join(_short(value) for value in values)}")
    if per_instance:
        width = max(len(host) for host in hosts) + 2
        lines.append(f"    {'per instance':<30}" + "".join(f"{host:>{width}}" for host in hosts))
        for name, by_host in per_instance.items():
            cells = "".join(
                f"{_short(by_host[host]) if host in by_host else '-':>{width}}" for host in hosts
            )
            lines.append(f"    {name:<30}{cells}")
    return lines


def _short(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.0f}"
