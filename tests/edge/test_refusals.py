"""The web edge answers from the request's head alone when the head already says no, and marks
every HTML page as one no other site may frame or sniff.

The app is the real build() with every channel on, called as an ASGI server would call it, with a
body that never arrives: an answer proves that nothing of the body was read (or stored) first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from bot.app import build
from bot.settings import Settings
from bot.telegram_app import WEBHOOK_PATH
from bot.telegram_inbox import SECRET_HEADER
from tests.whatsapp.conftest import ACCOUNT_SID
from tests.whatsapp.phone import AUTH_TOKEN, SENDER

TELEGRAM_SECRET = "edge-test-secret"
MB = 1_000_000


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Starlette]:
    """Every route on; nothing started, so nothing beyond the edge and the routes can answer."""
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        public_base_url="https://bot.test",
        sandbox_secret_path=tmp_path / "sandbox-secret",
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=SecretStr(AUTH_TOKEN),
        twilio_whatsapp_from=SENDER,
        twilio_api_base_url="http://127.0.0.1:9",
        telegram_bot_token=SecretStr("123456:edge-test-token"),
        telegram_webhook_secret=SecretStr(TELEGRAM_SECRET),
        telegram_api_base_url="http://127.0.0.1:9/bot",
        http_read_timeout_seconds=30,
    )
    built = build(settings)
    yield built
    await built.state.services.engine.dispose()


async def answer_to_head(app: Starlette, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """POST with these headers and a body that never comes; the response start, within 5 s."""
    never = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await never.wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    await asyncio.wait_for(app(scope, receive, send), 5)
    return sent[0]


SIGNED_STRIPE = {"stripe-signature": "t=1,v1=00", "content-type": "application/json"}
SIGNED_TWILIO = {"x-twilio-signature": "c2lnbmF0dXJl"}
URLENCODED = {"content-type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        pytest.param(
            "/payments/stripe/webhook", {**SIGNED_STRIPE, "content-length": str(100 * MB)}, 413,
            id="stripe: 100 MB declared",
        ),
        pytest.param(
            "/payments/stripe/webhook", {"content-type": "application/json",
                                         "content-length": "900"}, 400,
            id="stripe: no signature header",
        ),
        pytest.param(
            "/whatsapp/webhook",
            {**SIGNED_TWILIO, "content-type": "multipart/form-data; boundary=x",
             "content-length": str(20 * MB)}, 413,
            id="twilio: 20 MB multipart",
        ),
        pytest.param(
            "/whatsapp/webhook",
            {**SIGNED_TWILIO, "content-type": "multipart/form-data; boundary=x",
             "content-length": "900"}, 415,
            id="twilio: multipart (Twilio posts url-encoded forms)",
        ),
        pytest.param(
            "/whatsapp/webhook", {**URLENCODED, "content-length": "900"}, 403,
            id="twilio: no signature header",
        ),
        pytest.param(
            WEBHOOK_PATH,
            {SECRET_HEADER: TELEGRAM_SECRET, "content-type": "application/json",
             "content-length": str(10 * MB)}, 413,
            id="telegram: 10 MB declared",
        ),
        pytest.param(
            "/sandbox/checkout/cs_test_x", {**URLENCODED, "content-length": str(MB)}, 413,
            id="sandbox page: 1 MB form",
        ),
    ],
)  # fmt: skip
async def test_a_head_that_says_no_is_answered_before_the_body_is_read(
    app: Starlette, path: str, headers: dict[str, str], status: int
) -> None:
    start = await answer_to_head(app, path, headers)

    assert start["status"] == status
    # The unread rest must not be read and thrown away by the server: the connection ends.
    assert (b"connection", b"close") in start["headers"]


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        yield client


@pytest.mark.parametrize("path", ["/pay/o1/cancelled", "/sandbox/checkout/cs_test_unknown"])
async def test_every_html_page_forbids_framing_sniffing_and_foreign_content(
    http: httpx.AsyncClient, path: str
) -> None:
    response = await http.get(path)

    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_json_answers_are_not_sniffed_either(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")

    assert response.headers["x-content-type-options"] == "nosniff"
