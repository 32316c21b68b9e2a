"""Small web pages and routes of the app: health and the pages customers land on after paying."""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

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


async def payment_done(_: Request) -> Response:
    """Land the customer after paying; the chat confirms the top-up, so no order data shows."""
    return page("¡Gracias!", "Recibimos tu pago. Vuelve al chat: ahí te confirmamos tu recarga.")


async def payment_cancelled(_: Request) -> Response:
    return page(
        "Pago no realizado", "No se realizó ningún cargo. Puedes volver al chat cuando quieras."
    )
