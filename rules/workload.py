"""Workload health from kube-state-metrics, cAdvisor and the Argo Rollouts controller.

Every long-running workload the inventory names gets the alerts of its controller, whether it is
a service (api, worker: `Service.workload_controller`), a datastore's StatefulSet
(`Datastore.statefulset`) or a platform component (`Platform.workloads`, rules/platform_workloads.py).
The semantics are kubernetes-mixin's (alerts/apps_alerts.libsonnet at aa38e2b), per workload:

- Deployment: replicas not available (KubeDeploymentReplicasMismatch), rollout not progressing
  (KubeDeploymentRolloutStuck), generation not observed (KubeDeploymentGenerationMismatch);
- StatefulSet: replicas not ready, generation not observed, update not rolled out
  (KubeStatefulSetReplicasMismatch, -GenerationMismatch, -UpdateNotRolledOut);
- DaemonSet: pods not scheduled, misscheduled, rollout stuck (KubeDaemonSetNotScheduled,
  -MisScheduled, -RolloutStuck);
- Argo Rollout: replicas not available and a rollout aborted, failed or timed out, from the
  Rollouts controller's `rollout_info*` (a Rollout has no `kube_deployment_*` series, so the
  Deployment alerts would never fire for it);
- every container: waiting other than in CrashLoopBackOff (KubeContainerWaiting) and OOM-killed.

Services add crash looping, HPA pinned at its maximum, pods not ready, memory near the container
limit and, with a CPU limit, CPU throttling (CPUThrottlingHigh). Jobs: failed, not completed
(KubeJobNotCompleted). CronJobs: missed (no success within the schedule's longest gap plus grace)
and failed (the newest run failed after the last success). Pods are found by name, as their
controllers name them: Deployments and Argo Rollouts `<name>-<hash>-<suffix>`, StatefulSets
`<name>-<ordinal>`, DaemonSets `<name>-<suffix>`, Jobs `<name>-<suffix>`, CronJob runs
`<name>-<minute>-<suffix>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from obsbundle import naming
from obsbundle.durations import format_duration
from obsbundle.errors import InputError, Problem
from obsbundle.links import Board, PanelId
from obsbundle.model import Controller, Datastore, Service, System, WorkloadKind
from obsbundle.promql import quote, selector
from obsbundle.rules.alert_labels import AlertSubject, datastore_labels, service_subject
from obsbundle.rules.cases import workload as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.cron import CronError, max_interval_seconds
from obsbundle.rules.definitions import Alert, AlertDoc, Case, RuleGroup, RunbookCheck
from obsbundle.rules.templating import Description, ValueFormat

LONG_RUNNING = (WorkloadKind.API, WorkloadKind.WORKER)

CRASH_LOOPING = AlertDoc(
    name="WorkloadCrashLooping",
    summary="A container keeps crashing and Kubernetes is backing off its restarts.",
    meaning=(
        "A container of the service has been waiting in CrashLoopBackOff: it starts, exits or is "
        "killed, and the kubelet waits longer before each restart. The pod serves nothing meanwhile."
    ),
    actions=(
        "Read the last run's logs: `kubectl logs --previous`.",
        "Check why it stopped: `kubectl describe pod` (OOMKilled, failed probes, exit code).",
        "A bad image, config or secret from a rollout: roll back. A dependency down at start: fix it first.",
    ),
)
REPLICAS_MISMATCH = AlertDoc(
    name="WorkloadReplicasMismatch",
    summary="A Deployment does not have the replicas it asks for.",
    meaning=(
        "The number of available replicas of the workload's Deployment has differed from its desired "
        "count for a while: pods cannot be scheduled (no room on the node pool, affinity, quota), do "
        "not become ready, or a rollout is stuck."
    ),
    actions=(
        "`kubectl rollout status` and `kubectl describe deployment`: which condition is false?",
        "Pending pods: `kubectl describe pod` for scheduling events; check the node pool's capacity.",
        "Pods not ready: see WorkloadPodsNotReady.",
    ),
)
HPA_AT_MAX = AlertDoc(
    name="WorkloadHpaAtMaxReplicas",
    summary="An autoscaler has run at its maximum replicas for a while.",
    meaning=(
        "The service's HorizontalPodAutoscaler wants more replicas than its maximum allows. Load keeps "
        "growing or pods are slow: latency and errors may follow."
    ),
    actions=(
        "Check the service's latency and error panels: is it keeping up?",
        "Raise the HPA's maxReplicas (and the inventory's autoscaling.max) if the node pool has room.",
        "Find out why load grew or per-pod throughput fell (a slow dependency, a regression).",
    ),
)
PODS_NOT_READY = AlertDoc(
    name="WorkloadPodsNotReady",
    summary="A pod of the service has not been ready for a while.",
    meaning=(
        "A pod of the service is running or pending but fails its readiness check, so it gets no "
        "traffic. Capacity is reduced; if every pod is affected the service is down."
    ),
    actions=(
        "`kubectl describe pod`: readiness probe failures, pending reasons.",
        "Read its logs; check the dependencies its readiness probe checks (database, cache).",
    ),
)
MEMORY_NEAR_LIMIT = AlertDoc(
    name="WorkloadMemoryNearLimit",
    summary="A container's memory is close to its limit.",
    meaning=(
        "A container's working set stayed above the service's `memory_limit_alert` share of its memory "
        "limit. At the limit the kernel OOM-kills it."
    ),
    actions=(
        "Look at the memory panel: a steady climb (a leak) or load-driven?",
        "Raise the limit (and request) if the workload needs it; restart pods only to buy time.",
        "For the JVM: check that the heap maximum leaves room for off-heap memory under the limit.",
    ),
)
JOB_FAILED = AlertDoc(
    name="WorkloadJobFailed",
    summary="A Job failed.",
    meaning=(
        "A Job of the service exhausted its retries (backoffLimit) or its deadline. For a migration "
        "Job, the rollout that needs it is blocked or runs against an old schema."
    ),
    actions=(
        "`kubectl logs job/<name>` and `kubectl describe job/<name>`: why did its pods fail?",
        "Fix the cause, then delete the failed Job (that clears this alert) and run it again.",
    ),
)
CRONJOB_MISSED = AlertDoc(
    name="WorkloadCronJobMissed",
    summary="A CronJob has not succeeded for longer than its schedule allows.",
    meaning=(
        "No run of the CronJob has succeeded within the longest gap of its schedule plus grace: runs "
        "fail, are not scheduled (suspended CronJob, controller trouble, concurrencyPolicy Forbid "
        "with a hung run), or take far too long. For a backup, the newest good copy is getting old."
    ),
    actions=(
        "`kubectl get cronjob` and `kubectl get jobs`: suspended? a run still active? recent failures?",
        "Read the newest run's logs; fix the cause.",
        "Run it now: `kubectl create job --from=cronjob/<name> <name>-manual`.",
    ),
)
CRONJOB_FAILED = AlertDoc(
    name="WorkloadCronJobFailed",
    summary="The newest run of a CronJob failed.",
    meaning="A run of the CronJob failed after the last successful one; the next may fail the same way.",
    actions=(
        "`kubectl logs job/<run>` for the failed run's output.",
        "Fix the cause and start a run by hand: `kubectl create job --from=cronjob/<name> <name>-manual`.",
    ),
)

DEPLOYMENT_ROLLOUT_STUCK = AlertDoc(
    name="WorkloadDeploymentRolloutStuck",
    summary="A Deployment's rollout is not progressing.",
    meaning=(
        "The Deployment's Progressing condition has been false for a while: its new ReplicaSet made no "
        "progress within progressDeadlineSeconds (ProgressDeadlineExceeded), or could not be created "
        "(quota, admission). Old pods still serve; the new version never arrives."
    ),
    actions=(
        "`kubectl rollout status` and `kubectl describe deployment`: the condition's reason and message.",
        "New pods pending or waiting (image pull, config): see WorkloadContainerWaiting and the pod's events.",
        "Fix the cause and roll forward, or go back: `kubectl rollout undo deployment/<name>`.",
    ),
)
GENERATION_MISMATCH = AlertDoc(
    name="WorkloadGenerationMismatch",
    summary="A Deployment's or StatefulSet's controller has not acted on its newest spec.",
    meaning=(
        "The object's metadata.generation moved on, but status.observedGeneration stayed behind: the "
        "controller has not processed the last change (kube-controller-manager down or overloaded), or "
        "the change failed and was never rolled back. What runs is not what the cluster was told to run."
    ),
    actions=(
        "Compare `.metadata.generation` and `.status.observedGeneration` (the command below).",
        "Is kube-controller-manager healthy? Its logs name the object when it fails to sync it.",
        "Re-apply the intended spec, or `kubectl rollout undo` to the last one that worked.",
    ),
)
STATEFULSET_REPLICAS_MISMATCH = AlertDoc(
    name="WorkloadStatefulSetReplicasMismatch",
    summary="A StatefulSet does not have the ready replicas it asks for, and is not progressing.",
    meaning=(
        "Fewer (or more) of the StatefulSet's pods are ready than its spec asks for, and no pod was updated "
        "for 10 minutes. A StatefulSet starts pod N+1 only once pod N is ready, so one stuck pod holds back "
        "every later ordinal: for a datastore that means lost replicas or no primary."
    ),
    actions=(
        "`kubectl rollout status statefulset/<name>` and `kubectl get pods` for it: which ordinal is stuck?",
        "`kubectl describe pod <name>-<ordinal>`: pending (no node, a volume that cannot attach in its zone) or "
        "failing its readiness probe?",
        "A PersistentVolumeClaim stuck Pending: check its StorageClass and the node pool's zone.",
    ),
)
STATEFULSET_UPDATE_NOT_ROLLED_OUT = AlertDoc(
    name="WorkloadStatefulSetUpdateNotRolledOut",
    summary="A StatefulSet's update has not been rolled out to all its pods.",
    meaning=(
        "The StatefulSet's update revision differs from its current revision and not every replica is "
        "updated, with no progress for 5 minutes. Pods run two versions: a rolling update waits on a pod "
        "that does not become ready, or the OnDelete strategy waits for someone to delete the old pods."
    ),
    actions=(
        "`kubectl rollout status statefulset/<name>`: which ordinal does it wait for?",
        "The newest pod not ready: read its logs and events; roll back with `kubectl rollout undo statefulset/<name>`.",
        "updateStrategy OnDelete: delete the old pods one at a time, highest ordinal first.",
    ),
)
DAEMONSET_NOT_SCHEDULED = AlertDoc(
    name="WorkloadDaemonSetNotScheduled",
    summary="Some nodes that should run a DaemonSet's pod do not.",
    meaning=(
        "The DaemonSet wants a pod on more nodes than run one: a node lacks the resources, a taint has no "
        "toleration, or the pods were evicted. What the DaemonSet does (node metrics, networking, kube-proxy) "
        "is missing on those nodes."
    ),
    actions=(
        "`kubectl get pods -o wide` for the DaemonSet: which nodes have none?",
        "`kubectl describe node <node>`: taints and allocatable resources; `kubectl describe daemonset`: events.",
    ),
)
DAEMONSET_MISSCHEDULED = AlertDoc(
    name="WorkloadDaemonSetMisScheduled",
    summary="A DaemonSet's pods run on nodes where they should not.",
    meaning=(
        "Pods of the DaemonSet run on nodes its node selector, affinity or tolerations no longer allow "
        "(a node was relabelled or tainted). They use the node's resources for nothing and may do harm."
    ),
    actions=(
        "`kubectl get pods -o wide` for the DaemonSet and `kubectl get nodes --show-labels`: which node no "
        "longer matches?",
        "Fix the node's labels or taints, or the DaemonSet's selector; delete the stray pods.",
    ),
)
DAEMONSET_ROLLOUT_STUCK = AlertDoc(
    name="WorkloadDaemonSetRolloutStuck",
    summary="A DaemonSet's rollout has not finished or progressed.",
    meaning=(
        "For a while the DaemonSet has had nodes without its pod, misscheduled pods, pods not updated to its "
        "newest spec or not available, and no pod was updated for 5 minutes. Nodes run an old version, or "
        "nothing."
    ),
    actions=(
        "`kubectl rollout status daemonset/<name>`: how many are updated and available?",
        "The new pods failing: read their logs and events; `kubectl rollout undo daemonset/<name>` to go back.",
    ),
)
CONTAINER_WAITING = AlertDoc(
    name="WorkloadContainerWaiting",
    summary="A container has been waiting to start for an hour.",
    meaning=(
        "A container has been in the waiting state, for a reason other than CrashLoopBackOff "
        "(WorkloadCrashLooping covers that), for an hour: its image cannot be pulled (ImagePullBackOff, "
        "ErrImagePull: a wrong tag, a missing pull secret), a ConfigMap or Secret it needs is missing "
        "(CreateContainerConfigError), or a volume does not mount (ContainerCreating). The pod does nothing."
    ),
    actions=(
        "`kubectl describe pod`: the Events say what it waits for.",
        "An image: check the tag exists and the pull secret; a config error: create the ConfigMap or Secret it names.",
        "A bad rollout: roll back; the old pods keep serving meanwhile.",
    ),
)
OOM_KILLED = AlertDoc(
    name="WorkloadOomKilled",
    summary="A container was OOM-killed and restarted.",
    meaning=(
        "A container restarted within the last 15 minutes and its last run ended OOMKilled: it reached its "
        "memory limit (or the node ran out of memory) and the kernel killed it. Requests in flight were lost; "
        "repeated, it becomes a crash loop."
    ),
    actions=(
        "`kubectl describe pod`: Last State OOMKilled, the limit, and how often it restarted.",
        "Look at the memory panel: a steady climb (a leak) or a spike under load?",
        "Raise the memory limit (and request) if the workload needs it; for the JVM keep the heap below the limit.",
    ),
)
CPU_THROTTLING = AlertDoc(
    name="WorkloadCpuThrottlingHigh",
    summary="A container is CPU-throttled for much of the time.",
    meaning=(
        "More than a quarter of the container's CFS periods were throttled: it wants more CPU than its "
        "limit gives it, so the kernel pauses it every period. Latency grows (long requests, slow health "
        "checks) although the node may have CPU to spare."
    ),
    actions=(
        "Look at the CPU panel against the limit: does it sit at the limit under normal load?",
        "Raise the CPU limit (or remove it and keep the request), or scale out so each pod does less.",
        "Bursty runtimes (the JVM at start, Python workers) throttle at a low average: compare with the latency panel.",
    ),
)
JOB_NOT_COMPLETED = AlertDoc(
    name="WorkloadJobNotCompleted",
    summary="A Job has been running far longer than it should.",
    meaning=(
        "A Job of the service started more than 12 hours ago and still has active pods: it hangs (a lock, "
        "a dependency that never answers) or retries for ever. A migration that never ends blocks what waits "
        "for it."
    ),
    actions=(
        "`kubectl describe job` and `kubectl logs job/<name>`: what is it doing?",
        "Kill it if it hangs (`kubectl delete job`), fix the cause and run it again; set activeDeadlineSeconds.",
    ),
)
ARGO_ROLLOUT_REPLICAS_MISMATCH = AlertDoc(
    name="WorkloadArgoRolloutReplicasMismatch",
    summary="An Argo Rollout has fewer available replicas than it asks for.",
    meaning=(
        "The Rollouts controller reports fewer available replicas than the Rollout's spec.replicas for a "
        "while: pods cannot be scheduled, do not become ready, or a canary step is stuck. A Rollout makes "
        "ReplicaSets itself, so no Deployment describes it; this is its replicas alert."
    ),
    actions=(
        "`kubectl argo rollouts get rollout <name>`: which ReplicaSet (stable or canary) is short, and why?",
        "Pending or not ready pods: `kubectl describe pod` for scheduling events and probe failures.",
    ),
)
ARGO_ROLLOUT_UNHEALTHY = AlertDoc(
    name="WorkloadArgoRolloutUnhealthy",
    summary="An Argo Rollout was aborted, failed or timed out.",
    meaning=(
        "The Rollouts controller reports the Rollout's phase as Abort (an analysis failed or someone aborted "
        "it: traffic is back on the stable version), Error (a ReplicaSet could not be created), Timeout "
        "(progressDeadlineSeconds passed) or InvalidSpec. The new version is not serving and will not "
        "without a decision."
    ),
    actions=(
        "`kubectl argo rollouts get rollout <name>`: the step, the failed analysis run and the message.",
        "Fix the cause, then `kubectl argo rollouts retry rollout <name>`; or `kubectl argo rollouts undo <name>` "
        "to make the stable version the desired one again.",
    ),
)


def controller_pod_pattern(name: str, controller: Controller) -> str:
    """Regex of the pod names a controller gives the pods of workload `name`."""
    escaped = re.escape(name)
    match controller:
        case Controller.STATEFULSET:
            return f"{escaped}-[0-9]+"
        case Controller.DAEMONSET:
            return f"{escaped}-[a-z0-9]{{5}}"
        case Controller.DEPLOYMENT | Controller.ROLLOUT:
            return f"{escaped}-[a-z0-9]+-[a-z0-9]{{5}}"


def pod_pattern(service: Service) -> str:
    """Regex of the service's pod names, as its controller names them."""
    name = re.escape(service.name)
    match service.kind:
        case WorkloadKind.JOB:
            return f"{name}(-[a-z0-9]+)?-[a-z0-9]{{5}}"
        case WorkloadKind.CRONJOB:
            return f"{name}-[0-9]+-[a-z0-9]{{5}}"
        case _:
            return controller_pod_pattern(service.name, service.workload_controller or Controller.DEPLOYMENT)


