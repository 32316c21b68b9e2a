"""The console in headless chromium: sign-in, throttling, CSRF, masking, a refund at the Stripe
fake and a 1,000-customer promo at the Telegram fake, with the README's screenshots."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from bench.console_data import seed
from conversations.model import Channel, ChatKey, OrderState
from tests.admin.conftest import ADMIN, AGENT
from tests.browser.conftest import Site, log_in, screenshot, text_of, wait_for
from tests.promos.conftest import Customers


def test_log_in_see_the_dashboard_and_log_out(driver: WebDriver, site: Site):
    site.run(site.held_order())
    now = site.services.fulfilment.clock()
    site.run(seed(site.services.engine, customers=200, orders=600, now=now))  # a month's trade

    log_in(driver, site, ADMIN)
    wait_for(driver, lambda d: d.find_elements(By.ID, "today-sales"))
    charts = driver.execute_script(
        "return ['chart-days','chart-channels','chart-products','chart-states']"
        ".map(id => Chart.getChart(id) !== undefined)"
    )
    screenshot(driver, "dashboard")
    driver.set_window_size(412, 915)  # a phone
    driver.refresh()
    wait_for(driver, lambda d: d.find_elements(By.ID, "today-sales"))
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    screenshot(driver, "dashboard-phone")
    driver.set_window_size(1280, 1400)
    driver.find_element(By.ID, "logout").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "login"))
    driver.get(f"{site.url}/admin/")

    assert charts == [True, True, True, True]
    assert overflow == 0  # nothing wider than the phone's screen
    assert text_of(driver, "login") == "Ingresar"  # sent back to the login page


def test_a_wrong_password_and_then_the_rate_limit(driver: WebDriver, site: Site):
    log_in(driver, site, ADMIN, "no-es-la-clave")
    first = text_of(driver, "error")
    for _ in range(4):
        log_in(driver, site, ADMIN, "no-es-la-clave")

    log_in(driver, site, ADMIN)  # the right password, too late

    assert first == "Correo o contraseña incorrectos."
    assert text_of(driver, "error") == "Demasiados intentos. Espera unos minutos."
    assert not driver.find_elements(By.ID, "logout")


def test_a_form_posted_without_its_csrf_token_is_refused(driver: WebDriver, site: Site):
    order_id = site.run(site.held_order())
    log_in(driver, site, ADMIN)
    driver.get(f"{site.url}/admin/orders/{order_id}")
    driver.find_element(By.ID, "refund-reason").send_keys("prueba")
    driver.find_element(By.ID, "refund-confirm").click()

    driver.execute_script(
        "document.querySelectorAll('form input[name=csrf]').forEach(e => e.remove())"
    )
    driver.find_element(By.ID, "refund").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "error"))

    assert "Formulario vencido" in text_of(driver, "error")
    assert site.stripe.refunds == {}
    assert site.run(site.services.orders.get(order_id)).state is OrderState.HELD


def test_an_agent_sees_masked_data_and_cannot_reveal_it(driver: WebDriver, site: Site):
    order_id = site.run(site.held_order())
    log_in(driver, site, AGENT)
    driver.get(f"{site.url}/admin/orders?phone=987650002")
    row = driver.find_element(By.CSS_SELECTOR, "#results tbody tr").text
    driver.get(f"{site.url}/admin/orders/{order_id}")
    shown = (text_of(driver, "msisdn"), text_of(driver, "owner"), text_of(driver, "document"))

    # No button for agents; a hand-made POST with a valid token is refused too.
    driver.execute_script(
        "const f = document.createElement('form'); f.method = 'post';"
        "f.action = location.pathname + '/reveal';"
        "f.appendChild(document.querySelector('input[name=csrf]').cloneNode());"
        "document.body.appendChild(f); f.submit();"
    )
    wait_for(driver, lambda d: d.find_elements(By.ID, "notice"))

    assert "9** *** 002" in row and "987650002" not in row
    assert shown == ("9** *** 002", "M*** Q***", "DNI ****8912")
    assert not driver.find_elements(By.ID, "reveal")
    assert text_of(driver, "notice") == "Solo un administrador puede hacerlo."
    assert text_of(driver, "msisdn") == "9** *** 002"


def test_a_refund_reaches_the_stripe_fake_once(driver: WebDriver, site: Site):
    order_id = site.run(site.held_order())
    log_in(driver, site, ADMIN)
    driver.get(f"{site.url}/admin/orders/{order_id}")

    driver.find_element(By.ID, "refund-reason").send_keys("el cliente lo pidió")
    driver.find_element(By.ID, "refund-confirm").click()
    driver.find_element(By.ID, "refund").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "notice"))
    notice = text_of(driver, "notice")
    driver.refresh()  # the browser offers to post the form again: Stripe still gets one refund
    screenshot(driver, "order-timeline")

    refunds = list(site.stripe.refunds.values())
    assert notice == "Devolución hecha."
    assert len(refunds) == 1 and refunds[0]["amount"] == 1000
    assert site.stripe.requests["create_refund"] == 1
    assert text_of(driver, "state") == "Devuelto"
    timeline = text_of(driver, "timeline")
    assert "Retenido" in timeline and "Devuelto" in timeline
    assert "Devolvió el pago — admin@recargas.pe" in timeline


def test_a_promo_to_1000_customers_fills_its_bar_and_matches_the_telegram_fake(
    driver: WebDriver, site: Site
):
    keys: list[ChatKey] = site.run(Customers.of(site.services.engine).many(1, 1000))
    log_in(driver, site, ADMIN)
    driver.get(f"{site.url}/admin/promos")
    driver.find_element(By.ID, "promo-text").send_keys("¡Doble de megas este sábado!")
    driver.find_element(By.CSS_SELECTOR, "#promo-channel option[value=telegram]").click()
    driver.find_element(By.ID, "preview").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "audience-total"))  # the page it posted to
    audience = text_of(driver, "audience-total")
    preview = text_of(driver, "preview-telegram")

    driver.find_element(By.ID, "send").click()
    wait_for(driver, lambda d: 30 <= int(d.find_element(By.ID, "percent").text) < 90)
    screenshot(driver, "promo-progress")
    wait_for(driver, lambda d: d.find_element(By.ID, "campaign-state").text == "terminada")

    sent_at_fake = {call.params["chat_id"] for call in site.telegram.of("sendMessage")}
    assert audience == "1000"
    assert "¡Doble de megas este sábado!" in preview
    assert text_of(driver, "percent") == "100"
    assert driver.find_element(By.ID, "bar").get_attribute("style") == "width: 100%;"
    assert text_of(driver, "count-sent") == "1000" == str(len(site.telegram.of("sendMessage")))
    assert sent_at_fake == {key.chat_id for key in keys}
    assert all(key.channel is Channel.TELEGRAM for key in keys)
    for state in ("failed", "blocked", "opted_out", "skipped", "unknown"):
        assert text_of(driver, f"count-{state}") == "0"
