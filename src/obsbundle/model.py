"""The inventory model (contract v1): a frozen, typed description of one system.

Raw YAML or Jsonnet is parsed into these classes once, by `obsbundle.loader`; every generator
reads only these objects. All collections are tuples so that a parsed inventory cannot change.
Rules that need more than one field (a service on an undefined pool, an SLO whose page can
never fire) live in `obsbundle.checks`, which reports them with the key path of the culprit.
"""

from __future__ import annotations

import itertools
import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from prometheus_client import Histogram
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from obsbundle.durations import parse_duration, parse_duration_ms
from obsbundle.stacks import Stack

API_VERSION = "obsbundle/v1"

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_K8S_LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
_K8S_LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$"


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


def _check_fine_duration(value: str) -> str:
    parse_duration_ms(value)
    return value


def _check_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 and not (len(fields) == 1 and fields[0].startswith("@")):
        raise ValueError(
            "must be a five-field cron schedule such as '0 2 * * *' (minute hour day month weekday)"
        )
    return value


# The JSON Schema spells out for editors what the validators above accept: the grammar of
# `obsbundle.durations` (starts with a digit, units in order, not zero) and the cron check. The
# validators stay the loader's checks, for their messages name the fix.
_UNITS_UP_TO_SECONDS = r"(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?"
_DURATION_PATTERN = rf"^(?=\d)(?=.*[1-9]){_UNITS_UP_TO_SECONDS}(?:(?:\d*000|0{{1,2}})ms)?$"
_FINE_DURATION_PATTERN = rf"^(?=\d)(?=.*[1-9]){_UNITS_UP_TO_SECONDS}(?:\d+ms)?$"
_CRON_PATTERN = r"^\s*(?:\S+(?:\s+\S+){4}|@\S+)\s*$"


def decimal_json_schema(*, below_one: bool) -> dict[str, object]:
    """JSON Schema of a Decimal threshold the loader takes as a number or as text: above 0, and
    below 1 when `below_one` (a share). The text's pattern holds the same range, for a quoted
    `"0.8"` loads and `"80"` or `"80%"` does not."""
    fraction = r"0*\.\d*[1-9]\d*"
    text = fraction if below_one else rf"(?:{fraction}|0*[1-9]\d*(?:\.\d*)?)"
    number: dict[str, object] = {"type": "number", "exclusiveMinimum": 0}
    if below_one:
        number["exclusiveMaximum"] = 1
    return {"anyOf": [number, {"type": "string", "pattern": rf"^\s*\+?{text}\s*$"}]}


Duration = Annotated[
    str, AfterValidator(_check_duration), WithJsonSchema({"type": "string", "pattern": _DURATION_PATTERN})
]
"""A Prometheus duration such as `30s`, `5m`, `1h30m`, `30d`."""

FineDuration = Annotated[
    str, AfterValidator(_check_fine_duration), WithJsonSchema({"type": "string", "pattern": _FINE_DURATION_PATTERN})
]
"""A duration that may have milliseconds, for latency thresholds such as `250ms`."""

Name = Annotated[str, Field(pattern=_DNS_LABEL, max_length=63)]
"""A Kubernetes DNS label: lower case letters, digits and '-'."""

CronSchedule = Annotated[str, AfterValidator(_check_cron), WithJsonSchema({"type": "string", "pattern": _CRON_PATTERN})]

# Above 1, not 0: the loader takes an objective of 1 or less for a fraction written where a
# percentage belongs (0.999), and says so.
_PERCENT_TEXT = r"^\s*\+?(?:0*(?:[2-9]|[1-9]\d)(?:\.\d*)?|0*1\.\d*[1-9]\d*)\s*$"
Percent = Annotated[
    Decimal,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 100},
                {"type": "string", "pattern": _PERCENT_TEXT},
            ]
        }
    ),
]
"""A percentage above 1 and below 100, such as `99.9`; `Slo` checks the range with its own messages."""


