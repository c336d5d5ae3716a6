"""Broker health from the brokers' standard exporters: RabbitMQ's own rabbitmq_prometheus plugin and
kafka_exporter, for every RabbitMQ and Kafka datastore that names its exporter (`metrics`).

Series are selected by the contract of the generated datastore monitors (monitors/datastores.py):
the datastore's namespace and `service` = its name, on `up` and on every exporter series alike.

RabbitMQ: the alert set and thresholds of RabbitMQ's own rules (rabbitmq/cluster-operator at
9035e765, observability/prometheus/rules/rabbitmq/: cluster-alarms.yml, file-descriptors-near-limit.yml,
unroutable-messages.yml): memory and disk alarms (the alarm seen at any scrape of the last 5m), file
descriptors above 80 % for 10m, unroutable messages in the last 5m; and a node down, which the
operator leaves to kube-state-metrics (no-majority-of-nodes-ready.yml) and which here is the
plugin's own target: the plugin runs inside the broker, so no answer from it is a node that is
down. Two departures, both for this project's fleet: the alarms are critical, not warning, because
an alarm blocks every publisher of the cluster until a human frees memory or disk; unroutable
messages are counted with the node-wide `rabbitmq_global_messages_unroutable_*` counters, not the
per-channel ones, because the aggregated /metrics sums only the channels still open, so a short-lived
publisher's losses vanish with its channel (tests/test_brokers_live.py shows it on a real broker).

Kafka (kafka_exporter v1.9.0, danielqsj/kafka_exporter@8ec24078:kafka_exporter.go): fewer brokers
in the cluster's metadata than the StatefulSet's replicas, under-replicated partitions (Strimzi's
kafkaExporter rule, strimzi/strimzi-kafka-operator@0c1a1fba:packaging/examples/metrics/
prometheus-install/prometheus-rules.yaml) and offline partitions. kafka_exporter has no
offline-partition metric: it publishes `kafka_topic_partition_leader` only when its client finds
the partition's leader (sarama's `Client.Leader` fails with ErrLeaderNotAvailable for a partition
without one), while `kafka_topic_partition_replicas` comes from the metadata either way. A partition
with replicas and no leader series is offline.

Silence is never health. RabbitmqNodeDown is also the plugin's absence alert (no target answering
is no node answering, `or vector(0)`), and it mutes nothing: every other RabbitMQ alert reads only
the series of the nodes that answer, so a node that is down cannot make them fire and those of the
nodes still up stay true. Hence Provider.RABBITMQ is in neither naming.EXPORTER_ABSENT_ALERTS nor
naming.DATASTORE_EXPORTER_DOWN_ALERTS. kafka_exporter's absence is KafkaExporterDown, the system's
(rules/exporters.py: the queues' consumer-lag alerts read kafka_exporter by consumer group, also for
a Kafka without a generated monitor); it mutes the Kafka alerts here through their `exporter` label.
"""

from __future__ import annotations

from obsbundle import naming
from obsbundle.links import Board, PanelId
from obsbundle.model import Datastore, DatastoreKind, System
from obsbundle.promql import selector
from obsbundle.rules.alert_labels import AlertSubject, datastore_labels
from obsbundle.rules.cases import brokers as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertDoc, RuleGroup, RunbookCheck, Severity
from obsbundle.rules.templating import Description, ValueFormat

_HOW_TO_CHECK = "The commands under How to check name the broker's namespace and pod."

