"""Grouped SLOs (`group_by`) and per-SLO alerting (`alerting:`), in promtool and the loader.

The group labels are the client libraries' own (tests/fixtures/exposition/: prometheus-fastapi-
instrumentator's `handler`, Micrometer's `uri`, go-grpc-prometheus's `grpc_method`); the series fed
to promtool carry exactly the label sets those fixtures show.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from obsbundle.alerting.plan import inhibit_rules
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.dashboards.service import service_dashboard
from obsbundle.dashboards.variables import expand
from obsbundle.errors import InputError
from obsbundle.loader import load_inventory
from obsbundle.model import Instrumentation, System
from obsbundle.promql import selector
from obsbundle.render import render
from obsbundle.rules import generate_rules, rule_groups
from obsbundle.rules.definitions import Alert, Recording
from obsbundle.rules.sli import REQUEST_METRICS
from obsbundle.rules.slo import ServiceSlo
from obsbundle.rules.slo_scenarios import page_detection_bound_minutes
from obsbundle.slo_math import BURN_TIERS
from obsbundle.tools import promtool
from tests.conftest import FIXTURES
from tests.support.slo_promtool import count_at, counter_values, run_service_tests

RULES = DEFAULT_CONFIG.rules
EXPOSITION = FIXTURES / "exposition"

GROUPED_SYSTEM = """\
apiVersion: obsbundle/v1
kind: System
name: shop
cluster: shop-prod
owner: {team: storefront, slack_channel: "#storefront"}
monitoring: {grafana_url: "https://grafana.shop.test", alertmanager_url: "https://am.shop.test",
             runbook_url: "https://runbooks.shop.test/{alert}"}
services:
  - name: storefront
    namespace: shop
    metrics: {port: http, instrumentation: fastapi-instrumentator}
    slos:
      - name: availability
        objective: 99.9
        group_by: [handler]
        alerting:
          name: StorefrontAvailabilityBurn
          labels: {pager: storefront}
          annotations: {impact: "Shoppers on {{ $labels.handler }} see errors"}
          page: {for: 1m, labels: {escalate: "yes"}}
          ticket: {enabled: false}
          absent: false
  - name: catalog
    namespace: shop
    metrics: {port: http, instrumentation: micrometer, histogram_buckets: [0.1, 0.5, 1]}
    slos:
      - {name: latency, objective: 99, threshold: 500ms, group_by: [uri]}
  - name: orders
    namespace: shop
    metrics: {port: grpc, instrumentation: grpc}
    slos:
      - {name: availability, objective: 99.9, group_by: [grpc_method], alerting: {page: {enabled: false}}}
  - name: billing
    namespace: shop
    metrics: {port: http, instrumentation: custom}
    slos:
      - {name: invoices, objective: 99.9, group_by: [tenant],
         bad_query: 'invoices_total{outcome="failed"}', total_query: invoices_total}
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> System:
    path = tmp_path_factory.mktemp("shop") / "shop.yaml"
    path.write_text(GROUPED_SYSTEM)
    return load_inventory([path]).systems[0]


def _alerts(system: System) -> list[Alert]:
    return [alert for group in rule_groups(system, RULES) for alert in group.alerts]


def _fixture_labels(path: str, metric: str) -> set[str]:
    """Label names of `metric`'s samples in an exposition fixture."""
    names: set[str] = set()
    for line in (EXPOSITION / path).read_text().splitlines():
        if line.startswith(metric + "{"):
            body = line[len(metric) + 1 : line.index("}")]
            names |= {part.split("=", 1)[0] for part in body.split('",') if "=" in part}
    return names


def test_the_group_labels_the_loader_allows_are_on_the_libraries_own_series() -> None:
    fixtures = {
        Instrumentation.FASTAPI_INSTRUMENTATOR: "fastapi-instrumentator/default.prom",
        Instrumentation.MICROMETER: "micrometer/http-server-requests-histogram.prom",
        Instrumentation.GRPC: "go-grpc-prometheus/server-handling-histogram.prom",
        Instrumentation.GRPC_SPRING: "grpc-spring/server-processing-duration-histogram.prom",
    }
    for instrumentation, fixture in fixtures.items():
        metrics = REQUEST_METRICS[instrumentation]
        assert metrics.group_labels is not None
        on_requests = _fixture_labels(fixture, metrics.requests)
        on_buckets = _fixture_labels(fixture, metrics.duration + "_bucket")
        # grpc-spring's gRPC `service` tag arrives as exported_service: the monitor's service wins.
        renamed = {"exported_service" if name == "service" else name for name in on_requests | on_buckets}
        assert metrics.group_labels <= renamed, instrumentation
        assert metrics.outcome_labels <= on_requests, instrumentation


