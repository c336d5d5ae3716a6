"""`generate.py --verify URL`: ask a live Prometheus which series the generated output reads are missing.

The rules and dashboards of every system are built in memory, never written. Every vector and
matrix selector they read is taken from their PromQL with a real parser; selectors of series the
output records itself (recording rules, `ALERTS`) are left out, since they appear only once the
rules are applied, and so are matchers on Grafana variables, which Grafana fills in.

The selectors are asked of `/api/v1/series` over a recent range, many `match[]` per request, a
few requests at a time. The answer is the union of the series of a batch, so which selector
matched is decided here, by evaluating each selector's matchers on the returned label sets, the
way Prometheus does (regexes fully anchored). For each selector that matched nothing the metric
name alone is asked for, which tells an absent metric from labels that differ; a look back over
days says when the selector last matched, if ever. `obsbundle.providers` names the component
that should publish each series and what it must be told to.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import promql_parser
import requests

from obsbundle.config import Config
from obsbundle.dashboards import system_dashboards
from obsbundle.dashboards.alerts import AlertIndex
from obsbundle.dashboards.variables import referenced
from obsbundle.dashboards.walk import expressions
from obsbundle.durations import parse_duration
from obsbundle.model import Inventory, MonitorKind, Service, System
from obsbundle.promql import quote, vector_selectors
from obsbundle.providers import Provider, Source, source_of
from obsbundle.rules import alert_groups
from obsbundle.rules.definitions import Recording

BATCH_SIZE = 50
"""Selectors per /api/v1/series request: enough to keep the requests few, few enough that the
form stays far below the 1 MiB and URL limits of proxies in front of Prometheus."""
DEFAULT_RANGE = "1h"
DEFAULT_LOOKBACK = "7d"
DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = 30.0
LOOKBACK_STEP = "5m"
VALUES_SHOWN = 5
"""How many of a label's values a finding shows."""
PROGRESS_FROM_REQUESTS = 10
"""Fewer requests than this finish before a progress report would help."""

# Grafana's built-in interval variables, at values a dashboard would give them: they sit where
# PromQL wants a duration or a number, so they must be filled for the query to parse. Every other
# variable sits inside a matcher's string, and those matchers are dropped.
_BUILT_INS: Mapping[str, str] = {"__rate_interval": "2m", "__interval": "30s", "__range": "1h", "__range_s": "3600"}
_PRODUCED_BY_RULES = frozenset({"ALERTS", "ALERTS_FOR_STATE"})
"""Series Prometheus writes for the generated alerting rules themselves."""
_TARGET_LABELS = ("service", "datastore", "queue", "node_pool", "job", "namespace")
"""Labels that name what a selector is about, in the order a finding mentions them."""


class VerifyError(Exception):
    """Prometheus cannot be asked (unreachable, refused credentials, timeout) or an option is wrong:
    one line for the user, exit 2. Never holds a secret."""


# --- selectors ------------------------------------------------------------------------------------


# The parser's MatchOp values compare equal but do not hash.
_OPERATORS: tuple[tuple[promql_parser.MatchOp, str], ...] = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


@functools.cache  # the same few regexes recur in thousands of selectors
def _anchored(pattern: str) -> re.Pattern[str] | None:
    """`pattern` anchored at both ends as Prometheus anchors it, or None for RE2 syntax Python lacks."""
    try:
        return re.compile(f"(?:{pattern})\\Z")
    except re.error:
        return None


