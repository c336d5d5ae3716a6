"""`generate.py --import`: the peers' own example specs convert, load, generate and page on an
outage of their SLI in promtool, or exit 2 naming the file, the key path and the reason."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from obsbundle.cli import main
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.importer import import_specs
from obsbundle.loader import load_inventory
from obsbundle.model import SliKind, Slo, System
from obsbundle.promql import selector
from obsbundle.rules.sli import at_window
from obsbundle.rules.slo import ServiceSlo
from obsbundle.rules.slo_scenarios import page_detection_bound_minutes
from obsbundle.slo_math import BURN_TIERS
from tests.conftest import FIXTURES
from tests.support.slo_promtool import count_at, counter_values, gauge_values, run_service_tests

SPECS = FIXTURES / "slo-specs"
RULES = DEFAULT_CONFIG.rules

CONVERTS = [
    "sloth/getting-started.yml",
    "sloth/k8s-getting-started.yml",
    "sloth/raw-home-wifi.yml",
    "sloth/home-wifi.yml",
    "sloth/k8s-home-wifi.yml",
    "sloth/kubernetes-apiserver.yml",
    "sloth/multifile.yml",
    "sloth/k8s-multifile.yml",
    "sloth/no-alerts.yml",
    "sloth/openslo-getting-started.yml",
    "sloth/openslo-kubernetes-apiserver.yml",
    "pyrra/mimir-example-slo.yaml",
    "pyrra/parca-grpc-queryrange-errors.yaml",
    "pyrra/prometheus-operator.yaml",
    "pyrra/pyrra-filesystem-errors.yaml",
    "pyrra/pyrra-kubernetes-errors.yaml",
    "pyrra/slo-apiserver-read-cluster-latency.yaml",
    "pyrra/slo-apiserver-read-response-errors.yaml",
    "pyrra/slo-apiserver-write-response-errors.yaml",
    "pyrra/slo-coredns-response-errors.yaml",
    "pyrra/slo-kubelet-request-errors.yaml",
    "pyrra/slo-kubelet-runtime-errors.yaml",
    "pyrra/slo-prometheus-rule-evaluation-failures.yaml",
    "pyrra/thanos-grpc.yaml",
    "pyrra/thanos-http.yaml",
    "openslo/readme-ratio-metric-v1.yaml",
    # Grouped SLOs (Pyrra's grouping → group_by).
    "pyrra/prometheus-http.yaml",
    "pyrra/slo-prometheus-query-errors.yaml",
    "pyrra/prometheus-probe-success.yaml",
    "pyrra/pyrra-connect-errors.yaml",
]

REFUSED = {
    "sloth/plugin-getting-started.yml": ("slos[0].sli.plugin", "builds its query in Go"),
    "sloth/slo-plugin-getting-started.yml": ("slo_plugins", "SLO plugins rewrite the generated rules"),
    "sloth/contrib-slo-plugins.yml": ("slos[0].plugins", "SLO plugins rewrite the generated rules"),
    "sloth/contrib-denominator-corrected.yaml": ("spec.sloPlugins", "SLO plugins rewrite the generated rules"),
    "sloth/victoria-metrics.yml": ("slo_plugins", "SLO plugins rewrite the generated rules"),
    "pyrra/caddy-response-latency.yaml": ("spec", "the page alert can never fire: at 90"),
    "pyrra/nginx.yaml": ("[1].spec", "the page alert can never fire"),
    "pyrra/pyrra-connect-latency.yaml": ("spec.indicator.latencyNative", "latencyNative reads native histograms"),
    "openslo/budgeting-method-occurences-slo.yaml": (
        "spec.indicator.spec.thresholdMetric.metricSource.type",
        "metric source 'Any' is not Prometheus",
    ),
    "openslo/budgeting-method-ratio-timeslices.yaml": ("spec.budgetingMethod", "RatioTimeslices"),
    "openslo/budgeting-method-timeslices-slo.yaml": ("spec.budgetingMethod", "Timeslices"),
    "openslo/treat-low-traffic-as-equally-important-timeslices-slo.yaml": ("spec.budgetingMethod", "Timeslices"),
}

HISTORY = 60
"""Minutes of healthy traffic before the outage: the page tier's 1h window is full."""
RATE = 600.0
"""Events a minute of every counter fed."""
SLOW_PAGE_MINUTES = 20
"""Bound on the page of an SLI fed as a gauge (one sample a minute: low traffic, so the guard's
five bad events and `for` set it), unless the Workbook's detection time is longer; counters page
at the Workbook's detection time plus `for`, exactly."""
OUTAGE = 120
"""Minutes of outage fed: longer than any example's detection time (95 % over 30d: 44 minutes)."""


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_example_spec_in_the_fixtures_is_either_converted_or_refused_here() -> None:
    on_disk = {str(path.relative_to(SPECS)) for path in SPECS.glob("*/*.y*ml")}
    assert on_disk == set(CONVERTS) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_spec_that_cannot_be_mapped_exits_2_naming_file_key_path_and_reason(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "--import", str(SPECS / name))
    key_path, reason = REFUSED[name]
    assert code == 2 and out == ""
    assert f"error: {SPECS / name}: {key_path}: " in err and reason in err, err