RABBITMQ_NODE_DOWN = AlertDoc(
    name="RabbitmqNodeDown",
    summary="A RabbitMQ node does not answer Prometheus.",
    meaning="Fewer RabbitMQ nodes answer on their rabbitmq_prometheus endpoint than the StatefulSet runs. The "
    "plugin runs inside the broker, so a node that does not answer is down, restarting or unreachable; with a "
    "single node, every publisher and consumer of the broker fails meanwhile, and no other RabbitMQ alert can "
    "fire.",
    actions=(
        "Look at the pods: `kubectl get pods -n <namespace> -l statefulset.kubernetes.io/pod-name` and "
        "`kubectl describe pod` of the one that is not Running and Ready (OOMKilled, a volume that will not mount, "
        "a node that is gone). " + _HOW_TO_CHECK,
        "Read the node's log (`kubectl logs <pod> --previous` after a restart): a boot that fails on the Mnesia "
        "database or on a peer it waits for says so.",
        "If the pod runs but Prometheus cannot scrape it: is the plugin enabled (`rabbitmq-plugins list`) and "
        "does the Service expose its port (15692)?",
    ),
)
RABBITMQ_MEMORY_ALARM = AlertDoc(
    name="RabbitmqMemoryAlarm",
    summary="A RabbitMQ node is above its memory high watermark: publishers are blocked.",
    meaning="The node's memory use reached `vm_memory_high_watermark` and it raised the memory alarm. Every "
    "node of the cluster then blocks the connections that publish, until memory falls below the watermark: "
    "producers hang, consumers keep going.",
    actions=(
        "`rabbitmq-diagnostics alarms` and `rabbitmq-diagnostics memory_breakdown` on the node: which alarm, "
        "and what holds the memory (queue processes, binaries, connections). " + _HOW_TO_CHECK,
        "`rabbitmqctl list_queues name messages_ready messages_unacknowledged consumers memory`: a queue "
        "that only grows (no or slow consumers) is the usual cause; get its consumers going, or purge it if "
        "its messages can be lost.",
        "Raise the pod's memory limit (the watermark is a share of it) only once the backlog is understood.",
    ),
)
RABBITMQ_DISK_ALARM = AlertDoc(
    name="RabbitmqDiskAlarm",
    summary="A RabbitMQ node is below its free-disk limit: publishers are blocked.",
    meaning="Free space on the node's data volume fell below `disk_free_limit` and it raised the disk alarm. "
    "Every node of the cluster then blocks the connections that publish until space is back.",
    actions=(
        "`rabbitmq-diagnostics alarms` and `rabbitmqctl status` (its Disk section) on the node. " + _HOW_TO_CHECK,
        "Drain or purge the queues that hold the messages written to disk "
        "(`rabbitmqctl list_queues name messages messages_persistent`).",
        "Grow the data volume's PersistentVolumeClaim if the broker needs the space.",
    ),
)
RABBITMQ_FILE_DESCRIPTORS = AlertDoc(
    name="RabbitmqFileDescriptorsNearLimit",
    summary="A RabbitMQ node uses most of its file descriptors.",
    meaning="Open file descriptors exceed the threshold's share of the node's limit. At 100 % the node accepts "
    "no new connections and its disk writes may fail; clients, peers and the CLI tools can no longer connect.",
    actions=(
        "`rabbitmqctl status` (its File Descriptors section) and `rabbitmqctl list_connections name channels "
        "client_properties`: which clients hold the connections? " + _HOW_TO_CHECK,
        "A client that opens a connection per message leaks descriptors: fix it to reuse one connection.",
        "Raise the container's `nofile` limit only for real load.",
    ),
)
RABBITMQ_UNROUTABLE = AlertDoc(
    name="RabbitmqUnroutableMessages",
    summary="RabbitMQ received messages it could route to no queue.",
    meaning="Messages were published to an exchange with no binding that matches their routing key. They are "
    "dropped (or returned to a publisher that set `mandatory`): the work they carry is lost.",
    actions=(
        "`rabbitmqctl list_exchanges name type` and `rabbitmqctl list_bindings source_name destination_name "
        "routing_key`: is the queue the publisher expects declared and bound? " + _HOW_TO_CHECK,
        "Check the publishers' exchange and routing key against the consumers' declarations (a renamed queue, "
        "a consumer that declares its queue only once it starts).",
    ),
)
KAFKA_BROKERS_MISSING = AlertDoc(
    name="KafkaBrokersMissing",
    summary="The Kafka cluster has fewer brokers than its StatefulSet runs.",
    meaning="kafka_exporter sees fewer brokers in the cluster's metadata than the datastore's `replicas`. The "
    "partitions those brokers led move to others, and those they replicated are under-replicated until "
    "they return.",
    actions=(
        "`kubectl get pods -n <namespace>` for the StatefulSet's pods: which broker is not Running and Ready, "
        "and why (`kubectl describe pod`, `kubectl logs --previous`)? " + _HOW_TO_CHECK,
        "List the brokers the cluster knows: `kafka-broker-api-versions.sh --bootstrap-server localhost:9092 "
        "| grep id` inside a broker pod.",
    ),
)
KAFKA_UNDER_REPLICATED = AlertDoc(
    name="KafkaUnderReplicatedPartitions",
    summary="Kafka partitions have fewer in-sync replicas than replicas.",
    meaning="Some partitions' in-sync replica set is smaller than their replica set: a broker is down, or too "
    "slow to keep up. One more broker lost may take those partitions offline, or lose the writes acknowledged "
    "by fewer replicas than `min.insync.replicas`.",
    actions=(
        "`kafka-topics.sh --bootstrap-server localhost:9092 --describe --under-replicated-partitions` inside a "
        "broker pod: which partitions, and which replica is missing from their Isr? " + _HOW_TO_CHECK,
        "The broker missing from the Isr: is it up (KafkaBrokersMissing), and is its disk or network saturated?",
    ),
)
KAFKA_OFFLINE = AlertDoc(
    name="KafkaOfflinePartitions",
    summary="Kafka partitions have no leader: they can be neither written nor read.",
    meaning="kafka_exporter finds no leader for some partitions (it publishes their replicas but no "
    "`kafka_topic_partition_leader`). Producers to those partitions fail and their consumers stall until a "
    "replica that was in sync comes back and is elected.",
    actions=(
        "`kafka-topics.sh --bootstrap-server localhost:9092 --describe --unavailable-partitions` inside a broker "
        "pod: which partitions, and which brokers held them? " + _HOW_TO_CHECK,
        "Bring those brokers back (their pods, volumes and nodes). Enable unclean leader election only if "
        "losing the writes that were not replicated is acceptable.",
    ),
)


