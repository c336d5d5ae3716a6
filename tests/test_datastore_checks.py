"""The loader's cross-checks of datastore exporters: a cache-hit target needs the exporter that reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from obsbundle.cli import main
from tests.conftest import FIXTURES


def _shop_with(tmp_path: Path, store: str) -> Path:
    document = yaml.safe_load((FIXTURES / "inventory" / "shop.yaml").read_text(encoding="utf-8"))
    document["datastores"] = [*document.get("datastores", []), yaml.safe_load(store)]
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_a_cache_hit_target_without_an_exporter_exits_2_naming_the_key_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = _shop_with(tmp_path, "{name: cache, kind: redis, namespace: shop, cache_hit_target: 70}")
    assert main(["--inventory", str(inventory), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "datastores[1].cache_hit_target" in error
    assert "cache names no exporter: add metrics" in error
    assert not (tmp_path / "out").exists()


def test_a_cache_hit_target_with_an_exporter_generates_the_hit_ratio_alert(tmp_path: Path) -> None:
    inventory = _shop_with(
        tmp_path, "{name: cache, kind: redis, namespace: shop, cache_hit_target: 70, metrics: {port: http-metrics}}"
    )
    assert main(["--inventory", str(inventory), "--out", str(tmp_path / "out")]) == 0
    rules = (tmp_path / "out" / "shop" / "prometheus" / "rules" / "shop-datastore-health.rules.yaml").read_text()
    assert "alert: RedisCacheHitRatioLow" in rules and "< 0.7" in rules
