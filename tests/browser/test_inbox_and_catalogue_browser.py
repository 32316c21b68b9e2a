"""The handoff inbox and the catalogue page in headless chromium: an agent answers a chat that
asked for a person (the answer reaches the Telegram fake and the chat is the bot's again), and an
admin hides a package that the bot's package menu then leaves out at once."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from conversations import messages as msg
from conversations.machine import Text
from conversations.model import Channel, ChatKey
from tests.admin.conftest import ADMIN, AGENT
from tests.browser.conftest import Site, log_in, screenshot, text_of, wait_for
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer

ROSA = ChatKey(Channel.TELEGRAM, "5550001")
ANSWER = "Hola, soy Carla del equipo. Tu recarga ya llegó a las 10:02."


async def say(site: Site, *texts: str) -> None:
    for body in texts:
        await site.services.chat.handle(ROSA, Text(body))


def test_an_agent_answers_a_handoff_chat_and_gives_it_back_to_the_bot(
    driver: WebDriver, telegram_site: Site
):
    site = telegram_site
    site.run(say(site, "quiero hablar con un asesor", "no me llegó la recarga de ayer"))
    told = site.telegram.texts(ROSA.chat_id)
    log_in(driver, site, AGENT)
    driver.get(f"{site.url}/admin/handoffs")
    [chat] = driver.find_elements(By.CSS_SELECTOR, "section.handoff")
    shown = chat.text
    customer_id = chat.get_attribute("id").removeprefix("chat-")
    screenshot(driver, "handoff-inbox")

    driver.find_element(By.ID, f"answer-{customer_id}").send_keys(ANSWER)
    driver.find_element(By.ID, f"send-back-{customer_id}").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "empty"))
    after_answer = site.telegram.texts(ROSA.chat_id)
    site.run(say(site, "hola"))
    greeted = site.telegram.texts(ROSA.chat_id)[len(after_answer) :]

    assert len(told) == 1 and told[0].startswith("Listo, le pasé tu chat")  # then silence
    assert "quiero hablar con un asesor" in shown and "no me llegó la recarga de ayer" in shown
    assert "telegram:…0001" in shown and "5550001" not in shown
    assert after_answer[len(told) :] == [ANSWER, msg.back_to_bot().text]
    assert greeted and greeted[0].startswith("¡Hola! Soy RecargaBot")  # the bot answers again
    assert text_of(driver, "empty") == "Ningún chat espera ahora."


def test_an_admin_hides_a_package_and_the_bot_menu_leaves_it_out(driver: WebDriver, site: Site):
    first = site.run(site.services.catalogue.listing())[0]
    label = msg.product_label(first.product())
    customer = Customer(site.services, site.messenger)
    before = site.run(customer.say(*NEW_CUSTOMER_TO_SUMMARY[:6], "Paquetes"))[-1]
    log_in(driver, site, ADMIN)
    driver.get(f"{site.url}/admin/catalogue")

    driver.find_element(By.ID, f"hide-{first.code}").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, f"show-{first.code}"))
    state = driver.find_element(By.CSS_SELECTOR, f"#package-{first.code} .state").text
    screenshot(driver, "catalogue")
    another = Customer(site.services, site.messenger, ChatKey(Channel.TERMINAL, "chat-2"))
    after = site.run(another.say(*NEW_CUSTOMER_TO_SUMMARY[:6], "Paquetes"))[-1]

    assert label in [option.label for option in before.options]
    assert state == "oculto"
    assert after.options and label not in [option.label for option in after.options]
