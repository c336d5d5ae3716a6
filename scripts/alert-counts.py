#!/usr/bin/env python3
"""Print, per system, how many alerting rules and alert names a generated output folder holds.

    python3 scripts/alert-counts.py OUT [AFTER]

OUT (and AFTER, to compare two generations) is a folder `generate.py --out` wrote. Rules are
counted in each system's `prometheus/rules/*.rules.yaml`, the plain rule files (the same groups as
its PrometheusRules): one rule per `alert:` entry, and alert names once each however many rules
share them. The output is a Markdown table, as docs/rules.md's "Alert counts per system" carries it.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import yaml


def alert_counts(out: Path) -> dict[str, tuple[int, int]]:
    """Per system folder of `out`: (alerting rules, distinct alert names)."""
    counts: dict[str, tuple[int, int]] = {}
    for system in sorted(path for path in out.iterdir() if (path / "prometheus" / "rules").is_dir()):
        names: Counter[str] = Counter()
        for rule_file in sorted((system / "prometheus" / "rules").glob("*.rules.yaml")):
            document = yaml.safe_load(rule_file.read_text(encoding="utf-8"))
            names.update(rule["alert"] for group in document["groups"] for rule in group["rules"] if "alert" in rule)
        counts[system.name] = (names.total(), len(names))
    return counts


def table(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]] | None) -> str:
    if after is None:
        rows = ["| system | alert rules | alert names |", "|---|---:|---:|"]
        rows += [f"| {system} | {rules} | {names} |" for system, (rules, names) in before.items()]
        return "\n".join(rows) + "\n"
    rows = [
        "| system | alert rules before | alert rules after | alert names before | alert names after |",
        "|---|---:|---:|---:|---:|",
    ]
    for system in sorted(before.keys() | after.keys()):
        rules_before, names_before = before.get(system, (0, 0))
        rules_after, names_after = after.get(system, (0, 0))
        rows.append(f"| {system} | {rules_before} | {rules_after} | {names_before} | {names_after} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    counts = [alert_counts(Path(folder)) for folder in argv]
    for folder, found in zip(argv, counts, strict=True):
        if not found:
            print(f"{folder}: no <system>/prometheus/rules/ folder; is it a generate.py --out folder?", file=sys.stderr)
            return 2
    sys.stdout.write(table(counts[0], counts[1] if len(counts) == 2 else None))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
