"""Every exposition fixture says where it comes from and is a valid, non-empty Prometheus exposition.

The series contract test proves rules and dashboards against these files, so a fixture without its
source, or one Prometheus could not parse, would prove nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

EXPOSITION = Path(__file__).resolve().parent / "fixtures" / "exposition"
HEADER = ("# source: ", "# version: ", "# captured: ")
FIXTURES = sorted(EXPOSITION.rglob("*.prom"))


def _id(path: Path) -> str:
    return str(path.relative_to(EXPOSITION))


def test_the_exposition_fixtures_cover_every_exporter_obsbundle_cannot_run_here() -> None:
    exporters = {path.parent.name for path in FIXTURES}
    expected = {
        "argocd",
        "cadvisor",
        "go-grpc-prometheus",
        "grpc-spring",
        "kafka-exporter",
        "kube-state-metrics",
        "kubelet",
        "micrometer",
    }
    assert expected <= exporters, f"no fixture for {sorted(expected - exporters)}"


@pytest.mark.parametrize("path", FIXTURES, ids=_id)
def test_a_fixture_opens_with_its_source_version_and_how_it_was_captured(path: Path) -> None:
    head = path.read_text(encoding="utf-8").splitlines()[: len(HEADER)]
    assert len(head) == len(HEADER), f"{_id(path)}: fewer than {len(HEADER)} header lines"
    for line, prefix in zip(head, HEADER, strict=True):
        assert line.startswith(prefix) and line.removeprefix(prefix).strip(), (
            f"{_id(path)}: expected a non-empty {prefix.strip()!r} line, got {line!r}"
        )


@pytest.mark.parametrize("path", FIXTURES, ids=_id)
def test_a_fixture_parses_as_prometheus_text_exposition_with_at_least_one_sample(path: Path) -> None:
    families = list(text_string_to_metric_families(path.read_text(encoding="utf-8")))
    samples = sum(len(family.samples) for family in families)
    assert samples > 0, f"{_id(path)}: no samples"
