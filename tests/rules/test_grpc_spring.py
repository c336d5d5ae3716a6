"""logpilot-grpc's SLO alerts, run by promtool on the series a Spring Boot gRPC server publishes
through grpc-spring, as Prometheus stores them after our PodMonitor's scrape.

The exposed label set is grpc-spring's exposition fixture when there is one, else the tags that
grpc-spring's docs/en/actuator.md lists for `grpc.server.processing.duration` (`service`,
`method`, `methodType`, `statusCode`). Tag values are grpc-java's enum names, which Micrometer's
AbstractMetricCollectingInterceptor writes (`Status.Code.name()`, `MethodType.name()`). The
target labels are those Prometheus Operator gives the generated PodMonitor's targets; the
target's `service` wins, so the gRPC service name is stored as `exported_service`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.model import Instrumentation, Metrics, Service, System
from obsbundle.monitors.workloads import workload_monitor
from obsbundle.render import render
from obsbundle.rules import generate_rules
from obsbundle.settings import Settings
from obsbundle.stacks import workload_target_labels
from obsbundle.tools import promtool
from tests.support import exposition

COUNT = "grpc_server_processing_duration_seconds_count"
DOCUMENTED_TAGS = ("service", "method", "methodType", "statusCode")
"""The timer's tags in grpc-spring docs/en/actuator.md (grpc-ecosystem/grpc-spring@b83afe6)."""
EXAMPLE_CALL = {"service": "logpilot.LogService", "method": "Ingest"}
"""The protobuf service and method: the user's names (entity labels), not part of the contract."""
CALLS_PER_MINUTE = 600
SERVICE = "logpilot-grpc"


def _exposed_call() -> dict[str, str]:
    """One unary call's exposed labels: the fixture's when it has the timer, else the documented tags."""
    fixture = [one for one in exposition.load("grpc-spring") if one.name == COUNT]
    unary = [one.label_map for one in fixture if one.label_map.get("methodType") == "UNARY"]
    if unary:
        return unary[0]
    return {**EXAMPLE_CALL, "methodType": "UNARY", "statusCode": "OK"}


def _target(system: System, service: Service) -> dict[str, str]:
    """The generated PodMonitor's target labels, with example values where the cluster decides."""
    cluster_decided = {"instance": "10.244.1.7:8081", "pod": f"{SERVICE}-6f7d9c8b5-x2k4q", "container": SERVICE}
    labels = workload_target_labels(workload_monitor(system, service, Settings()))
    return {name: value if value is not None else cluster_decided[name] for name, value in labels.items()}


def _stored(system: System, service: Service, status_code: str, method_type: str = "UNARY") -> str:
    """The stored series of calls ending with `status_code`, as a promtool series selector."""
    exposed = exposition.Series.of(COUNT, {**_exposed_call(), "statusCode": status_code, "methodType": method_type})
    stored = exposition.instantiate(exposed, _target(system, service), honor_labels=False)
    body = ",".join(f'{name}="{value}"' for name, value in stored.labels)
    return f"{COUNT}{{{body}}}"


def _label_pairs(selector: str) -> list[tuple[str, str]]:
    body = selector[selector.index("{") + 1 : -1]
    return [(pair.split("=", 1)[0], pair.split("=", 1)[1].strip('"')) for pair in body.split(",")]


def _counter(per_minute: Sequence[tuple[int, float]]) -> str:
    """promtool values for a counter growing at each (minutes, rate per minute) in turn."""
    parts, total = ["0"], 0.0
    for minutes, rate in per_minute:
        parts.append(f"{total + rate:g}+{rate:g}x{minutes - 1}" if rate else f"{total:g}x{minutes - 1}")
        total += rate * minutes
    return " ".join(parts)


def _rules_of(tmp_path: Path, system: System) -> tuple[list[str], list[str]]:
    """Writes the system's rule files into `tmp_path`; returns the SLO rule files and group order
    of the service's generated SLO alert test."""
    for document in generate_rules(system, DEFAULT_CONFIG):
        target = tmp_path / Path(document.path).name
        target.write_bytes(render(document))
    generated = yaml.safe_load((tmp_path / f"logpilot-slo-alerts-{SERVICE}.test.yaml").read_text())
    return generated["rule_files"], generated["group_eval_order"]


def _run(tmp_path: Path, system: System, tests: list[dict[str, Any]]) -> promtool.ToolResult:
    rule_files, order = _rules_of(tmp_path, system)
    test_file = tmp_path / "grpc-spring.test.yaml"
    test_file.write_text(yaml.safe_dump({
        "rule_files": rule_files, "evaluation_interval": "1m", "group_eval_order": order, "tests": tests,
    }, sort_keys=False))
    return promtool.test_rules([test_file])


def _slo_alerts(state: str, names: str = "SloErrorBudgetBurn|SloSliAbsent", **labels: str) -> str:
    """How many of the service's SLO alerts are in `state` (pending, firing)."""
    matchers = "".join(f',{name}="{value}"' for name, value in labels.items())
    return f'count(ALERTS{{alertname=~"{names}",service="{SERVICE}",alertstate="{state}"{matchers}}})'


def _logpilot(systems: Mapping[str, System]) -> tuple[System, Service]:
    system = systems["logpilot"]
    return system, next(service for service in system.services if service.name == SERVICE)


