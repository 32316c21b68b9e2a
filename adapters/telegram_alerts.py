"""TelegramAlerts: operator alerts logged and also sent to each operator's Telegram chat.

It implements the core's ``Alerts`` port beside ``LogAlerts``: the log line is always written
first, so an alert survives a Telegram outage; callers pass no personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from telegram import Bot
from telegram.error import TelegramError

from adapters.log_alerts import LogAlerts

logger = logging.getLogger(__name__)


class TelegramAlerts:
    """Alerts for the operators in ADMIN_TELEGRAM_IDS (each must have written to the bot once)."""

    def __init__(self, bot: Bot, operators: Iterable[int], log: LogAlerts) -> None:
        self._bot = bot
        self._operators = sorted(operators)
        self._log = log

    async def alert(self, what: str, *, order_id: str | None = None) -> None:
        """Log the alert, then message every operator; a failed message is logged, not raised."""
        await self._log.alert(what, order_id=order_id)
        text = f"⚠️ Alerta de RecargaBot: {what} (pedido {order_id or '-'})"
        for operator in self._operators:
            try:
                await self._bot.send_message(operator, text)
            except TelegramError as error:
                logger.warning("alert not delivered to an operator: %s", type(error).__name__)
