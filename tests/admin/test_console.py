"""The console's locks and pages: off without operators, sign-in, CSRF, throttling, masking,
audited reveals, security headers, the timeline, and actions through the use cases."""

from __future__ import annotations

import asyncio
import re

import httpx
from pydantic import SecretStr

from bot.admin import session_key
from bot.admin.security import COOKIE, Cookies
from bot.app import Overrides, build
from conversations.model import OrderState
from storage.campaigns import SqlCampaigns
from storage.db import make_sessionmaker
from storage.operators import Role, SqlOperators
from tests.admin.conftest import ADMIN, AGENT, Console
from tests.fake_telegram import FakeBotApi, serving
from tests.fakes import RecordingMessenger
from tests.promos.conftest import Customers
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer


async def test_without_operators_the_console_is_not_there(console: Console):
    browser = console.browser()

    pages = [await browser.get(path) for path in ("/admin/", "/admin/login", "/admin/orders")]

    assert [page.status_code for page in pages] == [404, 404, 404]


async def test_a_visitor_is_sent_to_sign_in(staffed: Console):
    response = await staffed.browser().get("/admin/orders")

    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"


async def test_signing_in_sets_a_strict_http_only_session_and_signing_out_ends_it(staffed):
    browser = staffed.browser()

    signed_in = await browser.login(ADMIN)
    dashboard = await browser.get("/admin/")
    out = await browser.post("/admin/logout", {})
    after = await browser.get("/admin/")

    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    assert "max-age=28800" in cookie
    assert dashboard.status_code == 200 and "Ventas hoy" in dashboard.text
    assert out.status_code == 303
    assert after.status_code == 303


async def test_a_wrong_password_is_refused_and_audited(staffed: Console):
    response = await staffed.browser().login(ADMIN, "no-es-la-clave")

    assert response.status_code == 401
    assert "Correo o contraseña incorrectos" in response.text
    actions = [(e.action, e.allowed) for e in await staffed.services.audit.entries()]
    assert ("login_failed", False) in actions


async def test_five_failures_lock_the_account_even_with_the_right_password(staffed: Console):
    browser = staffed.browser()
    for _ in range(5):
        await browser.login(ADMIN, "no-es-la-clave")

    locked = await staffed.browser("10.0.0.9").login(ADMIN)
    other = await staffed.browser("10.0.0.9").login(AGENT)

    assert locked.status_code == 429
    assert "Demasiados intentos" in locked.text
    assert other.status_code == 303  # another account from another address is not locked


async def test_twenty_failures_from_one_address_lock_it_for_every_account(staffed: Console):
    browser = staffed.browser("10.0.0.7")
    for attempt in range(20):
        await browser.login(f"nadie{attempt}@x.pe", "no-es-la-clave")

    locked = await staffed.browser("10.0.0.7").login(AGENT)
    elsewhere = await staffed.browser("10.0.0.8").login(AGENT)

    assert locked.status_code == 429
    assert elsewhere.status_code == 303


async def test_a_form_without_its_csrf_token_is_refused(staffed: Console, messenger):
    order_id = await staffed.held_order(messenger)
    browser = staffed.browser()
    await browser.login(ADMIN)

    refused = await browser.post(
        f"/admin/orders/{order_id}/refund", {"reason": "x", "confirm": "yes"}, csrf=False
    )
    login_without = await staffed.browser().post(
        "/admin/login", {"email": ADMIN, "password": "una-clave-larga-2026"}, csrf=False
    )

    assert refused.status_code == 403
    assert (await staffed.services.orders.get(order_id)).state is OrderState.HELD
    assert staffed.services.payments.refunds == {}
    assert login_without.status_code == 403


async def test_an_agent_sees_masked_data_and_cannot_reveal_it(staffed, messenger):
    order_id = await staffed.held_order(messenger)
    browser = staffed.browser()
    await browser.login(AGENT)

    page = await browser.get(f"/admin/orders/{order_id}")
    found = await browser.get("/admin/orders", params={"phone": "987650002"})
    reveal = await browser.post(f"/admin/orders/{order_id}/reveal", {})

    results = found.text[found.text.index('id="results"') :]  # the form keeps what was typed
    for shown in (page.text, results, reveal.text):
        assert "9** *** 002" in shown
        assert "987650002" not in shown and "45678912" not in shown
    assert "M*** Q***" in page.text and "María" not in page.text
    assert reveal.status_code == 403
    assert 'id="reveal"' not in page.text
    entries = [
        (e.actor, e.action, e.allowed, e.target) for e in await staffed.services.audit.entries()
    ]
    assert entries[-2:] == [
        (f"console:{AGENT}", "search_phone", True, "found:1"),
        (f"console:{AGENT}", "reveal", False, order_id),
    ]


