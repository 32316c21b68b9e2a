"""A python-telegram-bot transport on aiohttp: PTB's ``BaseRequest`` with one pooled session.

Measured on loopback (bench/, 2 cores): a fake Bot API answers about ten times more sendMessage
calls per second to aiohttp than to PTB's default httpx transport at 100 concurrent requests, so
the bot's outgoing calls go through this class. Parameters are posted as PTB encodes them
(``json_parameters``: a form, each value JSON-encoded), as multipart when there are files.

Errors follow PTB's own transport: a timeout of any kind is ``TimedOut``, any other client error
``NetworkError``. Status codes (429, 403, 400…) are returned untouched: PTB's ``BaseRequest``
turns them into ``RetryAfter``, ``Forbidden`` and ``BadRequest``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

DEFAULT_POOL_SIZE = 256
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class AiohttpRequest(BaseRequest):
    """Send the Bot API's requests through an ``aiohttp.ClientSession`` owned by this object."""

    def __init__(
        self,
        connection_pool_size: int = DEFAULT_POOL_SIZE,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout, in seconds (PTB adds it to getUpdates' long-poll time)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session and its connection pool (idempotent)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, limit_per_host=self._pool_size, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": self.USER_AGENT}
            )

    async def shutdown(self) -> None:
        """Close the session and its connections (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Make one HTTP request; return its status code and body."""
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        write_default = self._media_write_timeout if files else self._write_timeout
        timeout = self._timeout(
            read=_given(read_timeout, self._read_timeout),
            write=_given(write_timeout, write_default),
            connect=_given(connect_timeout, self._connect_timeout),
            pool=_given(pool_timeout, self._pool_timeout),
        )
        data = _body(request_data, files) if request_data else None
        headers = _FORM if isinstance(data, bytes) else None
        try:
            async with self._session.request(
                method, url, data=data, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{error.__class__.__name__}: {error}") from error

    @staticmethod
    def _timeout(
        *, read: float | None, write: float | None, connect: float | None, pool: float | None
    ) -> aiohttp.ClientTimeout:
        # aiohttp's `connect` covers waiting for a pooled connection and opening one; it has no
        # separate write timeout, so sending the body counts against the socket read timeout.
        waiting = None if pool is None and connect is None else (pool or 0) + (connect or 0)
        reading = None if read is None and write is None else max(read or 0, write or 0)
        return aiohttp.ClientTimeout(
            total=None, connect=waiting, sock_connect=connect, sock_read=reading
        )


def _given(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


def _body(request_data: RequestData, files: dict[str, Any] | None) -> Any:
    """A plain form for ordinary calls; multipart when the call uploads files.

    The form is encoded here, as aiohttp would encode it (``urlencode``): aiohttp's ``FormData``
    builds a multipart writer even for a plain form, a tenth of a sendMessage's cost (bench/)."""
    parameters = request_data.json_parameters
    if not files:
        return urlencode(parameters).encode()
    form = aiohttp.FormData(quote_fields=False)
    for name, value in parameters.items():
        form.add_field(name, value)
    for name, part in files.items():
        filename, content, *rest = part if isinstance(part, tuple) else (name, part)
        form.add_field(name, content, filename=filename, content_type=rest[0] if rest else None)
    return form
