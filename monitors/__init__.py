"""ServiceMonitors and PodMonitors for every scraped workload, and for the pool & queue exporter."""

from obsbundle.monitors.workloads import generate_monitors

__all__ = ["generate_monitors"]
