"""A fake Telegram Bot API on loopback: the real PTB client talks HTTP to it.

It answers like Telegram (``{"ok": true, "result": ...}``), records every call, can be scripted
to refuse the next calls of a method with 429 (``retry_after``), 403 (bot blocked) or 502, can
hold its answers to one chat's sendMessage until the test lets them go (``hold``), or hang them
and answer 502 once the test ends the outage (``outage``), and serves queued
updates to ``getUpdates`` for the polling mode. Tests wait on its condition, never sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.servers import served

BOT_USER = {"id": 777000111, "is_bot": True, "first_name": "RecargaBot", "username": "RecargaBot"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.perf_counter() when it arrived
    ok: bool


@dataclass
class FakeBotApi:
    """The Bot API as the bot sees it, with what it was asked kept in ``calls``."""

    calls: list[Call] = field(default_factory=list)
    scripted: dict[tuple[str, str | None], list[dict[str, Any]]] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # chat of each sendMessage kept at a gate
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    # Messages delivered per chat, each chat with its own condition: 200 waiting chats must not
    # all wake up on every call.
    delivered: dict[str, list[Call]] = field(default_factory=dict)
    _per_chat: dict[str, asyncio.Condition] = field(default_factory=dict)
    _gates: dict[str, asyncio.Event] = field(default_factory=dict)
    _outages: dict[str, asyncio.Event] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def refuse(self, method: str, answer: dict[str, Any], *, chat_id: str | None = None) -> None:
        """Answer the next call of ``method`` (to ``chat_id`` only, if given) with ``answer``."""
        self.scripted.setdefault((method, chat_id), []).append(answer)

    def hold(self, chat_id: int | str) -> asyncio.Event:
        """Leave sendMessage calls to the chat unanswered and unrecorded until the event is set."""
        return self._gates.setdefault(str(chat_id), asyncio.Event())

    def outage(self, chat_id: int | str) -> asyncio.Event:
        """Hang sendMessage calls to the chat until the event is set, then answer them 502
        undelivered (the API was down when they came; the client has long timed out)."""
        return self._outages.setdefault(str(chat_id), asyncio.Event())

    async def post_update(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates."""
        async with self.changed:
            self.updates.append(update)
            self.changed.notify_all()

    def sent(self, chat_id: int | str | None = None) -> list[Call]:
        """sendMessage calls that succeeded, to one chat or all."""
        if chat_id is not None:
            return list(self.delivered.get(str(chat_id), []))
        return [c for c in self.calls if c.method == "sendMessage" and c.ok]

    def texts(self, chat_id: int | str) -> list[str]:
        return [c.params["text"] for c in self.sent(chat_id)]

    async def wait_sent(self, chat_id: int | str, count: int, within: float = 10) -> list[Call]:
        """Wait until ``count`` messages reached the chat; return them all."""
        chat = str(chat_id)
        condition = self._per_chat.setdefault(chat, asyncio.Condition())
        async with condition:
            await asyncio.wait_for(
                condition.wait_for(lambda: len(self.delivered.get(chat, [])) >= count), within
            )
        return self.sent(chat)

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10) -> None:
        """Wait until ``predicate()`` holds after some call; fail after ``within`` seconds."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), within)

    async def _endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        params = await _params(request)
        if method == "sendMessage":
            await self._gate(str(params.get("chat_id")))
        answer = await self._down(method, str(params.get("chat_id")))
        answer = answer or self._scripted(method, params)
        if answer is None and method == "getUpdates":
            answer = {"ok": True, "result": await self._updates(params)}
        answer = answer or {"ok": True, "result": self._result(method, params)}
        call = Call(method, params, time.perf_counter(), answer["ok"])
        async with self.changed:
            self.calls.append(call)
            self.changed.notify_all()
        if method == "sendMessage" and call.ok:
            await self._delivered(call)
        return JSONResponse(answer, status_code=answer.get("error_code", 200))

    async def _gate(self, chat: str) -> None:
        gate = self._gates.get(chat)
        if gate is None or gate.is_set():
            return
        async with self.changed:
            self.held.append(chat)
            self.changed.notify_all()
        await gate.wait()

    async def _down(self, method: str, chat: str) -> dict[str, Any] | None:
        outage = self._outages.get(chat)
        if method != "sendMessage" or outage is None or outage.is_set():
            return None
        async with self.changed:
            self.held.append(chat)
            self.changed.notify_all()
        await outage.wait()
        return BAD_GATEWAY

    async def _delivered(self, call: Call) -> None:
        chat = str(call.params["chat_id"])
        self.delivered.setdefault(chat, []).append(call)
        condition = self._per_chat.setdefault(chat, asyncio.Condition())
        async with condition:
            condition.notify_all()

    def _scripted(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        for chat in (str(params.get("chat_id")), None):
            queue = self.scripted.get((method, chat))
            if queue:
                return queue.pop(0)
        return None

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method in ("sendMessage", "editMessageText"):
            chat_id = int(params["chat_id"])
            return {
                "message_id": next(self._ids), "date": int(time.time()), "text": params["text"],
                "chat": {"id": chat_id, "type": "private"}, "from": BOT_USER,
            }  # fmt: skip
        return True  # setWebhook, deleteWebhook, setMyCommands, answerCallbackQuery

    async def _updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)

        def pending() -> list[dict[str, Any]]:
            return [u for u in self.updates if u["update_id"] >= offset]

        async with self.changed:
            # A short long-poll: realistic, and short enough to stop quickly.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait_for(pending), 0.5)
            return pending()


async def _params(request: Request) -> dict[str, Any]:
    """Read JSON or form parameters; form values holding JSON (reply_markup) are decoded."""
    if request.headers.get("content-type", "").startswith("application/json"):
        return dict(await request.json())
    form = await request.form()
    params: dict[str, Any] = {}
    for name, value in form.items():
        text = str(value)
        try:
            params[name] = json.loads(text) if text[:1] in "[{" else text
        except ValueError:
            params[name] = text
    return params


def retry_after(seconds: int) -> dict[str, Any]:
    return {
        "ok": False, "error_code": 429,
        "description": f"Too Many Requests: retry after {seconds}",
        "parameters": {"retry_after": seconds},
    }  # fmt: skip


BLOCKED = {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
BAD_GATEWAY = {"ok": False, "error_code": 502, "description": "Bad Gateway"}


@asynccontextmanager
async def serving(api: FakeBotApi) -> AsyncIterator[str]:
    """Serve the fake on 127.0.0.1, a free port, in this event loop; yield the bot API base URL."""
    app = Starlette(routes=[Route("/bot{token}/{method}", api._endpoint, methods=["GET", "POST"])])
    async with served(app) as url:
        yield f"{url}/bot"