def broker_datastores(system: System, kind: DatastoreKind) -> list[Datastore]:
    """The system's datastores of `kind` whose standard exporter is scraped, sorted by name."""
    return sorted(
        (store for store in system.datastores if store.kind is kind and store.metrics is not None),
        key=lambda store: store.name,
    )


def target_labels(store: Datastore) -> dict[str, str]:
    """What selects a datastore's exporter series: its namespace and `service` = its name (the
    generated datastore monitors' contract)."""
    return {naming.NAMESPACE_LABEL: store.namespace, naming.SERVICE_LABEL: store.name}


def node_pod(store: Datastore) -> str:
    """Where a node's commands run: the only pod, or the one the alert names in a cluster."""
    return first_pod(store) if store.replicas == 1 else "<pod>"


def first_pod(store: Datastore) -> str:
    """The StatefulSet's first pod, where the runbooks' commands run."""
    return f"{store.statefulset or store.name}-0"


def exec_in(store: Datastore, command: str, pod: str | None = None) -> str:
    return f"kubectl exec -n {store.namespace} {pod or first_pod(store)} -- {command}"


def rabbitmq_series(store: Datastore, metric: str) -> str:
    return selector(metric, target_labels(store))


def rabbitmq_nodes_up(store: Datastore) -> str:
    """RabbitMQ nodes (pods) with a target that answers, 0 when none does or none is discovered."""
    return f"count(max by (pod) ({rabbitmq_series(store, 'up')}) == 1) or vector(0)"


def rabbitmq_alarm(store: Datastore, metric: str, window: str) -> str:
    """1 per node whose alarm was raised at any scrape of `window`."""
    return f"max by (pod) (max_over_time({rabbitmq_series(store, metric)}[{window}]))"


