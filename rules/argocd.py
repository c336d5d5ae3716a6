"""ArgoCD applications out of sync or unhealthy, from ArgoCD's `argocd_app_info`.

Generated when the inventory names the ArgoCD namespace (`platform.argocd_namespace`). Each alert
fires per application, with its `name` and the status that is wrong.
"""

from __future__ import annotations

from obsbundle import naming
from obsbundle.links import Board, PanelId, panel_url
from obsbundle.model import System
from obsbundle.promql import selector
from obsbundle.rules.alert_labels import runbook_url, system_labels
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertDoc, Case, Inputs, RuleGroup, RunbookCheck
from obsbundle.rules.input_series import constant
from obsbundle.rules.templating import Description

TEST_MINUTES = 25
TEST_APP = "auth-service"

OUT_OF_SYNC = AlertDoc(
    name="ArgoCdAppOutOfSync",
    summary="An ArgoCD application is out of sync with Git.",
    meaning="The live state of the application differs from its Git revision for a while: a sync failed, "
    "auto-sync is off, or someone changed the cluster by hand.",
    actions=(
        "`argocd app diff <app>` (or the UI's diff) shows what differs.",
        "`argocd app get <app>`: the last sync's result and error.",
        "Sync it, or revert the manual change in the cluster; fix the manifest if the sync fails.",
    ),
)
DEGRADED = AlertDoc(
    name="ArgoCdAppDegraded",
    summary="An ArgoCD application is degraded or missing resources.",
    meaning="ArgoCD's health check of the application reports Degraded (a Deployment without its replicas, a "
    "failing Job, a crashing pod) or Missing (resources that should exist do not).",
    actions=(
        "`argocd app get <app>`: which resources are unhealthy?",
        "Follow the resource's own alerts (workload, volume); roll back to the last healthy revision if a "
        "sync caused it.",
    ),
)


def _app(system: System, namespace: str, sync: str, health: str) -> Inputs:
    labels = {
        naming.NAMESPACE_LABEL: namespace,
        "name": TEST_APP,
        "project": "default",
        "sync_status": sync,
        "health_status": health,
    }
    return (constant("argocd_app_info", labels, 1, TEST_MINUTES),)


def argocd_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    namespace = system.platform.argocd_namespace
    if namespace is None:
        return []
    where = {naming.NAMESPACE_LABEL: namespace}
    out_of_sync = selector("argocd_app_info", where, 'sync_status!="Synced"')
    unhealthy = selector("argocd_app_info", where, 'health_status=~"Degraded|Missing"')
    labels = system_labels(system)
    check = RunbookCheck("Applications and their state", f"kubectl get applications -n {namespace}")
    alerts = (
        Alert(
            doc=OUT_OF_SYNC,
            expr=f"max by (name, sync_status) ({out_of_sync}) == 1",
            severity="warning",
            labels=labels,
            description=Description("ArgoCD application {name} has been {sync_status} for " + config.argocd_for + "."),
            runbook_url=runbook_url(system, OUT_OF_SYNC.name),
            dashboard_url=panel_url(system, Board.GITOPS, PanelId.GITOPS_SYNC),
            for_=config.argocd_for,
            case=Case(
                firing=_app(system, namespace, "OutOfSync", "Healthy"),
                quiet=_app(system, namespace, "Synced", "Healthy"),
                labels={"name": TEST_APP, "sync_status": "OutOfSync"},
                value=1,
                eval_time="20m",
            ),
            entity=f"applications in {namespace}",
            threshold=f"sync status not Synced for {config.argocd_for}",
            checks=(check,),
        ),
        Alert(
            doc=DEGRADED,
            expr=f"max by (name, health_status) ({unhealthy}) == 1",
            severity="warning",
            labels=labels,
            description=Description(
                "ArgoCD application {name} has been {health_status} for " + config.argocd_for + "."
            ),
            runbook_url=runbook_url(system, DEGRADED.name),
            dashboard_url=panel_url(system, Board.GITOPS, PanelId.GITOPS_HEALTH),
            for_=config.argocd_for,
            case=Case(
                firing=_app(system, namespace, "Synced", "Degraded"),
                quiet=_app(system, namespace, "Synced", "Progressing"),
                labels={"name": TEST_APP, "health_status": "Degraded"},
                value=1,
                eval_time="20m",
            ),
            entity=f"applications in {namespace}",
            threshold=f"health Degraded or Missing for {config.argocd_for}",
            checks=(check,),
        ),
    )
    return [RuleGroup(f"{system.name}-argocd", config.interval, alerts)]
