"""The benchmark on PostgreSQL with two replicas (`make bench-postgres`; issue 20, target 6).

Run it under scripts/with-postgres.sh, which starts a throwaway server and exports
RECARGABOT_TEST_DATABASE_URL. Two ``bench.bot_server`` processes share that database, the data
keys, the sandbox's signing secret and one fake Bot API; their public URL is a balancer's, and the
load generator sends each request (update or payment form) to the next replica in turn, as a
round-robin balancer would: a chat's messages land on both, so the Telegram inbox and the
advisory locks must keep its order. The phases are bench/run.py's: an open-loop burst (each chat's
nine updates back to back, its order then checked against a serial purchase), then the thinking
customers stepped as `make bench` steps them. Writes bench/results/postgres.json and each
replica's log (postgres-replica-N.log).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.run import (
    RESULTS,
    Driver,
    Inbox,
    at_capacity,
    bot_env,
    capacity,
    capacity_rows,
    driving,
    free_port,
    idle,
    load_arguments,
    our_throughput,
    paced_step,
    report,
    rss_mb,
    spawn,
    stop,
    thinking_buyer,
    wait_port,
)

BALANCER = "http://balancer.invalid"  # the replicas' PUBLIC_BASE_URL; never dialled
STARTUP_S = 120
_DIGITS = re.compile(r"\d+")


@dataclass
class Replicas:
    fake: Any
    bots: list[Any]
    fake_port: int
    urls: tuple[str, ...]
    logs: list[Path]
    startup_s: list[float]

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(bot.pid for bot in self.bots)


@contextlib.asynccontextmanager
async def replicas(workdir: Path, database_url: str, count: int,
                   together: bool) -> AsyncIterator[Replicas]:  # fmt: skip
    """The fake Bot API and ``count`` replicas: one after the other (each once the previous one
    has migrated and listens: uvicorn opens its port after the start-up), or all at once."""
    fake_port, ports = free_port(), [free_port() for _ in range(count)]
    fake = spawn(["bench.fake_api", str(fake_port)])
    started = Replicas(fake, [], fake_port, tuple(f"http://127.0.0.1:{p}" for p in ports), [], [])
    try:
        await wait_port(fake_port, fake)
        for n, port in enumerate(ports, start=1):
            log = workdir / f"replica-{n}.log"
            env = bot_env(workdir, fake_port, port, database_url, BALANCER)
            with log.open("wb") as stderr:  # the child keeps its own descriptor
                bot = spawn(["bench.bot_server"], env=env, cwd=workdir, stderr=stderr)
            started.bots.append(bot)
            started.logs.append(log)
            if not together:
                await timed_start(started, port, bot)
        if together:
            await asyncio.gather(
                *(timed_start(started, p, b) for p, b in zip(ports, started.bots, strict=True))
            )
        yield started
    finally:
        for bot in started.bots:
            stop(bot)
        stop(fake)
        for log in started.logs:
            shutil.copy(log, RESULTS / f"postgres-{log.name}")


async def timed_start(started: Replicas, port: int, bot: Any) -> None:
    begun = time.perf_counter()
    await wait_port(port, bot, STARTUP_S)
    started.startup_s.append(time.perf_counter() - begun)


def shape(text: str) -> str:
    """A reply with its figures masked: the same for every customer at the same point."""
    return _DIGITS.sub("#", text)


def order_check(inbox: Inbox, reference: list[str], chats: Iterator[int]) -> dict[str, Any]:
    """Chats whose replies differ from the serial purchase's (out of order, doubled or foreign)
    where both have them, and chats with more replies than it."""
    wrong, extra, checked = 0, 0, 0
    examples: list[dict[str, Any]] = []
    for chat_id in chats:
        got = [shape(text) for text, _, _ in inbox.replies.get(str(chat_id), [])]
        if not got:
            continue
        checked += 1
        if got[: len(reference)] != reference[: len(got)]:
            wrong += 1
            if len(examples) < 3:
                examples.append({"chat": chat_id, "got": got, "expected": reference})
        extra += len(got) > len(reference)
    return {"chats": checked, "differing": wrong, "more_replies": extra, "examples": examples}


def log_lines(log: Path) -> dict[str, Any]:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    problems = [line for line in lines if "ERROR" in line or "Traceback" in line]
    return {"lines": len(lines), "errors": len(problems), "first_errors": problems[:5]}


def postgres_pids(database_url: str) -> list[int]:
    """The throwaway server's processes (postmaster and its children), found by its port."""
    port = database_url.rsplit(":", 1)[1].split("/", 1)[0]
    procs = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError):
            if entry.name.isdigit():
                args = (entry / "cmdline").read_bytes().split(b"\0")
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                procs[int(entry.name)] = (args, ppid)
    main = [
        p for p, (a, _) in procs.items() if b"-p" in a and a[a.index(b"-p") + 1] == port.encode()
    ]
    return main + [p for p, (_, ppid) in procs.items() if ppid in main]


def postgres_cpu(database_url: str) -> float:
    """CPU seconds of the server's processes alive now and of those it reaped."""
    total = 0.0
    for pid in postgres_pids(database_url):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (sum(int(f) for f in fields[11:15])) / os.sysconf("SC_CLK_TCK")
    return total


