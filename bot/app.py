"""The composition root: ``build(settings)`` is the only place that picks concrete classes."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import stripe
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from telegram.error import BadRequest, InvalidToken, NetworkError

from adapters.log_alerts import LogAlerts
from adapters.reloadly_topups import PRODUCTION_API, SANDBOX_API, ReloadlyConfig, ReloadlyTopUps
from adapters.sandbox_payments import SandboxPayments
from adapters.sandbox_topups import SandboxTopUps
from adapters.stripe_payments import StripePayments
from adapters.telegram_alerts import TelegramAlerts
from adapters.telegram_messenger import TelegramMessenger
from bot import payments as stripe_route
from bot import web, whatsapp
from bot.admin import console
from bot.edge import Edge, EdgeLimits
from bot.messengers import ChannelRouter
from bot.promo_admin import promo_admin
from bot.sandbox_page import sandbox_routes
from bot.settings import Settings
from bot.telegram_app import WEBHOOK_PATH, TelegramChannel, telegram_application, telegram_channel
from bot.telegram_handlers import BotApplication, TelegramHandlers
from bot.telegram_inbox import LEFT_AFTER, UpdateInbox
from bot.whatsapp import Inbox, StatusReports, whatsapp_messenger, whatsapp_routes
from bot.worker import Timers, Worker
from conversations.catalog import Catalogue
from conversations.delivery import Courier
from conversations.fulfilment import Fulfilment, RetryPolicy
from conversations.limits import Limits
from conversations.machine import OrderSettled, Rules
from conversations.model import Order
from conversations.ports import (
    Alerts,
    ChatLocks,
    Messenger,
    Move,
    PackageSource,
    Payments,
    TopUps,
    Wallet,
)
from conversations.privacy_guard import Guard
from conversations.service import ChatService, KeyedLocks, ReentrantLocks
from storage.catalogue import SqlCatalogue, SyncReport
from storage.chats import SqlConversationStore
from storage.crypto import DataKeys, create_private_once, local_keys
from storage.customers import SqlContacts
from storage.db import make_engine, make_sessionmaker
from storage.handoffs import SqlHandoffNotes
from storage.locks import AdvisoryChatLocks
from storage.migrate import upgrade
from storage.orders import SqlOrders
from storage.outbox import KEPT as OUTBOX_KEPT
from storage.outbox import SqlOutbox
from storage.pending_updates import SqlPendingUpdates
from storage.privacy import SqlAudit, SqlPrivacy, check_keys
from storage.sandbox_checkouts import SqlSandboxCheckouts
from storage.usage import SqlUsage

logger = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]
TELEGRAM_MAX_BODY = 256 * 1024  # an update is a message or a button press: a few kB at most


@dataclass(frozen=True)
class Overrides:
    """What tests and the demo swap in; anything left None is built from the settings."""

    clock: Callable[[], datetime] | None = None
    new_id: Callable[[], str] | None = None
    messenger: Messenger | None = None
    topups: TopUps | None = None
    alerts: Alerts | None = None
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
    payments: Payments
    topups: TopUps
    http: httpx.AsyncClient
    # Vendor clients to close with the app (Stripe's and Reloadly's HTTP pools).
    closers: tuple[Callable[[], Awaitable[None]], ...] = ()
    telegram: TelegramChannel | None = None
    privacy: SqlPrivacy | None = None
    usage: SqlUsage | None = None
    audit: SqlAudit | None = None
    catalogue: SqlCatalogue | None = None

    @asynccontextmanager
    async def lifetime(self, *, background: bool = True) -> AsyncIterator[Services]:
        """Create tables, finish what a previous run left, run the worker; clean up after."""
        task: asyncio.Task[None] | None = None
        try:
            await _open_database(self.engine)
            await self._stock_catalogue()
            if self.telegram:  # before the worker, which may tell customers at once
                await _connect_telegram(self.telegram)
            await self.worker.run_once()
            if background:
                task = asyncio.get_running_loop().create_task(self.worker.run_forever())
            yield self
        finally:
            if task:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if self.telegram:
                await self.telegram.stop()
            await self.http.aclose()
            for close in self.closers:
                await close()
            await self.engine.dispose()

    async def sync_catalogue(self) -> SyncReport:
        """Read the provider's packages into the catalogue, as ``recargabot catalogue sync``."""
        assert self.catalogue is not None
        return await sync_catalogue(self.catalogue, self.topups, at=self.chat.clock())

    async def _stock_catalogue(self) -> None:
        """The sandbox's catalogue is synced at every start, so the demo needs no sync step;
        a real provider's only when the catalogue is empty (operators sync it themselves)."""
        if self.catalogue is None:
            return
        if not isinstance(self.topups, SandboxTopUps) and await self.catalogue.listing():
            return
        try:
            report = await self.sync_catalogue()
        except Exception:  # the bot still sells credit; `catalogue sync` can be run later
            logger.warning("could not read the provider's packages at start", exc_info=True)
            return
        logger.info("catalogue synced at start: %d new, %d changed", len(report.added),
                    len(report.changed))  # fmt: skip


