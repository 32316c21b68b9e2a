"""SandboxTopUps: a simulated top-up provider with scripted endings, for demos and tests.

It implements the core's ``TopUps`` port in memory, behaving like Reloadly where it matters:
the order id is a single-use identifier, and after an unknown outcome only ``status()`` tells
what happened. Which ending a top-up gets is chosen by the last four digits of the number.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter

from adapters.reloadly_catalogue import claro_offers
from conversations.errors import FailureKind, TopUpRejected, TopUpUnknown
from conversations.machine import Verdict
from conversations.masking import mask_msisdn
from conversations.model import Order, ProductKind
from conversations.packages import Offer
from conversations.ports import Balance, TopUpState, TopUpStatus

logger = logging.getLogger(__name__)

# Claro Peru as Reloadly lists it (GET /operators/countries/PE with bundles and data): the
# airtime operator takes any amount in a range; packages are fixed amounts of a bundle operator.
AIRTIME_ID, BUNDLES_ID = 1101, 1102
AIRTIME_OPERATOR = {
    "id": AIRTIME_ID, "operatorId": AIRTIME_ID, "name": "Claro Peru",
    "bundle": False, "data": False,
    "denominationType": "RANGE", "destinationCurrencyCode": "PEN", "supportsLocalAmounts": True,
    "localMinAmount": 3.0, "localMaxAmount": 200.0, "fixedAmounts": [], "localFixedAmounts": [],
}  # fmt: skip
BUNDLE_OPERATOR = {
    "id": BUNDLES_ID, "operatorId": BUNDLES_ID, "name": "Claro Peru Bundles",
    "bundle": True, "data": False,
    "denominationType": "FIXED", "destinationCurrencyCode": "PEN", "supportsLocalAmounts": True,
    "fixedAmounts": [1.35, 2.7, 5.4, 9.45], "localFixedAmounts": [5.0, 10.0, 20.0, 35.0],
    "localFixedAmountsDescriptions": {
        "5.00": "Paquete Redes: 1 GB + WhatsApp ilimitado, 3 días",
        "10.00": "Paquete Internet: 3 GB + llamadas ilimitadas a Claro, 7 días",
        "20.00": "Paquete Ilimitado: 8 GB + llamadas y SMS ilimitados, 15 días",
        "35.00": "Paquete Mensual: 20 GB + llamadas ilimitadas + redes sociales, 30 días",
    },
}  # fmt: skip
OPERATORS = (AIRTIME_OPERATOR, BUNDLE_OPERATOR)

NOT_CLARO = "9999"
FAILS_FOR_GOOD = "0000"
TIMES_OUT = "0001"
WALLET_EMPTY = "0002"
SANDBOX_FLOAT_CENTS = 500_000  # the demo's provider wallet: S/ 5,000.00


class SandboxTopUps:
    """A top-up provider in memory (implements ``TopUps``); the number's last four digits script it.

    - ``…9999``: not a Claro line (``operator_of`` says OTHER); every other number is Claro.
    - ``…0000``: refused for good, ``TopUpRejected('INVALID_RECIPIENT_PHONE', PERMANENT)``;
      nothing credited, and ``status()`` then reports FAILED.
    - ``…0001``: the line is credited but the answer "times out" (``TopUpUnknown``);
      ``status()`` then reports SUCCESSFUL with the operation id.
    - ``…0002``: our wallet is empty, ``TopUpRejected('INSUFFICIENT_BALANCE', PRECONDITION)``;
      nothing credited and the order id stays unused, so the same order may be sent again.
    - anything else: credited at once; ``send()`` returns an 8-digit operation id derived from
      the order id (stable across restarts, unlike a counter).

    Sending an order id already used raises ``TopUpUnknown`` and credits nothing, like
    Reloadly's ``CUSTOM_IDENTIFIER_ALREADY_USED`` (which means: ask the status).
    ``posts`` counts ``send()`` calls per order id; ``balances`` sums céntimos per number and
    ``credited`` per order.
    """

    def __init__(self) -> None:
        self.posts: Counter[str] = Counter()
        self.balances: dict[str, int] = {}
        self.credited: dict[str, int] = {}  # order id -> céntimos credited
        self._outcomes: dict[str, TopUpStatus] = {}
        self.sent_to: dict[str, tuple[int, int]] = {}  # order id -> (operator id, céntimos)

    async def balance(self) -> Balance:
        """The sandbox wallet: a fixed float in soles, less what this process credited."""
        return Balance(SANDBOX_FLOAT_CENTS - sum(self.credited.values()), "PEN")

    async def offers(self) -> list[Offer]:
        """The bundle catalogue, read from Reloadly-shaped operators as the real one is."""
        return claro_offers(OPERATORS)

    async def operator_of(self, msisdn: str) -> Verdict:
        """Say whether the number is a Claro line."""
        return Verdict.OTHER if msisdn.endswith(NOT_CLARO) else Verdict.CLARO

    async def send(self, order: Order) -> str:
        """Top up the order's line with its id as the single-use identifier."""
        self.posts[order.id] += 1
        self.sent_to[order.id] = _destination(order)
        msisdn = order.purchase.line.msisdn
        logger.info("sandbox top-up of order=%s to %s", order.id, mask_msisdn(msisdn))
        if order.id in self._outcomes:
            raise TopUpUnknown(f"identifier {order.id} already used")
        if msisdn.endswith(WALLET_EMPTY):
            raise TopUpRejected("INSUFFICIENT_BALANCE", FailureKind.PRECONDITION)
        if msisdn.endswith(FAILS_FOR_GOOD):
            self._outcomes[order.id] = TopUpStatus(TopUpState.FAILED)
            raise TopUpRejected("INVALID_RECIPIENT_PHONE", FailureKind.PERMANENT)
        operation_id = self._credit(order)
        if msisdn.endswith(TIMES_OUT):
            raise TopUpUnknown("the provider did not answer in time")
        return operation_id

    async def status(self, order_id: str) -> TopUpStatus:
        """Report what became of the top-up sent with this order id."""
        return self._outcomes.get(order_id, TopUpStatus(TopUpState.NOT_FOUND))

    def _credit(self, order: Order) -> str:
        msisdn = order.purchase.line.msisdn
        operation_id = f"{int(hashlib.sha256(order.id.encode()).hexdigest(), 16) % 10**8:08d}"
        self.balances[msisdn] = self.balances.get(msisdn, 0) + order.amount_cents
        self.credited[order.id] = self.credited.get(order.id, 0) + order.amount_cents
        self._outcomes[order.id] = TopUpStatus(TopUpState.SUCCESSFUL, operation_id)
        return operation_id


def _destination(order: Order) -> tuple[int, int]:
    """A package goes to its bundle operator at one of its fixed amounts; credit to airtime."""
    product = order.purchase.product
    if product.kind is not ProductKind.PACKAGE:
        return AIRTIME_ID, order.amount_cents
    amounts = {offer.face_cents for offer in claro_offers(OPERATORS)
               if offer.operator_id == product.operator_id}  # fmt: skip
    if product.face_cents not in amounts or product.operator_id is None:
        raise TopUpRejected("INVALID_AMOUNT_FOR_OPERATOR", FailureKind.PERMANENT)
    return product.operator_id, product.face_cents
