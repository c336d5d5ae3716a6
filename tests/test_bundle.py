"""Generation in worker processes and delivery of the files: the same bytes as in one process,
`--check` that writes nothing, and errors that lose nothing."""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.generate import synthetic_system
from obsbundle import bundle
from obsbundle.bundle import PARALLEL_FROM_SERVICES, build, stale_output, write_output
from obsbundle.config import DEFAULT_CONFIG, Config
from obsbundle.documents import Document
from obsbundle.errors import InputError, Problem
from obsbundle.loader import load_inventory
from obsbundle.model import Inventory, System
from obsbundle.writer import MARKER, Drift


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MARKER
    }


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(path.encode() + data for path, data in _files(folder).items())).hexdigest()


@pytest.fixture(scope="module")
def large_inventory(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    """Just large enough for worker processes."""
    path = tmp_path_factory.mktemp("large") / "bench.yaml"
    path.write_text(yaml.safe_dump(synthetic_system(PARALLEL_FROM_SERVICES), sort_keys=False))
    return load_inventory([path])


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The worker counts of the process pools generation starts."""
    started: list[int] = []

    class RecordingPool(ProcessPoolExecutor):
        def __init__(self, max_workers: int, **options: Any) -> None:
            started.append(max_workers)
            super().__init__(max_workers, **options)

    monkeypatch.setattr(bundle, "ProcessPoolExecutor", RecordingPool)
    yield started


def test_worker_processes_write_the_same_files_as_one_process(
    large_inventory: Inventory, tmp_path: Path, pools: list[int]
) -> None:
    alone = write_output(large_inventory, DEFAULT_CONFIG, tmp_path / "alone", jobs=1)
    assert pools == []
    shared = write_output(large_inventory, DEFAULT_CONFIG, tmp_path / "shared", jobs=2)
    assert pools == [2]
    assert alone == shared > 2 * PARALLEL_FROM_SERVICES
    assert _files(tmp_path / "alone") == _files(tmp_path / "shared")
    assert (tmp_path / "shared" / MARKER).is_file()


def test_bytes_kept_in_memory_are_the_bytes_written(
    large_inventory: Inventory, tmp_path: Path, pools: list[int]
) -> None:
    write_output(large_inventory, DEFAULT_CONFIG, tmp_path / "out", jobs=2)
    assert build(large_inventory, DEFAULT_CONFIG, jobs=2) == _files(tmp_path / "out")
    assert pools == [2, 2]


def test_check_in_worker_processes_names_changed_missing_and_extra_files(
    large_inventory: Inventory, tmp_path: Path, pools: list[int]
) -> None:
    out = tmp_path / "out"
    count = write_output(large_inventory, DEFAULT_CONFIG, out, jobs=2)
    assert stale_output(large_inventory, DEFAULT_CONFIG, out, jobs=2) == ([], count)

    changed = out / "bench" / "svc-0007-servicemonitor.yaml"
    changed.write_text(changed.read_text().replace("interval: 30s", "interval: 31s"))
    (out / "bench" / "dashboards" / "bench-service-svc-0010.json").unlink()
    (out / "bench" / "hand-made.yaml").write_text("kind: ConfigMap\n")
    before = _digest(out)

    for jobs in (1, 2):
        stale, generated = stale_output(large_inventory, DEFAULT_CONFIG, out, jobs=jobs)
        assert stale == [
            ("bench/dashboards/bench-service-svc-0010.json", Drift.MISSING),
            ("bench/hand-made.yaml", Drift.EXTRA),
            ("bench/svc-0007-servicemonitor.yaml", Drift.STALE),
        ]
        assert generated == count
    assert _digest(out) == before, "--check writes nothing"
    assert pools == [2, 2, 2]


def test_small_inventories_stay_in_one_process(tmp_path: Path, pools: list[int]) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(synthetic_system(PARALLEL_FROM_SERVICES - 1), sort_keys=False))
    write_output(load_inventory([path]), DEFAULT_CONFIG, tmp_path / "out", jobs=8)
    assert pools == []


def test_where_no_worker_can_start_generation_runs_in_this_process(
    large_inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_output(large_inventory, DEFAULT_CONFIG, tmp_path / "alone", jobs=1)

    class NoSemaphores(ProcessPoolExecutor):
        def __init__(self, max_workers: int, **options: Any) -> None:
            raise OSError(38, "Function not implemented")  # sem_open without /dev/shm

    monkeypatch.setattr(bundle, "ProcessPoolExecutor", NoSemaphores)
    write_output(large_inventory, DEFAULT_CONFIG, tmp_path / "fallback", jobs=2)
    assert _files(tmp_path / "fallback") == _files(tmp_path / "alone")


def test_an_input_error_from_a_worker_process_keeps_its_problems() -> None:
    error = InputError([Problem("shop.yaml", ("services", 0, "name"), "is used twice")])
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, InputError)
    assert copy.problems == error.problems
    assert str(copy) == "shop.yaml: services[0].name: is used twice"


def _twice(system: System, config: Config) -> Iterator[Document]:
    yield Document("clash.yaml", {"first": 1})
    yield Document("clash.yaml", {"second": 2})


def test_an_error_while_generating_leaves_the_previous_output_and_no_staging_folder(
    default_inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_output(default_inventory, DEFAULT_CONFIG, out)
    before = _digest(out)
    monkeypatch.setattr(bundle, "GENERATORS", (*bundle.GENERATORS, _twice))

    with pytest.raises(InputError, match=r"two generated objects would both be written to clash\.yaml"):
        write_output(default_inventory, DEFAULT_CONFIG, out)

    assert _digest(out) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"], "the staging folder is removed"


def test_a_process_with_threads_gets_workers_from_a_clean_server(
    large_inventory: Inventory, tmp_path: Path, pools: list[int]
) -> None:
    """Forking a process with threads can copy a lock another thread holds; then workers fork from
    a server process instead, and still write the same files."""
    write_output(large_inventory, DEFAULT_CONFIG, tmp_path / "alone", jobs=1)
    stop = threading.Event()
    waiter = threading.Thread(target=stop.wait)
    waiter.start()
    try:
        assert bundle._worker_context().get_start_method() == "forkserver"
        write_output(large_inventory, DEFAULT_CONFIG, tmp_path / "served", jobs=2)
    finally:
        stop.set()
        waiter.join()
    assert pools == [2]
    assert _files(tmp_path / "alone") == _files(tmp_path / "served")
