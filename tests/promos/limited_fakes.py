"""The Telegram and Twilio fakes, with the channels' rate limits enforced: 429 past them.

``Window`` counts accepted messages over the last second, overall and per chat, as Telegram
describes its limits (about 30 per second per bot, 1 per second per chat) and as Twilio meters a
WhatsApp sender (messages per second). Past a limit the fake answers 429 (Telegram with
``retry_after``, Twilio with error 20429) and delivers nothing. The Telegram fake can also answer
429 to every Nth send within the limits (``flood_every``), as Telegram's flood control does now and
then, so retries are exercised at any scale. Also runnable as its own process for the benchmark:
``python -m tests.promos.limited_fakes --rate 500 --per-chat 1 --flood-every 500``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_telegram import FakeBotApi, serving
from tests.fake_twilio import FakeTwilio, Refusal


@dataclass
class Window:
    """At most ``rate`` per second overall and one per ``per_chat`` seconds to each chat."""

    rate: float
    per_chat: float = 0.0
    _recent: deque[float] = field(default_factory=deque)
    _last: dict[str, float] = field(default_factory=dict)

    def admit(self, chat: str) -> bool:
        """Count this message if it is within the limits; False (nothing counted) if not."""
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        last = self._last.get(chat)
        if len(self._recent) >= self.rate or (last is not None and now - last < self.per_chat):
            return False
        self._recent.append(now)
        self._last[chat] = now
        return True


@dataclass
class LimitedBotApi(FakeBotApi):
    """The fake Bot API, answering 429 (retry_after 1) past the limits of ``window``."""

    window: Window = field(default_factory=lambda: Window(30, 1.0))
    flood_every: int = 0  # also answer 429 to every Nth send (0: never)
    flood_wait: float = 1.0  # its retry_after, in seconds
    too_many: int = 0  # 429s answered
    refused: set[str] = field(default_factory=set)  # chats whose last send got a 429
    retried: int = 0  # sends to a chat after its 429: the sender's retries, counted here
    per_chat: Counter[str] = field(default_factory=Counter)  # messages delivered per chat
    arrivals: list[float] = field(default_factory=list)  # when each delivered promo arrived
    sends: int = 0  # send requests received

    def achieved_rate(self) -> float:
        """Delivered messages per second, from the first arrival to the last."""
        span = self.arrivals[-1] - self.arrivals[0] if len(self.arrivals) > 1 else 0.0
        return (len(self.arrivals) - 1) / span if span else 0.0

    async def _endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        if method not in ("sendMessage", "sendPhoto"):
            return await super()._endpoint(request)
        chat = str((await _form(request)).get("chat_id"))
        self.sends += 1
        if chat in self.refused:
            self.refused.discard(chat)
            self.retried += 1
        if self.flood_every and self.sends % self.flood_every == 0:
            return self._too_many(chat, self.flood_wait)
        if not self.window.admit(chat):
            return self._too_many(chat, 1)
        response = await super()._endpoint(request)
        if response.status_code == 200:
            self.per_chat[chat] += 1
            self.arrivals.append(time.perf_counter())
        return response

    def _too_many(self, chat: str, seconds: float) -> JSONResponse:
        self.too_many += 1
        self.refused.add(chat)
        answer = {
            "ok": False, "error_code": 429, "description": "Too Many Requests: retry later",
            "parameters": {"retry_after": seconds},
        }  # fmt: skip
        return JSONResponse(answer, status_code=429)

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method != "sendPhoto":
            return super()._result(method, params)
        chat = {"id": int(params["chat_id"]), "type": "private"}
        photo = {"file_id": "AgAD", "file_unique_id": "AQAD", "width": 800, "height": 600}
        return {
            "message_id": self.sends, "date": int(time.time()), "chat": chat,
            "photo": [photo], "caption": params.get("caption", ""),
        }  # fmt: skip


@dataclass
class LimitedTwilio(FakeTwilio):
    """The fake Twilio, answering 429 / 20429 past ``window`` messages per second."""

    window: Window = field(default_factory=lambda: Window(10))
    too_many: int = 0
    per_chat: Counter[str] = field(default_factory=Counter)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route(_MESSAGES, self._limited, methods=["POST"])])

    async def _limited(self, request: Request) -> Response:
        form = await _form(request)
        to = str(form.get("To", ""))
        if not self.window.admit(to):
            self.too_many += 1
            return Refusal(429, 20429, "Too Many Requests").response()
        response = await self._create(request)
        if response.status_code == 201:
            self.per_chat[to] += 1
        return response


_MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"


async def _form(request: Request) -> dict[str, Any]:
    """The posted parameters (Starlette caches the body, so the fake can read them again)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        return dict(await request.json())
    return {k: str(v) for k, v in (await request.form()).multi_items()}


@contextmanager
def serving_in_thread(api: FakeBotApi) -> Iterator[str]:
    """Serve the fake from a thread with its own event loop, so the sender's loop cannot delay
    its clock (a stall in one loop would bunch arrivals and look like a burst)."""
    loop = asyncio.new_event_loop()
    ready, stop, found = threading.Event(), asyncio.Event(), []

    async def serve() -> None:
        async with serving(api) as url:
            found.append(url)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the fake did not start"
    try:
        yield found[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


# ---------------------------------------------------------------- as a process (benchmark)


def _control_routes(api: LimitedBotApi) -> list[Route]:
    """GET /stats: what arrived (duplicates, 429s, rate); /delivered: to whom; POST /reset."""

    async def stats(_: Request) -> JSONResponse:
        counts = api.per_chat
        return JSONResponse({
            "delivered": sum(counts.values()), "chats": len(counts),
            "duplicates": sum(n - 1 for n in counts.values() if n > 1),
            "too_many": api.too_many, "retried": api.retried,
            "achieved_rate": api.achieved_rate(),
        })  # fmt: skip

    async def reset(_: Request) -> JSONResponse:
        api.per_chat.clear()
        api.arrivals.clear()
        api.calls.clear()
        api.delivered.clear()
        api.refused.clear()
        api.too_many = api.sends = api.retried = 0
        return JSONResponse({"ok": True})

    async def delivered(_: Request) -> JSONResponse:
        return JSONResponse(sorted(api.per_chat))

    return [
        Route("/stats", stats),
        Route("/reset", reset, methods=["POST"]),
        Route("/delivered", delivered),  # the chats that got at least one promo
    ]


def main() -> None:
    """Serve a limited fake Bot API on 127.0.0.1 and print its port; stop it with SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--per-chat", type=float, default=1.0)
    parser.add_argument("--flood-every", type=int, default=0)
    parser.add_argument("--flood-wait", type=float, default=1.0)
    args = parser.parse_args()
    api = LimitedBotApi(
        window=Window(args.rate, args.per_chat),
        flood_every=args.flood_every,
        flood_wait=args.flood_wait,
    )
    bot_api = Route("/bot{token}/{method}", api._endpoint, methods=["GET", "POST"])
    app = Starlette(routes=[*_control_routes(api), bot_api])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    main()
