"""Promo campaign wiring shared by ``recargabot promo`` and the Telegram /promo command.

The promo senders get HTTP clients of their own, opened for one run and closed after it: the
Telegram one has no rate limiter of its own (the broadcaster paces promos and sees every 429),
so the bot's replies to customers, on the Application's rate-limited bot, never queue behind a
campaign. Pace settings live in ``Settings`` (PROMO_*).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime

from telegram import Bot
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from adapters.aiohttp_request import AiohttpRequest
from adapters.promo_channels import TelegramPromos, WhatsAppPromos
from bot.settings import Settings
from conversations.broadcast import Broadcaster, PromoChannel, RateLimiter, RecipientState
from conversations.model import Channel
from conversations.ports import Contacts
from storage.campaigns import SqlCampaigns

_twilio_http_log = logging.getLogger(f"{__name__}.twilio_http")
_twilio_http_log.setLevel(logging.WARNING)  # twilio logs request URLs next to phone numbers

Channels = dict[Channel, PromoChannel]


def configured(settings: Settings) -> tuple[Channel, ...]:
    """The channels promos can go out on with these settings."""
    found = []
    if settings.telegram_bot_token:
        found.append(Channel.TELEGRAM)
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_whatsapp_from:
        found.append(Channel.WHATSAPP)
    return tuple(found)


def limiters(settings: Settings) -> dict[Channel, RateLimiter]:
    """One pace per channel: Telegram overall and per chat, WhatsApp per sender."""
    return {
        Channel.TELEGRAM: RateLimiter(
            settings.promo_telegram_per_second, per_chat=settings.promo_telegram_per_chat_seconds
        ),
        Channel.WHATSAPP: RateLimiter(settings.promo_whatsapp_per_second),
    }


@asynccontextmanager
async def promo_channels(
    settings: Settings, contacts: Contacts, clock: Callable[[], datetime]
) -> AsyncIterator[Channels]:
    """Open the configured channels' promo senders for one run; close them after."""
    channels: Channels = {}
    async with AsyncExitStack() as stack:
        if settings.telegram_bot_token:
            os.environ.setdefault("PTB_TIMEDELTA", "true")  # as the bot's own Application does
            bot = Bot(
                settings.telegram_bot_token.get_secret_value(),
                base_url=settings.telegram_api_base_url,
                request=AiohttpRequest(settings.promo_concurrency * 2),
            )
            await stack.enter_async_context(bot)
            channels[Channel.TELEGRAM] = TelegramPromos(bot, contacts, clock)
        if Channel.WHATSAPP in configured(settings):
            channels[Channel.WHATSAPP] = await _whatsapp(settings, contacts, clock, stack)
        yield channels


async def _whatsapp(
    settings: Settings, contacts: Contacts, clock: Callable[[], datetime], stack: AsyncExitStack
) -> WhatsAppPromos:
    assert settings.twilio_auth_token and settings.twilio_whatsapp_from
    http = AsyncTwilioHttpClient(logger=_twilio_http_log)  # pooled: made inside the loop
    stack.push_async_callback(http.close)
    token = settings.twilio_auth_token.get_secret_value()
    client = Client(settings.twilio_account_sid, token, http_client=http)
    client.api.base_url = settings.twilio_api_base_url.rstrip("/")
    return WhatsAppPromos(
        client, sender=settings.twilio_whatsapp_from, contacts=contacts, clock=clock
    )


def broadcaster(
    settings: Settings,
    campaigns: SqlCampaigns,
    channels: Channels,
    on_outcome: Callable[[RecipientState], None] = lambda _state: None,
) -> Broadcaster:
    """A broadcaster paced by the settings."""
    return Broadcaster(
        campaigns, channels, limiters(settings),
        concurrency=settings.promo_concurrency, on_outcome=on_outcome,
    )  # fmt: skip
