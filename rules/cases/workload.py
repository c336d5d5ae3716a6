"""Workload cases: kube-state-metrics', cAdvisor's and the Argo Rollouts controller's series for one
workload's pods, controller (Deployment, StatefulSet, DaemonSet, Rollout), HPA, Jobs and CronJobs,
named as its controller names them. Label sets are those of the exposition fixtures
(tests/fixtures/exposition/kube-state-metrics, cadvisor, argo-rollouts)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from obsbundle import naming
from obsbundle.durations import format_duration
from obsbundle.model import Controller, Service, WorkloadKind
from obsbundle.monitors.argo_rollouts import METRICS_PORT, METRICS_SERVICE
from obsbundle.promql import selector
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Case, Inputs, InputSeries
from obsbundle.rules.input_series import constant, counter

TEST_MINUTES = 30
LIMIT_BYTES = 1_000_000_000
RUN_START = 7200
"""When the failed CronJob run started, in seconds of test time."""
CFS_PERIODS_PER_MINUTE = 600
"""The kernel's default CFS period is 100 ms: a container busy all minute spends 600 of them."""
ROLLOUT_TARGET = {"job": METRICS_SERVICE, "service": METRICS_SERVICE, "endpoint": METRICS_PORT}
"""Target labels of the Rollouts controller's series under the generated ServiceMonitor (the
Rollout's own `namespace` honoured)."""


def controller_test_pod(name: str, controller: Controller) -> str:
    """A pod name of workload `name`, as its controller would choose it."""
    match controller:
        case Controller.STATEFULSET:
            return f"{name}-0"
        case Controller.DAEMONSET:
            return f"{name}-x7k2p"
        case Controller.DEPLOYMENT | Controller.ROLLOUT:
            return f"{name}-7d9f8b6c5-x7k2p"


def test_pod(service: Service) -> str:
    """A pod name of the service, as its controller would choose it."""
    match service.kind:
        case WorkloadKind.JOB:
            return f"{service.name}-x7k2p"
        case WorkloadKind.CRONJOB:
            return f"{service.name}-28450320-x7k2p"
        case _:
            return controller_test_pod(service.name, service.workload_controller or Controller.DEPLOYMENT)


