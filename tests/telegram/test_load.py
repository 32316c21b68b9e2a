"""Many chats at once: each completes its purchase, sees only its own data, replies fast."""

from __future__ import annotations

import asyncio
import statistics

from conversations.model import Channel, ChatKey

CHATS = 200


async def test_200_chats_in_parallel_each_complete_a_purchase(bot, user, api):
    _, services = bot
    users = [user(60_000 + i) for i in range(CHATS)]
    numbers = {u.chat_id: f"98700{1100 + i}" for i, u in enumerate(users)}

    async def purchase(customer):
        await customer.pay(await customer.to_payment_link(numbers[customer.chat_id]))

    await asyncio.gather(*(purchase(u) for u in users))
    await services.worker.run_once()

    latencies = sorted(t for u in users for t in u.latencies)
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    print(f"\n{len(latencies)} updates, p50 {statistics.median(latencies) * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")  # fmt: skip
    for u in users:
        texts = api.texts(u.chat_id)
        mine = numbers[u.chat_id]
        shown = f"{mine[:3]} {mine[3:6]} {mine[6:]}"
        assert "Recarga exitosa" in texts[-1] and shown in texts[-1]
        assert all(other not in "".join(texts) for other in _others(numbers, u.chat_id))
        orders = await services.orders.recent(ChatKey(Channel.TELEGRAM, str(u.chat_id)), limit=5)
        assert [(o.purchase.line.msisdn, o.state.value) for o in orders] == [(mine, "completed")]
    assert p95 < 10.0  # a regression guard; RELIABILITY B4 asks < 1 s (not met yet, see report)


def _others(numbers: dict[int, str], chat_id: int) -> list[str]:
    return [n for chat, n in numbers.items() if chat != chat_id]