async def test_an_admin_reveals_and_the_reveal_is_audited(staffed: Console, messenger):
    order_id = await staffed.held_order(messenger)
    browser = staffed.browser()
    await browser.login(ADMIN)

    revealed = await browser.post(f"/admin/orders/{order_id}/reveal", {})

    assert "987650002" in revealed.text and "45678912" in revealed.text
    entries = await staffed.services.audit.entries()
    reveal = [e for e in entries if e.action == "reveal"]
    assert [(e.actor, e.allowed, e.target) for e in reveal] == [
        (f"console:{ADMIN}", True, order_id)
    ]
    assert "Vio los datos personales" in revealed.text  # on the order's timeline


async def test_every_page_has_the_security_headers(staffed: Console):
    browser = staffed.browser()
    pages = [await browser.get("/admin/login")]
    await browser.login(ADMIN)
    for path in ("/admin/", "/admin/orders", "/admin/promos", "/admin/static/console.css"):
        pages.append(await browser.get(path))

    for page in pages:
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"


async def test_the_timeline_shows_every_state_with_its_cause(staffed: Console, messenger):
    order_id = await staffed.held_order(messenger)
    browser = staffed.browser()
    await browser.login(AGENT)

    page = await browser.get(f"/admin/orders/{order_id}")

    timeline = page.text[page.text.index('id="timeline"') :]
    states = re.findall(r"<strong>([^<]+)</strong>", timeline)
    assert states == ["Esperando pago", "Pagado", "Recargando", "Retenido"]  # one per change
    assert "(evt_" in timeline  # the webhook event that paid it
    assert "(INSUFFICIENT_BALANCE)" in timeline  # why it is held


async def test_a_refund_needs_a_reason_and_a_confirmation_and_happens_once(staffed, messenger):
    order_id = await staffed.held_order(messenger)
    browser = staffed.browser()
    await browser.login(ADMIN)
    path = f"/admin/orders/{order_id}/refund"

    unconfirmed = await browser.post(path, {"reason": "el cliente lo pidió"})
    done = await browser.post(path, {"reason": "el cliente lo pidió", "confirm": "yes"})
    again = await browser.post(path, {"reason": "el cliente lo pidió", "confirm": "yes"})

    assert unconfirmed.status_code == 400
    assert "Devolución hecha" in done.text
    assert "Devolución hecha" in again.text  # idempotent: still refunded, nothing new
    assert staffed.services.payments.refunds == {order_id: 1000}
    assert (await staffed.services.orders.get(order_id)).state is OrderState.REFUNDED
    assert "operador: el cliente lo pidió" in again.text


async def test_an_agent_cannot_refund(staffed: Console, messenger: RecordingMessenger):
    order_id = await staffed.held_order(messenger)
    browser = staffed.browser()
    await browser.login(AGENT)

    refused = await browser.post(
        f"/admin/orders/{order_id}/refund", {"reason": "x", "confirm": "yes"}
    )

    assert refused.status_code == 403
    assert staffed.services.payments.refunds == {}


async def test_retrying_a_held_top_up_goes_through_fulfilment(staffed: Console, messenger):
    order_id = await staffed.held_order(messenger)
    browser = staffed.browser()
    await browser.login(AGENT)

    page = await browser.post(f"/admin/orders/{order_id}/retry", {})

    assert "Reintento enviado" in page.text
    assert staffed.services.topups.posts[order_id] == 2  # type: ignore[attr-defined]
    assert (await staffed.services.orders.get(order_id)).state is OrderState.HELD


async def test_search_by_day_and_by_id(staffed: Console, messenger: RecordingMessenger):
    order_id = await staffed.held_order(messenger)
    browser = staffed.browser()
    await browser.login(AGENT)

    by_day = await browser.get("/admin/orders", params={"day": "2026-11-25"})
    other_day = await browser.get("/admin/orders", params={"day": "2026-11-24"})
    by_id = await browser.get("/admin/orders", params={"id": order_id})

    assert order_id[:12] in by_day.text and order_id[:12] in by_id.text
    assert order_id[:12] not in other_day.text


async def test_the_dashboard_counts_held_orders_and_sales(staffed: Console, messenger):
    await staffed.held_order(messenger)
    browser = staffed.browser()
    await browser.login(AGENT)

    page = await browser.get("/admin/")

    assert "Retenidos (1)" in page.text
    assert 'id="today-sales">S/ 10.00<' in page.text


