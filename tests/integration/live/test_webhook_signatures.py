"""S1: a webhook that fails verification is refused before anything is parsed, written or sent."""

from __future__ import annotations

import time

import pytest

from tests.integration.live.conftest import World, database_of, order_rows, post_webhook

OTHER_SECRET = "whsec_someone_else"


def _cases(world: World, payload: bytes) -> dict[str, tuple[bytes, str | None]]:
    sign = world.stripe.sign
    changed = bytearray(payload)
    changed[len(changed) // 2] ^= 1  # one byte of the body changed after signing
    valid = sign(payload)
    stale = sign(payload, at=int(time.time()) - 301)
    wrong = sign(payload, secret=OTHER_SECRET)
    return {
        "missing": (payload, None),
        "malformed": (payload, "not-a-signature"),
        "wrong secret": (payload, wrong),
        "v0 only": (payload, valid.replace("v1=", "v0=")),
        "body changed by one byte": (bytes(changed), valid),
        "timestamp 301 s old": (payload, stale),
    }


@pytest.mark.parametrize(
    "case",
    ["missing", "malformed", "wrong secret", "v0 only", "body changed by one byte",
     "timestamp 301 s old"],
)  # fmt: skip
async def test_an_invalid_signature_gets_400_with_no_writes_and_no_calls(world: World, case):
    bot = await world.start()
    order_id, session_id = await world.order_paid(bot)
    payload = world.stripe.event("checkout.session.completed", session_id)
    body, signature = _cases(world, payload)[case]
    database = database_of(world)
    rows, calls = (await order_rows(database)), world.stripe.outbound

    response = await post_webhook(bot.client, body, signature)

    assert response.status_code == 400
    assert (await order_rows(database)) == rows
    assert world.stripe.outbound == calls
    assert world.reloadly.posts == {}
    assert (await bot.services.orders.get(order_id)).state.value == "awaiting_payment"


async def test_two_v1_signatures_of_which_one_is_valid_are_accepted(world: World):
    bot = await world.start()
    order_id, session_id = await world.order_paid(bot)
    payload = world.stripe.event("checkout.session.completed", session_id)
    valid = world.stripe.sign(payload)
    wrong_v1 = world.stripe.sign(payload, secret=OTHER_SECRET).split(",")[1]

    response = await post_webhook(bot.client, payload, f"{valid},{wrong_v1}")
    await bot.services.worker.run_once()

    assert response.status_code == 200
    assert world.reloadly.posts == {order_id: 1}
