"""Promo campaign benchmark: 10,000 opted-in recipients through a Telegram fake that enforces a
scaled limit in its own process, answers 429 past it and, as flood control, to every Nth send.

Run: ``.venv/bin/python -m bench.promo_bench`` (about 90 s). Three campaigns over a SQLite file,
each sent by a sender process of its own: 1,000 recipients, then 10,000 (sent, duplicates, lost,
429s answered and retried, achieved rate against the limit, the sender's peak RSS at 1k vs 10k),
then 10,000 again with the sender SIGKILLed five times at random points and started again (rows
left in flight at each kill, and whether every recipient whose outcome is known got the promo).
Prints a table and the checks, writes ``bench/results/promo_bench.json``, exits 1 if one fails.

The limit is Telegram's 30 messages/s scaled up, so the flood-control wait is scaled down with it
(30 / limit seconds: Telegram's 1 s is 0.1 s at 300/s), and a 429 costs as many messages.
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
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlmodel import col, select
from telegram import Bot

from adapters.aiohttp_request import AiohttpRequest
from adapters.promo_channels import TelegramPromos
from conversations.broadcast import Broadcaster, Promo, RateLimiter, RecipientState
from conversations.model import Channel
from storage.campaigns import Audience, SqlCampaigns
from storage.crypto import DataKeys
from storage.customers import SqlContacts
from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade
from storage.models import CampaignRecipientRow, CustomerRow

RESULTS = Path(__file__).with_name("results") / "promo_bench.json"
PROMO = Promo("¡Doble de megas este fin de semana! Recarga S/ 10 y llévate 2 GB.")
NOW = datetime.now(UTC)
FLOOD_EVERY = 500  # sends between two flood-control 429s
KEYS = "PROMO_BENCH_KEYS"  # the data keys, passed to the sender processes


@dataclass
class Run:
    name: str
    recipients: int
    sent: int
    unknown: int
    unknown_arrived: int  # unknown rows whose promo reached the fake anyway
    duplicates: int
    lost: int  # recipients not unknown who never got the promo
    too_many: int  # 429s the fake answered
    retried: int  # 429s followed by another send to the same chat, counted at the fake
    seconds: float
    achieved_rate: float
    limit: float
    sender_peak_rss_mb: float  # the last sender process's VmHWM
    in_flight_at_kills: list[int] = field(default_factory=list)  # rows left "sending" per kill


def start_fake(rate: float) -> tuple[subprocess.Popen[str], str]:
    """The limited fake Bot API in its own process; its base URL."""
    flood = ["--flood-every", str(FLOOD_EVERY), "--flood-wait", str(30 / rate)]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.promos.limited_fakes", "--rate", str(rate), *flood],
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


async def chats_in(sessions: Any, campaign_id: int, state: RecipientState) -> set[str]:
    """The chats of a campaign's rows in ``state``."""
    stmt = (
        select(CustomerRow.chat_id)
        .join(CampaignRecipientRow, col(CampaignRecipientRow.customer_id) == col(CustomerRow.id))
        .where(col(CampaignRecipientRow.campaign_id) == campaign_id)
        .where(col(CampaignRecipientRow.state) == state.value)
    )
    async with sessions() as db:
        return set((await db.exec(stmt)).all())


