"""The outbox's storage: once per id, in order, one sender at a time, pruned once settled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.messages import Link, Option, Reply
from conversations.model import Channel, ChatKey
from conversations.ports import Claim, Outgoing
from storage.outbox import SqlOutbox

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
LEASE = T0 + timedelta(minutes=1)
KEY = ChatKey(Channel.WHATSAPP, "+51987654321")
RICH = Reply("Resumen", (Option("confirm", "Confirmar"),), Link("Pagar", "https://x.test/p"))


async def test_a_message_id_goes_in_once_and_comes_out_whole_in_order(engine: AsyncEngine):
    outbox = SqlOutbox(engine)
    first, second = Outgoing("notice:o1:completed:0", KEY, RICH), Outgoing("r1:0", KEY, Reply("b"))

    await outbox.add([first, second], at=T0)
    await outbox.add([first], at=T0)  # a notice put in again after a crash

    assert await outbox.take(KEY, Claim(False, T0, LEASE)) == [first, second]


async def test_what_one_sender_took_no_other_gets_until_its_lease_ends(engine: AsyncEngine):
    outbox = SqlOutbox(engine)
    await outbox.add([Outgoing(f"m:{n}", KEY, Reply(str(n))) for n in range(3)], at=T0)

    first = await outbox.take(KEY, Claim(True, T0, LEASE))
    second = await outbox.take(KEY, Claim(True, T0, LEASE))
    after_lease = await outbox.take(KEY, Claim(True, LEASE, LEASE + timedelta(minutes=1)))

    assert [m.id for m in first] == ["m:0", "m:1", "m:2"] and second == []
    assert [m.id for m in after_lease] == ["m:0", "m:1", "m:2"]  # that sender crashed


async def test_released_messages_are_due_again_and_sent_ones_are_not(engine: AsyncEngine):
    outbox = SqlOutbox(engine)
    await outbox.add([Outgoing(f"m:{n}", KEY, Reply(str(n))) for n in range(3)], at=T0)
    await outbox.take(KEY, Claim(False, T0, LEASE))
    await outbox.sent("m:0", vendor_id="1", at=T0)
    await outbox.retry("m:1", attempts=1, next_at=T0 + timedelta(seconds=1))

    await outbox.release(["m:2"], next_at=T0 + timedelta(seconds=1))

    again = await outbox.take(KEY, Claim(False, T0, LEASE))
    assert [(m.id, m.attempts) for m in again] == [("m:1", 1), ("m:2", 0)]


async def test_messages_recorded_sent_at_the_same_moment_share_one_transaction(
    engine: AsyncEngine,
):
    outbox = SqlOutbox(engine)
    await outbox.add([Outgoing(f"m:{n}", KEY, Reply(str(n))) for n in range(4)], at=T0)
    await outbox.take(KEY, Claim(False, T0, LEASE))
    commits: list[None] = []
    event.listen(engine.sync_engine, "commit", lambda _: commits.append(None))

    await asyncio.gather(*(outbox.sent(f"m:{n}", vendor_id=str(n), at=T0) for n in range(3)))
    after_them = len(commits)
    await outbox.sent("m:3", vendor_id="3", at=T0)  # alone, later: a transaction of its own

    assert (after_them, len(commits)) == (1, 2)
    after_lease = Claim(False, LEASE, LEASE + timedelta(minutes=1))
    assert await outbox.take(KEY, after_lease) == []  # all four sent: none taken over


async def test_a_batch_that_fails_fails_every_sender_in_it_and_the_next_batch_goes(
    engine: AsyncEngine,
):
    outbox = SqlOutbox(engine)
    await outbox.add([Outgoing("m:0", KEY, Reply("0"))], at=T0)
    await outbox.take(KEY, Claim(False, T0, LEASE))

    def refuse(*_: object) -> None:
        raise RuntimeError("the disk is full")

    event.listen(engine.sync_engine, "commit", refuse)
    together = [outbox.sent("m:0", vendor_id=str(n), at=T0) for n in range(2)]
    failed = await asyncio.gather(*together, return_exceptions=True)
    event.remove(engine.sync_engine, "commit", refuse)
    await outbox.sent("m:0", vendor_id="9", at=T0)

    assert [type(error) for error in failed] == [RuntimeError, RuntimeError]
    after_lease = Claim(False, LEASE, LEASE + timedelta(minutes=1))
    assert await outbox.take(KEY, after_lease) == []


async def test_one_sender_claims_a_message_and_a_crashed_one_is_taken_over(engine: AsyncEngine):
    outbox = SqlOutbox(engine)
    await outbox.add([Outgoing("m:0", KEY, Reply("a"))], at=T0)
    lease = T0 + timedelta(minutes=1)

    won = await outbox.claim("m:0", until=lease, now=T0)
    lost = await outbox.claim("m:0", until=lease, now=T0)
    hidden = await outbox.take(KEY, Claim(True, T0, lease))
    taken_over = await outbox.claim("m:0", until=lease + timedelta(minutes=1), now=lease)

    assert (won, lost, hidden, taken_over) == (True, False, [], True)


async def test_waiting_messages_come_out_only_when_the_customer_wrote(engine: AsyncEngine):
    outbox = SqlOutbox(engine)
    await outbox.add([Outgoing("m:0", KEY, Reply("a"))], at=T0)
    await outbox.wait("m:0", at=T0)

    assert await outbox.take(KEY, Claim(False, T0, LEASE)) == []
    assert [m.id for m in await outbox.take(KEY, Claim(True, T0, LEASE))] == ["m:0"]


async def test_settled_messages_are_pruned_and_unsent_ones_kept(engine: AsyncEngine):
    outbox = SqlOutbox(engine)
    messages = [Outgoing(f"m:{n}", KEY, Reply(str(n))) for n in range(4)]
    await outbox.add(messages, at=T0)
    await outbox.sent("m:0", vendor_id="SM0", at=T0)
    await outbox.give_up("m:1", reason="400", at=T0)
    await outbox.wait("m:2", at=T0)

    pruned = await outbox.prune(before=T0 + timedelta(seconds=1))

    left = await outbox.take(KEY, Claim(True, T0, LEASE))
    assert pruned == 2 and [m.id for m in left] == ["m:2", "m:3"]
