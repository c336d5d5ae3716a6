"""A thin, typed wrapper around the `promtool` binary (Debian package `prometheus`).

Every caller — the tests, the benchmarks, the dashboards' query checks — goes through these
functions, so the binary is looked up, invoked and reported the same way everywhere. The
generator itself never runs promtool: it writes rule files and their unit tests, and CI or the
user runs `promtool test rules` on them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

PACKAGE = "prometheus"


class PromtoolNotFoundError(RuntimeError):
    """promtool is not installed; the message names the package that provides it."""


@dataclass(frozen=True)
class ToolResult:
    """Outcome of one run of a command-line tool (promtool here; amtool in the tests)."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).strip()


def promtool_path() -> str:
    """Absolute path of promtool: $PROMTOOL, else the PATH; raises PromtoolNotFoundError."""
    configured = os.environ.get("PROMTOOL")
    found = configured if configured and Path(configured).is_file() else shutil.which("promtool")
    if found is None:
        raise PromtoolNotFoundError(f"promtool is not installed: apt-get install -y {PACKAGE}")
    return found


def run(*args: str, timeout: float = 600.0, cwd: Path | None = None) -> ToolResult:
    """Run `promtool ARGS…` and capture its output; never raises on a non-zero exit."""
    completed = subprocess.run(
        [promtool_path(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
    return ToolResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)


def version() -> str:
    """promtool's version number, e.g. `2.42.0`."""
    result = run("--version")
    match = re.search(r"version (\d+\.\d+\.\d+)", result.output)
    return match.group(1) if match else result.output


LINT_EXIT_CODE = 3
"""promtool's exit code when `--lint-fatal` turns lint findings into a failure."""


def check_rules(files: Sequence[Path], *, lint_fatal: bool = False) -> ToolResult:
    """`promtool check rules FILE…`: syntax, expressions, label and annotation templates.

    promtool always lints (`--lint=duplicate-rules`: two rules of one group with the same name and
    labels) but only warns; `lint_fatal` makes a finding fail the check (exit LINT_EXIT_CODE).
    """
    return run("check", "rules", *(("--lint-fatal",) if lint_fatal else ()), *map(str, files))


def test_rules(files: Sequence[Path]) -> ToolResult:
    """`promtool test rules FILE…`: run unit-test files (rule_files resolve relative to each test file)."""
    return run("test", "rules", *map(str, files))


def check_config(file: Path) -> ToolResult:
    """`promtool check config FILE`: a Prometheus configuration and the rule files it names."""
    return run("check", "config", str(file))


def create_blocks_from_openmetrics(source: Path, output_dir: Path) -> ToolResult:
    """Backfill TSDB blocks into `output_dir` from an OpenMetrics text file (ends with `# EOF`)."""
    return run("tsdb", "create-blocks-from", "openmetrics", str(source), str(output_dir))


def expression_errors(expressions: Sequence[str]) -> dict[int, str]:
    """Parse errors of PromQL expressions, by index; an empty dict means every expression parses.

    promtool 2.42 has no command that parses a bare expression, so each one becomes a recording
    rule in its own group of a temporary rule file, and `check rules` reports by group name.
    """
    if not expressions:
        return {}
    groups = [
        {"name": f"expr-{index}", "rules": [{"record": "obsbundle:expression_check", "expr": expression}]}
        for index, expression in enumerate(expressions)
    ]
    with tempfile.TemporaryDirectory(prefix="obsbundle-promql-") as folder:
        path = Path(folder) / "expressions.yaml"
        path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, width=10_000))
        result = check_rules([path])
    if result.ok:
        return {}
    errors: dict[int, str] = {}
    for line in result.output.splitlines():
        match = re.search(r"group \"?expr-(\d+)\"?.*?could not parse expression:\s*(.*)", line)
        if match:
            errors.setdefault(int(match.group(1)), match.group(2).strip())
    if not errors:  # a failure promtool did not attribute to a group: report it against all
        errors = dict.fromkeys(range(len(expressions)), result.output)
    return errors
