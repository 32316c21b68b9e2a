"""The money invariants every test's orders must keep, whichever gateway and provider it used."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conversations.model import OrderState
from tests.db import table_rows

Ledger = Callable[[dict[str, Any]], int]  # an order row -> céntimos


async def check_money(
    database_url: str, *, charged: Ledger, refunded: Ledger, credited: Ledger
) -> None:
    """Refunded ≤ charged, top-up ≤ paid, never completed and refunded, refunds in full."""
    for row in await table_rows(database_url, "orders"):
        paid, back, topped_up = charged(row), refunded(row), credited(row)
        assert back <= paid, row["id"]
        assert topped_up <= paid, row["id"]
        assert not (topped_up and back), row["id"]
        assert not (row["state"] == OrderState.COMPLETED and back), row["id"]
        assert row["state"] != OrderState.REFUNDED or back == paid, row["id"]