async def test_the_dashboard_shows_the_provider_wallet_and_warns_when_it_runs_low(
    settings, clock, messenger
):
    """The sandbox wallet holds S/ 5,000.00 less what it credited; below the setting, a warning."""
    low = settings.model_copy(update={"wallet_low_balance": 4995.0})
    app = build(low, overrides=Overrides(clock=clock, messenger=messenger))
    async with app.state.services.lifetime(background=False) as services:
        console = Console(services, httpx.ASGITransport(app=app))
        await console.add_operator(AGENT, Role.AGENT)
        browser = console.browser()
        await browser.login(AGENT)
        before = await browser.get("/admin/")
        customer = Customer(services, messenger)
        await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")
        await customer.pay()  # S/ 10.00 credited by the sandbox provider
        after = await browser.get("/admin/")

    assert '<p id="wallet">Saldo del proveedor: S/ 5,000.00</p>' in before.text
    assert "Saldo del proveedor bajo: S/ 4,990.00" in after.text


async def test_a_scheduled_promo_waits_for_its_time_and_a_cancelled_one_never_goes(
    settings, clock, messenger
):
    api = FakeBotApi()
    async with serving(api) as url:
        telegram = {
            "telegram_bot_token": SecretStr("123:console"), "telegram_api_base_url": url,
            "telegram_webhook_secret": SecretStr("console_secret"),
            "promo_telegram_per_chat_seconds": 0,
        }  # fmt: skip
        app = build(
            settings.model_copy(update=telegram),
            overrides=Overrides(clock=clock, messenger=messenger),
        )
        async with app.state.services.lifetime(background=False) as services:
            console = Console(services, httpx.ASGITransport(app=app))
            await console.add_operator(ADMIN, Role.ADMIN)
            keys = await Customers.of(services.engine).many(1, 3)
            browser = console.browser()
            await browser.login(ADMIN)
            at_11 = {
                "text": "¡Promo!",
                "channel": "telegram",
                "intent": "send",
                "send_at": "2026-11-25T11:00",
            }  # fmt: skip  (the clock reads 10:00 in Lima)
            kept = await browser.post("/admin/promos", at_11)
            dropped = await browser.post("/admin/promos", at_11)
            await browser.get(dropped.headers["location"])
            await browser.post(f"{dropped.headers['location']}/cancel", {})

            await services.worker.run_once()
            early = len(api.of("sendMessage"))
            clock.advance(hours=1)
            await services.worker.run_once()
            await api.wait_for(lambda: len(api.of("sendMessage")) == 3)
            await _campaigns_sent()

            campaigns = SqlCampaigns(make_sessionmaker(services.engine))
            states = [(c.id, c.state) for c in await campaigns.latest()]

    assert kept.status_code == dropped.status_code == 303
    assert early == 0
    assert states == [(2, "cancelled"), (1, "done")]
    assert {call.params["chat_id"] for call in api.of("sendMessage")} == {k.chat_id for k in keys}


async def _campaigns_sent() -> None:
    """Wait for the console's background sends to end."""
    running = [t for t in asyncio.all_tasks() if t.get_coro().__name__ == "run_campaign"]
    await asyncio.gather(*running)


async def test_disabling_the_last_account_signs_it_out_and_turns_the_console_off(console):
    await console.add_operator(ADMIN, Role.ADMIN)
    browser = console.browser()
    await browser.login(ADMIN)
    before = await browser.get("/admin/orders")

    await SqlOperators(make_sessionmaker(console.services.engine)).disable(
        ADMIN, at=console.services.fulfilment.clock()
    )
    after = await browser.get("/admin/orders")

    assert before.status_code == 200
    assert after.status_code == 404


async def test_resending_the_last_notice_tells_the_customer_again(staffed: Console, messenger):
    customer = Customer(staffed.services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")
    await customer.pay()
    order_id = next(iter(staffed.services.topups.posts))  # type: ignore[attr-defined]
    browser = staffed.browser()
    await browser.login(AGENT)

    page = await browser.post(f"/admin/orders/{order_id}/resend", {})

    assert "Aviso reenviado" in page.text
    assert sum("Recarga exitosa" in text for text in customer.texts()) == 2


async def test_a_session_is_not_renewed_by_use_and_its_age_is_checked_server_side(staffed):
    browser = staffed.browser()
    await browser.login(ADMIN)
    pages = [await browser.get("/admin/orders") for _ in range(3)]
    cookie = browser.client.cookies.get(COOKIE)
    key = session_key(staffed.services.settings)

    now = Cookies(key).read(cookie)
    past_its_age = Cookies(key, max_age=-1).read(cookie)

    assert all("set-cookie" not in page.headers for page in pages)  # 8 h from sign-in, not use
    assert now is not None and now.operator_id is not None
    assert past_its_age is None
