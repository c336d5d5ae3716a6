"""The alerting generator: one system's routing as plain files and as a Kubernetes object."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from obsbundle.alerting.alertmanager_yaml import alertmanager_config
from obsbundle.alerting.operator import alertmanager_config_object
from obsbundle.alerting.plan import routing_plan
from obsbundle.alerting.policy import AlertingOptions
from obsbundle.alerting.slack import TEMPLATES_FILE, templates_file
from obsbundle.documents import Document, Format, kubernetes_document
from obsbundle.model import System
from obsbundle.settings import Settings

if TYPE_CHECKING:  # obsbundle.config imports this package's policy module
    from obsbundle.config import Config

# The plain files share a folder: Alertmanager resolves `templates` relative to its config file,
# so the folder can be mounted or copied as a whole.
CONFIG_FILE = "alertmanager/alertmanager.yaml"
TEMPLATES_PATH = f"alertmanager/{TEMPLATES_FILE}"


def generate_alerting(system: System, config: Config) -> Iterator[Document]:
    """`alertmanager/alertmanager.yaml`, its `alertmanager/slack.tmpl` and the system's AlertmanagerConfig."""
    return alerting_documents(system, config.output, config.alerting)


def alerting_documents(system: System, settings: Settings, options: AlertingOptions) -> Iterator[Document]:
    """The generator with the alerting policy spelled out (tests shorten its timers)."""
    plan = routing_plan(system, options, settings.ruler)
    yield Document(CONFIG_FILE, alertmanager_config(system, plan, options))
    yield Document(TEMPLATES_PATH, templates_file(), Format.TEXT)
    yield kubernetes_document(alertmanager_config_object(system, plan, settings))