class Frozen(BaseModel):
    """Base of every model class: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Owner(Frozen):
    """Who is told when something breaks."""

    team: Name
    slack_channel: str = Field(pattern=r"^#[a-z0-9][a-z0-9._-]*$")
    oncall_channel: str | None = Field(
        default=None,
        pattern=r"^#[a-z0-9][a-z0-9._-]*$",
        description="Channel for critical alerts; defaults to slack_channel.",
    )
    oncall_mention: str | None = Field(
        default=None,
        description="Slack mention put on critical alerts, e.g. '<!subteam^S0123>' or '@auth-oncall'.",
    )

    @property
    def page_channel(self) -> str:
        return self.oncall_channel or self.slack_channel


class MonitoringSettings(Frozen):
    """Where the generated objects go and how Prometheus Operator finds them."""

    namespace: Name = Field(default="monitoring", description="Namespace of PrometheusRules and configs.")
    selector_labels: dict[str, str] = Field(
        default_factory=lambda: {"release": "kube-prometheus-stack"},
        description="Labels the Prometheus and Alertmanager resources select objects by.",
    )
    # No defaults for the three addresses: a made-up host in every alert's links would look complete
    # and lead nowhere at 3 a.m.
    grafana_url: str = Field(
        pattern=r"^https?://[^\s]+$",
        description="The Grafana that alert links and dashboard links open",
        examples=["https://grafana.mycompany.net"],
    )
    alertmanager_url: str = Field(
        pattern=r"^https?://[^\s]+$",
        description="The Alertmanager whose silence page the Slack messages link to",
        examples=["https://alertmanager.mycompany.net"],
    )
    stack: Stack = Field(
        default=Stack.KUBE_PROMETHEUS_STACK,
        description="The stack that deploys Prometheus and the standard exporters; it decides the target "
        "labels the generated tests give their series (the rules' selectors hold under both).",
    )
    deadmans_switch_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="Heartbeat URL of the dead man's switch that Watchdog pings every 5 minutes ({system} is "
        "replaced), e.g. a Healthchecks.io check. Unset: Watchdog reaches no one, and generate.py says so.",
    )
    alertmanager_secrets_dir: str = Field(
        default="/etc/alertmanager/secrets",
        pattern=r"^/[^\s]*$",
        description="Folder alertmanager.yaml reads each team's Slack webhook URL from (slack-<team>/url): "
        "where Prometheus Operator mounts the Alertmanager's spec.secrets.",
    )
    blackbox_exporter: str = Field(
        default="prometheus-blackbox-exporter.monitoring.svc:9115",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?$",
        description="host:port of the blackbox_exporter that the generated Probes (dependencies) go through.",
    )
    runbook_url: str = Field(
        description="Where the generated runbooks/ are published, as a pattern of links; {system} and {alert} "
        "are replaced",
        examples=["https://github.com/myorg/runbooks/blob/main/{system}/{alert}.md"],
    )

    @field_validator("selector_labels")
    @classmethod
    def _labels_are_kubernetes_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if not re.match(_K8S_LABEL_KEY, key) or not re.match(_K8S_LABEL_VALUE, value):
                raise ValueError(f"'{key}: {value}' is not a valid Kubernetes label")
        return labels

    @field_validator("runbook_url")
    @classmethod
    def _runbook_url_names_the_alert(cls, pattern: str) -> str:
        if "{alert}" not in pattern:
            raise ValueError("must contain '{alert}' so that every alert links to its own runbook")
        return pattern


class NodePool(Frozen):
    """A set of nodes that carry the same value of the system's node pool label."""

    name: Name
    instance_type: str | None = None
    vcpu: float | None = Field(default=None, gt=0)
    memory_gib: float | None = Field(default=None, gt=0)
    disk_gib: float | None = Field(default=None, gt=0)
    min_nodes: int = Field(ge=0)
    max_nodes: int = Field(ge=1)
    description: str = ""

    @model_validator(mode="after")
    def _min_not_above_max(self) -> NodePool:
        if self.min_nodes > self.max_nodes:
            raise ValueError(
                f"min_nodes ({self.min_nodes}) is greater than max_nodes ({self.max_nodes}); "
                "swap them or raise max_nodes"
            )
        return self


class Instrumentation(StrEnum):
    """How a service exposes its request metrics; decides which SLI queries apply."""

    PROMETHEUS_CLIENT = "prometheus-client"
    """HTTP metrics written with prometheus-client under its conventional names."""
    FASTAPI_INSTRUMENTATOR = "fastapi-instrumentator"
    """prometheus-fastapi-instrumentator's defaults: status grouped as `2xx`…`5xx`."""
    MICROMETER = "micrometer"
    """Spring Boot's `http.server.requests` timer."""
    GRPC = "grpc"
    """go-grpc-prometheus names (Go, and Python's py-grpc-prometheus)."""
    GRPC_SPRING = "grpc-spring"
    """Spring Boot gRPC (grpc-spring): Micrometer's `grpc.server.processing.duration` timer."""
    CUSTOM = "custom"


class MonitorKind(StrEnum):
    SERVICE = "service"
    POD = "pod"


def _check_selector(labels: dict[str, str] | None, *, example: str) -> dict[str, str] | None:
    """A label selector of Kubernetes labels, not empty: a Service's or an exporter's `selector`."""
    if labels is not None:
        if not labels:
            raise ValueError(f"must select on at least one label, e.g. {{app: {example}}}")
        for key, value in labels.items():
            if not re.match(_K8S_LABEL_KEY, key) or not re.match(_K8S_LABEL_VALUE, value):
                raise ValueError(f"'{key}: {value}' is not a valid Kubernetes label")
    return labels


def _check_scrape_endpoint(port: str | int, monitor: MonitorKind, interval: str, scrape_timeout: str) -> None:
    """What Prometheus and a ServiceMonitor accept of a scraped endpoint: a timeout within the
    interval, and a Service port selected by name."""
    if parse_duration(scrape_timeout) > parse_duration(interval):
        raise ValueError(
            f"scrape_timeout ({scrape_timeout}) is longer than interval ({interval}); "
            "Prometheus rejects such a target: shorten the timeout"
        )
    if monitor is MonitorKind.SERVICE and isinstance(port, int):
        raise ValueError(
            f"port {port} is a number, but a ServiceMonitor selects a Service port by name: "
            "name the Service port, or set monitor: pod to scrape the container port"
        )


# Micrometer's timer histogram when percentiles-histogram is on: PercentileHistogramBuckets
# (powers of 4 with thirds in between, in nanoseconds) clamped to the timer's expected range,
# 1 ms..30 s, plus both ends, in seconds as its Prometheus registry prints `le` (Java's
# Double.toString, the same digits as Python's repr). Source: micrometer-core
# PercentileHistogramBuckets, AbstractTimerBuilder, DistributionStatisticConfig (22207bf).
MICROMETER_TIMER_BUCKETS: tuple[float, ...] = (
    0.001, 0.001048576, 0.001398101, 0.001747626, 0.002097151, 0.002446676, 0.002796201,
    0.003145726, 0.003495251, 0.003844776, 0.004194304, 0.005592405, 0.006990506, 0.008388607,
    0.009786708, 0.011184809, 0.01258291, 0.013981011, 0.015379112, 0.016777216, 0.022369621,
    0.027962026, 0.033554431, 0.039146836, 0.044739241, 0.050331646, 0.055924051, 0.061516456,
    0.067108864, 0.089478485, 0.111848106, 0.134217727, 0.156587348, 0.178956969, 0.20132659,
    0.223696211, 0.246065832, 0.268435456, 0.357913941, 0.447392426, 0.536870911, 0.626349396,
    0.715827881, 0.805306366, 0.894784851, 0.984263336, 1.073741824, 1.431655765, 1.789569706,
    2.147483647, 2.505397588, 2.863311529, 3.22122547, 3.579139411, 3.937053352, 4.294967296,
    5.726623061, 7.158278826, 8.589934591, 10.021590356, 11.453246121, 12.884901886,
    14.316557651, 15.748213416, 17.179869184, 22.906492245, 28.633115306, 30.0,
)

