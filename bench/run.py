"""The benchmark (`make bench`): baselines, our bot's throughput, latency, payment and memory.

Everything runs on 127.0.0.1, each server in its own process: the fake Bot API
(``bench.fake_api``), the bot under test (``bench.echo_bot`` or ``bench.bot_server`` under
uvicorn), and this process, the load generator. The fake streams each sendMessage it records to
the generator with its arrival time (``perf_counter``, CLOCK_MONOTONIC: the same clock in every
process), so a latency is "update posted → reply recorded at the fake". Payments and top-ups are
the sandbox ones (no Stripe, no Reloadly): the generator pays through the sandbox page's form.

Prints a table, writes bench/results/latest.json and a py-spy profile of our bot during the
throughput phase (bench/results/profile.txt, the collapsed stacks in profile.raw).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

from bench.profile import summarise

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TOKEN = "123456:BENCH-token"
SECRET = "bench-secret-token"
CARD = {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123", "name": "MARIA QUISPE"}
LINK = re.compile(r"https?://\S+/sandbox/checkout/[\w.-]+")
DONE = "Recarga exitosa"
_ids = itertools.count(1_000_000)
LIMIT_MS = 100  # the capacity's update→reply p99
FAR_MS = 200  # past this p99 the stepping stops


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT,
          wrap: tuple[str, ...] = (),
          stderr: IO[bytes] | None = None) -> subprocess.Popen:  # fmt: skip
    """``python -m args`` with this interpreter, run under ``wrap`` (valgrind) if given."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen([*wrap, sys.executable, "-m", *args], env=full_env, cwd=cwd,
                            stderr=stderr)  # fmt: skip


async def wait_port(port: int, process: subprocess.Popen, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"port {port} never opened")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# --- the customers' side ----------------------------------------------------------------------


def message_update(chat_id: int, text: str) -> dict[str, Any]:
    sender = {"id": chat_id, "is_bot": False, "first_name": f"Cliente {chat_id}"}
    entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {
        "update_id": next(_ids),
        "message": {
            "entities": entities if text.startswith("/") else [],
            "message_id": next(_ids), "date": int(time.time()), "text": text,
            "chat": {"id": chat_id, "type": "private", "first_name": sender["first_name"]},
            "from": sender,
        },
    }  # fmt: skip


def button_update(chat_id: int, data: str) -> dict[str, Any]:
    sender = {"id": chat_id, "is_bot": False, "first_name": f"Cliente {chat_id}"}
    message = {"message_id": 1, "date": int(time.time()), "text": "…",
               "chat": {"id": chat_id, "type": "private"}}  # fmt: skip
    return {
        "update_id": next(_ids),
        "callback_query": {"id": f"cb{next(_ids)}", "from": sender,
                           "chat_instance": str(chat_id), "message": message, "data": data},
    }  # fmt: skip


def purchase_steps(chat_id: int) -> list[dict[str, Any]]:
    """The nine updates of a purchase up to the payment link, as tests/telegram/user.py sends."""
    number = f"97{chat_id % 1_000_000:06d}5"  # never a sandbox failure suffix
    return [
        message_update(chat_id, "/start"), button_update(chat_id, "accept"),
        message_update(chat_id, number), message_update(chat_id, "María Quispe"),
        button_update(chat_id, "doc:dni"), message_update(chat_id, "45678912"),
        button_update(chat_id, "kind:saldo"), button_update(chat_id, "amount:10"),
        button_update(chat_id, "confirm"),
    ]  # fmt: skip


@dataclass
class Inbox:
    """Replies the fake recorded, per chat, and waiters for the n-th one."""

    replies: dict[str, list[tuple[str, str | None, float]]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    waiters: dict[str, list[tuple[Any, asyncio.Future]]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )

    def record(self, chat: str, text: str, url: str | None, at: float) -> None:
        got = self.replies[chat]
        got.append((text, url, at))
        still = []
        for done, future in self.waiters.get(chat, []):
            if future.done():
                continue
            if done(got):
                future.set_result(None)
            else:
                still.append((done, future))
        if still:
            self.waiters[chat] = still
        else:
            self.waiters.pop(chat, None)

    async def until(self, chat: str, done: Any, within: float = 60) -> None:
        if done(self.replies[chat]):
            return
        future = asyncio.get_running_loop().create_future()
        self.waiters[chat].append((done, future))
        await asyncio.wait_for(future, within)


async def listen(fake_port: int, inbox: Inbox, ready: asyncio.Event) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"http://127.0.0.1:{fake_port}/events", max_msg_size=0) as ws,
    ):
        ready.set()
        async for message in ws:
            chat, text, url, at = json.loads(message.data)
            inbox.record(chat, text, url, at)


