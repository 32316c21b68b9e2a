"""Send one promo campaign to its recipients: at most once each, paced per channel, resumable.

A crash may come between any two lines, so each move of a recipient row is committed before the
sender goes on: ``pending`` → ``sending`` (inside the send's rate-limit slot, right before its
request leaves) → an outcome (right after the answer). A 429 puts the row back to ``pending``:
nothing was sent. So a crash leaves in ``sending`` only the rows whose request may have left, at
most one per worker; a resumed campaign turns them into ``unknown`` and never sends them again (a
message whose fate is unknown may have arrived, and a promo is not worth a duplicate). Rows read
but not yet sent stay ``pending``. Recipients are read in pages by id (keyset), so memory does not
grow with the audience.

Promos are paced by a token bucket of our own per channel, set below the channel's limit; the
customers' own replies (payment links, confirmations) never wait for it, which keeps them fast
while a campaign runs. A 429 pauses the whole channel for its ``retry_after`` and is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from conversations.masking import mask_chat
from conversations.model import Channel, ChatKey

logger = logging.getLogger(__name__)


class RecipientState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed: its message may be on its way
    SENT = "sent"
    FAILED = "failed"  # the channel refused it: not delivered
    BLOCKED = "blocked"  # the customer blocked the bot (Telegram 403, Twilio 63014)
    OPTED_OUT = "opted_out"  # BAJA / STOP / Twilio 21610, or the opt-in was withdrawn
    SKIPPED = "skipped"  # outside WhatsApp's 24-hour window and no template given
    UNKNOWN = "unknown"  # the send's outcome was never recorded: not sent again


FINAL = frozenset(RecipientState) - {RecipientState.PENDING, RecipientState.SENDING}


@dataclass(frozen=True)
class Promo:
    """What a campaign sends; the WhatsApp template is used outside the 24-hour window."""

    text: str
    image_url: str | None = None
    template_sid: str | None = None
    template_vars: str | None = None  # JSON object of the template's variables


@dataclass(frozen=True)
class Recipient:
    id: int
    key: ChatKey


class RetryLater(Exception):
    """The channel said 429: nothing was sent; try again after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds} s")
        self.seconds = seconds


class PromoChannel(Protocol):
    async def deliver(self, key: ChatKey, promo: Promo) -> RecipientState:
        """Send the promo once; return its outcome, or raise RetryLater on a 429."""


class Campaigns(Protocol):
    async def reset_in_flight(self, campaign_id: int) -> int:
        """Turn rows left in ``sending`` by an interrupted run into ``unknown``; return how many."""

    async def pending(self, campaign_id: int, *, after: int, limit: int) -> Sequence[Recipient]:
        """The next pending recipients with an id above ``after``, by id."""

    async def claim(self, recipient_id: int) -> RecipientState | None:
        """Commit a pending row as ``sending``, right before its request leaves.

        SENDING if the promo may go out; the final state written instead when the customer opted
        out or blocked us since the audience was drawn; None if the row is no longer pending.
        """

    async def release(self, recipient_id: int) -> None:
        """Put a row in ``sending`` back to ``pending``: the channel said 429, nothing left."""

    async def settle(self, recipient_id: int, state: RecipientState) -> None:
        """Commit the outcome of a row in ``sending``, right after its answer."""

    async def give_up(self, recipient_id: int, state: RecipientState) -> bool:
        """Give a pending row a final state without sending it; False if it is not pending."""

    async def finish(self, campaign_id: int) -> None:
        """Mark the campaign done once no row is pending."""