def test_a_grouped_slo_records_its_sli_per_group_and_keeps_one_objective(shop: System) -> None:
    groups = {group.name: group for group in rule_groups(shop, RULES)}
    recorded = {
        rule.record: rule.expr
        for name in ("shop-slo-sli-storefront", "shop-slo-windows")
        for rule in groups[name].rules
        if isinstance(rule, Recording)
    }
    assert "sum by (handler) (increase(http_requests_total{" in recorded["slo:sli_good_events:increase5m"]
    assert "handler" not in recorded["slo:objective:ratio"]
    assert "group_left" in recorded["slo:burn_rate:ratio_rate1h"]


def test_alerting_settings_shape_the_slos_alerts(shop: System) -> None:
    alerts = _alerts(shop)
    storefront = [alert for alert in alerts if alert.labels.get("slo") and alert.labels["service"] == "storefront"]
    assert {alert.name for alert in storefront} == {"StorefrontAvailabilityBurn"}, "no absent alert, one name"
    assert sorted(alert.labels["window"] for alert in storefront) == ["1h-5m", "6h-30m"], "no ticket tier"
    for alert in storefront:
        assert alert.for_ == "1m"
        assert alert.labels["pager"] == "storefront" and alert.labels["escalate"] == "yes"
        assert alert.annotations()["impact"] == "Shoppers on {{ $labels.handler }} see errors"
        assert "(handler {{ $labels.handler }})" in alert.annotations()["description"]
    orders = [alert for alert in alerts if alert.labels.get("slo") and alert.labels["service"] == "orders"]
    assert sorted(alert.labels.get("window", alert.name) for alert in orders) == ["1d-2h", "3d-6h", "SloSliAbsent"]


def test_the_generated_promtool_tests_of_grouped_slos_pass_and_include_the_failing_group(
    shop: System, tmp_path: Path
) -> None:
    for document in generate_rules(shop, DEFAULT_CONFIG):
        (tmp_path / Path(document.path).name).write_bytes(render(document))
    test_files = sorted(tmp_path.glob("*.test.yaml"))
    names = [test["name"] for path in test_files for test in yaml.safe_load(path.read_text())["tests"]]
    assert any("a full outage of one handler pages for it alone" in name for name in names), names
    assert any("a full outage of one uri pages for it alone" in name for name in names), names
    assert any("a full outage of one tenant pages for it alone" in name for name in names), names
    result = promtool.test_rules(test_files)
    assert result.ok, result.output


def _instrumentator_requests(handler: str, status: str) -> str:
    """http_requests_total as prometheus-fastapi-instrumentator labels it (fixture default.prom),
    with the labels the generated monitor adds."""
    return selector(
        "http_requests_total", {"namespace": "shop", "service": "storefront", "handler": handler,
                                "method": "GET", "status": status}
    )


def test_a_grouped_slo_pages_for_the_failing_group_only(shop: System, tmp_path: Path) -> None:
    """Two handlers at 600 requests a minute for an hour; then /checkout fails every request while
    /items serves. The page fires for /checkout at the Workbook's detection time plus `for` (1m
    here), with the SLO's own name and labels, and never for /items."""
    item = ServiceSlo(shop.service("storefront"), shop.service("storefront").slos[0])
    pages_after = page_detection_bound_minutes(item, BURN_TIERS[0], RULES)
    history, rate = 60, 600
    inputs = [
        {"series": _instrumentator_requests("/items", "2xx"), "values": counter_values([(history + 30, rate)])},
        {"series": _instrumentator_requests("/checkout", "2xx"),
         "values": counter_values([(history, rate), (30, 0)])},
        {"series": _instrumentator_requests("/checkout", "5xx"),
         "values": counter_values([(history, 0), (30, rate)])},
    ]

    def firing(handler: str) -> str:
        return (
            f'count(ALERTS{{alertname="StorefrontAvailabilityBurn",alertstate="firing",window="1h-5m",'
            f'handler="{handler}",pager="storefront",escalate="yes"}})'
        )

    test = {
        "name": "one handler's outage pages for it alone",
        "interval": "1m",
        "input_series": inputs,
        "promql_expr_test": [
            count_at(history + pages_after - 1, firing("/checkout"), None),
            count_at(history + pages_after, firing("/checkout"), 1),
            count_at(history + 25, firing("/checkout"), 1),
            count_at(history + 25, firing("/items"), None),
            count_at(history + 25, 'count(ALERTS{alertname="StorefrontAvailabilityBurn",handler="/items"})', None),
        ],
    }
    result = run_service_tests(tmp_path, shop, "storefront", [test])
    assert result.ok, result.output


def test_inhibition_compares_the_group_labels_so_one_handler_never_mutes_another(shop: System) -> None:
    rules = inhibit_rules(shop)
    tiers = [rule for rule in rules if any(matcher.name == "window" for matcher in rule.source)]
    severities = [rule for rule in rules if any(matcher.name == "severity" for matcher in rule.source)]
    assert tiers and severities
    for rule in (*tiers, *severities):
        assert {"handler", "uri", "grpc_method", "tenant"} <= set(rule.equal), rule


