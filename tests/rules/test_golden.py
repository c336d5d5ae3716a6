"""Shape of the generated rule documents, against golden files; and the same bytes every time.

Run with OBSBUNDLE_UPDATE_GOLDEN=1 to rewrite tests/rules/golden/ after an intended change, then
review the diff like any other change.
"""

from __future__ import annotations

import os
import random

import pytest

from obsbundle.config import DEFAULT_CONFIG
from obsbundle.errors import InputError
from obsbundle.loader import load_inventory
from obsbundle.model import System
from obsbundle.render import render
from obsbundle.rules import generate_rules
from tests.rules.conftest import FIXTURES, GOLDEN


def _files(system: System) -> dict[str, bytes]:
    return {document.path: render(document) for document in generate_rules(system, DEFAULT_CONFIG)}


@pytest.fixture(scope="module")
def skiff() -> System:
    return load_inventory([FIXTURES / "skiff.yaml"]).systems[0]


def test_the_rule_documents_of_the_small_fixture_match_the_golden_files(skiff: System) -> None:
    files = _files(skiff)
    root = GOLDEN / "skiff"
    if os.environ.get("OBSBUNDLE_UPDATE_GOLDEN"):
        for old in root.rglob("*"):
            if old.is_file():
                old.unlink()
        for relative, data in files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_bytes(data)
    expected = {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}
    assert sorted(files) == sorted(expected)
    for relative, data in files.items():
        assert data == expected[relative], f"{relative} differs from tests/rules/golden/skiff/{relative}"


def test_the_rule_documents_are_the_same_bytes_every_time(shipyard: System) -> None:
    assert _files(shipyard) == _files(shipyard)


def test_the_order_of_inventory_entries_does_not_change_the_rules(shipyard: System) -> None:
    shuffled = random.Random(7)

    def reordered(items: tuple[object, ...]) -> list[object]:
        copy = list(items)
        shuffled.shuffle(copy)
        return copy

    other = shipyard.model_copy(
        update={
            "services": tuple(reordered(shipyard.services)),
            "node_pools": tuple(reordered(shipyard.node_pools)),
            "datastores": tuple(reordered(shipyard.datastores)),
            "queues": tuple(reordered(shipyard.queues)),
        }
    )
    assert _files(other) == _files(shipyard)


def test_a_latency_alert_no_histogram_bucket_can_exceed_is_an_input_error(skiff: System) -> None:
    api = skiff.services[0].model_copy(update={"latency_alert": "10s"})
    broken = skiff.model_copy(update={"services": (api, *skiff.services[1:])})
    with pytest.raises(InputError, match=r"services\[0\]\.latency_alert.*never fire"):
        _files(broken)


def test_a_cron_schedule_that_never_runs_is_an_input_error(skiff: System) -> None:
    backup = skiff.services[1].model_copy(update={"schedule": "0 0 30 2 *"})
    broken = skiff.model_copy(update={"services": (skiff.services[0], backup)})
    with pytest.raises(InputError, match=r"services\[1\]\.schedule.*never runs"):
        _files(broken)
