"""TLS and basic auth settings in the exporter-toolkit's web configuration format.

```yaml
tls_server_config: {cert_file: /tls/tls.crt, key_file: /tls/tls.key}   # optional; min_version too
basic_auth_users: {prometheus: $2y$10$...}                           # bcrypt hashes, never passwords
```
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import ssl
import threading
from pathlib import Path
from typing import Literal

import bcrypt
from pydantic import Field, ValidationError, field_validator

from obsbundle.errors import InputError, Problem
from obsbundle.exporters.config import Frozen, validation_problem
from obsbundle.loader import read_document

_BCRYPT = r"^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$"


class TlsServerConfig(Frozen):
    cert_file: Path
    key_file: Path
    min_version: Literal["TLS12", "TLS13"] = "TLS12"


class WebConfig(Frozen):
    tls_server_config: TlsServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, users: dict[str, str]) -> dict[str, str]:
        for user, hashed in users.items():
            if not user or ":" in user:
                raise ValueError(f"user name {user!r} must be non-empty and without ':'")
            if not re.match(_BCRYPT, hashed):
                # The value is not shown: it may be a plain password written by mistake.
                raise ValueError(
                    f"the entry of user {user!r} is not a bcrypt hash: write one with "
                    "`htpasswd -nbBC 10 USER PASSWORD` or Python's bcrypt.hashpw"
                )
        return users


def load_web_config(path: Path) -> tuple[WebConfig, ssl.SSLContext | None]:
    """The validated web configuration and, when it asks for TLS, a server SSL context loaded from it."""
    file = str(path)
    if not path.is_file():
        raise InputError([Problem(file, (), "no such file: pass the web configuration with --web-config")])
    data = read_document(path) or {}
    if not isinstance(data, dict):
        raise InputError([Problem(file, (), "must be a mapping with tls_server_config and/or basic_auth_users")])
    try:
        config = WebConfig.model_validate(data)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            if detail["loc"][:1] == ("basic_auth_users",):
                detail["input"] = {}  # never echo what might be a password
            problems.append(validation_problem(file, detail))
        raise InputError(problems) from None
    context = None
    if config.tls_server_config is not None:
        context = _ssl_context(config.tls_server_config, file)
    return config, context


def _ssl_context(tls: TlsServerConfig, file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3 if tls.min_version == "TLS13" else ssl.TLSVersion.TLSv1_2
    for key in ("cert_file", "key_file"):
        if not getattr(tls, key).is_file():
            raise InputError([Problem(file, ("tls_server_config", key), f"no such file (got '{getattr(tls, key)}')")])
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (ssl.SSLError, OSError) as error:
        raise InputError(
            [Problem(file, ("tls_server_config", "cert_file"), f"cannot load the certificate and key: {error}")]
        ) from None
    return context


class BasicAuth:
    """Checks `Authorization: Basic …` headers against bcrypt hashes.

    bcrypt is slow on purpose, so a successful check is remembered (as a keyed digest, never the
    password) and the next scrape with the same credentials costs a hash lookup. An unknown user
    is checked against a dummy hash so that its answer takes as long as a known one's.
    """

    _CACHE_LIMIT = 64

    def __init__(self, users: dict[str, str]) -> None:
        self._users = {user: hashed.encode() for user, hashed in users.items()}
        self._key = os.urandom(32)
        self._accepted: set[bytes] = set()
        self._lock = threading.Lock()
        self._dummy: bytes | None = None

    def allows(self, header: str | None) -> bool:
        credentials = _parse_basic(header)
        if credentials is None:
            return False
        user, password = credentials
        digest = hmac.new(self._key, user.encode() + b"\0" + password.encode(), hashlib.sha256).digest()
        with self._lock:
            if digest in self._accepted:
                return True
        hashed = self._users.get(user)
        if hashed is None:
            bcrypt.checkpw(password.encode(), self._dummy_hash())
            return False
        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return False
        if ok:
            with self._lock:
                if len(self._accepted) >= self._CACHE_LIMIT:
                    self._accepted.clear()
                self._accepted.add(digest)
        return ok

    def _dummy_hash(self) -> bytes:
        if self._dummy is None:
            self._dummy = bcrypt.hashpw(b"", bcrypt.gensalt(10))
        return self._dummy


def _parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, separator, password = decoded.partition(":")
    return (user, password) if separator else None
