"""What every source has: a name, a kind, `collect(deadline)` and `close()`."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from obsbundle.exporters.credentials import Secret, scrub
from obsbundle.exporters.families import Batch, Sample


class DeadlineError(Exception):
    """The scrape's deadline passed before the source could start its next step."""


class SourceError(Exception):
    """The source answered, but not with what the exporter needs (HTTP 401, a list that is not a list…)."""


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock by which the scrape must be answered."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def left(self) -> float:
        """Seconds left; raises DeadlineError when none are."""
        remaining = self.remaining()
        if remaining <= 0:
            raise DeadlineError("the scrape's deadline passed")
        return remaining


class Source(ABC):
    """One configured server. The collector never runs two collections of one source at once."""

    kind: ClassVar[str]

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def collect(self, deadline: Deadline) -> Sequence[Sample | Batch]:
        """The source's samples, read within `deadline`; raises on any failure."""

    def close(self) -> None:  # noqa: B027 - sources without a connection have nothing to close
        """Release the connection, if one is open."""

    def secrets(self) -> Sequence[Secret | None]:
        """Passwords in use, so that error messages can be scrubbed of them."""
        return ()

    def describe_error(self, error: BaseException) -> str:
        """A one-line account of `error` fit for a log: no password, no credentials in URLs."""
        known = isinstance(error, DeadlineError | SourceError)
        text = str(error) if known else f"{type(error).__name__}: {error}"
        return scrub(" ".join(text.split()), self.secrets())
