"""Small web pages and routes of the app: health and the pages customers land on after paying."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from conversations.errors import PaymentProviderError

logger = logging.getLogger(__name__)

_PAGE = """<!doctype html><html lang="es"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem}}
</style>
</head><body><h1>{title}</h1><p>{body}</p></body></html>"""


def page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    """Render a minimal, mobile-friendly Spanish page; every text is escaped."""
    return HTMLResponse(_PAGE.format(title=escape(title), body=escape(body)), status_code)


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


THANKS = "Recibimos tu pago. Vuelve al chat: ahí te confirmamos tu recarga."


def payment_done(
    fulfil_checkout: Callable[[str], Awaitable[None]],
) -> Callable[[Request], Awaitable[Response]]:
    """Build the page customers land on after paying; it fulfils the order if the webhook lags."""

    async def endpoint(request: Request) -> Response:
        """Check the order's own checkout (never a session id from the URL), then thank."""
        try:
            await fulfil_checkout(request.path_params["order_id"])
        except PaymentProviderError:
            logger.warning("success page could not check the checkout", exc_info=True)
        # The same page whatever the order: the chat confirms, and nothing leaks about others.
        return page("¡Gracias!", THANKS)

    return endpoint


async def payment_cancelled(_: Request) -> Response:
    return page(
        "Pago no realizado", "No se realizó ningún cargo. Puedes volver al chat cuando quieras."
    )