# --- feeding an SLI's series ---------------------------------------------------------------------

_FALLBACKS = ("500", "200", "ok", "OK", "GET", "error", "x", "")


def _candidates(pattern: str) -> list[str]:
    """Values to try against a matcher: its value, its alternatives with `.` as a digit, then fallbacks."""
    bare = pattern.strip("()^$")
    found = [re.sub(r"[()^$]", "", part).replace(".", "0").replace("*", "") for part in bare.split("|")]
    return [pattern, *found, *_FALLBACKS]


def _matches(matcher: promql_parser.Matcher, value: str) -> bool:
    op = str(matcher.op)
    if op.endswith("Re") and not op.endswith("NotRe"):
        return re.fullmatch(matcher.value, value) is not None
    if op.endswith("NotRe"):
        return re.fullmatch(matcher.value, value) is None
    if op.endswith("NotEqual"):
        return value != matcher.value
    return value == matcher.value


@dataclass(frozen=True)
class _Selector:
    metric: str
    matchers: tuple[promql_parser.Matcher, ...]

    def own(self, other: _Selector) -> list[promql_parser.Matcher]:
        """Matchers of this selector that `other` has not."""
        theirs = {(m.name, str(m.op), m.value) for m in other.matchers}
        return [m for m in self.matchers if (m.name, str(m.op), m.value) not in theirs]


def _selectors(query: str) -> list[_Selector]:
    found: list[_Selector] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            matchers = tuple(m for m in node.matchers.matchers if m.name != "__name__")
            found.append(_Selector(node.name, matchers))

    promql_parser.walk(promql_parser.parse(at_window(query)), visit)
    return found


def _labels(
    required: list[promql_parser.Matcher], violated: promql_parser.Matcher | None = None
) -> dict[str, str] | None:
    """Labels that satisfy every `required` matcher and break `violated`; None when none do."""
    labels: dict[str, str] = {}
    names = sorted({m.name for m in required} | ({violated.name} if violated else set()))
    for name in names:
        on_label = [m for m in required if m.name == name]
        pool = [value for m in on_label for value in _candidates(m.value)] + list(_FALLBACKS)
        if violated is not None and violated.name == name:
            pool = [value + suffix for value in [*_candidates(violated.value), *pool] for suffix in ("", "-other")]
        value = next(
            (
                candidate
                for candidate in pool
                if all(_matches(m, candidate) for m in on_label)
                and (violated is None or violated.name != name or not _matches(violated, candidate))
            ),
            None,
        )
        if value is None:
            return None
        if value:
            labels[name] = value
    return labels


def _is_counter(metric: str) -> bool:
    return metric.endswith(("_total", "_count", "_bucket", "_sum")) or metric == "localhost_server_requests"


def _series(counted: _Selector, total: _Selector, counted_is_bad: bool) -> list[dict[str, str]]:
    """Input series for an outage of an event SLI: `counted` (bad or good events) and `total`."""
    healthy_counted, outage_counted = (0.0, RATE) if counted_is_bad else (RATE, 0.0)
    counted_values = counter_values([(HISTORY, healthy_counted), (OUTAGE, outage_counted)])
    shared = counted.metric == total.metric
    both = _labels([*counted.matchers, *total.matchers]) if shared else None
    if shared and both is not None:
        others = [m for m in counted.own(total) if m.name != "le"]
        other = _labels(list(total.matchers), others[0]) if others else None
        assert other is not None, f"no series of {total} outside {counted}"
        other_values = counter_values([(HISTORY, RATE - healthy_counted), (OUTAGE, RATE - outage_counted)])
        return [
            {"series": selector(counted.metric, both), "values": counted_values},
            {"series": selector(total.metric, {**both, **other}), "values": other_values},
        ]
    counted_labels = _labels([*counted.matchers, *(m for m in total.matchers if m.name != "le")])
    total_labels = _labels([*total.matchers, *(m for m in counted.matchers if m.name != "le")])
    if counted_labels is None or total_labels is None:  # disjoint series of one metric
        counted_labels, total_labels = _labels(list(counted.matchers)), _labels(list(total.matchers))
    assert counted_labels is not None and total_labels is not None
    return [
        {"series": selector(counted.metric, counted_labels), "values": counted_values},
        {
            "series": selector(total.metric, total_labels),
            "values": counter_values([(HISTORY + OUTAGE, RATE)]),
        },
    ]


