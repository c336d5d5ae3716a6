"""cert-manager's Certificates: expiring soon, or not ready, from its controller's own metrics.

Generated when the inventory names cert-manager's namespace (`platform.cert_manager_namespace`),
whose controller the generated ServiceMonitor scrapes (monitors/cert_manager.py). The alerts
follow the cert-manager mixin (gitlab.com/uneeq-oss/cert-manager-mixin, alerts/certificates.libsonnet):
CertManagerCertExpirySoon under 21 days for 1h, CertManagerCertNotReady for 10m. Two changes:

- a certificate never issued reports an expiration of 0; it is left out of the expiry alert (it
  would read as long expired) and caught by CertManagerCertNotReady instead;
- expiry has a critical tier under a day, where a human must act now, and the mixin's critical
  CertManagerCertNotReady is a warning: a Certificate that is not Ready usually still has its
  previous, valid certificate in its Secret, and the expiry alert pages before that one runs out.

Each alert fires per Certificate, with its `namespace` and `name`. cert-manager's absence is
CertManagerAbsent, from the exporter-absence pass (rules/exporters.py).
"""

from __future__ import annotations

from obsbundle.links import Board, PanelId
from obsbundle.model import System
from obsbundle.promql import selector
from obsbundle.rules.alert_labels import AlertSubject, owner_labels
from obsbundle.rules.cases import cert_manager as cases
from obsbundle.rules.config import RuleConfig
from obsbundle.rules.definitions import Alert, AlertDoc, RuleGroup, RunbookCheck
from obsbundle.rules.templating import Description, ValueFormat

DAY_S = 86400

EXPIRY_SOON = AlertDoc(
    name="CertManagerCertExpirySoon",
    summary="A cert-manager certificate expires soon and has not been renewed.",
    meaning="The certificate expires within the threshold (21 days: warning, 1 day: critical). cert-manager renews "
    "a certificate at two thirds of its life (30 days before expiry for a 90-day Let's Encrypt one), so a "
    "certificate this close to expiry has failed to renew. When it expires, clients of the hosts it covers "
    "(the ingress, the API) get TLS errors.",
    actions=(
        "`kubectl -n <namespace> describe certificate <name>`: the Ready condition's reason and the last "
        "CertificateRequest.",
        "`kubectl -n <namespace> get certificaterequests,orders,challenges`: an ACME challenge that cannot "
        "complete (DNS, the ingress answering the HTTP-01 path, rate limits)?",
        "Read the controller's log: `kubectl -n <cert-manager namespace> logs deploy/cert-manager`.",
        "Force a renewal once fixed: `cmctl renew -n <namespace> <name>` (or delete the certificate's Secret).",
    ),
)
NOT_READY = AlertDoc(
    name="CertManagerCertNotReady",
    summary="A cert-manager certificate is not ready.",
    meaning="The Certificate's Ready condition has been False or Unknown for a while: issuance or renewal failed, "
    "or the issuer is not ready. Its Secret may still hold the previous certificate; a new Certificate has none.",
    actions=(
        "`kubectl -n <namespace> describe certificate <name>`: the condition's reason and message.",
        "`kubectl get clusterissuers,issuers -A`: is the issuer Ready?",
        "`kubectl -n <namespace> get certificaterequests,orders,challenges` and the controller's log.",
    ),
)


def cert_manager_groups(system: System, config: RuleConfig) -> list[RuleGroup]:
    namespace = system.platform.cert_manager_namespace
    if namespace is None:
        return []
    subject = AlertSubject(system, owner_labels(system), f"certificates (cert-manager in {namespace})", Board.PLATFORM)
    alerts = (
        expiry_alert(system, config, subject, critical=False),
        expiry_alert(system, config, subject, critical=True),
        not_ready_alert(system, config, subject),
    )
    return [RuleGroup(f"{system.name}-cert-manager", config.interval, alerts)]


def expiry_alert(system: System, config: RuleConfig, subject: AlertSubject, *, critical: bool) -> Alert:
    """Seconds to expiry under the tier's bound; the warning tier stops where the critical one starts."""
    expiration = selector("certmanager_certificate_expiration_timestamp_seconds", config.cert_manager)
    left = f"min by (namespace, name) ({expiration} > 0) - time()"
    warning_s, critical_s = config.cert_expiry_warning_days * DAY_S, config.cert_expiry_critical_days * DAY_S
    band = f"< {critical_s}" if critical else f"< {warning_s} >= {critical_s}"
    days = config.cert_expiry_critical_days if critical else config.cert_expiry_warning_days
    return subject.alert(
        EXPIRY_SOON,
        expr=f"{left} {band}",
        severity="critical" if critical else "warning",
        description=Description("Certificate {namespace}/{name} expires in {value}.", ValueFormat.DURATION),
        panel=PanelId.PLATFORM_CERT_EXPIRY,
        for_=config.cert_expiry_for,
        case=cases.expiry(system, config, days, None if critical else config.cert_expiry_critical_days),
        entity=f"certificates (< {days}d)",
        threshold=f"expires within {days}d, for {config.cert_expiry_for}",
        checks=(RunbookCheck("Every certificate and its expiry", "kubectl get certificates -A -o wide"),),
    )


def not_ready_alert(system: System, config: RuleConfig, subject: AlertSubject) -> Alert:
    ready = selector("certmanager_certificate_ready_status", config.cert_manager, 'condition!="True"')
    return subject.alert(
        NOT_READY,
        expr=f"max by (namespace, name, condition) ({ready} == 1)",
        severity="warning",
        description=Description(
            "Certificate {namespace}/{name} has been Ready={condition} for " + config.cert_not_ready_for + "."
        ),
        panel=PanelId.PLATFORM_CERT_NOT_READY,
        for_=config.cert_not_ready_for,
        case=cases.not_ready(system, config),
        threshold=f"Ready not True for {config.cert_not_ready_for}",
        checks=(RunbookCheck("Certificates that are not ready", "kubectl get certificates -A | grep -v True"),),
    )
