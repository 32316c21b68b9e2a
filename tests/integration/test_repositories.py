"""The SQL repositories against real SQLite: a file database, and ``:memory:`` where it is enough.

Rows are checked with plain SQL where the stored form matters (money, what was created).
Concurrency tests use a file, because ``:memory:`` is one shared connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.machine import RecordConsent, RecordPromos, RememberLine
from conversations.messages import Reply
from conversations.model import (
    Channel,
    ChatKey,
    Checkout,
    DocType,
    Line,
    Order,
    OrderState,
    Product,
    ProductKind,
    Purchase,
)
from conversations.ports import Claim, Contact, Move, OrderChanges, Outgoing
from conversations.session import Draft, Payment, Profile, Session, Step
from storage.catalogue import SqlCatalogue
from storage.chats import SqlConversationStore
from storage.customers import SqlContacts
from storage.db import make_engine
from storage.migrate import upgrade
from storage.orders import SqlOrders
from storage.outbox import SqlOutbox
from storage.pending_updates import Seen, SqlPendingUpdates
from storage.sandbox_checkouts import SqlSandboxCheckouts

S = OrderState
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
LIMA = timezone(timedelta(hours=-5))
ON_FILE = pytest.mark.parametrize("url", ["file"], indirect=True)
IN_MEMORY = pytest.mark.parametrize("url", ["memory"], indirect=True)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(params=["file", "memory"])
def url(request: pytest.FixtureRequest, database_url: str) -> str:
    """The suite's database; on SQLite also ``:memory:`` (PostgreSQL runs the case twice)."""
    if request.param == "memory" and database_url.startswith("sqlite"):
        return "sqlite+aiosqlite:///:memory:"
    return database_url


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def store(engine: AsyncEngine) -> SqlConversationStore:
    return SqlConversationStore(engine, clock=lambda: T0)


@pytest.fixture
def orders(engine: AsyncEngine) -> SqlOrders:
    return SqlOrders(engine)


# ---------------------------------------------------------------- test data


def a_key(chat_id: str = "1001", channel: Channel = Channel.TELEGRAM) -> ChatKey:
    return ChatKey(channel, chat_id)


def a_line(msisdn: str = "987654321", owner_name: str = "María Quispe") -> Line:
    return Line(msisdn, owner_name, DocType.DNI, "45678912")


def a_product(price_cents: int = 1000) -> Product:
    return Product("saldo-10", ProductKind.CREDIT, "Recarga S/ 10", price_cents, 30, "Saldo")


def a_checkout(expires_at: datetime = T0 + timedelta(minutes=30)) -> Checkout:
    return Checkout("cs_test_1", "https://pay.test/cs_test_1", expires_at)


def an_order(
    order_id: str = "o1",
    *,
    state: OrderState = S.PAID,
    key: ChatKey | None = None,
    created_at: datetime = T0,
    **fields: Any,
) -> Order:
    purchase = Purchase(a_line(), a_product())
    return Order(order_id, key or a_key(), purchase, state, created_at, **fields)


def a_session(step: Step) -> Session:
    draft = Draft.of(a_line(), a_product())
    return Session(step, draft, Payment(1000, "o1", "https://pay.test/cs_test_1"))


async def seed(orders: SqlOrders, *given: Order) -> None:
    for order in given:
        await orders.add(order)


async def a_known_customer(store: SqlConversationStore, orders: SqlOrders) -> Profile:
    """Give the chat consent, two saved lines and a completed order; return the profile."""
    first, second = a_line("987654321"), a_line("912345678", "José Huamán")
    await store.record_consent(a_key(), version="2026-01", at=T0)
    await store.remember_line(a_key(), first, at=T0)
    await store.remember_line(a_key(), second, at=T0 + timedelta(minutes=1))
    await orders.add(an_order(state=S.COMPLETED))
    return Profile(consented=True, lines=(second, first), last=Purchase(first, a_product()))


async def query(engine: AsyncEngine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql), params)]


def moving(
    orders: SqlOrders, source: set[OrderState], target: OrderState, **kwargs: Any
) -> Awaitable[bool]:
    return orders.move("o1", from_=frozenset(source), to=target, at=T0, **kwargs)


