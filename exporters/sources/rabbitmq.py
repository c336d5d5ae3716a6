"""RabbitMQ: ready, unacknowledged and consumers of every queue of one vhost, and the head message's
age of the queues the configuration names.

The counts come from the broker's own Prometheus endpoint (rabbitmq_prometheus, RabbitMQ 3.8.10
and later): `/metrics/detailed` filtered to the vhost and to the two queue families that carry
them costs the broker a fraction of what the management API's queue listing does, because it
reads the core metrics tables without the management database's per-queue statistics. That
endpoint has no head message timestamp, so the management API is asked for it, one small request
per named queue.

When the plugin does not answer (connection refused, or 404: not enabled) while the management
API does, everything is read from the management API as before, page by page with only the
columns needed; that is logged once, and the plugin is tried again every few minutes. A user
with the `monitoring` tag and a permission entry on the vhost is enough for the management API;
rabbitmq_prometheus asks for no credentials and is sent none.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from obsbundle.exporters import families as f
from obsbundle.exporters.config import RabbitMQSource
from obsbundle.exporters.credentials import Secret
from obsbundle.exporters.families import Batch, Family, Sample, WrittenNumbers, written_numbers
from obsbundle.exporters.sources.base import Deadline, Source, SourceError

log = logging.getLogger(__name__)

BROKER = "rabbitmq"
_COUNT_COLUMNS = "name,messages_ready,messages_unacknowledged,consumers"
# Queue totals come without the per-queue statistics lookups that cost the broker most of a scrape.
_TOTALS = {"columns": "name,messages_ready,messages_unacknowledged", "disable_stats": "true",
           "enable_queue_totals": "true"}
_HEAD = {"columns": "name,head_message_timestamp"}
# The vhosts the user may read, without their message statistics.
_VHOSTS = {"columns": "name", "disable_stats": "true"}
# Uncompressed: gzip would cost the broker more CPU than the exposition itself, for bytes that
# travel a few hops inside the cluster.
_PLAIN = {"Accept-Encoding": "identity"}
_BODY_CHUNK = 256 * 1024
_HINTS = {
    401: "check the user and its password, its `monitoring` tag, and that it has permissions on the vhost "
    "(empty ones are enough)",
    403: "give the user the `monitoring` tag",
    404: "no such vhost, or the management plugin is not enabled",
}
# rabbitmq_prometheus's names for the numbers the management API calls messages_ready,
# messages_unacknowledged and consumers (deps/rabbitmq_prometheus/metrics-detailed.md).
_PLUGIN_FAMILIES: dict[str, Family] = {
    "rabbitmq_detailed_queue_messages_ready": f.QUEUE_READY,
    "rabbitmq_detailed_queue_messages_unacked": f.QUEUE_UNACKED,
    "rabbitmq_detailed_queue_consumers": f.QUEUE_CONSUMERS,
}
# A label and its value: up to the quote that ends the labels or precedes the next label's name.
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(.*?)"(?=,[a-zA-Z_][a-zA-Z0-9_]*="|$)')
_UNESCAPE = re.compile(r"\\(.)")
_BARE_QUOTE = re.compile(r'(?<!\\)"')
_UNESCAPED = {"n": "\n", "\\": "\\", '"': '"'}
PLUGIN_CONNECT_SECONDS = 1.0
"""Longest wait for a connection to the plugin's port; a working one connects within milliseconds."""
HEAD_AGE_REQUESTS = 4
"""Head-age requests in flight at once (each on its own kept-alive connection): five named queues
then cost about two round trips, which end while the plugin renders its answer, not five after it."""
REPROBE_SECONDS = 300.0
"""How long the management API serves everything after the plugin was found off, before the plugin
is tried again: enabling it takes effect within this, and a plugin that stays off costs one
refused connection (or one 404) per interval."""


class PluginOffError(Exception):
    """rabbitmq_prometheus is not there: its port refuses connections, or it answers 404."""


