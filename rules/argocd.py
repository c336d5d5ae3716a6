"""ArgoCD applications out of sync or unhealthy, from ArgoCD's `argocd_app_info`.

Generated when the inventory names the ArgoCD namespace (`platform.argocd_namespace`). Each alert
fires per application, with its `name` and the status that is wrong.
"""

from __future__ import annotations

from obsbundle import naming
from obsbundle.links import Board, PanelId
from obsbundle.model import System
from obsbundle.promql import selector
from obsbundle.rules.alert_labels import AlertSubject, owner_labels
from obsbundle.rules.cases import argocd as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import AlertDoc, RuleGroup, RunbookCheck
from obsbundle.rules.templating import Description

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


def argocd_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    namespace = system.platform.argocd_namespace
    if namespace is None:
        return []
    where = {naming.NAMESPACE_LABEL: namespace}
    out_of_sync = selector("argocd_app_info", where, 'sync_status!="Synced"')
    unhealthy = selector("argocd_app_info", where, 'health_status=~"Degraded|Missing"')
    subject = AlertSubject(system, owner_labels(system), f"applications in {namespace}", Board.GITOPS)
    check = RunbookCheck("Applications and their state", f"kubectl get applications -n {namespace}")
    alerts = (
        subject.alert(
            OUT_OF_SYNC,
            expr=f"max by (name, sync_status) ({out_of_sync}) == 1",
            severity="warning",
            description=Description("ArgoCD application {name} has been {sync_status} for " + config.argocd_for + "."),
            panel=PanelId.GITOPS_SYNC,
            for_=config.argocd_for,
            case=cases.out_of_sync(namespace),
            threshold=f"sync status not Synced for {config.argocd_for}",
            checks=(check,),
        ),
        subject.alert(
            DEGRADED,
            expr=f"max by (name, health_status) ({unhealthy}) == 1",
            severity="warning",
            description=Description(
                "ArgoCD application {name} has been {health_status} for " + config.argocd_for + "."
            ),
            panel=PanelId.GITOPS_HEALTH,
            for_=config.argocd_for,
            case=cases.degraded(namespace),
            threshold=f"health Degraded or Missing for {config.argocd_for}",
            checks=(check,),
        ),
    )
    return [RuleGroup(f"{system.name}-argocd", config.interval, alerts)]
