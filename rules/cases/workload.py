"""Workload cases: kube-state-metrics' and cAdvisor's series for one service's pods, Deployments,
HPAs, Jobs and CronJobs, named as the service's controller names them."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from obsbundle import naming
from obsbundle.durations import format_duration
from obsbundle.model import Service, WorkloadKind
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Case, Inputs
from obsbundle.rules.input_series import constant

TEST_MINUTES = 30
LIMIT_BYTES = 1_000_000_000
RUN_START = 7200
"""When the failed CronJob run started, in seconds of test time."""


def test_pod(service: Service) -> str:
    """A pod name of the service, as its controller would choose it."""
    match service.kind:
        case WorkloadKind.JOB:
            return f"{service.name}-x7k2p"
        case WorkloadKind.CRONJOB:
            return f"{service.name}-28450320-x7k2p"
        case _:
            return f"{service.name}-7d9f8b6c5-x7k2p"


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

    def replicas_mismatch(self) -> Case:
        """One replica short of what the Deployment asks for fires; all of them stays quiet."""
        deployment = {"deployment": self.service.name}
        replicas = self.service.replicas or 2

        def available(count: int) -> Inputs:
            return (
                *self.gauge("kube_deployment_status_replicas_available", deployment, count),
                *self.gauge("kube_deployment_spec_replicas", deployment, replicas),
            )

        return Case(
            firing=available(replicas - 1),
            quiet=available(replicas),
            labels={**self.ns, **deployment},
            value=replicas - 1,
            eval_time="20m",
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

    def job_failed(self) -> Case:
        job = {"job_name": self.service.name}

        def outcome(failed_run: bool) -> Inputs:
            return (
                *self.gauge("kube_job_failed", {**job, "condition": "true"}, int(failed_run)),
                *self.gauge("kube_job_failed", {**job, "condition": "false"}, int(not failed_run)),
            )

        return Case(firing=outcome(True), quiet=outcome(False), labels={**self.ns, **job}, value=1, eval_time="5m")

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
