"""Promo campaign benchmark: 10,000 opted-in recipients through a Telegram fake that enforces a
scaled limit in its own process and answers 429 past it (issue 6, points 1 and 2).

Run: ``.venv/bin/python -m bench.promo_bench`` (about a minute). Three campaigns over a SQLite
file: 1,000 recipients, then 10,000 (sent, duplicates, lost, 429s retried, achieved rate against
the limit, peak RSS at 1k vs 10k), then 10,000 again with the sender killed five times at random
points and resumed. Prints a table and writes ``bench/results/promo_bench.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from telegram import Bot

from adapters.aiohttp_request import AiohttpRequest
from adapters.promo_channels import TelegramPromos
from conversations.broadcast import Broadcaster, Promo, RateLimiter
from conversations.model import Channel
from storage.campaigns import Audience, SqlCampaigns
from storage.db import create_tables, make_engine, make_sessionmaker
from storage.models import CustomerRow
from storage.repositories import SqlContacts

RESULTS = Path(__file__).with_name("results") / "promo_bench.json"
PROMO = Promo("¡Doble de megas este fin de semana! Recarga S/ 10 y llévate 2 GB.")
NOW = datetime.now(UTC)


@dataclass
class Run:
    name: str
    recipients: int
    sent: int
    unknown: int
    duplicates: int
    lost: int
    too_many: int
    retried: int
    seconds: float
    achieved_rate: float
    limit: float
    rss_start_mb: float  # before the run (customers were just inserted)
    peak_rss_mb: float  # the highest during the run


def rss_mb() -> float:
    """This process's resident memory now, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Peak:
    """Sample RSS every 50 ms while a run lasts."""

    def __init__(self) -> None:
        self.start = self.value = rss_mb()

    async def watch(self) -> None:
        while True:
            self.value = max(self.value, rss_mb())
            await asyncio.sleep(0.05)


def start_fake(rate: float) -> tuple[subprocess.Popen[str], str]:
    """The limited fake Bot API in its own process; its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.promos.limited_fakes", "--rate", str(rate)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1],
    )  # fmt: skip
    assert process.stdout is not None
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}"


async def add_customers(sessions: Any, first: int, count: int) -> None:
    """Opted-in Telegram customers, written in one transaction."""
    async with sessions() as db:
        for chat in range(first, first + count):
            db.add(CustomerRow(
                channel="telegram", chat_id=str(chat), chat_hash=str(chat), created_at=NOW,
                last_seen_at=NOW, last_inbound_at=NOW, promos_opt_in_at=NOW,
                consent_version="2026-11", consented_at=NOW,
            ))  # fmt: skip
        await db.commit()


@dataclass
class Bench:
    sessions: Any
    fake: str
    limit: float
    pace: float
    concurrency: int

    async def campaign(self, name: str, recipients: int, kills: int = 0) -> Run:
        """Send one campaign to everyone; with kills, crash and resume it that many times."""
        async with httpx.AsyncClient(base_url=self.fake) as http:
            await http.post("/reset")
            campaigns = SqlCampaigns(self.sessions)
            campaign_id = await campaigns.create(
                PROMO, Audience((Channel.TELEGRAM,)), created_by="bench"
            )
            await campaigns.start(campaign_id)
            peak = Peak()
            watcher = asyncio.create_task(peak.watch())
            started = time.perf_counter()
            retried = await self._killed(campaign_id, kills) + await self._send(campaign_id)
            seconds = time.perf_counter() - started
            watcher.cancel()
            stats = (await http.get("/stats")).json()
        tally = await campaigns.tally(campaign_id)
        sent, unknown = tally.get("sent", 0), tally.get("unknown", 0)
        return Run(
            name, recipients, sent, unknown, stats["duplicates"],
            recipients - stats["chats"], stats["too_many"], retried, round(seconds, 2),
            round(stats["achieved_rate"], 1), self.limit, round(peak.start, 1),
            round(peak.value, 1),
        )  # fmt: skip

    async def _send(self, campaign_id: int) -> int:
        return await self._with_sender(lambda b: b.run(campaign_id, PROMO))

    async def _killed(self, campaign_id: int, kills: int) -> int:
        chance, retried = random.Random(6), 0
        for _ in range(kills):

            async def crash(broadcaster: Broadcaster) -> None:
                task = asyncio.create_task(broadcaster.run(campaign_id, PROMO))
                await asyncio.sleep(chance.uniform(0.2, 3.0))
                task.cancel()  # no clean-up: what a SIGKILL leaves

            retried += await self._with_sender(crash)
        return retried

    async def _with_sender(self, act: Callable[[Broadcaster], Awaitable[Any]]) -> int:
        campaigns = SqlCampaigns(self.sessions)  # a fresh process: nothing kept in memory
        bot = Bot("123456:BENCH-token", base_url=f"{self.fake}/bot", request=AiohttpRequest(64))
        async with bot:
            channel = TelegramPromos(bot, SqlContacts(self.sessions), lambda: datetime.now(UTC))
            broadcaster = Broadcaster(
                campaigns, {Channel.TELEGRAM: channel},
                {Channel.TELEGRAM: RateLimiter(self.pace, per_chat=1.0)},
                concurrency=self.concurrency,
            )  # fmt: skip
            await act(broadcaster)
        return broadcaster.counts["retried"]


async def main(limit: float, recipients: int, concurrency: int) -> list[Run]:
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    process, fake = start_fake(limit)
    workdir = tempfile.mkdtemp(prefix="promo-bench-")
    engine = make_engine(f"sqlite+aiosqlite:///{workdir}/bench.db")
    try:
        await create_tables(engine)
        sessions = make_sessionmaker(engine)
        bench = Bench(sessions, fake, limit, pace=limit, concurrency=concurrency)
        small = recipients // 10
        await add_customers(sessions, 100_000, small)
        runs = [await bench.campaign(f"{small:,} recipients", small)]
        await add_customers(sessions, 100_000 + small, recipients - small)
        runs.append(await bench.campaign(f"{recipients:,} recipients", recipients))
        runs.append(await bench.campaign(f"{recipients:,}, killed 5×", recipients, kills=5))
        return runs
    finally:
        await engine.dispose()
        process.terminate()
        process.wait(10)


def report(runs: list[Run]) -> None:
    """Print the table and write the JSON results."""
    table = Table(title="Promo campaigns through a Telegram fake enforcing the limit (429 past it)")
    for column in ("run", "sent", "unknown", "dupl.", "lost", "429s", "retried", "s",
                   "msg/s", "limit", "% of limit", "RSS MB start→peak"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in runs:
        table.add_row(
            r.name, str(r.sent), str(r.unknown), str(r.duplicates), str(r.lost), str(r.too_many),
            str(r.retried), f"{r.seconds:.1f}", f"{r.achieved_rate:.0f}", f"{r.limit:.0f}",
            f"{100 * r.achieved_rate / r.limit:.0f}%", f"{r.rss_start_mb:.1f}→{r.peak_rss_mb:.1f}",
        )  # fmt: skip
    Console(width=150).print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps([asdict(r) for r in runs], indent=2), encoding="utf-8")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=300, help="the fake's messages/s")
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    options = parser.parse_args()
    report(asyncio.run(main(options.limit, options.recipients, options.concurrency)))
