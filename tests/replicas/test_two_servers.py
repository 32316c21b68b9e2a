"""Two `recargabot serve` processes on one PostgreSQL database, as a scaled-out deployment runs.

Both processes share the database, the personal-data keys and the webhook secrets; the fakes are
shared too, as the real services would be: one Bot API, one Stripe, one Reloadly, served in this
test's event loop. Every update goes to a replica chosen at random (seeded per chat), as a load
balancer would send it, and each customer writes again only once the bot's last reply reached
the Bot API. Each paid order's Stripe event reaches both replicas, sometimes twice, at once.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conversations import messages as msg
from conversations.catalog import display_msisdn, soles
from conversations.model import DocType
from storage.crypto import DataKeys, save_local_keys
from tests.db import table_rows
from tests.fake_reloadly import FakeReloadly
from tests.fake_stripe import FakeStripe
from tests.fake_telegram import Call, FakeBotApi, serving
from tests.replicas.replica import Replica, start
from tests.servers import served
from tests.telegram.user import button_update, link_url, message_update

pytestmark = pytest.mark.postgres_only

SEED = 20261125
CHATS = 100
TOKEN = "123456:TEST-token"
SECRET = "s3cret-token_ok"
AMOUNTS = (5, 10, 15, 20)  # preset soles amounts, one per chat in turn
REPLY_WITHIN = 30.0  # seconds for one reply to reach the Bot API, under the whole load
OPERATION = re.compile(r"N\.º de operación: (\S+?)\.")
ORDER_TRIALS = 120  # back-to-back pairs of updates, for the ordering figure


@dataclass
class Stack:
    """The shared fakes and the two replicas on them."""

    telegram: FakeBotApi
    stripe: FakeStripe
    reloadly: FakeReloadly
    replicas: tuple[Replica, Replica]
    database_url: str

    def statuses(self) -> Counter[int]:
        return self.replicas[0].statuses + self.replicas[1].statuses

    def server_errors(self) -> dict[str, list[str]]:
        return {r.name: r.errors() for r in self.replicas if r.errors()}


def replica_env(
    tmp_path: Path,
    database_url: str,
    urls: dict[str, str],
    stripe: FakeStripe,
    reloadly: FakeReloadly,
) -> dict[str, str]:
    """What an operator sets on every replica: the same database, secrets, keys and services."""
    return {
        "DATABASE_URL": database_url, "PUBLIC_BASE_URL": "https://bot.test",  # the balancer's
        "LOG_LEVEL": "WARNING",
        "SANDBOX_SECRET_PATH": str(tmp_path / "sandbox-secret"),
        "DATA_KEYS_PATH": str(tmp_path / "data-keys.json"),
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE_URL": urls["telegram"], "TELEGRAM_MAX_MESSAGES_PER_SECOND": "100000",
        "STRIPE_SECRET_KEY": "sk_test_fake", "STRIPE_WEBHOOK_SECRET": stripe.webhook_secret,
        "STRIPE_API_BASE_URL": urls["stripe"],
        "TOPUP_PROVIDER": "reloadly", "RELOADLY_CLIENT_ID": reloadly.client_id,
        "RELOADLY_CLIENT_SECRET": reloadly.client_secret,
        "RELOADLY_API_BASE_URL": urls["reloadly"],
        "RELOADLY_AUTH_URL": f"{urls['reloadly']}/oauth/token",
        "LIMIT_MESSAGES_PER_MINUTE": "1000",
    }  # fmt: skip


async def start_both(
    env: dict[str, str], tmp_path: Path, stack: AsyncExitStack
) -> tuple[Replica, Replica]:
    """Start the replicas at once (migrations race, as on a real rollout); stop them after."""
    for workdir in ("a", "b"):
        (tmp_path / workdir).mkdir()
    started = await asyncio.gather(
        start("replica-a", env, tmp_path / "a"), start("replica-b", env, tmp_path / "b"),
        return_exceptions=True,
    )  # fmt: skip
    for replica in started:
        if isinstance(replica, Replica):
            stack.callback(replica.save_log, tmp_path / f"{replica.name}.log")
            stack.push_async_callback(replica.stop)
    for failure in started:
        if isinstance(failure, BaseException):
            raise failure
    return started[0], started[1]  # type: ignore[return-value]


@pytest.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[Stack]:
    telegram, stripe, reloadly = FakeBotApi(), FakeStripe(), FakeReloadly(every_token_valid=True)
    # One set of data keys for both, written before either starts: two processes creating the
    # file at once (storage.crypto.local_keys) can end up with different keys, or read it empty.
    save_local_keys(tmp_path / "data-keys.json", DataKeys.generate())
    async with AsyncExitStack() as exits:
        urls = {
            "telegram": await exits.enter_async_context(serving(telegram)),
            "stripe": await exits.enter_async_context(served(stripe.app())),
            "reloadly": await exits.enter_async_context(served(reloadly.app())),
        }
        env = replica_env(tmp_path, database_url, urls, stripe, reloadly)
        replicas = await start_both(env, tmp_path, exits)
        yield Stack(telegram, stripe, reloadly, replicas, database_url)


# ---------------------------------------------------------------- one customer's conversation


@dataclass(frozen=True)
class Customer:
    """A chat with its own line, owner and document, so any leak between chats shows."""

    index: int

    @property
    def chat_id(self) -> int:
        return 70_000 + self.index

    @property
    def msisdn(self) -> str:
        return f"9{self.index:03d}{self.index * 7919 % 100_000:05d}"

    @property
    def name(self) -> str:
        letters = "".join(chr(ord("a") + int(d)) for d in f"{self.index:03d}")
        return f"Rosa {letters.capitalize()}"

    @property
    def dni(self) -> str:
        return f"{41_000_000 + self.index * 37:08d}"

    @property
    def soles(self) -> int:
        return AMOUNTS[self.index % len(AMOUNTS)]

    @property
    def types(self) -> bool:
        """Odd chats type their answers; even ones press the buttons."""
        return self.index % 2 == 1

    def personal(self) -> tuple[str, ...]:
        """Everything that identifies this customer and must never reach another chat."""
        return (self.msisdn, display_msisdn(self.msisdn), self.name, self.dni)


Expected = str | tuple[str, ...]  # the exact text, or fragments it must contain


def to_payment(c: Customer) -> list[tuple[dict[str, Any], Expected]]:
    """From /start to the payment link: each update and the one reply it must get."""

    def answer(data: str, typed: str) -> dict[str, Any]:
        return message_update(c.chat_id, typed) if c.types else button_update(c.chat_id, data)

    number = f"+51 {c.msisdn[:3]}-{c.msisdn[3:6]}-{c.msisdn[6:]}" if c.types else c.msisdn
    total = soles(c.soles * 100)
    return [
        (message_update(c.chat_id, "/start"), msg.welcome_new(()).text),
        (answer("accept", "Acepto"), msg.ask_number().text),
        (message_update(c.chat_id, number), msg.ask_name().text),
        (message_update(c.chat_id, c.name), msg.ask_doc_type(()).text),
        (answer("doc:dni", "DNI"), msg.ask_doc_number(DocType.DNI).text),
        (message_update(c.chat_id, c.dni), msg.ask_kind(c.msisdn, (), saved=True).text),
        (answer("kind:saldo", "Recarga de saldo"), msg.ask_amount(()).text),
        (answer(f"amount:{c.soles}", f"S/ {c.soles}"), (
            "Revisa tu compra:", f"Número: {display_msisdn(c.msisdn)}\n",
            f"Titular: {c.name} (DNI {c.dni})\n", f"Total: {total} (IGV incluido)",
        )),
        (answer("confirm", "Confirmar"), msg.payment_link(c.soles * 100, url="").text),
    ]  # fmt: skip


def after_payment(c: Customer) -> tuple[Expected, list[tuple[dict[str, Any], Expected]]]:
    """The confirmation the payment brings, then the customer's last two messages."""
    shown, total = display_msisdn(c.msisdn), soles(c.soles * 100)
    told = (
        f"✅ ¡Recarga exitosa! Tu línea {shown} recibió una recarga de {total}. N.º de operación:",
        msg.ask_promos(()).text,
    )
    rest: list[tuple[dict[str, Any], Expected]] = [
        (button_update(c.chat_id, "promos:no"), msg.promos_off().text),
        (message_update(c.chat_id, "/misrecargas"), (
            "Tus últimas recargas:\n", f" · {shown} · ", f" · {total} · exitosa",
        )),
    ]  # fmt: skip
    return told, rest


