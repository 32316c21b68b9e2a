"""The console's locks: password hashes, the session cookie, CSRF tokens, login throttling and
the security headers of every page.

The session lives in one cookie signed with itsdangerous (timestamped, so it expires server-side
whatever the browser keeps), HttpOnly, SameSite=Strict, Secure when served over https. It holds
the operator's id and the CSRF token of the session; signing in issues a new token, so a token
seen before login is worthless after it. Throttling is per process (in memory): each replica
counts its own failures, which still bounds a guesser to a few tries per minute per replica.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "recargabot_console"
SESSION_SECONDS = 8 * 3600  # a working day
MIN_PASSWORD = 12

HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
        "frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",  # personal data must not stay in shared caches
}

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"la contraseña debe tener al menos {MIN_PASSWORD} caracteres")
    return _hasher.hash(password)


def password_matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


# Verifying against this keeps a wrong email as slow as a wrong password (no account probing).
DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Session:
    csrf: str
    operator_id: int | None = None


class Cookies:
    """Signs and reads the session cookie."""

    def __init__(self, key: str, *, max_age: int = SESSION_SECONDS) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="recargabot-console")
        self.max_age = max_age

    def read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data: Any = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("csrf"), str):
            return None
        operator = data.get("op")
        return Session(data["csrf"], operator if isinstance(operator, int) else None)

    def write(self, session: Session) -> str:
        return self._serializer.dumps({"csrf": session.csrf, "op": session.operator_id})

    @staticmethod
    def fresh(operator_id: int | None = None) -> Session:
        return Session(secrets.token_urlsafe(32), operator_id)


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), expected.encode())


@dataclass
class Throttle:
    """Refuses logins after ``limit`` failures within ``window`` seconds for one key."""

    limit: int
    window: float
    clock: Callable[[], float] = time.monotonic
    sweep_above: int = 10_000  # keys kept before those with nothing recent are dropped
    _failures: dict[str, deque[float]] = field(default_factory=dict, repr=False)

    def blocked(self, key: str) -> bool:
        failures = self._failures.get(key)
        return failures is not None and self._recent(failures) >= self.limit

    def failed(self, key: str) -> None:
        failures = self._failures.setdefault(key, deque())
        self._recent(failures)
        failures.append(self.clock())
        if len(self._failures) > self.sweep_above:  # a guesser trying many emails
            for stale in [k for k, times in self._failures.items() if not self._recent(times)]:
                del self._failures[stale]

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, failures: deque[float]) -> int:
        """Drop the failures older than the window; how many are left."""
        oldest = self.clock() - self.window
        while failures and failures[0] < oldest:
            failures.popleft()
        return len(failures)


class SecurityHeaders:
    """ASGI middleware: the security headers on every response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)
