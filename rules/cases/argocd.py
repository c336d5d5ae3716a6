"""ArgoCD's cases: one application (`auth-service`) in each sync and health state."""

from __future__ import annotations

from obsbundle import naming
from obsbundle.rules.definitions import Case, Inputs
from obsbundle.rules.input_series import constant

TEST_MINUTES = 25
TEST_APP = "auth-service"


def _app(namespace: str, sync: str, health: str) -> Inputs:
    labels = {
        naming.NAMESPACE_LABEL: namespace,
        "name": TEST_APP,
        "project": "default",
        "sync_status": sync,
        "health_status": health,
    }
    return (constant("argocd_app_info", labels, 1, TEST_MINUTES),)


def out_of_sync(namespace: str) -> Case:
    """An OutOfSync application fires; a synced one stays quiet."""
    return Case(
        firing=_app(namespace, "OutOfSync", "Healthy"),
        quiet=_app(namespace, "Synced", "Healthy"),
        labels={"name": TEST_APP, "sync_status": "OutOfSync"},
        value=1,
        eval_time="20m",
    )


def degraded(namespace: str) -> Case:
    """A Degraded application fires; a Progressing one stays quiet."""
    return Case(
        firing=_app(namespace, "Synced", "Degraded"),
        quiet=_app(namespace, "Synced", "Progressing"),
        labels={"name": TEST_APP, "health_status": "Degraded"},
        value=1,
        eval_time="20m",
    )
