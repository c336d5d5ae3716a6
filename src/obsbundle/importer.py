"""`generate.py --import FILE ...`: SLO specs of Sloth, OpenSLO and Pyrra as one obsbundle inventory.

Read at the edge like an inventory: each document is recognised by its apiVersion (and kind) and
converted into services with SLOs; the result is validated by the inventory loader itself, so what
this prints loads, or the import fails. Everything the source did not say (namespace, owner, the
scrape of the service) is chosen here and said so in a YAML comment that names what to check;
what the source said and obsbundle has no key for is kept in comments beside the SLO. What
cannot be mapped is an InputError (exit 2) at the file and key path, with the reason.

Mappings:
- Sloth `prometheus/v1` and `sloth.slok.dev/v1` PrometheusServiceLevel: `events` → bad-events
  (`error_query` → `bad_query`), `raw` → error-ratio; `plugin` cannot be mapped (its query is
  Go code). Sloth's period is 30d unless its `slo_period`/`sloPeriod` says otherwise.
- OpenSLO `openslo/v1alpha` (`objectives[].ratioMetrics`) and `openslo/v1` SLO (`indicator.spec`
  or an SLI document of the same file named by `indicatorRef`): ratio good/total → custom,
  bad/total → bad-events; a thresholdMetric maps where it is a 0/1 gauge selector compared for
  success (`op: gte, value: 1`, `op: eq, value: 1`, `op: gt, value: 0`) → gauge. Occurrences
  budgeting and rolling windows only; one obsbundle SLO per objective.
- Pyrra `pyrra.dev/v1alpha1` ServiceLevelObjective: ratio → bad-events, latency → custom,
  bool_gauge → gauge; `grouping` → `group_by`; `alerting` (disabled, burnrates, absent, name) →
  `alerting`.

Sloth's alert name, labels (its SLO labels too) and annotations, and its page and ticket alerts'
labels, annotations and `disable`, become the SLO's `alerting`; what obsbundle sets itself
(severity, description, the links) or cannot check (templates beyond `{{ $labels.x }}`) is kept
in comments.

Queries over `{{.window}}` stay templated; a `rate(...[{{.window}}])` becomes
`increase(...[{{.window}}])`, since obsbundle sums event counts (the ratio is the same).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from obsbundle.durations import parse_duration
from obsbundle.errors import InputError, KeyPath, Problem, format_key_path
from obsbundle.loader import parse_system
from obsbundle.model import API_VERSION, SLO_MANAGED_ANNOTATIONS, SLO_RESERVED_LABELS

_SENTINEL_WINDOW = "7777s"
"""`{{.window}}` while a query is parsed: a range no one writes, so the window's ranges stand out."""
_WINDOW = re.compile(r"\{\{\s*\.window\s*\}\}")
_DNS = re.compile(r"[^a-z0-9-]+")

DEFAULT_NAMESPACE = "default"
DEFAULT_SYSTEM = "imported"


class _UnmappableError(Exception):
    def __init__(self, path: KeyPath, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


@dataclass
class _Slo:
    """One converted SLO: the inventory keys and the comments that go above it."""

    data: dict[str, Any]
    comments: list[str]
    source: str
    """The spec's file, and the key path of the SLO in it (where its problems are reported)."""
    path: KeyPath


@dataclass
class _Service:
    name: str
    namespace: str
    namespace_chosen: bool
    source: str
    slos: list[_Slo] = field(default_factory=list)


def _dns_name(text: str) -> str:
    """A Kubernetes DNS label from any name: lower case, other characters as '-', at most 63."""
    name = _DNS.sub("-", text.lower()).strip("-")[:63].strip("-")
    return name or "service"


def _objective_from_percent(value: Any, path: KeyPath) -> Decimal:
    try:
        return Decimal(str(value).strip()).normalize()
    except InvalidOperation:
        raise _UnmappableError(path, f"is not a number: {value!r}") from None


def _objective_from_fraction(value: Any, path: KeyPath) -> Decimal:
    return (_objective_from_percent(value, path) * 100).normalize()


def _days(duration: str, path: KeyPath) -> str:
    """A window as whole days (`4w` → `28d`), the only windows obsbundle SLOs have."""
    try:
        seconds = parse_duration(duration)
    except ValueError:
        raise _UnmappableError(path, f"{duration!r} is not a duration obsbundle reads (e.g. 28d, 4w)") from None
    if seconds % 86400:
        raise _UnmappableError(path, f"{duration} is not a whole number of days; obsbundle SLO windows are 1d to 90d")
    return f"{seconds // 86400}d"


def _range_functions(query: str, path: KeyPath) -> list[tuple[str, bool]]:
    """(function, over the window) of every range-vector function call of a templated query."""
    try:
        parsed = promql_parser.parse(_WINDOW.sub(_SENTINEL_WINDOW, query))
    except ValueError as error:
        raise _UnmappableError(path, f"is not PromQL ({error})") from None
    found: list[tuple[str, bool]] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.Call):
            for argument in node.args:
                if isinstance(argument, promql_parser.MatrixSelector):
                    found.append((node.func.name, int(argument.range.total_seconds()) == 7777))

    promql_parser.walk(parsed, visit)
    return found


