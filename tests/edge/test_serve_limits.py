"""`recargabot serve` against hostile or clumsy clients on loopback: big unsigned bodies, clients
that trickle, clients that hang up, clients that hold connections idle.

Each test starts the real server process (tests/replicas/replica.py) and talks raw HTTP/1.1 to it,
since an HTTP client library would not misbehave on purpose. Memory is the process's own peak
resident set (VmHWM), reset after start-up (``clear_refs``) so only the test's requests count.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.replicas.replica import Replica, start
from tests.whatsapp.conftest import ACCOUNT_SID
from tests.whatsapp.phone import AUTH_TOKEN, SENDER

READ_TIMEOUT = 1.0  # seconds: HTTP_READ_TIMEOUT_SECONDS of the server under test
MAX_CONNECTIONS = 8
MB = 1_000_000
MIB = 1 << 20


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Replica]:
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        "SANDBOX_SECRET_PATH": str(tmp_path / "sandbox-secret"),
        "DATA_KEYS_PATH": str(tmp_path / "data-keys.json"),
        "PUBLIC_BASE_URL": "https://bot.test",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_WHATSAPP_FROM": SENDER, "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
        "HTTP_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "LOG_LEVEL": "INFO",
    }  # fmt: skip
    (tmp_path / "run").mkdir()
    replica = await start("edge", env, tmp_path / "run")
    try:
        yield replica
    finally:
        await replica.stop()


def _reset_peak(pid: int) -> None:
    """Make the process's peak resident set (VmHWM) its current one (Linux clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _memory(pid: int, field: str) -> int:
    """A VmRSS / VmHWM figure of the process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: bot.test", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _status_after_sending(port: int, head: bytes, total: int, *, chunked: bool) -> int | None:
    """Send the head, then up to ``total`` body bytes while reading; the status line, if any."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    chunk = b"a" * MIB
    frame = b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk

    async def pump() -> None:
        with contextlib.suppress(ConnectionError):
            for _ in range(total // MIB):
                writer.write(frame)
                await writer.drain()
            if chunked:
                writer.write(b"0\r\n\r\n")
                await writer.drain()

    pumping = asyncio.create_task(pump())
    try:
        line = await asyncio.wait_for(reader.readline(), 60)
    except ConnectionError:
        line = b""
    pumping.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionError):
        await pumping
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return int(line.split()[1]) if line else None


UNSIGNED_JSON = {"content-type": "application/json"}
FAKE_SIGNATURE = {"stripe-signature": "t=1,v1=00", **UNSIGNED_JSON}


@pytest.mark.parametrize(
    ("path", "headers", "chunked"),
    [
        pytest.param(
            "/payments/stripe/webhook", {**FAKE_SIGNATURE, "content-length": str(100 * MIB)},
            False, id="stripe, Content-Length",
        ),
        pytest.param(
            "/payments/stripe/webhook", {**FAKE_SIGNATURE, "transfer-encoding": "chunked"},
            True, id="stripe, chunked",
        ),
        pytest.param(
            "/whatsapp/webhook",
            {"x-twilio-signature": "c2ln", "transfer-encoding": "chunked",
             "content-type": "application/x-www-form-urlencoded"},
            True, id="whatsapp, chunked form",
        ),
    ],
)  # fmt: skip
async def test_a_100_mb_unsigned_body_costs_the_server_less_than_20_mb(
    server: Replica, path: str, headers: dict[str, str], chunked: bool
) -> None:
    assert await server.get("/healthz") == 200  # warm: the code paths a request takes are loaded
    pid = server.process.pid
    _reset_peak(pid)
    idle = _memory(pid, "VmRSS")

    status = await _status_after_sending(server.port, _head(path, headers), 100 * MIB,
                                         chunked=chunked)  # fmt: skip

    grown = _memory(pid, "VmHWM") - idle
    assert grown < 20 * MB, f"peak RSS grew {grown / MB:.0f} MB above idle"
    assert status in (413, None)  # refused; or reset while we were still sending
    assert server.errors() == []


async def test_a_trickling_client_is_cut_off_within_the_read_timeout(server: Replica) -> None:
    head = _head("/payments/stripe/webhook", {**FAKE_SIGNATURE, "content-length": "100000"})
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head)

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            while True:  # one byte every 50 ms: the client's pace, never the server's
                writer.write(b"a")
                await writer.drain()
                await asyncio.sleep(0.05)

    trickling = asyncio.create_task(trickle())
    began = time.monotonic()
    try:
        answer = await asyncio.wait_for(reader.read(), READ_TIMEOUT + 4)
    finally:
        trickling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await trickling
        writer.close()
    took = time.monotonic() - began

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert took < READ_TIMEOUT + 2.0, f"closed after {took:.1f} s"  # margin: a loaded CI box


async def test_a_client_hanging_up_mid_body_is_one_info_line_and_no_traceback(
    server: Replica,
) -> None:
    head = _head("/payments/stripe/webhook", {**FAKE_SIGNATURE, "content-length": "1000"})
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head + b"{" * 10)
    await writer.drain()
    writer.close()

    line = await server.logged("hung up")
    assert await server.get("/healthz") == 200
    await server.stop()

    assert " INFO " in line
    assert sum("hung up" in logged for logged in server.lines) == 1
    assert server.errors() == [], server.tail()


async def test_connections_beyond_the_cap_are_refused_while_others_sit_idle(
    server: Replica,
) -> None:
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(MAX_CONNECTIONS)]

    status = await server.get("/healthz")

    for _, writer in idle:
        writer.close()
    assert status == 503
