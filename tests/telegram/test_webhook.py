"""The Telegram channel over its webhook: the real PTB client against the fake Bot API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.model import Channel, ChatKey
from conversations.session import Session, Step
from tests.telegram.conftest import ADMIN_ID
from tests.telegram.user import button_update, buttons, link_url, message_update


async def test_start_sets_the_webhook_with_its_secret_and_the_spanish_commands(bot, api):
    webhook = api.of("setWebhook")[-1].params
    commands = api.of("setMyCommands")[-1].params["commands"]

    assert api.of("getMe")
    assert webhook["url"] == "https://bot.test/telegram/webhook"
    assert webhook["secret_token"] == "s3cret-token_ok"
    assert webhook["allowed_updates"] == ["message", "callback_query"]
    assert [c["command"] for c in commands] == ["recargar", "misrecargas", "cancelar", "ayuda"]
    assert all(c["description"] for c in commands)


async def test_full_purchase_over_the_webhook_ends_with_recarga_exitosa(bot, user, api):
    _, services = bot
    maria, other = user(1001), user(1002)
    await other.say("/start")

    link = await maria.to_payment_link()
    await maria.pay(link)
    await services.worker.run_once()  # tells the customer before returning
    done = api.sent(1001)

    assert [b["callback_data"] for b in buttons(api.sent(1001)[0])] == ["accept", "decline"]
    assert link_url(link).startswith("https://bot.test/sandbox/checkout/")
    assert "Recarga exitosa" in done[-1].params["text"]
    assert "987 654 321" in done[-1].params["text"]
    assert not any("Recarga exitosa" in t for t in api.texts(1002))
    assert len(api.of("answerCallbackQuery")) == 5  # every button press answered


async def test_a_double_tap_on_confirmar_opens_exactly_one_checkout(bot, user, api):
    _, services = bot
    maria = user(2001)
    await maria.to_payment_link()
    orders_before = len(await services.orders.recent(maria_key(2001), limit=10))

    await maria.press("confirm")

    orders = await services.orders.recent(maria_key(2001), limit=10)
    assert orders_before == len(orders) == 1
    assert "sigue activo" in api.texts(2001)[-1]


async def test_two_taps_posted_together_still_open_one_checkout(bot, user, api):
    _, services = bot
    maria = user(2101)
    await maria.to_payment_link()
    await maria.say("/cancelar")
    await maria.say("/recargar")
    await maria.press("line:987654321")
    await maria.press("kind:saldo")
    await maria.press("amount:10")
    before = len(api.sent(2101))

    codes = await asyncio.gather(*(maria.post(button_update(2101, "confirm")) for _ in range(2)))
    await api.wait_sent(2101, before + 2)

    assert codes == [200, 200]
    states = [o.state.value for o in await services.orders.recent(maria_key(2101), limit=10)]
    assert states == ["awaiting_payment", "cancelled"]  # one new checkout, the old one cancelled


async def test_missing_or_wrong_secret_is_refused_and_nothing_is_processed(bot, user, api):
    maria = user(3001)

    missing = await maria.post(message_update(3001, "/start"), secret=None)
    wrong = await maria.post(message_update(3001, "/start"), secret="s3cret-token_no")
    await maria.say("/ayuda")  # a valid one afterwards: only it is answered

    assert (missing, wrong) == (403, 403)
    assert len(api.sent(3001)) == 1 and "Te ayudo" in api.texts(3001)[0]


async def test_a_repeated_update_id_is_handled_once(bot, user, api):
    maria = user(3101)
    update = message_update(3101, "/start")

    assert await maria.post(update) == 200
    assert await maria.post(update) == 200
    await api.wait_sent(3101, 1)
    await maria.say("/ayuda")  # queued after the repeat: had it been handled, it came first

    assert len(api.texts(3101)) == 2
    assert "Hola" in api.texts(3101)[0] and "Te ayudo" in api.texts(3101)[1]


async def test_a_repeated_button_press_is_answered_but_handled_once(bot, user, api):
    maria = user(3201)
    await maria.say("/start")
    press = button_update(3201, "accept")
    query_id = press["callback_query"]["id"]

    assert await maria.post(press) == 200
    assert await maria.post(press) == 200  # Telegram delivers the same update_id again
    await api.wait_for(lambda: len(api.of("answerCallbackQuery")) == 2)
    await api.wait_sent(3201, 2)  # the press's own reply
    await maria.say("/ayuda")  # after the repeat: had it been handled, its reply came first

    answered = [c.params["callback_query_id"] for c in api.of("answerCallbackQuery")]
    assert answered == [query_id, query_id]  # the spinner stops on the repeat too
    texts = api.texts(3201)
    assert len(texts) == 3 and "Te ayudo" in texts[-1]


async def test_misrecargas_lists_the_last_recharges(bot, user, api):
    _, services = bot
    maria = user(4001)
    await maria.pay(await maria.to_payment_link())
    await services.worker.run_once()
    await api.wait_sent(4001, 10)

    history = (await maria.say("/misrecargas"))[-1].params["text"]

    assert history.startswith("Tus últimas recargas:")
    assert "987 654 321" in history and "S/ 10.00" in history and "exitosa" in history


async def test_stats_answers_admins_and_refuses_everyone_else(bot, user, api):
    _, services = bot
    maria, admin = user(5001), user(ADMIN_ID)
    await maria.pay(await maria.to_payment_link())
    await services.worker.run_once()

    refused = (await maria.say("/stats"))[-1].params["text"]
    stats = (await admin.say("/stats"))[-1].params["text"]

    assert refused == "Lo siento, ese comando es solo para administradores."
    assert "Pedidos: 1" in stats and "Completados: 1" in stats and "Ventas: S/ 10.00" in stats
    assert "Fallidos: 0" in stats and "Pendientes ahora: 0" in stats


def maria_key(chat_id: int):
    from conversations.model import Channel, ChatKey

    return ChatKey(Channel.TELEGRAM, str(chat_id))


async def test_a_held_top_up_alerts_the_operators_in_their_telegram_chat(bot, user, api):
    _, services = bot
    customer = user(1003)
    link = await customer.to_payment_link(number="987650002")  # sandbox: provider wallet empty

    await customer.pay(link)
    await services.worker.run_once()

    [alert] = api.texts(ADMIN_ID)
    assert alert.startswith("⚠️ Alerta de RecargaBot:")
    assert "987650002" not in alert and "650 002" not in alert  # the order id, not the number


@dataclass
class Writes:
    """The database's transactions as the engine's listeners see them; those that wrote."""

    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    statements: list[str] = field(default_factory=list)
    writes: list[list[str]] = field(default_factory=list)
    transactions: list[list[str]] = field(default_factory=list)  # those that only read too

    def listen(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(engine.sync_engine, "commit", self._commit)
        event.listen(engine.sync_engine, "rollback", self._rolled_back)  # a read's end in PTB's

    def marked_sent(self) -> int:
        return sum(all(s.startswith("UPDATE outbox") for s in tx) for tx in self.writes)

    async def wait_marked_sent(self, count: int) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: self.marked_sent() >= count), 10)

    def _statement(self, _c: Any, _k: Any, sql: str, *_: Any) -> None:
        self.statements.append(sql.lstrip())

    def _rolled_back(self, _c: Any) -> None:
        if self.statements:
            self.transactions.append(self.statements)
            self.statements = []

    def _commit(self, _c: Any) -> None:
        done, self.statements = self.statements, []
        self.transactions.append(done)
        if any(s.startswith(("INSERT", "UPDATE", "DELETE")) for s in done):
            self.writes.append(done)
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


@pytest.mark.parametrize(
    ("update", "step"),
    [(message_update(3301, "/ayuda"), Step.IDLE), (button_update(3301, "accept"), Step.CONSENT)],
    ids=["a message", "the privacy notice accepted"],
)
async def test_an_update_of_a_free_chat_is_one_write_before_its_200_and_one_for_sent(
    bot, user, api, update, step
):
    """The update, the chat's new state, what it keeps of the customer (the consent) and the
    reply are stored together; then the reply goes (Telegram's 200 does not wait for it), and
    its sending is recorded."""
    _, services = bot
    writes, maria = Writes(), user(3301)
    await services.chat.store.save(ChatKey(Channel.TELEGRAM, "3301"), Session(step=step))
    writes.listen(services.engine)

    reply_may_go = api.hold(3301)
    assert await maria.post(update) == 200  # its reply is still held
    by_the_200 = list(writes.writes)
    reply_may_go.set()
    await api.wait_sent(3301, 1)
    await writes.wait_marked_sent(1)

    assert len(by_the_200) == 1
    assert any(s.startswith("INSERT INTO inbound_messages") for s in by_the_200[0])
    assert any(s.startswith("INSERT INTO conversations") for s in by_the_200[0])
    assert len(writes.writes) == 2
    ran = [s for tx in writes.transactions for s in tx] + writes.statements
    # The delivery check and the step's load of the chat's rows: one statement.
    assert len([s for s in ran if "EXISTS" in s or "JOIN conversations" in s]) == 1


async def test_a_payment_is_four_transactions_from_webhook_to_recarga_exitosa(bot, user, api):
    """The order read and claimed for its top-up (PAID on the way) in one write; the chat read
    with the packages on sale; the order completed in the chat's save of its notice, which takes
    the notice with the customer's reachability; the notice recorded sent. (The sandbox gateway's
    own transactions, its checkout's rows, are not the bot's.)"""
    _, services = bot
    writes, maria = Writes(), user(3401)
    writes.listen(services.engine)
    link = await maria.to_payment_link()
    replies = len(api.sent(3401))
    await writes.wait_marked_sent(replies)  # the replies so far all recorded sent
    start = len(writes.transactions)

    await maria.pay(link)  # its webhook's push tops up and tells, in the same call
    await api.wait_sent(3401, replies + 1)
    await writes.wait_marked_sent(replies + 1)

    path = writes.transactions[start:]
    ours = [tx for tx in path if not any("sandbox_checkouts" in s for s in tx)]
    claimed, read, saved, sent = ours
    assert "Recarga exitosa" in api.texts(3401)[-1]
    assert [s.split(" ")[0] for s in claimed].count("SELECT") == 1  # the order, read once
    assert sum("TOPPING_UP" in s or "UPDATE orders" in s for s in claimed) == 1
    assert all(s.startswith("SELECT") for s in read)
    assert any("catalogue_packages" in s for s in read)
    assert saved[0].startswith("UPDATE orders")  # completed, then its notice told, in the save
    assert any(s.startswith("INSERT INTO outbox") for s in saved)
    assert any(s.startswith("SELECT customers.last_inbound_at") for s in saved)
    assert sent == [s for s in sent if s.startswith("UPDATE outbox")]