PROBLEMS = """\
apiVersion: obsbundle/v1
kind: System
name: wrong
cluster: wrong
owner: {team: storefront, slack_channel: "#storefront"}
monitoring: {grafana_url: "https://grafana.shop.test", alertmanager_url: "https://am.shop.test",
             runbook_url: "https://runbooks.shop.test/{alert}"}
services:
  - name: storefront
    namespace: shop
    metrics: {port: http, instrumentation: fastapi-instrumentator}
    slos:
      - {name: by-status, objective: 99.9, group_by: [status]}
      - {name: by-route, objective: 99.9, group_by: [route]}
      - {name: by-pod, objective: 99.9, group_by: [pod]}
  - name: billing
    namespace: shop
    metrics: {port: http, instrumentation: custom}
    slos:
      - {name: invoices, objective: 99.9, group_by: [tenant],
         bad_query: 'sum(increase(invoices_total{outcome="failed"}[{{.window}}]))',
         total_query: 'sum by (tenant) (increase(invoices_total[{{.window}}]))'}
      - {name: reserved, objective: 99.9, group_by: [service], good_query: a, total_query: b,
         alerting: {labels: {severity: page}, annotations: {runbook_url: x}}}
"""


def test_group_labels_the_sli_cannot_carry_are_refused_all_at_once_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text(PROBLEMS)
    with pytest.raises(InputError) as raised:
        load_inventory([path])
    text = str(raised.value)
    assert "services[0].slos[0].group_by[0]: status tells good requests from bad ones" in text
    assert "services[0].slos[1].group_by[0]: route is not a label fastapi-instrumentator puts on " in text
    assert "group by handler or method" in text
    assert "services[0].slos[2].group_by[0]: pod: a pod's name changes at every rollout" in text
    assert "services[1].slos[0].bad_query: sum(...) without by (tenant) drops tenant" in text
    assert "services[1].slos[1].group_by: service is the SLO's own label" in text
    assert "services[1].slos[1].alerting.labels: severity is set by obsbundle" in text
    assert "services[1].slos[1].alerting.annotations: runbook_url is written from the inventory" in text


def test_the_service_dashboard_has_a_variable_per_group_label_that_narrows_its_slo_panels(
    shop: System, tmp_path: Path
) -> None:
    """The storefront dashboard's `handler` variable lists the recorded groups; set to /checkout
    (as Grafana expands it), its burn-rate query returns /checkout alone, evaluated by promtool
    on the generated rules."""
    board = service_dashboard(shop, shop.service("storefront"), DEFAULT_CONFIG.dashboards)
    (handler,) = [variable for variable in board["templating"]["list"] if variable["name"] == "handler"]
    assert handler["query"].startswith("label_values(slo:sli_total_events:increase5m{") and handler["includeAll"]
    burn = next(
        target["expr"]
        for panel in board["panels"]
        for inner in (panel, *panel.get("panels", []))
        if inner.get("title") == "Burn rate"
        for target in inner.get("targets", [])
        if "ratio_rate1h" in target["expr"]
    )
    assert 'handler=~"$handler"' in burn
    # The page's link opens this dashboard on the failing handler: every variable it sets exists.
    page = next(alert for alert in _alerts(shop) if alert.name == "StorefrontAvailabilityBurn")
    parameters = page.dashboard_url.split("?", 1)[1].split("&")
    linked = {part.split("=", 1)[0].removeprefix("var-") for part in parameters if part.startswith("var-")}
    assert linked == {"slo", "handler"} <= {variable["name"] for variable in board["templating"]["list"]}
    assert page.dashboard_url.endswith("&var-handler={{ $labels.handler | urlquery }}")
    query = expand(burn, {"cluster": ".*", "slo": ".*", "handler": "/checkout"})
    history, rate = 60, 600
    inputs = [
        {"series": _instrumentator_requests("/items", "2xx"), "values": counter_values([(history + 10, rate)])},
        {"series": _instrumentator_requests("/checkout", "2xx"), "values": counter_values([(history + 10, rate)])},
        {"series": _instrumentator_requests("/checkout", "5xx"), "values": counter_values([(history + 10, 6)])},
    ]
    test = {
        "name": "the dashboard's handler variable narrows the burn rate to one handler",
        "interval": "1m",
        "input_series": inputs,
        "promql_expr_test": [
            {
                "expr": query,
                "eval_time": f"{history}m",
                # 6 failures in 606 requests a minute over a 0.1 % budget: a burn rate of 9.9.
                "exp_samples": [
                    {"labels": '{handler="/checkout",service="storefront",slo="availability"}',
                     "value": 6 / 606 / 0.001}
                ],
            }
        ],
    }
    result = run_service_tests(tmp_path, shop, "storefront", [test])
    assert result.ok, result.output