def _event_query(query: Any, path: KeyPath) -> tuple[str, list[str]]:
    """An event query for obsbundle: a counter as it is; a templated rate as the window's increase.

    Returns the query and the comments on what was changed."""
    if not isinstance(query, str) or not query.strip():
        raise _UnmappableError(path, "must be a PromQL query")
    text = query.strip()
    calls = _range_functions(text, path)
    if not _WINDOW.search(text):
        return text, []
    if any(name == "irate" for name, _ in calls):
        raise _UnmappableError(path, "irate() reads the last two samples only: it counts no events over the window")
    if any(name == "rate" and not windowed for name, windowed in calls):
        raise _UnmappableError(
            path, "rate() over a fixed range beside {{.window}}: the window's events cannot be counted"
        )
    if not any(name == "rate" for name, _ in calls):
        return text, []
    converted = re.sub(r"\brate\s*\(", "increase(", text)
    return converted, [
        f"{path[-1]}: rate() over {{{{.window}}}} became increase(), for obsbundle sums event counts "
        "(the ratio is the same)"
    ]


class _Import:
    """The services converted so far, by name, in the order first seen."""

    def __init__(self) -> None:
        self.services: dict[str, _Service] = {}

    def service(self, name: str, namespace: str | None, source: str) -> _Service:
        key = _dns_name(name)
        found = self.services.get(key)
        if found is None:
            found = self.services[key] = _Service(
                key, _dns_name(namespace) if namespace else DEFAULT_NAMESPACE, namespace is None, source
            )
        return found


_ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_ONLY_LABEL_TEMPLATES = re.compile(r"^(?:[^{}]|\{\{\s*\$labels\.[a-zA-Z_][a-zA-Z0-9_]*\s*\}\})*$")


def _kept_labels(labels: Mapping[str, Any], where: str) -> tuple[dict[str, str], list[str]]:
    """Alert labels obsbundle can carry; those it sets itself (severity, service…) become comments."""
    kept = {str(name): str(value) for name, value in labels.items() if str(name) not in SLO_RESERVED_LABELS}
    dropped = {name: value for name, value in labels.items() if str(name) in SLO_RESERVED_LABELS}
    notes = (
        [f"{where} labels left out, for obsbundle sets them (route on a label of your own): {_inline(dropped)}"]
        if dropped
        else []
    )
    return kept, notes


def _kept_annotations(annotations: Mapping[str, Any], where: str) -> tuple[dict[str, str], list[str]]:
    """Annotations obsbundle can carry: not its own (description, runbook_url, dashboard_url), and
    no template but `{{ $labels.<name> }}`; the rest become comments."""
    kept: dict[str, str] = {}
    dropped: dict[str, Any] = {}
    for name, value in annotations.items():
        text = str(value)
        if str(name) in SLO_MANAGED_ANNOTATIONS or not _ONLY_LABEL_TEMPLATES.match(text):
            dropped[str(name)] = value
        else:
            kept[str(name)] = text
    notes = (
        [
            f"{where} annotations left out (obsbundle writes description and the links; templates other than "
            f"{{{{ $labels.<name> }}}} cannot be checked by the generated tests): {_inline(dropped)}"
        ]
        if dropped
        else []
    )
    return kept, notes