@dataclass(frozen=True, order=True)
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with `labels` satisfies this matcher; a missing label has the value ""."""
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        pattern = _anchored(self.value)
        # A regex Python cannot compile is left to Prometheus: counted as matching, it can only
        # hide a finding, never invent one.
        found = True if pattern is None else pattern.match(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        return f"{self.label}{self.op}{quote(self.value)}"


@dataclass(frozen=True, order=True)
class Selector:
    """A series selector as Prometheus sees it: a metric name (or "") and its label matchers, sorted."""

    metric: str
    matchers: tuple[Matcher, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.metric and labels.get("__name__") != self.metric:
            return False
        return all(matcher.matches(labels) for matcher in self.matchers)

    def __str__(self) -> str:
        return self.metric + "{" + ",".join(str(matcher) for matcher in self.matchers) + "}"


def selectors_of(expr: str) -> list[Selector]:
    """Every vector selector in `expr` (those inside range vectors and subqueries too), in order,
    without matchers whose value holds a Grafana variable. Raises ValueError on PromQL that does
    not parse."""
    return [_selector(node) for node in vector_selectors(expr)]


def _selector(node: promql_parser.VectorSelector) -> Selector:
    metric = node.name or ""
    kept = []
    for matcher in node.matchers.matchers:
        if referenced(matcher.value):
            continue
        if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
            metric = metric or matcher.value
            continue
        operator = next(text for op, text in _OPERATORS if op == matcher.op)
        kept.append(Matcher(matcher.name, operator, matcher.value))
    return Selector(metric, tuple(sorted(set(kept))))


@dataclass
class SystemReads:
    """The selectors one system's output reads, each with where it is read."""

    system: System
    selectors: dict[Selector, set[str]] = field(default_factory=dict)

    def add(self, expr: str, where: str, recorded: frozenset[str]) -> None:
        try:
            selectors = selectors_of(expr)
        except ValueError as error:
            raise VerifyError(f"{self.system.name}: {where}: the generated PromQL does not parse: {error}") from None
        for selector in selectors:
            if ":" in selector.metric or selector.metric in recorded or selector.metric in _PRODUCED_BY_RULES:
                continue
            self.selectors.setdefault(selector, set()).add(where)


def system_reads(system: System, config: Config) -> SystemReads:
    """Every selector the rules and dashboards of `system` read, from output built in memory."""
    groups = alert_groups(system, config.rules)
    recorded = frozenset(rule.record for group in groups for rule in group.rules if isinstance(rule, Recording))
    reads = SystemReads(system)
    for group in groups:
        for rule in group.rules:
            if isinstance(rule, Recording):
                reads.add(rule.expr, f"recording rule {rule.record}", recorded)
            else:
                reads.add(rule.expr, f"alert {rule.name}", recorded)
    for board in system_dashboards(system, config.dashboards, AlertIndex.of(groups)):
        for where, expr in expressions(board, _BUILT_INS):
            reads.add(expr, f"dashboard {where}", recorded)
    return reads


# --- Prometheus -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """How to reach one Prometheus (or Mimir, Cortex, Thanos Query) and prove who we are."""

    url: str
    bearer_token_file: Path | None = None
    basic_auth_user: str | None = None
    basic_auth_password_file: Path | None = None
    ca_file: Path | None = None
    tenant: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY

    @property
    def shown_url(self) -> str:
        """The URL without a user or password in it, fit to print."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _read_secret(path: Path, flag: str) -> str:
    try:
        secret = path.read_text().strip()
    except OSError as error:
        raise VerifyError(f"{flag}: cannot read {path}: {error.strerror}") from None
    if not secret:
        raise VerifyError(f"{flag}: {path} is empty")
    return secret


def open_session(connection: Connection) -> requests.Session:
    """A session carrying the connection's credentials, CA and tenant on every request."""
    parts = urlsplit(connection.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise VerifyError(f"--verify: {connection.shown_url!r} is not an http:// or https:// URL")
    if connection.bearer_token_file and connection.basic_auth_user:
        raise VerifyError("--bearer-token-file and --basic-auth-user exclude each other: give one")
    if (connection.basic_auth_user is None) != (connection.basic_auth_password_file is None):
        raise VerifyError("--basic-auth-user and --basic-auth-password-file go together: give both")
    session = requests.Session()
    # One connection per worker thread, kept open across requests.
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=connection.concurrency)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if connection.bearer_token_file:
        token = _read_secret(connection.bearer_token_file, "--bearer-token-file")
        session.headers["Authorization"] = f"Bearer {token}"
    if connection.basic_auth_user and connection.basic_auth_password_file:
        password = _read_secret(connection.basic_auth_password_file, "--basic-auth-password-file")
        session.auth = (connection.basic_auth_user, password)
    if connection.ca_file:
        if not connection.ca_file.is_file():
            raise VerifyError(f"--ca-file: {connection.ca_file} is not a file")
        session.verify = str(connection.ca_file)
    if connection.tenant:
        session.headers["X-Scope-OrgID"] = connection.tenant
    return session


