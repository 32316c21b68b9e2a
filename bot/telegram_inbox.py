"""The Telegram webhook and its inbox: an update is handled or kept before Telegram's 200.

In webhook mode (``PUBLIC_BASE_URL`` set) the Application has no Updater: the Starlette route
checks the secret header and gives the update to ``UpdateInbox``. When this process can hold the
chat and none of its updates wait, the update is handled in the request, and the chat's save
records its delivery: one write. The chat may be held here by the update before it, still sending
its reply (a customer who types fast, a double tap): the update waits for it, up to
``HOLDER_WAIT``. Otherwise it is kept in the database before the 200, so a chat's updates are
handled in update_id order even when they reach different replicas; keeping it records the
delivery too, so ``first_delivery`` only stops updates without a chat. An update that
carries a card number is never kept: it goes straight to the handlers, whose guard drops it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response
from telegram import Update

from bot.telegram_handlers import STORED, BotApplication, answer_button, chat_key, private
from conversations.cards import has_card_number
from conversations.masking import mask_chat
from conversations.model import ChatKey
from conversations.ports import ChatLocks

logger = logging.getLogger(__name__)

SECRET_HEADER = "x-telegram-bot-api-secret-token"
PARSED_KEPT = 1_000  # parsed updates held for their drain (UpdateInbox)
LEFT_AFTER = timedelta(seconds=30)  # kept this long: the replica that accepted it died
# Seconds an update waits for the one update of its chat this process handles, before it is kept
# instead: keeping costs two writes (keep, take), and the holder is most often sending its reply.
HOLDER_WAIT = 1.0


class Seen(Protocol):
    @property
    def delivered(self) -> bool: ...
    @property
    def waiting(self) -> bool: ...


class PendingUpdates(Protocol):
    async def add(self, key: ChatKey, update_id: int, body: str, *, at: datetime) -> bool: ...
    async def take(self, key: ChatKey) -> tuple[str | None, bool]: ...
    async def seen(self, key: ChatKey, update_id: int) -> Seen: ...
    async def chats(self, *, kept_before: datetime | None = None) -> list[ChatKey]: ...


@dataclass
class UpdateInbox:
    """Webhook updates go to the database before Telegram gets its 200; then the replica that
    holds the chat's lock handles the chat's kept updates by update_id, wherever each arrived.

    So a chat's order holds across replicas, and an accepted update survives a crash (kept
    updates are taken up again at start-up).
    """

    application: BotApplication = field(repr=False)  # PTB's repr of it prints the bot token
    pending: PendingUpdates
    locks: ChatLocks
    clock: Callable[[], datetime]
    holder_wait: float = HOLDER_WAIT
    # The updates this replica kept, as the webhook parsed them, until its drain takes them:
    # parsing each one again there was about 6% of an update's instructions (bench/). Bounded,
    # because another replica may take an update instead.
    _parsed: dict[int, Update] = field(default_factory=dict, init=False)

    async def accept(self, update: Update, body: str) -> None:
        """Handle the update now if this process can hold its chat (at once, or soon after the
        one update it handles) and nothing of the chat waits; else keep it, and handle its chat's
        updates in the background."""
        key = chat_key(update)
        # Nothing to order; a group or channel, where nothing is kept; or a card number typed by
        # mistake, which must never reach the disk (the handlers' guard drops it and warns):
        # straight to the handlers.
        if key is None or not private(update) or carries_card(update):
            await self.application.update_queue.put(update)
            return
        stored = asyncio.get_running_loop().create_future()
        self.application.create_task(self._handle_or_keep(key, update, body, stored), update=update)
        await stored  # Telegram's 200 once the update is saved or kept, not after the replies

    async def _handle_or_keep(
        self, key: ChatKey, update: Update, body: str, stored: asyncio.Future[None]
    ) -> None:
        """Handle the update if the chat is free (or freed soon), else keep it; ``stored`` is
        done as soon as the update is saved or kept (or with the error that stopped it)."""

        def saved() -> None:
            if not stored.done():
                stored.set_result(None)

        try:
            async with self.locks.hold_now(key, within=self.holder_wait) as held:
                if held:
                    seen = await self.pending.seen(key, update.update_id)
                    if seen.delivered:
                        await self._repeated(key, update)
                        return
                    if not seen.waiting:
                        # The common path: one write, the chat's save, which records the delivery
                        # too. A crash before it leaves Telegram without its 200: it sends it
                        # again.
                        token = STORED.set(saved)
                        try:
                            await self.application.process_update(update)
                        finally:
                            STORED.reset(token)
                        return
                    # Behind kept ones: stored while held, so that the drain next in line here
                    # cannot take a later kept update before this one is in.
                    added = await self._stored(key, update, body)
            if not held:
                added = await self._stored(key, update, body)
            if added:  # drained by a task started out here: it must take the chat itself
                self.application.create_task(self.drain(key), update=update)
            else:
                await self._repeated(key, update)
        except asyncio.CancelledError:
            stored.cancel()
            raise
        except Exception as error:
            if not stored.done():
                stored.set_exception(error)
            raise
        finally:
            saved()

    async def _stored(self, key: ChatKey, update: Update, body: str) -> bool:
        """Keep the update for its chat's drain, behind the chat's kept ones or its holder;
        False if it was delivered before."""
        if not await self.pending.add(key, update.update_id, body, at=self.clock()):
            return False
        if len(self._parsed) >= PARSED_KEPT:
            del self._parsed[next(iter(self._parsed))]  # the oldest
        self._parsed[update.update_id] = update
        return True

    async def _repeated(self, key: ChatKey, update: Update) -> None:
        logger.info("update %s repeated for %s: ignored", update.update_id, mask_chat(key))
        await answer_button(update.callback_query)  # the button's spinner stops all the same

    async def drain(self, key: ChatKey) -> None:
        """Handle the chat's kept updates, oldest first, while holding the chat."""
        async with self.locks.hold(key):
            more = True
            while more:
                body, more = await self.pending.take(key)
                if body is None:  # another drain took it first
                    return
                data = json.loads(body)
                update = self._parsed.pop(data["update_id"], None)
                if update is None:  # kept by another replica, or before a restart
                    update = Update.de_json(data, self.application.bot)
                await self.application.process_update(update)

    async def resume(self, *, kept_before: datetime | None = None) -> None:
        """Take up the updates a crashed or stopped replica left kept: all of them at start-up;
        from the worker's pass, those kept before ``kept_before`` (another replica that is alive
        takes its own within moments, and a second drain of a chat only waits for the first)."""
        for key in await self.pending.chats(kept_before=kept_before):
            self.application.create_task(self.drain(key))


def carries_card(update: Update) -> bool:
    """True if what the customer typed, captioned or pressed holds a card number."""
    message, query = update.effective_message, update.callback_query
    typed = (message.text, message.caption) if message else ()
    return any(has_card_number(text) for text in (*typed, query.data if query else None) if text)


def telegram_webhook(inbox: UpdateInbox, secret: str) -> Callable[[Request], Awaitable[Response]]:
    """Build the route Telegram posts updates to."""

    async def endpoint(request: Request) -> Response:
        """Check the secret header in constant time, keep the update and answer at once."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            logger.warning("telegram webhook with a missing or wrong secret token")
            return Response(status_code=403)
        try:
            body = (await request.body()).decode()
            data = json.loads(body)
            # A JSON body that is not an object, or an object of the wrong shape, is not an update.
            bot = inbox.application.bot
            update = Update.de_json(data, bot) if isinstance(data, dict) else None
        except (ValueError, KeyError, TypeError, AttributeError):
            update = None
        if update is None:
            return Response(status_code=400)
        await inbox.accept(update, body)
        return Response()

    return endpoint