class StartupError(Exception):
    """The bot cannot start; the message says which setting to check, in one line."""


async def _open_database(engine: AsyncEngine) -> None:
    try:
        await upgrade(engine)
    except (OSError, SQLAlchemyError) as error:  # the message could quote the URL: not shown
        raise StartupError(
            f"the database could not be opened ({type(error).__name__}): check DATABASE_URL"
        ) from None
    await check_keys(engine)


async def _connect_telegram(telegram: TelegramChannel) -> None:
    try:
        await telegram.start()
    except InvalidToken:  # PTB's message quotes the token
        raise StartupError(
            "Telegram refused the bot token: check TELEGRAM_BOT_TOKEN (and TELEGRAM_API_BASE_URL)"
        ) from None
    except BadRequest as error:
        raise StartupError(
            f"Telegram refused the start-up calls ({error.message}): check PUBLIC_BASE_URL and "
            "TELEGRAM_WEBHOOK_SECRET"
        ) from None
    except NetworkError as error:  # TimedOut included
        raise StartupError(
            f"Telegram's Bot API could not be reached at start ({type(error).__name__}): check "
            "TELEGRAM_API_BASE_URL, TELEGRAM_BOT_TOKEN and the network"
        ) from None


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    async with app.state.services.lifetime():
        freeze_startup_heap()
        yield


# The young generation's size: an update allocates thousands of short-lived objects, so at the
# default 700 the collector ran several times per update (1.6% of the instructions, bench/).
YOUNG_OBJECTS = 20_000


def freeze_startup_heap() -> None:
    """Take what startup built (modules, the app, its clients) out of the garbage collector's
    rounds. A full collection walked those 160,000 objects each time, stalling every chat for
    about 0.2 s on the benchmark's 2-core machine (bench/). Then collect the young generation
    less often (``YOUNG_OBJECTS``)."""
    gc.collect()  # what is garbage now is not kept for ever
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS, 20, 20)


async def sync_catalogue(catalogue: SqlCatalogue, provider: TopUps, *, at: datetime) -> SyncReport:
    """Read the top-up provider's packages into the catalogue; safe to run at any time."""
    if not isinstance(provider, PackageSource):
        raise TypeError(f"{type(provider).__name__} lists no packages")
    return await catalogue.sync(await provider.offers(), at=at)


def top_up_provider(settings: Settings) -> tuple[TopUps, Closer | None]:
    """Reloadly when TOPUP_PROVIDER=reloadly, else the sandbox; and what closes its client."""
    if settings.topup_provider == "reloadly":
        return reloadly_topups(settings)
    return SandboxTopUps(), None


def webhook_secret(settings: Settings) -> str:
    """The Stripe signing secret; the sandbox keeps a local one so its links survive restarts."""
    if settings.stripe_webhook_secret:
        return settings.stripe_webhook_secret.get_secret_value()
    path = settings.sandbox_secret_path
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    return create_private_once(path, f"whsec_sandbox_{secrets.token_hex(24)}").strip()


def data_keys(settings: Settings) -> DataKeys:
    """The keys of the personal data columns; the demo keeps generated ones in a local file."""
    fernet, hash_key = settings.data_encryption_keys, settings.data_hash_key
    if fernet and hash_key:
        listed = tuple(k.strip() for k in fernet.get_secret_value().split(",") if k.strip())
        return DataKeys(listed, hash_key.get_secret_value())
    return local_keys(data_keys_path(settings))


def data_keys_path(settings: Settings) -> Path:
    return settings.data_keys_path or settings.sandbox_secret_path.with_name("data-keys.json")


def stripe_payments(settings: Settings, secret_key: str) -> tuple[StripePayments, Closer]:
    """Stripe Checkout through an async StripeClient aimed at STRIPE_API_BASE_URL."""
    http_client = stripe.HTTPXClient(timeout=20)
    client = stripe.StripeClient(
        secret_key, base_addresses={"api": settings.stripe_api_base_url},
        http_client=http_client, max_network_retries=2,
    )  # fmt: skip
    return StripePayments(client=client, public_base_url=settings.base_url), http_client.close_async