# The boundaries each client library publishes when the service sets none of its own, used
# when the inventory lists no histogram_buckets. prometheus-client's are read from the library
# itself (without +Inf); prometheus-fastapi-instrumentator's `http_request_duration_seconds`
# has `latency_lowr_buckets=(0.1, 0.5, 1)` (metrics.default); go-grpc-prometheus uses
# client_golang's prometheus.DefBuckets.
DEFAULT_BUCKETS: dict[Instrumentation, tuple[float, ...]] = {
    Instrumentation.PROMETHEUS_CLIENT: tuple(b for b in Histogram.DEFAULT_BUCKETS if b != float("inf")),
    Instrumentation.FASTAPI_INSTRUMENTATOR: (0.1, 0.5, 1.0),
    Instrumentation.MICROMETER: MICROMETER_TIMER_BUCKETS,
    Instrumentation.GRPC: (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    Instrumentation.GRPC_SPRING: MICROMETER_TIMER_BUCKETS,
    Instrumentation.CUSTOM: (),
}

# The client setting that makes each instrumentation publish its latency histogram, and with
# which boundaries: what an inventory's histogram_buckets must agree with. Micrometer and
# go-grpc-prometheus publish no buckets at all until it is set.
HISTOGRAM_SETTING: dict[Instrumentation, str] = {
    Instrumentation.PROMETHEUS_CLIENT: "the buckets= argument of the service's Histogram",
    Instrumentation.FASTAPI_INSTRUMENTATOR: "Instrumentator().instrument(app, latency_lowr_buckets=(...))",
    Instrumentation.MICROMETER: (
        "management.metrics.distribution.percentiles-histogram.http.server.requests=true "
        "(boundaries above), or management.metrics.distribution.slo.http.server.requests=<durations>"
    ),
    Instrumentation.GRPC: (
        "grpc_prometheus.EnableHandlingTimeHistogram(), with grpc_prometheus.WithHistogramBuckets(...) "
        "for other boundaries"
    ),
    Instrumentation.GRPC_SPRING: (
        "management.metrics.distribution.percentiles-histogram.grpc.server.processing.duration=true "
        "(boundaries above), or management.metrics.distribution.slo.grpc.server.processing.duration=<durations>"
    ),
    Instrumentation.CUSTOM: "the service's own instrumentation",
}


class Metrics(Frozen):
    """Where and how a workload's /metrics endpoint is scraped."""

    port: str | int = Field(
        description="Port name (Service port for a ServiceMonitor, container port for a PodMonitor), "
        "or a container port number when the port has no name (PodMonitor only)."
    )
    path: str = Field(default="/metrics", pattern=r"^/[^\s]*$")
    scheme: Literal["http", "https"] = "http"
    interval: Duration = "30s"
    scrape_timeout: Duration = "10s"
    instrumentation: Instrumentation = Instrumentation.PROMETHEUS_CLIENT
    monitor: MonitorKind = Field(
        default=MonitorKind.SERVICE,
        description="service: the workload has a Kubernetes Service with a named port; pod: scrape pods.",
    )
    service_name: Name | None = Field(
        default=None, description="Name of the Kubernetes Service, when it differs from the service's name."
    )
    histogram_buckets: tuple[float, ...] | None = Field(
        default=None, description="Latency histogram bucket boundaries (le values), in seconds."
    )

    @field_validator("port")
    @classmethod
    def _port_is_name_or_number(cls, port: str | int) -> str | int:
        if isinstance(port, int):
            if not 1 <= port <= 65535:
                raise ValueError("a port number must be between 1 and 65535")
        elif not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", port) or len(port) > 15:
            raise ValueError("a port name must be an IANA_SVC_NAME: at most 15 lower case letters, digits, '-'")
        return port

    @field_validator("histogram_buckets")
    @classmethod
    def _buckets_ascend(cls, buckets: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if buckets is not None and (
            not buckets or any(b <= a for a, b in itertools.pairwise(buckets))
        ):
            raise ValueError("must be a non-empty list of strictly increasing boundaries in seconds")
        return buckets

    @model_validator(mode="after")
    def _timeout_fits_interval(self) -> Metrics:
        _check_scrape_endpoint(self.port, self.monitor, self.interval, self.scrape_timeout)
        return self

    @property
    def buckets(self) -> tuple[float, ...]:
        """The histogram boundaries in force: the inventory's, or the library default."""
        if self.histogram_buckets is not None:
            return self.histogram_buckets
        return DEFAULT_BUCKETS[self.instrumentation]


class Resources(Frozen):
    cpu: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?m?$")
    memory: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")


class ResourceSpec(Frozen):
    requests: Resources = Resources()
    limits: Resources = Resources()


class Autoscaling(Frozen):
    min: int = Field(ge=1)
    max: int = Field(ge=1)
    cpu_utilization: int | None = Field(default=None, ge=1, le=100)
    memory_utilization: int | None = Field(default=None, ge=1, le=100)
    hpa_name: Name | None = Field(default=None, description="HPA name, when not '<service>' or '<service>-hpa'.")

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Autoscaling:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max}); swap them")
        return self


