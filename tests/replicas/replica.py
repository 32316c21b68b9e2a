"""One `recargabot serve` process, started as an operator would, and an HTTP client on it.

The process gets only the environment given (no developer ``.env``: its working directory is a
temporary one). It counts as started when uvicorn logs that it listens; its stderr is read all the
time (a full pipe would block the server) and kept, so a failure can show what it logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.telegram_app import WEBHOOK_PATH
from bot.telegram_inbox import SECRET_HEADER

RECARGABOT = Path(sys.executable).with_name("recargabot")  # the console script of the venv
LISTENING = "Uvicorn running on"
LOGGING_FAILED = "--- Logging error ---"  # printed by logging.Handler.handleError
STOP_WITHIN = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Replica:
    """A running server process; every answer it gave is counted by status code."""

    name: str
    process: asyncio.subprocess.Process
    port: int
    lines: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    wrote: asyncio.Condition = field(default_factory=asyncio.Condition)
    started: bool = False
    http: httpx.AsyncClient = field(init=False)
    _reader: asyncio.Task[None] = field(init=False)

    def __post_init__(self) -> None:
        # Idle connections are dropped well before uvicorn's 5 s keep-alive timeout closes them:
        # otherwise a request can race the server's close and fail with a ReadError.
        limits = httpx.Limits(max_connections=64, keepalive_expiry=1.0)
        self.http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.port}", limits=limits, timeout=30
        )
        self._reader = asyncio.get_running_loop().create_task(self._read_stderr())

    async def post_update(self, update: dict[str, Any], secret: str) -> int:
        """Post a Telegram update to the webhook, as Telegram does."""
        response = await self.http.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: secret})
        return self._count(response)

    async def post_stripe(self, payload: bytes, signature: str) -> int:
        """Post a signed Stripe event to the payment webhook, as Stripe does."""
        headers = {"stripe-signature": signature, "content-type": "application/json"}
        response = await self.http.post(
            "/payments/stripe/webhook", content=payload, headers=headers
        )
        return self._count(response)

    async def get(self, path: str) -> int:
        return self._count(await self.http.get(path))

    def save_log(self, path: Path) -> None:
        """Keep what it logged, to read after a failure."""
        path.write_text("\n".join(self.lines), encoding="utf-8")

    def errors(self) -> list[str]:
        """What it logged at ERROR or above, as a traceback, or that logging failed to write."""
        return [
            line
            for line in self.lines
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
            or line == LOGGING_FAILED
        ]  # fmt: skip

    async def logged(self, text: str, *, within: float = 10) -> str:
        """The first line it logged that contains ``text``, waiting up to ``within`` seconds."""

        def found() -> str | None:
            return next((line for line in self.lines if text in line), None)

        async with self.wrote:
            await asyncio.wait_for(self.wrote.wait_for(found), within)
        return found() or ""

    def tail(self, count: int = 40) -> str:
        return "\n".join(self.lines[-count:])

    def _count(self, response: httpx.Response) -> int:
        self.statuses[response.status_code] += 1
        return response.status_code

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None, "started with stderr=PIPE"
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            async with self.wrote:
                self.wrote.notify_all()
            if LISTENING in line:
                self.started = True
                self.listening.set()
        self.listening.set()  # the process ended: stop waiting, start() reports it

    async def stop(self) -> None:
        """Stop it as an operator would (SIGINT: graceful); kill it if it does not stop in time."""
        await self.http.aclose()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_WITHIN)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


def _inherited() -> dict[str, str]:
    """PATH, and PYTHONPATH when set: a worktree's tests must start that worktree's code."""
    return {name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ}


async def start(name: str, env: dict[str, str], workdir: Path, *, within: float = 45) -> Replica:
    """Start `recargabot serve` on a free loopback port; return once it accepts connections."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(RECARGABOT), "serve",
        env={**_inherited(), **env, "HOST": "127.0.0.1", "PORT": str(port)},
        cwd=workdir, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    replica = Replica(name, process, port)
    try:
        await asyncio.wait_for(replica.listening.wait(), within)
    except TimeoutError:
        await replica.stop()
        raise AssertionError(f"{name} did not start in {within} s:\n{replica.tail()}") from None
    if not replica.started:  # it ended before listening
        await replica.stop()
        raise AssertionError(f"{name} exited with {process.returncode}:\n{replica.tail()}")
    return replica
