"""Safe PromQL building blocks: every value from the inventory enters a query through these."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping

import promql_parser

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@functools.cache  # called for every matcher of every rule and panel, with few distinct values
def quote(value: str) -> str:
    """A PromQL string literal for `value`: quotes, backslashes and control characters escaped."""
    # PromQL double-quoted strings use Go escapes, which agree with JSON's for these characters.
    return json.dumps(value, ensure_ascii=False)


def regex_literal(value: str) -> str:
    """`value` as an RE2 regex that matches only itself: its metacharacters escaped, nothing else
    (`-` needs no escape outside a class, and names are full of them), so the regex stays readable
    where people read it (Alertmanager matchers, Grafana's allValue)."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", value)


def any_of(values: Iterable[str]) -> str:
    """An `=~` matcher value that matches exactly these values (sorted, regex-escaped, quoted)."""
    return quote("|".join(re.escape(value) for value in sorted(set(values))))


def matchers(labels: Mapping[str, str], **extra: str) -> str:
    """`{a="x",b="y"}` from label equality matchers, in the order given; `{}` needs no caller care."""
    items = {**labels, **extra}
    for name in items:
        if not _LABEL_NAME.match(name):
            raise ValueError(f"'{name}' is not a Prometheus label name")
    return "{" + ",".join(f"{name}={quote(value)}" for name, value in items.items()) + "}"


def selector(metric: str, labels: Mapping[str, str], *raw: str) -> str:
    """`metric{labels..., raw...}` where `raw` are pre-built matchers such as `code=~"5.."`."""
    parts = [f"{name}={quote(value)}" for name, value in labels.items()]
    parts.extend(raw)
    return metric + "{" + ",".join(parts) + "}"


def vector_selectors(expr: str) -> list[promql_parser.VectorSelector]:
    """Every vector selector of a PromQL expression (those inside range vectors and subqueries
    too), in the order the parser walks them. Raises ValueError on PromQL that does not parse."""
    found: list[promql_parser.VectorSelector] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found