class RabbitMQQueuesSource(Source):
    kind = "rabbitmq"

    def __init__(self, settings: RabbitMQSource) -> None:
        super().__init__(settings.name)
        self._settings = settings
        self._vhost_path = quote(settings.vhost, safe="")
        self._queues_url = f"{settings.url}/api/queues/{self._vhost_path}"
        self._vhosts_url = f"{settings.url}/api/vhosts"
        self._plugin_url = f"{settings.plugin_url}/metrics/detailed"
        families = ["queue_coarse_metrics", *(["queue_consumer_count"] if settings.queue_details else [])]
        self._plugin_params = [("vhost", settings.vhost), *(("family", family) for family in families)]
        self._session: requests.Session | None = None
        # The collection's thread and the helper's workers share the session: one makes it, once.
        self._session_lock = threading.Lock()
        self._secret: Secret | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._checked: tuple[tuple[str, str], float] | None = None
        """The credentials the vhost was last found readable with, and when (monotonic clock)."""
        self._fallback_since: float | None = None
        """When the plugin was last found off (monotonic clock); None while it serves the counts."""

    @property
    def reads_plugin(self) -> bool:
        """Whether the next collection asks rabbitmq_prometheus for the counts first."""
        if not self._settings.prometheus_plugin:
            return False
        return self._fallback_since is None or time.monotonic() - self._fallback_since >= REPROBE_SECONDS

    def secrets(self) -> Sequence[Secret | None]:
        return (self._secret,)

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)
        self._drop_connections()

    def _drop_connections(self) -> None:
        """Fresh connections next time, not half-read ones. The workers stay: a head-age request that
        fails must not stop its siblings from being handed out."""
        with self._session_lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def _http(self) -> requests.Session:
        with self._session_lock:
            return self._session or self._new_session()

    def _new_session(self) -> requests.Session:
        """The session, made under the session lock."""
        session = requests.Session()
        # Kept-alive connections to the broker's two ports (one to the plugin's, one per head-age
        # request in flight to the management API's), and no silent retries past the deadline.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=HEAD_AGE_REQUESTS, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.trust_env = False
        if self._settings.ca_file is not None:
            session.verify = str(self._settings.ca_file)
        self._session = session
        return session

    def collect(self, deadline: Deadline) -> Sequence[Sample | Batch]:
        # Read at every collection: a rotated Secret takes effect without a restart.
        self._secret = self._settings.password.read()
        auth = (self._settings.user, self._secret.reveal() if self._secret else "")
        if self.reads_plugin:
            try:
                samples = self._plugin_path(auth, deadline)
            except PluginOffError as off:
                # Only the management API's answer tells a plugin that is off from a broker that is
                # down: if it fails too, the source is down and the plugin is asked again next time.
                samples = self._management(auth, deadline)
                if self._fallback_since is None:
                    log.warning(
                        "source %s: rabbitmq_prometheus does not answer at %s (%s); reading every queue "
                        "through the management API, which costs the broker more. Enable the plugin "
                        "(rabbitmq-plugins enable rabbitmq_prometheus), set prometheus_url, or set "
                        "prometheus_plugin: false", self.name, self._settings.plugin_url, off,
                    )
                self._fallback_since = time.monotonic()
                return samples
            if self._fallback_since is not None:
                log.info("source %s: rabbitmq_prometheus answers at %s again; reading the queue counts from it",
                         self.name, self._settings.plugin_url)
                self._fallback_since = None
            return samples
        return self._management(auth, deadline)

    def _plugin_path(self, auth: tuple[str, str], deadline: Deadline) -> list[Sample | Batch]:
        """Counts from the plugin and, at the same time on the other port, the management API's part:
        its small answers arrive while the broker renders its exposition."""
        side = self._helper().submit(self._vhost_and_head_ages, auth, deadline)
        try:
            samples = self._plugin_counts(deadline)
        except BaseException:
            wait_for([side])  # its requests end by the deadline; the session is not left in use
            self._checked = None
            raise
        return samples + side.result()

    def _vhost_and_head_ages(self, auth: tuple[str, str], deadline: Deadline) -> list[Sample | Batch]:
        """The head ages of the named queues, after checking what the plugin cannot: that the
        credentials are right and the vhost exists. rabbitmq_prometheus asks for neither, and would
        serve a mistyped vhost as one without queues. The check is made again after any failure, for
        a new password, and every few minutes; in between it would only cost the broker a request."""
        if self._checked is None or self._checked[0] != auth or time.monotonic() - self._checked[1] >= REPROBE_SECONDS:
            self._checked = None
            listed = _json_list(self._get(self._vhosts_url, _VHOSTS, auth, deadline, missing_is_error=True))
            if not any(isinstance(entry, dict) and entry.get("name") == self._settings.vhost for entry in listed):
                raise SourceError(f"no vhost {self._settings.vhost!r} that the user may read: create it, or give "
                                  "the user a permission entry on it (empty ones are enough)")
            self._checked = (auth, time.monotonic())
        try:
            return self._head_ages(auth, deadline) if self._settings.queue_details else []
        except BaseException:
            self._checked = None
            raise

    def _helper(self) -> ThreadPoolExecutor:
        if self._executor is None:
            # One worker for the management API's part, and the head-age requests it hands out.
            self._executor = ThreadPoolExecutor(max_workers=1 + HEAD_AGE_REQUESTS,
                                                thread_name_prefix=f"poolq-{self.name}-heads")
        return self._executor

    # --- rabbitmq_prometheus -----------------------------------------------------------------------------

    def _plugin_counts(self, deadline: Deadline) -> list[Sample | Batch]:
        remaining = deadline.left()
        where = self._settings.plugin_url
        try:
            with self._http().get(self._plugin_url, params=self._plugin_params, headers=_PLAIN, stream=True,
                                  timeout=(min(remaining, PLUGIN_CONNECT_SECONDS), remaining)) as response:
                # Read in large pieces: requests' own `content` reads 10 kB at a time, which costs a
                # 10,000-queue answer (3.6 MB) three times the CPU.
                body = b"".join(response.iter_content(chunk_size=_BODY_CHUNK))
        except requests.ConnectTimeout:
            # A Kubernetes Service that does not list the port drops the connection attempt rather
            # than refusing it: the plugin is as good as off.
            self._drop_connections()
            raise PluginOffError(f"no connection within {PLUGIN_CONNECT_SECONDS:g}s") from None
        except requests.Timeout:
            self._drop_connections()
            raise SourceError(f"rabbitmq_prometheus at {where} did not answer in time") from None
        except requests.RequestException as error:
            self._drop_connections()
            if _refused(error):
                raise PluginOffError("connection refused") from None
            raise SourceError(f"cannot reach rabbitmq_prometheus at {where}: {_cause(error)}") from None
        if response.status_code == requests.codes.not_found:
            raise PluginOffError("HTTP 404: the plugin is not enabled, or older than 3.8.10")
        if response.status_code != requests.codes.ok:
            raise SourceError(f"HTTP {response.status_code} {response.reason} from rabbitmq_prometheus at {where}: "
                              "see the broker's log")
        # The plugin writes UTF-8 without saying so in its Content-Type.
        return plugin_samples(body.decode("utf-8", errors="replace"), self._settings.vhost)

    def _head_ages(self, auth: tuple[str, str], deadline: Deadline) -> list[Sample | Batch]:
        # This runs on one of the helper's workers; the others, HEAD_AGE_REQUESTS of them, fetch the heads.
        futures = [self._helper().submit(self._head_age, queue, auth, deadline) for queue in self._settings.queues]
        wait_for(futures)  # each request ends by the deadline; none is left using the session
        return [sample for future in futures if (sample := future.result()) is not None]

    def _head_age(self, queue: str, auth: tuple[str, str], deadline: Deadline) -> Sample | None:
        response = self._get(f"{self._queues_url}/{quote(queue, safe='')}", _HEAD, auth, deadline)
        if response.status_code == requests.codes.not_found:
            return None  # not declared (yet): no head, so no age, as for an empty queue
        head = _json(response).get("head_message_timestamp")
        if not isinstance(head, int | float):
            return None
        return Sample(f.QUEUE_OLDEST_AGE, (BROKER, queue), max(0.0, time.time() - float(head)))

    # --- the management API --------------------------------------------------------------------------------

    def _management(self, auth: tuple[str, str], deadline: Deadline) -> list[Sample | Batch]:
        if self._settings.queue_details:
            columns = _COUNT_COLUMNS + (",head_message_timestamp" if self._settings.queues else "")
            base: dict[str, str | int] = {"columns": columns}
        else:
            base = {**_TOTALS}
        named = frozenset(self._settings.queues) if self._settings.queue_details else frozenset()
        samples: list[Sample | Batch] = []
        page = 1
        now = time.time()
        while True:
            params = {**base, "page": page, "page_size": self._settings.page_size, "sort": "name"}
            body = _json(self._get(self._queues_url, params, auth, deadline, missing_is_error=True))
            for queue in body.get("items", ()):
                samples += _queue_samples(queue, now, named)
            if page >= int(body.get("page_count") or 0):
                return samples
            page += 1

    def _get(self, url: str, params: dict[str, str | int] | dict[str, str], auth: tuple[str, str],
             deadline: Deadline, *, missing_is_error: bool = False) -> requests.Response:
        remaining = deadline.left()
        try:
            response = self._http().get(url, params=params, auth=auth, timeout=(remaining, remaining))
        except requests.Timeout:
            self._drop_connections()
            raise SourceError(f"the management API at {self._settings.url} did not answer in time") from None
        except requests.RequestException as error:
            self._drop_connections()
            raise SourceError(f"cannot reach the management API at {self._settings.url}: {_cause(error)}") from None
        if response.status_code == requests.codes.not_found and not missing_is_error:
            return response
        if response.status_code != requests.codes.ok:
            hint = _HINTS.get(response.status_code, "see the broker's log")
            raise SourceError(f"HTTP {response.status_code} {response.reason} from the management API: {hint}")
        return response


