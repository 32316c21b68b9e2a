"""The console through the real build(), over HTTP in process (httpx's ASGI transport)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from bot.admin.security import hash_password
from bot.app import Overrides, Services, build
from bot.settings import Settings
from storage.db import make_sessionmaker
from storage.operators import Role, SqlOperators
from tests.fakes import MovableClock, RecordingMessenger
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer

PASSWORD = "una-clave-larga-2026"
ADMIN, AGENT = "admin@recargas.pe", "agente@recargas.pe"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Browser:
    """One operator's cookie jar, with the CSRF token of the last page it saw."""

    client: httpx.AsyncClient
    csrf: str = ""

    async def get(self, path: str, **kw: object) -> httpx.Response:
        response = await self.client.get(path, **kw)  # type: ignore[arg-type]
        self._remember(response)
        return response

    async def post(self, path: str, data: dict[str, str], *, csrf: bool = True) -> httpx.Response:
        form = {"csrf": self.csrf, **data} if csrf else data
        response = await self.client.post(path, data=form)
        self._remember(response)
        return response

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        await self.get("/admin/login")
        response = await self.post("/admin/login", {"email": email, "password": password})
        if response.status_code == 303:
            await self.get("/admin/")
        return response

    def _remember(self, response: httpx.Response) -> None:
        if found := _CSRF.search(response.text):
            self.csrf = found.group(1)


@dataclass
class Console:
    services: Services
    app: httpx.ASGITransport

    def browser(self, address: str = "127.0.0.1") -> Browser:
        transport = httpx.ASGITransport(app=self.app.app, client=(address, 50000))
        return Browser(httpx.AsyncClient(transport=transport, base_url="https://bot.test"))

    async def add_operator(self, email: str, role: Role) -> None:
        operators = SqlOperators(make_sessionmaker(self.services.engine))
        now = self.services.fulfilment.clock()
        await operators.add(email, role=role, password_hash=hash_password(PASSWORD), at=now)

    async def held_order(self, messenger: RecordingMessenger) -> str:
        """A paid order the sandbox provider holds (its numbers ending 0002: an empty wallet)."""
        customer = Customer(self.services, messenger)
        steps = list(NEW_CUSTOMER_TO_SUMMARY)
        steps[2] = "987 650 002"
        await customer.say(*steps, "Confirmar")
        await customer.pay()
        return next(iter(self.services.topups.posts))  # type: ignore[attr-defined]


@pytest.fixture
async def console(
    settings: Settings, clock: MovableClock, messenger: RecordingMessenger
) -> AsyncIterator[Console]:
    app = build(settings, overrides=Overrides(clock=clock, messenger=messenger))
    async with app.state.services.lifetime(background=False) as services:
        yield Console(services, httpx.ASGITransport(app=app))


@pytest.fixture
async def staffed(console: Console) -> Console:
    await console.add_operator(ADMIN, Role.ADMIN)
    await console.add_operator(AGENT, Role.AGENT)
    return console