class RateLimiter:
    """At most ``rate`` sends per second overall, and per chat at least ``per_chat`` seconds apart.

    Each caller waits out its chat's spacing, then books the next free slot (no await between
    reading and booking, so concurrent callers never share one) and sleeps until it. The
    provider counts arrivals, which fall between our send and its answer; a late event loop can
    bunch them. So a sliding one-second window also counts each send until one second after its
    answer: never more than ``rate`` can arrive in any second. ``pause`` pushes every slot back
    after a 429.
    """

    def __init__(
        self,
        rate: float,
        *,
        per_chat: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self.per_chat = per_chat
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._chats: dict[str, float] = {}
        self._capacity = max(1, int(rate))  # sends in any one-second window
        self._window: deque[list[float]] = deque()  # [time counted from], oldest first

    @asynccontextmanager
    async def slot(self, chat: str | None = None) -> AsyncIterator[None]:
        """Wait for this send's turn; the send happens inside the block."""
        entry = await self._acquire(chat)
        try:
            yield
        finally:
            entry[0] = self._clock()  # counted until a second after the answer

    def pause(self, seconds: float, chat: str | None = None) -> None:
        """Send nothing more for ``seconds``: the channel answered 429 (to ``chat``, if given).

        The refused send did not arrive, so its chat's spacing does not count it.
        """
        self._next = max(self._next, self._clock() + seconds)
        if chat is not None:
            self._chats.pop(chat, None)

    async def _acquire(self, chat: str | None) -> list[float]:
        # A chat's own spacing is waited out before booking: it holds up no other chat.
        while (wait := self._chat_ready(chat) - self._clock()) > 0:
            await self._sleep(wait)
        now = self._clock()
        at = max(now, self._next)
        self._next = at + self.interval
        if chat is not None and self.per_chat:
            self._chats[chat] = at
            self._forget_old(now)
        if at > now:
            await self._sleep(at - now)
        return await self._within_window()

    async def _within_window(self) -> list[float]:
        while True:
            now = self._clock()
            while self._window and now - self._window[0][0] >= 1.0:
                self._window.popleft()
            if len(self._window) < self._capacity:
                entry = [now]
                self._window.append(entry)
                return entry
            await self._sleep(max(self._window[0][0] + 1.0 - now, 0.001))

    def _chat_ready(self, chat: str | None) -> float:
        last = self._chats.get(chat) if chat is not None else None
        return 0.0 if last is None else last + self.per_chat

    def _forget_old(self, now: float) -> None:
        # Bounded memory: only chats sent to within the last interval matter.
        if len(self._chats) > 4096:
            self._chats = {c: t for c, t in self._chats.items() if t + self.per_chat > now}


@dataclass
class Broadcaster:
    """Run one campaign through the channels' promo senders; safe to run again after a crash."""

    campaigns: Campaigns
    channels: Mapping[Channel, PromoChannel]
    limiters: Mapping[Channel, RateLimiter]
    concurrency: int = 16
    page_size: int = 200
    max_retries: int = 5
    on_outcome: Callable[[RecipientState], None] = lambda _state: None
    counts: Counter[str] = field(default_factory=Counter)

    async def run(self, campaign_id: int, promo: Promo) -> Counter[str]:
        """Send to every pending recipient; return the outcomes of this run, and ``retried``."""
        self.counts["unknown"] += await self.campaigns.reset_in_flight(campaign_id)
        queue: asyncio.Queue[Recipient | None] = asyncio.Queue(maxsize=self.concurrency)
        workers = [asyncio.create_task(self._work(queue, promo)) for _ in range(self.concurrency)]
        feeder = asyncio.create_task(self._feed(campaign_id, queue))
        try:
            # Any task failing stops the run (the rest are cancelled): a resume picks it up.
            await asyncio.gather(feeder, *workers)
        finally:
            for task in (feeder, *workers):
                task.cancel()
        await self.campaigns.finish(campaign_id)
        return self.counts

    async def _feed(self, campaign_id: int, queue: asyncio.Queue[Recipient | None]) -> None:
        # Reads only: the rows waiting here and in the queue stay pending if the run dies.
        after = 0
        while page := await self.campaigns.pending(campaign_id, after=after, limit=self.page_size):
            for recipient in page:
                await queue.put(recipient)
            after = page[-1].id
        for _ in range(self.concurrency):
            await queue.put(None)  # one stop per worker

    async def _work(self, queue: asyncio.Queue[Recipient | None], promo: Promo) -> None:
        while (recipient := await queue.get()) is not None:
            state = await self._send(recipient, promo)
            if state is not None:
                self._count(state)

    def _count(self, state: RecipientState) -> None:
        self.counts[state.value] += 1
        self.on_outcome(state)

    async def _send(self, recipient: Recipient, promo: Promo) -> RecipientState | None:
        """Retry 429s up to ``max_retries`` times; None if another run took the row."""
        channel = self.channels.get(recipient.key.channel)
        limiter = self.limiters.get(recipient.key.channel)
        if channel is None or limiter is None:  # the channel is not configured here
            return await self._give_up(recipient, RecipientState.SKIPPED)
        for _ in range(self.max_retries + 1):
            try:
                return await self._attempt(recipient, promo, channel, limiter)
            except RetryLater as refusal:
                self.counts["retried"] += 1
                limiter.pause(refusal.seconds, recipient.key.chat_id)
                await self.campaigns.release(recipient.id)
        return await self._give_up(recipient, RecipientState.FAILED)

    async def _attempt(
        self, recipient: Recipient, promo: Promo, channel: PromoChannel, limiter: RateLimiter
    ) -> RecipientState | None:
        """One request; its row reads ``sending`` only from just before it to its answer."""
        async with limiter.slot(recipient.key.chat_id):
            claimed = await self.campaigns.claim(recipient.id)
            if claimed is not RecipientState.SENDING:
                return claimed  # taken by another run, or no promos for them any more
            state = await _deliver(channel, recipient, promo)
        await self.campaigns.settle(recipient.id, state)
        return state

    async def _give_up(self, recipient: Recipient, state: RecipientState) -> RecipientState | None:
        return state if await self.campaigns.give_up(recipient.id, state) else None


async def _deliver(channel: PromoChannel, recipient: Recipient, promo: Promo) -> RecipientState:
    """The channel's outcome; an unexpected error is UNKNOWN (RetryLater passes through)."""
    try:
        return await channel.deliver(recipient.key, promo)
    except RetryLater:
        raise
    except Exception:
        # The request may have left: at most once means it is not sent again.
        logger.exception("promo to %s failed", mask_chat(recipient.key))
        return RecipientState.UNKNOWN