# ---------------------------------------------------------------- engine


@pytest.mark.sqlite_only
@ON_FILE
async def test_file_database_uses_wal_busy_timeout_and_foreign_keys(engine: AsyncEngine):
    pragmas = (
        "SELECT * FROM pragma_journal_mode, pragma_synchronous, pragma_busy_timeout,"
        " pragma_foreign_keys"
    )

    rows = await query(engine, pragmas)

    assert rows == [("wal", 1, 5000, 1)]  # synchronous 1: NORMAL


# ---------------------------------------------------------------- conversation store


async def test_unknown_chat_loads_a_fresh_session_and_creates_nothing(
    store: SqlConversationStore, engine: AsyncEngine
):
    session = await store.load(a_key())

    assert session == Session()
    assert await query(engine, "SELECT count(*) FROM customers") == [(0,)]


@pytest.mark.parametrize("step", list(Step))
async def test_session_round_trips_with_the_profile(
    store: SqlConversationStore, orders: SqlOrders, step: Step
):
    profile = await a_known_customer(store, orders)

    await store.save(a_key(), a_session(step))
    loaded = await store.load(a_key())

    assert loaded == replace(a_session(step), profile=profile)


async def test_saving_again_replaces_the_stored_state(store: SqlConversationStore):
    await store.save(a_key(), a_session(Step.ASK_NAME))

    await store.save(a_key(), Session(Step.IDLE))

    assert (await store.load(a_key())).step is Step.IDLE


async def test_saving_does_not_grant_consent(store: SqlConversationStore):
    await store.save(a_key(), a_session(Step.CONSENT))

    profile = (await store.load(a_key())).profile

    assert profile == Profile(consented=False)


async def test_remember_line_updates_owner_and_document_of_a_saved_number(
    store: SqlConversationStore, engine: AsyncEngine
):
    await store.remember_line(a_key(), a_line(owner_name="Ana Díaz"), at=T0)
    renamed = replace(
        a_line(owner_name="Ana Díaz Rojas"), doc_type=DocType.CE, doc_number="001234567"
    )

    await store.remember_line(a_key(), renamed, at=T0 + timedelta(minutes=1))

    assert (await store.load(a_key())).profile.lines == (renamed,)
    assert await query(engine, "SELECT count(*) FROM saved_lines") == [(1,)]


async def test_a_line_given_again_moves_to_the_front(store: SqlConversationStore):
    first, second = a_line("987654321"), a_line("912345678")
    await store.remember_line(a_key(), first, at=T0)
    await store.remember_line(a_key(), second, at=T0 + timedelta(minutes=1))

    await store.remember_line(a_key(), first, at=T0 + timedelta(minutes=2))

    assert (await store.load(a_key())).profile.lines == (first, second)


async def test_last_purchase_is_the_latest_completed_order(
    store: SqlConversationStore, orders: SqlOrders
):
    older = replace(an_order("old", state=S.COMPLETED), purchase=Purchase(a_line(), a_product(500)))
    pending = an_order("pending", state=S.PAID, created_at=T0 + timedelta(hours=2))
    await seed(
        orders,
        older,
        an_order("new", state=S.COMPLETED, created_at=T0 + timedelta(hours=1)),
        pending,
    )

    last = (await store.load(a_key())).profile.last

    assert last == Purchase(a_line(), a_product(1000))


async def test_another_chats_purchase_is_not_the_last_one(
    store: SqlConversationStore, orders: SqlOrders
):
    other = replace(
        an_order(
            "theirs", state=S.COMPLETED, key=a_key("2002"), created_at=T0 + timedelta(hours=1)
        ),
        purchase=Purchase(a_line("912345678"), a_product(3000)),
    )
    await seed(orders, an_order("mine", state=S.PAID), other)

    assert (await store.load(a_key())).profile.last is None
    assert (await store.load(a_key("2002"))).profile.last == other.purchase


async def test_the_same_chat_id_on_two_channels_is_two_customers(store: SqlConversationStore):
    await store.record_consent(a_key("7", Channel.TELEGRAM), version="2026-01", at=T0)

    on_whatsapp = await store.load(a_key("7", Channel.WHATSAPP))

    assert on_whatsapp.profile.consented is False