def matches(text: str, expected: Expected) -> bool:
    if isinstance(expected, str):
        return text == expected
    return all(fragment in text for fragment in expected)


class Driver:
    """Sends a customer's updates to replicas as a balancer would, waiting for each reply."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def turn(self, c: Customer, rng: random.Random, update: dict[str, Any]) -> Call:
        """Post the update to a random replica (now and then to both, as Telegram re-delivers)."""
        before = len(self.stack.telegram.sent(c.chat_id))
        first, other = rng.sample(self.stack.replicas, 2)
        posts = [first.post_update(update, SECRET)]
        if rng.random() < 0.1:
            posts.append(other.post_update(update, SECRET))
        await asyncio.gather(*posts)
        return (await self.stack.telegram.wait_sent(c.chat_id, before + 1, REPLY_WITHIN))[before]

    async def pay(self, c: Customer, rng: random.Random, link: Call) -> None:
        """Pay at Stripe; its event reaches both replicas at once, some a second time too."""
        stripe = self.stack.stripe
        session_id = link_url(link).rsplit("/", 1)[-1]
        stripe.complete(session_id)
        payload = stripe.event("checkout.session.completed", session_id)
        signature = stripe.sign(payload)
        a, b = self.stack.replicas
        deliveries = [a.post_stripe(payload, signature), b.post_stripe(payload, signature)]
        if rng.random() < 1 / 3:
            deliveries.append(rng.choice((a, b)).post_stripe(payload, signature))
        if rng.random() < 1 / 4:  # the browser lands on the success page as well
            order_id = stripe.sessions[session_id]["client_reference_id"]
            deliveries.append(rng.choice((a, b)).get(f"/pay/{order_id}/done"))
        await asyncio.gather(*deliveries)

    async def converse(self, c: Customer) -> None:
        rng = random.Random(f"{SEED}:{c.chat_id}")
        link = None
        for update, _ in to_payment(c):
            link = await self.turn(c, rng, update)
        assert link is not None
        await self.pay(c, rng, link)
        await self.stack.telegram.wait_sent(c.chat_id, len(to_payment(c)) + 1, REPLY_WITHIN)
        for update, _ in after_payment(c)[1]:
            await self.turn(c, rng, update)


def conversation_problems(stack: Stack, c: Customer, everyone: list[Customer]) -> list[str]:
    """What is wrong with the replies the chat got: order, content, count, others' data."""
    told, rest = after_payment(c)
    expected = [e for _, e in to_payment(c)] + [told] + [e for _, e in rest]
    texts = stack.telegram.texts(c.chat_id)
    pairs = enumerate(zip(texts, expected, strict=False))  # a missing reply is counted below
    problems = [f"reply {i}: {t!r}" for i, (t, e) in pairs if not matches(t, e)]
    if len(texts) != len(expected):
        problems.append(f"{len(texts)} replies, expected {len(expected)}")
    link = stack.telegram.sent(c.chat_id)[len(to_payment(c)) - 1]
    seen = "\n".join(texts) + link_url(link)
    for other in everyone:
        if other != c and any(value in seen for value in other.personal()):
            problems.append(f"shows data of chat {other.chat_id}")
    return problems