def _sloth_alerting(
    alerting: Mapping[str, Any], slo_labels: Mapping[str, Any], page_key: str, ticket_key: str
) -> tuple[dict[str, Any], list[str]]:
    """Sloth's alerting block (and its SLO labels, which Sloth puts on every alert) as obsbundle's
    `alerting`; what it cannot carry, in comments."""
    result: dict[str, Any] = {}
    notes: list[str] = []
    name = alerting.get("name")
    if name:
        if _ALERT_NAME.match(str(name)):
            result["name"] = str(name)
        else:
            notes.append(f"Sloth alert name {name!r} left out: obsbundle alert names are CamelCase")
    labels, dropped = _kept_labels({**slo_labels, **(alerting.get("labels") or {})}, "Sloth")
    notes += dropped
    if labels:
        result["labels"] = labels
    annotations, dropped = _kept_annotations(alerting.get("annotations") or {}, "Sloth")
    notes += dropped
    if annotations:
        result["annotations"] = annotations
    for tier, key in (("page", page_key), ("ticket", ticket_key)):
        block = alerting.get(key) or {}
        settings: dict[str, Any] = {}
        if block.get("disable"):
            settings["enabled"] = False
        tier_labels, dropped = _kept_labels(block.get("labels") or {}, f"Sloth {tier}")
        notes += dropped
        if tier_labels:
            settings["labels"] = tier_labels
        tier_annotations, dropped = _kept_annotations(block.get("annotations") or {}, f"Sloth {tier}")
        notes += dropped
        if tier_annotations:
            settings["annotations"] = tier_annotations
        if settings:
            result[tier] = settings
    return result, notes


def _inline(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=1_000_000, sort_keys=True).strip()


_PLUGINS = (
    "Sloth SLO plugins rewrite the generated rules in Go (labels, intervals, the SLI's arithmetic), which "
    "obsbundle cannot tell from the spec: remove plugins to import the SLO as Sloth's core generates it"
)


def _sloth(document: Mapping[str, Any], at: KeyPath, result: _Import, source: str, *, k8s: bool) -> None:
    spec: Mapping[str, Any] = document.get("spec") or {} if k8s else document
    spec_at: KeyPath = (*at, "spec") if k8s else at
    metadata = document.get("metadata") or {}
    service_name = spec.get("service")
    if not isinstance(service_name, str) or not service_name:
        raise _UnmappableError((*spec_at, "service"), "Sloth needs the service the SLOs are of")
    service = result.service(service_name, metadata.get("namespace") if k8s else None, source)
    keys = {
        "error": "errorQuery" if k8s else "error_query",
        "total": "totalQuery" if k8s else "total_query",
        "ratio": "errorRatioQuery" if k8s else "error_ratio_query",
        "page": "pageAlert" if k8s else "page_alert",
        "ticket": "ticketAlert" if k8s else "ticket_alert",
        "period": "sloPeriod" if k8s else "slo_period",
    }
    for plugins_key in ("sloPlugins", "slo_plugins") if k8s else ("slo_plugins",):
        if spec.get(plugins_key):
            raise _UnmappableError((*spec_at, plugins_key), _PLUGINS)
    period = spec.get(keys["period"])
    window = _days(period, (*spec_at, keys["period"])) if period else "30d"
    common_labels = spec.get("labels") or {}
    for index, slo in enumerate(spec.get("slos") or []):
        slo_at: KeyPath = (*spec_at, "slos", index)
        sli = slo.get("sli") or {}
        data: dict[str, Any] = {
            "name": _dns_name(str(slo.get("name", f"slo-{index}"))),
            "objective": _objective_from_percent(slo.get("objective"), (*slo_at, "objective")),
            "window": window,
        }
        comments: list[str] = []
        if not period:
            comments.append("window: 30d, Sloth's default period (the spec names none): check it is the SLO's")
        if slo.get("plugins"):
            raise _UnmappableError((*slo_at, "plugins"), _PLUGINS)
        if sli.get("plugin"):
            raise _UnmappableError(
                (*slo_at, "sli", "plugin"),
                "a Sloth SLI plugin builds its query in Go at generation time: write its query as "
                "sli.events or sli.raw, then import",
            )
        if sli.get("events"):
            events = sli["events"]
            events_at: KeyPath = (*slo_at, "sli", "events")
            bad, bad_notes = _event_query(events.get(keys["error"]), (*events_at, keys["error"]))
            total, total_notes = _event_query(events.get(keys["total"]), (*events_at, keys["total"]))
            data.update(bad_query=bad, total_query=total)
            comments += bad_notes + total_notes
        elif sli.get("raw"):
            raw_at: KeyPath = (*slo_at, "sli", "raw", keys["ratio"])
            query = sli["raw"].get(keys["ratio"])
            if not isinstance(query, str) or not query.strip():
                raise _UnmappableError(raw_at, "must be a PromQL error ratio")
            _range_functions(query, raw_at)
            data["error_ratio_query"] = query.strip()
            comments.append(
                "error_ratio_query: every window is the average of its 5-minute values, as Sloth's period is "
                "(Sloth evaluates the query at each alert window); no low-traffic guard, for a ratio has no events"
            )
        else:
            raise _UnmappableError((*slo_at, "sli"), "needs events or raw")
        if slo.get("description"):
            data["description"] = str(slo["description"]).strip()
        labels = {**common_labels, **(slo.get("labels") or {})}
        alerting, notes = _sloth_alerting(slo.get("alerting") or {}, labels, keys["page"], keys["ticket"])
        comments += notes
        if alerting:
            data["alerting"] = alerting
        service.slos.append(_Slo(data, comments, source, slo_at))


