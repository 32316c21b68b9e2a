"""A Telegram user as the bot sees one: updates posted to the webhook as Telegram posts them."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette

from bot.app import Services
from bot.telegram_app import WEBHOOK_PATH
from bot.telegram_inbox import SECRET_HEADER
from tests.fake_telegram import Call, FakeBotApi
from tests.service.chat import TEST_CARD

SECRET = "s3cret-token_ok"
_update_ids = itertools.count(10_000)


def message_update(chat_id: int, text: str, update_id: int | None = None) -> dict[str, Any]:
    """A private text message, shaped as Telegram sends it."""
    sender = {"id": chat_id, "is_bot": False, "first_name": f"Cliente {chat_id}"}
    command = text.split(maxsplit=1)[0] if text.startswith("/") else ""
    entities = [{"type": "bot_command", "offset": 0, "length": len(command)}] if command else []
    return {
        "update_id": next(_update_ids) if update_id is None else update_id,
        "message": {
            "entities": entities,
            "message_id": next(_update_ids), "date": int(time.time()), "text": text,
            "chat": {"id": chat_id, "type": "private", "first_name": sender["first_name"]},
            "from": sender,
        },
    }  # fmt: skip


def button_update(chat_id: int, data: str, update_id: int | None = None) -> dict[str, Any]:
    """A press on an inline button of one of the bot's messages."""
    sender = {"id": chat_id, "is_bot": False, "first_name": f"Cliente {chat_id}"}
    bot_message = {
        "message_id": 1, "date": int(time.time()), "text": "…",
        "chat": {"id": chat_id, "type": "private"},
    }  # fmt: skip
    return {
        "update_id": next(_update_ids) if update_id is None else update_id,
        "callback_query": {
            "id": f"cb{next(_update_ids)}", "from": sender, "chat_instance": str(chat_id),
            "message": bot_message, "data": data,
        },
    }  # fmt: skip


@dataclass
class TelegramUser:
    """One private chat: posts updates to the webhook and reads what the fake Bot API got."""

    app: Starlette
    services: Services
    api: FakeBotApi
    chat_id: int
    latencies: list[float] = field(default_factory=list)
    patience: float = 10.0  # seconds to wait for a reply before the test fails

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="https://bot.test") as http:
            response = await http.post(WEBHOOK_PATH, json=update, headers=headers)
        return response.status_code

    async def send(self, update: dict[str, Any], replies: int = 1) -> list[Call]:
        """Post an update and wait for its replies; note the time to the last one."""
        before = len(self.api.sent(self.chat_id))
        started = time.perf_counter()
        assert await self.post(update) == 200
        delivered = await self.api.wait_sent(self.chat_id, before + replies, self.patience)
        self.latencies.append(delivered[before + replies - 1].at - started)
        return delivered[before:]

    async def say(self, text: str, replies: int = 1) -> list[Call]:
        return await self.send(message_update(self.chat_id, text), replies)

    async def press(self, data: str, replies: int = 1) -> list[Call]:
        return await self.send(button_update(self.chat_id, data), replies)

    async def to_payment_link(self, number: str = "987654321") -> Call:
        """Go from /start to the payment link, pressing the buttons the bot shows."""
        await self.say("/start")
        await self.press("accept")
        await self.say(number)
        await self.say("María Quispe")
        await self.press("doc:dni")
        await self.say("45678912")
        await self.press("kind:saldo")
        await self.press("amount:10")
        return (await self.press("confirm"))[-1]

    async def pay(self, link: Call) -> None:
        """Pay the link's checkout on the sandbox gateway (its signed webhook reaches the app)."""
        session_id = link_url(link).rsplit("/", 1)[-1]
        await self.services.payments.pay(
            session_id, number=TEST_CARD, expiry="12/30", cvc="123", name="MARIA QUISPE"
        )


def buttons(call: Call) -> list[dict[str, Any]]:
    markup = call.params.get("reply_markup") or {"inline_keyboard": []}
    return [button for row in markup["inline_keyboard"] for button in row]


def link_url(call: Call) -> str:
    urls = [b["url"] for b in buttons(call) if "url" in b]
    assert len(urls) == 1, f"expected one URL button, got {buttons(call)}"
    return urls[0]
