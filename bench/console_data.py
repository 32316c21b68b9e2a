"""A month of made-up business for the console: customers, and orders in every state on every
day, channel and product, with their timelines. Seeded, so every run draws the same data.

Rows go in by bulk INSERTs through the engine (its column types encrypt and hash the personal
data as the bot's own writes do), thousands per statement: 50,000 customers take seconds.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from conversations.model import OrderState
from storage.models import CustomerRow, OrderEventRow, OrderRow

S = OrderState
# Roughly how a month ends: most paid orders complete; some links lapse; a few fail or wait.
STATES = [
    (S.COMPLETED, 70), (S.EXPIRED, 12), (S.CANCELLED, 4), (S.AWAITING_PAYMENT, 3),
    (S.REFUNDED, 4), (S.HELD, 2), (S.TOPUP_FAILED, 1), (S.PAID, 1), (S.TOPPING_UP, 1),
    (S.TOPUP_UNKNOWN, 1), (S.FLAGGED, 1),
]  # fmt: skip
PATHS = {  # the states an order passes through to reach its last one
    S.COMPLETED: [S.PAID, S.TOPPING_UP, S.COMPLETED],
    S.REFUNDED: [S.PAID, S.TOPPING_UP, S.TOPUP_FAILED, S.REFUNDED],
    S.HELD: [S.PAID, S.TOPPING_UP, S.HELD],
    S.TOPUP_FAILED: [S.PAID, S.TOPPING_UP, S.TOPUP_FAILED],
    S.TOPPING_UP: [S.PAID, S.TOPPING_UP],
    S.TOPUP_UNKNOWN: [S.PAID, S.TOPPING_UP, S.TOPUP_UNKNOWN],
}
PRODUCTS = [
    ("credit-5", "saldo", "Recarga de saldo S/ 5.00", 500),
    ("credit-10", "saldo", "Recarga de saldo S/ 10.00", 1000),
    ("credit-20", "saldo", "Recarga de saldo S/ 20.00", 2000),
    ("pkg-social", "paquete", "Paquete Redes Sociales 7 días", 1500),
    ("pkg-ilimitado", "paquete", "Paquete Ilimitado 30 días", 5990),
]
BATCH = 2000


async def seed(
    engine: AsyncEngine, *, customers: int, orders: int, now: datetime, seed: int = 21
) -> list[str]:
    """Add ``customers`` customers and ``orders`` orders over the 30 days before ``now``;
    return the order ids."""
    draw = random.Random(seed)
    async with engine.begin() as db:
        last = select(col(CustomerRow.id)).order_by(col(CustomerRow.id).desc())
        first = (await db.execute(last)).first()
        base = 1 + (first[0] or 0 if first else 0)
        rows = [_customer(base + n, now, draw) for n in range(customers)]
        for start in range(0, len(rows), BATCH):
            await db.execute(insert(CustomerRow.__table__), rows[start : start + BATCH])
        made = [
            _order(base + draw.randrange(customers), rows, base, now, draw) for _ in range(orders)
        ]
        for start in range(0, len(made), BATCH):
            chunk = made[start : start + BATCH]
            await db.execute(insert(OrderRow.__table__), [order for order, _ in chunk])
            events = [event for _, order_events in chunk for event in order_events]
            await db.execute(insert(OrderEventRow.__table__), events)
    return [order["id"] for order, _ in made]


def _customer(number: int, now: datetime, draw: random.Random) -> dict[str, Any]:
    channel = "telegram" if draw.random() < 0.6 else "whatsapp"
    chat_id = str(700_000_000 + number) if channel == "telegram" else f"51{900_000_000 + number}"
    seen = now - timedelta(days=draw.randrange(60))
    return {
        "id": number, "channel": channel, "chat_id": chat_id, "chat_hash": chat_id,
        "consent_version": "2026-11", "consented_at": seen, "created_at": seen,
        "last_seen_at": seen, "last_inbound_at": seen,
        "promos_opt_in_at": seen if draw.random() < 0.5 else None,
    }  # fmt: skip


def _order(
    customer_id: int, customers: list[dict[str, Any]], base: int, now: datetime,
    draw: random.Random,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:  # fmt: skip
    customer = customers[customer_id - base]
    state = draw.choices([s for s, _ in STATES], [w for _, w in STATES])[0]
    code, kind, name, cents = draw.choice(PRODUCTS)
    created = now - timedelta(seconds=draw.randrange(30 * 86400))
    msisdn = f"9{draw.randrange(10**8):08d}"
    order_id = f"{draw.getrandbits(128):032x}"
    order = {
        "id": order_id, "customer_id": customer_id, "channel": customer["channel"],
        "chat_id": customer["chat_id"], "msisdn": msisdn, "msisdn_hash": msisdn,
        "owner_name": "Cliente De Prueba", "doc_type": "dni",
        "doc_number": f"{draw.randrange(10**8):08d}", "product_code": code,
        "product_kind": kind, "product_name": name, "product_details": "", "validity_days": 30,
        "amount_cents": cents, "currency": "pen", "state": state.value,
        "failure": "INSUFFICIENT_BALANCE" if state is S.HELD else None, "attempts": 0,
        "refund_after": created + timedelta(hours=2) if state is S.HELD else None,
        "created_at": created, "updated_at": created + timedelta(minutes=2),
    }  # fmt: skip
    path = [S.AWAITING_PAYMENT, *PATHS.get(state, [] if state is S.AWAITING_PAYMENT else [state])]
    events = [
        {"order_id": order_id, "state": step.value, "cause": None,
         "at": created + timedelta(seconds=20 * n)}
        for n, step in enumerate(path)
    ]  # fmt: skip
    return order, events