def _openslo_query(source: Mapping[str, Any], path: KeyPath, *, v1: bool) -> str:
    """The PromQL of one OpenSLO metric source: v1 `metricSource: {type, spec: {query}}`, v1alpha
    `{source, queryType, query}`."""
    if v1:
        metric_source = source.get("metricSource") or {}
        kind = str(metric_source.get("type", ""))
        query = (metric_source.get("spec") or {}).get("query")
        where: KeyPath = (*path, "metricSource")
    else:
        kind = str(source.get("source", ""))
        query = source.get("query")
        where = path
    if kind.lower() != "prometheus":
        raise _UnmappableError(
            (*where, "type" if v1 else "source"),
            f"metric source {kind or '(none)'!r} is not Prometheus: obsbundle SLIs are PromQL",
        )
    if not isinstance(query, str) or not query.strip():
        raise _UnmappableError((*where, "spec", "query") if v1 else (*where, "query"), "needs a PromQL query")
    return query


def _ratio(ratio: Mapping[str, Any], path: KeyPath, *, v1: bool) -> tuple[dict[str, str], list[str]]:
    """The SLI keys of an OpenSLO ratio: good/total → custom, bad/total → bad-events."""
    if "total" not in ratio:
        raise _UnmappableError(path, "a ratio needs total")
    if v1 and ratio.get("counter") is False:
        raise _UnmappableError(
            (*path, "counter"), "counter: false: obsbundle counts events from counters, not from sampled values"
        )
    if v1 and ratio.get("raw"):
        raise _UnmappableError((*path, "raw"), "a raw ratio source of OpenSLO names no PromQL ratio over a window")
    total, notes = _event_query(_openslo_query(ratio["total"], (*path, "total"), v1=v1), (*path, "total"))
    for source_key, key in (("good", "good_query"), ("bad", "bad_query")):
        if source_key in ratio:
            query, more = _event_query(
                _openslo_query(ratio[source_key], (*path, source_key), v1=v1), (*path, source_key)
            )
            return {key: query, "total_query": total}, notes + more
    raise _UnmappableError(path, "a ratio needs good or bad beside total")


_GAUGE_SUCCESS = {("gte", Decimal(1)), ("eq", Decimal(1)), ("gt", Decimal(0))}


