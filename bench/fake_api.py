"""A lean fake Telegram Bot API for the benchmark, in its own process (aiohttp.web).

It answers like Telegram, and streams every sendMessage it records (chat, text, the URL button
if any, and ``time.perf_counter()`` at arrival: CLOCK_MONOTONIC, comparable across processes)
to the load generator over a websocket at ``/events``. Nothing is kept: memory stays flat.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import time
from typing import Any

from aiohttp import web

BOT_USER = {"id": 777000111, "is_bot": True, "first_name": "BenchBot", "username": "BenchBot"}
_URL = re.compile(r'"url":\s*"([^"]+)"')


class Fake:
    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.listeners: set[web.WebSocketResponse] = set()
        self.counts: dict[str, int] = {}

    async def method(self, request: web.Request) -> web.Response:
        at = time.perf_counter()
        name = request.match_info["method"]
        self.counts[name] = self.counts.get(name, 0) + 1
        params: Any
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = await request.post()
        result: Any = True
        if name == "getMe":
            result = BOT_USER
        elif name == "sendMessage":
            chat, text = str(params["chat_id"]), str(params["text"])
            markup = params.get("reply_markup")
            url = _URL.search(markup if isinstance(markup, str) else json.dumps(markup or {}))
            event = json.dumps([chat, text, url.group(1) if url else None, at])
            for ws in list(self.listeners):
                await ws.send_str(event)
            result = {
                "message_id": next(self.ids), "date": int(time.time()), "text": text,
                "chat": {"id": int(chat), "type": "private"}, "from": BOT_USER,
            }  # fmt: skip
        return web.json_response({"ok": True, "result": result})

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.listeners.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            self.listeners.discard(ws)
        return ws

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response(self.counts)


def main(port: int) -> None:
    fake = Fake()
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", fake.method)
    app.router.add_get("/events", fake.events)
    app.router.add_get("/stats", fake.stats)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=2048)


if __name__ == "__main__":
    main(int(sys.argv[1]))