def _outage_inputs(slo: Slo) -> tuple[list[dict[str, str]], bool]:
    """(input series of a full outage of the SLI after an hour of health, fed as counters)."""
    queries = [q for q in (slo.good_query, slo.bad_query, slo.total_query, slo.error_ratio_query, slo.gauge_query) if q]
    metrics = {s.metric for q in queries for s in _selectors(q)}
    gauges = sorted(m for m in metrics if not _is_counter(m))
    if gauges:
        # A gauge of health (probe_success, Ubiquiti's satisfaction ratio): 1 while healthy, 0 in the outage.
        [metric] = gauges
        values = gauge_values([(HISTORY, 1), (OUTAGE, 0)])
        return [{"series": selector(metric, {}), "values": values}], False
    if slo.kind is SliKind.ERROR_RATIO:
        assert slo.error_ratio_query is not None
        bad, total = _selectors(slo.error_ratio_query)[:2]
        return _series(bad, total, counted_is_bad=True), True
    assert slo.total_query is not None
    total = _selectors(slo.total_query)[0]
    if slo.kind is SliKind.BAD_EVENTS:
        assert slo.bad_query is not None
        in_bad = _selectors(slo.bad_query)
        others = [s for s in in_bad if s.own(total) or s.metric != total.metric]
        # Sloth's latency SLIs count bad events as total − fast: then the other series counts good ones.
        subtracted = len(others) < len(in_bad)
        return _series(others[0], total, counted_is_bad=not subtracted), True
    assert slo.good_query is not None
    return _series(_selectors(slo.good_query)[0], total, counted_is_bad=False), True


def _page(service: str, slo: Slo, state: str) -> str:
    alertname = slo.alerting.name or "SloErrorBudgetBurn"
    return (
        f'count(ALERTS{{alertname="{alertname}",service="{service}",slo="{slo.name}",'
        f'alertstate="{state}",window="1h-5m"}})'
    )


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each convertible spec's import, written where the loader reads it."""
    root = tmp_path_factory.mktemp("imported")
    written = {}
    for name in CONVERTS:
        path = root / (name.replace("/", "-").rsplit(".", 1)[0] + ".yaml")
        path.write_text(import_specs([SPECS / name]))
        written[name] = path
    return written


@pytest.mark.parametrize("name", CONVERTS)
def test_an_example_spec_converts_loads_generates_and_pages_on_an_outage_of_its_sli(
    name: str, imported: dict[str, Path], tmp_path: Path
) -> None:
    """The import is an inventory the loader takes and generate.py writes out; every SLO in it pages
    (its 1h-5m tier firing) after an hour of health and a full outage of the series its SLI reads:
    at the Workbook's detection time plus `for` for counters; for a gauge fed one sample a minute
    within 20 minutes (the guard's five bad events), or the Workbook's time when longer."""
    path = imported[name]
    assert main(["--inventory", str(path), "--out", str(tmp_path / "out")]) == 0
    system: System = load_inventory([path]).systems[0]
    for service in system.services:
        tests: list[dict[str, Any]] = []
        for slo in service.slos:
            inputs, counters = _outage_inputs(slo)
            workbook = page_detection_bound_minutes(ServiceSlo(service, slo), BURN_TIERS[0], RULES)
            bound = workbook if counters else max(workbook, SLOW_PAGE_MINUTES)
            checks = [count_at(HISTORY, _page(service.name, slo, "pending"), None)]
            if not slo.alerting.page.enabled:
                # The spec turns its page off (Sloth's no-alerts example): nothing pages, and the
                # SLI still records the outage in its 5-minute error ratio.
                checks.append(count_at(HISTORY + bound, _page(service.name, slo, "firing"), None))
                ratio = selector("slo:sli_error:ratio_rate5m", {"service": service.name, "slo": slo.name})
                checks.append(count_at(HISTORY + bound, f"count({ratio} > 0)", 1))
            else:
                checks.append(count_at(HISTORY + bound, _page(service.name, slo, "firing"), 1))
            if counters and slo.alerting.page.enabled:
                checks.append(count_at(HISTORY + bound - 1, _page(service.name, slo, "firing"), None))
            tests.append({"name": f"{slo.name}: an outage pages", "interval": "1m", "input_series": inputs,
                          "promql_expr_test": checks})  # fmt: skip
        folder = tmp_path / service.name
        folder.mkdir()
        result = run_service_tests(folder, system, service.name, tests)
        assert result.ok, f"{name} {service.name}:\n{result.output}"