def _threshold(
    metric: Mapping[str, Any], objective: Mapping[str, Any], path: KeyPath, obj_at: KeyPath, *, v1: bool
) -> dict[str, str]:
    """A thresholdMetric that is a 0/1 gauge selector compared for success → gauge; else unmappable."""
    query = _openslo_query(metric, path, v1=v1).strip()
    op = str(objective.get("op", ""))
    try:
        value = Decimal(str(objective.get("value")))
    except InvalidOperation:
        value = Decimal(-1)
    try:
        selector = isinstance(promql_parser.parse(query), promql_parser.VectorSelector)
    except ValueError as error:
        raise _UnmappableError(path, f"is not PromQL ({error})") from None
    if selector and (op, value) in _GAUGE_SUCCESS:
        return {"gauge_query": query}
    raise _UnmappableError(
        (*obj_at, "op"),
        f"a thresholdMetric good when {op} {objective.get('value')} is a time-slice SLI: obsbundle counts events. "
        "It maps when the metric is a 0/1 gauge selector good at 1 (op: gte, value: 1); otherwise record "
        f"({query}) {_PROMQL_OP.get(op, op)} bool {objective.get('value')} as a series, and import a "
        "thresholdMetric on it",
    )


_PROMQL_OP = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "eq": "=="}


def _openslo_window(spec: Mapping[str, Any], at: KeyPath, *, v1: bool) -> str:
    key = "timeWindow" if v1 else "timeWindows"
    windows = spec.get(key) or []
    if len(windows) != 1:
        raise _UnmappableError((*at, key), "needs exactly one time window")
    window = windows[0]
    where: KeyPath = (*at, key, 0)
    if window.get("calendar") or window.get("isRolling") is False:
        raise _UnmappableError((*where, "isRolling"), "a calendar-aligned window: obsbundle SLO windows are rolling")
    if v1:
        return _days(str(window.get("duration", "")), (*where, "duration"))
    units = {"day": "d", "week": "w"}
    unit = units.get(str(window.get("unit", "")).lower())
    if unit is None:
        raise _UnmappableError((*where, "unit"), f"unit {window.get('unit')!r}: obsbundle windows are in days or weeks")
    return _days(f"{window.get('count')}{unit}", (*where, "count"))


def _openslo(
    document: Mapping[str, Any],
    at: KeyPath,
    result: _Import,
    source: str,
    slis: Mapping[str, tuple[Mapping[str, Any], KeyPath]],
) -> None:
    v1 = document.get("apiVersion") == "openslo/v1"
    spec = document.get("spec") or {}
    spec_at: KeyPath = (*at, "spec")
    metadata = document.get("metadata") or {}
    method = spec.get("budgetingMethod", "Occurrences")
    if method != "Occurrences":
        raise _UnmappableError(
            (*spec_at, "budgetingMethod"),
            f"{method}: obsbundle budgets count events (Occurrences), not good time slices",
        )
    window = _openslo_window(spec, spec_at, v1=v1)
    service = result.service(str(spec.get("service") or metadata.get("name", "service")), None, source)
    indicator: Mapping[str, Any] = {}
    indicator_at: KeyPath = (*spec_at, "indicator", "spec")
    if v1:
        if spec.get("indicatorRef"):
            name = spec["indicatorRef"]
            if name not in slis:
                raise _UnmappableError((*spec_at, "indicatorRef"), f"no SLI document named {name!r} in the same file")
            indicator, indicator_at = slis[name]
        else:
            indicator = (spec.get("indicator") or {}).get("spec") or {}
    base = _dns_name(str(metadata.get("name", "slo")))
    objectives = spec.get("objectives") or []
    for index, objective in enumerate(objectives):
        obj_at: KeyPath = (*spec_at, "objectives", index)
        comments: list[str] = []
        if v1 and indicator.get("ratioMetric"):
            keys, comments = _ratio(indicator["ratioMetric"], (*indicator_at, "ratioMetric"), v1=True)
        elif v1 and indicator.get("thresholdMetric"):
            keys = _threshold(
                indicator["thresholdMetric"], objective, (*indicator_at, "thresholdMetric"), obj_at, v1=True
            )
        elif not v1 and objective.get("ratioMetrics"):
            keys, comments = _ratio(objective["ratioMetrics"], (*obj_at, "ratioMetrics"), v1=False)
        elif not v1 and spec.get("indicator", {}).get("thresholdMetric"):
            keys = _threshold(
                spec["indicator"]["thresholdMetric"],
                objective,
                (*spec_at, "indicator", "thresholdMetric"),
                obj_at,
                v1=False,
            )
        else:
            raise _UnmappableError(indicator_at if v1 else obj_at, "needs a ratioMetric or a thresholdMetric")
        name = base if len(objectives) == 1 else _dns_name(f"{base}-{objective.get('displayName') or index}")
        data: dict[str, Any] = {
            "name": name,
            "objective": _objective_from_fraction(objective.get("target"), (*obj_at, "target")),
            "window": window,
            **keys,
        }
        description = spec.get("description") or metadata.get("displayName")
        if description:
            data["description"] = str(description).strip()
        if v1 and spec.get("alertPolicies"):
            comments.append(
                f"OpenSLO alertPolicies, kept for the per-SLO alerting keys: {_inline(spec['alertPolicies'])}"
            )
        service.slos.append(_Slo(data, comments, source, obj_at))