# ---------------------------------------------------------------- orders


async def test_an_added_order_reads_back_equal_with_times_in_utc(orders: SqlOrders):
    order = an_order(
        state=S.AWAITING_PAYMENT, created_at=T0.astimezone(LIMA), checkout=a_checkout()
    )

    await orders.add(order)
    loaded = await orders.get(order.id)

    assert loaded == order
    assert loaded is not None and loaded.created_at.tzinfo is UTC


async def test_an_unknown_order_is_none(orders: SqlOrders):
    assert await orders.get("missing") is None


async def test_amounts_are_stored_as_integer_centimos(orders: SqlOrders, engine: AsyncEngine):
    await orders.add(an_order())

    type_of = "typeof" if engine.dialect.name == "sqlite" else "pg_typeof"
    sql = f"SELECT amount_cents, CAST({type_of}(amount_cents) AS TEXT), currency FROM orders"
    rows = await query(engine, sql)

    assert rows == [(1000, "integer", "pen")]


async def test_a_naive_datetime_is_refused(orders: SqlOrders):
    with pytest.raises(StatementError, match="naive datetime"):
        await orders.add(an_order(created_at=datetime(2026, 11, 25, 15, 0)))


@pytest.mark.parametrize("start", [S.AWAITING_PAYMENT, S.EXPIRED])
async def test_move_from_an_expected_state_sets_state_and_changes(
    orders: SqlOrders, start: OrderState
):
    await orders.add(an_order(state=start))
    changes = OrderChanges(checkout=a_checkout(), payment_ref="pi_1")

    moved = await moving(orders, {S.AWAITING_PAYMENT, S.EXPIRED}, S.PAID, changes=changes)

    assert moved is True
    assert await orders.get("o1") == an_order(
        state=S.PAID, checkout=a_checkout(), payment_ref="pi_1"
    )


async def test_move_keeps_fields_the_changes_leave_unset(orders: SqlOrders):
    await orders.add(an_order(state=S.TOPPING_UP, payment_ref="pi_1"))

    await moving(orders, {S.TOPPING_UP}, S.COMPLETED, changes=OrderChanges(operation_id="op_9"))

    assert await orders.get("o1") == an_order(
        state=S.COMPLETED, payment_ref="pi_1", operation_id="op_9"
    )


async def test_move_from_another_state_returns_false_and_changes_nothing(orders: SqlOrders):
    await orders.add(an_order(state=S.COMPLETED))

    moved = await moving(orders, {S.PAID}, S.TOPPING_UP, changes=OrderChanges(failure="x"))

    assert moved is False
    assert await orders.get("o1") == an_order(state=S.COMPLETED)


async def test_move_from_no_state_at_all_changes_nothing(orders: SqlOrders):
    await orders.add(an_order(state=S.PAID))

    assert await moving(orders, set(), S.TOPPING_UP) is False
    assert await orders.get("o1") == an_order(state=S.PAID)


async def test_a_duplicate_event_is_refused_and_recorded_once(
    orders: SqlOrders, engine: AsyncEngine
):
    await orders.add(an_order(state=S.AWAITING_PAYMENT))
    await moving(orders, {S.AWAITING_PAYMENT}, S.PAID, event_id="evt_1")

    again = await moving(orders, {S.PAID}, S.TOPPING_UP, event_id="evt_1")

    assert again is False
    assert (await orders.get("o1")) == an_order(state=S.PAID)
    assert await query(engine, "SELECT event_id FROM processed_events") == [("evt_1",)]


async def test_a_failed_move_does_not_record_its_event(orders: SqlOrders, engine: AsyncEngine):
    await orders.add(an_order(state=S.PAID))

    await moving(orders, {S.AWAITING_PAYMENT}, S.PAID, event_id="evt_1")

    assert await query(engine, "SELECT count(*) FROM processed_events") == [(0,)]
    assert await moving(orders, {S.PAID}, S.TOPPING_UP, event_id="evt_1") is True


