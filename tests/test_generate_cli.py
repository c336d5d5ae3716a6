"""generate.py: deterministic output, --check for drift, atomic replacement, formats and the schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from obsbundle.cli import main
from obsbundle.loader import read_document
from obsbundle.render import HEADER
from obsbundle.writer import MARKER
from tests.conftest import DEFAULT_INVENTORY, FIXTURES


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_runs_write_identical_bytes(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path / "a"), "--inventory", str(DEFAULT_INVENTORY)]) == 0
    assert main(["--out", str(tmp_path / "b"), "--inventory", str(DEFAULT_INVENTORY)]) == 0
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert first == second
    assert {path.split("/")[0] for path in first} >= {"aegis", "ecoeco", "logpilot"}


def test_check_passes_on_fresh_output_and_says_which_files_are_stale_missing_or_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["--inventory", str(DEFAULT_INVENTORY), "--out", str(out)]
    assert main(args) == 0
    assert main([*args, "--check"]) == 0

    edited = out / "ecoeco" / "auth-service-servicemonitor.yaml"
    edited.write_text(edited.read_text().replace("interval: 30s", "interval: 60s"))
    (out / "aegis" / "user-service-servicemonitor.yaml").unlink()
    (out / "logpilot" / "hand-made.yaml").write_text("kind: ConfigMap\n")
    capsys.readouterr()

    assert main([*args, "--check"]) == 1
    listed = [line for line in capsys.readouterr().err.splitlines() if line.startswith("  ")]
    assert listed == [
        "  missing  aegis/user-service-servicemonitor.yaml",
        "  stale    ecoeco/auth-service-servicemonitor.yaml",
        "  extra    logpilot/hand-made.yaml",
    ]


def test_check_never_writes(tmp_path: Path) -> None:
    assert main(["--inventory", str(DEFAULT_INVENTORY), "--out", str(tmp_path / "out"), "--check"]) == 1
    assert not (tmp_path / "out").exists()


def test_a_rerun_replaces_the_whole_output_and_drops_files_no_longer_generated(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["--inventory", str(DEFAULT_INVENTORY), "--out", str(out)]) == 0
    (out / "ecoeco" / "left-over.yaml").write_text("stale")
    assert main(["--inventory", str(FIXTURES / "inventory"), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "shop"]
    assert not list(tmp_path.glob(".out.*")), "staging folders must not be left behind"


def test_a_folder_not_written_by_obsbundle_is_never_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    assert main(["--inventory", str(DEFAULT_INVENTORY), "--out", str(precious)]) == 2
    assert (precious / "notes.txt").read_text() == "keep me"
    assert "was not written by obsbundle" in capsys.readouterr().err


def test_every_yaml_file_starts_with_the_do_not_edit_header(default_output: dict[str, bytes]) -> None:
    yaml_files = [path for path in default_output if path.endswith(".yaml")]
    assert yaml_files
    for path in yaml_files:
        assert default_output[path].decode().startswith(f"# {HEADER}\n"), path


def test_every_system_has_a_kustomization_listing_exactly_its_kubernetes_objects(
    default_output: dict[str, bytes],
) -> None:
    for system in ("aegis", "ecoeco", "logpilot"):
        kustomization = yaml.safe_load(default_output[f"{system}/kustomization.yaml"])
        listed = set(kustomization["resources"])
        top_level_objects = {
            path.split("/", 1)[1]
            for path in default_output
            if path.startswith(f"{system}/") and path.count("/") == 1 and path.endswith(".yaml")
            and path != f"{system}/kustomization.yaml"
        }
        assert listed == top_level_objects
        for resource in listed:
            obj = yaml.safe_load(default_output[f"{system}/{resource}"])
            assert resource == f"{obj['metadata']['name']}-{obj['kind'].lower()}.yaml"


def test_prometheus_format_leaves_out_operator_objects(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["--inventory", str(DEFAULT_INVENTORY), "--out", str(out), "--format", "prometheus"]) == 0
    # exporter/ deploys the pool & queue exporter with plain Kubernetes objects, which a Prometheus
    # without the Operator scrapes through the scrape configs just the same.
    assert (out / "ecoeco" / "exporter" / "deployment.yaml").is_file()
    for path in (path for path in out.rglob("*.yaml") if "exporter" not in path.relative_to(out).parts):
        document = yaml.safe_load(path.read_text()) or {}
        assert not str(document.get("apiVersion", "")).startswith("monitoring.coreos.com"), path
        assert document.get("kind") != "Kustomization", path


def test_the_printed_schema_accepts_the_default_fleet_and_rejects_unknown_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    for path in sorted(DEFAULT_INVENTORY.glob("*.yaml")):
        jsonschema.validate(read_document(path), schema)
    broken = read_document(DEFAULT_INVENTORY / "ecoeco.yaml")
    broken["services"][0]["replicaz"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_a_jsonnet_inventory_generates_the_same_output_as_its_yaml_twin(tmp_path: Path) -> None:
    data = yaml.safe_load((FIXTURES / "inventory" / "shop.yaml").read_text())
    (tmp_path / "jsonnet").mkdir()
    (tmp_path / "jsonnet" / "shop.jsonnet").write_text(
        "local base = " + json.dumps(data) + ";\nbase { cluster: 'shop-' + 'test' }\n"
    )
    shutil.copytree(FIXTURES / "inventory", tmp_path / "yaml")
    assert main(["--inventory", str(tmp_path / "yaml"), "--out", str(tmp_path / "from-yaml")]) == 0
    assert main(["--inventory", str(tmp_path / "jsonnet"), "--out", str(tmp_path / "from-jsonnet")]) == 0
    assert _files(tmp_path / "from-yaml") == _files(tmp_path / "from-jsonnet")