async def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "database": "postgresql",
        "replicas": args.replicas,
        "started_together": args.together,
    }
    with tempfile.TemporaryDirectory(prefix="recargabot-bench-pg-") as tmp:
        async with replicas(Path(tmp), database_url, args.replicas, args.together) as group:
            results["startup_s"] = group.startup_s
            connections = max(args.chats, 100, *args.steps)
            async with driving(group.fake_port, group.urls, connections) as driver:
                results.update(await phases(driver, group, args, database_url))
            results["replica_rss_mb"] = [rss_mb(pid) for pid in group.pids]
    results["replica_logs"] = [log_lines(RESULTS / f"postgres-{log.name}") for log in group.logs]
    return results


async def phases(driver: Driver, group: Replicas, args: argparse.Namespace,
                 database_url: str) -> dict[str, Any]:  # fmt: skip
    """The warm-up (a serial purchase: the replies every chat should get), the open-loop burst,
    the capacity steps, and the order of every chat's replies."""
    await driver.purchase_closed_loop(1, [], [])
    reference = [shape(text) for text, _, _ in driver.inbox.replies["1"]]
    found: dict[str, Any] = {}
    first = 100_000
    print(f"postgres: {args.throughput} purchases at {args.chats} concurrent customers, "
          "open loop …", flush=True)  # fmt: skip
    pg0 = postgres_cpu(database_url)
    found["throughput"] = await our_throughput(
        driver, group.pids, args.throughput, args.chats, first, profile=False
    )
    found["throughput"]["postgres_cpu_s"] = postgres_cpu(database_url) - pg0
    await asyncio.gather(*(idle(pid) for pid in group.pids))
    found["order_open_loop"] = order_check(
        driver.inbox, reference, iter(range(first, first + args.throughput))
    )
    ids = itertools.count(first + args.throughput)

    async def step(customers: int) -> dict[str, Any]:
        pg = postgres_cpu(database_url)
        result = await paced_step(
            group.pids, customers, args, lambda pace: thinking_buyer(driver, ids, pace)
        )
        return {**result, "postgres_cpu_s": postgres_cpu(database_url) - pg}

    found["capacity"] = await capacity(step, args, f"postgres, {len(group.bots)} replicas")
    await asyncio.gather(*(idle(pid) for pid in group.pids))
    capacity_ids = range(first + args.throughput, next(ids))
    found["order_capacity"] = order_check(driver.inbox, reference, iter(capacity_ids))
    found["reference_replies"] = reference
    return found


def verdicts(r: dict[str, Any]) -> dict[str, bool]:
    """Target 6: target 1's capacity (p99 < ``LIMIT_MS``) and 4's payment p99 there, with two
    replicas, nothing lost or out of order."""
    payment = at_capacity(r)["payment_p99_ms"]
    return {
        "6_capacity_at_least_400": r["capacity"]["capacity"] >= 400,
        "6_payment_p99_at_capacity_under_100ms": payment is not None and payment < 100,
        "6_replies_in_order_none_lost": r["throughput"]["replies_lost"] == 0
        and not r["order_open_loop"]["differing"] and not r["order_capacity"]["differing"]
        and not any(s["replies_lost"] for s in r["capacity"]["steps"]),
    }  # fmt: skip


def table(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"recargabot on PostgreSQL, {r['replicas']} replicas "
                    f"({r['machine']['cpus']} cores, loopback)")  # fmt: skip
    t.add_column("measure")
    t.add_column("figure", justify="right")
    how = "together" if r["started_together"] else "one after the other"
    t.add_row(f"start-up, {how}: s per replica", ", ".join(f"{s:.1f}" for s in r["startup_s"]))
    th = r["throughput"]
    t.add_row(f"open loop, {th['concurrency']} customers: updates/s, purchases/s",
              f"{th['updates_per_s']:.0f}, {th['purchases_per_s']:.1f}")  # fmt: skip
    t.add_row("open loop: replies lost", f"{th['replies_lost']}")
    t.add_row("open loop: CPU s per purchase, replicas / PostgreSQL",
              f"{th['cpu_s_per_purchase']:.3f} / "
              f"{th['postgres_cpu_s'] / th['customers']:.3f}")  # fmt: skip
    for phase in ("order_open_loop", "order_capacity"):
        o = r[phase]
        t.add_row(f"{phase.replace('_', ' ')}: chats differing / with more replies",
                  f"{o['differing']} / {o['more_replies']} of {o['chats']}")  # fmt: skip
    capacity_rows(t, "pg", r["capacity"])
    for x in r["capacity"]["steps"]:
        t.add_row(f"pg {x['customers']} thinking: PostgreSQL CPU s", f"{x['postgres_cpu_s']:.1f}")
    for n, log in enumerate(r["replica_logs"], start=1):
        t.add_row(f"replica {n} log: lines, errors", f"{log['lines']}, {log['errors']}")
    for name, ok in r["verdicts"].items():
        t.add_row(f"target {name}", "met" if ok else "MISSED")
    Console().print(t)


def main() -> None:
    parser = load_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument(
        "--together", action="store_true", help="start the replicas at once (default: in turn)"
    )
    args = parser.parse_args()
    url = database_url(parser)
    report(asyncio.run(run(args, url)), args, "postgres.json", verdicts, table)


def database_url(parser: argparse.ArgumentParser) -> str:
    """The throwaway server scripts/with-postgres.sh started (the parser's error without it)."""
    url = os.environ.get("RECARGABOT_TEST_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        parser.error("run under scripts/with-postgres.sh (RECARGABOT_TEST_DATABASE_URL)")
    return url


if __name__ == "__main__":
    main()
