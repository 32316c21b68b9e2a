"""P7: the process dies at each labelled point of fulfilment; a fresh process on the same database
finishes the order with one reconciler pass (its start-up pass) and never tops up twice.

The work dies where it runs: in the paid webhook's own push of its order (its background task).
Death is simulated from the outside, with no hook in production code: either the fake provider
holds a request and the webhook's task is cancelled while it waits, or a SQLAlchemy event on the
dying process's engine aborts with a ``BaseException`` that nothing in the bot catches.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any

import pytest
from sqlalchemy import event

from conversations.model import OrderState
from tests.integration.live.conftest import Bot, World, database_of, order_rows


class Killed(BaseException):
    """The process died here."""


async def _die_while_held(world: World, webhook: Awaitable[Any]) -> None:
    work = asyncio.ensure_future(webhook)
    await asyncio.wait_for(world.reloadly.arrived.wait(), 10)  # the webhook's push tops up
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work


def _kill_on_completion(bot: Bot, *, at_commit: bool) -> None:
    """Abort when the order is written completed (or when that write is about to commit)."""
    engine, pending = bot.services.engine.sync_engine, []

    def before_execute(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("UPDATE orders") and OrderState.COMPLETED.value in params:
            if not at_commit:
                raise Killed
            pending.append(True)

    def commit(conn: Any) -> None:
        if pending:
            raise Killed

    event.listen(engine, "before_cursor_execute", before_execute)
    event.listen(engine, "commit", commit)


async def _die_at(point: str, world: World, bot: Bot, session_id: str) -> None:
    webhook = world.deliver(bot, "checkout.session.completed", session_id)
    if point == "after_claim":  # claimed, nothing sent: the operator look-up never answers
        world.reloadly.gate_detect = True
        await _die_while_held(world, webhook)
        world.reloadly.gate_detect = False
    elif point == "after_topup_sent":  # the provider credited; its answer never came back
        world.reloadly.outcomes("987654321", "hang")
        await _die_while_held(world, webhook)
    else:  # the answer arrived: die before writing it, or before committing the write
        _kill_on_completion(bot, at_commit=point == "before_commit")
        with pytest.raises(Killed):
            await webhook


@pytest.mark.parametrize(
    "point", ["after_claim", "after_topup_sent", "after_topup_ack", "before_commit"]
)
async def test_a_crash_at_each_point_ends_completed_with_at_most_one_top_up(
    world: World, point: str
):
    dying = await world.start()
    order_id, session_id = await world.order_paid(dying)

    await _die_at(point, world, dying, session_id)
    await dying.services.engine.dispose()  # as the OS would: its connections and locks go
    rows = await order_rows(database_of(world))
    [crashed_in] = [row["state"] for row in rows if row["id"] == order_id]
    world.clock.advance(minutes=3)  # the claim of the dead process is now stale
    restarted = await world.start()  # its start-up pass is the one reconciler pass

    assert crashed_in == OrderState.TOPPING_UP
    assert (await restarted.services.orders.get(order_id)).state is OrderState.COMPLETED
    assert world.reloadly.posts[order_id] <= 1
    assert world.reloadly.credited == {order_id: 1000}
    assert sum("Recarga exitosa" in t for t in restarted.customer.texts()) == 1
    assert world.stripe.refunds == {}