def rabbitmq_fd_usage(store: Datastore, window: str) -> str:
    """Open file descriptors (the most of `window`) over the limit, per node."""
    used = f"max by (pod) (max_over_time({rabbitmq_series(store, 'rabbitmq_process_open_fds')}[{window}]))"
    limit = f"max by (pod) ({rabbitmq_series(store, 'rabbitmq_process_max_fds')})"
    return f"{used}\n/ {limit}"


def rabbitmq_unroutable(store: Datastore, window: str) -> str:
    """Messages dropped or returned as unroutable over `window`, on all nodes."""
    parts = (
        f"sum(increase({rabbitmq_series(store, f'rabbitmq_global_messages_unroutable_{outcome}_total')}[{window}]))"
        for outcome in ("dropped", "returned")
    )
    return "\n+ ".join(parts)


def kafka_series(store: Datastore, metric: str) -> str:
    return selector(metric, target_labels(store))


def kafka_offline_partitions(store: Datastore) -> str:
    """Partitions whose replicas kafka_exporter lists but whose leader it cannot find."""
    replicas = kafka_series(store, "kafka_topic_partition_replicas")
    leaders = kafka_series(store, "kafka_topic_partition_leader")
    return f"count({replicas}\n  unless on (topic, partition) {leaders})"


def kafka_under_replicated(store: Datastore) -> str:
    return f"sum({kafka_series(store, 'kafka_topic_partition_under_replicated_partition')})"


def kafka_brokers(store: Datastore) -> str:
    return f"max({kafka_series(store, 'kafka_brokers')})"


def _reads(query: str) -> RunbookCheck:
    return RunbookCheck("What the alert reads", query, "promql")


def _shell(title: str, store: Datastore, *commands: str) -> RunbookCheck:
    """Commands any broker pod answers for the whole cluster (cluster status, topics, bindings)."""
    return RunbookCheck(title, "\n".join(exec_in(store, command) for command in commands))


def _on_node(title: str, store: Datastore, *commands: str) -> RunbookCheck:
    """Commands about one node (its alarms, memory, descriptors), in the pod the alert names."""
    last = f"{store.statefulset or store.name}-{store.replicas - 1}"
    pods = "" if store.replicas == 1 else f" (`<pod>`: the pod the alert names, {first_pod(store)} … {last})"
    return RunbookCheck(title + pods, "\n".join(exec_in(store, command, node_pod(store)) for command in commands))


class _Broker:
    """What every alert about one broker carries: the datastore's labels, a link to the queue
    dashboard with the datastore selected, and its promtool cases."""

    def __init__(self, system: System, config: RuleConfig, store: Datastore) -> None:
        self.system, self.config, self.store = system, config, store
        self.subject = AlertSubject(
            system, datastore_labels(system, store), store.name, Board.QUEUES, variables={"datastore": store.name}
        )
        self.cases = cases.BrokerCases(system, config, store)
        self.where = f"{store.name} (namespace {store.namespace})"


