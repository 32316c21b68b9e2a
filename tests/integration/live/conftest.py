"""The bot with real Stripe and Reloadly adapters, talking HTTP to local fakes of both services.

Each test gets fresh fakes served by uvicorn on 127.0.0.1 (port 0) inside its own event loop,
a bot built by the real ``build()`` on a throwaway SQLite file, and, after the test, a check of
the money invariants of every order against what the fakes recorded.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from bot.app import Overrides, Services, build
from bot.settings import Settings
from conversations.model import OrderState
from tests.fake_reloadly import FakeReloadly
from tests.fake_stripe import FakeStripe
from tests.fakes import MovableClock, RecordingMessenger
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer


@dataclass
class RecordingAlerts:
    """An Alerts port that keeps every alert."""

    sent: list[tuple[str, str | None]] = field(default_factory=list)

    async def alert(self, what: str, *, order_id: str | None = None) -> None:
        self.sent.append((what, order_id))


@asynccontextmanager
async def served(app: ASGIApp) -> AsyncIterator[str]:
    """Serve the app on a free loopback port for the duration of the block; yield its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", ws="none", http="h11",
        timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class Bot:
    """One running bot process: its services, an HTTP client on its app, and its customer."""

    services: Services
    client: httpx.AsyncClient
    customer: Customer
    messenger: RecordingMessenger


@dataclass
class World:
    """The fakes, the shared clock and database, and a way to start bot processes on them."""

    stripe: FakeStripe
    reloadly: FakeReloadly
    clock: MovableClock
    alerts: RecordingAlerts
    settings: Settings
    start: Callable[..., Awaitable[Bot]]

    async def order_paid(self, bot: Bot, number: str = "+51 987-654-321") -> tuple[str, str]:
        """Chat up to the link, pay it at the fake; return (order id, session id)."""
        steps = list(NEW_CUSTOMER_TO_SUMMARY)
        steps[2] = number
        order_id, session_id = await self.order_opened(bot, steps)
        self.stripe.complete(session_id)
        return order_id, session_id

    async def order_opened(self, bot: Bot, steps: list[str] | None = None) -> tuple[str, str]:
        await bot.customer.say(*(steps or NEW_CUSTOMER_TO_SUMMARY), "Confirmar")
        session_id = bot.customer.last_link().rsplit("/", 1)[-1]
        return self.stripe.sessions[session_id]["client_reference_id"], session_id

    async def deliver(self, bot: Bot, event_type: str, session_id: str) -> httpx.Response:
        """Send a freshly signed webhook for the session, as Stripe would."""
        payload = self.stripe.event(event_type, session_id)
        return await post_webhook(bot.client, payload, self.stripe.sign(payload))


def post_webhook(
    client: httpx.AsyncClient, payload: bytes, signature: str | None
) -> Awaitable[httpx.Response]:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["stripe-signature"] = signature
    return client.post("/payments/stripe/webhook", content=payload, headers=headers)


def database_of(world: World) -> Path:
    """The SQLite file the world's bots share."""
    return Path(world.settings.database_url.split("///", 1)[1])


def order_rows(database: Path) -> list[dict[str, Any]]:
    """Every order as stored, read with plain SQL."""
    with sqlite3.connect(database) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM orders")]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Fakes served on loopback, and bot processes started on them; all stopped afterwards."""
    stripe_fake, reloadly_fake = FakeStripe(), FakeReloadly()
    clock, alerts = MovableClock(), RecordingAlerts()
    async with AsyncExitStack() as stack:
        stripe_url = await stack.enter_async_context(served(stripe_fake.app()))
        reloadly_url = await stack.enter_async_context(served(reloadly_fake.app()))
        stack.callback(reloadly_fake.release.set)  # let held answers finish before stopping
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
            public_base_url="https://bot.test",
            sandbox_secret_path=tmp_path / "sandbox-secret",
            stripe_secret_key="sk_test_fake",
            stripe_api_base_url=stripe_url,
            stripe_webhook_secret=stripe_fake.webhook_secret,
            topup_provider="reloadly",
            reloadly_client_id=reloadly_fake.client_id,
            reloadly_client_secret=reloadly_fake.client_secret,
            reloadly_api_base_url=reloadly_url,
            reloadly_auth_url=f"{reloadly_url}/oauth/token",
            reloadly_timeout_seconds=5,
        )

        async def start(**changes: Any) -> Bot:
            messenger = RecordingMessenger()
            app = build(
                settings.model_copy(update=changes),
                overrides=Overrides(clock=clock, messenger=messenger, alerts=alerts),
            )
            services = await stack.enter_async_context(
                app.state.services.lifetime(background=False)
            )
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="https://bot.test"
            )
            await stack.enter_async_context(client)
            return Bot(services, client, Customer(services, messenger), messenger)

        yield World(stripe_fake, reloadly_fake, clock, alerts, settings, start)
    check_money(tmp_path / "bot.db", stripe_fake, reloadly_fake)


def check_money(database: Path, stripe_fake: FakeStripe, reloadly_fake: FakeReloadly) -> None:
    """Refunded ≤ charged, top-up ≤ paid, never completed and refunded, one top-up per order."""
    rows = order_rows(database) if database.exists() else []
    for row in rows:
        charged = stripe_fake.charged(row["checkout_session_id"] or "")
        intent = stripe_fake.sessions.get(row["checkout_session_id"] or "", {}).get(
            "payment_intent"
        )
        refunded = stripe_fake.refunded(intent) if intent else 0
        topped_up = reloadly_fake.credited.get(row["id"], 0)
        assert refunded <= charged, row["id"]
        assert topped_up <= charged, row["id"]
        assert not (topped_up and refunded), row["id"]
        assert not (row["state"] == OrderState.COMPLETED and refunded), row["id"]
        assert row["state"] != OrderState.REFUNDED or refunded == charged, row["id"]
    assert set(reloadly_fake.credited) <= {row["id"] for row in rows}
