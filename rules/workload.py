"""Workload health per service, from kube-state-metrics and cAdvisor.

Deployments (api, worker): crash looping, replicas not available, HPA pinned at its maximum,
pods not ready, memory near the container limit. Jobs: failed. CronJobs: missed (no success
within the schedule's longest gap plus grace) and failed (the newest run failed after the last
success). A service's pods are found by name, as their controllers name them: Deployments and
Argo Rollouts `<name>-<hash>-<suffix>`, StatefulSets `<name>-<ordinal>`, Jobs `<name>-<suffix>`,
CronJob runs `<name>-<minute>-<suffix>`.
"""

from __future__ import annotations

import re

from obsbundle import naming
from obsbundle.durations import format_duration
from obsbundle.errors import InputError, Problem
from obsbundle.links import PanelId
from obsbundle.model import Service, System, WorkloadKind
from obsbundle.promql import quote, selector
from obsbundle.rules.alert_labels import service_subject
from obsbundle.rules.cases import workload as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.cron import CronError, max_interval_seconds
from obsbundle.rules.definitions import Alert, AlertDoc, RuleGroup, RunbookCheck
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
        "The number of available replicas of the service's Deployment has differed from its desired "
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


def pod_pattern(service: Service) -> str:
    """Regex of the service's pod names, as its controller names them."""
    name = re.escape(service.name)
    match service.kind:
        case WorkloadKind.JOB:
            return f"{name}(-[a-z0-9]+)?-[a-z0-9]{{5}}"
        case WorkloadKind.CRONJOB:
            return f"{name}-[0-9]+-[a-z0-9]{{5}}"
        case _:
            return f"{name}-([a-z0-9]+-[a-z0-9]{{5}}|[0-9]+)"


def _pods(service: Service) -> str:
    return f"pod=~{quote(pod_pattern(service))}"


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

    def replicas_mismatch(self) -> Alert:
        deployment = {"deployment": self.service.name}
        available = self.ksm_series("kube_deployment_status_replicas_available", **deployment)
        wanted = self.ksm_series("kube_deployment_spec_replicas", **deployment)
        return self.subject.alert(
            REPLICAS_MISMATCH,
            expr=f"max by (namespace, deployment) ({available})\n!= max by (namespace, deployment) ({wanted})",
            severity="warning",
            description=Description(
                "Deployment {deployment} in {namespace} has {value} available replicas, not the number it asks for."
            ),
            panel=PanelId.SERVICE_REPLICAS,
            for_=self.config.replicas_for,
            case=self.cases.replicas_mismatch(),
            threshold=f"available ≠ desired for {self.config.replicas_for}",
            checks=(
                self.kubectl(
                    "Rollout state",
                    f"kubectl rollout status -n {self.service.namespace} deployment/{self.service.name}",
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


def service_alerts(system: System, config: RuleConfig, index: int, service: Service) -> list[Alert]:
    build = _Builder(system, service, config)
    if service.kind in LONG_RUNNING:
        alerts = [build.crash_looping(), build.replicas_mismatch()]
        if service.autoscaling is not None:
            alerts.append(build.hpa_at_max())
        return [*alerts, build.pods_not_ready(), build.memory_near_limit()]
    if service.kind is WorkloadKind.JOB:
        return [build.job_failed()]
    return [build.cronjob_missed(index), build.cronjob_failed()]


def workload_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    """One group per service, by service name."""
    return [
        RuleGroup(
            f"{system.name}-workload-{service.name}",
            config.interval,
            tuple(service_alerts(system, config, index, service)),
        )
        for index, service in sorted(enumerate(system.services), key=lambda pair: pair[1].name)
    ]
