"""Telegram /promo for the operators in ADMIN_TELEGRAM_IDS: preview, confirm, send.

``/promo <texto>`` stores a draft campaign for every configured channel and answers with the
message as customers will read it, the audience per channel and two buttons. Only "Enviar"
starts it (a conditional draft → sending change, so a double tap sends once); the campaign then
runs in the background, and ``recargabot promo status|resume`` follow it. Anyone else is refused,
logged (masked id) and written to the audit log; their buttons are refused the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telegram import Update, User
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.promos import configured, run_campaign
from bot.settings import Settings
from bot.telegram_handlers import NOT_ADMIN, AuditLog, chat_key
from conversations.broadcast import Promo
from conversations.masking import mask_chat
from conversations.messages import Option, Reply
from conversations.model import Channel, ChatKey
from conversations.ports import Contacts, Messenger
from storage.campaigns import Audience, SqlCampaigns
from storage.db import Sessions

logger = logging.getLogger(__name__)

SEND, CANCEL = "promo:send:", "promo:cancel:"
USAGE = "Escribe /promo seguido del mensaje, por ejemplo: /promo ¡Doble de megas este sábado!"


@dataclass
class PromoAdmin:
    """The /promo command and its confirmation buttons."""

    admins: frozenset[int]
    campaigns: SqlCampaigns
    messenger: Messenger
    send_campaign: Callable[[int], Coroutine[Any, Any, None]]
    channels: tuple[Channel, ...]
    clock: Callable[[], datetime]
    audit: AuditLog | None = None
    running: set[asyncio.Task[None]] = field(default_factory=set)

    def handlers(self) -> tuple[BaseHandler[Any, Any, Any], ...]:
        """Handlers to register before the chat's own (they would take /promo as text)."""
        return (
            CommandHandler("promo", self.promo),
            CallbackQueryHandler(self.button, pattern=f"^({SEND}|{CANCEL})"),
        )

    async def promo(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        """Preview a new campaign to an admin, with Enviar / Cancelar buttons."""
        key = chat_key(update)
        assert key is not None, "first_delivery stops updates without a chat"
        user = update.effective_user
        if not await self._allowed(user, "promo", key) or user is None:  # no user: not allowed
            return
        message = update.effective_message
        text = ((message.text if message else None) or "").partition(" ")[2].strip()
        if not text or not self.channels:
            await self.messenger.send(key, Reply(USAGE if text == "" else "Sin canales."))
            return
        audience = Audience(self.channels)
        author = mask_chat(ChatKey(Channel.TELEGRAM, str(user.id)))
        campaign_id = await self.campaigns.create(Promo(text), audience, created_by=author)
        sizes = await self.campaigns.audience_size(audience)
        await self.messenger.send(key, _preview(campaign_id, text, sizes))

    async def button(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        """Start (once) or drop the previewed campaign."""
        query, key = update.callback_query, chat_key(update)
        assert query is not None and key is not None
        await query.answer()
        if not await self._allowed(update.effective_user, "promo_send", key):
            return
        data = query.data or ""
        campaign_id = int(data.rsplit(":", 1)[1])
        if data.startswith(CANCEL):
            await self.messenger.send(key, Reply(f"Campaña {campaign_id} descartada."))
            return
        if not await self.campaigns.start(campaign_id):
            await self.messenger.send(key, Reply(f"La campaña {campaign_id} ya se envió."))
            return
        task = asyncio.get_running_loop().create_task(self.send_campaign(campaign_id))
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        await self.messenger.send(key, Reply(f"Enviando la campaña {campaign_id}…"))

    async def _allowed(self, user: User | None, action: str, key: ChatKey) -> bool:
        allowed = user is not None and user.id in self.admins
        if self.audit:
            actor = f"telegram:{user.id if user else '?'}"
            await self.audit.record(actor=actor, action=action, allowed=allowed, at=self.clock())
        if not allowed:
            who = mask_chat(ChatKey(Channel.TELEGRAM, str(user.id if user else "")))
            logger.warning("refused /%s from user %s", action, who)
            await self.messenger.send(key, Reply(NOT_ADMIN))
        return allowed


def _preview(campaign_id: int, text: str, sizes: dict[str, int]) -> Reply:
    audience = ", ".join(f"{channel}: {size}" for channel, size in sizes.items())
    total = sum(sizes.values())
    return Reply(
        f"Vista previa de la campaña {campaign_id}:\n\n{text}\n\n"
        f"Audiencia (suscritos y alcanzables): {audience}.",
        (Option(f"{SEND}{campaign_id}", f"Enviar a {total}"),
         Option(f"{CANCEL}{campaign_id}", "Cancelar")),
    )  # fmt: skip


def promo_admin(
    settings: Settings,
    sessions: Sessions,
    *,
    contacts: Contacts,
    messenger: Messenger,
    clock: Callable[[], datetime],
    audit: AuditLog | None = None,
) -> PromoAdmin:
    """The /promo command wired to the database and the promo senders of the settings."""
    campaigns = SqlCampaigns(sessions, clock=clock)

    async def send_campaign(campaign_id: int) -> None:
        await run_campaign(settings, campaigns, contacts, clock, campaign_id)

    return PromoAdmin(
        settings.admin_telegram_ids, campaigns, messenger, send_campaign, configured(settings),
        clock, audit,
    )  # fmt: skip
