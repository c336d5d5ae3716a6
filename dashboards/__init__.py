"""Grafana dashboards for every system, service and node pool of the inventory."""

from obsbundle.dashboards.provisioning import generate_dashboards, system_dashboards

__all__ = ["generate_dashboards", "system_dashboards"]
