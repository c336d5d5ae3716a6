"""Redis: length of each configured list queue (Celery, RQ-style) and keyspace hits and misses.

One pipeline per scrape: INFO stats first (so the exporter's own lookups are counted in the next
scrape, not this one), then LLEN of every list. A list that does not exist is an empty queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from obsbundle.exporters import families as f
from obsbundle.exporters.config import DEFAULT_APPLICATION_NAME, RedisSource
from obsbundle.exporters.credentials import Secret
from obsbundle.exporters.families import Batch, Sample
from obsbundle.exporters.sources.base import Deadline, Source, SourceError

BROKER = "redis"


class RedisListsSource(Source):
    kind = "redis"

    def __init__(self, settings: RedisSource, timeout: float) -> None:
        super().__init__(settings.name)
        self._settings = settings
        self._timeout = timeout
        self._client: redis.Redis | None = None
        self._secret: Secret | None = None

    def secrets(self) -> Sequence[Secret | None]:
        return (self._secret,)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _redis(self) -> redis.Redis:
        if self._client is None:
            self._secret = self._settings.password.read()
            self._client = redis.Redis.from_url(
                self._settings.url,
                username=self._settings.username,
                password=self._secret.reveal() if self._secret else None,
                # One connection, kept (pipelines draw from the pool too, so the pool is capped
                # rather than using single_connection_client); the deadline bounds every wait, so no retries.
                max_connections=1,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=Retry(NoBackoff(), 0),
                client_name=DEFAULT_APPLICATION_NAME,
            )
        return self._client

    def collect(self, deadline: Deadline) -> Sequence[Sample | Batch]:
        deadline.left()
        client = self._redis()
        pipe = client.pipeline(transaction=False)
        pipe.info("stats")
        for queue in self._settings.queues:
            pipe.llen(queue)
        try:
            stats, *lengths = pipe.execute(raise_on_error=False)
        except (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError):
            # Reconnect (and re-read the password) next time.
            self.close()
            raise
        if isinstance(stats, Exception):
            self.close()
            raise stats
        samples = [
            Sample(f.REDIS_KEYSPACE_HITS, (), _counter(stats, "keyspace_hits")),
            Sample(f.REDIS_KEYSPACE_MISSES, (), _counter(stats, "keyspace_misses")),
        ]
        for queue, length in zip(self._settings.queues, lengths, strict=True):
            if isinstance(length, redis.ResponseError):
                raise SourceError(f"LLEN {queue!r} failed ({length}): is the key a list?")
        if not lengths:
            return samples
        # The lists as one batch: a thousand queues are one block to write, not a thousand samples.
        return [*samples, Batch(f.QUEUE_READY, (BROKER,), (self._settings.queues,), list(map(float, lengths)))]


def _counter(stats: dict[str, Any], key: str) -> float:
    value = stats.get(key)
    if value is None:
        raise SourceError(f"INFO stats has no {key}")
    return float(value)