async def test_two_replicas_serve_100_chats_each_in_order_each_paid_order_topped_up_once(stack):
    customers = [Customer(i) for i in range(CHATS)]
    started = time.perf_counter()

    await asyncio.gather(*(Driver(stack).converse(c) for c in customers))

    elapsed = time.perf_counter() - started
    answers = dict(stack.statuses())
    print(f"\n{CHATS} chats through 2 replicas in {elapsed:.1f} s; answers {answers}")
    problems = {
        c.chat_id: p for c in customers if (p := conversation_problems(stack, c, customers))
    }
    assert problems == {}
    orders = await table_rows(stack.database_url, "orders")
    assert len(orders) == CHATS and {o["state"] for o in orders} == {"completed"}
    assert stack.reloadly.posts == Counter({o["id"]: 1 for o in orders})
    assert stack.reloadly.credited == {o["id"]: o["amount_cents"] for o in orders}
    told = len(to_payment(customers[0]))  # the index of the confirmation in every chat
    operations = [OPERATION.search(stack.telegram.texts(c.chat_id)[told]) for c in customers]
    assert len({m.group(1) for m in operations if m}) == CHATS  # each its own operation number
    assert {s for s in stack.statuses() if s >= 500} == set()
    assert all(r.statuses[200] > CHATS for r in stack.replicas)  # both took their share
    assert stack.server_errors() == {}