class WorkloadCases:
    """The cases of one service's workload alerts."""

    def __init__(self, config: RuleConfig, service: Service) -> None:
        self.config, self.service = config, service
        self.ns = {naming.NAMESPACE_LABEL: service.namespace}
        self.ksm = {**config.kube_state_metrics, **self.ns}
        self.pod = test_pod(service)

    def gauge(self, metric: str, labels: Mapping[str, str], value: float, minutes: int = TEST_MINUTES) -> Inputs:
        return (constant(metric, {**self.ksm, **labels}, value, minutes),)

    def crash_looping(self) -> Case:
        container = {"pod": self.pod, "container": self.service.name}
        series = {**container, "reason": "CrashLoopBackOff"}
        return Case(
            firing=self.gauge("kube_pod_container_status_waiting_reason", series, 1),
            quiet=self.gauge("kube_pod_container_status_waiting_reason", series, 0),
            labels={**self.ns, **container},
            value=1,
            eval_time="15m",
        )

    def hpa_at_max(self, hpa_name: str) -> Case:
        """The HPA at its maximum fires; at its minimum stays quiet."""
        assert self.service.autoscaling is not None
        hpa = {"horizontalpodautoscaler": hpa_name}
        top = self.service.autoscaling.max

        def current(replicas: int) -> Inputs:
            return (
                *self.gauge("kube_horizontalpodautoscaler_status_current_replicas", hpa, replicas),
                *self.gauge("kube_horizontalpodautoscaler_spec_max_replicas", hpa, top),
            )

        return Case(
            firing=current(top),
            quiet=current(self.service.autoscaling.min),
            labels={**self.ns, **hpa},
            value=top,
            eval_time="20m",
        )

    def pods_not_ready(self) -> Case:
        """A running pod whose Ready condition is false fires; a ready one stays quiet."""

        def ready(state: bool) -> Inputs:
            return (
                *self.gauge("kube_pod_status_ready", {"pod": self.pod, "condition": "true"}, int(state)),
                *self.gauge("kube_pod_status_ready", {"pod": self.pod, "condition": "false"}, int(not state)),
                *self.gauge("kube_pod_status_phase", {"pod": self.pod, "phase": "Running"}, 1),
            )

        return Case(
            firing=ready(False), quiet=ready(True), labels={**self.ns, "pod": self.pod}, value=1, eval_time="20m"
        )

    def memory_near_limit(self) -> Case:
        """A working set halfway between the threshold and the limit fires; half the threshold stays quiet."""
        threshold = self.service.memory_limit_alert
        share_high = (threshold + 1) / 2
        target = {"pod": self.pod, "container": self.service.name}

        def used(share: Decimal) -> Inputs:
            return (
                constant(
                    "container_memory_working_set_bytes",
                    {**self.config.cadvisor, **self.ns, **target},
                    share * LIMIT_BYTES,
                    TEST_MINUTES,
                ),
                *self.gauge(
                    "kube_pod_container_resource_limits", {**target, "resource": "memory", "unit": "byte"}, LIMIT_BYTES
                ),
            )

        return Case(
            firing=used(share_high),
            quiet=used(threshold / 2),
            labels={**self.ns, **target},
            value=float(share_high),
            eval_time="15m",
        )

    def cpu_throttling(self) -> Case:
        """Half the CFS periods throttled fires; a tenth stays quiet (the threshold is a quarter)."""
        target = {**self.config.cadvisor, **self.ns, "pod": self.pod, "container": self.service.name}

        def throttled(share: Decimal) -> Inputs:
            return (
                counter("container_cpu_cfs_periods_total", target, CFS_PERIODS_PER_MINUTE, TEST_MINUTES),
                counter(
                    "container_cpu_cfs_throttled_periods_total", target, share * CFS_PERIODS_PER_MINUTE, TEST_MINUTES
                ),
            )

        return Case(
            firing=throttled(Decimal("0.5")),
            quiet=throttled(Decimal("0.1")),
            labels={**self.ns, "pod": self.pod, "container": self.service.name},
            value=0.5,
            eval_time="20m",
        )

    def job_failed(self) -> Case:
        job = {"job_name": self.service.name}

        def outcome(failed_run: bool) -> Inputs:
            return (
                *self.gauge("kube_job_failed", {**job, "condition": "true"}, int(failed_run)),
                *self.gauge("kube_job_failed", {**job, "condition": "false"}, int(not failed_run)),
            )

        return Case(firing=outcome(True), quiet=outcome(False), labels={**self.ns, **job}, value=1, eval_time="5m")

    def job_not_completed(self, bound: int) -> Case:
        """A Job started at 0 and still active fires half an hour past `bound`; the same Job, done
        (no active pod), stays quiet."""
        job = {"job_name": self.service.name}
        at_minutes = bound // 60 + 30

        def active(pods: int) -> Inputs:
            return (
                *self.gauge("kube_job_status_start_time", job, 0, at_minutes + 5),
                *self.gauge("kube_job_status_active", job, pods, at_minutes + 5),
            )

        return Case(
            firing=active(1),
            quiet=active(0),
            labels={**self.ns, **job},
            value=at_minutes * 60,
            eval_time=format_duration(at_minutes * 60),
            evaluation_interval="5m",
        )

    def cronjob_missed(self, interval: int, allowed: int) -> Case:
        """No success since the CronJob was created, well past `allowed` seconds, fires; a success
        one `interval` (the schedule's longest gap) ago stays quiet."""
        cronjob = {"cronjob": self.service.name}
        at_minutes = -(-(allowed // 60 + 10) // 5) * 5  # on the 5-minute test clock

        def last_success(at: int) -> Inputs:
            return (
                *self.gauge("kube_cronjob_created", cronjob, 0, at_minutes),
                *self.gauge("kube_cronjob_status_last_successful_time", cronjob, at, at_minutes),
            )

        return Case(
            firing=last_success(0),
            quiet=last_success(at_minutes * 60 - interval),
            labels={},
            value=at_minutes * 60,
            eval_time=format_duration(at_minutes * 60),
            evaluation_interval="5m",
        )

    def cronjob_failed(self) -> Case:
        """A failed run that started after the last success fires; one before it stays quiet."""
        cronjob = {"cronjob": self.service.name}
        run = {"job_name": self.pod.rsplit("-", 1)[0]}

        def runs(last_success_at: int) -> Inputs:
            return (
                *self.gauge("kube_job_status_start_time", run, RUN_START),
                *self.gauge("kube_job_failed", {**run, "condition": "true"}, 1),
                *self.gauge(
                    "kube_job_owner",
                    {**run, "owner_kind": "CronJob", "owner_name": self.service.name, "owner_is_controller": "true"},
                    1,
                ),
                *self.gauge("kube_cronjob_status_last_successful_time", cronjob, last_success_at),
            )

        return Case(
            firing=runs(RUN_START - 86400), quiet=runs(RUN_START + 600), labels={}, value=RUN_START, eval_time="5m"
        )


class ControllerCases:
    """The cases of one workload's controller and container alerts."""

    def __init__(self, config: RuleConfig, namespace: str, name: str, pod: str, replicas: int) -> None:
        self.name, self.pod, self.replicas = name, pod, replicas
        self.ns = {naming.NAMESPACE_LABEL: namespace}
        self.ksm = {**config.kube_state_metrics, **self.ns}

    def gauge(self, metric: str, labels: Mapping[str, str], value: float, minutes: int = TEST_MINUTES) -> Inputs:
        return (constant(metric, {**self.ksm, **labels}, value, minutes),)

    def replicas_mismatch(self) -> Case:
        """One replica short of what the Deployment asks for fires; all of them stays quiet."""
        deployment = {"deployment": self.name}

        def available(count: int) -> Inputs:
            return (
                *self.gauge("kube_deployment_status_replicas_available", deployment, count),
                *self.gauge("kube_deployment_spec_replicas", deployment, self.replicas),
            )

        return Case(
            firing=available(self.replicas - 1),
            quiet=available(self.replicas),
            labels={**self.ns, **deployment},
            value=self.replicas - 1,
            eval_time="20m",
        )

    def deployment_rollout_stuck(self) -> Case:
        """Progressing false with ProgressDeadlineExceeded fires; true with NewReplicaSetAvailable stays
        quiet (kube-state-metrics gives every condition a series per status, with the reason)."""
        deployment = {"deployment": self.name, "condition": "Progressing"}

        def condition(reason: str, status: str) -> Inputs:
            return tuple(
                series
                for each in ("true", "false", "unknown")
                for series in self.gauge(
                    "kube_deployment_status_condition",
                    {**deployment, "reason": reason, "status": each},
                    int(each == status),
                )
            )

        return Case(
            firing=condition("ProgressDeadlineExceeded", "false"),
            quiet=condition("NewReplicaSetAvailable", "true"),
            labels={**self.ns, "deployment": self.name},
            value=1,
            eval_time="20m",
        )

    def generation_mismatch(self, kind: str) -> Case:
        """The controller one generation behind the spec fires; caught up stays quiet."""
        named = {kind: self.name}

        def observed(generation: int) -> Inputs:
            return (
                *self.gauge(f"kube_{kind}_status_observed_generation", named, generation),
                *self.gauge(f"kube_{kind}_metadata_generation", named, 4),
            )

        return Case(firing=observed(3), quiet=observed(4), labels={**self.ns, **named}, value=3, eval_time="20m")

    def statefulset_replicas_mismatch(self) -> Case:
        """One pod short of ready with no update for the window fires; all ready stays quiet."""
        named = {"statefulset": self.name}

        def ready(count: int) -> Inputs:
            return (
                *self.gauge("kube_statefulset_status_replicas_ready", named, count),
                *self.gauge("kube_statefulset_replicas", named, self.replicas),
                *self.gauge("kube_statefulset_status_replicas_updated", named, self.replicas),
            )

        return Case(
            firing=ready(self.replicas - 1),
            quiet=ready(self.replicas),
            labels={**self.ns, **named},
            value=self.replicas - 1,
            eval_time="20m",
        )

    def statefulset_update_not_rolled_out(self) -> Case:
        """A new update revision with one replica not updated and no progress fires; the update done
        (one revision, all updated) stays quiet."""
        named = {"statefulset": self.name}
        old, new = f"{self.name}-6d5f9c8b7", f"{self.name}-7c8b4d9f6"

        def revisions(current: str, updated: int) -> Inputs:
            return (
                *self.gauge("kube_statefulset_status_current_revision", {**named, "revision": current}, 1),
                *self.gauge("kube_statefulset_status_update_revision", {**named, "revision": new}, 1),
                *self.gauge("kube_statefulset_replicas", named, self.replicas),
                *self.gauge("kube_statefulset_status_replicas_updated", named, updated),
            )

        return Case(
            firing=revisions(old, self.replicas - 1),
            quiet=revisions(new, self.replicas),
            labels={**self.ns, **named},
            value=self.replicas,
            eval_time="20m",
        )

    def _daemonset(self, desired: int, **status: int) -> Inputs:
        """A DaemonSet wanting `desired` pods, its status fields as given, the rest all `desired`."""
        named = {"daemonset": self.name}
        fields = {
            "current_number_scheduled": desired,
            "number_misscheduled": 0,
            "updated_number_scheduled": desired,
            "number_available": desired,
            **status,
        }
        return (
            *self.gauge("kube_daemonset_status_desired_number_scheduled", named, desired),
            *(
                series
                for field, value in fields.items()
                for series in self.gauge(f"kube_daemonset_status_{field}", named, value)
            ),
        )

    def daemonset_not_scheduled(self) -> Case:
        """Three nodes wanted, two scheduled fires with one missing; three scheduled stays quiet."""
        return Case(
            firing=self._daemonset(3, current_number_scheduled=2),
            quiet=self._daemonset(3),
            labels={**self.ns, "daemonset": self.name},
            value=1,
            eval_time="15m",
        )

    def daemonset_misscheduled(self) -> Case:
        return Case(
            firing=self._daemonset(3, number_misscheduled=1),
            quiet=self._daemonset(3),
            labels={**self.ns, "daemonset": self.name},
            value=1,
            eval_time="20m",
        )

    def daemonset_rollout_stuck(self) -> Case:
        """One of three pods not available and nothing updated for the window fires (the value is the
        available count); all available stays quiet."""
        return Case(
            firing=self._daemonset(3, number_available=2),
            quiet=self._daemonset(3),
            labels={**self.ns, "daemonset": self.name},
            value=2,
            eval_time="20m",
        )

    def _rollout(self, metric: str, labels: Mapping[str, str], value: float) -> InputSeries:
        return constant(metric, {**ROLLOUT_TARGET, **self.ns, "name": self.name, **labels}, value, TEST_MINUTES)

    def argo_rollout_replicas_mismatch(self) -> Case:
        """One replica short of the Rollout's desired count fires; all available stays quiet."""

        def available(count: int) -> Inputs:
            return (
                self._rollout("rollout_info_replicas_available", {}, count),
                self._rollout("rollout_info_replicas_desired", {}, self.replicas),
            )

        return Case(
            firing=available(self.replicas - 1),
            quiet=available(self.replicas),
            labels={**self.ns, "name": self.name},
            value=self.replicas - 1,
            eval_time="20m",
        )

    def argo_rollout_unhealthy(self) -> Case:
        """An aborted canary fires; a completed one stays quiet."""

        def phase(name: str) -> Inputs:
            return (self._rollout("rollout_info", {"phase": name, "strategy": "canary", "traffic_router": ""}, 1),)

        return Case(
            firing=phase("Abort"),
            quiet=phase("Completed"),
            labels={**self.ns, "name": self.name, "phase": "Abort"},
            value=1,
            eval_time="10m",
        )

    def container_waiting(self) -> Case:
        """A container in ImagePullBackOff for 65 minutes fires; one that began waiting 50 minutes ago
        stays quiet (kube-state-metrics has the series only while the container waits)."""
        container = {"pod": self.pod, "container": self.name, "reason": "ImagePullBackOff"}
        series = selector("kube_pod_container_status_waiting_reason", {**self.ksm, **container})
        return Case(
            firing=(InputSeries(series, "1x70"),),
            quiet=(InputSeries(series, "_x15 1x55"),),
            labels={**self.ns, **container},
            value=1,
            eval_time="65m",
        )

    def oom_killed(self) -> Case:
        """A restart after an OOM kill fires; an old OOM kill with no restart since stays quiet."""
        container = {"pod": self.pod, "container": self.name}

        def restarts(values: str) -> Inputs:
            return (
                InputSeries(selector("kube_pod_container_status_restarts_total", {**self.ksm, **container}), values),
                *self.gauge(
                    "kube_pod_container_status_last_terminated_reason", {**container, "reason": "OOMKilled"}, 1
                ),
            )

        return Case(
            firing=restarts("3x10 4x20"),
            quiet=restarts("4x30"),
            labels={**self.ns, **container},
            value=1,
            eval_time="15m",
        )