@dataclass
class Driver:
    """Posts updates to the bot's webhook and pays the sandbox checkouts. With several replicas
    each request goes to the next one in turn, as a round-robin load balancer sends them: a
    chat's messages and its payment land on any replica."""

    http: aiohttp.ClientSession
    bot_urls: tuple[str, ...]
    inbox: Inbox
    turn: Iterator[str] = field(init=False)

    def __post_init__(self) -> None:
        self.turn = itertools.cycle(self.bot_urls)

    async def post(self, update: dict[str, Any]) -> None:
        headers = {"x-telegram-bot-api-secret-token": SECRET}
        body = json.dumps(update).encode()
        async with self.http.post(
            f"{next(self.turn)}/telegram/webhook", data=body,
            headers={**headers, "content-type": "application/json"},
        ) as response:  # fmt: skip
            if response.status != 200:
                raise RuntimeError(f"webhook answered {response.status}")

    async def exchange(self, chat: str, update: dict[str, Any], nth: int) -> float:
        """Post the update and wait for the chat's ``nth`` reply; seconds from post to reply."""
        started = time.perf_counter()
        await self.post(update)
        await self.inbox.until(chat, lambda got: len(got) >= nth)
        return self.inbox.replies[chat][nth - 1][2] - started

    def link(self, chat: str) -> str | None:
        for text, url, _ in reversed(self.inbox.replies[chat]):
            found = url or (m.group(0) if (m := LINK.search(text)) else None)
            if found:
                return found
        return None

    async def pay(self, chat: str) -> float:
        """Pay the chat's link through the sandbox form; return when the form was posted."""
        link = self.link(chat)
        assert link, f"no payment link for chat {chat}: {self.inbox.replies[chat][-3:]}"
        path = link.split("/sandbox/checkout/", 1)[1]  # the page behind the balancer's origin
        started = time.perf_counter()
        async with self.http.post(f"{next(self.turn)}/sandbox/checkout/{path}",
                                  data=CARD) as response:  # fmt: skip
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"payment page answered {response.status}")
        return started

    async def confirmed(self, chat: str) -> float:
        await self.inbox.until(chat, lambda got: any(DONE in t for t, _, _ in got))
        return next(at for t, _, at in self.inbox.replies[chat] if DONE in t)

    async def purchase_open_loop(self, chat_id: int) -> None:
        chat = str(chat_id)
        for update in purchase_steps(chat_id):
            await self.post(update)
        await self.inbox.until(chat, lambda got: len(got) >= 9 and self.link(chat) is not None)
        await self.pay(chat)
        await self.confirmed(chat)

    async def purchase_closed_loop(self, chat_id: int, latencies: list[float],
                                   payments: list[float]) -> None:  # fmt: skip
        """Each message waits for the previous reply; so does paying."""
        chat = str(chat_id)
        for index, update in enumerate(purchase_steps(chat_id), start=1):
            latencies.append(await self.exchange(chat, update, index))
        posted = await self.pay(chat)
        payments.append(await self.confirmed(chat) - posted)


@contextlib.asynccontextmanager
async def driving(
    fake_port: int, bot_urls: tuple[str, ...], connections: int
) -> AsyncIterator[Driver]:
    """A driver for the bot at ``bot_urls``, its inbox fed by the fake's stream of replies."""
    inbox, ready = Inbox(), asyncio.Event()
    listener = asyncio.create_task(listen(fake_port, inbox, ready))
    await ready.wait()
    # Idle connections are dropped before uvicorn's 5 s keep-alive closes them: between phases a
    # reused one could be half-closed, and the post fails with "Can not write request body".
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=2)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            yield Driver(http, bot_urls, inbox)
    finally:
        listener.cancel()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def pool(concurrency: int, jobs: list[Any], run: Any) -> None:
    """Run ``run(job)`` for every job, ``concurrency`` at a time (each worker back to back)."""
    queue = iter(jobs)

    async def worker() -> None:
        for job in queue:
            await run(job)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