def plugin_samples(text: str, vhost: str) -> list[Sample | Batch]:
    """The queue counts of `vhost` in a rabbitmq_prometheus exposition (text format 0.0.4), one
    batch per family.

    The plugin writes `{vhost="…",queue="…"}` on every queue line, so one split of a family's
    lines, at C speed, at the two places every line has (before its queue and after it, at `"} `)
    gives the queues and the values in turn. When that gives other pieces than a queue and a number
    per line (a queue name holding `"} `), a regular expression reads each line up to its last
    `"} `; should a line of those families have another shape, or another vhost (a plugin that
    ignored the `vhost` filter), every line is read by the general parser instead.

    RabbitMQ 3.10 writes label values as they are, quotes and backslashes included
    (rabbitmq-server#9648; escaped since #9656): a value is whatever stands before the line's last
    `"} `, and it is unescaped only when no value of the answer holds a bare quote, which an
    escaping plugin never writes."""
    text = "\n" + text  # every sample line then starts after a newline, the first one too
    batches: list[Sample | Batch] = []
    for name, family in _PLUGIN_FAMILIES.items():
        lines = text.count(f"\n{name}{{")
        if not lines:
            continue
        # A family's lines follow its TYPE line: split only that stretch of the body.
        start = text.find(f"\n# TYPE {name} ")
        end = text.find("\n# TYPE ", start + 1) if start >= 0 else -1
        stretch = text[max(start, 0):end if end >= 0 else len(text)].rstrip("\n")
        # [the TYPE and HELP lines, queue, value, queue, value, …]: lists of strings, not a tuple
        # per line, which ten thousand queues would pay for in garbage collection.
        parts = _plugin_splitter(name, vhost).split(stretch)
        queues, texts = parts[1::2], parts[2::2]
        values = _plugin_values(texts) if len(parts) == 1 + 2 * lines else None
        if values is None:
            # A queue named with `"} ` in it splits into more pieces: read each line up to its last `"} `.
            found = _plugin_lines(name, vhost).findall(stretch)
            queues, texts = [queue for queue, _ in found], [value for _, value in found]
            values = _plugin_values(texts) if len(found) == lines else None
            if values is None:
                return plugin_samples_by_line(text, vhost)
        joined = "\n".join(queues)
        if "\\" in joined and not _BARE_QUOTE.search(joined):
            queues = [_UNESCAPE.sub(_unescape, queue) for queue in queues]
        batches.append(Batch(family, (BROKER,), (queues,), values))
    return batches


