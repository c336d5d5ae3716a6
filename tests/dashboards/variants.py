"""Small systems for what the default fleet lacks: a PostgreSQL behind an exported PgBouncer."""

from __future__ import annotations

from obsbundle.model import System


def pgbouncer_system() -> System:
    """One pool, one API, and a PostgreSQL whose PgBouncer the pool & queue exporter reads."""
    return System.model_validate(
        {
            "apiVersion": "obsbundle/v1",
            "kind": "System",
            "name": "bouncer",
            "cluster": "bouncer-prod",
            "owner": {"team": "data", "slack_channel": "#data-alerts"},
            "monitoring": {
                "grafana_url": "https://grafana.bouncer.test",
                "alertmanager_url": "https://alertmanager.bouncer.test",
                "runbook_url": "https://runbooks.bouncer.test/{system}/{alert}.md",
            },
            "node_pools": [{"name": "general", "min_nodes": 1, "max_nodes": 3}],
            "services": [
                {
                    "name": "orders",
                    "namespace": "shop",
                    "node_pool": "general",
                    "metrics": {"port": "http"},
                    "datastores": ["orders-db"],
                }
            ],
            "datastores": [
                {"name": "orders-db", "kind": "postgres", "namespace": "shop", "pgbouncer_source": "orders-bouncer"}
            ],
        }
    )


def many_apis_system(count: int) -> System:
    """`count` APIs on one pool, each with an availability SLO: more than the API dashboard opens."""
    return System.model_validate(
        {
            "apiVersion": "obsbundle/v1",
            "kind": "System",
            "name": "many",
            "cluster": "many",
            "owner": {"team": "platform", "slack_channel": "#platform"},
            "monitoring": {
                "grafana_url": "https://grafana.many.test",
                "alertmanager_url": "https://alertmanager.many.test",
                "runbook_url": "https://runbooks.many.test/{system}/{alert}.md",
            },
            "node_pools": [{"name": "general", "min_nodes": 2, "max_nodes": 20}],
            "services": [
                {
                    "name": f"api-{index:02d}",
                    "namespace": f"team-{index % 3}",
                    "node_pool": "general",
                    "metrics": {"port": "http"},
                    "slos": [{"name": "availability", "objective": 99.9}],
                }
                for index in range(count)
            ],
        }
    )
