"""The bot with real Stripe and Reloadly adapters, talking HTTP to local fakes of both services.

Each test gets fresh fakes served by uvicorn on 127.0.0.1 (port 0) inside its own event loop,
a bot built by the real ``build()`` on a throwaway SQLite file, and, after the test, a check of
the money invariants of every order against what the fakes recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import Overrides, Services, build
from bot.settings import Settings
from tests.db import table_rows
from tests.fake_reloadly import FakeReloadly
from tests.fake_stripe import FakeStripe
from tests.fakes import MovableClock, RecordingMessenger
from tests.money import check_money
from tests.servers import served
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer


@dataclass
class RecordingAlerts:
    """An Alerts port that keeps every alert."""

    sent: list[tuple[str, str | None]] = field(default_factory=list)

    async def alert(self, what: str, *, order_id: str | None = None) -> None:
        self.sent.append((what, order_id))


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


def database_of(world: World) -> str:
    """The database the world's bots share."""
    return world.settings.database_url


async def order_rows(database_url: str) -> list[dict[str, Any]]:
    """Every order as stored, read with plain SQL."""
    return await table_rows(database_url, "orders")


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    """Fakes served on loopback, and bot processes started on them; all stopped afterwards."""
    stripe_fake, reloadly_fake = FakeStripe(), FakeReloadly()
    clock, alerts = MovableClock(), RecordingAlerts()
    async with AsyncExitStack() as stack:
        stripe_url = await stack.enter_async_context(served(stripe_fake.app()))
        reloadly_url = await stack.enter_async_context(served(reloadly_fake.app()))
        stack.callback(reloadly_fake.release.set)  # let held answers finish before stopping
        settings = Settings(
            _env_file=None,
            database_url=database_url,
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
    await check_world_money(database_url, stripe_fake, reloadly_fake)


async def check_world_money(
    database_url: str, stripe_fake: FakeStripe, reloadly_fake: FakeReloadly
) -> None:
    """The money invariants against what the fakes recorded; every top-up is of an order."""

    def refunded(row: dict[str, Any]) -> int:
        session = stripe_fake.sessions.get(row["checkout_session_id"] or "", {})
        intent = session.get("payment_intent")
        return stripe_fake.refunded(intent) if intent else 0

    await check_money(
        database_url,
        charged=lambda row: stripe_fake.charged(row["checkout_session_id"] or ""),
        refunded=refunded,
        credited=lambda row: reloadly_fake.credited.get(row["id"], 0),
    )
    rows = await order_rows(database_url)
    assert set(reloadly_fake.credited) <= {row["id"] for row in rows}