def _plugin_values(texts: list[str]) -> WrittenNumbers | list[float] | None:
    """The values of a family's lines: the counts as the plugin wrote them, or floats when it wrote
    them otherwise; None when one is no number (a line of another shape was split apart)."""
    written = written_numbers(texts)
    if written is not None:
        return written
    try:
        return list(map(float, texts))
    except ValueError:
        return None


def _plugin_line_start(name: str, vhost: str) -> str:
    """The pattern of a line of family `name` in `vhost` (written as it is, or escaped) up to its
    queue. Matching the vhost as a literal keeps the split and the scan fast."""
    escaped = vhost.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
    either = "|".join(sorted({re.escape(vhost), re.escape(escaped)}))
    return r"\n" + re.escape(name) + r'\{vhost="(?:' + either + r')",queue="'


@functools.lru_cache(maxsize=64)
def _plugin_splitter(name: str, vhost: str) -> re.Pattern[str]:
    """What splits the lines of family `name` in `vhost` before and after their queue."""
    return re.compile(_plugin_line_start(name, vhost) + r'|"\} ')


@functools.lru_cache(maxsize=64)
def _plugin_lines(name: str, vhost: str) -> re.Pattern[str]:
    """The lines of family `name` in `vhost`, each as (its queue: all before the line's last `"} `, its value)."""
    return re.compile(_plugin_line_start(name, vhost) + r'([^\n]*)"\} ([^ \n]+)')


