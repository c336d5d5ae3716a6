"""Every PrometheusRule a system needs, the same groups as plain rule files, promtool tests, runbooks.

`generate_rules` is the generator registered in `obsbundle.bundle.GENERATORS`. Per system it
writes, for each rule group:

- `<system>-<component>-prometheusrule.yaml`: a PrometheusRule in the system's monitoring namespace
  with the component's groups (slo, red, node-pools, workloads, …);
- `prometheus/rules/<group>.rules.yaml`: the group as a plain rule file (promtool, Thanos Ruler,
  Mimir; also written with `--format prometheus`);
- `prometheus/rules/<group>.test.yaml`: its promtool tests (`promtool test rules`), next to it;
- with `--ruler global`, `mimir/<system>.rules.yaml`: every group in one namespace file of
  `mimirtool rules load` (`obsbundle.rules.ruler`);

and `runbooks/<Alert>.md` for each alert name. The components, one module each, are pure
functions of the system and a `RuleConfig` (the rules' section of `obsbundle.config.Config`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from obsbundle.documents import Document, Format, SharedBlock
from obsbundle.labels import object_labels
from obsbundle.model import System
from obsbundle.rules.argocd import argocd_groups
from obsbundle.rules.brokers import broker_groups
from obsbundle.rules.cert_manager import cert_manager_groups
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.control_plane import control_plane_groups
from obsbundle.rules.datastore_health import datastore_health_groups
from obsbundle.rules.definitions import Alert, RuleGroup
from obsbundle.rules.dependencies import dependency_groups, with_dependency_context
from obsbundle.rules.exporters import watch_exporters
from obsbundle.rules.node_pool import node_pool_groups
from obsbundle.rules.platform_workloads import platform_workload_groups
from obsbundle.rules.postgres import postgres_groups
from obsbundle.rules.promtool_tests import rule_file_name, test_files
from obsbundle.rules.queues import queue_groups
from obsbundle.rules.red import red_groups
from obsbundle.rules.ruler import MIMIR_DIR, group_for_ruler, mimir_namespace, tests_for_ruler
from obsbundle.rules.runbooks import runbook
from obsbundle.rules.slo import slo_rule_groups
from obsbundle.rules.slo_scenarios import with_slo_tests
from obsbundle.rules.targets import target_groups
from obsbundle.rules.volumes import volume_groups
from obsbundle.rules.workload import workload_groups
from obsbundle.settings import Ruler, Settings

if TYPE_CHECKING:  # obsbundle.config imports this package's config module
    from obsbundle.config import Config

API_VERSION = "monitoring.coreos.com/v1"
RULES_DIR = "prometheus/rules"
RUNBOOKS_DIR = "runbooks"


COMPONENTS: tuple[tuple[str, Callable[[System, RuleConfig], list[RuleGroup]]], ...] = (
    ("slo", slo_rule_groups),
    ("red", red_groups),
    ("node-pools", node_pool_groups),
    ("workloads", workload_groups),
    ("platform-workloads", platform_workload_groups),
    ("volumes", volume_groups),
    ("postgres", postgres_groups),
    ("datastore-health", datastore_health_groups),
    ("queues", queue_groups),
    ("brokers", broker_groups),
    ("argocd", argocd_groups),
    ("control-plane", control_plane_groups),
    ("cert-manager", cert_manager_groups),
    ("dependencies", dependency_groups),
    ("targets", target_groups),
)
"""Each component's groups go into one PrometheusRule named `<system>-<component>`."""

ComponentGroups = tuple[tuple[str, tuple[RuleGroup, ...]], ...]
"""(component, groups) of one system, components without rules left out."""


