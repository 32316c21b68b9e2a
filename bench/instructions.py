"""Instructions per Telegram update (`make bench-instructions`): our bot and the echo bot (b).

Each bot runs under valgrind's callgrind with counting off while it starts and warms up (two
purchases; the echo bot 18 messages); counting is then switched on (``callgrind_control``) for
ten serial purchases' 90 updates, each sent once the previous reply arrived, and off again once
the bot is idle. Unlike a wall-clock figure this one does not drift with the machine's load.
The payment of those ten purchases (form POST → "Recarga exitosa") is counted apart. The fake
Bot API and this load generator run outside valgrind. Prints "ours X M, echo Y M, ratio Z" and
writes bench/results/instructions.json and, callgrind's largest costs, instructions.txt.

``--open C`` counts instead whole purchases (nine updates and the payment each) posted in an
open loop, 30 of them at C concurrent: the cost of chats meeting (a chat held while its next
update arrives, sends finishing together), which serial purchases never show.

``--stored N`` first stores N purchases (open loop, outside valgrind) in our bot's database, so
the count shows whether an update costs more as the data grows (a query plan that reads every
order did: 7.1 M per update on an empty database, 17.0 M with 7,500 orders).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.run import (
    RESULTS,
    Driver,
    Inbox,
    driving,
    echo_bot,
    idle,
    listen,
    message_update,
    pool,
    purchase_steps,
    start_our_bot,
    stop,
)

WARM_UP, COUNTED = 2, 10  # purchases (the echo bot: as many updates)
OPEN_PURCHASES = 30  # --open
UPDATES = 9  # per purchase, up to the payment link
STARTUP_S = 300  # Python under valgrind starts some twenty times slower
UPDATES_FILE = RESULTS / "callgrind.ours-updates"


def callgrind(out: Path) -> tuple[str, ...]:
    return ("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}")


def environment(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(pair.decode().split("=", 1) for pair in pairs if b"=" in pair)


async def control(pid: int, *flags: str) -> None:
    """callgrind_control finds the process by file names made of $USER and $HOST, and our bot's
    settings set HOST (the address it listens on): it runs with the bot's own environment."""
    env = environment(pid)
    process = await asyncio.create_subprocess_exec(
        "callgrind_control", *flags, str(pid), env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    said = (await process.communicate())[0].decode()
    if process.returncode != 0 or "error" in said.lower():  # it answers 0 when it failed
        raise RuntimeError(f"callgrind_control {' '.join(flags)} {pid}: {said}")


async def counted(pid: int, work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` with callgrind counting in process ``pid``, from idle to idle."""
    await idle(pid)
    await control(pid, "--instr=on")
    await work()
    await idle(pid)
    await control(pid, "--instr=off")


def total(out: Path) -> int:
    for line in out.read_text().splitlines():
        if line.startswith("totals:"):  # "summary:" says 0 when counting began late
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


_ROW = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*?)(?: \[(.+)\])?$")


def largest_costs(out: Path, functions: int = 25) -> str:
    """callgrind_annotate's self cost (C level: the interpreter, SQLite, libc, …) summed by
    library, then its largest functions."""
    report = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", str(out)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = [m.groups() for line in report.splitlines() if (m := _ROW.match(line))]
    rows = [(int(n.replace(",", "")), fn, obj) for n, fn, obj in rows if fn != "PROGRAM TOTALS"]
    whole = total(out)
    libraries: collections.Counter[str] = collections.Counter()
    for n, _, obj in rows:
        libraries[Path(obj).name if obj else "(no object named: inlined)"] += n
    lines = ["Self instructions by library:"]
    lines += [f"  {n / whole:6.1%}  {name}" for name, n in libraries.most_common(12)]
    lines += ["", "Self instructions by function:"]
    lines += [f"  {n / whole:6.1%}  {fn.rsplit('/', 1)[-1]}" for n, fn, _ in rows[:functions]]
    return "\n".join(lines) + "\n"


async def serial_updates(driver: Driver, chats: list[int]) -> None:
    for chat_id in chats:
        for nth, update in enumerate(purchase_steps(chat_id), start=1):
            await driver.exchange(str(chat_id), update, nth)


async def serial_payments(driver: Driver, chats: list[int]) -> None:
    for chat_id in chats:
        await driver.pay(str(chat_id))
        await driver.confirmed(str(chat_id))


async def ours(workdir: Path) -> dict[str, Any]:
    out = RESULTS / "callgrind.ours"
    bot = await start_our_bot(workdir, wrap=callgrind(out), within=STARTUP_S)
    inbox, ready = Inbox(), asyncio.Event()
    listener = asyncio.create_task(listen(bot.fake_port, inbox, ready))
    await ready.wait()
    try:
        async with aiohttp.ClientSession() as http:
            driver = Driver(http, (f"http://127.0.0.1:{bot.bot_port}",), inbox)
            warm = list(range(1, WARM_UP + 1))
            await serial_updates(driver, warm)
            await serial_payments(driver, warm)
            chats = list(range(100, 100 + COUNTED))
            await counted(bot.bot.pid, lambda: serial_updates(driver, chats))
            # The dump (callgrind.ours.1) holds the updates and zeroes the counts: the file
            # written at exit holds the payments alone.
            await control(bot.bot.pid, "--dump")
            await counted(bot.bot.pid, lambda: serial_payments(driver, chats))
    finally:
        listener.cancel()
        stop(bot.bot)
        stop(bot.fake)
    (RESULTS / "callgrind.ours.1").replace(UPDATES_FILE)
    return {
        "updates": COUNTED * UPDATES,
        "instructions_per_update": total(UPDATES_FILE) / (COUNTED * UPDATES),
        "instructions_per_payment": total(out) / COUNTED,
    }


async def open_loop(concurrency: int) -> dict[str, Any]:
    """Instructions per purchase: ``OPEN_PURCHASES`` posted back to back, so many at once."""
    out = RESULTS / "callgrind.open"
    with tempfile.TemporaryDirectory(prefix="recargabot-instructions-") as tmp:
        bot = await start_our_bot(Path(tmp), wrap=callgrind(out), within=STARTUP_S)
        try:
            urls = (f"http://127.0.0.1:{bot.bot_port}",)
            async with driving(bot.fake_port, urls, 100) as driver:
                await pool(WARM_UP, list(range(1, WARM_UP + 1)), driver.purchase_open_loop)
                chats = list(range(100, 100 + OPEN_PURCHASES))
                await counted(
                    bot.bot.pid, lambda: pool(concurrency, chats, driver.purchase_open_loop)
                )
        finally:
            stop(bot.bot)
            stop(bot.fake)
    return {
        "purchases": OPEN_PURCHASES,
        "concurrency": concurrency,
        "instructions_per_purchase": total(out) / OPEN_PURCHASES,
    }


async def echo() -> dict[str, Any]:
    out = RESULTS / "callgrind.echo"
    async with echo_bot("aiohttp", 1, wrap=callgrind(out), within=STARTUP_S) as (driver, bot):
        chat, sent = "30000", 0

        async def send(n: int) -> None:
            nonlocal sent
            for _ in range(n):
                sent += 1
                await driver.exchange(chat, message_update(30000, f"hola {sent}"), sent)

        await send(WARM_UP * UPDATES)
        await counted(bot.pid, lambda: send(COUNTED * UPDATES))
    return {
        "updates": COUNTED * UPDATES,
        "instructions_per_update": total(out) / (COUNTED * UPDATES),
    }


async def store_purchases(workdir: Path, purchases: int) -> None:
    """Pay ``purchases`` purchases through our bot on ``workdir``'s database, 100 at a time."""
    bot = await start_our_bot(workdir)
    try:
        async with driving(bot.fake_port, (f"http://127.0.0.1:{bot.bot_port}",), 100) as driver:
            chats = list(range(1_000_000, 1_000_000 + purchases))  # apart from ours()'s chats
            await pool(100, chats, driver.purchase_open_loop)
            await idle(bot.bot.pid)
    finally:
        stop(bot.bot)
        stop(bot.fake)


async def measure(stored: int = 0) -> dict[str, Any]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    for old in RESULTS.glob("callgrind.*"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="recargabot-instructions-") as tmp:
        if stored:
            await store_purchases(Path(tmp), stored)
        result = {"ours": await ours(Path(tmp)), "echo": await echo(), "stored": stored}
    result["ratio"] = (
        result["ours"]["instructions_per_update"] / result["echo"]["instructions_per_update"]
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stored", type=int, default=0, metavar="N",
                        help="purchases stored in our bot's database before counting")  # fmt: skip
    parser.add_argument("--open", type=int, default=0, metavar="C",
                        help="count purchases in an open loop, C at once, instead")  # fmt: skip
    arguments = parser.parse_args()
    stored = arguments.stored
    started = time.monotonic()
    if arguments.open:
        RESULTS.mkdir(parents=True, exist_ok=True)
        counts = asyncio.run(open_loop(arguments.open))
        (RESULTS / "instructions-open.json").write_text(json.dumps(counts, indent=2))
        print(f"ours {counts['instructions_per_purchase'] / 1e6:.1f} M per purchase, open loop "
              f"({OPEN_PURCHASES} at {arguments.open} concurrent; "
              f"{time.monotonic() - started:.0f} s)")  # fmt: skip
        return
    result = asyncio.run(measure(stored))
    result["seconds"] = time.monotonic() - started
    (RESULTS / "instructions.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (RESULTS / "instructions.txt").write_text(
        "Our bot, 90 Telegram updates (10 serial purchases up to the link).\n"
        + largest_costs(UPDATES_FILE),
        encoding="utf-8",
    )
    ours_m = result["ours"]["instructions_per_update"] / 1e6
    echo_m = result["echo"]["instructions_per_update"] / 1e6
    pay_m = result["ours"]["instructions_per_payment"] / 1e6
    after = f" ({stored:,} purchases stored)" if stored else ""
    print(f"ours {ours_m:.1f} M{after}, echo {echo_m:.1f} M, ratio {result['ratio']:.1f}")
    print(f"(per update, callgrind; ours per payment, form POST → 'Recarga exitosa': {pay_m:.1f} M;"
          f" {result['seconds']:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