@ON_FILE
async def test_of_twenty_concurrent_claims_on_a_paid_order_exactly_one_wins(orders: SqlOrders):
    await orders.add(an_order(state=S.PAID))

    results = await asyncio.gather(*(moving(orders, {S.PAID}, S.TOPPING_UP) for _ in range(20)))

    assert results.count(True) == 1
    assert (await orders.get("o1")) == an_order(state=S.TOPPING_UP)


@ON_FILE
async def test_fifty_concurrent_writers_are_neither_locked_out_nor_lost(
    orders: SqlOrders, store: SqlConversationStore
):
    ids, keys = [f"o{n}" for n in range(25)], [a_key(f"chat-{n}") for n in range(25)]
    await seed(orders, *(an_order(order_id, key=a_key(f"buyer-{order_id}")) for order_id in ids))
    moves = [orders.move(i, from_=frozenset({S.PAID}), to=S.TOPPING_UP, at=T0) for i in ids]

    results = await asyncio.gather(
        *moves, *(store.save(key, a_session(Step.CONFIRM)) for key in keys)
    )

    assert results[:25] == [True] * 25
    moved = [an_order(i, state=S.TOPPING_UP, key=a_key(f"buyer-{i}")) for i in ids]
    assert [await orders.get(i) for i in ids] == moved
    assert [(await store.load(key)).step for key in keys] == [Step.CONFIRM] * 25


# ---------------------------------------------------------------- order work


async def test_unfinished_returns_exactly_the_orders_to_push_on(
    orders: SqlOrders, store: SqlConversationStore
):
    now, stale_before, second = T0, T0 - timedelta(minutes=2), timedelta(seconds=1)
    await seed(
        orders,
        an_order("paid", state=S.PAID),
        an_order("unknown", state=S.TOPUP_UNKNOWN),
        an_order("failed", state=S.TOPUP_FAILED),
        an_order("stuck", state=S.TOPPING_UP, created_at=stale_before - second),
        an_order("just-stale", state=S.TOPPING_UP, created_at=stale_before),
        an_order("lapsed", state=S.AWAITING_PAYMENT, checkout=a_checkout(now - second)),
        an_order("lapsing-now", state=S.AWAITING_PAYMENT, checkout=a_checkout(now)),
        an_order("open", state=S.AWAITING_PAYMENT, checkout=a_checkout()),
        an_order("untold", state=S.COMPLETED),
        an_order("told", state=S.REFUNDED),
        an_order("told-before", state=S.EXPIRED),
        an_order("cancelled", state=S.CANCELLED),
        an_order("flagged", state=S.FLAGGED),
    )
    for told in ("told", "told-before"):
        await store.save(a_key(), Session(), notice=await orders.get(told))
    await orders.move("told-before", from_=frozenset({S.EXPIRED}), to=S.COMPLETED, at=T0)

    found = await orders.unfinished(now=now, stale_before=stale_before)

    expected = {
        "paid",
        "unknown",
        "failed",
        "stuck",
        "lapsed",
        "untold",
        "told-before",  # of the state it was in before
    }
    assert {order.id for order in found} == expected


async def test_unfinished_lists_the_oldest_first(orders: SqlOrders):
    created = {"b": T0, "c": T0 + timedelta(minutes=1), "a": T0 - timedelta(minutes=1)}
    await seed(orders, *(an_order(order_id, created_at=at) for order_id, at in created.items()))

    found = await orders.unfinished(now=T0, stale_before=T0)

    assert [order.id for order in found] == ["a", "b", "c"]


@IN_MEMORY
async def test_unfinished_returns_at_most_five_hundred(orders: SqlOrders):
    await seed(orders, *(an_order(f"o{n:03}") for n in range(501)))

    found = await orders.unfinished(now=T0, stale_before=T0)

    assert len(found) == 500


def a_notice(order: Order) -> list[Outgoing]:
    return [Outgoing(f"notice:{order.id}:{order.state.value}:0", order.key, Reply("Listo"))]


ANY_DUE = Claim(customer_wrote=False, now=T0, until=T0 + timedelta(minutes=1))