class Prometheus:
    """The two API calls --verify makes, counted, with every failure turned into one line."""

    def __init__(self, connection: Connection, session: requests.Session) -> None:
        self.connection = connection
        self.session = session
        self.requests = 0
        self._lock = threading.Lock()

    def series(self, selectors: Sequence[str], start: float, end: float) -> list[dict[str, str]]:
        """The label sets of every series that any of `selectors` matches between start and end."""
        form = [("match[]", selector) for selector in selectors] + [("start", f"{start:.3f}"), ("end", f"{end:.3f}")]
        data: list[dict[str, str]] = self._post("series", form)
        return data

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """The instant vector `expr` evaluates to at `at`."""
        data = self._post("query", [("query", expr), ("time", f"{at:.3f}")])
        result: list[dict[str, Any]] = data["result"]
        return result

    def _post(self, endpoint: str, form: list[tuple[str, str]]) -> Any:
        with self._lock:
            self.requests += 1
        where = self.connection.shown_url
        url = self.connection.url.rstrip("/") + f"/api/v1/{endpoint}"
        try:
            response = self.session.post(url, data=form, timeout=self.connection.timeout)
        except requests.exceptions.SSLError:
            raise VerifyError(f"TLS to {where} failed: its certificate is not trusted (see --ca-file)") from None
        except requests.exceptions.Timeout:
            raise VerifyError(
                f"Prometheus at {where} did not answer /api/v1/{endpoint} within {self.connection.timeout:g}s "
                "(see --timeout)"
            ) from None
        except requests.exceptions.ConnectionError:
            raise VerifyError(f"cannot reach Prometheus at {where}: nothing answers there") from None
        except requests.exceptions.RequestException as error:
            raise VerifyError(f"cannot ask Prometheus at {where}: {type(error).__name__}") from None
        if response.status_code in (401, 403):
            raise VerifyError(
                f"Prometheus at {where} refused the credentials (HTTP {response.status_code}): "
                "check --bearer-token-file, --basic-auth-user and --basic-auth-password-file"
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "status" not in body:
            raise VerifyError(
                f"{where} answered /api/v1/{endpoint} with HTTP {response.status_code} and no Prometheus API "
                "response: is this the Prometheus URL (with the path prefix of a Mimir or Thanos)?"
            )
        if body["status"] != "success":
            raise VerifyError(
                f"Prometheus at {where} refused /api/v1/{endpoint} (HTTP {response.status_code}): "
                f"{body.get('error', 'no reason given')}"
            )
        return body["data"]


# --- findings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One selector that matches no series, why, and what to change."""

    system: str
    provider: str
    selector: str
    metric: str
    problem: str
    """`metric-absent`: no series of the metric at all; `labels-differ`: the metric exists, its labels do not match."""
    matcher: str | None
    """labels-differ: the matcher no series of the metric satisfies."""
    label_values: tuple[str, ...]
    """labels-differ: a few values the matcher's label does have (none: no series has the label)."""
    last_seen: float | None
    """When the selector last matched a series within the look-back, as a Unix time; None: never."""
    message: str
    fix: str
    read_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "fix": self.fix,
            "label_values": list(self.label_values),
            "last_seen": _iso(self.last_seen) if self.last_seen is not None else None,
            "matcher": self.matcher,
            "message": self.message,
            "metric": self.metric,
            "problem": self.problem,
            "provider": self.provider,
            "read_by": list(self.read_by),
            "selector": self.selector,
        }


@dataclass(frozen=True)
class AwaitingEvent:
    """A selector of a counter its provider creates on the first event it counts (an eviction):
    no series yet is what a healthy cluster shows, so it is no finding while the provider is scraped."""

    selector: str
    event: str
    read_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "read_by": list(self.read_by), "selector": self.selector}