@dataclass
class Pace:
    """One capacity step's customers: their pauses (exponential, seeded), the step's end, and
    what they measured."""

    rng: random.Random
    think_s: float
    until: float
    latencies: list[float] = field(default_factory=list)
    payments: list[float] = field(default_factory=list)
    lost: int = 0

    async def think(self) -> bool:
        """Pause as a person reading and typing would; False once the step is over."""
        await asyncio.sleep(self.rng.expovariate(1 / self.think_s))
        return time.perf_counter() < self.until


async def thinking_buyer(driver: Driver, ids: Iterator[int], pace: Pace) -> None:
    """Purchase after purchase (a new chat each), pausing before each message and the payment."""
    while True:
        chat_id = next(ids)
        chat = str(chat_id)
        for nth, update in enumerate(purchase_steps(chat_id), start=1):
            if not await pace.think():
                return
            pace.latencies.append(await driver.exchange(chat, update, nth))
        if not await pace.think():
            return
        posted = await driver.pay(chat)
        pace.payments.append(await driver.confirmed(chat) - posted)


async def thinking_chatter(driver: Driver, chat_id: int, pace: Pace) -> None:
    """The echo bot's customer: a message after each pause, the next once the echo came."""
    sent = 0
    while await pace.think():
        sent += 1
        update = message_update(chat_id, f"hola {sent}")
        pace.latencies.append(await driver.exchange(str(chat_id), update, sent))


async def idle(pid: int, within: float = 60) -> None:
    """Until the process spent under 10 ms of CPU in half a second (the work that follows its
    replies, such as the outbox's result writes, done)."""
    deadline = time.monotonic() + within
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = cpu_seconds(pid)
        if now - before < 0.01:
            return
        before = now
    raise RuntimeError(f"process {pid} never went idle")


async def paced_step(pids: Sequence[int], customers: int, args: argparse.Namespace,
                     customer: Callable[[Pace], Awaitable[None]]) -> dict[str, Any]:  # fmt: skip
    """``customers`` thinking customers sending for ``args.step_seconds`` (the updates/s offered
    and answered) to the bot's processes ``pids`` (replicas); a reply later than a minute counts
    as lost (that customer stops)."""
    await asyncio.gather(*(idle(pid) for pid in pids))
    pace = Pace(random.Random(customers), args.think, time.perf_counter() + args.step_seconds)

    async def one() -> None:
        try:
            await customer(pace)
        except TimeoutError:
            pace.lost += 1

    cpu0, ours0, started = [cpu_seconds(p) for p in pids], time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(customers)))
    elapsed = time.perf_counter() - started
    cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
    ms = [t * 1000 for t in pace.latencies]
    pay = [t * 1000 for t in pace.payments]
    return {
        "customers": customers, "seconds": elapsed, "updates": len(ms),
        "updates_per_s": len(ms) / args.step_seconds, "replies_lost": pace.lost,
        "p50_ms": statistics.median(ms), "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99), "max_ms": max(ms),
        "payments": len(pay),
        "payment_p50_ms": statistics.median(pay) if pay else None,
        "payment_p99_ms": percentile(pay, 99) if pay else None,
        "bot_cpu_s": cpu, "bot_cpu_share": sum(cpu) / elapsed,
        "generator_cpu_share": (time.process_time() - ours0) / elapsed,
    }  # fmt: skip


async def capacity(step: Callable[[int], Awaitable[dict[str, Any]]],
                   args: argparse.Namespace, name: str) -> dict[str, Any]:  # fmt: skip
    """Step the thinking customers up (100, 200, 400, …); the capacity is the last step before
    the first whose update→reply p99 reaches ``LIMIT_MS``. Stepping stops once p99 is past
    ``FAR_MS``."""
    steps: list[dict[str, Any]] = []
    found = 0
    for customers in args.steps:
        print(f"{name}: {customers} thinking customers for {args.step_seconds:.0f} s …", flush=True)
        result = await step(customers)
        steps.append(result)
        print(f"  p50 {result['p50_ms']:.0f} ms, p99 {result['p99_ms']:.0f} ms, "
              f"{result['updates_per_s']:.0f} updates/s", flush=True)  # fmt: skip
        if result["p99_ms"] < LIMIT_MS and found == (steps[-2]["customers"] if steps[1:] else 0):
            found = customers
        if result["p99_ms"] >= FAR_MS:
            break
    return {"capacity": found, "limit_ms": LIMIT_MS, "steps": steps}