def test_sloth_alerting_becomes_the_slos_alerting_and_rate_queries_become_increases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(capsys, "--import", str(SPECS / "sloth/getting-started.yml"))
    assert code == 0
    slo = yaml.safe_load(out)["services"][0]["slos"][0]
    alerting = slo["alerting"]
    assert alerting["name"] == "MyServiceHighErrorRate"
    assert alerting["labels"] == {"owner": "myteam", "repo": "myorg/myservice", "tier": "2", "category": "availability"}
    assert alerting["page"] == {"labels": {"routing_key": "myteam"}}
    assert alerting["ticket"] == {"labels": {"slack_channel": "#alerts-myteam"}}
    # Sloth's severity labels (pageteam, slack) would replace obsbundle's critical and warning.
    assert "Sloth page labels left out, for obsbundle sets them" in out and "severity: pageteam" in out
    assert slo["bad_query"] == (
        'sum(increase(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}[{{.window}}]))'
    )
    assert slo["objective"] == 99.9 and slo["window"] == "30d"
    assert "# window: 30d, Sloth's default period" in out


def test_several_specs_import_into_one_inventory_with_a_service_each(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "--import", str(SPECS / "sloth/getting-started.yml"), str(SPECS / "pyrra/thanos-grpc.yaml")
    )
    assert code == 0
    data = yaml.safe_load(out)
    assert [(s["name"], s["namespace"], [slo["name"] for slo in s["slos"]]) for s in data["services"]] == [
        ("myservice", "default", ["requests-availability"]),
        ("thanos-store", "monitoring", ["ratio"]),
    ]


OPENSLO_THRESHOLD = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: status-page}
spec:
  service: status
  budgetingMethod: Occurrences
  timeWindow: [{duration: 28d, isRolling: true}]
  indicator:
    metadata: {name: status-probe}
    spec:
      thresholdMetric:
        metricSource: {type: Prometheus, spec: {query: 'probe_success{dependency="status-page"}'}}
  objectives: [{displayName: Up, op: OP, value: VALUE, target: 0.999}]
"""


def test_an_openslo_threshold_on_a_0_1_gauge_good_at_1_imports_as_a_gauge_slo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "status.yaml"
    spec.write_text(OPENSLO_THRESHOLD.replace("OP", "gte").replace("VALUE", "1"))
    code, out, err = _run(capsys, "--import", str(spec))
    assert code == 0, err
    [slo] = yaml.safe_load(out)["services"][0]["slos"]
    assert slo == {
        "name": "status-page",
        "objective": 99.9,
        "window": "28d",
        "gauge_query": 'probe_success{dependency="status-page"}',
    }


def test_an_openslo_threshold_on_a_sampled_value_exits_2_saying_how_to_record_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "status.yaml"
    spec.write_text(OPENSLO_THRESHOLD.replace("OP", "lt").replace("VALUE", "500"))
    code, out, err = _run(capsys, "--import", str(spec))
    assert code == 2 and out == ""
    assert f"{spec}: spec.objectives[0].op: a thresholdMetric good when lt 500 is a time-slice SLI" in err
    assert 'record (probe_success{dependency="status-page"}) < bool 500 as a series' in err


@pytest.mark.parametrize(
    ("error_query", "reason"),
    [
        ("sum(irate(x_total[{{.window}}]))", "irate() reads the last two samples only"),
        (
            "sum(rate(x_total[5m])) * sum(count_over_time(y[{{.window}}]))",
            "rate() over a fixed range beside {{.window}}",
        ),
        ("sum(rate(x_total[{{.window}}]", "is not PromQL"),
    ],
)
def test_a_sloth_query_that_counts_no_events_over_the_window_exits_2_at_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], error_query: str, reason: str
) -> None:
    spec = tmp_path / "sloth.yaml"
    document = {
        "version": "prometheus/v1",
        "service": "shop",
        "slos": [
            {
                "name": "orders",
                "objective": 99.9,
                "sli": {"events": {"error_query": error_query, "total_query": "sum(rate(x_total[{{.window}}]))"}},
            }
        ],
    }
    spec.write_text(yaml.safe_dump(document))
    code, _, err = _run(capsys, "--import", str(spec))
    assert code == 2
    assert f"{spec}: slos[0].sli.events.error_query: " in err and reason in err, err
