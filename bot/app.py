"""The composition root: ``build(settings)`` is the only place that picks concrete classes."""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.routing import Route

from adapters.sandbox_payments import SandboxPayments
from adapters.sandbox_topups import SandboxTopUps
from bot import web
from bot.messengers import ChannelRouter
from bot.payments import stripe_webhook
from bot.sandbox_page import sandbox_routes
from bot.settings import Settings
from bot.worker import Worker
from conversations.catalog import Catalogue
from conversations.fulfilment import Fulfilment
from conversations.machine import OrderSettled, Rules
from conversations.model import Order
from conversations.ports import Messenger, TopUps
from conversations.service import ChatService
from storage.db import create_tables, make_engine, make_sessionmaker
from storage.repositories import SqlConversationStore, SqlOrders

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Overrides:
    """What tests and the demo swap in; anything left None is built from the settings."""

    clock: Callable[[], datetime] | None = None
    new_id: Callable[[], str] | None = None
    messenger: Messenger | None = None
    topups: TopUps | None = None
    # Where the sandbox gateway posts its signed webhooks; default: this app's own route.
    deliver: Callable[[bytes, str], Awaitable[int]] | None = None


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    orders: SqlOrders
    store: SqlConversationStore
    chat: ChatService
    fulfilment: Fulfilment
    worker: Worker
    payments: SandboxPayments
    topups: TopUps
    http: httpx.AsyncClient

    @asynccontextmanager
    async def lifetime(self, *, background: bool = True) -> AsyncIterator[Services]:
        """Create tables, finish what a previous run left, run the worker; clean up after."""
        await create_tables(self.engine)
        await self.worker.run_once()
        task = (
            asyncio.get_running_loop().create_task(self.worker.run_forever())
            if background
            else None
        )
        try:
            yield self
        finally:
            if task:
                task.cancel()
            await self.http.aclose()
            await self.engine.dispose()


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    async with app.state.services.lifetime():
        yield


def load_catalogue(settings: Settings) -> Catalogue:
    """Read the operator's catalogue file, or the illustrative one shipped with the bot."""
    if settings.catalog_path:
        return Catalogue.from_json(settings.catalog_path.read_text(encoding="utf-8"))
    shipped = resources.files("conversations").joinpath("data/packages.json")
    return Catalogue.from_json(shipped.read_text(encoding="utf-8"))


def webhook_secret(settings: Settings) -> str:
    """The Stripe signing secret; the sandbox keeps a local one so its links survive restarts."""
    if settings.stripe_webhook_secret:
        return settings.stripe_webhook_secret.get_secret_value()
    path = settings.sandbox_secret_path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"whsec_sandbox_{secrets.token_hex(24)}", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def build(settings: Settings, *, overrides: Overrides | None = None) -> Starlette:
    """Wire every part of the bot and return the ASGI app (``app.state.services`` holds them)."""
    given = overrides or Overrides()
    clock = given.clock or (lambda: datetime.now(UTC))
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    store, orders = SqlConversationStore(sessions, clock=clock), SqlOrders(sessions)
    secret = webhook_secret(settings)
    app = Starlette(lifespan=_lifespan)
    # The sandbox posts its webhooks to this very app, in process: the same route Stripe uses.
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.base_url)

    async def deliver(payload: bytes, signature: str) -> int:
        response = await http.post(
            "/payments/stripe/webhook", content=payload,
            headers={"stripe-signature": signature, "content-type": "application/json"},
        )  # fmt: skip
        return response.status_code

    payments = SandboxPayments(
        public_base_url=settings.base_url, webhook_secret=secret,
        deliver=given.deliver or deliver, clock=clock,
    )  # fmt: skip
    topups = given.topups or SandboxTopUps()
    chat = ChatService(
        store=store, orders=orders, payments=payments, topups=topups,
        messenger=given.messenger or ChannelRouter({}),
        rules=Rules(load_catalogue(settings), policy_version=settings.privacy_policy_version),
        clock=clock, new_id=given.new_id or (lambda: uuid.uuid4().hex),
    )  # fmt: skip

    async def tell(order: Order) -> None:
        await chat.handle(order.key, OrderSettled(order))

    fulfilment = Fulfilment(
        orders=orders, work=orders, payments=payments, topups=topups, tell=tell, clock=clock
    )
    worker = Worker(fulfilment.resume, interval=settings.reconcile_interval_seconds)
    routes = [
        Route("/healthz", web.healthz),
        Route("/pay/{order_id}/done", web.payment_done),
        Route("/pay/{order_id}/cancelled", web.payment_cancelled),
        Route(
            "/payments/stripe/webhook",
            stripe_webhook(secret=secret, record=fulfilment.record, kick=worker.kick),
            methods=["POST"],
        ),
        *sandbox_routes(payments),
    ]
    app.router.routes.extend(routes)
    app.state.services = Services(
        settings, engine, orders, store, chat, fulfilment, worker, payments, topups, http
    )
    return app
