"""The cluster's own components, watched like services: `platform.workloads` (node-exporter,
CoreDNS, kube-proxy, ArgoCD's parts, Prometheus, Atlantis…).

Each gets its controller's alerts and its containers' (rules/workload.py, `ControllerAlerts`):
a Deployment's replicas, rollout and generation, a StatefulSet's replicas, generation and update,
a DaemonSet's scheduling and rollout, a Rollout's replicas and phase, and waiting or OOM-killed
containers. The system's owner answers them; they carry the workload's `namespace`, its
`node_pool` when the inventory names one (so that NodePoolDown mutes them), and the controller's
own label from kube-state-metrics (`deployment`, `statefulset`, `daemonset`).
"""

from __future__ import annotations

from obsbundle import naming
from obsbundle.links import Board
from obsbundle.model import PlatformWorkload, System
from obsbundle.rules.alert_labels import AlertSubject, owner_labels
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import RuleGroup
from obsbundle.rules.workload import OVERVIEW_PANELS, ControllerAlerts, Workload

TEST_REPLICAS = 2
"""The replicas the tests give a platform component: the inventory does not say, and the alerts
compare the controller's own desired and actual counts, whatever they are."""


def platform_workload(system: System, component: PlatformWorkload) -> Workload:
    """A platform component as a workload, answered by the system's owner."""
    labels = {**owner_labels(system), naming.NAMESPACE_LABEL: component.namespace}
    if component.node_pool is not None:
        labels[naming.NODE_POOL_LABEL] = component.node_pool
    entity = f"{component.name} ({component.controller.value} in {component.namespace})"
    subject = AlertSubject(system, labels, entity, Board.OVERVIEW)
    return Workload(
        component.name, component.namespace, component.controller, subject, OVERVIEW_PANELS, TEST_REPLICAS
    )


def platform_workload_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    """One group per platform component, by namespace and name."""
    return [
        RuleGroup(
            f"{system.name}-platform-workload-{component.namespace}-{component.name}",
            config.interval,
            tuple(ControllerAlerts(platform_workload(system, component), config).all()),
        )
        for component in sorted(system.platform.workloads, key=lambda c: (c.namespace, c.name))
    ]
