"""Send one promo campaign to its recipients: at most once each, paced per channel, resumable.

A crash may come between any two lines, so every recipient row moves forward in its own commit:
``pending`` → ``sending`` (claimed right before its message goes out) → an outcome (written right
after). A resumed campaign first turns the rows left in ``sending`` into ``unknown`` and never
sends them again: a message whose fate is unknown may have arrived, and a promo is not worth a
duplicate. Recipients are read in pages by id (keyset), so memory does not grow with the audience.

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

    async def claim(self, recipient_ids: Sequence[int]) -> Mapping[int, RecipientState]:
        """Mark pending rows ``sending`` where the customer may still get promos.

        Maps each row that was pending to SENDING, or to the final state written when the
        customer opted out or blocked us since the audience was drawn; other rows are left out.
        """

    async def settle(self, recipient_id: int, state: RecipientState) -> None:
        """Record the outcome of a row in ``sending`` (durable by the next claim or finish)."""

    async def finish(self, campaign_id: int) -> None:
        """Mark the campaign done once no row is pending."""


class RateLimiter:
    """At most ``rate`` sends per second overall, and per chat at least ``per_chat`` seconds apart.

    Each caller books the next free slot (no await between reading and booking, so concurrent
    callers never share one) and sleeps until it. The provider counts arrivals, which fall
    between our send and its answer; a late event loop can bunch them. So a sliding one-second
    window also counts each send until one second after its answer: never more than ``rate``
    can arrive in any second. ``pause`` pushes every slot back after a 429.
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

    def pause(self, seconds: float) -> None:
        """Send nothing more for ``seconds`` (the channel answered 429)."""
        self._next = max(self._next, self._clock() + seconds)

    async def _acquire(self, chat: str | None) -> list[float]:
        now = self._clock()
        at = max(now, self._next, self._chat_ready(chat))
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
    claim_batch: int = 16
    max_retries: int = 5
    on_outcome: Callable[[RecipientState], None] = lambda _state: None
    counts: Counter[str] = field(default_factory=Counter)

    async def run(self, campaign_id: int, promo: Promo) -> Counter[str]:
        """Send to every pending recipient; return the outcomes of this run, and ``retried``."""
        self.counts["unknown"] += await self.campaigns.reset_in_flight(campaign_id)
        queue: asyncio.Queue[Recipient | None] = asyncio.Queue(maxsize=self.claim_batch)
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
        after = 0
        while page := await self.campaigns.pending(campaign_id, after=after, limit=self.page_size):
            for start in range(0, len(page), self.claim_batch):
                await self._claim(page[start : start + self.claim_batch], queue)
            after = page[-1].id
        for _ in range(self.concurrency):
            await queue.put(None)  # one stop per worker

    async def _claim(
        self, chunk: Sequence[Recipient], queue: asyncio.Queue[Recipient | None]
    ) -> None:
        # Claimed just before sending, a small batch at a time: a crash leaves at most a few
        # batches in "sending" (then "unknown"), and one commit serves a whole batch.
        claimed = await self.campaigns.claim([recipient.id for recipient in chunk])
        for recipient in chunk:
            state = claimed.get(recipient.id)
            if state is RecipientState.SENDING:
                await queue.put(recipient)
            elif state is not None:
                self._count(state)

    async def _work(self, queue: asyncio.Queue[Recipient | None], promo: Promo) -> None:
        while (recipient := await queue.get()) is not None:
            state = await self._send(recipient, promo)
            await self.campaigns.settle(recipient.id, state)
            self._count(state)

    def _count(self, state: RecipientState) -> None:
        self.counts[state.value] += 1
        self.on_outcome(state)

    async def _send(self, recipient: Recipient, promo: Promo) -> RecipientState:
        channel = self.channels.get(recipient.key.channel)
        limiter = self.limiters.get(recipient.key.channel)
        if channel is None or limiter is None:
            return RecipientState.SKIPPED  # the channel is not configured here
        for _ in range(self.max_retries + 1):
            try:
                async with limiter.slot(recipient.key.chat_id):
                    return await channel.deliver(recipient.key, promo)
            except RetryLater as refusal:
                self.counts["retried"] += 1
                limiter.pause(refusal.seconds)
            except Exception:
                # The request may have left: at most once means it is not sent again.
                logger.exception("promo to %s failed", mask_chat(recipient.key))
                return RecipientState.UNKNOWN
        return RecipientState.FAILED