# ---------------------------------------------------------------- order across replicas

FIRST, SECOND = "/misrecargas", "/cancelar"  # both answer at once, each in its own words
CONTROL_TRIALS = 40
AT_ONCE = 8  # trials in flight together


async def in_order(stack: Stack, chat_id: int, first: Replica, second: Replica) -> bool:
    """Post two updates of a new chat back to back, the second once the first was accepted
    (as Telegram does), without waiting for a reply; True if the replies came in that order."""
    assert await first.post_update(message_update(chat_id, FIRST), SECRET) == 200
    assert await second.post_update(message_update(chat_id, SECOND), SECRET) == 200
    calls = await stack.telegram.wait_sent(chat_id, 2, REPLY_WITHIN)
    texts = [call.params["text"] for call in calls]
    expected = [msg.history(()).text, msg.cancelled().text]
    assert sorted(texts) == sorted(expected), texts  # both answered, once each, nothing else
    return texts == expected


async def trials(stack: Stack, pairs: list[tuple[Replica, Replica]], first_chat: int) -> list[bool]:
    """Run one back-to-back trial per pair of replicas, each on its own chat, a few at a time."""
    slots = asyncio.Semaphore(AT_ONCE)

    async def trial(chat_id: int, first: Replica, second: Replica) -> bool:
        async with slots:
            return await in_order(stack, chat_id, first, second)

    return await asyncio.gather(
        *(trial(first_chat + i, first, second) for i, (first, second) in enumerate(pairs))
    )


async def test_back_to_back_updates_keep_their_order_within_and_across_replicas(stack):
    """A chat's second update, sent to the other replica once the first was accepted, is still
    handled second (the first waits in the database, not in one replica's memory)."""
    a, b = stack.replicas

    across = await trials(stack, [(a, b), (b, a)] * (ORDER_TRIALS // 2), first_chat=80_000)
    within = await trials(stack, [(a, a), (b, b)] * (CONTROL_TRIALS // 2), first_chat=90_000)

    swapped = across.count(False)
    print(f"\nout of order: {swapped}/{len(across)} pairs split across the two replicas, "
          f"{within.count(False)}/{len(within)} pairs sent to one replica")  # fmt: skip
    assert within.count(False) == 0
    assert across.count(False) == 0 and len(across) == ORDER_TRIALS
    assert {s for s in stack.statuses() if s >= 500} == set()
