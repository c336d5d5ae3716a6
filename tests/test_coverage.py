"""The coverage table against the mixins: complete, in the docs as rendered, and true.

`obsbundle.coverage.CATALOGUE` must name every alert of the mixins' rendered rules
(tests/fixtures/mixins/alerts.tsv) once, docs/rules.md must carry its tables as rendered, and every
obsbundle alert it names as covering must be one the generator writes for the default fleet or
for one of the test systems.
"""

from __future__ import annotations

import csv
import importlib.util
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from types import ModuleType

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.coverage import CATALOGUE, Mixin, UpstreamAlert, Verdict, markdown_table, sources_table, summary_table
from obsbundle.loader import load_inventory
from obsbundle.rules import alert_groups

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "mixins" / "alerts.tsv"
SYSTEM_FILES = (
    REPO / "inventory",
    REPO / "tests" / "fixtures" / "inventory" / "shop.yaml",
    *sorted((REPO / "tests" / "rules" / "fixtures").glob("*.yaml")),
)
DOCS_SECTION = "## Coverage against the mixins"

UpstreamKey = tuple[str, str, str, str]
"""(mixin, alert, group, repo@commit:path)"""


def upstream_rules() -> list[UpstreamKey]:
    """One entry per rule of the fixture: a name with two severity tiers comes twice."""
    with FIXTURE.open(encoding="utf-8") as lines:
        rows = csv.reader((line for line in lines if not line.startswith("#")), delimiter="\t")
        return [(mixin, alert, group, source) for mixin, source, group, alert, _severity in rows]


def catalogue_keys(catalogue: Iterable[UpstreamAlert]) -> list[UpstreamKey]:
    return [(alert.mixin.value, alert.name, alert.group, str(alert.source)) for alert in catalogue]


@cache
def generated_alert_names() -> frozenset[str]:
    """Every alert name the generator writes for the default fleet and the test systems."""
    systems = [system for path in SYSTEM_FILES for system in load_inventory([path]).systems]
    return frozenset(
        alert.name
        for system in systems
        for group in alert_groups(system, DEFAULT_CONFIG.rules)
        for alert in group.alerts
    )


def unbacked_claims(catalogue: Iterable[UpstreamAlert], generated: frozenset[str]) -> list[str]:
    """`upstream alert → obsbundle alert` for every covering name the generator does not write."""
    return [f"{alert.name} → {name}" for alert in catalogue for name in alert.covered_by if name not in generated]


def test_the_docs_carry_the_summary_the_sources_and_the_coverage_table_exactly_as_the_catalogue_renders_them() -> None:
    text = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    assert DOCS_SECTION in text, f"docs/rules.md has no section {DOCS_SECTION!r}"
    section = text.split(DOCS_SECTION, 1)[1].split("\n## ", 1)[0]
    tables = "".join(line + "\n" for line in section.splitlines() if line.startswith("|"))
    expected = summary_table() + sources_table() + markdown_table()
    assert tables == expected, (
        "docs/rules.md's coverage tables differ from obsbundle.coverage's summary_table(), sources_table() and "
        "markdown_table(): paste their output into the section"
    )


def test_every_alert_of_the_mixins_rendered_rules_is_in_the_catalogue_once_with_its_group_and_file() -> None:
    upstream = set(upstream_rules())
    ours = catalogue_keys(CATALOGUE)
    twice = sorted(key[1] for key, times in Counter(ours).items() if times > 1)
    assert not twice, f"named more than once in the catalogue: {twice}"
    assert not sorted(upstream - set(ours)), (
        f"upstream alerts missing from the catalogue: {sorted(upstream - set(ours))}"
    )
    assert not sorted(set(ours) - upstream), f"catalogue entries no mixin defines: {sorted(set(ours) - upstream)}"


def test_the_fixture_holds_the_four_mixins_with_every_alert_name_they_define() -> None:
    names = Counter(mixin for mixin, _alert, _group, _source in set(upstream_rules()))
    assert names == {Mixin.KUBERNETES: 57, Mixin.NODE: 21, Mixin.POSTGRES: 15, Mixin.KUBE_PROMETHEUS: 4}


def test_every_obsbundle_alert_the_catalogue_claims_as_covering_is_one_the_generator_writes() -> None:
    missing = unbacked_claims(CATALOGUE, generated_alert_names())
    assert not missing, f"the catalogue claims coverage by alerts no system generates: {missing}"


def test_a_claim_of_coverage_by_an_alert_that_is_not_generated_is_reported() -> None:
    (pod_not_ready,) = (alert for alert in CATALOGUE if alert.name == "KubePodNotReady")
    invented = UpstreamAlert(
        "KubePodNotReady", pod_not_ready.mixin, pod_not_ready.group, pod_not_ready.source, Verdict.COVERED,
        ("WorkloadPodsNotReady", "PodsNeverReady"), "",
    )  # fmt: skip
    assert unbacked_claims([invented], generated_alert_names()) == ["KubePodNotReady → PodsNeverReady"]


def test_an_upstream_alert_that_obsbundle_generates_under_the_same_name_is_not_called_uncovered() -> None:
    # A colleague's new alert may take the upstream name (KubeletDown does): the table must say so.
    generated = generated_alert_names()
    stale = [
        alert.name
        for alert in CATALOGUE
        if alert.name in generated and alert.verdict in (Verdict.NOT_COVERED, Verdict.NOT_APPLICABLE)
    ]
    assert not stale, f"generated under the upstream name, yet marked not covered or not applicable: {stale}"


def alert_counts_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("alert_counts", REPO / "scripts" / "alert-counts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_alert_counts_count_every_alerting_rule_and_each_name_once_and_leave_recordings_out(tmp_path: Path) -> None:
    rules = tmp_path / "shop" / "prometheus" / "rules"
    rules.mkdir(parents=True)
    (rules / "shop-volumes.rules.yaml").write_text(
        "groups:\n- name: shop-volumes\n  rules:\n"
        "  - {alert: VolumeFillingUp, expr: vector(1)}\n  - {alert: VolumeFillingUp, expr: vector(2)}\n"
        "  - {record: 'x:y:z', expr: vector(1)}\n",
        encoding="utf-8",
    )
    (rules / "shop-targets.rules.yaml").write_text(
        "groups:\n- name: shop-targets\n  rules:\n  - {alert: Watchdog, expr: vector(1)}\n", encoding="utf-8"
    )
    (rules / "shop-targets.test.yaml").write_text("rule_files: []\n", encoding="utf-8")  # promtool tests: not rules
    script = alert_counts_script()
    assert script.alert_counts(tmp_path) == {"shop": (3, 2)}
    assert script.table({"shop": (3, 2)}, {"shop": (5, 4)}).splitlines()[-1] == "| shop | 3 | 5 | 2 | 4 |"
