"""API performance (EcoEco's "API Performance"): request rate, P50/P95/P99 and error rate of every
API, side by side and then one row per service."""

from __future__ import annotations

from typing import Any

from obsbundle.dashboards import queries as q
from obsbundle.dashboards.common import api_services, sibling_links, tags, variables
from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.panels import Query, Row, Unit, dashboard, timeseries
from obsbundle.dashboards.service import red_panels
from obsbundle.links import Board, dashboard_uid
from obsbundle.model import System


def api_dashboard(system: System, config: DashboardConfig) -> dict[str, Any]:
    services = api_services(system)
    rows = [
        Row(
            "All APIs",
            [
                timeseries(
                    "Request rate per API",
                    "Requests per second of every API in the chosen namespaces.",
                    [Query(q.system_request_rates(system), "{{service}}")],
                    Unit.REQUESTS_PER_SECOND,
                    width=8,
                ),
                timeseries(
                    "P95 latency per API",
                    "95th percentile request duration of every API in the chosen namespaces.",
                    [Query(q.system_latency(system, "0.95"), "{{service}}")],
                    Unit.SECONDS,
                    width=8,
                ),
                timeseries(
                    "Error ratio per API",
                    "Share of each API's requests answered with a server error (5xx).",
                    [Query(q.system_error_ratios(system), "{{service}}")],
                    Unit.RATIO,
                    width=8,
                ),
            ],
        ),
        *(
            Row(service.name, red_panels(system, service, linked=False),
                collapsed=len(services) > config.expanded_service_rows)
            for service in services
        ),
    ]
    return dashboard(
        uid=dashboard_uid(system, Board.API),
        title=f"{system.name} / API performance",
        description="Request rate, latency quantiles and error rate of " + ", ".join(s.name for s in services),
        tags=tags(system, "api"),
        rows=rows,
        variables=variables(system, config, {service.namespace for service in services}),
        links=sibling_links(system),
        config=config,
    )
