"""A lean Twilio Messages stand-in for load: slow, out of order, and counting every create.

tests/fake_twilio.py plays WhatsApp's rules through Starlette; under 10,000 sends its form parsing
would be most of the test's time. This one (aiohttp.web) keeps what a load test needs: basic
auth, the fields the spec requires, a 201 Message resource, and an answer after a seeded random
delay, so overlapping requests are answered in another order than they came.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import socket
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

MESSAGES = "/2010-04-01/Accounts/{sid}/Messages.json"


@dataclass
class SlowTwilio:
    account_sid: str
    auth_token: str
    max_delay: float = 0.02  # seconds; each answer waits a random part of it
    seed: int = 17
    bodies: Counter[str] = field(default_factory=Counter)  # created messages, by Body
    arrived: list[str] = field(default_factory=list)  # Body, in the order requests came
    answered: list[str] = field(default_factory=list)  # Body, in the order answers went

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._auth = aiohttp.encode_basic_auth(self.account_sid, self.auth_token)

    async def create(self, request: web.Request) -> web.Response:
        if request.match_info["sid"] != self.account_sid or (
            request.headers.get("Authorization") != self._auth
        ):
            return web.json_response({"code": 20003, "status": 401}, status=401)
        form = await request.post()
        if not all(isinstance(form.get(name), str) for name in ("To", "From", "Body")):
            return web.json_response({"code": 21604, "status": 400}, status=400)
        body = str(form["Body"])
        self.arrived.append(body)
        await asyncio.sleep(self._random.random() * self.max_delay)  # the vendor being slow
        self.bodies[body] += 1
        self.answered.append(body)
        sid = "SM" + secrets.token_hex(16)
        resource = {"sid": sid, "to": form["To"], "from": form["From"], "status": "queued"}
        return web.json_response(resource, status=201)


@asynccontextmanager
async def serve_slow(twilio: SlowTwilio) -> AsyncIterator[str]:
    """Serve the stand-in on 127.0.0.1 for the block; yield its base URL."""
    app = web.Application()
    app.router.add_post(MESSAGES, twilio.create)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()
