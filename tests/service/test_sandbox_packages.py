"""The demo's packages: the sandbox provider's Reloadly-shaped bundles, synced at start."""

from __future__ import annotations

from adapters.sandbox_topups import AIRTIME_ID, BUNDLES_ID
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer


async def test_a_package_in_the_demo_goes_to_the_bundle_operator_at_its_fixed_amount(
    services, messenger
):
    customer = Customer(services, messenger)

    menu = (await customer.say(*NEW_CUSTOMER_TO_SUMMARY[:6], "Paquetes"))[-1]
    summary = (await customer.say("2"))[-1]  # Paquete Internet
    await customer.say("Confirmar")
    await customer.pay()

    assert len(menu.options) == 4  # no sync step: the sandbox's catalogue is read at start
    assert "📅 Vigencia: 7 días" in summary.text and "3 GB" in summary.text
    assert list(services.topups.sent_to.values()) == [(BUNDLES_ID, 1000)]
    assert "Recarga exitosa" in customer.texts()[-1]


async def test_an_amount_in_the_demo_goes_to_the_airtime_operator(services, messenger):
    customer = Customer(services, messenger)

    await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")
    await customer.pay()

    assert list(services.topups.sent_to.values()) == [(AIRTIME_ID, 1000)]
