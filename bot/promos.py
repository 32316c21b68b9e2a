"""Promo campaign wiring shared by ``recargabot promo`` and the Telegram /promo command.

The promo senders get HTTP clients of their own, opened for one run and closed after it: the
Telegram one has no rate limiter of its own (the broadcaster paces promos and sees every 429),
so the bot's replies to customers, on the Application's rate-limited bot, never queue behind a
campaign. Pace settings live in ``Settings`` (PROMO_*).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime

from telegram import Bot
from telegram.constants import MessageLimit
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from adapters.aiohttp_request import AiohttpRequest
from adapters.promo_channels import TelegramPromos, WhatsAppPromos
from bot.settings import Settings
from conversations.broadcast import Broadcaster, Promo, PromoChannel, RateLimiter, RecipientState
from conversations.model import Channel
from conversations.ports import Contacts
from storage.campaigns import Audience, SqlCampaigns

logger = logging.getLogger(__name__)
_twilio_http_log = logging.getLogger(f"{__name__}.twilio_http")
_twilio_http_log.setLevel(logging.WARNING)  # twilio logs request URLs next to phone numbers

Channels = dict[Channel, PromoChannel]
CHANNELS = {"telegram": (Channel.TELEGRAM,), "whatsapp": (Channel.WHATSAPP,)}


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


async def run_campaign(
    settings: Settings, campaigns: SqlCampaigns, contacts: Contacts,
    clock: Callable[[], datetime], campaign_id: int,
) -> None:  # fmt: skip
    """Send a started campaign to its pending recipients in the background; a failure is logged
    and the campaign left for ``recargabot promo resume`` (or the console's Reanudar)."""
    campaign = await campaigns.get(campaign_id)
    assert campaign is not None
    try:
        async with promo_channels(settings, contacts, clock) as channels:
            counts = await broadcaster(settings, campaigns, channels).run(
                campaign_id, campaign.promo
            )
        logger.info("campaign %s sent: %s", campaign_id, dict(counts))
    except Exception:
        logger.exception("campaign %s stopped: resume it with recargabot promo resume", campaign_id)


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


class UsageError(Exception):
    """A bad combination of options, told to the operator."""


def promo_of(
    text: str, image_url: str | None, template: str | None, variables: str | None
) -> Promo:
    """Check a promo's parts as the CLI and the web console take them; UsageError if wrong."""
    if not text.strip():
        raise UsageError("--text no puede estar vacío")
    if variables is not None:
        if template is None:
            raise UsageError("--template-vars necesita --whatsapp-template")
        variables = json.dumps(_json_object(variables), ensure_ascii=False)
    if template and not template.startswith("HX"):
        raise UsageError("--whatsapp-template debe ser un Content SID (HX…)")
    if image_url is not None:
        _check_image(image_url, text.strip())
    return Promo(text.strip(), image_url, template, variables)


def _check_image(url: str, text: str) -> None:
    """An image both channels can fetch, under a caption Telegram will not cut."""
    if not url.startswith("https://"):
        raise UsageError("--image-url debe ser una URL https:// pública (Twilio la descarga)")
    limit = MessageLimit.CAPTION_LENGTH
    if len(text) > limit:  # Telegram would cut the caption short
        raise UsageError(f"con imagen, --text es el pie de foto: {limit} caracteres como máximo")


def _json_object(text: str) -> dict[str, str]:
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise UsageError('--template-vars debe ser un objeto JSON de textos: {"1": "…"}')
    return parsed


def audience_of(
    settings: Settings, channel: str, inactive_days: int | None, *, recharged: bool
) -> Audience:
    """The audience of the CLI's filters, on the configured channels; UsageError if none."""
    wanted = CHANNELS.get(channel, (Channel.TELEGRAM, Channel.WHATSAPP))
    channels = tuple(c for c in wanted if c in configured(settings))
    if not channels:
        raise UsageError(f"canal no configurado: {channel}")
    if inactive_days is not None and inactive_days < 1:
        raise UsageError("--inactive-days debe ser 1 o más")
    return Audience(channels, inactive_days, recharged)
