"""Console pages' latency with a busy database: ``python -m bench.console_bench``.

Builds the bot with the real ``build()`` on a fresh SQLite file (or ``--database-url``), adds
50,000 customers and 10,000 orders over 30 days (bench.console_data), serves it with uvicorn on
127.0.0.1 and asks each console page ``--rounds`` times in turn, one request at a time, as one
operator's browser would. Prints p50 / p95 / max per page and writes bench/results/console.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn
from pydantic import SecretStr

from bench.console_data import seed
from bot.admin.security import hash_password
from bot.app import build
from bot.settings import Settings
from storage.db import make_sessionmaker
from storage.operators import Role, SqlOperators

RESULTS = Path(__file__).with_name("results")
EMAIL, PASSWORD = "bench@recargas.pe", "bench-password-2026"


async def main(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    folder = Path(tempfile.mkdtemp(prefix="console-bench-"))
    settings = Settings(
        _env_file=None, database_url=args.database_url or f"sqlite+aiosqlite:///{folder}/b.db",
        sandbox_secret_path=folder / "sandbox-secret", public_base_url="http://127.0.0.1",
        # A channel for the promo preview; nothing is sent, so the credentials are never used.
        twilio_account_sid="AC" + "0" * 32, twilio_auth_token=SecretStr("bench-token"),
        twilio_whatsapp_from="whatsapp:+51900000000",
    )  # fmt: skip
    app = build(settings)
    async with app.state.services.lifetime(background=False) as services:
        now = datetime.now(UTC)
        started = time.perf_counter()
        order_ids = await seed(services.engine, customers=args.customers, orders=args.orders,
                               now=now)  # fmt: skip
        print(f"seeded {args.customers} customers, {args.orders} orders "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        operators = SqlOperators(make_sessionmaker(services.engine))
        await operators.add(EMAIL, role=Role.ADMIN, password_hash=hash_password(PASSWORD), at=now)
        return await _measure(app, order_ids, now, args.rounds)


async def _measure(
    app: object, order_ids: list[str], now: datetime, rounds: int
) -> dict[str, dict[str, float]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))  # type: ignore[arg-type]
    serving = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            await _log_in(client)
            pages = _pages(order_ids, now)
            times: dict[str, list[float]] = {name: [] for name in pages}
            for round_ in range(rounds):
                for name, (method, path, data) in pages.items():
                    csrf = await _csrf(client) if method == "POST" else ""
                    started = time.perf_counter()
                    response = await client.request(
                        method, path, data={**data, "csrf": csrf} if data else None
                    )
                    elapsed = time.perf_counter() - started
                    assert response.status_code == 200, (name, response.status_code)
                    if round_:  # the first round warms caches up
                        times[name].append(elapsed * 1000)
    finally:
        server.should_exit = True
        await serving
    return {name: _summary(values) for name, values in times.items()}


def _pages(order_ids: list[str], now: datetime) -> dict[str, tuple[str, str, dict[str, str]]]:
    held_day = now.date().isoformat()
    return {
        "dashboard": ("GET", "/admin/", {}),
        "orders by id": ("GET", f"/admin/orders?id={order_ids[0]}", {}),
        "orders by phone": ("GET", "/admin/orders?phone=987654321", {}),
        "orders by day": ("GET", f"/admin/orders?day={held_day}", {}),
        "order timeline": ("GET", f"/admin/orders/{order_ids[len(order_ids) // 2]}", {}),
        "promos": ("GET", "/admin/promos", {}),
        "promo preview": ("POST", "/admin/promos", {
            "text": "¡Doble de megas!", "channel": "all", "intent": "preview",
        }),
    }  # fmt: skip


async def _log_in(client: httpx.AsyncClient) -> None:
    csrf = await _csrf(client, "/admin/login")
    response = await client.post(
        "/admin/login", data={"email": EMAIL, "password": PASSWORD, "csrf": csrf}
    )
    assert response.status_code == 303, response.status_code


async def _csrf(client: httpx.AsyncClient, path: str = "/admin/promos") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', (await client.get(path)).text)
    assert found
    return found.group(1)


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 1),
        "max_ms": round(ordered[-1], 1),
    }


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    figures = asyncio.run(main(args))
    print(f"{'page':<18}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for name, summary in figures.items():
        print(f"{name:<18}{summary['p50_ms']:>9}{summary['p95_ms']:>9}{summary['max_ms']:>9}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "console.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    cli()