def reloadly_topups(settings: Settings) -> tuple[ReloadlyTopUps, Closer]:
    """Reloadly top-ups, on its sandbox unless RELOADLY_SANDBOX is false."""
    default_api = SANDBOX_API if settings.reloadly_sandbox else PRODUCTION_API
    secret = settings.reloadly_client_secret
    config = ReloadlyConfig(
        client_id=settings.reloadly_client_id or "",
        client_secret=secret.get_secret_value() if secret else "",
        api_base_url=settings.reloadly_api_base_url or default_api,
        auth_url=settings.reloadly_auth_url,
        sandbox=settings.reloadly_sandbox,
    )
    http = httpx.AsyncClient(timeout=settings.reloadly_timeout_seconds)
    return ReloadlyTopUps(http=http, config=config), http.aclose


def edge_limits(settings: Settings) -> EdgeLimits:
    """Each webhook's body cap, and the read timeout, for the web edge."""
    caps = {
        stripe_route.PATH: stripe_route.MAX_BODY, whatsapp.PATH: whatsapp.MAX_BODY,
        WEBHOOK_PATH: TELEGRAM_MAX_BODY,
    }  # fmt: skip
    return EdgeLimits(caps, read_timeout=settings.http_read_timeout_seconds)


def limits(settings: Settings) -> Limits:
    """The abuse limits from the settings."""
    return Limits(
        messages_per_minute=settings.limit_messages_per_minute,
        open_checkouts=settings.limit_open_checkouts,
        checkouts_per_hour=settings.limit_checkouts_per_hour,
        topups_per_recipient_day=settings.limit_topups_per_recipient_day,
        cents_per_recipient_day=settings.limit_soles_per_recipient_day * 100,
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.topup_max_attempts,
        first_delay=timedelta(seconds=settings.topup_retry_base_seconds),
        hold_retry=timedelta(minutes=settings.topup_hold_retry_minutes),
        hold_deadline=timedelta(minutes=settings.topup_hold_refund_after_minutes),
    )


def operator_alerts(settings: Settings, bot_app: BotApplication | None) -> Alerts:
    """Alerts in the log, and in the operators' Telegram chats when both are configured."""
    if bot_app is None or not settings.admin_telegram_ids:
        return LogAlerts()
    return TelegramAlerts(bot_app.bot, settings.admin_telegram_ids, LogAlerts())


def chat_locks(engine: AsyncEngine) -> ChatLocks:
    """Per-chat order within this process, or across every replica on PostgreSQL."""
    if engine.dialect.name == "postgresql":
        # A held chat pins a connection while its update waits on Telegram's answers too: fewer
        # than about 20 left the CPU idle and queued replies past 10 s at 200 chats (test_load).
        return AdvisoryChatLocks(engine, max_held=20)
    return KeyedLocks()


