"""Alertmanager routing to Slack: `alertmanager.yaml`, its templates file and an AlertmanagerConfig."""

from obsbundle.alerting.generate import alerting_documents, generate_alerting

__all__ = ["alerting_documents", "generate_alerting"]