async def test_a_notice_is_saved_once_with_its_reply_taken(
    orders: SqlOrders, store: SqlConversationStore
):
    order = an_order(state=S.COMPLETED, key=a_key())
    await orders.add(order)

    first = await store.save(
        a_key(), Session(step=Step.ASK_PROMOS), outgoing=a_notice(order), claim=ANY_DUE,
        notice=order,
    )  # fmt: skip
    again = await store.save(
        a_key(), Session(), outgoing=a_notice(order), claim=ANY_DUE, notice=order
    )

    assert [message.id for message in first] == ["notice:o1:completed:0"] and again == ()
    assert (await store.load(a_key())).step is Step.ASK_PROMOS  # the second changed nothing
    assert await orders.unfinished(now=T0, stale_before=T0) == []  # told


async def test_a_notice_of_a_state_the_order_is_not_in_is_not_saved(
    orders: SqlOrders, store: SqlConversationStore
):
    await orders.add(an_order(state=S.REFUNDED, key=a_key()))
    stale = an_order(state=S.TOPUP_FAILED, key=a_key())

    taken = await store.save(
        a_key(), Session(), outgoing=a_notice(stale), claim=ANY_DUE, notice=stale
    )

    assert taken == ()
    assert [o.id for o in await orders.unfinished(now=T0, stale_before=T0)] == ["o1"]


@ON_FILE
async def test_of_concurrent_tellers_of_a_notice_exactly_one_saves_it(
    orders: SqlOrders, store: SqlConversationStore
):
    order = an_order(state=S.COMPLETED, key=a_key())
    await orders.add(order)

    results = await asyncio.gather(*(
        store.save(a_key(), Session(), outgoing=a_notice(order), claim=ANY_DUE, notice=order)
        for _ in range(20)
    ))  # fmt: skip

    assert sorted(len(taken) for taken in results) == [0] * 19 + [1]


DONE = Move(frozenset({S.TOPPING_UP}), S.COMPLETED, OrderChanges(operation_id="op_1"))


async def test_a_notice_saved_with_its_move_completes_the_order_and_takes_the_contact(
    orders: SqlOrders, store: SqlConversationStore, engine: AsyncEngine
):
    await orders.add(an_order(state=S.TOPPING_UP, key=a_key()))
    done = DONE.applied_to(an_order(state=S.TOPPING_UP, key=a_key()))

    taken = await store.save(
        a_key(), Session(), outgoing=a_notice(done), claim=ANY_DUE, notice=done, settles=DONE
    )

    assert await orders.get("o1") == done == an_order(state=S.COMPLETED, operation_id="op_1")
    assert [message.id for message in taken] == ["notice:o1:completed:0"]
    assert taken[0].contact == Contact(last_inbound_at=None)  # read with it, for the messenger
    assert await orders.unfinished(now=T0, stale_before=T0) == []  # told
    timeline = "SELECT state FROM order_events WHERE order_id = 'o1' ORDER BY id"
    assert await query(engine, timeline) == [("topping_up",), ("completed",)]


async def test_a_notice_whose_move_cannot_be_made_saves_nothing(
    orders: SqlOrders, store: SqlConversationStore
):
    await orders.add(an_order(state=S.COMPLETED, key=a_key(), operation_id="op_0"))
    done = DONE.applied_to(an_order(state=S.TOPPING_UP, key=a_key()))

    taken = await store.save(
        a_key(), Session(step=Step.ASK_PROMOS), outgoing=a_notice(done), claim=ANY_DUE,
        notice=done, settles=DONE,
    )  # fmt: skip

    assert taken == ()
    assert (await store.load(a_key())).step is Step.IDLE
    assert (await orders.get("o1")).operation_id == "op_0"


def a_claim(order: Order) -> Move | None:
    if order.state is not S.AWAITING_PAYMENT:
        return None
    return Move(
        frozenset({S.AWAITING_PAYMENT}), S.TOPPING_UP, OrderChanges(payment_ref="pi_1"), S.PAID
    )


async def test_decide_reads_the_order_and_makes_the_move_chosen_for_it_with_its_event(
    orders: SqlOrders, engine: AsyncEngine
):
    await orders.add(an_order(state=S.AWAITING_PAYMENT))

    claimed = await orders.decide("o1", a_claim, at=T0, event_id="evt_1")
    again = await orders.decide("o1", a_claim, at=T0, event_id="evt_2")  # moved on: no move

    assert claimed == await orders.get("o1") == an_order(state=S.TOPPING_UP, payment_ref="pi_1")
    assert again is None
    timeline = "SELECT state, cause FROM order_events WHERE order_id = 'o1' ORDER BY id"
    assert await query(engine, timeline) == [
        ("awaiting_payment", None), ("paid", "evt_1"), ("topping_up", None)
    ]  # fmt: skip
    assert await query(engine, "SELECT event_id FROM processed_events") == [("evt_1",)]


