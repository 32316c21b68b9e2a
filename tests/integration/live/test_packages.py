"""Packages bought as packages, from a catalogue read from Reloadly's operators (the fake)."""

from __future__ import annotations

import asyncio

from conversations.model import Channel, ChatKey, OrderState
from storage.catalogue import SqlCatalogue
from storage.db import make_engine
from tests.db import table_rows
from tests.fake_reloadly import BUNDLES_ID, CLARO
from tests.integration.live.conftest import Bot, World
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer

TO_KIND = NEW_CUSTOMER_TO_SUMMARY[:6]  # up to "Recarga de saldo" / "Paquetes"


def _customer(bot: Bot, n: int) -> Customer:
    return Customer(bot.services, bot.messenger, ChatKey(Channel.TERMINAL, f"chat-{n}"))


async def _buy(world: World, bot: Bot, customer: Customer, *choice: str, n: int = 1) -> str:
    """Chat to the link for the line 987 654 32n, pay it at the fake and announce it."""
    steps = list(TO_KIND)
    steps[2] = f"987 654 32{n}"  # one line each: the per-number daily limits stay out of the way
    await customer.say(*steps, *choice, "Confirmar")
    session_id = customer.last_link().rsplit("/", 1)[-1]
    world.stripe.complete(session_id)
    await world.deliver(bot, "checkout.session.completed", session_id)
    return str(world.stripe.sessions[session_id]["client_reference_id"])


async def test_every_package_is_bought_from_the_bundle_operator_at_its_fixed_amount(world: World):
    bot = await world.start()
    packages = (await bot.services.catalogue.current()).packages
    bought = {}

    for n, package in enumerate(packages, start=1):
        customer = _customer(bot, n)
        order_id = await _buy(world, bot, customer, "Paquetes", str(n), n=n)
        bought[order_id] = (package, customer.texts()[-1])

    assert [p.name for p in packages] == [
        "Paquete Redes", "Paquete Internet", "Paquete Ilimitado", "Paquete Mensual",
    ]  # fmt: skip
    assert world.reloadly.sent == {
        order_id: [(BUNDLES_ID, package.face_cents)] for order_id, (package, _) in bought.items()
    }
    assert sorted(p.face_cents or 0 for p in packages) == [500, 1000, 2000, 3500]
    for order_id, (package, told) in bought.items():
        assert (await bot.services.orders.get(order_id)).state is OrderState.COMPLETED
        assert package.details in told and f"{package.validity_days} días" in told


async def test_an_amount_goes_to_the_airtime_operator(world: World):
    bot = await world.start()

    order_id = await _buy(world, bot, bot.customer, "Recarga de saldo", "S/ 10")

    assert world.reloadly.sent == {order_id: [(CLARO["id"], 1000)]}


async def test_the_menu_shows_what_a_package_includes_and_for_how_long(world: World):
    bot = await world.start()

    menu = (await bot.customer.say(*TO_KIND, "Paquetes"))[-1]

    assert menu.options[-1].label == (
        "Paquete Mensual S/ 35.00 · 20 GB + llamadas ilimitadas + redes sociales (30 días)"
    )


async def test_sync_twice_in_a_row_changes_nothing_the_second_time(world: World):
    bot = await world.start()  # an empty catalogue is synced at start
    before = await table_rows(world.settings.database_url, "catalogue_packages")

    report = await bot.services.sync_catalogue()

    assert len(before) == 4
    assert (report.added, report.changed, report.withdrawn, report.unchanged) == ((), (), (), 4)
    assert await table_rows(world.settings.database_url, "catalogue_packages") == before


async def test_two_replicas_syncing_at_once_write_each_new_package_once(world: World):
    """Replicas start together and each syncs: neither fails, a new package is added once."""
    bot = await world.start()
    world.reloadly.bundles["45.00"] = "Paquete Power: 40 GB + llamadas ilimitadas, 30 días"
    engines = [make_engine(world.settings.database_url) for _ in range(2)]
    try:
        offers = await bot.services.topups.offers()  # type: ignore[attr-defined]
        at = bot.services.chat.clock()
        reports = await asyncio.gather(*(SqlCatalogue(e).sync(offers, at=at) for e in engines))
    finally:
        for engine in engines:
            await engine.dispose()

    assert sorted(len(report.added) for report in reports) == [0, 1]
    assert len(await table_rows(world.settings.database_url, "catalogue_packages")) == 5


async def test_a_price_change_at_the_provider_does_not_alter_an_open_order(world: World):
    bot = await world.start()
    await bot.customer.say(*TO_KIND, "Paquetes", "4", "Confirmar")
    session_id = bot.customer.last_link().rsplit("/", 1)[-1]
    order_id = world.stripe.sessions[session_id]["client_reference_id"]
    monthly = world.reloadly.bundles.pop("35.00")
    world.reloadly.bundles["39.00"] = monthly

    report = await bot.services.sync_catalogue()
    newcomer = (await _customer(bot, 2).say(*TO_KIND, "Paquetes"))[-1]
    order = await bot.services.orders.get(order_id)

    assert len(report.changed) == 1 and not report.added and not report.withdrawn
    assert "Paquete Mensual S/ 39.00" in newcomer.options[-1].label
    assert order.amount_cents == 3500 and order.purchase.product.face_cents == 3500
    assert world.stripe.sessions[session_id]["amount_total"] == 3500


async def test_a_package_the_provider_stops_selling_is_no_longer_offered(world: World):
    bot = await world.start()
    del world.reloadly.bundles["5.00"]

    report = await bot.services.sync_catalogue()
    menu = (await bot.customer.say(*TO_KIND, "Paquetes"))[-1]

    assert len(report.withdrawn) == 1
    assert [o.label.split(" S/")[0] for o in menu.options] == [
        "Paquete Internet", "Paquete Ilimitado", "Paquete Mensual",
    ]  # fmt: skip


async def test_a_hidden_package_leaves_the_menu_with_the_next_message(world: World):
    bot = await world.start()
    first = (await bot.services.catalogue.current()).packages[0]  # now cached by the bot
    await bot.customer.say(*TO_KIND)
    operators = SqlCatalogue(bot.services.engine)  # as `recargabot catalogue hide` in its process

    await operators.hide(first.code, hidden=True, at=world.clock.now)  # the clock stands still
    menu = (await bot.customer.say("Paquetes"))[-1]

    assert first.name not in " ".join(o.label for o in menu.options)
    assert len(menu.options) == 3


async def test_topup_transaction_failed_is_asked_about_and_refunded_in_one_pass(world: World):
    bot = await world.start()
    world.reloadly.outcomes("987654321", "failed")

    order_id = await _buy(world, bot, bot.customer, "Recarga de saldo", "S/ 10")
    await bot.services.worker.run_once()

    assert (await bot.services.orders.get(order_id)).state is OrderState.REFUNDED
    assert world.reloadly.posts == {order_id: 1}
    assert world.reloadly.status_queries == 1
    assert len(world.stripe.refunds) == 1
    assert world.alerts.sent == []  # settled, not held for two hours
    assert sum("devolvimos S/ 10.00" in t for t in bot.customer.texts()) == 1