@dataclass(frozen=True)
class SystemReport:
    system: str
    selectors: int
    findings: tuple[Finding, ...]
    awaiting_event: tuple[AwaitingEvent, ...] = ()


@dataclass(frozen=True)
class Report:
    url: str
    range: str
    lookback: str
    systems: tuple[SystemReport, ...]
    selectors: int
    """Distinct selectors asked for, over all systems."""
    requests: int
    seconds: float

    @property
    def missing(self) -> bool:
        return any(system.findings for system in self.systems)

    def to_json(self) -> str:
        return json.dumps(
            {
                "lookback": self.lookback,
                "missing": sum(len(system.findings) for system in self.systems),
                "prometheus": self.url,
                "range": self.range,
                "requests": self.requests,
                "selectors": self.selectors,
                "systems": [
                    {
                        "awaiting_event": [awaiting.to_dict() for awaiting in system.awaiting_event],
                        "findings": [finding.to_dict() for finding in system.findings],
                        "name": system.system,
                        "selectors": system.selectors,
                    }
                    for system in self.systems
                ],
            },
            indent=2,
            sort_keys=True,
            ensure_ascii=False,
        ) + "\n"

    def to_text(self) -> str:
        lines = []
        for system in self.systems:
            awaiting = len(system.awaiting_event)
            checked = system.selectors - awaiting
            if not system.findings:
                lines.append(f"{system.system}: all {checked} selectors match series")
            else:
                lines.append(f"{system.system}: {len(system.findings)} of {checked} selectors match no series")
            if awaiting:
                reads = "reads" if awaiting == 1 else "read"
                lines.append(f"  and {awaiting} {reads} a counter that has no series before its first event:")
                for event in system.awaiting_event:
                    lines.append(f"    {event.selector}: {event.event} (read by {_read_by(event.read_by)})")
            if not system.findings:
                continue
            by_provider: dict[str, list[Finding]] = {}
            for finding in system.findings:
                by_provider.setdefault(finding.provider, []).append(finding)
            for provider, findings in sorted(by_provider.items()):
                lines.append(f"  {provider}")
                for finding in findings:
                    lines.append(f"    {finding.message}: {finding.fix}")
                    lines.append(f"      selector: {finding.selector}")
                    lines.append(f"      read by: {_read_by(finding.read_by)}")
        lines.append(
            f"asked {self.url} about {self.selectors} selectors over the last {self.range} "
            f"in {self.requests} request{'s' if self.requests != 1 else ''} ({self.seconds:.1f}s)"
        )
        return "\n".join(lines) + "\n"


def _read_by(places: tuple[str, ...], shown: int = 3) -> str:
    more = len(places) - shown
    return "; ".join(places[:shown]) + (f"; and {more} more" if more > 0 else "")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


# --- progress -------------------------------------------------------------------------------------