def _pods(service: Service) -> str:
    return f"pod=~{quote(pod_pattern(service))}"


@dataclass(frozen=True)
class Panels:
    """The panels a workload's alerts link to, on the board of its subject."""

    replicas: PanelId
    containers: PanelId


SERVICE_PANELS = Panels(PanelId.SERVICE_REPLICAS, PanelId.SERVICE_CONTAINERS)
OVERVIEW_PANELS = Panels(PanelId.OVERVIEW_ALERTS, PanelId.OVERVIEW_ALERTS)
"""Datastores' StatefulSets and platform components have no dashboard of their own: the overview's alert list."""


@dataclass(frozen=True)
class Workload:
    """One long-running workload under one controller: a service, a datastore's StatefulSet or a
    platform component, with the labels and links its alerts carry."""

    name: str
    namespace: str
    controller: Controller
    subject: AlertSubject
    panels: Panels
    replicas: int
    """The replicas the inventory expects, for the tests' series (its controller's spec decides)."""


def service_workload(system: System, service: Service) -> Workload:
    """A long-running service as a workload."""
    controller = service.workload_controller
    assert controller is not None, "only api and worker services have a controller"
    return Workload(
        service.name,
        service.namespace,
        controller,
        service_subject(system, service),
        SERVICE_PANELS,
        service.replicas or 2,
    )