class _RabbitMQ(_Broker):
    def node_down(self) -> list[Alert]:
        """A node missing warns; fewer nodes than a majority (all of them, for one node) pages: the
        cluster then pauses its quorum queues and, alone, the broker is gone for everyone. The page
        inhibits the warning (critical inhibits warning on the same datastore)."""
        replicas = self.store.replicas
        majority = replicas // 2 + 1
        tiers: list[tuple[int, Severity]] = [(majority, "critical")]
        if majority < replicas:
            tiers.insert(0, (replicas, "warning"))
        return [self._nodes_below(needed, severity) for needed, severity in tiers]

    def _nodes_below(self, needed: int, severity: Severity) -> Alert:
        replicas = self.store.replicas
        up = rabbitmq_nodes_up(self.store)
        return self.subject.alert(
            RABBITMQ_NODE_DOWN,
            expr=f"({up})\n< {needed}",
            severity=severity,
            description=Description(f"{{value}} of {replicas} RabbitMQ nodes of {self.where} answer Prometheus."),
            panel=PanelId.QUEUE_RABBITMQ_NODES,
            for_=self.config.rabbitmq_node_down_for,
            case=None,  # rabbitmq_node_down_tests: it fires on missing data
            threshold=f"fewer than {needed} of {replicas} nodes answering for {self.config.rabbitmq_node_down_for}",
            checks=(
                _reads(up),
                RunbookCheck(
                    "The StatefulSet and its pods",
                    f"kubectl get statefulset -n {self.store.namespace} {self.store.statefulset or self.store.name}\n"
                    f"kubectl describe pod -n {self.store.namespace} {first_pod(self.store)}",
                ),
                _shell("The node's own view", self.store, "rabbitmqctl status", "rabbitmqctl cluster_status"),
            ),
            entity=f"{self.store.name} ({severity})" if replicas > 2 else None,
        )

    def _alarm(self, doc: AlertDoc, metric: str, what: str, panel: PanelId, check: RunbookCheck) -> Alert:
        window = self.config.rabbitmq_alarm_window
        alarm = rabbitmq_alarm(self.store, metric, window)
        return self.subject.alert(
            doc,
            expr=f"{alarm} > 0",
            severity="critical",
            description=Description(
                f"RabbitMQ node {{pod}} of {self.where} raised its {what} alarm in the last {window}: "
                "every publishing connection of the cluster is blocked."
            ),
            panel=panel,
            for_=None,
            case=self.cases.rabbitmq_alarm(metric),
            threshold=f"{metric} = 1 at any scrape of the last {window}",
            checks=(_reads(alarm), check),
        )

    def memory_alarm(self) -> Alert:
        check = _on_node(
            "The node's alarms, memory and queues", self.store,
            "rabbitmq-diagnostics alarms",
            "rabbitmq-diagnostics memory_breakdown",
            "rabbitmqctl list_queues name messages_ready messages_unacknowledged consumers memory",
        )
        return self._alarm(RABBITMQ_MEMORY_ALARM, "rabbitmq_alarms_memory_used_watermark", "memory",
                           PanelId.QUEUE_RABBITMQ_MEMORY, check)

    def disk_alarm(self) -> Alert:
        check = _on_node(
            "The node's alarms, free disk and persistent messages", self.store,
            "rabbitmq-diagnostics alarms",
            "rabbitmqctl status",
            "rabbitmqctl list_queues name messages messages_persistent",
        )
        return self._alarm(RABBITMQ_DISK_ALARM, "rabbitmq_alarms_free_disk_space_watermark", "disk",
                           PanelId.QUEUE_RABBITMQ_ALARMS, check)

    def file_descriptors(self) -> Alert:
        share = self.config.rabbitmq_fd_share
        usage = rabbitmq_fd_usage(self.store, self.config.rabbitmq_alarm_window)
        return self.subject.alert(
            RABBITMQ_FILE_DESCRIPTORS,
            expr=f"{usage}\n> {format(share.normalize(), 'f')}",
            severity="warning",
            description=Description(
                f"RabbitMQ node {{pod}} of {self.where} uses {{value}} of its file descriptors "
                f"(alert above {float(share) * 100:g}%).",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.QUEUE_RABBITMQ_FDS,
            for_=self.config.rabbitmq_fd_for,
            case=self.cases.rabbitmq_file_descriptors(),
            threshold=f"> {float(share) * 100:g}% of rabbitmq_process_max_fds for {self.config.rabbitmq_fd_for}",
            checks=(
                _reads(usage),
                _on_node("Descriptors and connections", self.store, "rabbitmqctl status",
                         "rabbitmqctl list_connections name channels client_properties"),
            ),
        )

    def unroutable(self) -> Alert:
        window = self.config.rabbitmq_unroutable_window
        lost = rabbitmq_unroutable(self.store, window)
        return self.subject.alert(
            RABBITMQ_UNROUTABLE,
            expr=f"{lost}\n>= 1",
            severity="warning",
            description=Description(
                f"RabbitMQ {self.where} dropped or returned {{value}} unroutable messages in the last {window}."
            ),
            panel=PanelId.QUEUE_RABBITMQ_UNROUTABLE,
            for_=None,
            case=self.cases.rabbitmq_unroutable(),
            threshold=f">= 1 message dropped or returned in {window}",
            checks=(
                _reads(lost),
                _shell("Exchanges and bindings", self.store, "rabbitmqctl list_exchanges name type",
                       "rabbitmqctl list_bindings source_name destination_name routing_key"),
            ),
        )


class _Kafka(_Broker):
    def _topics(self, *flags: str) -> RunbookCheck:
        command = "kafka-topics.sh --bootstrap-server localhost:9092 --describe " + " ".join(flags)
        return _shell("The partitions, from a broker", self.store, command)

    def brokers_missing(self) -> Alert:
        replicas = self.store.replicas
        seen = kafka_brokers(self.store)
        return self.subject.alert(
            KAFKA_BROKERS_MISSING,
            expr=f"{seen} < {replicas}",
            severity="warning",
            description=Description(f"kafka_exporter sees {{value}} of {replicas} brokers in Kafka {self.where}."),
            panel=PanelId.QUEUE_KAFKA_BROKERS,
            for_=self.config.kafka_brokers_missing_for,
            case=self.cases.kafka_brokers_missing(),
            threshold=f"< {replicas} brokers for {self.config.kafka_brokers_missing_for}",
            checks=(
                _reads(seen),
                RunbookCheck(
                    "The StatefulSet and its pods",
                    f"kubectl get statefulset -n {self.store.namespace} {self.store.statefulset or self.store.name}\n"
                    f"kubectl get pods -n {self.store.namespace} -o wide",
                ),
                _shell("The brokers the cluster knows", self.store,
                       "kafka-broker-api-versions.sh --bootstrap-server localhost:9092"),
            ),
        )

    def under_replicated(self) -> Alert:
        count = kafka_under_replicated(self.store)
        return self.subject.alert(
            KAFKA_UNDER_REPLICATED,
            expr=f"{count} > 0",
            severity="warning",
            description=Description(f"{{value}} partitions of Kafka {self.where} are under-replicated."),
            panel=PanelId.QUEUE_KAFKA_PARTITIONS,
            for_=self.config.kafka_under_replicated_for,
            case=self.cases.kafka_under_replicated(),
            threshold=f"> 0 partitions for {self.config.kafka_under_replicated_for}",
            checks=(_reads(count), self._topics("--under-replicated-partitions")),
        )

    def offline(self) -> Alert:
        count = kafka_offline_partitions(self.store)
        return self.subject.alert(
            KAFKA_OFFLINE,
            expr=f"{count}\n> 0",
            severity="critical",
            description=Description(f"{{value}} partitions of Kafka {self.where} have no leader."),
            panel=PanelId.QUEUE_KAFKA_PARTITIONS,
            for_=self.config.kafka_offline_for,
            case=self.cases.kafka_offline(),
            threshold=f"> 0 partitions without a leader for {self.config.kafka_offline_for}",
            checks=(_reads(count), self._topics("--unavailable-partitions")),
        )


def broker_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    """One group with every RabbitMQ and Kafka datastore's health alerts (none without such a
    datastore), with the node-down tests of every RabbitMQ beside the alerts' own cases."""
    alerts: list[Alert] = []
    node_down: list[tuple[cases.BrokerCases, list[Alert]]] = []
    for store in broker_datastores(system, DatastoreKind.RABBITMQ):
        build = _RabbitMQ(system, config, store)
        tiers = build.node_down()
        node_down.append((build.cases, tiers))
        alerts += [*tiers, build.memory_alarm(), build.disk_alarm(), build.file_descriptors(), build.unroutable()]
    for store in broker_datastores(system, DatastoreKind.KAFKA):
        build_kafka = _Kafka(system, config, store)
        alerts += [build_kafka.brokers_missing(), build_kafka.under_replicated(), build_kafka.offline()]
    if not alerts:
        return []
    tests = cases.rabbitmq_node_down_tests(node_down, config)
    return [RuleGroup(f"{system.name}-brokers", config.interval, tuple(alerts), tests=tests)]

