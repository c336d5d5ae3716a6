"""Passwords: read from a file or an environment variable when a connection opens, never kept in text.

Secrets are read again at every (re)connection, so a Kubernetes Secret that is rotated in place is
picked up without a restart. Anything that may carry a secret on its way to a log line goes
through `scrub`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class Secret:
    """A password that does not print itself (repr, str and f-strings show `***`)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


class CredentialError(Exception):
    """The password cannot be read now (file gone, variable unset); the message names where, not what."""


@dataclass(frozen=True)
class PasswordRef:
    """Where a source's password lives: a file, an environment variable, or nowhere (no password)."""

    file: Path | None = None
    env: str | None = None

    def read(self) -> Secret | None:
        if self.file is not None:
            try:
                text = self.file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                reason = type(error).__name__
                raise CredentialError(f"cannot read the password file {self.file}: {reason}") from None
            # Secrets written by editors or `echo` end in a newline that is not part of the password.
            return Secret(text.removesuffix("\n").removesuffix("\r"))
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise CredentialError(f"the environment variable {self.env} is not set")
            return Secret(value)
        return None

    def problem(self) -> str | None:
        """Why the password cannot be read right now, for start-up checks; None when it can."""
        try:
            self.read()
        except CredentialError as error:
            return str(error)
        return None


_PATTERNS = (
    # key=value pairs of libpq connection strings and URL query strings
    (re.compile(r"(?i)(password|passwd|pwd|secret|token)(\s*[=:]\s*)('[^']*'|\"[^\"]*\"|[^\s&,;)]+)"), r"\1\2***"),
    # user:password@ in URLs
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]*@"), r"\1***@"),
    # HTTP authorization headers
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(basic|bearer)\s+)[A-Za-z0-9+/=._-]+"), r"\1***"),
)

# Shorter secrets are still hidden by the patterns above, but replacing every occurrence of one or
# two characters would garble the message beyond use.
_MIN_LITERAL = 3


def scrub(text: str, secrets: Iterable[Secret | None] = ()) -> str:
    """`text` with known secrets and anything shaped like a credential replaced by `***`."""
    for secret in secrets:
        if secret is not None and len(secret.reveal()) >= _MIN_LITERAL:
            text = text.replace(secret.reveal(), "***")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