def _pyrra(document: Mapping[str, Any], at: KeyPath, result: _Import, source: str) -> None:
    spec = document.get("spec") or {}
    spec_at: KeyPath = (*at, "spec")
    metadata = document.get("metadata") or {}
    indicator = spec.get("indicator") or {}
    ind_at: KeyPath = (*spec_at, "indicator")
    name = _dns_name(str(metadata.get("name", "slo")))
    service = result.service(name, metadata.get("namespace"), source)
    keys: dict[str, str]
    kind = next(iter(indicator), None)
    body = indicator.get(kind) or {} if kind else {}
    group_by, group_notes = _pyrra_grouping(body.get("grouping") or [], (*ind_at, str(kind), "grouping"))
    if kind == "ratio":
        keys = {"bad_query": str(body["errors"]["metric"]), "total_query": str(body["total"]["metric"])}
    elif kind == "latency":
        keys = {"good_query": str(body["success"]["metric"]), "total_query": str(body["total"]["metric"])}
    elif kind in ("bool_gauge", "boolGauge"):
        keys = {"gauge_query": str(body["metric"])}
    else:
        raise _UnmappableError(
            (*ind_at, str(kind)),
            f"indicator {kind!r}: obsbundle maps ratio, latency and bool_gauge (latencyNative reads native "
            "histograms, which obsbundle SLIs do not)",
        )
    for key, query in keys.items():
        _range_functions(query, (*ind_at, kind, key))
    data: dict[str, Any] = {
        "name": kind.replace("_", "-"),
        "objective": _objective_from_percent(spec.get("target"), (*spec_at, "target")),
        "window": _days(str(spec.get("window", "")), (*spec_at, "window")),
        **keys,
    }
    if spec.get("description"):
        data["description"] = str(spec["description"]).strip()
    if group_by:
        data["group_by"] = group_by
    comments: list[str] = list(group_notes)
    alerting = _pyrra_alerting(spec.get("alerting") or {})
    if alerting:
        data["alerting"] = alerting
    service.slos.append(_Slo(data, comments, source, spec_at))


def _pyrra_grouping(grouping: Sequence[Any], path: KeyPath) -> tuple[list[str], list[str]]:
    """Pyrra's grouping as group_by. The application's own `service` label arrives as
    `exported_service` under obsbundle's monitors (their `service` target label wins), so a group
    by it becomes one by exported_service; the other labels obsbundle sets cannot be groups."""
    labels: list[str] = []
    notes: list[str] = []
    for label in (str(each) for each in grouping):
        if label == "service":
            labels.append("exported_service")
            notes.append(
                "group_by: Pyrra's service is exported_service here: the generated monitor's service label wins "
                "and the application's is kept as exported_service"
            )
        elif label in SLO_RESERVED_LABELS:
            raise _UnmappableError(
                path, f"grouping by {label}: obsbundle sets {label} on every SLO series itself; group by another label"
            )
        else:
            labels.append(label)
    return labels, notes