def datastore_workload(system: System, store: Datastore) -> Workload:
    """A datastore's StatefulSet as a workload; its alerts carry `datastore`."""
    assert store.statefulset is not None, "only datastores with a StatefulSet"
    labels = {**datastore_labels(system, store), naming.NAMESPACE_LABEL: store.namespace}
    entity = f"{store.name} (StatefulSet {store.namespace}/{store.statefulset})"
    subject = AlertSubject(system, labels, entity, Board.OVERVIEW)
    return Workload(
        store.statefulset, store.namespace, Controller.STATEFULSET, subject, OVERVIEW_PANELS, store.replicas
    )


class ControllerAlerts:
    """The alerts of one workload's controller and containers, from kube-state-metrics (and the
    Argo Rollouts controller for a Rollout)."""

    def __init__(self, workload: Workload, config: RuleConfig) -> None:
        self.workload = workload
        self.config = config
        self.ns = {naming.NAMESPACE_LABEL: workload.namespace}
        self.ksm = {**config.kube_state_metrics, **self.ns}
        self.pods = f"pod=~{quote(controller_pod_pattern(workload.name, workload.controller))}"
        self.cases = cases.ControllerCases(
            config, workload.namespace, workload.name, cases.controller_test_pod(workload.name, workload.controller),
            workload.replicas,
        )

    def all(self) -> list[Alert]:
        """The controller's alerts, then the containers'."""
        match self.workload.controller:
            case Controller.DEPLOYMENT:
                alerts = [self.replicas_mismatch(), self.deployment_rollout_stuck(), self.generation_mismatch()]
            case Controller.STATEFULSET:
                alerts = [
                    self.statefulset_replicas_mismatch(),
                    self.generation_mismatch(),
                    self.statefulset_update_not_rolled_out(),
                ]
            case Controller.DAEMONSET:
                alerts = [self.daemonset_not_scheduled(), self.daemonset_misscheduled(), self.daemonset_rollout_stuck()]
            case Controller.ROLLOUT:
                alerts = [self.argo_rollout_replicas_mismatch(), self.argo_rollout_unhealthy()]
        return [*alerts, self.container_waiting(), self.oom_killed()]

    def series(self, metric: str, *raw: str) -> str:
        """A kube-state-metrics series of this workload's object (`raw` names it)."""
        return selector(metric, self.ksm, *raw)

    def of_object(self, kind: str) -> str:
        return f"{kind}={quote(self.workload.name)}"

    def alert(
        self,
        doc: AlertDoc,
        *,
        expr: str,
        description: Description,
        panel: PanelId,
        for_: str | None,
        case: Case,
        threshold: str,
        checks: tuple[RunbookCheck, ...],
    ) -> Alert:
        # Every alert here is a warning, as in the mixin: a degraded rollout or a stuck pod wants a
        # look within the working day; the outages they cause page through SLOs and replicas.
        return self.workload.subject.alert(
            doc, expr=expr, severity="warning", description=description, panel=panel, for_=for_, case=case,
            threshold=threshold, checks=checks,
        )

    def kubectl(self, title: str, verb: str, kind: str) -> RunbookCheck:
        """`kubectl <verb> -n <namespace> <kind>/<name>` for this workload."""
        return RunbookCheck(title, f"kubectl {verb} -n {self.workload.namespace} {kind}/{self.workload.name}")

    def generation_check(self, kind: str) -> RunbookCheck:
        return RunbookCheck(
            "Generation and observed generation",
            f"kubectl get {kind} -n {self.workload.namespace} {self.workload.name} "
            "-o jsonpath='{.metadata.generation} {.status.observedGeneration}{\"\\n\"}'",
        )

    def pods_check(self) -> RunbookCheck:
        return RunbookCheck(
            "Its pods, and the nodes they run on",
            f"kubectl get pods -n {self.workload.namespace} -o wide | grep '^{self.workload.name}-'",
        )

    # --- Deployments --------------------------------------------------------------------------------

    def replicas_mismatch(self) -> Alert:
        deployment = self.of_object("deployment")
        available = self.series("kube_deployment_status_replicas_available", deployment)
        wanted = self.series("kube_deployment_spec_replicas", deployment)
        return self.alert(
            REPLICAS_MISMATCH,
            expr=f"max by (namespace, deployment) ({available})\n!= max by (namespace, deployment) ({wanted})",
            description=Description(
                "Deployment {deployment} in {namespace} has {value} available replicas, not the number it asks for."
            ),
            panel=self.workload.panels.replicas,
            for_=self.config.replicas_for,
            case=self.cases.replicas_mismatch(),
            threshold=f"available ≠ desired for {self.config.replicas_for}",
            checks=(self.kubectl("Rollout state", "rollout status", "deployment"),),
        )

    def deployment_rollout_stuck(self) -> Alert:
        progressing = self.series(
            "kube_deployment_status_condition",
            self.of_object("deployment"),
            'condition="Progressing"',
            'status="false"',
        )
        return self.alert(
            DEPLOYMENT_ROLLOUT_STUCK,
            expr=f"max by (namespace, deployment) ({progressing}) == 1",
            description=Description(
                "The rollout of Deployment {deployment} in {namespace} has not progressed for "
                + self.config.rollout_stuck_for + "."
            ),
            panel=self.workload.panels.replicas,
            for_=self.config.rollout_stuck_for,
            case=self.cases.deployment_rollout_stuck(),
            threshold=f"Progressing=false for {self.config.rollout_stuck_for}",
            checks=(
                self.kubectl("Rollout state", "rollout status", "deployment"),
                self.kubectl("Conditions and events", "describe", "deployment"),
            ),
        )

    def generation_mismatch(self) -> Alert:
        kind = self.workload.controller.value
        named = self.of_object(kind)
        observed = self.series(f"kube_{kind}_status_observed_generation", named)
        wanted = self.series(f"kube_{kind}_metadata_generation", named)
        by = f"max by (namespace, {kind})"
        title = "Deployment" if self.workload.controller is Controller.DEPLOYMENT else "StatefulSet"
        return self.alert(
            GENERATION_MISMATCH,
            expr=f"{by} ({observed})\n!= {by} ({wanted})",
            description=Description(
                f"{title} {{{kind}}} in {{namespace}} is at observed generation {{value}}, behind its spec."
            ),
            panel=self.workload.panels.replicas,
            for_=self.config.generation_mismatch_for,
            case=self.cases.generation_mismatch(kind),
            threshold=f"observedGeneration ≠ generation for {self.config.generation_mismatch_for}",
            checks=(self.generation_check(kind), self.kubectl("Rollout history", "rollout history", kind)),
        )

    # --- StatefulSets -------------------------------------------------------------------------------

    def statefulset_replicas_mismatch(self) -> Alert:
        named = self.of_object("statefulset")
        ready = self.series("kube_statefulset_status_replicas_ready", named)
        wanted = self.series("kube_statefulset_replicas", named)
        updated = self.series("kube_statefulset_status_replicas_updated", named)
        by = "max by (namespace, statefulset)"
        return self.alert(
            STATEFULSET_REPLICAS_MISMATCH,
            expr=f"({by} ({ready})\n!= {by} ({wanted}))\n"
            f"and on (namespace, statefulset) (changes({updated}[10m]) == 0)",
            description=Description(
                "StatefulSet {statefulset} in {namespace} has {value} ready replicas, not the number it asks for, "
                "and has not progressed for 10m."
            ),
            panel=self.workload.panels.replicas,
            for_=self.config.statefulset_for,
            case=self.cases.statefulset_replicas_mismatch(),
            threshold=f"ready ≠ desired, no update for 10m, for {self.config.statefulset_for}",
            checks=(self.kubectl("Rollout state", "rollout status", "statefulset"), self.pods_check()),
        )

    def statefulset_update_not_rolled_out(self) -> Alert:
        named = self.of_object("statefulset")
        current = self.series("kube_statefulset_status_current_revision", named)
        update = self.series("kube_statefulset_status_update_revision", named)
        wanted = self.series("kube_statefulset_replicas", named)
        updated = self.series("kube_statefulset_status_replicas_updated", named)
        by = "max by (namespace, statefulset)"
        return self.alert(
            STATEFULSET_UPDATE_NOT_ROLLED_OUT,
            expr=(
                f"(\n  {by} ({current} unless {update})\n  * on (namespace, statefulset)\n"
                f"  ({by} ({wanted}) != {by} ({updated}))\n)\n"
                f"and on (namespace, statefulset) (changes({updated}[5m]) == 0)"
            ),
            description=Description(
                "StatefulSet {statefulset} in {namespace} has not rolled its update out to all {value} replicas."
            ),
            panel=self.workload.panels.replicas,
            for_=self.config.statefulset_for,
            case=self.cases.statefulset_update_not_rolled_out(),
            threshold="update revision ≠ current, not all updated, no update for 5m, "
            f"for {self.config.statefulset_for}",
            checks=(
                self.kubectl("Rollout state", "rollout status", "statefulset"),
                RunbookCheck(
                    "Current and update revisions",
                    f"kubectl get statefulset -n {self.workload.namespace} {self.workload.name} "
                    "-o jsonpath='{.status.currentRevision} {.status.updateRevision}{\"\\n\"}'",
                ),
            ),
        )

    # --- DaemonSets ---------------------------------------------------------------------------------

    def _daemonset(self, field: str) -> str:
        return f"max by (namespace, daemonset) ({self.series(f'kube_daemonset_{field}', self.of_object('daemonset'))})"

    def daemonset_not_scheduled(self) -> Alert:
        desired = self._daemonset("status_desired_number_scheduled")
        current = self._daemonset("status_current_number_scheduled")
        return self.alert(
            DAEMONSET_NOT_SCHEDULED,
            expr=f"{desired}\n- {current}\n> 0",
            description=Description("{value} pods of DaemonSet {daemonset} in {namespace} are not scheduled."),
            panel=self.workload.panels.replicas,
            for_=self.config.daemonset_not_scheduled_for,
            case=self.cases.daemonset_not_scheduled(),
            threshold=f"desired − scheduled > 0 for {self.config.daemonset_not_scheduled_for}",
            checks=(self.pods_check(), self.kubectl("Events", "describe", "daemonset")),
        )

    def daemonset_misscheduled(self) -> Alert:
        return self.alert(
            DAEMONSET_MISSCHEDULED,
            expr=f"{self._daemonset('status_number_misscheduled')} > 0",
            description=Description(
                "{value} pods of DaemonSet {daemonset} in {namespace} run on nodes where they should not."
            ),
            panel=self.workload.panels.replicas,
            for_=self.config.daemonset_for,
            case=self.cases.daemonset_misscheduled(),
            threshold=f"misscheduled > 0 for {self.config.daemonset_for}",
            checks=(self.pods_check(),),
        )

    def daemonset_rollout_stuck(self) -> Alert:
        desired = self._daemonset("status_desired_number_scheduled")
        conditions = (
            f"({self._daemonset('status_current_number_scheduled')} != {desired})",
            f"({self._daemonset('status_number_misscheduled')} != 0)",
            f"({self._daemonset('status_updated_number_scheduled')} != {desired})",
            f"({self._daemonset('status_number_available')} != {desired})",
        )
        updated = self.series("kube_daemonset_status_updated_number_scheduled", self.of_object("daemonset"))
        return self.alert(
            DAEMONSET_ROLLOUT_STUCK,
            expr="(\n  " + "\n  or ".join(conditions) + "\n)\n"
            f"and on (namespace, daemonset) (changes({updated}[5m]) == 0)",
            description=Description(
                "DaemonSet {daemonset} in {namespace} has not finished or progressed its rollout for "
                + self.config.daemonset_for + "."
            ),
            panel=self.workload.panels.replicas,
            for_=self.config.daemonset_for,
            case=self.cases.daemonset_rollout_stuck(),
            threshold=f"not all scheduled, updated and available, no update for 5m, for {self.config.daemonset_for}",
            checks=(self.kubectl("Rollout state", "rollout status", "daemonset"),),
        )

    # --- Argo Rollouts ------------------------------------------------------------------------------

    def _rollout(self, metric: str, *raw: str) -> str:
        return selector(metric, {**self.ns, "name": self.workload.name}, *raw)

    def rollout_check(self) -> RunbookCheck:
        return RunbookCheck(
            "The Rollout, its steps and ReplicaSets (kubectl plugin)",
            f"kubectl argo rollouts get rollout {self.workload.name} -n {self.workload.namespace}",
        )

    def argo_rollout_replicas_mismatch(self) -> Alert:
        available = self._rollout("rollout_info_replicas_available")
        desired = self._rollout("rollout_info_replicas_desired")
        return self.alert(
            ARGO_ROLLOUT_REPLICAS_MISMATCH,
            expr=f"max by (namespace, name) ({available})\n< max by (namespace, name) ({desired})",
            description=Description(
                "Rollout {name} in {namespace} has {value} available replicas, fewer than it asks for."
            ),
            panel=self.workload.panels.replicas,
            for_=self.config.replicas_for,
            case=self.cases.argo_rollout_replicas_mismatch(),
            threshold=f"available < desired for {self.config.replicas_for}",
            checks=(self.rollout_check(),),
        )

    def argo_rollout_unhealthy(self) -> Alert:
        info = self._rollout("rollout_info", 'phase=~"Abort|Error|Timeout|InvalidSpec"')
        return self.alert(
            ARGO_ROLLOUT_UNHEALTHY,
            expr=f"max by (namespace, name, phase) ({info}) == 1",
            description=Description("Rollout {name} in {namespace} is in phase {phase}."),
            panel=self.workload.panels.replicas,
            for_=self.config.argo_rollout_unhealthy_for,
            case=self.cases.argo_rollout_unhealthy(),
            threshold=f"phase Abort, Error, Timeout or InvalidSpec for {self.config.argo_rollout_unhealthy_for}",
            checks=(
                self.rollout_check(),
                RunbookCheck(
                    "Its analysis runs",
                    f"kubectl get analysisruns -n {self.workload.namespace} --sort-by=.metadata.creationTimestamp",
                ),
            ),
        )

    # --- containers ---------------------------------------------------------------------------------

    def container_waiting(self) -> Alert:
        waiting = self.series("kube_pod_container_status_waiting_reason", self.pods, 'reason!="CrashLoopBackOff"')
        return self.alert(
            CONTAINER_WAITING,
            expr=f"max by (namespace, pod, container, reason) ({waiting}) > 0",
            description=Description(
                "Container {container} of pod {pod} in {namespace} has been waiting for "
                + self.config.container_waiting_for + " ({reason})."
            ),
            panel=self.workload.panels.containers,
            for_=self.config.container_waiting_for,
            case=self.cases.container_waiting(),
            threshold=f"waiting (not CrashLoopBackOff) for {self.config.container_waiting_for}",
            checks=(
                self.pods_check(),
                RunbookCheck("What it waits for", f"kubectl describe pod -n {self.workload.namespace} <pod>"),
            ),
        )

    def oom_killed(self) -> Alert:
        window = self.config.oom_window
        restarts = self.series("kube_pod_container_status_restarts_total", self.pods)
        reason = self.series("kube_pod_container_status_last_terminated_reason", self.pods, 'reason="OOMKilled"')
        by = "max by (namespace, pod, container)"
        return self.alert(
            OOM_KILLED,
            expr=f"{by} (increase({restarts}[{window}])) > 0\nand on (namespace, pod, container) {by} ({reason}) == 1",
            description=Description(
                f"Container {{container}} of pod {{pod}} in {{namespace}} was OOM-killed and restarted within {window}."
            ),
            panel=self.workload.panels.containers,
            for_=None,
            case=self.cases.oom_killed(),
            threshold=f"a restart within {window}, the last run OOMKilled",
            checks=(
                RunbookCheck("Last state and limits", f"kubectl describe pod -n {self.workload.namespace} <pod>"),
                RunbookCheck("Memory per container", f"kubectl top pod -n {self.workload.namespace} --containers"),
            ),
        )


