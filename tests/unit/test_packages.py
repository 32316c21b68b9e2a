"""Packages read from the provider: defaults from its descriptions, and which operators count."""

from __future__ import annotations

import pytest

from adapters.reloadly_catalogue import claro_offers
from conversations.packages import (
    ListedPackage,
    Offer,
    default_details,
    default_name,
    validity_days,
)
from tests.fake_reloadly import CLARO, MOVISTAR, bundle_operator

MONTHLY = "Paquete Mensual: 20 GB + llamadas ilimitadas, 30 días"


@pytest.mark.parametrize(
    ("description", "days"),
    [(MONTHLY, 30), ("Claro 5GB, validity 7 days", 7), ("Vigencia: 1 día", 1), ("2 GB", 0)],
)
def test_validity_is_read_from_the_description(description: str, days: int) -> None:
    assert validity_days(description) == days


def test_name_and_contents_are_read_from_the_description() -> None:
    assert default_name(MONTHLY, 3500) == "Paquete Mensual"
    assert default_details(MONTHLY) == "20 GB + llamadas ilimitadas"
    assert default_name("5GB internet, 7 days", 1500) == "Paquete S/ 15.00"
    assert default_details("5GB internet, 7 days") == "5GB internet"


def test_the_code_survives_a_price_change_but_not_another_operator() -> None:
    offer = Offer(1003, "Claro Peru Bundles", 3500, MONTHLY)

    repriced = Offer(1003, "Claro Peru Bundles", 3900, MONTHLY)

    assert offer.code == repriced.code != Offer(1004, "Otro", 3500, MONTHLY).code
    assert len(f"pkg:{offer.code}".encode()) <= 64  # fits Telegram's callback_data


def test_operators_names_win_over_the_providers_and_hidden_or_cheap_ones_are_not_on_sale() -> None:
    offer = Offer(1003, "Claro Peru Bundles", 3500, MONTHLY)

    renamed = ListedPackage(offer, 3500, 1, name="Mensual", details="20 GB").product()

    assert (renamed.name, renamed.details, renamed.validity_days) == ("Mensual", "20 GB", 30)
    assert (renamed.operator_id, renamed.face_cents) == (1003, 3500)
    assert not ListedPackage(offer, 3500, 1, hidden=True).on_sale
    assert not ListedPackage(offer, 3500, 1, available=False).on_sale
    assert not ListedPackage(Offer(1003, "x", 200, "1 GB"), 200, 1).on_sale  # below S/ 3


def test_only_claros_fixed_bundle_operators_become_offers() -> None:
    movistar_bundles = {**bundle_operator({"5.00": "x"}), "id": 9, "name": "Movistar Bundles"}

    offers = claro_offers([CLARO, MOVISTAR, movistar_bundles, bundle_operator({"35.00": MONTHLY})])

    assert offers == [Offer(1003, "Claro Peru Bundles", 3500, MONTHLY)]


def test_a_description_keyed_by_the_senders_amount_is_used_when_no_local_one_is_given() -> None:
    operator = {**bundle_operator({"35.00": MONTHLY}), "localFixedAmountsDescriptions": {}}

    assert claro_offers([operator])[0].description == MONTHLY