def _pyrra_alerting(alerting: Mapping[str, Any]) -> dict[str, Any]:
    """Pyrra's alerting (disabled, burnrates, absent, name) as obsbundle's `alerting`."""
    result: dict[str, Any] = {}
    name = alerting.get("name")
    if name and _ALERT_NAME.match(str(name)):
        result["name"] = str(name)
    if alerting.get("disabled") or alerting.get("burnrates") is False:
        result["page"] = {"enabled": False}
        result["ticket"] = {"enabled": False}
    if alerting.get("disabled") or alerting.get("absent") is False:
        result["absent"] = False
    return result


def _documents(path: Path) -> list[Any]:
    try:
        return [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document is not None]
    except (OSError, UnicodeDecodeError) as error:
        raise InputError([Problem(str(path), (), f"cannot read the file: {error}")]) from None
    except yaml.YAMLError as error:
        raise InputError([Problem(str(path), (), f"is not YAML: {error}")]) from None


def _convert_file(path: Path, result: _Import) -> None:
    documents = _documents(path)
    multi = len(documents) > 1
    slis: dict[str, tuple[Mapping[str, Any], KeyPath]] = {}
    for index, document in enumerate(documents):
        if isinstance(document, dict) and document.get("apiVersion") == "openslo/v1" and document.get("kind") == "SLI":
            name = str((document.get("metadata") or {}).get("name"))
            slis[name] = (document.get("spec") or {}, (index, "spec") if multi else ("spec",))
    converted = 0
    for index, document in enumerate(documents):
        at: KeyPath = (index,) if multi else ()
        if not isinstance(document, dict):
            raise InputError([Problem(str(path), at, "is not a mapping: an SLO spec is one")])
        api, kind = document.get("apiVersion") or document.get("version"), document.get("kind")
        try:
            if api == "prometheus/v1":
                _sloth(document, at, result, str(path), k8s=False)
            elif api == "sloth.slok.dev/v1" and kind == "PrometheusServiceLevel":
                _sloth(document, at, result, str(path), k8s=True)
            elif api in ("openslo/v1alpha", "openslo/v1") and kind == "SLO":
                _openslo(document, at, result, str(path), slis)
            elif api == "openslo/v1" and kind in ("SLI", "DataSource", "Service", "AlertPolicy", "AlertCondition"):
                continue  # read where an SLO refers to it, or nothing obsbundle needs
            elif api == "pyrra.dev/v1alpha1" and kind == "ServiceLevelObjective":
                _pyrra(document, at, result, str(path))
            else:
                raise _UnmappableError(
                    (*at, "apiVersion"),
                    f"{api} {kind or ''}: not a spec obsbundle imports (Sloth prometheus/v1 or sloth.slok.dev/v1 "
                    "PrometheusServiceLevel, OpenSLO v1alpha or v1 SLO, Pyrra pyrra.dev/v1alpha1 "
                    "ServiceLevelObjective)",
                )
        except _UnmappableError as problem:
            raise InputError([Problem(str(path), problem.path, problem.reason)]) from None
        except (KeyError, TypeError, AttributeError) as error:
            raise InputError(
                [Problem(str(path), at, f"does not have the shape of its apiVersion ({error!r})")]
            ) from None
        converted += 1
    if not converted:
        raise InputError([Problem(str(path), (), "holds no SLO spec")])


def _system(result: _Import) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "System",
        "name": DEFAULT_SYSTEM,
        "cluster": DEFAULT_SYSTEM,
        "owner": {"team": "sre", "slack_channel": "#sre-alerts"},
        # Required, and unknown to the specs: hosts under the reserved .invalid domain, so that the
        # inventory loads but no link it gives can ever seem to work until they are set.
        "monitoring": {
            "grafana_url": "https://grafana.invalid",
            "alertmanager_url": "https://alertmanager.invalid",
            "runbook_url": "https://runbooks.invalid/{system}/{alert}",
        },
        "services": [
            {
                "name": service.name,
                "namespace": service.namespace,
                "metrics": {"port": "http", "instrumentation": "custom"},
                "slos": [{**slo.data, "objective": float(slo.data["objective"])} for slo in service.slos],
            }
            for service in result.services.values()
        ],
    }


