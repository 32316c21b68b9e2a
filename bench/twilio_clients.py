"""Compare WhatsApp senders: 10,000 sends from 200 chats at once against a slow Twilio stand-in.

``python -m bench.twilio_clients`` prints, per client, the sends lost, the wall and CPU time (the
stand-in runs in the same process, so compare the differences). Measured on the 2-core machine:
twilio-python unpooled (as the bot built it) lost a send in 198 of 200 chats; pooled, nothing
lost, 6.6 s of CPU and 11.4 s wall; our TwilioMessages 4.9 s and 5.6 s. Hence
adapters/twilio_rest.py.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from adapters.twilio_rest import TwilioMessages
from tests.slow_twilio import SlowTwilio, serve_slow

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "bench-token"
SENDER = "whatsapp:+14155238886"
CHATS, SENDS = 200, 10_000
Send = Callable[[str, str], Awaitable[object]]


async def twilio_python(url: str, *, pooled: bool) -> tuple[Send, Callable[[], Awaitable[None]]]:
    http = AsyncTwilioHttpClient(pool_connections=pooled)
    client = Client(ACCOUNT, TOKEN, http_client=http)
    client.api.base_url = url

    async def send(to: str, body: str) -> object:
        return await client.messages.create_async(to=to, from_=SENDER, body=body)

    return send, http.close


async def ours(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    client = TwilioMessages(account_sid=ACCOUNT, auth_token=TOKEN, base_url=url)

    async def send(to: str, body: str) -> object:
        return await client.create({"To": to, "From": SENDER, "Body": body})

    return send, client.close


async def measure(name: str) -> None:
    twilio = SlowTwilio(ACCOUNT, TOKEN)
    async with serve_slow(twilio) as url:
        if name == "ours":
            send, close = await ours(url)
        else:
            send, close = await twilio_python(url, pooled=name == "twilio-pooled")

        async def chat(n: int) -> None:
            for turn in range(SENDS // CHATS):
                await send(f"whatsapp:+5198{n:07d}", f"{n}/{turn}")

        started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        outcomes = await asyncio.gather(*(chat(n) for n in range(CHATS)), return_exceptions=True)
        after = resource.getrusage(resource.RUSAGE_SELF)
        await close()
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    failed = sum(outcome is not None for outcome in outcomes)
    print(
        f"{name:15} chats that lost a send {failed:3}  created {sum(twilio.bodies.values()):5}  "
        f"wall {time.perf_counter() - started:5.2f} s  cpu {cpu:5.2f} s"
    )


if __name__ == "__main__":
    for client_name in ("twilio-unpooled", "twilio-pooled", "ours"):
        asyncio.run(measure(client_name))