class SliKind(StrEnum):
    AVAILABILITY = "availability"
    LATENCY = "latency"
    CUSTOM = "custom"
    """Good and total events: `good_query` and `total_query`."""
    BAD_EVENTS = "bad-events"
    """Bad and total events: `bad_query` and `total_query`; good is total − bad."""
    ERROR_RATIO = "error-ratio"
    """A ready-made ratio of bad over all events (Sloth's `raw`): `error_ratio_query`."""
    GAUGE = "gauge"
    """A 0/1 gauge such as `probe_success` or `up`: every sample is one event, good when 1."""


SLI_QUERY_KEYS: dict[SliKind, tuple[str, ...]] = {
    SliKind.AVAILABILITY: (),
    SliKind.LATENCY: ("threshold",),
    SliKind.CUSTOM: ("good_query", "total_query"),
    SliKind.BAD_EVENTS: ("bad_query", "total_query"),
    SliKind.ERROR_RATIO: ("error_ratio_query",),
    SliKind.GAUGE: ("gauge_query",),
}
"""The keys each SLI kind needs; every other kind's keys are refused on it."""

WINDOW_PLACEHOLDER = "{{.window}}"
"""Sloth's and the importer's range placeholder in SLI queries; obsbundle evaluates it as 5m."""


ClusterName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
"""A cluster's name, as the `cluster` external label of its Prometheus carries it."""

LabelName = Annotated[str, Field(pattern=_LABEL_NAME)]
"""A Prometheus label name."""

AlertName = Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=100)]
"""An alert name in the CamelCase of the Prometheus community's alerts."""

SLO_RESERVED_LABELS = frozenset(
    {"system", "namespace", "service", "slo", "team", "severity", "window", "node_pool", "alertname", "le",
     "cluster", "datasource", "datastore", "queue"}
)  # fmt: skip
"""Labels the SLO rules, routing and dashboards set themselves (a grouped SLO's variables are named
after its labels): no group or extra alert label may take them."""

SLO_MANAGED_ANNOTATIONS = frozenset({"description", "runbook_url", "dashboard_url"})
"""Annotations every SLO alert carries from the inventory; extra annotations may not replace them."""


def _check_alert_labels(labels: dict[str, str]) -> dict[str, str]:
    taken = sorted(set(labels) & SLO_RESERVED_LABELS)
    if taken:
        raise ValueError(
            f"{', '.join(taken)} {'is' if len(taken) == 1 else 'are'} set by obsbundle (routing reads "
            "them): route on a label of your own instead, e.g. labels: {pager: checkout}"
        )
    return labels


def _check_annotations(annotations: dict[str, str]) -> dict[str, str]:
    taken = sorted(set(annotations) & SLO_MANAGED_ANNOTATIONS)
    if taken:
        raise ValueError(
            f"{', '.join(taken)} {'is' if len(taken) == 1 else 'are'} written from the inventory: "
            "remove it, or set monitoring.runbook_url / the SLO's description"
        )
    for name, text in annotations.items():
        for action in re.findall(r"\{\{(.*?)\}\}", text):
            if not re.fullmatch(r"\s*\$labels\.[a-zA-Z_][a-zA-Z0-9_]*\s*", action):
                raise ValueError(
                    f"{name}: {{{{{action}}}}} is not a label: annotations may use {{{{ $labels.<name> }}}} only, "
                    "so that the generated tests can check the text the alert will carry"
                )
    return annotations


class _AlertExtras(Frozen):
    """Labels and annotations the inventory adds to generated alerts."""

    labels: dict[LabelName, str] = Field(default_factory=dict, description="Extra labels on these alerts.")
    annotations: dict[LabelName, str] = Field(
        default_factory=dict, description="Extra annotations; {{ $labels.<name> }} is filled in."
    )

    @field_validator("labels")
    @classmethod
    def _labels_are_free(cls, labels: dict[str, str]) -> dict[str, str]:
        return _check_alert_labels(labels)

    @field_validator("annotations")
    @classmethod
    def _annotations_are_free(cls, annotations: dict[str, str]) -> dict[str, str]:
        return _check_annotations(annotations)


class SloTierAlerting(_AlertExtras):
    """The page tiers (1h/5m and 6h/30m, critical) or the ticket tiers (1d/2h and 3d/6h, warning)
    of one SLO's burn-rate alerts."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    enabled: bool = Field(default=True, description="false: these tiers raise no alert for this SLO.")
    for_: Duration | None = Field(
        default=None,
        alias="for",
        description="How long both windows must burn before the alert fires; default: a share of the short window.",
    )


class SloAlerting(_AlertExtras):
    """How one SLO alerts: Sloth's and Pyrra's per-SLO alerting keys. Its labels and annotations go
    on every alert of the SLO; the tiers' own are added to theirs."""

    name: AlertName | None = Field(
        default=None, description="Name of the SLO's burn-rate alerts; default SloErrorBudgetBurn."
    )
    page: SloTierAlerting = Field(default_factory=SloTierAlerting)
    ticket: SloTierAlerting = Field(default_factory=SloTierAlerting)
    absent: bool = Field(default=True, description="false: no SloSliAbsent alert for this SLO.")

    def tier(self, severity: str) -> SloTierAlerting:
        """The settings of the tiers of `severity`: critical tiers page, warning tiers file tickets."""
        return self.page if severity == "critical" else self.ticket