async def test_decide_of_a_missing_order_or_a_known_event_moves_nothing(orders: SqlOrders):
    await orders.add(an_order(state=S.AWAITING_PAYMENT))
    await orders.move("o1", from_=frozenset({S.AWAITING_PAYMENT}), to=S.AWAITING_PAYMENT,
                      at=T0, event_id="evt_1")  # fmt: skip

    assert await orders.decide("nope", a_claim, at=T0, event_id="evt_2") is None
    assert await orders.decide("o1", a_claim, at=T0, event_id="evt_1") is None
    assert (await orders.get("o1")).state is S.AWAITING_PAYMENT


# ---------------------------------------------------------------- Telegram inbox


async def test_the_inbox_gives_a_chats_updates_oldest_first_and_says_when_none_are_left(
    engine: AsyncEngine,
):
    inbox = SqlPendingUpdates(engine)
    chat, other = a_key("1001"), a_key("2002")
    for key, update_id in ((chat, 11), (other, 5), (chat, 10)):
        assert await inbox.add(key, update_id, f'{{"update_id": {update_id}}}', at=T0)

    taken = [await inbox.take(chat) for _ in range(3)]

    assert taken == [('{"update_id": 10}', True), ('{"update_id": 11}', False), (None, False)]
    assert await inbox.chats() == [other]  # the other chat's update was neither taken nor counted


async def test_an_update_delivered_before_is_not_kept_again(engine: AsyncEngine):
    inbox = SqlPendingUpdates(engine)
    assert await inbox.add(a_key(), 10, '{"update_id": 10}', at=T0)
    assert await inbox.take(a_key()) == ('{"update_id": 10}', False)

    assert await inbox.add(a_key(), 10, '{"update_id": 10}', at=T0) is False
    assert await inbox.take(a_key()) == (None, False)


async def test_the_inbox_sees_an_update_delivered_before_and_the_chats_kept_ones(
    engine: AsyncEngine,
):
    inbox, contacts = SqlPendingUpdates(engine), SqlContacts(engine)
    chat, other = a_key("1001"), a_key("2002")
    await contacts.first_delivery(chat, "7", at=T0)
    await inbox.add(other, 8, '{"update_id": 8}', at=T0)

    assert await inbox.seen(chat, 7) == Seen(delivered=True, waiting=False)
    assert await inbox.seen(chat, 9) == Seen(delivered=False, waiting=False)
    assert await inbox.seen(other, 9) == Seen(delivered=False, waiting=True)


class Statements:
    """The statements run on an engine (the driver shows its own to the listeners)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sql: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._ran)

    @property
    def count(self) -> int:
        return len(self.sql)

    def _ran(self, _c: Any, _k: Any, sql: str, *_: Any) -> None:
        self.sql.append(sql)


@pytest.fixture
def stepping(engine: AsyncEngine) -> SqlConversationStore:
    """The store as the bot builds it: a step's load reads the packages on sale too."""
    return SqlConversationStore(engine, clock=lambda: T0, catalogue=SqlCatalogue(engine))


async def test_the_delivery_check_of_a_free_chat_reads_its_steps_load_ahead(
    engine: AsyncEngine, stepping: SqlConversationStore
):
    inbox, chat = SqlPendingUpdates(engine), a_key("1001")
    await stepping.save(chat, Session(step=Step.ASK_NUMBER), delivery="7")
    afresh = await stepping.load_for_step(chat)
    ran = Statements(engine)

    assert await inbox.seen(chat, 8) == Seen(delivered=False, waiting=False)
    checked = ran.count
    assert await stepping.load_for_step(chat) == afresh
    assert (checked, ran.count) == (1, 1)  # the load ran no statement of its own
    await stepping.load_for_step(chat)
    assert ran.count == 2  # taken once


