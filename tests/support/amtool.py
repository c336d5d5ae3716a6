"""A thin, typed wrapper around the `amtool` binary (Debian package `prometheus-alertmanager`).

Tests check configs and routing through these functions only, so the binary is found, called
and reported the same way everywhere; a missing binary fails the test naming the package.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from obsbundle.tools.processes import require_binary
from obsbundle.tools.promtool import ToolResult

PACKAGE = "prometheus-alertmanager"


def amtool_path() -> str:
    return require_binary("amtool", PACKAGE)


def run(*args: str, timeout: float = 120.0) -> ToolResult:
    """Run `amtool ARGS…` and capture its output; never raises on a non-zero exit."""
    completed = subprocess.run(
        [amtool_path(), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    return ToolResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)


def check_config(files: Sequence[Path]) -> ToolResult:
    """`amtool check-config FILE…`: schema, routes, receivers and the template files the config lists."""
    return run("check-config", *map(str, files))


def routes_test(config: Path, labels: Mapping[str, str]) -> tuple[str, ...]:
    """Receivers an alert with `labels` is routed to by `config`, in routing-tree order.

    Raises AssertionError with amtool's output when amtool cannot evaluate the route.
    """
    pairs = [f"{name}={value}" for name, value in sorted(labels.items())]
    result = run("config", "routes", "test", f"--config.file={config}", *pairs)
    if not result.ok:
        raise AssertionError(f"amtool config routes test {' '.join(pairs)} failed: {result.output}")
    return tuple(name.strip() for name in result.stdout.strip().split(",") if name.strip())


def routes_tree(config: Path) -> str:
    """`amtool config routes show`: the routing tree as text, for failure messages."""
    return run("config", "routes", "show", f"--config.file={config}").stdout