@dataclass
class Sender:
    """Starts sender processes on the bench's database and fake."""

    database_url: str
    keys: DataKeys
    fake: str
    pace: float
    concurrency: int

    async def start(self, campaign_id: int) -> asyncio.subprocess.Process:
        """A sender process, once it is about to send."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.promo_bench", "--send", str(campaign_id),
            "--database-url", self.database_url, "--fake", self.fake,
            "--limit", str(self.pace), "--concurrency", str(self.concurrency),
            stdout=subprocess.PIPE, cwd=Path(__file__).parents[1],
            env=os.environ | {KEYS: json.dumps(asdict(self.keys))},
        )  # fmt: skip
        assert process.stdout is not None
        assert await process.stdout.readline() == b"sending\n"
        return process

    async def finish(self, campaign_id: int) -> dict[str, Any]:
        """Run a sender to the end; what it reports."""
        process = await self.start(campaign_id)
        out, _ = await process.communicate()
        assert process.returncode == 0, "the sender failed"
        return dict(json.loads(out))

    async def kill(self, campaign_id: int, after: float) -> None:
        """Start a sender and SIGKILL it ``after`` seconds into its sending."""
        process = await self.start(campaign_id)
        await asyncio.sleep(after)
        with suppress(ProcessLookupError):  # a small campaign may be done already
            process.kill()
        await process.wait()


@dataclass
class Bench:
    sessions: Any
    sender: Sender
    limit: float

    async def campaign(self, name: str, recipients: int, kills: int = 0) -> Run:
        """Send one campaign to everyone; with kills, crash and resume it that many times."""
        campaigns = SqlCampaigns(self.sessions)
        campaign_id = await campaigns.create(
            PROMO, Audience((Channel.TELEGRAM,)), created_by="bench"
        )
        await campaigns.start(campaign_id)
        async with httpx.AsyncClient(base_url=self.sender.fake) as http:
            await http.post("/reset")
            started = time.perf_counter()
            in_flight = await self._killed(campaigns, campaign_id, kills)
            report = await self.sender.finish(campaign_id)
            seconds = time.perf_counter() - started
            stats = (await http.get("/stats")).json()
            delivered = set((await http.get("/delivered")).json())
        unknown = await chats_in(self.sessions, campaign_id, RecipientState.UNKNOWN)
        sent = await chats_in(self.sessions, campaign_id, RecipientState.SENT)
        lost = recipients - len(unknown) - len(sent & delivered)  # any other state is lost too
        return Run(
            name, recipients, len(sent), len(unknown), len(unknown & delivered),
            stats["duplicates"], lost, stats["too_many"], stats["retried"], round(seconds, 2),
            round(stats["achieved_rate"], 1), self.limit, report["peak_rss_mb"], in_flight,
        )  # fmt: skip

    async def _killed(self, campaigns: SqlCampaigns, campaign_id: int, kills: int) -> list[int]:
        """Kill the sender ``kills`` times at random points; the rows each kill left in flight."""
        chance, in_flight = random.Random(6), []
        for _ in range(kills):
            await self.sender.kill(campaign_id, after=chance.uniform(0.2, 3.0))
            in_flight.append((await campaigns.tally(campaign_id)).get("sending", 0))
        return in_flight


async def main(limit: float, recipients: int, concurrency: int) -> list[Run]:
    keys = DataKeys.generate()
    process, fake = start_fake(limit)
    database_url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='promo-bench-')}/bench.db"
    engine = make_engine(database_url, keys=keys)
    try:
        await upgrade(engine)
        sessions = make_sessionmaker(engine)
        bench = Bench(sessions, Sender(database_url, keys, fake, limit, concurrency), limit)
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


# ---------------------------------------------------------------- the sender process


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (VmHWM), from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def send(options: argparse.Namespace) -> dict[str, Any]:
    """Run the campaign's broadcaster until no row is pending; its peak memory."""
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    engine = make_engine(options.database_url, keys=DataKeys(**json.loads(os.environ[KEYS])))
    sessions = make_sessionmaker(engine)
    bot = Bot("123456:BENCH-token", base_url=f"{options.fake}/bot", request=AiohttpRequest(64))
    async with bot:
        channel = TelegramPromos(bot, SqlContacts(engine), lambda: datetime.now(UTC))
        broadcaster = Broadcaster(
            SqlCampaigns(sessions), {Channel.TELEGRAM: channel},
            {Channel.TELEGRAM: RateLimiter(options.limit, per_chat=1.0)},
            concurrency=options.concurrency,
        )  # fmt: skip
        print("sending", flush=True)
        await broadcaster.run(options.send, PROMO)
    await engine.dispose()
    return {"peak_rss_mb": peak_rss_mb()}


# ---------------------------------------------------------------- report


def checks(runs: list[Run], concurrency: int) -> dict[str, bool]:
    """What the issue asks of the benchmark, each true or false."""
    small, large, killed = runs
    in_flight = killed.in_flight_at_kills
    return {
        "no duplicates": all(r.duplicates == 0 for r in runs),
        "nobody lost (all but unknown got it)": all(r.lost == 0 for r in runs),
        "every 429 retried": all(r.retried == r.too_many > 0 for r in (small, large)),
        "killed: a 429 not retried only if in flight at a kill": (
            killed.too_many - killed.retried <= sum(in_flight)
        ),
        "≥ 90% of the limit at 10k": large.achieved_rate >= 0.9 * large.limit,
        f"≤ {concurrency} in flight at each kill": all(n <= concurrency for n in in_flight),
        "unknown = rows in flight at the kills": killed.unknown == sum(in_flight),
        "sender memory flat: 10k ≤ 1k + 5 MB": (
            large.sender_peak_rss_mb <= small.sender_peak_rss_mb + 5
        ),
    }


def report(runs: list[Run], concurrency: int) -> bool:
    """Print the table and the checks, write the JSON results; True if every check passed."""
    table = Table(title="Promo campaigns through a Telegram fake enforcing the limit (429 past it)")
    for column in ("run", "sent", "unknown (arrived)", "dupl.", "lost", "429s", "retried", "s",
                   "msg/s", "limit", "% of limit", "sender peak RSS MB"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in runs:
        table.add_row(
            r.name, str(r.sent), f"{r.unknown} ({r.unknown_arrived})", str(r.duplicates),
            str(r.lost), str(r.too_many), str(r.retried), f"{r.seconds:.1f}",
            f"{r.achieved_rate:.0f}", f"{r.limit:.0f}", f"{100 * r.achieved_rate / r.limit:.0f}%",
            f"{r.sender_peak_rss_mb:.1f}",
        )  # fmt: skip
    console = Console(width=150)
    console.print(table)
    console.print(f"rows in flight at each kill: {runs[-1].in_flight_at_kills}")
    passed = checks(runs, concurrency)
    for name, ok in passed.items():
        console.print(f"{'PASS' if ok else 'FAIL'}  {name}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = {"runs": [asdict(r) for r in runs], "checks": passed}
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"written to {RESULTS}")
    return all(passed.values())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=300, help="the fake's messages/s")
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--send", type=int, help=argparse.SUPPRESS)  # as a sender process
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--fake", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.send is not None:
        print(json.dumps(asyncio.run(send(options))))
    else:
        runs = asyncio.run(main(options.limit, options.recipients, options.concurrency))
        sys.exit(0 if report(runs, options.concurrency) else 1)