async def test_rows_read_ahead_are_dropped_by_any_statement_run_before_the_load(
    engine: AsyncEngine, stepping: SqlConversationStore
):
    inbox, chat = SqlPendingUpdates(engine), a_key("1001")
    await stepping.save(chat, Session(step=Step.ASK_NUMBER), delivery="7")

    await inbox.seen(chat, 8)
    await stepping.record_consent(chat, version="v1", at=T0)  # a write the rows do not hold
    session, _ = await stepping.load_for_step(chat)

    assert session.profile.consented


async def test_rows_read_ahead_serve_only_the_task_that_read_them_and_only_their_chat(
    engine: AsyncEngine, stepping: SqlConversationStore
):
    inbox, chat, other = SqlPendingUpdates(engine), a_key("1001"), a_key("2002")
    for key in (chat, other):
        await stepping.save(key, Session(step=Step.ASK_NUMBER), delivery=f"7{key.chat_id}")
    await stepping.load_for_step(other)  # the packages on sale now cached, as in a running bot
    ran = Statements(engine)

    await inbox.seen(chat, 8)
    await asyncio.create_task(stepping.load_for_step(chat))  # a task it started: reads itself
    await inbox.seen(chat, 9)
    await stepping.load_for_step(other)  # another chat's load: reads its own
    await stepping.load_for_step(chat)  # and dropped the rows

    assert ran.count == 5


@pytest.mark.parametrize("case", ["delivered before", "updates kept", "a new chat"])
async def test_a_load_after_the_delivery_check_reads_only_what_was_not_read_ahead(
    engine: AsyncEngine, stepping: SqlConversationStore, case: str
):
    """Nothing for an update that is not handled next (a repeat, or one behind kept ones); a new
    chat's check found it has no rows, so its load reads the catalogue's stamp alone."""
    inbox, chat = SqlPendingUpdates(engine), a_key("1001")
    if case != "a new chat":
        await stepping.save(chat, Session(step=Step.ASK_NUMBER), delivery="7")
    if case == "updates kept":
        await inbox.add(chat, 8, '{"update_id": 8}', at=T0)
    await stepping.load_for_step(chat)  # the packages on sale now cached, as in a running bot
    ran = Statements(engine)
    await stepping.load_for_step(chat)
    alone = ran.count

    await inbox.seen(chat, 7 if case == "delivered before" else 9)
    checked = ran.count
    session, _ = await stepping.load_for_step(chat)

    assert ran.count - checked == (alone - 1 if case == "a new chat" else alone)
    assert session == (Session() if case == "a new chat" else Session(step=Step.ASK_NUMBER))


WROTE = Claim(customer_wrote=True, now=T0, until=T0 + timedelta(minutes=1))
AFTER_THE_LEASE = Claim(
    customer_wrote=True, now=WROTE.until, until=WROTE.until + timedelta(minutes=1)
)


def replies(*ids: str) -> list[Outgoing]:
    return [Outgoing(id, a_key(), Reply(f"respuesta {id}")) for id in ids]


@pytest.mark.parametrize("wrote", [True, False], ids=["the customer wrote", "a notice"])
async def test_the_step_of_a_chat_that_owes_nothing_puts_its_replies_in_taken(
    engine: AsyncEngine, stepping: SqlConversationStore, wrote: bool
):
    """No take: the chat's loaded rows said it owed no message, and it is held. What is put in
    is claimed as a take would claim it."""
    await stepping.save(a_key(), Session(step=Step.ASK_NUMBER))
    ran = Statements(engine)
    await stepping.load_for_step(a_key())

    claim = replace(WROTE, customer_wrote=wrote)
    taken = await stepping.save(a_key(), Session(), outgoing=replies("r:0", "r:1"), claim=claim)

    assert [m.id for m in taken] == ["r:0", "r:1"]
    assert [m.contact is None for m in taken] == [wrote, wrote]  # read for a notice
    assert not [s for s in ran.sql if s.startswith("UPDATE outbox")]
    outbox = SqlOutbox(engine)
    assert await outbox.take(a_key(), WROTE) == []  # claimed until the lease ends
    assert [m.id for m in await outbox.take(a_key(), AFTER_THE_LEASE)] == ["r:0", "r:1"]


