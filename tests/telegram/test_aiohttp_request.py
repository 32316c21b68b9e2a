"""The aiohttp transport against the fake Bot API: answers, refusals, files and timeouts."""

from __future__ import annotations

import asyncio
import io
import socket

import pytest
from telegram import Bot, InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from adapters.aiohttp_request import AiohttpRequest
from tests.fake_telegram import BLOCKED, retry_after

TOKEN = "123456:TEST-token"


def bot_on(base_url: str, request: AiohttpRequest | None = None) -> Bot:
    return Bot(TOKEN, base_url=base_url, request=request or AiohttpRequest(8))


async def test_sends_a_message_with_its_keyboard_as_a_form(fake_api):
    api, base_url = fake_api
    async with bot_on(base_url) as bot:
        sent = await bot.send_message(42, "hola", reply_markup={"inline_keyboard": [[
            {"text": "Sí", "callback_data": "yes"}]]})  # fmt: skip
    assert sent.text == "hola"
    [call] = api.sent(42)
    assert call.params["text"] == "hola"
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "yes"


async def test_refusals_become_ptb_errors(fake_api, monkeypatch):
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # as bot/telegram_app.py opts in
    api, base_url = fake_api
    api.refuse("sendMessage", retry_after(3))
    api.refuse("sendMessage", BLOCKED)
    api.refuse("sendMessage", {"ok": False, "error_code": 400, "description": "Bad Request: x"})
    async with bot_on(base_url) as bot:
        with pytest.raises(RetryAfter):
            await bot.send_message(1, "a")
        with pytest.raises(Forbidden):
            await bot.send_message(1, "b")
        with pytest.raises(BadRequest):
            await bot.send_message(1, "c")


async def test_uploads_files_as_multipart(fake_api):
    api, base_url = fake_api
    async with bot_on(base_url) as bot:
        await bot.send_document(7, InputFile(io.BytesIO(b"%PDF-1"), filename="r.pdf"))
    [call] = api.of("sendDocument")
    assert call.params["chat_id"] == "7"


async def test_a_silent_server_is_a_timeout():
    async def silent(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = AiohttpRequest(2, read_timeout=0.2, write_timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
    finally:
        await request.shutdown()
        server.close()


async def test_a_refused_connection_is_a_network_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    request = AiohttpRequest(2)
    await request.initialize()
    try:
        with pytest.raises(NetworkError):
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
    finally:
        await request.shutdown()


async def test_refuses_to_send_before_initialize():
    with pytest.raises(RuntimeError):
        await AiohttpRequest().do_request("http://127.0.0.1:1/x", "POST")