# --- phases -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def echo_bot(
    transport: str, chats: int, wrap: tuple[str, ...] = (), within: float = 30
) -> AsyncIterator[tuple[Driver, subprocess.Popen]]:
    """Start the fake and an echo bot on ``transport``; yield a warmed-up driver and the bot."""
    fake_port, bot_port = free_port(), free_port()
    fake = spawn(["bench.fake_api", str(fake_port)])
    await wait_port(fake_port, fake)
    bot = spawn(["bench.echo_bot", str(bot_port), f"http://127.0.0.1:{fake_port}/bot", transport],
                wrap=wrap)  # fmt: skip
    try:
        await wait_port(bot_port, bot, within)
        async with driving(fake_port, (f"http://127.0.0.1:{bot_port}",), chats) as driver:
            await driver.post(message_update(1, "warm-up"))
            await driver.inbox.until("1", lambda got: len(got) >= 1)
            yield driver, bot
    finally:
        stop(bot)
        stop(fake)


async def echo_baseline(transport: str, chats: int, per_chat: int) -> dict[str, Any]:
    """Open loop: every chat posts its messages back to back; updates/s until the last reply."""
    async with echo_bot(transport, chats) as (driver, bot):
        inbox = driver.inbox
        ids = [10_000 + i for i in range(chats)]
        cpu0, started = cpu_seconds(bot.pid), time.perf_counter()

        async def chat(chat_id: int) -> None:
            for n in range(per_chat):
                await driver.post(message_update(chat_id, f"hola {n}"))

        await asyncio.gather(*(chat(i) for i in ids))
        waits = [inbox.until(str(i), lambda got: len(got) >= per_chat, 30) for i in ids]
        results = await asyncio.gather(*waits, return_exceptions=True)
        await asyncio.sleep(0.5 if all(r is None for r in results) else 0)
        got = sum(min(per_chat, len(inbox.replies[str(i)])) for i in ids)
        last = max((inbox.replies[str(i)][-1][2] for i in ids if inbox.replies[str(i)]),
                   default=started)  # fmt: skip
        cpu = cpu_seconds(bot.pid) - cpu0
    total = chats * per_chat
    return {
        "transport": transport, "chats": chats, "updates": total,
        "updates_per_s": got / (last - started), "replies_lost": total - got,
        "bot_cpu_s": cpu,
    }  # fmt: skip


async def echo_latency(transport: str, chats: int, per_chat: int) -> dict[str, Any]:
    """Closed loop, as ours is measured: each chat waits for its echo before the next message."""
    async with echo_bot(transport, chats) as (driver, _):
        latencies: list[float] = []

        async def chat(chat_id: int) -> None:
            for n in range(1, per_chat + 1):
                update = message_update(chat_id, f"hola {n}")
                latencies.append(await driver.exchange(str(chat_id), update, n))

        started = time.perf_counter()
        await asyncio.gather(*(chat(20_000 + i) for i in range(chats)))
        elapsed = time.perf_counter() - started
    ms = [t * 1000 for t in latencies]
    return {
        "transport": transport, "concurrency": chats, "updates": len(ms),
        "updates_per_s": len(ms) / elapsed,
        "p50_ms": statistics.median(ms), "p99_ms": percentile(ms, 99),
    }  # fmt: skip


async def echo_capacity(args: argparse.Namespace) -> dict[str, Any]:
    async with echo_bot("aiohttp", max(args.steps)) as (driver, bot):
        chats = itertools.count(40_000)

        async def step(customers: int) -> dict[str, Any]:
            chatter = lambda pace: thinking_chatter(driver, next(chats), pace)  # noqa: E731
            return await paced_step((bot.pid,), customers, args, chatter)

        return await capacity(step, args, "baseline (b)")


@dataclass
class OurBot:
    fake: subprocess.Popen
    bot: subprocess.Popen
    fake_port: int
    bot_port: int


def bot_env(workdir: Path, fake_port: int, bot_port: int, database_url: str,
            public_url: str) -> dict[str, str]:  # fmt: skip
    """The settings of our bot under test; replicas share all but the port."""
    return {
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1", "PORT": str(bot_port), "PUBLIC_BASE_URL": public_url,
        "SANDBOX_SECRET_PATH": str(workdir / "sandbox-secret"),
        "DATA_KEYS_PATH": str(workdir / "data-keys"),
        "TOPUP_PROVIDER": "sandbox",
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{fake_port}/bot",
        # Telegram itself allows ~30 messages/s per bot; the fake has no limit, and the
        # benchmark measures what the bot can do, so the limiter is set out of the way.
        "TELEGRAM_MAX_MESSAGES_PER_SECOND": "100000",
    }  # fmt: skip


