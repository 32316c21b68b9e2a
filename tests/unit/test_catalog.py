"""Labelled corpus for the validators and the catalogue: what customers type, and what we keep."""

from __future__ import annotations

import pytest

from conversations.catalog import (
    credit_product,
    display_msisdn,
    fold,
    parse_document,
    parse_msisdn,
    parse_name,
    soles,
)
from conversations.model import DocType, ProductKind

# ---------------------------------------------------------------- mobile numbers


@pytest.mark.parametrize(
    "typed",
    [
        "987654321",
        "+51 987 654 321",
        "987-654-321",
        "+51-987-654-321",
        "51987654321",
        "+51987654321",
        "987 654 321",
        "  987654321  ",
        "(+51) 987 654 321",
        "987.654.321",
    ],
)
def test_peruvian_mobile_number_is_reduced_to_nine_national_digits(typed: str) -> None:
    assert parse_msisdn(typed) == "987654321"


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param("812345678", id="starts-with-8"),
        pytest.param("198765432", id="starts-with-1"),
        pytest.param("98765432", id="8-digits"),
        pytest.param("9876543210", id="10-digits"),
        pytest.param("abc", id="letters"),
        pytest.param("98765432a", id="trailing-letter"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("9" * 5000, id="5000-digits"),
        pytest.param("9 " * 2500, id="5000-chars"),
        pytest.param("📱", id="emoji"),
        pytest.param("987654321 📱", id="number-and-emoji"),
        pytest.param("+1 987 654 321", id="foreign-country-code"),
        pytest.param("014567890", id="lima-landline"),
        pytest.param("987\u200b654321", id="zero-width-space"),
    ],
)
def test_anything_but_a_peruvian_mobile_number_is_rejected(typed: str) -> None:
    assert parse_msisdn(typed) is None


def test_number_is_displayed_in_groups_of_three() -> None:
    assert display_msisdn("987654321") == "987 654 321"


# ---------------------------------------------------------------- documents

# 10117410: weights 3,2,7,6,5,4,3,2 give 70; 70 mod 11 = 4; check '2' or 'G'.


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param("10117410", id="bare"),
        pytest.param("10117410-2", id="check-digit-after-hyphen"),
        pytest.param("10117410G", id="check-letter"),
        pytest.param("10117410-g", id="check-letter-lower-case"),
        pytest.param("101174102", id="check-digit-without-hyphen"),
        pytest.param("10 117 410", id="spaced"),
        pytest.param("10.117.410", id="dotted"),
    ],
)
def test_dni_is_reduced_to_its_eight_digits(typed: str) -> None:
    assert parse_document(DocType.DNI, typed) == "10117410"


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param("10117410-3", id="wrong-check-digit"),
        pytest.param("10117410K", id="wrong-check-letter"),
        pytest.param("101174103", id="9-digits-wrong-check"),
        pytest.param("00000000", id="all-zeros"),
        pytest.param("11111111", id="all-ones"),
        pytest.param("1011741", id="7-digits"),
        pytest.param("1011741020", id="10-digits"),
        pytest.param("1011741O", id="letter-o-for-zero"),
        pytest.param("", id="empty"),
        pytest.param("1" * 5000, id="5000-chars"),
        pytest.param("🆔", id="emoji"),
    ],
)
def test_invalid_dni_is_rejected(typed: str) -> None:
    assert parse_document(DocType.DNI, typed) is None


@pytest.mark.parametrize("typed", ["123456789", "001234567", "1234567890", "123456789012"])
def test_carne_de_extranjeria_of_nine_to_twelve_digits_is_accepted(typed: str) -> None:
    assert parse_document(DocType.CE, typed) == typed


@pytest.mark.parametrize(
    "typed", ["12345678", "1234567890123", "000000000", "12345678A", "", "1" * 5000]
)
def test_invalid_carne_de_extranjeria_is_rejected(typed: str) -> None:
    assert parse_document(DocType.CE, typed) is None


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("AB123456", "AB123456"),
        ("ab123456", "AB123456"),
        ("ab 12-34", "AB1234"),
        ("123456", "123456"),
        ("ABCDEFGHIJ12", "ABCDEFGHIJ12"),
    ],
)
def test_passport_is_kept_upper_case_without_separators(typed: str, kept: str) -> None:
    assert parse_document(DocType.PASSPORT, typed) == kept


@pytest.mark.parametrize(
    "typed",
    ["AB123", "ABCDEFGHIJKLM", "AAAAAA", "ÁB1234", "AB_1234", "AB1234😀", "", "MARIAQUISPE"],
)
def test_invalid_passport_is_rejected(typed: str) -> None:
    assert parse_document(DocType.PASSPORT, typed) is None


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("María Quispe", "María Quispe"),
        ("José Ñañez Pérez", "José Ñañez Pérez"),
        ("O'Brien", "O'Brien"),
        ("Ch'aska Huamán", "Ch'aska Huamán"),
        ("Ana-María López", "Ana-María López"),
        ("  Juan    Quispe\tMamani ", "Juan Quispe Mamani"),
        ("Ana María de la Cruz", "Ana María de la Cruz"),
        ("Jose\u0301 Pe\u0301rez", "José Pérez"),
        ("JP", "JP"),
        ("a" * 60, "a" * 60),
    ],
)
def test_plausible_name_is_kept_with_single_spaces(typed: str, kept: str) -> None:
    assert parse_name(typed) == kept


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param("Juan2", id="digit"),
        pytest.param("Ana 😀", id="emoji"),
        pytest.param("A", id="one-char"),
        pytest.param("a" * 61, id="61-chars"),
        pytest.param("", id="empty"),
        pytest.param("Robert'); DROP TABLE lines;--", id="sql"),
        pytest.param("*Juan*", id="markdown-bold"),
        pytest.param("_Juan_", id="markdown-italic"),
        pytest.param("[Juan](https://x.example)", id="markdown-link"),
        pytest.param("Juan`x`", id="backticks"),
        pytest.param("<b>Juan</b>", id="html"),
        pytest.param("Juan--Quispe", id="double-hyphen"),
        pytest.param("\u200bJuan", id="zero-width-space"),
        pytest.param("\u202eJuan", id="rtl-override"),
    ],
)
def test_implausible_name_is_rejected(typed: str) -> None:
    assert parse_name(typed) is None


# ---------------------------------------------------------------- amounts


@pytest.mark.parametrize(("amount", "days"), [(3, 30), (59, 30), (60, 60), (200, 60)])
def test_credit_validity_is_thirty_days_below_sixty_soles_and_sixty_from_there(
    amount: int, days: int
) -> None:
    assert credit_product(amount).validity_days == days


def test_credit_product_is_priced_in_centimos() -> None:
    product = credit_product(25)

    assert (product.kind, product.price_cents, product.code) == (
        ProductKind.CREDIT,
        2500,
        "saldo-25",
    )
    assert product.name == "Recarga de saldo S/ 25.00"


@pytest.mark.parametrize(
    ("cents", "shown"), [(1000, "S/ 10.00"), (1050, "S/ 10.50"), (5, "S/ 0.05")]
)
def test_soles_shows_two_decimals(cents: int, shown: str) -> None:
    assert soles(cents) == shown


def test_fold_ignores_case_accents_and_surrounding_spaces() -> None:
    assert fold("  SÍ ") == fold("si") == "si"
