"""The Platform dashboard shows what the system runs: the control plane only where it is
self-managed, cert-manager only where the inventory names its namespace, and no dashboard where
neither is there; the control-plane and certificate alerts open its panels."""

from __future__ import annotations

from typing import Any

from obsbundle.bundle import dashboards_of
from obsbundle.config import DEFAULT_CONFIG
from obsbundle.dashboards.platform import has_platform_board
from obsbundle.links import Board, PanelId, dashboard_uid
from obsbundle.model import ControlPlane, Inventory, System
from obsbundle.rules import alert_groups


def _system(inventory: Inventory, name: str) -> System:
    return next(system for system in inventory.systems if system.name == name)


def _platform(system: System) -> dict[str, Any]:
    uid = dashboard_uid(system, Board.PLATFORM)
    return next(board for board in dashboards_of(system, DEFAULT_CONFIG) if board["uid"] == uid)


def _rows(board: dict[str, Any]) -> list[str]:
    return [panel["title"] for panel in board["panels"] if panel["type"] == "row"]


def test_a_self_managed_control_plane_with_cert_manager_gets_every_row(default_inventory: Inventory) -> None:
    board = _platform(_system(default_inventory, "ecoeco"))
    assert _rows(board) == ["API server", "Control plane components and etcd", "Certificates"]
    assert board["title"] == "ecoeco / Platform"


def test_a_managed_control_plane_shows_only_its_certificates(default_inventory: Inventory) -> None:
    for name in ("aegis", "logpilot"):
        assert _rows(_platform(_system(default_inventory, name))) == ["Certificates"], name


def test_a_system_with_a_managed_control_plane_and_no_cert_manager_has_no_platform_dashboard(
    default_inventory: Inventory,
) -> None:
    aegis = _system(default_inventory, "aegis")
    bare = aegis.model_copy(
        update={"platform": aegis.platform.model_copy(update={"cert_manager_namespace": None})}
    )
    assert bare.platform.control_plane is ControlPlane.MANAGED and not has_platform_board(bare)
    uids = {board["uid"] for board in dashboards_of(bare, DEFAULT_CONFIG)}
    assert dashboard_uid(bare, Board.PLATFORM) not in uids


def test_every_control_plane_and_certificate_alert_opens_a_panel_of_the_platform_dashboard(
    default_inventory: Inventory,
) -> None:
    ecoeco = _system(default_inventory, "ecoeco")
    panel_ids = {panel["id"] for panel in _platform(ecoeco)["panels"]}
    platform_url = f"/d/{dashboard_uid(ecoeco, Board.PLATFORM)}?"
    linked = [
        alert for group in alert_groups(ecoeco, DEFAULT_CONFIG.rules) for alert in group.alerts
        if platform_url in alert.dashboard_url
    ]
    assert {alert.name for alert in linked} >= {"KubeAPIErrorBudgetBurn", "EtcdNoLeader", "CertManagerCertExpirySoon"}
    for alert in linked:
        panel = int(alert.dashboard_url.rsplit("viewPanel=", 1)[1])
        assert panel in panel_ids and PanelId(panel).name.startswith("PLATFORM_"), alert.name