def _slo_kind_schema(schema: JsonDict) -> None:
    """The loader's rules on SLI keys, for editors: each key only with a kind that takes it, each
    kind with its keys, keys of different kinds never together, no guard on an error ratio."""
    keys = sorted({key for needed in SLI_QUERY_KEYS.values() for key in needed})
    rules: list[Any] = []  # JSON Schema fragments; pydantic's JsonValue is too narrow to build them in
    for key in keys:
        kinds = [kind.value for kind, needed in SLI_QUERY_KEYS.items() if key in needed]
        rules.append({"if": {"required": [key]}, "then": {"properties": {"sli": {"enum": kinds}}}})
    for kind, needed in SLI_QUERY_KEYS.items():
        if needed:
            chosen = {"properties": {"sli": {"const": kind.value}}, "required": ["sli"]}
            rules.append({"if": chosen, "then": {"required": list(needed)}})
    for first, second in itertools.combinations(keys, 2):
        if not any(first in needed and second in needed for needed in SLI_QUERY_KEYS.values()):
            rules.append({"not": {"required": [first, second]}})
    for key in ("good_query", "bad_query"):
        rules.append({"if": {"required": [key]}, "then": {"required": ["total_query"]}})
    counted = {"anyOf": [{"required": ["good_query"]}, {"required": ["bad_query"]}]}
    rules.append({"if": {"required": ["total_query"]}, "then": counted})
    ratio = {"properties": {"sli": {"const": SliKind.ERROR_RATIO.value}}, "required": ["sli"]}
    for condition in ({"required": ["error_ratio_query"]}, ratio):
        rules.append({"if": condition, "then": {"not": {"required": ["min_bad_events"]}}})
    schema["allOf"] = rules