def alerting_components(system: System, config: RuleConfig) -> ComponentGroups:
    """(component, groups) without the SLO scenario tests, components without rules left out: the
    costly part of a system's rules, built once per generation (see `obsbundle.bundle`) and read
    for the rule files and for the dashboards' alert tables."""
    found = tuple((name, tuple(build(system, config))) for name, build in COMPONENTS)
    # Labels every alert with the exporters it reads and adds their absence alerts (`exporters`).
    watched = watch_exporters(system, config, found)
    # Names, on every page about a service, the dependencies it uses that fail meanwhile.
    watched = with_dependency_context(system, watched)
    return tuple((name, groups) for name, groups in watched if groups)


def with_scenario_tests(
    system: System, built: ComponentGroups, config: RuleConfig
) -> list[tuple[str, list[RuleGroup]]]:
    """`built` with the SLO groups carrying their scenario tests."""
    return [
        (name, with_slo_tests(system, list(groups), config) if name == "slo" else list(groups))
        for name, groups in built
    ]


def component_groups(system: System, config: RuleConfig) -> list[tuple[str, list[RuleGroup]]]:
    """(component, groups) in a stable order, components without rules left out; the SLO groups
    carry their scenario tests."""
    return with_scenario_tests(system, alerting_components(system, config), config)


def rule_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    """Every rule group of the system, in a stable order."""
    return [group for _, groups in component_groups(system, config) for group in groups]


def alert_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    """Every rule group with its alerts but without the SLO scenario tests, for callers that only
    read the alerts."""
    return [group for _, groups in alerting_components(system, config) for group in groups]


def prometheus_rule(system: System, settings: Settings, component: str, groups: Sequence[Any]) -> dict[str, Any]:
    """The PrometheusRule object that carries one component's groups (`RuleGroup.to_dict()` each,
    or shared blocks of them)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "PrometheusRule",
        "metadata": {
            "name": f"{system.name}-{component}",
            "namespace": system.monitoring.namespace,
            "labels": {**object_labels(system, settings), "app.kubernetes.io/component": "rules"},
        },
        "spec": {"groups": list(groups)},
    }


def alerts_by_name(groups: list[RuleGroup]) -> dict[str, list[Alert]]:
    named: dict[str, list[Alert]] = {}
    for group in groups:
        for alert in group.alerts:
            named.setdefault(alert.name, []).append(alert)
    return dict(sorted(named.items()))


def rule_documents(system: System, config: Config, built: ComponentGroups) -> Iterator[Document]:
    """The rule documents of one system from its `alerting_components`."""
    components = with_scenario_tests(system, built, config.rules)
    ruler = config.output.ruler
    every_block: list[SharedBlock] = []
    for component, groups in components:
        # Each group is rendered once, for its plain file and for the PrometheusRule.
        blocks = [SharedBlock(group_for_ruler(group.to_dict(), system, ruler)) for group in groups]
        every_block.extend(blocks)
        yield Document(
            f"{system.name}-{component}-prometheusrule.yaml",
            prometheus_rule(system, config.output, component, blocks),
            kubernetes=True,
        )
        for group, block in zip(groups, blocks, strict=True):
            yield Document(f"{RULES_DIR}/{rule_file_name(group.name)}", {"groups": [block]})
            for name, content in test_files(group).items():
                yield Document(f"{RULES_DIR}/{name}", tests_for_ruler(content, system, ruler))
    if ruler is Ruler.GLOBAL:
        # Mimir's and Cortex's ruler are global by nature: their file only for global rules.
        yield Document(f"{MIMIR_DIR}/{system.name}.rules.yaml", mimir_namespace(system, every_block))
    all_groups = [group for _, groups in components for group in groups]
    for name, alerts in alerts_by_name(all_groups).items():
        yield Document(f"{RUNBOOKS_DIR}/{name}.md", runbook(system, alerts), Format.MARKDOWN)


def generate_rules(system: System, config: Config) -> Iterator[Document]:
    """The rule documents of one system, its rules built here."""
    return rule_documents(system, config, alerting_components(system, config.rules))


__all__ = ["alerting_components", "generate_rules", "rule_documents", "rule_groups"]
