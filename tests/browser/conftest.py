"""The console in a real browser: Debian's chromium, headless, driven by Selenium.

Selenium's calls block, so the bot and its fakes (Stripe, the Telegram Bot API) run in a thread
of their own with its own event loop, served by uvicorn on 127.0.0.1; the test reaches into that
loop with ``Site.run``. Chromium and its driver come from scripts/with-chromium.sh, which
installs Debian's packages when they are missing, so a fresh clone's ``make test`` runs these too.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from bot.admin.security import hash_password
from bot.app import Overrides, Services, build
from bot.settings import Settings
from storage.db import make_sessionmaker
from storage.operators import Role, SqlOperators
from tests.admin.conftest import ADMIN, AGENT, PASSWORD
from tests.fake_stripe import FakeStripe
from tests.fake_telegram import FakeBotApi, serving
from tests.fakes import RecordingMessenger
from tests.servers import served
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer

ROOT = Path(__file__).resolve().parents[2]
# Where the screenshots go: a scratch folder, so `make test` leaves the clone clean;
# RECARGABOT_SCREENSHOTS=docs/screenshots refreshes the README's.
SCREENSHOTS = Path(
    os.environ.get("RECARGABOT_SCREENSHOTS") or Path(tempfile.gettempdir()) / "recargabot-shots"
)
T = TypeVar("T")
# Selenium must neither download a driver nor send usage statistics: everything is local.
os.environ.setdefault("SE_OFFLINE", "true")
os.environ.setdefault("SE_AVOID_STATS", "true")


def _browser_paths() -> tuple[str, str]:
    """Chromium and chromedriver, installed by the project's script when missing."""
    found = subprocess.run(
        [str(ROOT / "scripts" / "with-chromium.sh"), "sh", "-c",
         'printf "%s\\n%s" "$CHROMIUM_BINARY" "$CHROMEDRIVER"'],
        check=True, capture_output=True, text=True, timeout=900,
    ).stdout.split("\n")  # fmt: skip
    return found[0], found[1]


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    chromium, chromedriver = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-dev-shm-usage", "--window-size=1280,1400",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):  # fmt: skip
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


@dataclass
class Site:
    """The bot and its fakes, served from a thread with its own event loop."""

    url: str
    services: Services
    stripe: FakeStripe
    telegram: FakeBotApi
    messenger: RecordingMessenger  # the customers' chats, unless they go to the Telegram fake
    loop: asyncio.AbstractEventLoop

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine in the site's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=120)

    async def held_order(self) -> str:
        """A paid order (at the Stripe fake) that the sandbox provider holds: an empty wallet."""
        customer = Customer(self.services, self.messenger)
        steps = list(NEW_CUSTOMER_TO_SUMMARY)
        steps[2] = "987 650 002"
        await customer.say(*steps, "Confirmar")
        session_id = customer.last_link().rsplit("/", 1)[-1]
        self.stripe.complete(session_id)
        order_id: str = self.stripe.sessions[session_id]["client_reference_id"]
        await self.services.fulfilment.fulfil_checkout(order_id)  # as the success page does
        return order_id


async def _start(
    stack: AsyncExitStack, tmp_path: Path, database_url: str, *, chats_on_telegram: bool
) -> Site:
    stripe_fake, telegram_fake = FakeStripe(), FakeBotApi()
    stripe_url = await stack.enter_async_context(served(stripe_fake.app()))
    telegram_url = await stack.enter_async_context(serving(telegram_fake))
    settings = Settings(
        _env_file=None, database_url=database_url, public_base_url="https://bot.test",
        sandbox_secret_path=tmp_path / "sandbox-secret", stripe_secret_key="sk_test_fake",
        stripe_api_base_url=stripe_url, stripe_webhook_secret=stripe_fake.webhook_secret,
        telegram_bot_token="123456:browser-test", telegram_api_base_url=telegram_url,
        telegram_webhook_secret="browser_test_secret",
        promo_telegram_per_second=250, promo_telegram_per_chat_seconds=0,
    )  # fmt: skip
    messenger = RecordingMessenger()  # the customers' own chats; promos go to the Telegram fake
    app = build(settings, overrides=Overrides(messenger=None if chats_on_telegram else messenger))
    services = await stack.enter_async_context(app.state.services.lifetime())
    operators = SqlOperators(make_sessionmaker(services.engine))
    for email, role in ((ADMIN, Role.ADMIN), (AGENT, Role.AGENT)):
        await operators.add(
            email, role=role, password_hash=hash_password(PASSWORD), at=services.fulfilment.clock()
        )
    url = await stack.enter_async_context(served(app))
    return Site(url, services, stripe_fake, telegram_fake, messenger, asyncio.get_running_loop())


@pytest.fixture
def site(tmp_path: Path, database_url: str, driver: WebDriver) -> Iterator[Site]:
    yield from _site(tmp_path, database_url, driver, chats_on_telegram=False)


@pytest.fixture
def telegram_site(tmp_path: Path, database_url: str, driver: WebDriver) -> Iterator[Site]:
    """The site with the customers' chats on the Telegram fake too (the bot's own messenger)."""
    yield from _site(tmp_path, database_url, driver, chats_on_telegram=True)


def _site(
    tmp_path: Path, database_url: str, driver: WebDriver, *, chats_on_telegram: bool
) -> Iterator[Site]:
    loop = asyncio.new_event_loop()
    ready: list[Site] = []
    started, stop = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        async with AsyncExitStack() as stack:
            try:
                ready.append(await _start(stack, tmp_path, database_url,
                                          chats_on_telegram=chats_on_telegram))  # fmt: skip
            except Exception as error:  # told to the test, which raises it
                failure.append(error)
                return
            finally:
                started.set()
            while not stop.is_set():
                await asyncio.to_thread(stop.wait, 1)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(120), "the site did not start"
    if failure:
        raise failure[0]
    try:
        yield ready[0]
    finally:
        driver.delete_all_cookies()
        stop.set()
        thread.join(30)
        loop.close()


def log_in(driver: WebDriver, site: Site, email: str, password: str = PASSWORD) -> None:
    driver.get(f"{site.url}/admin/login")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login").click()
    wait_for(driver, lambda d: d.find_elements(By.ID, "logout") or d.find_elements(By.ID, "error"))


def wait_for(driver: WebDriver, condition: Any, within: float = 60) -> Any:
    return WebDriverWait(driver, within, poll_frequency=0.1).until(condition)


def screenshot(driver: WebDriver, name: str) -> None:
    """Save the page as NAME.png in SCREENSHOTS."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)