async def start_our_bot(workdir: Path, wrap: tuple[str, ...] = (), within: float = 60) -> OurBot:
    fake_port, bot_port = free_port(), free_port()
    fake = spawn(["bench.fake_api", str(fake_port)])
    await wait_port(fake_port, fake)
    url = f"http://127.0.0.1:{bot_port}"
    env = bot_env(workdir, fake_port, bot_port, f"sqlite+aiosqlite:///{workdir / 'bench.db'}", url)
    # cwd: a temp dir, so no developer .env leaks real keys into the run.
    bot = spawn(["bench.bot_server"], env=env, cwd=workdir, wrap=wrap)
    await wait_port(bot_port, bot, within)
    return OurBot(fake, bot, fake_port, bot_port)


async def our_throughput(driver: Driver, pids: Sequence[int], customers: int, concurrency: int,
                         first_id: int, profile: bool) -> dict[str, Any]:  # fmt: skip
    """Purchases posted back to back, ``concurrency`` at a time; ``pids`` the bot's processes
    (the first one profiled if asked)."""
    spy = None
    raw = RESULTS / "profile.raw"
    search = str(Path(sys.executable).parent) + ":" + os.environ.get("PATH", "")
    exe = shutil.which("py-spy", path=search)
    if profile and exe:
        spy = subprocess.Popen(  # noqa: ASYNC220 (starts at once; the loop is not blocked)
            [exe, "record", "--pid", str(pids[0]), "--rate", "200", "--nonblocking", "--gil",
             "--format", "raw", "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(1.0)
    ids = list(range(first_id, first_id + customers))
    cpu0, started = sum(map(cpu_seconds, pids)), time.perf_counter()
    await pool(concurrency, ids, driver.purchase_open_loop)
    elapsed = time.perf_counter() - started
    cpu = sum(map(cpu_seconds, pids)) - cpu0
    if spy:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    expected = 9 + post_payment_replies(driver, ids[0])
    lost = sum(max(0, expected - len(driver.inbox.replies[str(i)])) for i in ids)
    return {
        "customers": customers, "concurrency": concurrency, "updates": customers * 9,
        "updates_per_s": customers * 9 / elapsed, "purchases_per_s": customers / elapsed,
        "replies_lost": lost, "cpu_s_per_purchase": cpu / customers, "elapsed_s": elapsed,
        "profile": raw.name if spy and raw.exists() else None,
    }  # fmt: skip


def post_payment_replies(driver: Driver, chat_id: int) -> int:
    """How many messages a customer got after the link, up to and with the confirmation."""
    got = driver.inbox.replies[str(chat_id)]
    done = next(i for i, (t, _, _) in enumerate(got) if DONE in t)
    return done + 1 - 9


async def our_latency(
    driver: Driver, concurrency: int, purchases: int, first_id: int
) -> dict[str, Any]:
    """Closed loop, customers who answer at once: a saturation figure, bounded by throughput."""
    latencies: list[float] = []
    payments: list[float] = []
    ids = list(range(first_id, first_id + purchases))
    await pool(concurrency, ids, lambda i: driver.purchase_closed_loop(i, latencies, payments))
    ms = [t * 1000 for t in latencies]
    pay = [t * 1000 for t in payments]
    return {
        "concurrency": concurrency, "purchases": purchases, "updates": len(ms),
        "p50_ms": statistics.median(ms), "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99), "max_ms": max(ms),
        "payment_p50_ms": statistics.median(pay), "payment_p99_ms": percentile(pay, 99),
    }  # fmt: skip


async def run(args: argparse.Namespace) -> dict[str, Any]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    }
    print("baseline (a): PTB echo bot, default httpx transport …", flush=True)
    results["baseline_httpx"] = await echo_baseline("httpx", args.chats, args.echo_per_chat)
    print("baseline (b): PTB echo bot, aiohttp transport …", flush=True)
    results["baseline_aiohttp"] = await echo_baseline("aiohttp", args.chats, args.echo_per_chat)
    print("baseline (b), closed loop at 100 chats …", flush=True)
    results["baseline_aiohttp_latency_100"] = await echo_latency("aiohttp", 100, args.echo_per_chat)
    results["baseline_aiohttp_capacity"] = await echo_capacity(args)
    with tempfile.TemporaryDirectory(prefix="recargabot-bench-") as tmp:
        bot = await start_our_bot(Path(tmp))
        urls, connections = (f"http://127.0.0.1:{bot.bot_port}",), max(args.chats, 100, *args.steps)
        try:
            async with driving(bot.fake_port, urls, connections) as driver:
                await driver.purchase_open_loop(1)  # warm-up: tables, caches, connections
                done, next_id = 1, 100_000
                print(f"our bot: throughput, {args.throughput} purchases at {args.chats} "
                      "concurrent customers …", flush=True)  # fmt: skip
                results["throughput"] = await our_throughput(
                    driver, (bot.bot.pid,), args.throughput, args.chats, next_id, profile=True
                )
                done, next_id = done + args.throughput, next_id + args.throughput
                for concurrency, purchases in ((10, args.latency10), (100, args.latency100)):
                    print(f"our bot: closed-loop latency at {concurrency} customers …", flush=True)
                    results[f"latency_{concurrency}"] = await our_latency(
                        driver, concurrency, purchases, next_id
                    )
                    done, next_id = done + purchases, next_id + purchases
                ids = itertools.count(next_id)

                async def step(customers: int) -> dict[str, Any]:
                    buyer = lambda pace: thinking_buyer(driver, ids, pace)  # noqa: E731
                    return await paced_step((bot.bot.pid,), customers, args, buyer)

                results["capacity"] = await capacity(step, args, "our bot")
                next_id = next(ids)
                done += sum(s["payments"] for s in results["capacity"]["steps"])
                memory: dict[str, float] = {}
                for mark in (1_000, args.memory):
                    if mark > done:
                        print(f"our bot: purchases up to {mark} for memory …", flush=True)
                        ids = list(range(next_id, next_id + mark - done))
                        await pool(args.chats, ids, driver.purchase_open_loop)
                        done, next_id = mark, next_id + len(ids)
                    memory[f"rss_mb_after_{mark}"] = rss_mb(bot.bot.pid)
                memory["purchases"] = done
                results["memory"] = memory
        finally:
            stop(bot.bot)
            stop(bot.fake)
    raw = RESULTS / "profile.raw"
    if raw.exists():
        (RESULTS / "profile.txt").write_text(summarise(raw.read_text()), encoding="utf-8")
    return results


def at_capacity(r: dict[str, Any]) -> dict[str, Any]:
    """Our step at the capacity found (the first step if none held)."""
    cap = r["capacity"]
    return next((x for x in cap["steps"] if x["customers"] == cap["capacity"]), cap["steps"][0])


def verdicts(r: dict[str, Any]) -> dict[str, bool]:
    """Issue 20's targets this run measures (2, instructions: `make bench-instructions`; 6,
    PostgreSQL with two replicas: `make bench-postgres`, bench/postgres.py)."""
    ours, a, b = r["throughput"]["updates_per_s"], r["baseline_httpx"], r["baseline_aiohttp"]
    mem = r["memory"]
    marks = sorted(k for k in mem if k.startswith("rss_mb_after_"))
    growth = mem[marks[-1]] - mem["rss_mb_after_1000"] if len(marks) > 1 else 0.0
    payment = at_capacity(r)["payment_p99_ms"]
    return {
        "1_capacity_at_least_400": r["capacity"]["capacity"] >= 400,
        "3_throughput": ours >= 0.25 * b["updates_per_s"]
        and ours >= 2 * a["updates_per_s"]
        and r["throughput"]["replies_lost"] == 0,
        "4_payment_p99_at_capacity_under_100ms": payment is not None and payment < 100,
        "5_rss_growth_under_20mb": growth <= 20,
    }


def capacity_rows(t: Any, who: str, found: dict[str, Any]) -> None:
    """A capacity's steps and the capacity, as rows of the rich table ``t``."""
    for x in found["steps"]:
        pay = f", payment p99 {x['payment_p99_ms']:.0f}" if x["payment_p99_ms"] else ""
        cpu = ", CPU s " + " + ".join(f"{c:.1f}" for c in x["bot_cpu_s"])
        t.add_row(f"{who} {x['customers']} thinking: p50 / p99 ms, updates/s, lost",
                  f"{x['p50_ms']:.0f} / {x['p99_ms']:.0f}, {x['updates_per_s']:.0f}, "
                  f"{x['replies_lost']}{pay}{cpu}")  # fmt: skip
    cap = found["capacity"] or f"< {found['steps'][0]['customers']}"
    t.add_row(f"{who} capacity (p99 < {LIMIT_MS} ms)", f"{cap}")


def table(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"recargabot benchmark ({r['machine']['cpus']} cores, loopback)")
    t.add_column("measure")
    t.add_column("figure", justify="right")
    a, b, th = r["baseline_httpx"], r["baseline_aiohttp"], r["throughput"]
    t.add_row("(a) PTB echo, httpx: updates/s", f"{a['updates_per_s']:.0f}")
    t.add_row("(a) replies lost", f"{a['replies_lost']} of {a['updates']}")
    t.add_row("(b) PTB echo, aiohttp: updates/s", f"{b['updates_per_s']:.0f}")
    t.add_row("(b) replies lost", f"{b['replies_lost']} of {b['updates']}")
    bl = r["baseline_aiohttp_latency_100"]
    t.add_row("(b) closed loop 100: p50 / p99 ms, updates/s",
              f"{bl['p50_ms']:.0f} / {bl['p99_ms']:.0f}, {bl['updates_per_s']:.0f}")  # fmt: skip
    t.add_row(f"ours: updates/s ({th['concurrency']} customers, open loop)",
              f"{th['updates_per_s']:.0f}")  # fmt: skip
    t.add_row("ours / (b), ours / (a)", f"{th['updates_per_s'] / b['updates_per_s']:.2f}, "
              f"{th['updates_per_s'] / a['updates_per_s']:.1f}")  # fmt: skip
    t.add_row("ours: purchases/s", f"{th['purchases_per_s']:.1f}")
    t.add_row("ours: replies lost", f"{th['replies_lost']}")
    t.add_row("ours: CPU s per purchase (bot process)", f"{th['cpu_s_per_purchase']:.3f}")
    for c in (10, 100):
        lat = r[f"latency_{c}"]
        t.add_row(f"closed loop {c}, answering at once: p50 / p95 / p99 ms",
                  f"{lat['p50_ms']:.0f} / {lat['p95_ms']:.0f} / {lat['p99_ms']:.0f}")  # fmt: skip
        t.add_row(f"payment→'Recarga exitosa' at {c}, at once: p50 / p99 ms",
                  f"{lat['payment_p50_ms']:.0f} / {lat['payment_p99_ms']:.0f}")  # fmt: skip
    for who, key in (("(b)", "baseline_aiohttp_capacity"), ("ours", "capacity")):
        capacity_rows(t, who, r[key])
    for key, value in r["memory"].items():
        if key.startswith("rss"):
            t.add_row(key.replace("_", " "), f"{value:.1f}")
    for name, ok in r["verdicts"].items():
        t.add_row(f"target {name}", "met" if ok else "MISSED")
    Console().print(t)


def load_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The open-loop and capacity phases' settings, the same for every database."""
    parser.add_argument("--chats", type=int, default=100, help="concurrent customers (open loop)")
    parser.add_argument("--throughput", type=int, default=300, help="purchases, open loop")
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 200, 400, 800, 1_600],
                        help="thinking customers, capacity steps")  # fmt: skip
    parser.add_argument("--step-seconds", type=float, default=60,
                        help="load per capacity step, seconds")  # fmt: skip
    parser.add_argument("--think", type=float, default=3.0,
                        help="mean pause before each message, seconds (capacity)")  # fmt: skip
    return parser


def main() -> None:
    parser = load_arguments(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--echo-per-chat", type=int, default=30)
    parser.add_argument("--latency10", type=int, default=50, help="purchases, 10 customers")
    parser.add_argument("--latency100", type=int, default=200, help="purchases, 100 customers")
    parser.add_argument("--memory", type=int, default=1_500, help="purchases before last RSS")
    args = parser.parse_args()
    report(asyncio.run(run(args)), args, "latest.json", verdicts, table)


def report(results: dict[str, Any], args: argparse.Namespace, name: str,
           judge: Callable[[dict[str, Any]], dict[str, bool]],
           show: Callable[[dict[str, Any]], None]) -> None:  # fmt: skip
    """Add the verdicts and arguments to a run's results, save them as ``name``, print them."""
    results["verdicts"] = judge(results)
    results["arguments"] = vars(args)
    (RESULTS / name).write_text(json.dumps(results, indent=2), encoding="utf-8")
    show(results)


if __name__ == "__main__":
    main()
