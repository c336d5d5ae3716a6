"""Alerts as the label contract in `obsbundle.naming` describes them, and who should get each.

`contract_alerts` is an independent reading of the contract: for every service, SLO, node pool,
datastore and queue of a system, the label sets its alerts carry. `expected_destination` is the owner
table: where an alert must land, decided from the inventory's owners, never from the routing
code under test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from obsbundle import naming
from obsbundle.model import Owner, System
from obsbundle.slo_math import BURN_TIERS

Labels = dict[str, str]

SECRETS_DIR = "/etc/alertmanager/secrets"
"""Where the Alertmanager resource mounts Secrets; each team's webhook URL is `slack-<team>/url` there."""


@dataclass(frozen=True)
class Destination:
    """Where a notification lands: a channel, posted with a team's webhook, with or without a mention."""

    channel: str
    url_file: str | None = None
    mention: str | None = None


WATCHDOG = Destination("dead man's switch")
NOWHERE = Destination("no notification")


def contract_alerts(system: System) -> Iterator[Labels]:
    """One label set per alert a system's rules may raise, as the contract prescribes its labels."""
    owner = system.owner.team
    base = {naming.SYSTEM_LABEL: system.name}
    yield {**base, "alertname": naming.ALERT_WATCHDOG, "severity": "none", "team": owner}
    for pool in system.node_pools:
        at_pool = {**base, "team": owner, naming.NODE_POOL_LABEL: pool.name}
        yield {**at_pool, "alertname": naming.ALERT_NODE_POOL_DOWN, "severity": "critical"}
        yield {**at_pool, "alertname": "NodePoolCpuHigh", "severity": "critical"}
        yield {**at_pool, "alertname": "NodePoolMemoryHigh", "severity": "warning"}
        yield {**at_pool, "alertname": "NodePoolScaledToMax", "severity": "info"}
    for service in system.services:
        at_service = {
            **base,
            "team": system.owner_of(service).team,
            naming.NAMESPACE_LABEL: service.namespace,
            naming.SERVICE_LABEL: service.name,
        }
        if service.node_pool:
            at_service[naming.NODE_POOL_LABEL] = service.node_pool
        yield {**at_service, "alertname": "ServiceDown", "severity": "critical"}
        yield {**at_service, "alertname": "ServiceHighLatency", "severity": "warning"}
        yield {**at_service, "alertname": "ServiceReplicasAtMax", "severity": "info"}
        for slo in service.slos:
            for tier in BURN_TIERS:
                yield {
                    **at_service,
                    "alertname": "SLOErrorBudgetBurn",
                    "severity": tier.severity,
                    naming.SLO_LABEL: slo.name,
                    naming.WINDOW_LABEL: tier.window_pair,
                }
    exporter = {naming.EXPORTER_LABEL: naming.EXPORTER_LABEL_VALUE}
    yield {**base, **exporter, "team": owner, "alertname": naming.ALERT_EXPORTER_DOWN, "severity": "critical"}
    for store in system.datastores:
        at_store = {**base, "team": system.owner_of(store).team, naming.DATASTORE_LABEL: store.name}
        if store.node_pool:
            at_store[naming.NODE_POOL_LABEL] = store.node_pool
        yield {**at_store, **exporter, "alertname": naming.ALERT_EXPORTER_SOURCE_DOWN, "severity": "warning"}
        yield {**at_store, **exporter, "alertname": "DatastoreConnectionsHigh", "severity": "warning"}
        yield {**at_store, "alertname": "DatastoreVolumeFull", "severity": "critical"}
    for queue in system.queues:
        at_queue = {**base, naming.QUEUE_LABEL: queue.name, naming.DATASTORE_LABEL: queue.datastore}
        at_queue["team"] = owner_of_alert(system, at_queue).team
        yield {**at_queue, **exporter, "alertname": "QueueBacklogHigh", "severity": "warning"}
        yield {**at_queue, **exporter, "alertname": "QueueNoConsumers", "severity": "critical"}


def owner_of_alert(system: System, labels: Mapping[str, str]) -> Owner:
    """The owner table's answer to "whose alert is this?"."""
    services = {service.name: service for service in system.services}
    service_name = labels.get(naming.SERVICE_LABEL, "")
    if service_name in services:
        return system.owner_of(services[service_name])
    queues = {queue.name: queue for queue in system.queues}
    queue_name = labels.get(naming.QUEUE_LABEL, "")
    if queue_name in queues:
        consumers = {system.owner_of(services[name]) for name in queues[queue_name].consumers}
        return consumers.pop() if len(consumers) == 1 else system.owner
    datastores = {store.name: store for store in system.datastores}
    datastore_name = labels.get(naming.DATASTORE_LABEL, "")
    if datastore_name in datastores:
        return system.owner_of(datastores[datastore_name])
    dependencies = {dependency.name: dependency for dependency in system.dependencies}
    dependency_name = labels.get(naming.DEPENDENCY_LABEL, "")
    if dependency_name in dependencies:
        return system.owner_of(dependencies[dependency_name])
    return system.owner


def expected_destination(system: System, labels: Mapping[str, str], secrets_dir: str = SECRETS_DIR) -> Destination:
    """The owner table: where an alert must land.

    A service's alerts belong to the service's owner; a queue's to the owner of its consumers when
    they share one (they are the ones who can drain it); a datastore's to its own owner when it
    names one (a service's private database); everything else to the system's owner.
    Critical alerts go to the owner's page channel with its mention, the rest to its team channel;
    info reaches no one and Watchdog only the dead man's switch (no one when there is none). Slack
    is always posted with the owning team's own webhook.
    """
    if labels.get("alertname") == naming.ALERT_WATCHDOG:
        return WATCHDOG if system.monitoring.deadmans_switch_url else NOWHERE
    severity = labels.get(naming.SEVERITY_LABEL)
    if severity == "info":
        return NOWHERE
    owner = owner_of_alert(system, labels)
    url_file = f"{secrets_dir}/slack-{owner.team}/url"
    if severity == "critical":
        return Destination(owner.page_channel, url_file, owner.oncall_mention)
    return Destination(owner.slack_channel, url_file)


def receiver_destinations(config: Mapping[str, Any]) -> dict[str, Destination]:
    """What each receiver of a plain Alertmanager config really does, read from its settings."""
    destinations: dict[str, Destination] = {}
    for receiver in config["receivers"]:
        slack = receiver.get("slack_configs", [])
        webhooks = receiver.get("webhook_configs", [])
        if slack:
            assert len(slack) == 1 and not webhooks, f"{receiver['name']} posts more than one message"
            pretext = slack[0].get("pretext", "")
            mention = re.search(r"\}\}(.+?)\{\{", pretext)
            destinations[receiver["name"]] = Destination(
                slack[0]["channel"], slack[0]["api_url_file"], mention.group(1) if mention else None
            )
        elif webhooks:
            destinations[receiver["name"]] = WATCHDOG
        else:
            destinations[receiver["name"]] = NOWHERE
    return destinations