def build(settings: Settings, *, overrides: Overrides | None = None) -> Starlette:
    """Wire every part of the bot and return the ASGI app (``app.state.services`` holds them)."""
    given = overrides or Overrides()
    clock = given.clock or (lambda: datetime.now(UTC))
    engine = make_engine(settings.database_url, keys=data_keys(settings))
    sessions = make_sessionmaker(engine)
    catalogue = SqlCatalogue(engine)
    store = SqlConversationStore(engine, clock=clock, catalogue=catalogue)
    orders = SqlOrders(engine)
    contacts = SqlContacts(engine)
    privacy, audit, usage = SqlPrivacy(sessions), SqlAudit(sessions), SqlUsage(engine)
    whatsapp = whatsapp_messenger(settings, contacts=contacts, clock=clock)
    # A messenger override (the terminal demo) would swallow Telegram's replies: no Telegram then.
    use_telegram = settings.telegram_bot_token is not None and given.messenger is None
    bot_app = telegram_application(settings) if use_telegram else None
    telegram = TelegramMessenger(bot_app.bot, contacts, clock) if bot_app else None
    secret = webhook_secret(settings)
    app = Starlette(lifespan=_lifespan, middleware=[Middleware(Edge, limits=edge_limits(settings))])
    # The sandbox posts its webhooks to this very app, in process: the same route Stripe uses.
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=settings.base_url)

    async def deliver(payload: bytes, signature: str) -> int:
        response = await http.post(
            stripe_route.PATH, content=payload,
            headers={"stripe-signature": signature, "content-type": "application/json"},
        )  # fmt: skip
        return response.status_code

    closers: list[Closer] = [whatsapp.close] if whatsapp else []
    payments: Payments
    if settings.stripe_secret_key:
        payments, close = stripe_payments(settings, settings.stripe_secret_key.get_secret_value())
        closers.append(close)
    else:
        payments = SandboxPayments(
            public_base_url=settings.base_url, webhook_secret=secret,
            deliver=given.deliver or deliver, clock=clock, states=SqlSandboxCheckouts(engine),
        )  # fmt: skip
    topups = given.topups
    if topups is None:
        topups, provider_close = top_up_provider(settings)
        closers += [provider_close] if provider_close else []
    locks = ReentrantLocks(chat_locks(engine))  # the Telegram inbox holds chats around handlers
    alerts = given.alerts or operator_alerts(settings, bot_app)
    rules = Rules(
        Catalogue(()), policy_version=settings.privacy_policy_version,
        service_hours=settings.service_hours, complaints_url=settings.complaints_book_url,
    )  # fmt: skip
    messenger = given.messenger or ChannelRouter(
        {n: m for n, m in (("whatsapp", whatsapp), ("telegram", telegram)) if m}
    )
    outbox, timers = SqlOutbox(engine), Timers()
    closers.append(timers.close)
    chat = ChatService(
        store=store, orders=orders, payments=payments, topups=topups, messenger=messenger,
        rules=rules, clock=clock, new_id=given.new_id or (lambda: uuid.uuid4().hex),
        courier=Courier(outbox, messenger, clock, timers.later),
        privacy=privacy, usage=usage, guard=Guard(limits(settings)), locks=locks,
        operators=alerts, notes=SqlHandoffNotes(engine),
    )  # fmt: skip
    timers.target = chat.deliver

    async def tell(order: Order, settles: Move | None) -> None:
        await chat.handle(order.key, OrderSettled(order), settles=settles)

    fulfilment = Fulfilment(
        orders=orders, work=orders, payments=payments, topups=topups, tell=tell, clock=clock,
        alerts=alerts, retry=retry_policy(settings), retell=chat.repeat_notice,
    )  # fmt: skip
    admin = console(settings, engine, fulfilment=fulfilment, contacts=contacts, audit=audit,
                    clock=clock, chat=chat, catalogue=catalogue,
                    wallet=topups if isinstance(topups, Wallet) else None)  # fmt: skip

    async def background_pass() -> None:
        await fulfilment.resume()
        if channel is not None and channel.inbox is not None:  # a replica that died left them
            await channel.inbox.resume(kept_before=clock() - LEFT_AFTER)
        for key in await outbox.chats_due(now=clock()):
            await chat.deliver(key)
        await outbox.prune(before=clock() - OUTBOX_KEPT)
        await admin.start_due()  # promos scheduled from the console

    worker = Worker(background_pass, interval=settings.reconcile_interval_seconds)
    channel, telegram_routes = (
        telegram_channel(bot_app, settings, TelegramHandlers(
            chat, contacts, chat.messenger, orders.day_stats, settings.admin_telegram_ids, clock,
            audit=audit, extra=promo_admin(
                settings, sessions, contacts=contacts, messenger=chat.messenger, clock=clock,
                audit=audit,
            ).handlers(),
        ), UpdateInbox(bot_app, SqlPendingUpdates(engine), locks, clock))
        if bot_app else (None, [])
    )  # fmt: skip
    routes = [
        Route("/healthz", web.healthz),
        Route("/pay/{order_id}/done", web.payment_done(fulfilment.fulfil_checkout)),
        Route("/pay/{order_id}/cancelled", web.payment_cancelled),
        Route(
            stripe_route.PATH,
            stripe_route.stripe_webhook(
                secret=secret, record=fulfilment.record, push=fulfilment.push, kick=worker.kick
            ),
            methods=["POST"],
        ),
        *(sandbox_routes(payments) if isinstance(payments, SandboxPayments) else []),
        *whatsapp_routes(
            settings,
            inbox=Inbox(contacts, chat.handle, chat.answer, clock, chat.offered),
            reports=StatusReports(outbox, chat.courier, whatsapp, locks.hold, clock)
            if whatsapp
            else None,
        ),
        *telegram_routes,
        admin.mount(),
    ]
    app.router.routes.extend(routes)
    app.state.services = Services(
        settings, engine, orders, store, chat, fulfilment, worker, payments, topups, http,
        tuple(closers), telegram=channel, privacy=privacy, usage=usage, audit=audit,
        catalogue=catalogue,
    )  # fmt: skip
    return app