class Progress:
    """Requests done out of planned, on stderr: a bar on a terminal, a line per quarter elsewhere,
    nothing for runs too small to need it."""

    def __init__(self, stream: IO[str], total: int, what: str) -> None:
        self.stream, self.total, self.what = stream, total, what
        self.done = 0
        self.enabled = total >= PROGRESS_FROM_REQUESTS
        self.bar = self.enabled and stream.isatty()
        self._lock = threading.Lock()
        self._quarter = 0

    def advance(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            self.done += 1
            if self.bar:
                filled = 30 * self.done // self.total
                end = "\n" if self.done == self.total else ""
                self.stream.write(f"\r{self.what} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}{end}")
            elif 4 * self.done // self.total > self._quarter:
                self._quarter = 4 * self.done // self.total
                self.stream.write(f"{self.what}: {self.done}/{self.total} requests\n")
            self.stream.flush()


# --- the check ------------------------------------------------------------------------------------


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _run_all(
    pool: ThreadPoolExecutor, jobs: Iterable[Callable[[], Any]], progress: Progress | None = None
) -> list[Any]:
    """Results of `jobs` run on `pool`, in order; the first failure cancels the rest and is raised."""
    futures: list[Future[Any]] = [pool.submit(job) for job in jobs]
    if progress:
        for future in futures:
            future.add_done_callback(lambda _: progress.advance())
    try:
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        raise


@dataclass(frozen=True)
class Window:
    """The recent range a selector must match a series in, and how far back to look for it."""

    start: float
    end: float
    lookback_seconds: int

    @classmethod
    def ending_now(cls, range_seconds: int, lookback_seconds: int) -> Window:
        end = time.time()
        return cls(end - range_seconds, end, max(lookback_seconds, range_seconds))


def verify(
    inventory: Inventory,
    connection: Connection,
    config: Config,
    *,
    range_: str = DEFAULT_RANGE,
    lookback: str = DEFAULT_LOOKBACK,
    stderr: IO[str] = sys.stderr,
) -> Report:
    """Ask the Prometheus of `connection` about every selector the inventory's output reads.

    Raises VerifyError when Prometheus cannot be asked; findings are in the report, per system.
    """
    started = time.perf_counter()
    try:
        range_seconds = parse_duration(range_)
        lookback_seconds = parse_duration(lookback)
    except ValueError as error:
        raise VerifyError(f"--verify-range/--verify-lookback: {error}") from None
    reads = [system_reads(system, config) for system in inventory.systems]
    window = Window.ending_now(range_seconds, lookback_seconds)
    report = check(reads, connection, window, range_=range_, lookback=lookback, stderr=stderr)
    return dataclasses.replace(report, seconds=time.perf_counter() - started)


def check(
    reads: Sequence[SystemReads],
    connection: Connection,
    window: Window,
    *,
    range_: str = DEFAULT_RANGE,
    lookback: str = DEFAULT_LOOKBACK,
    batch_size: int = BATCH_SIZE,
    stderr: IO[str] = sys.stderr,
) -> Report:
    """The report on `reads` from the Prometheus of `connection`, over `window`; `batch_size`
    selectors per series request."""
    started = time.perf_counter()
    selectors = sorted({selector for read in reads for selector in read.selectors})
    prometheus = Prometheus(connection, open_session(connection))
    with ThreadPoolExecutor(max_workers=connection.concurrency, thread_name_prefix="verify") as pool:
        present = _present(prometheus, pool, selectors, window, batch_size=batch_size, stderr=stderr)
        missing = [selector for selector in selectors if selector not in present]
        by_metric = _series_by_metric(prometheus, pool, missing, window, batch_size)
        last_seen = _last_seen(prometheus, pool, missing, window)
    running = frozenset(_provider(selector, source_of(selector.metric)) for selector in present)
    seen = Seen(by_metric, last_seen, running)
    awaiting = {selector: event for selector in missing if (event := _awaited_event(selector, running))}
    systems = tuple(
        SystemReport(
            read.system.name,
            len(read.selectors),
            tuple(
                _finding(read.system, selector, sorted(read.selectors[selector]), seen, window)
                for selector in sorted(read.selectors, key=_finding_order)
                if selector not in present and selector not in awaiting
            ),
            tuple(
                AwaitingEvent(str(selector), awaiting[selector], tuple(sorted(read.selectors[selector])))
                for selector in sorted(read.selectors, key=str)
                if selector in awaiting
            ),
        )
        for read in reads
    )
    return Report(
        url=connection.shown_url,
        range=range_,
        lookback=lookback,
        systems=systems,
        selectors=len(selectors),
        requests=prometheus.requests,
        seconds=time.perf_counter() - started,
    )


def _awaited_event(selector: Selector, running: frozenset[str]) -> str:
    """The event a missing selector's counter waits for, if its provider is scraped; else ""."""
    source = source_of(selector.metric)
    if source is None or not source.on_event or _provider(selector, source) not in running:
        return ""
    return source.on_event


def _finding_order(selector: Selector) -> tuple[str, str]:
    source = source_of(selector.metric)
    return (source.provider.value if source else "", str(selector))


def _present(
    prometheus: Prometheus,
    pool: ThreadPoolExecutor,
    selectors: Sequence[Selector],
    window: Window,
    *,
    batch_size: int,
    stderr: IO[str],
) -> set[Selector]:
    """The selectors that match at least one series in the window."""

    def check(batch: Sequence[Selector]) -> list[Selector]:
        by_name: dict[str, list[dict[str, str]]] = {}
        for labels in prometheus.series([str(selector) for selector in batch], window.start, window.end):
            by_name.setdefault(labels.get("__name__", ""), []).append(labels)
        every = [labels for found in by_name.values() for labels in found]
        matched = []
        for selector in batch:
            candidates = by_name.get(selector.metric, []) if selector.metric else every
            if any(selector.matches(labels) for labels in candidates):
                matched.append(selector)
        return matched

    batches = _batches(selectors, batch_size)
    progress = Progress(stderr, len(batches), f"checking {len(selectors)} selectors")
    found = _run_all(pool, [functools.partial(check, batch) for batch in batches], progress)
    return {selector for matched in found for selector in matched}


def _series_by_metric(
    prometheus: Prometheus, pool: ThreadPoolExecutor, missing: Sequence[Selector], window: Window, batch_size: int
) -> dict[str, list[dict[str, str]]]:
    """Every series in the window of each metric that a missing selector names."""
    metrics = sorted({selector.metric for selector in missing if selector.metric})

    def fetch(batch: Sequence[str]) -> list[dict[str, str]]:
        return prometheus.series([f"{{__name__={quote(metric)}}}" for metric in batch], window.start, window.end)

    by_metric: dict[str, list[dict[str, str]]] = {metric: [] for metric in metrics}
    for found in _run_all(pool, [functools.partial(fetch, batch) for batch in _batches(metrics, batch_size)]):
        for labels in found:
            by_metric.setdefault(labels["__name__"], []).append(labels)
    return by_metric


def _last_seen(
    prometheus: Prometheus, pool: ThreadPoolExecutor, missing: Sequence[Selector], window: Window
) -> dict[Selector, float | None]:
    """When each missing selector last matched a series within the look-back (None: not in it)."""

    def ask(selector: Selector) -> float | None:
        expr = f"max(max_over_time(timestamp({selector})[{window.lookback_seconds}s:{LOOKBACK_STEP}]))"
        result = prometheus.query(expr, window.end)
        return float(result[0]["value"][1]) if result else None

    answers = _run_all(pool, [functools.partial(ask, selector) for selector in missing])
    return dict(zip(missing, answers, strict=True))


@dataclass(frozen=True)
class Seen:
    """What Prometheus answered about the missing selectors."""

    by_metric: Mapping[str, list[dict[str, str]]]
    """Every recent series of each metric a missing selector names."""
    last_seen: Mapping[Selector, float | None]
    providers: frozenset[str]
    """Components with at least one selector present: they run and are scraped."""


def _finding(system: System, selector: Selector, read_by: list[str], answers: Seen, window: Window) -> Finding:
    source = source_of(selector.metric)
    provider = _provider(selector, source)
    series = answers.by_metric.get(selector.metric, [])
    seen = answers.last_seen.get(selector)
    if seen is None:
        when = f"not seen in the last {_ago(window.lookback_seconds)}"
    else:
        when = f"last seen {_iso(seen)}, {_ago(window.end - seen)} ago"
    # The catalogue is written for Markdown (docs/rules.md); a terminal shows the backticks as they are.
    needs = source.needs.replace("<node_pool_label>", system.node_pool_label).replace("`", "") if source else ""
    if not series:
        return Finding(
            system=system.name,
            provider=provider,
            selector=str(selector),
            metric=selector.metric,
            problem="metric-absent",
            matcher=None,
            label_values=(),
            last_seen=seen,
            message=f"no {selector.metric or str(selector)} series{_subject(selector)} ({when})",
            fix=f"{provider} needs {needs}" if needs else _absent_fix(system, provider, selector, answers),
            read_by=tuple(read_by),
        )
    culprit, candidates = _culprit(selector, series)
    values = sorted({labels[culprit.label] for labels in candidates if culprit.label in labels})
    if values:
        shown = ", ".join(values[:VALUES_SHOWN]) + (", …" if len(values) > VALUES_SHOWN else "")
        message = f"{selector.metric} has no series with {culprit} ({culprit.label} has {shown})"
        fix = _labels_fix(system, provider, culprit)
    else:
        message = f"{selector.metric} has no {culprit.label}"
        # What the provider needs is mostly a label it must be told to publish.
        fix = f"{provider} needs {needs}" if needs else _labels_fix(system, provider, culprit)
    if seen is not None:
        message += f" ({when})"
    return Finding(
        system=system.name,
        provider=provider,
        selector=str(selector),
        metric=selector.metric,
        problem="labels-differ",
        matcher=str(culprit),
        label_values=tuple(values[:VALUES_SHOWN]),
        last_seen=seen,
        message=message,
        fix=fix,
        read_by=tuple(read_by),
    )


def _provider(selector: Selector, source: Source | None) -> str:
    """The component that should provide the series: for `up`, the job's exporter when it is one."""
    if source is None:
        return Provider.SERVICE.value
    job = _equal(selector).get("job")
    if source.provider is Provider.PROMETHEUS and job in set(Provider):
        return str(job)
    return source.provider.value


def _culprit(selector: Selector, series: list[dict[str, str]]) -> tuple[Matcher, list[dict[str, str]]]:
    """The matcher that no series of the metric satisfies, and the series it was tried on.

    A matcher that no series satisfies on its own comes first; otherwise the matchers narrow the
    series down in order and the one that leaves none is named, with the series it was given.
    """
    for matcher in selector.matchers:
        if not any(matcher.matches(labels) for labels in series):
            return matcher, series
    remaining = series
    for matcher in selector.matchers:
        narrowed = [labels for labels in remaining if matcher.matches(labels)]
        if not narrowed:
            return matcher, remaining
        remaining = narrowed
    raise AssertionError(f"{selector} matches a series it was reported missing for")


def _equal(selector: Selector) -> dict[str, str]:
    return {matcher.label: matcher.value for matcher in selector.matchers if matcher.op == "="}


def _subject(selector: Selector) -> str:
    """` for <label> <value>`: what the selector is about, from its equality matchers."""
    equal = _equal(selector)
    for label in _TARGET_LABELS:
        if label in equal:
            return f" for {label} {equal[label]}"
    return ""


def _service_of(system: System, selector: Selector) -> Service | None:
    equal = _equal(selector)
    for service in system.services:
        if equal.get("service") == service.name and equal.get("namespace", service.namespace) == service.namespace:
            return service
    return None


def _absent_fix(system: System, provider: str, selector: Selector, answers: Seen) -> str:
    service = _service_of(system, selector)
    if selector.metric == "up" and service is not None and service.metrics is not None:
        kind = "PodMonitor" if service.metrics.monitor is MonitorKind.POD else "ServiceMonitor"
        return (
            f"the {kind} selects no target: check the port name ({service.metrics.port}), the workload's "
            f"labels, and that Prometheus selects monitors labelled {_labels(system.monitoring.selector_labels)}"
        )
    if provider == Provider.SERVICE.value and service is not None and service.metrics is not None:
        return (
            f"{service.name} does not publish {selector.metric}: check that its instrumentation is "
            f"{service.metrics.instrumentation.value}, as the inventory says"
        )
    if provider in answers.providers:
        return (
            f"{provider} is scraped but publishes no {selector.metric}: check its version and the flags that "
            "choose what it publishes"
        )
    return f"check that {provider} runs and that Prometheus scrapes it"


def _labels_fix(system: System, provider: str, culprit: Matcher) -> str:
    return (
        f"check how {provider} is deployed and scraped: the output expects {culprit} "
        f"(monitoring.stack is {system.monitoring.stack.value})"
    )


def _labels(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{name}={value}" for name, value in sorted(labels.items())) or "(any)"