def _page_for_minutes(tmp_path: Path, system: System) -> int:
    """The `for` of the fastest page tier, in minutes, as generated."""
    folder = tmp_path / "for"
    folder.mkdir()
    _rules_of(folder, system)
    groups = yaml.safe_load((folder / f"logpilot-slo-alerts-{SERVICE}.rules.yaml").read_text())["groups"]
    page = next(rule for rule in groups[0]["rules"] if rule.get("labels", {}).get("window") == "1h-5m")
    value = str(page["for"])
    assert value.endswith("m") and value[:-1].isdigit(), value
    return int(value[:-1])


def test_the_stored_series_carry_the_targets_service_and_the_grpc_service_as_exported_service(
    rule_systems: dict[str, System],
) -> None:
    system, service = _logpilot(rule_systems)
    assert service.metrics is not None and service.metrics.instrumentation is Instrumentation.GRPC_SPRING
    stored = _stored(system, service, "OK")
    assert f'service="{SERVICE}"' in stored
    assert f'exported_service="{_exposed_call()["service"]}"' in stored
    assert set(DOCUMENTED_TAGS) - {"service"} <= {name for name, _ in _label_pairs(stored)}


def test_a_full_outage_in_micrometers_grpc_metrics_pages_within_the_workbook_time_plus_for(
    rule_systems: dict[str, System], tmp_path: Path
) -> None:
    system, service = _logpilot(rule_systems)
    (slo,) = service.slos
    # Workbook: a 100 % outage crosses 14.4 × the budget over 1h after 14.4 × budget × 1h.
    detection = Decimal("14.4") * slo.error_budget * 3600
    healthy, outage = 30, 60
    pages_at = healthy + math.ceil(detection / 60) + _page_for_minutes(tmp_path, system)
    tests = [{
        "name": "logpilot-grpc: every call fails UNAVAILABLE after 30 healthy minutes",
        "interval": "1m",
        "input_series": [
            {"series": _stored(system, service, "OK"),
             "values": _counter([(healthy, CALLS_PER_MINUTE), (outage, 0)])},
            {"series": _stored(system, service, "UNAVAILABLE"),
             "values": _counter([(healthy, 0), (outage, CALLS_PER_MINUTE)])},
        ],
        "promql_expr_test": [
            {"expr": _slo_alerts("firing"), "eval_time": f"{healthy}m", "exp_samples": []},
            {"expr": _slo_alerts("firing", window="1h-5m", severity="critical"), "eval_time": f"{pages_at}m",
             "exp_samples": [{"labels": "{}", "value": 1}]},
        ],
    }]
    result = _run(tmp_path, system, tests)
    assert result.ok, result.output
    assert pages_at == healthy + 2  # 52 s → the first one-minute evaluation after it, then `for: 1m`


def test_healthy_calls_and_client_faults_in_micrometers_grpc_metrics_raise_no_slo_alert(
    rule_systems: dict[str, System], tmp_path: Path
) -> None:
    system, service = _logpilot(rule_systems)
    hours = 3
    minutes = hours * 60
    # Codes that answer a call the client got wrong or gave up on, and a healthy stream.
    traffic = {("OK", "UNARY"): 560, ("NOT_FOUND", "UNARY"): 20, ("INVALID_ARGUMENT", "UNARY"): 10,
               ("CANCELLED", "UNARY"): 5, ("OK", "BIDI_STREAMING"): 5}
    error_ratio = f'slo:sli_error:ratio_rate5m{{service="{SERVICE}",slo="availability"}}'
    tests = [{
        "name": "logpilot-grpc: three hours of healthy calls",
        "interval": "1m",
        "input_series": [
            {"series": _stored(system, service, code, kind), "values": _counter([(minutes, rate)])}
            for (code, kind), rate in traffic.items()
        ],
        "promql_expr_test": [
            *({"expr": _slo_alerts(state), "eval_time": f"{at}m", "exp_samples": []}
              for at in (30, 60, minutes) for state in ("pending", "firing")),
            {"expr": f"count({error_ratio} == 0)", "eval_time": f"{minutes}m",
             "exp_samples": [{"labels": "{}", "value": 1}]},
        ],
    }]
    result = _run(tmp_path, system, tests)
    assert result.ok, result.output


def test_with_go_grpc_prometheus_names_the_same_healthy_calls_leave_the_sli_absent(
    rule_systems: dict[str, System], tmp_path: Path
) -> None:
    """The defect this instrumentation fixes: read as `grpc`, the series give no SLI and SloSliAbsent fires."""
    system, service = _logpilot(rule_systems)
    assert service.metrics is not None
    as_go = service.model_copy(update={
        "metrics": Metrics.model_validate({**service.metrics.model_dump(), "instrumentation": "grpc"}),
    })
    wrong = system.model_copy(update={
        "services": tuple(as_go if one.name == SERVICE else one for one in system.services),
    })
    tests = [{
        "name": "logpilot-grpc read with go-grpc-prometheus names",
        "interval": "1m",
        "input_series": [{"series": _stored(system, service, "OK"), "values": _counter([(60, CALLS_PER_MINUTE)])}],
        "promql_expr_test": [{"expr": _slo_alerts("firing", "SloSliAbsent"), "eval_time": "60m",
                              "exp_samples": [{"labels": "{}", "value": 1}]}],
    }]
    result = _run(tmp_path, wrong, tests)
    assert result.ok, result.output