def plugin_samples_by_line(text: str, vhost: str) -> list[Sample | Batch]:
    """`plugin_samples` for any label order or label set, a line at a time. A label's value runs to
    the quote that ends the labels or comes before the next `name="`, so that the unescaped quotes
    of RabbitMQ 3.10 stay in it; values are unescaped by the rule `plugin_samples` follows."""
    lines: list[tuple[Family, dict[str, str], str]] = []
    for line in text.splitlines():
        name, brace, rest = line.partition("{")
        family = _PLUGIN_FAMILIES.get(name)
        if family is None or not brace:
            continue
        labels_text, _, value_text = rest.rpartition("} ")
        lines.append((family, dict(_LABEL.findall(labels_text)), value_text))
    values = "\n".join(value for _, labels, _ in lines for value in labels.values())
    escaped = "\\" in values and not _BARE_QUOTE.search(values)
    samples: list[Sample | Batch] = []
    for family, written, value_text in lines:
        labels = {key: _UNESCAPE.sub(_unescape, value) for key, value in written.items()} if escaped else written
        if labels.get("vhost") == vhost and "queue" in labels:
            samples.append(Sample(family, (BROKER, labels["queue"]), float(value_text.split(" ", 1)[0])))
    return samples


def _unescape(match: re.Match[str]) -> str:
    return _UNESCAPED.get(match.group(1), match.group(0))


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SourceError("the management API answered with something other than a queue or a page of queues")
    return body


def _causes(error: BaseException) -> list[BaseException]:
    """`error` and the exceptions nested in it, outermost first: urllib3 wraps the OS error a few levels deep."""
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and len(chain) < 10:  # never follow a chain forever
        chain.append(seen)
        nested = getattr(seen, "reason", None)
        if isinstance(nested, BaseException) and nested is not seen:
            seen = nested
        elif seen.args and isinstance(seen.args[0], BaseException):
            seen = seen.args[0]
        else:
            seen = seen.__context__
    return chain


def _json_list(response: requests.Response) -> list[Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, list):
        raise SourceError("the management API answered with something other than a list of vhosts")
    return body


def _refused(error: BaseException) -> bool:
    """Whether a requests error comes down to a refused connection: nothing listens on the port."""
    return any(isinstance(cause, ConnectionRefusedError) for cause in _causes(error))


def _cause(error: BaseException) -> str:
    """The innermost OS-level reason ("Connection refused") of a requests error, which otherwise
    repeats the whole request URL several times over."""
    reasons = [cause.strerror for cause in _causes(error) if isinstance(cause, OSError) and cause.strerror]
    return reasons[-1] if reasons else str(error)


def _queue_samples(queue: dict[str, Any], now: float, named: frozenset[str]) -> list[Sample]:
    name = str(queue.get("name", ""))
    labels = (BROKER, name)
    samples: list[Sample] = []
    # A queue declared a moment ago has no statistics yet: report it once it has.
    for column, family in (
        ("messages_ready", f.QUEUE_READY),
        ("messages_unacknowledged", f.QUEUE_UNACKED),
        ("consumers", f.QUEUE_CONSUMERS),
    ):
        value = queue.get(column)
        if isinstance(value, int | float):
            samples.append(Sample(family, labels, float(value)))
    # The AMQP timestamp property of the head message, in seconds; null when the message has none.
    # Only for the named queues, as the plugin's path reads it, so that both paths serve the same series.
    head = queue.get("head_message_timestamp")
    if name in named and isinstance(head, int | float):
        samples.append(Sample(f.QUEUE_OLDEST_AGE, labels, max(0.0, now - float(head))))
    return samples