class Slo(Frozen):
    """A service level objective over a rolling window."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, json_schema_extra=_slo_kind_schema
    )

    name: Name
    sli: SliKind | None = Field(
        default=None,
        description="availability, latency, custom (good/total), bad-events (bad/total), error-ratio or gauge; "
        "defaults to the kind whose keys are given (latency for a threshold), else availability.",
    )
    objective: Percent = Field(description="Percent of good events, strictly between 0 and 100.")
    window: Duration = "30d"
    threshold: FineDuration | None = Field(default=None, description="Latency SLOs: the slowest good request.")
    good_query: str | None = Field(
        default=None,
        description="custom: PromQL counter of good events, or their increase over [{{.window}}].",
    )
    bad_query: str | None = Field(
        default=None,
        description="bad-events: PromQL counter of bad events, or their increase over [{{.window}}].",
    )
    total_query: str | None = Field(
        default=None,
        description="custom and bad-events: PromQL counter of all events, or their increase over [{{.window}}].",
    )
    error_ratio_query: str | None = Field(
        default=None,
        description="error-ratio: PromQL ratio (0 to 1) of bad over all events over [{{.window}}]; every window "
        "is the average of its 5-minute values.",
    )
    gauge_query: str | None = Field(
        default=None,
        description="gauge: a 0/1 gauge selector such as probe_success{dependency=\"x\"}; every sample is one event, "
        "good when 1.",
    )
    min_bad_events: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Low-traffic guard: the fewest bad events in a burn-rate alert's long window for it to fire "
            "(default 5), so that a few failures in a quiet hour do not page."
        ),
    )
    group_by: tuple[LabelName, ...] = Field(
        default=(),
        description="Labels of the SLI's series that split the SLO: one SLI, budget and alert set per value "
        "(per handler, tenant, gRPC method).",
    )
    alerting: SloAlerting = Field(default_factory=SloAlerting)
    description: str = ""

    @field_validator("group_by")
    @classmethod
    def _group_labels_are_free(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} is listed twice: list each label once")
        taken = sorted(set(labels) & SLO_RESERVED_LABELS)
        if taken:
            raise ValueError(
                f"{', '.join(taken)} {'is' if len(taken) == 1 else 'are'} the SLO's own "
                f"label{'s' if len(taken) > 1 else ''}, not the SLI's: group by a label of the SLI's series, "
                "such as handler, tenant or grpc_method"
            )
        return labels

    @field_validator("objective")
    @classmethod
    def _objective_in_range(cls, objective: Decimal) -> Decimal:
        if not Decimal(0) < objective < Decimal(100):
            raise ValueError(
                "must be between 0 and 100, exclusive: write 99.9 for a 99.9 % objective"
            )
        if objective <= 1:
            # A fraction where a percentage belongs: an objective of 1 % or less is never what was meant.
            example = f"{(objective * 100).normalize():f} for {objective}" if objective < 1 else "99.9 for 0.999"
            raise ValueError(f"is in percent, not a fraction: write {example}")
        return objective

    @field_validator("window")
    @classmethod
    def _window_is_whole_days(cls, window: str) -> str:
        seconds = parse_duration(window)
        if seconds % 86400 or not 1 <= seconds // 86400 <= 90:
            raise ValueError("must be a whole number of days between 1d and 90d, e.g. 30d")
        return window

    @model_validator(mode="after")
    def _fields_match_the_sli(self) -> Slo:
        given = self._given_keys()
        implied = [kind for kind, keys in SLI_QUERY_KEYS.items() if keys and given & set(keys) == set(keys)]
        if self.sli is None and len(implied) > 1:
            raise ValueError(
                f"{' and '.join(sorted(given))} belong to different SLI kinds "
                f"({', '.join(kind.value for kind in implied)}): keep one kind's keys, or say which with sli:"
            )
        kind = self.kind
        needed = SLI_QUERY_KEYS[kind]
        missing = [key for key in needed if key not in given]
        if missing:
            example = {"threshold": "threshold: 500ms"}.get(missing[0], f"{missing[0]}: <PromQL>")
            raise ValueError(f"a {kind.value} SLO needs {' and '.join(missing)}, e.g. {example}")
        foreign = sorted(given - set(needed))
        if foreign:
            owners = sorted({k.value for k, keys in SLI_QUERY_KEYS.items() if set(foreign) & set(keys)})
            implied_by = [key for key in needed if key in given]
            what = (
                f"sli is {kind.value}"
                if self.sli is not None or not implied_by
                else f"{implied_by[0]} makes this {'an' if kind.value[0] in 'aeiou' else 'a'} {kind.value} SLO"
            )
            raise ValueError(
                f"{' and '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} for {' or '.join(owners)} SLOs, "
                f"but {what}: remove {'it' if len(foreign) == 1 else 'them'}, or set sli: {owners[0]} "
                f"and give its keys ({', '.join(SLI_QUERY_KEYS[SliKind(owners[0])])})"
            )
        if kind is SliKind.ERROR_RATIO and self.min_bad_events is not None:
            raise ValueError(
                "min_bad_events counts bad events, and an error-ratio SLI has none (only their ratio): remove it, "
                "or give bad_query and total_query (a bad-events SLI) so that the low-traffic guard can count them"
            )
        return self

    def _given_keys(self) -> set[str]:
        values = {
            "threshold": self.threshold,
            "good_query": self.good_query,
            "bad_query": self.bad_query,
            "total_query": self.total_query,
            "error_ratio_query": self.error_ratio_query,
            "gauge_query": self.gauge_query,
        }
        return {key for key, value in values.items() if value}

    @property
    def kind(self) -> SliKind:
        if self.sli is not None:
            return self.sli
        given = self._given_keys()
        for kind in (SliKind.ERROR_RATIO, SliKind.GAUGE, SliKind.BAD_EVENTS, SliKind.CUSTOM, SliKind.LATENCY):
            if given & set(SLI_QUERY_KEYS[kind]) - {"total_query"}:
                return kind
        return SliKind.AVAILABILITY

    @property
    def has_event_counts(self) -> bool:
        """Whether the SLI records events that the low-traffic guard can count: all kinds but a
        ready-made error ratio, whose 5-minute pieces each weigh one."""
        return self.kind is not SliKind.ERROR_RATIO

    @property
    def error_budget(self) -> Decimal:
        """Allowed fraction of bad events, e.g. Decimal('0.005') for 99.5 %."""
        return (Decimal(100) - self.objective) / Decimal(100)

    @property
    def window_seconds(self) -> int:
        return parse_duration(self.window)

    @property
    def threshold_seconds(self) -> Decimal | None:
        """The latency threshold in seconds, exact (`250ms` → Decimal('0.25'))."""
        if self.threshold is None:
            return None
        return (Decimal(parse_duration_ms(self.threshold)) / 1000).normalize()


class Controller(StrEnum):
    """The Kubernetes controller that runs a long-running workload; decides which
    kube-state-metrics (or Argo Rollouts) series describe its replicas and rollouts."""

    DEPLOYMENT = "deployment"
    STATEFULSET = "statefulset"
    DAEMONSET = "daemonset"
    ROLLOUT = "rollout"
    """An Argo Rollouts `Rollout`: no `kube_deployment_*` series; the Rollouts controller's own
    `rollout_info*` series describe it."""


class WorkloadKind(StrEnum):
    API = "api"
    WORKER = "worker"
    JOB = "job"
    CRONJOB = "cronjob"


class Service(Frozen):
    """A workload: an API behind a Kubernetes Service, a queue worker, a Job or a CronJob."""

    name: Name
    namespace: Name
    kind: WorkloadKind = WorkloadKind.API
    controller: Controller | None = Field(
        default=None,
        description="api and worker: what runs it, deployment (default), statefulset, daemonset or rollout "
        "(Argo Rollouts); not for jobs and cronjobs.",
    )
    description: str = ""
    node_pool: Name | None = None
    replicas: int | None = Field(default=None, ge=0)
    autoscaling: Autoscaling | None = None
    resources: ResourceSpec | None = None
    metrics: Metrics | None = None
    selector: dict[str, str] | None = Field(
        default=None, description="Labels that select the workload's Service or pods; default {app: <name>}."
    )
    owner: Owner | None = None
    slos: tuple[Slo, ...] = ()
    datastores: tuple[Name, ...] = Field(default=(), description="Datastores this service uses.")
    volumes: tuple[Name, ...] = Field(default=(), description="PersistentVolumeClaims to watch for filling up.")
    schedule: CronSchedule | None = Field(default=None, description="CronJobs: the cron schedule.")
    backoff_limit: int | None = Field(default=None, ge=0, description="Jobs: retries before failure.")
    latency_alert: FineDuration | None = Field(
        default=None, description="Alert when P95 latency stays above this (e.g. 2s)."
    )
    error_rate_alert: Decimal | None = Field(
        default=None, gt=0, lt=1, description="Alert when the 5xx ratio stays above this (e.g. 0.05)."
    )
    errors_per_second_alert: Decimal | None = Field(
        default=None, gt=0, description="Alert when 5xx responses per second stay above this (e.g. 0.1)."
    )
    memory_limit_alert: Decimal = Field(
        default=Decimal("0.9"), gt=0, lt=1, description="Warn when memory exceeds this share of the container's limit."
    )

    @field_validator("selector")
    @classmethod
    def _selector_is_labels(cls, labels: dict[str, str] | None) -> dict[str, str] | None:
        return _check_selector(labels, example="my-service")

    @model_validator(mode="after")
    def _fields_match_the_kind(self) -> Service:
        if self.kind is WorkloadKind.API and self.metrics is None:
            raise ValueError("an api service needs metrics: {port: ..., path: ...} so that it is scraped")
        if self.kind is WorkloadKind.CRONJOB and self.schedule is None:
            raise ValueError("a cronjob needs a schedule, e.g. schedule: '0 2 * * *'")
        if self.kind is not WorkloadKind.CRONJOB and self.schedule is not None:
            raise ValueError(f"schedule is only for cronjobs, but kind is {self.kind.value}")
        if self.slos and self.metrics is None:
            raise ValueError("SLOs need metrics: add a metrics section or remove the slos")
        if self.controller is not None and self.kind not in (WorkloadKind.API, WorkloadKind.WORKER):
            raise ValueError(
                f"controller is only for api and worker services; a {self.kind.value} is run by its own controller"
            )
        return self

    @property
    def workload_controller(self) -> Controller | None:
        """The controller of a long-running service (deployment unless the inventory says), None for jobs."""
        if self.kind not in (WorkloadKind.API, WorkloadKind.WORKER):
            return None
        return self.controller or Controller.DEPLOYMENT

    @property
    def labels_selector(self) -> dict[str, str]:
        return dict(self.selector) if self.selector else {"app": self.name}

    @property
    def has_http_api(self) -> bool:
        return self.kind is WorkloadKind.API


class DatastoreKind(StrEnum):
    POSTGRES = "postgres"
    REDIS = "redis"
    RABBITMQ = "rabbitmq"
    KAFKA = "kafka"
    SQLITE = "sqlite"


class ExporterEndpoint(Frozen):
    """Where a datastore's standard exporter is scraped: postgres_exporter, redis_exporter,
    RabbitMQ's own rabbitmq_prometheus plugin, or kafka_exporter. The generated ServiceMonitor
    (or PodMonitor) labels every series of it `service=<datastore name>`."""

    port: str | int = Field(
        default="metrics",
        description="Port name of the exporter's Service (a container port name or number with monitor: pod).",
    )
    path: str = Field(default="/metrics", pattern=r"^/[^\s]*$")
    interval: Duration = "30s"
    scrape_timeout: Duration = "10s"
    monitor: MonitorKind = MonitorKind.SERVICE
    selector: dict[str, str] | None = Field(
        default=None,
        description="Labels that select the exporter's Service (or pods); default {app: <datastore name>}.",
    )

    @field_validator("selector")
    @classmethod
    def _selector_is_labels(cls, labels: dict[str, str] | None) -> dict[str, str] | None:
        return _check_selector(labels, example="redis-exporter")

    @model_validator(mode="after")
    def _port_fits_the_monitor(self) -> ExporterEndpoint:
        _check_scrape_endpoint(self.port, self.monitor, self.interval, self.scrape_timeout)
        return self


class Datastore(Frozen):
    name: Name
    kind: DatastoreKind
    namespace: Name
    node_pool: Name | None = None
    description: str = ""
    exporter_source: Name | None = Field(
        default=None, description="`source` label of its series in the pool & queue exporter."
    )
    pgbouncer_source: Name | None = Field(default=None, description="Postgres: exporter source of its PgBouncer.")
    max_connections_alert: Decimal = Field(
        default=Decimal("0.8"), gt=0, lt=1, description="Postgres: alert above this share of max_connections."
    )
    volume: Name | None = Field(default=None, description="PersistentVolumeClaim holding its data.")
    owner: Owner | None = Field(
        default=None, description="Who answers its alerts, when not the system's owner (a service's own database)."
    )
    service_name: Name | None = Field(
        default=None,
        description="The Kubernetes Service its clients connect to, when not named like the datastore; "
        "the pool & queue exporter's generated configuration reads it there.",
    )
    statefulset: Name | None = Field(
        default=None,
        description="The StatefulSet that runs it, watched for replicas and rollouts; none for an embedded "
        "store (SQLite).",
    )
    replicas: int = Field(
        default=1,
        ge=1,
        description="Pods of its StatefulSet. Postgres with more than one streams to replicas, whose lag is "
        "watched; Redis with more than one replicates.",
    )
    metrics: ExporterEndpoint | None = Field(
        default=None,
        description="Its standard exporter (postgres_exporter, redis_exporter, rabbitmq_prometheus, "
        "kafka_exporter), for health alerts beyond connections and queues.",
    )
    cache_hit_target: Percent | None = Field(
        default=None, description="Redis: the keyspace hit ratio to stay above, in percent (e.g. 70)."
    )

    @model_validator(mode="after")
    def _fields_match_the_kind(self) -> Datastore:
        if self.cache_hit_target is not None and self.kind is not DatastoreKind.REDIS:
            raise ValueError(f"cache_hit_target is only for redis, but kind is {self.kind.value}")
        if self.kind is DatastoreKind.SQLITE and (self.statefulset or self.metrics):
            raise ValueError("sqlite lives inside its service's pods: it has no statefulset or exporter of its own")
        return self

    @property
    def source(self) -> str:
        return self.exporter_source or self.name


class Broker(StrEnum):
    RABBITMQ = "rabbitmq"
    REDIS = "redis"
    POSTGRES = "postgres"
    KAFKA = "kafka"


class Queue(Frozen):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    broker: Broker
    datastore: Name
    consumers: tuple[Name, ...] = ()
    consumer_group: str | None = Field(default=None, description="Kafka: the consumer group to watch.")
    max_backlog: int = Field(default=1000, ge=1, description="Alert when ready messages exceed this.")
    max_age: Duration = Field(default="10m", description="Alert when the oldest message is older.")
    max_lag: int = Field(default=10000, ge=1, description="Kafka: alert when consumer lag exceeds this.")

    @model_validator(mode="after")
    def _kafka_needs_a_group(self) -> Queue:
        if self.broker is Broker.KAFKA and not self.consumer_group:
            raise ValueError("a kafka queue needs consumer_group: the group whose lag is watched")
        return self


class ControlPlane(StrEnum):
    MANAGED = "managed"
    """Run by the cloud (EKS, GKE, AKS): its components are not scraped and not alerted on."""
    SELF_MANAGED = "self-managed"
    """kubeadm and the like: the apiserver, etcd, scheduler and controller-manager are watched."""


class PlatformWorkload(Frozen):
    """A cluster component outside the inventory's services (node-exporter, CoreDNS, ArgoCD's
    parts, Prometheus itself), watched for replicas and rollouts like a service."""

    name: Name
    namespace: Name
    controller: Controller = Controller.DEPLOYMENT
    description: str = ""
    node_pool: Name | None = None
    volumes: tuple[Name, ...] = Field(default=(), description="PersistentVolumeClaims to watch for filling up.")


class Platform(Frozen):
    """Cluster add-ons the system relies on and that have alerts of their own."""

    argocd_namespace: Name | None = Field(default=None, description="Watch ArgoCD applications.")
    control_plane: ControlPlane = Field(
        default=ControlPlane.MANAGED,
        description="self-managed (kubeadm): watch the apiserver, etcd, scheduler, controller-manager and "
        "client certificates; managed (EKS, GKE, AKS): leave them to the provider.",
    )
    cert_manager_namespace: Name | None = Field(
        default=None, description="Watch cert-manager's certificates (from its controller's metrics)."
    )
    argo_rollouts_namespace: Name | None = Field(
        default=None, description="Namespace of the Argo Rollouts controller, whose metrics describe Rollouts."
    )
    workloads: tuple[PlatformWorkload, ...] = Field(
        default=(), description="Cluster components to watch like services: node-exporter, CoreDNS, ArgoCD…"
    )


class Dependency(Frozen):
    """An endpoint outside the system's own workloads that it needs: a third-party API, or a public
    host of the system itself, probed through blackbox_exporter."""

    name: Name
    url: str = Field(pattern=r"^https?://[^\s]+$", description="What the prober requests.")
    module: str = Field(
        default="http_2xx",
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
        description="blackbox_exporter module the probe uses (http_2xx in its default config).",
    )
    interval: Duration = "60s"
    latency_alert: FineDuration = Field(default="5s", description="Warn when probes stay slower than this.")
    used_by: tuple[Name, ...] = Field(default=(), description="Services that call it; their dashboards show it.")
    owner: Owner | None = Field(default=None, description="Who answers its alerts, when not the system's owner.")
    public_entry: bool = Field(
        default=False,
        description="The system's own public entry point (its Ingress or load balancer), not a third party's API: "
        "when it fails every user is cut off and the owner can act, so its failure and an imminent certificate "
        "expiry page (critical) where a third party's only warn.",
    )
    description: str = ""


class System(Frozen):
    """One platform: the unit of an inventory file and of the output folder."""

    api_version: Literal["obsbundle/v1"] = Field(alias="apiVersion")
    kind: Literal["System"]
    name: Name
    description: str = ""
    cluster: ClusterName = Field(
        description="The cluster it runs in, as its Prometheus's `cluster` external label names it",
        examples=["prod-eu-1"],
    )
    clusters: tuple[ClusterName, ...] = Field(
        default=(),
        description="Every cluster it runs in, when it runs in several (staging and production, two regions), "
        "`cluster` among them. Read by the rules for a global ruler (`--ruler global`), which select these "
        "clusters and keep each apart; default: `[cluster]`",
        examples=[["prod-eu-1", "prod-us-1"]],
    )
    owner: Owner
    node_pool_label: str = Field(default="node-role", pattern=_K8S_LABEL_KEY)
    monitoring: MonitoringSettings = Field(
        description="Where the generated objects go, and the addresses their links open: grafana_url, "
        "alertmanager_url and runbook_url are required",
        examples=["{grafana_url: https://grafana.mycompany.net, alertmanager_url: https://alertmanager.mycompany.net, "
                  "runbook_url: 'https://github.com/myorg/runbooks/blob/main/{system}/{alert}.md'}"],
    )
    platform: Platform = Platform()
    node_pools: tuple[NodePool, ...] = ()
    services: tuple[Service, ...] = ()
    datastores: tuple[Datastore, ...] = ()
    queues: tuple[Queue, ...] = ()
    dependencies: tuple[Dependency, ...] = ()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("clusters")
    @classmethod
    def _clusters_name_cluster_once(cls, clusters: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if not clusters:
            return clusters
        repeated = sorted({name for name in clusters if clusters.count(name) > 1})
        if repeated:
            raise ValueError(f"names {', '.join(repeated)} more than once: list each cluster once")
        cluster = info.data.get("cluster")
        if cluster is not None and cluster not in clusters:
            raise ValueError(
                f"must include the system's `cluster` ({cluster}): add it, or set `cluster` to one of these"
            )
        return clusters

    @property
    def all_clusters(self) -> tuple[str, ...]:
        """Every cluster the system runs in: `clusters`, else its one `cluster`."""
        return self.clusters or (self.cluster,)

    def slo_group_labels(self, service: Service | None = None) -> tuple[str, ...]:
        """Every label a grouped SLO (`group_by`) of `service`, else of the whole system, splits by, sorted."""
        services = [service] if service is not None else self.services
        return tuple(sorted({label for each in services for slo in each.slos for label in slo.group_by}))

    def owner_of(self, entity: Service | Datastore | Dependency) -> Owner:
        return entity.owner or self.owner

    def node_pool(self, name: str) -> NodePool:
        return next(pool for pool in self.node_pools if pool.name == name)

    def service(self, name: str) -> Service:
        return next(service for service in self.services if service.name == name)

    def datastore(self, name: str) -> Datastore:
        return next(store for store in self.datastores if store.name == name)

    @property
    def scraped_services(self) -> tuple[Service, ...]:
        return tuple(service for service in self.services if service.metrics is not None)

    @property
    def node_pool_label_name(self) -> str:
        """The label kube-state-metrics gives the node pool: `label_` + the sanitised node label."""
        return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", self.node_pool_label)


class Inventory(Frozen):
    """Every system read from the inventory paths, sorted by name."""

    systems: tuple[System, ...]