def hpa_matcher(service: Service) -> str:
    """The HPA's name: the inventory's, else `<service>` or `<service>-hpa`."""
    assert service.autoscaling is not None
    if service.autoscaling.hpa_name:
        return f"horizontalpodautoscaler={quote(service.autoscaling.hpa_name)}"
    names = [service.name, f"{service.name}-hpa"]
    return f"horizontalpodautoscaler=~{quote('|'.join(re.escape(n) for n in names))}"


def _hpa_name(service: Service) -> str:
    assert service.autoscaling is not None
    return service.autoscaling.hpa_name or service.name


class _Builder:
    """Alerts of one service, sharing its labels, links and test shape."""

    def __init__(self, system: System, service: Service, config: RuleConfig) -> None:
        self.system = system
        self.service = service
        self.config = config
        self.subject = service_subject(system, service)
        self.cases = cases.WorkloadCases(config, service)
        self.ns = {naming.NAMESPACE_LABEL: service.namespace}
        self.ksm = {**config.kube_state_metrics, **self.ns}

    def ksm_series(self, metric: str, *raw: str, **labels: str) -> str:
        return selector(metric, {**self.ksm, **labels}, *raw)

    def kubectl(self, title: str, command: str) -> RunbookCheck:
        return RunbookCheck(title, command)

    # --- Deployments ----------------------------------------------------------------------------

    def crash_looping(self) -> Alert:
        waiting = self.ksm_series(
            "kube_pod_container_status_waiting_reason", _pods(self.service), 'reason="CrashLoopBackOff"'
        )
        return self.subject.alert(
            CRASH_LOOPING,
            expr=f"max by (namespace, pod, container) (max_over_time({waiting}[5m])) >= 1",
            severity="critical",
            description=Description("Container {container} of pod {pod} in {namespace} is crash looping."),
            panel=PanelId.SERVICE_RESTARTS,
            for_=self.config.crash_loop_for,
            case=self.cases.crash_looping(),
            threshold=f"CrashLoopBackOff within 5m, for {self.config.crash_loop_for}",
            checks=(
                self.kubectl(
                    "The service's pods", f"kubectl get pods -n {self.service.namespace} | grep {self.service.name}"
                ),
                self.kubectl(
                    "Why the last run ended",
                    f"kubectl logs --previous -n {self.service.namespace} <pod> -c <container>",
                ),
            ),
        )

    def hpa_at_max(self) -> Alert:
        assert self.service.autoscaling is not None
        current = self.ksm_series("kube_horizontalpodautoscaler_status_current_replicas", hpa_matcher(self.service))
        maximum = self.ksm_series("kube_horizontalpodautoscaler_spec_max_replicas", hpa_matcher(self.service))
        return self.subject.alert(
            HPA_AT_MAX,
            expr=f"max by (namespace, horizontalpodautoscaler) ({current})\n"
            f">= max by (namespace, horizontalpodautoscaler) ({maximum})",
            severity="warning",
            description=Description(
                "HPA {horizontalpodautoscaler} in {namespace} has run at its maximum of {value} replicas."
            ),
            panel=PanelId.SERVICE_REPLICAS,
            for_=self.config.hpa_at_max_for,
            case=self.cases.hpa_at_max(_hpa_name(self.service)),
            threshold=f"current replicas = max for {self.config.hpa_at_max_for}",
            checks=(self.kubectl("Autoscalers", f"kubectl get hpa -n {self.service.namespace}"),),
        )

    def pods_not_ready(self) -> Alert:
        not_ready = self.ksm_series("kube_pod_status_ready", _pods(self.service), 'condition=~"false|unknown"')
        finished = self.ksm_series("kube_pod_status_phase", _pods(self.service), 'phase=~"Succeeded|Failed"')

        return self.subject.alert(
            PODS_NOT_READY,
            expr=f"max by (namespace, pod) ({not_ready}) == 1\n"
            f"unless on (namespace, pod) max by (namespace, pod) ({finished}) == 1",
            severity="warning",
            description=Description(
                "Pod {pod} in {namespace} has not been ready for " + self.config.pods_not_ready_for + "."
            ),
            panel=PanelId.SERVICE_REPLICAS,
            for_=self.config.pods_not_ready_for,
            case=self.cases.pods_not_ready(),
            threshold=f"not ready for {self.config.pods_not_ready_for}",
            checks=(
                self.kubectl("Probe failures and events", f"kubectl describe pod -n {self.service.namespace} <pod>"),
            ),
        )

    def memory_near_limit(self) -> Alert:
        pods = _pods(self.service)
        containers = ('container!=""', 'container!="POD"')
        usage = selector("container_memory_working_set_bytes", {**self.config.cadvisor, **self.ns}, pods, *containers)
        limit = self.ksm_series("kube_pod_container_resource_limits", pods, 'resource="memory"')
        threshold = self.service.memory_limit_alert

        return self.subject.alert(
            MEMORY_NEAR_LIMIT,
            expr=f"max by (namespace, pod, container) ({usage})\n/ max by (namespace, pod, container) ({limit})\n"
            f"> {format(threshold.normalize(), 'f')}",
            severity="warning",
            description=Description(
                f"Container {{container}} of pod {{pod}} uses {{value}} of its memory limit "
                f"(alert above {float(threshold) * 100:g}%).",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.SERVICE_MEMORY,
            for_=self.config.memory_near_limit_for,
            case=self.cases.memory_near_limit(),
            threshold=f"working set > {float(threshold) * 100:g}% of limit for {self.config.memory_near_limit_for}",
            checks=(self.kubectl("Memory per container", f"kubectl top pod -n {self.service.namespace} --containers"),),
        )

    def cpu_throttling(self) -> Alert:
        pods = _pods(self.service)
        cadvisor = {**self.config.cadvisor, **self.ns}
        by = "sum by (namespace, pod, container)"
        throttled = selector("container_cpu_cfs_throttled_periods_total", cadvisor, pods, 'container!=""')
        periods = selector("container_cpu_cfs_periods_total", cadvisor, pods, 'container!=""')
        threshold = self.config.cpu_throttling
        return self.subject.alert(
            CPU_THROTTLING,
            expr=f"{by} (increase({throttled}[5m]))\n/ {by} (increase({periods}[5m]))\n"
            f"> {format(threshold.normalize(), 'f')}",
            # A warning where the mixin says info: info goes to no receiver here (alerting/plan.py),
            # and a throttled service on a small node pool is the latency its owners hear about.
            severity="warning",
            description=Description(
                f"Container {{container}} of pod {{pod}} in {{namespace}} was throttled in {{value}} of its CPU "
                f"periods (alert above {float(threshold) * 100:g}%).",
                ValueFormat.PERCENT,
            ),
            panel=PanelId.SERVICE_CPU_THROTTLING,
            for_=self.config.cpu_throttling_for,
            case=self.cases.cpu_throttling(),
            threshold=f"throttled periods > {float(threshold) * 100:g}% for {self.config.cpu_throttling_for}",
            checks=(
                self.kubectl("CPU per container", f"kubectl top pod -n {self.service.namespace} --containers"),
                self.kubectl(
                    "Its CPU requests and limits",
                    f"kubectl get pods -n {self.service.namespace} -o custom-columns="
                    "NAME:.metadata.name,LIMITS:.spec.containers[*].resources.limits.cpu "
                    f"| grep '^{self.service.name}-'",
                ),
            ),
        )

    # --- Jobs and CronJobs ------------------------------------------------------------------------

    def job_failed(self) -> Alert:
        pattern = f"job_name=~{quote(re.escape(self.service.name) + '(-[a-z0-9]+)?')}"
        failed = self.ksm_series("kube_job_failed", pattern, 'condition="true"')

        return self.subject.alert(
            JOB_FAILED,
            expr=f"max by (namespace, job_name) ({failed}) == 1",
            severity="warning",
            description=Description("Job {job_name} in {namespace} failed."),
            panel=PanelId.SERVICE_JOBS,
            for_=None,
            case=self.cases.job_failed(),
            threshold="failed",
            checks=(
                self.kubectl(
                    "The Job and its pods", f"kubectl describe job -n {self.service.namespace} {self.service.name}"
                ),
            ),
        )

    def job_not_completed(self) -> Alert:
        pattern = f"job_name=~{quote(re.escape(self.service.name) + '(-[a-z0-9]+)?')}"
        started = self.ksm_series("kube_job_status_start_time", pattern)
        active = self.ksm_series("kube_job_status_active", pattern)
        bound = self.config.job_not_completed_seconds
        return self.subject.alert(
            JOB_NOT_COMPLETED,
            expr=f"time() - max by (namespace, job_name) (\n  {started}\n"
            f"  and on (namespace, job_name) {active} > 0\n)\n> {bound}",
            severity="warning",
            description=Description(
                f"Job {{job_name}} in {{namespace}} started {{value}} ago and is still running "
                f"(alert after {format_duration(bound)}).",
                ValueFormat.DURATION,
            ),
            panel=PanelId.SERVICE_JOBS,
            for_=None,
            case=self.cases.job_not_completed(bound),
            threshold=f"active {format_duration(bound)} after its start",
            checks=(
                self.kubectl(
                    "The Job and its pods", f"kubectl describe job -n {self.service.namespace} {self.service.name}"
                ),
                self.kubectl("What it is doing", f"kubectl logs -n {self.service.namespace} job/{self.service.name}"),
            ),
        )

    def _schedule_interval(self, service_index: int) -> int:
        """The longest gap between two runs of the CronJob's schedule, in seconds."""
        assert self.service.schedule is not None
        try:
            return max_interval_seconds(self.service.schedule)
        except CronError as error:
            raise InputError(
                [
                    Problem(
                        self.system.name,
                        ("services", service_index, "schedule"),
                        (f"{error}: write a five-field schedule such as '0 2 * * *'"),
                    )
                ]
            ) from None

    def cronjob_missed(self, service_index: int) -> Alert:
        interval = self._schedule_interval(service_index)
        allowed = interval + min(self.config.cronjob_grace_seconds, interval)
        cronjob = {"cronjob": self.service.name}
        last_success = self.ksm_series("kube_cronjob_status_last_successful_time", **cronjob)
        created = self.ksm_series("kube_cronjob_created", **cronjob)
        return self.subject.alert(
            CRONJOB_MISSED,
            expr=f"time() - (max({last_success}) or max({created})) > {allowed}",
            severity="warning",
            description=Description(
                f"CronJob {self.service.name} ({self.service.schedule}) last succeeded {{value}} ago; "
                f"its runs are at most {format_duration(interval)} apart.",
                ValueFormat.DURATION,
            ),
            panel=PanelId.SERVICE_JOBS,
            for_=None,
            case=self.cases.cronjob_missed(interval, allowed),
            threshold=f"no success for {format_duration(allowed)} (longest gap {format_duration(interval)} + grace)",
            checks=(self.kubectl("The CronJob and its runs", f"kubectl get cronjob,jobs -n {self.service.namespace}"),),
        )

    def cronjob_failed(self) -> Alert:
        cronjob = {"cronjob": self.service.name}
        started = self.ksm_series("kube_job_status_start_time")
        failed = self.ksm_series("kube_job_failed", 'condition="true"')
        owned = self.ksm_series("kube_job_owner", 'owner_kind="CronJob"', owner_name=self.service.name)
        last_success = self.ksm_series("kube_cronjob_status_last_successful_time", **cronjob)

        return self.subject.alert(
            CRONJOB_FAILED,
            expr=(
                f"max(\n  {started}\n  and on (namespace, job_name) ({failed} == 1)\n"
                f"  and on (namespace, job_name) {owned}\n)\n> (max({last_success}) or vector(0))"
            ),
            severity="warning",
            description=Description(
                f"The run of CronJob {self.service.name} that started at {{value}} failed, "
                "and no run has succeeded since.",
                ValueFormat.TIMESTAMP,
            ),
            panel=PanelId.SERVICE_JOBS,
            for_=None,
            case=self.cases.cronjob_failed(),
            threshold="newest failed run started after the last success",
            checks=(
                self.kubectl(
                    "Runs, newest last", f"kubectl get jobs -n {self.service.namespace} --sort-by=.status.startTime"
                ),
            ),
        )


def _has_cpu_limit(service: Service) -> bool:
    # cAdvisor publishes container_cpu_cfs_* only for a container with a CPU quota, that is a limit.
    return service.resources is not None and service.resources.limits.cpu is not None


def service_alerts(system: System, config: RuleConfig, index: int, service: Service) -> list[Alert]:
    build = _Builder(system, service, config)
    if service.kind in LONG_RUNNING:
        controller = ControllerAlerts(service_workload(system, service), config)
        alerts = [build.crash_looping(), *controller.all()]
        if service.autoscaling is not None:
            alerts.append(build.hpa_at_max())
        alerts += [build.pods_not_ready(), build.memory_near_limit()]
        if _has_cpu_limit(service):
            alerts.append(build.cpu_throttling())
        return alerts
    if service.kind is WorkloadKind.JOB:
        return [build.job_failed(), build.job_not_completed()]
    return [build.cronjob_missed(index), build.cronjob_failed()]


def workload_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    """One group per service, by service name, then one per datastore StatefulSet, by datastore name."""
    services = [
        RuleGroup(
            f"{system.name}-workload-{service.name}",
            config.interval,
            tuple(service_alerts(system, config, index, service)),
        )
        for index, service in sorted(enumerate(system.services), key=lambda pair: pair[1].name)
    ]
    stores = [
        RuleGroup(
            f"{system.name}-workload-datastore-{store.name}",
            config.interval,
            tuple(ControllerAlerts(datastore_workload(system, store), config).all()),
        )
        for store in sorted(system.datastores, key=lambda store: store.name)
        if store.statefulset is not None
    ]
    return services + stores
