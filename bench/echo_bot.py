"""The baseline: a minimal python-telegram-bot echo bot behind a Starlette webhook route.

``python -m bench.echo_bot PORT API_BASE httpx|aiohttp``: the same server (uvicorn), the same
fake Bot API and the same concurrency as our bot; only the outgoing transport differs.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from adapters.aiohttp_request import AiohttpRequest

TOKEN = "123456:BENCH-token"


async def echo(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message and message.text:
        await message.reply_text(message.text)


def build(api_base: str, transport: str) -> Starlette:
    builder = Application.builder().token(TOKEN).base_url(api_base).updater(None)
    builder = builder.concurrent_updates(256)
    if transport == "aiohttp":
        builder = builder.request(AiohttpRequest(256)).get_updates_request(AiohttpRequest(1))
    else:
        builder = builder.connection_pool_size(256)  # PTB's HTTPXRequest, pool sized as ours
    application = builder.build()
    application.add_handler(MessageHandler(filters.TEXT, echo))

    async def webhook(request: Request) -> Response:
        update = Update.de_json(await request.json(), application.bot)
        await application.update_queue.put(update)
        return Response()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with application:
            await application.start()
            yield
            await application.stop()

    return Starlette(routes=[Route("/telegram/webhook", webhook, methods=["POST"])],
                     lifespan=lifespan)  # fmt: skip


if __name__ == "__main__":
    port, api_base, transport = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    uvicorn.run(build(api_base, transport), host="127.0.0.1", port=port, log_level="warning",
                backlog=2048)  # fmt: skip