@pytest.mark.parametrize("put_in", ["before the load", "after the load"])
async def test_what_a_chat_owes_goes_before_its_steps_replies(
    engine: AsyncEngine, stepping: SqlConversationStore, put_in: str
):
    """After the load too: any statement run between the load and the save drops what the load
    found."""
    await stepping.save(a_key(), Session(step=Step.ASK_NUMBER))
    outbox = SqlOutbox(engine)
    if put_in == "before the load":
        await outbox.add(replies("owed:0"), at=T0)
    await stepping.load_for_step(a_key())
    if put_in == "after the load":
        await outbox.add(replies("owed:0"), at=T0)

    taken = await stepping.save(a_key(), Session(), outgoing=replies("r:0"), claim=WROTE)

    assert [m.id for m in taken] == ["owed:0", "r:0"]


async def test_a_message_id_put_in_before_is_not_taken_again_by_a_chat_that_owes_nothing(
    engine: AsyncEngine, stepping: SqlConversationStore
):
    """An order's notice put in again after a crash: it was sent, and is not sent twice."""
    await stepping.save(a_key(), Session(step=Step.ASK_NUMBER))
    outbox = SqlOutbox(engine)
    await outbox.add(replies("notice:0"), at=T0)
    await outbox.take(a_key(), WROTE)
    await outbox.sent("notice:0", vendor_id="1", at=T0)
    await stepping.load_for_step(a_key())

    taken = await stepping.save(
        a_key(), Session(), outgoing=replies("notice:0", "r:0"), claim=WROTE
    )

    assert [m.id for m in taken] == ["r:0"]
    assert await outbox.take(a_key(), AFTER_THE_LEASE) == replies("r:0")  # the sent one stays


async def test_a_save_records_its_delivery_and_drops_a_copy_of_it_kept_meanwhile(
    engine: AsyncEngine, store: SqlConversationStore
):
    """Telegram sent the update again while the first was being handled: the copy kept then
    is not handled a second time, and a later repeat is dropped."""
    inbox, contacts = SqlPendingUpdates(engine), SqlContacts(engine)
    await contacts.mark(a_key(), at=T0, unreachable=True)
    assert await inbox.add(a_key(), 7, '{"update_id": 7}', at=T0)  # the repeat, kept

    await store.save(a_key(), Session(), delivery="7")

    assert await inbox.take(a_key()) == (None, False)
    assert await contacts.first_delivery(a_key(), "7", at=T0) is False
    assert await contacts.contact(a_key()) == Contact(last_inbound_at=T0)  # reachable again


async def test_a_save_of_a_delivery_recorded_before_changes_only_the_chat(
    engine: AsyncEngine, store: SqlConversationStore
):
    contacts = SqlContacts(engine)
    await contacts.first_delivery(a_key(), "7", at=T0 - timedelta(minutes=5))

    await store.save(a_key(), Session(step=Step.ASK_NAME), delivery="7")

    assert (await contacts.contact(a_key())).last_inbound_at == T0 - timedelta(minutes=5)
    assert (await store.load(a_key())).step is Step.ASK_NAME


async def test_a_save_keeps_what_the_step_kept_of_the_customer(store: SqlConversationStore):
    profile = [RecordConsent("2026-01"), RecordPromos(opt_in=True), RememberLine(a_line())]

    await store.save(a_key(), Session(step=Step.ASK_NAME), profile=profile)

    loaded = await store.load(a_key())
    assert loaded.step is Step.ASK_NAME
    assert loaded.profile.consented and loaded.profile.promos_asked
    assert loaded.profile.lines == (a_line(),)


# ---------------------------------------------------------------- sandbox checkouts


async def test_a_sandbox_checkout_ends_once_and_is_remembered(engine: AsyncEngine):
    checkouts = SqlSandboxCheckouts(engine)
    assert await checkouts.ended("cs_1") is None

    first = await checkouts.end("cs_1", "paid", brand="visa", at=T0)
    second = await checkouts.end("cs_1", "expired", brand=None, at=T0)  # the other submit

    assert (first, second) == (True, False)
    assert await checkouts.ended("cs_1") == ("paid", "visa")
