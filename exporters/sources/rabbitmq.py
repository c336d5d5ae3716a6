"""RabbitMQ: ready, unacknowledged, consumers and head message age of every queue of one vhost.

Reads the management API page by page with only the columns it needs, so that a broker with
thousands of queues costs a few small responses. A user with the `monitoring` tag and read access
to the vhost is enough.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from obsbundle.exporters import families as f
from obsbundle.exporters.config import RabbitMQSource
from obsbundle.exporters.credentials import Secret
from obsbundle.exporters.families import Sample
from obsbundle.exporters.sources.base import Deadline, Source, SourceError

BROKER = "rabbitmq"
_DETAILS = {"columns": "name,messages_ready,messages_unacknowledged,consumers,head_message_timestamp"}
# Queue totals come without the per-queue statistics lookups that cost the broker most of a scrape.
_TOTALS = {"columns": "name,messages_ready,messages_unacknowledged", "disable_stats": "true",
           "enable_queue_totals": "true"}
_HINTS = {
    401: "check the user and its password, its `monitoring` tag, and that it has permissions on the vhost "
    "(empty ones are enough)",
    403: "give the user the `monitoring` tag",
    404: "no such vhost, or the management plugin is not enabled",
}


class RabbitMQQueuesSource(Source):
    kind = "rabbitmq"

    def __init__(self, settings: RabbitMQSource) -> None:
        super().__init__(settings.name)
        self._settings = settings
        self._endpoint = f"{settings.url}/api/queues/{quote(settings.vhost, safe='')}"
        self._session: requests.Session | None = None
        self._secret: Secret | None = None

    def secrets(self) -> Sequence[Secret | None]:
        return (self._secret,)

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def _http(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            # One kept-alive connection per source, and no silent retries past the deadline.
            session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
            session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
            session.trust_env = False
            if self._settings.ca_file is not None:
                session.verify = str(self._settings.ca_file)
            self._session = session
        return self._session

    def collect(self, deadline: Deadline) -> Sequence[Sample]:
        # Read at every collection: a rotated Secret takes effect without a restart.
        self._secret = self._settings.password.read()
        auth = (self._settings.user, self._secret.reveal() if self._secret else "")
        samples: list[Sample] = []
        page = 1
        now = time.time()
        while True:
            body = self._page(page, auth, deadline)
            for queue in body.get("items", ()):
                samples += _queue_samples(queue, now)
            if page >= int(body.get("page_count") or 0):
                return samples
            page += 1

    def _page(self, page: int, auth: tuple[str, str], deadline: Deadline) -> dict[str, Any]:
        remaining = deadline.left()
        params: dict[str, str | int] = {
            **(_DETAILS if self._settings.queue_details else _TOTALS),
            "page": page, "page_size": self._settings.page_size, "sort": "name",
        }
        try:
            response = self._http().get(self._endpoint, params=params, auth=auth, timeout=(remaining, remaining))
        except requests.Timeout:
            self.close()  # a fresh connection next time, not a half-read one
            raise SourceError(f"the management API at {self._settings.url} did not answer in time") from None
        except requests.RequestException as error:
            self.close()
            raise SourceError(f"cannot reach the management API at {self._settings.url}: {_cause(error)}") from None
        if response.status_code != requests.codes.ok:
            hint = _HINTS.get(response.status_code, "see the broker's log")
            raise SourceError(f"HTTP {response.status_code} {response.reason} from the management API: {hint}")
        body = response.json()
        if not isinstance(body, dict):
            raise SourceError("the management API answered with something other than a page of queues")
        return body


def _cause(error: BaseException) -> str:
    """The innermost OS-level reason ("Connection refused") of a requests error, which otherwise
    repeats the whole request URL several times over."""
    seen: BaseException | None = error
    reason = str(error)
    for _ in range(10):  # urllib3 nests a few levels; never follow a chain forever
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.strerror:
            reason = seen.strerror
        nested = getattr(seen, "reason", None)
        if isinstance(nested, BaseException) and nested is not seen:
            seen = nested
        elif seen.args and isinstance(seen.args[0], BaseException):
            seen = seen.args[0]
        else:
            seen = seen.__context__
    return reason


def _queue_samples(queue: dict[str, Any], now: float) -> list[Sample]:
    labels = (BROKER, str(queue.get("name", "")))
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
    head = queue.get("head_message_timestamp")
    if isinstance(head, int | float):
        samples.append(Sample(f.QUEUE_OLDEST_AGE, labels, max(0.0, now - float(head))))
    return samples
