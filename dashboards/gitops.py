"""GitOps (EcoEco's "GitOps"): ArgoCD sync status, application health and deployment history."""

from __future__ import annotations

from typing import Any

from obsbundle.dashboards import queries as q
from obsbundle.dashboards.common import sibling_links, tags, variables
from obsbundle.dashboards.config import DashboardConfig
from obsbundle.dashboards.panels import Query, Row, Unit, dashboard, stat, table, timeseries
from obsbundle.links import Board, PanelId, dashboard_uid
from obsbundle.model import System


def gitops_dashboard(system: System, config: DashboardConfig) -> dict[str, Any]:
    namespace = system.platform.argocd_namespace
    assert namespace is not None, "only systems with ArgoCD have a GitOps dashboard"
    workloads = {service.namespace for service in system.services}
    rows = [
        Row(
            "Applications",
            [
                stat(
                    "Applications by sync status",
                    "ArgoCD applications by sync status: OutOfSync means the cluster differs from Git.",
                    [Query(q.argocd_apps_by(namespace, "sync_status"), "{{sync_status}}", instant=True)],
                    Unit.COUNT,
                    graph=False,
                    width=6,
                ),
                stat(
                    "Applications by health",
                    "ArgoCD applications by health: Degraded or Missing need a look; Progressing is a rollout.",
                    [Query(q.argocd_apps_by(namespace, "health_status"), "{{health_status}}", instant=True)],
                    Unit.COUNT,
                    graph=False,
                    width=6,
                ),
                table(
                    "Sync status",
                    f"Sync status of every ArgoCD application in namespace {namespace}.",
                    [Query(q.argocd_app_states(namespace))],
                    Unit.COUNT,
                    panel_id=PanelId.GITOPS_SYNC,
                    hidden=("Time", "Value", "health_status"),
                    columns={"name": "Application", "sync_status": "Sync"},
                    width=6,
                ),
                table(
                    "Application health",
                    f"Health of every ArgoCD application in namespace {namespace}.",
                    [Query(q.argocd_app_states(namespace))],
                    Unit.COUNT,
                    panel_id=PanelId.GITOPS_HEALTH,
                    hidden=("Time", "Value", "sync_status"),
                    columns={"name": "Application", "health_status": "Health"},
                    width=6,
                ),
            ],
        ),
        Row(
            "Deployment history",
            [
                timeseries(
                    "ArgoCD syncs",
                    "Sync operations per application and outcome (phase): Failed or Error syncs leave the cluster "
                    "behind Git.",
                    [Query(q.argocd_syncs(namespace), "{{name}} {{phase}}")],
                    Unit.COUNT,
                    bars=True,
                    stacked=True,
                    width=12,
                ),
                timeseries(
                    "Rollouts",
                    "Deployments of the chosen namespaces whose spec changed (a new generation): "
                    "each bar is a rollout.",
                    [Query(q.rollouts(config.exporters), "{{namespace}}/{{deployment}}")],
                    Unit.COUNT,
                    bars=True,
                    stacked=True,
                    width=12,
                ),
            ],
        ),
    ]
    return dashboard(
        uid=dashboard_uid(system, Board.GITOPS),
        title=f"{system.name} / GitOps",
        description=f"ArgoCD applications in namespace {namespace}: sync status, health and deployment history",
        tags=tags(system, "gitops"),
        rows=rows,
        variables=variables(system, config, workloads),
        links=sibling_links(system),
        config=config,
    )