def import_specs(paths: Sequence[Path]) -> str:
    """The inventory converted from every SLO spec in `paths`, as commented YAML; raises
    InputError (exit 2) at the file and key path of anything that cannot be mapped."""
    result = _Import()
    for path in paths:
        _convert_file(path, result)
    system = _system(result)
    origin = ", ".join(str(path) for path in paths)
    try:
        parse_system(system, f"the import of {origin}")
    except InputError as error:
        raise InputError([_at_source(problem, result) for problem in error.problems]) from None
    return _render(system, result, origin)


def _at_source(problem: Problem, result: _Import) -> Problem:
    """A problem of the converted inventory, reported at the SLO of the spec it came from."""
    path = problem.path
    if len(path) >= 4 and path[0] == "services" and path[2] == "slos":
        service = list(result.services.values())[int(path[1])]
        slo = service.slos[int(path[3])]
        return Problem(slo.source, slo.path, f"{problem.message} (imported as {format_key_path(path)})")
    return problem


# --- rendering: pyyaml writes the YAML; comments go in at marker keys ------------------------------


class _Dumper(yaml.SafeDumper):
    """pyyaml's safe dumper, with multi-line queries as literal blocks, as their authors wrote them."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)

_MARKER = re.compile(r"^(?P<indent>\s*)(?P<item>- )?__comment_(?P<id>\d+)__: null$")


def _render(system: dict[str, Any], result: _Import, origin: str) -> str:
    comments: list[list[str]] = []

    def marked(lines: list[str], body: dict[str, Any]) -> dict[str, Any]:
        if not lines:
            return body
        comments.append(lines)
        return {f"__comment_{len(comments) - 1}__": None, **body}

    services = []
    for service, raw in zip(result.services.values(), system["services"], strict=True):
        notes = [f"from {service.source}"]
        if service.namespace_chosen:
            notes.append(
                f"namespace: {DEFAULT_NAMESPACE}, as the spec names none: set the namespace the service runs in"
            )
        notes.append(
            "metrics: chosen so that the SLO has a service to belong to; obsbundle scrapes it with a "
            "ServiceMonitor on port 'http' of the Service labelled app: <name>: check the port, or that the "
            "series the SLI queries read come from this scrape (their labels: namespace, service)"
        )
        slos = [marked(slo.comments, dict(raw_slo)) for slo, raw_slo in zip(service.slos, raw["slos"], strict=True)]
        services.append(marked(notes, {**raw, "slos": slos}))
    head = marked(
        [
            "name, cluster: chosen by the import; set the system's name and its cluster's `cluster` label",
        ],
        {key: system[key] for key in ("apiVersion", "kind", "name", "cluster")},
    )
    owner = marked(
        ["owner: chosen by the import; set the team that answers these SLOs and its Slack channel"],
        {"owner": system["owner"]},
    )
    monitoring = marked(
        [
            "monitoring: required and unknown to the specs; set the Grafana and Alertmanager the alerts link",
            "to and where the generated runbooks/ are published (.invalid hosts lead nowhere)",
        ],
        {"monitoring": system["monitoring"]},
    )
    text = "".join(
        yaml.dump(part, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
        for part in (head, owner, monitoring, {"services": services})
    )
    return f"# obsbundle inventory imported from {origin}\n" + _with_comments(text, comments)


def _with_comments(text: str, comments: list[list[str]]) -> str:
    lines: list[str] = []
    pending_item: str | None = None
    for line in text.splitlines():
        match = _MARKER.match(line)
        if match:
            indent = match.group("indent")
            width = len(indent) + (2 if match.group("item") else 0)
            lines.extend(f"{' ' * width}# {comment}" for comment in comments[int(match.group("id"))])
            pending_item = indent if match.group("item") else None
            continue
        if pending_item is not None:
            # The marker was the item's first key: the item's dash moves to the key after it.
            lines.append(f"{pending_item}- {line[len(pending_item) + 2 :]}")
            pending_item = None
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"
