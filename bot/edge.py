"""The web edge: what a request may cost before the app knows who sent it.

An ASGI middleware in front of every route, because uvicorn has no body limit and no read timeout:

- each path has a body cap; a declared Content-Length over it is refused (413) before a byte is
  read, and a body streamed without one is counted as it arrives and refused at the cap;
- the whole body must arrive within the read timeout, or the client gets 408;
- an answer given before the body was read whole closes the connection, or uvicorn would go on
  reading and discarding the rest;
- a client that hangs up before its body is read is one INFO line, not an ERROR traceback;
- every answer carries nosniff, and HTML pages a policy that forbids framing and foreign content.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

KIB = 1024
DEFAULT_BODY_CAP = 16 * KIB  # forms of our own pages; GETs carry none
HTML_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
NOSNIFF = (b"x-content-type-options", b"nosniff")
CLOSE = (b"connection", b"close")


@dataclass(frozen=True)
class EdgeLimits:
    """Body caps by path (bytes), and the seconds a request may take to send its body."""

    body_caps: Mapping[str, int]
    read_timeout: float
    default_cap: int = DEFAULT_BODY_CAP

    def cap(self, path: str) -> int:
        return self.body_caps.get(path, self.default_cap)


class Refused(Exception):
    """The request broke a limit while its body was being read."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _Body:
    """The request's ``receive``, counted against the cap and the deadline until it is whole."""

    def __init__(self, receive: Receive, *, cap: int, deadline: float, expected: bool) -> None:
        self._receive, self._cap, self._deadline = receive, cap, deadline
        self.whole = not expected
        self._read = 0

    async def receive(self) -> Message:
        if self.whole:  # after the body, receive only waits for a disconnect: no deadline
            return await self._receive()
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            raise Refused(408, "body not sent within the read timeout") from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        self._read += len(message.get("body", b""))
        if self._read > self._cap:
            raise Refused(413, "body over the route's cap")
        self.whole = not message.get("more_body", False)
        return message


class Edge:
    """Apply ``EdgeLimits`` and the security headers to every HTTP request."""

    def __init__(self, app: ASGIApp, limits: EdgeLimits) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = f"{scope['method']} {scope['path']}"
        headers = dict(scope["headers"])
        cap = self.limits.cap(scope["path"])
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > cap:
            logger.info("refused %s: Content-Length %r, cap %d", where, declared, cap)
            await _answer(send, 413 if declared.isdigit() else 400)
            return
        deadline = asyncio.get_running_loop().time() + self.limits.read_timeout
        expected = b"transfer-encoding" in headers or int(declared) > 0
        body = _Body(receive, cap=cap, deadline=deadline, expected=expected)
        started = False

        async def send_marked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": _marked(message, closing=not body.whole)}
            await send(message)

        try:
            await self.app(scope, body.receive, send_marked)
        except Refused as refused:
            logger.info("refused %s: %s", where, refused)
            if not started:
                await _answer(send, refused.status)
        except ClientDisconnect:
            logger.info("client hung up before its request %s was read", where)


def _marked(start: Message, *, closing: bool) -> list[tuple[bytes, bytes]]:
    """The response's headers plus ours, where the app did not set them."""
    headers = list(start.get("headers", []))
    names = {name.lower() for name, _ in headers}
    html = any(n == b"content-type" and v.startswith(b"text/html") for n, v in headers)
    ours = [NOSNIFF, *(HTML_HEADERS if html else ()), *((CLOSE,) if closing else ())]
    return headers + [(name, value) for name, value in ours if name not in names]


async def _answer(send: Send, status: int) -> None:
    """An empty answer that ends the connection (the unread body would follow otherwise)."""
    headers = [(b"content-length", b"0"), NOSNIFF, CLOSE]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
