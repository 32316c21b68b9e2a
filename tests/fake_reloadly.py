"""FakeReloadly: a local HTTP stand-in for Reloadly's auth and airtime API, with scripted outcomes.

Every ``POST /topups`` is recorded by ``customIdentifier``; ``credited`` holds what reached each
line. Outcomes are scripted per recipient number, one per POST, then "ok":

- ``"ok"``: credit and answer at once;
- ``"late"``: credit, then hold the answer until ``release`` is set (the client times out);
- ``"hang"``: credit, then hold the answer until ``release`` (a crash while the answer is due);
- ``"503"`` / ``"429"``: refuse before accepting, with no error body, crediting nothing;
- ``"failed"``: make a FAILED transaction and refuse with ``TOPUP_TRANSACTION_FAILED`` (a code the
  bot settles by asking the status);
- any other text: refuse with that ``errorCode`` in Reloadly's JSON error shape.

``GET /operators/countries/PE`` lists Claro's airtime operator (RANGE) and, with
``includeBundles=true``, its bundle operator (FIXED amounts with descriptions), shaped as Reloadly
documents them; ``bundles`` may be edited to change prices. Every call needs the documented
``Accept: application/com.reloadly.topups-v1+json`` (else 406) and a live token. A POST is
checked as Reloadly checks it: a Peruvian recipient (else ``INVALID_RECIPIENT_PHONE``), a known
operator and an amount that operator takes (one of a FIXED operator's local fixed amounts, or
within a RANGE), else ``INVALID_AMOUNT_FOR_OPERATOR``. ``sent`` keeps, per
``customIdentifier``, every (operatorId, céntimos) posted.

``gate_detect`` holds operator look-ups the same way, to stop the bot before it posts.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_RANGE = {"bundle": False, "data": False, "pin": False, "supportsLocalAmounts": True,
          "denominationType": "RANGE", "destinationCurrencyCode": "PEN",
          "senderCurrencyCode": "USD",
          "localMinAmount": 3.0, "localMaxAmount": 200.0, "fixedAmounts": [],
          "localFixedAmounts": [], "fixedAmountsDescriptions": {},
          "localFixedAmountsDescriptions": {}}  # fmt: skip
CLARO = {"id": 1001, "operatorId": 1001, "name": "Claro Peru", **_RANGE}
MOVISTAR = {"id": 1002, "operatorId": 1002, "name": "Movistar Peru", **_RANGE}
BUNDLES_ID = 1003
# Claro's packages: local amount in soles -> description (the USD amounts follow at 0.27).
CLARO_BUNDLES = {
    "5.00": "Paquete Redes: 1 GB + WhatsApp ilimitado, 3 días",
    "10.00": "Paquete Internet: 3 GB + llamadas ilimitadas a Claro, 7 días",
    "20.00": "Paquete Ilimitado: 8 GB + llamadas y SMS ilimitados, 15 días",
    "35.00": "Paquete Mensual: 20 GB + llamadas ilimitadas + redes sociales, 30 días",
}


def bundle_operator(bundles: dict[str, str]) -> dict[str, Any]:
    """Claro's bundle operator as GET /operators lists it, selling ``bundles``."""
    local = [float(amount) for amount in bundles]
    return {
        **_RANGE, "id": BUNDLES_ID, "operatorId": BUNDLES_ID, "name": "Claro Peru Bundles",
        "bundle": True, "denominationType": "FIXED", "localMinAmount": None,
        "localMaxAmount": None, "localFixedAmounts": local,
        "fixedAmounts": [round(amount * 0.27, 2) for amount in local],
        "localFixedAmountsDescriptions": dict(bundles),
        "fixedAmountsDescriptions": {
            f"{amount * 0.27:.2f}": text
            for amount, text in zip(local, bundles.values(), strict=True)
        },
    }  # fmt: skip


def _error(status: int, code: str, message: str = "refused") -> JSONResponse:
    return JSONResponse({"errorCode": code, "message": message, "timeStamp": "now"}, status)


@dataclass
class FakeReloadly:
    client_id: str = "reloadly-client"
    client_secret: str = "reloadly-secret"
    not_claro: set[str] = field(default_factory=set)  # local 9-digit numbers on another operator
    script: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    posts: Counter[str] = field(default_factory=Counter)
    credited: dict[str, int] = field(default_factory=dict)  # customIdentifier -> céntimos
    statuses: dict[str, str] = field(default_factory=dict)  # customIdentifier -> status
    bundles: dict[str, str] = field(default_factory=lambda: dict(CLARO_BUNDLES))
    sent: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    tokens_issued: int = 0
    status_queries: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    gate_detect: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # a held request is waiting
    expire_tokens: bool = False
    # Every token issued stays valid (one per bot process, as replicas each fetch their own);
    # by default only the latest one is, to test renewal.
    every_token_valid: bool = False
    wallet: float = 550.5  # the account's balance in USD
    audience: str = "https://topups-sandbox.reloadly.com"  # the environment the fake stands for
    _transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5000))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/token", self._token, methods=["POST"]),
                Route("/operators/auto-detect/phone/{phone}/countries/{iso}", self._detect),
                Route("/operators/countries/{iso}", self._operators),
                Route("/topups", self._topup, methods=["POST"]),
                Route("/topups/reports/transactions", self._report),
                Route("/topups/{transaction_id}/status", self._status),
                Route("/accounts/balance", self._balance),
            ]
        )

    def outcomes(self, msisdn: str, *outcomes: str) -> None:
        """Script the next POSTs to this 9-digit number."""
        self.script[msisdn].extend(outcomes)

    async def _token(self, request: Request) -> Response:
        body = await request.json()
        if (body.get("client_id"), body.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return _error(401, "INVALID_CREDENTIALS")
        if body.get("audience") != self.audience:  # a token for the other environment
            return _error(401, "INVALID_AUDIENCE", "Access denied: wrong audience")
        self.tokens_issued += 1
        token = f"token-{self.tokens_issued}"
        return JSONResponse({"access_token": token, "expires_in": 5184000, "token_type": "Bearer"})

    def _unauthorised(self, request: Request) -> Response | None:
        """Refuse a call without the API version Reloadly documents, or without a live token."""
        if request.headers.get("accept") != "application/com.reloadly.topups-v1+json":
            return Response(status_code=406)
        given = request.headers.get("authorization")
        first = 1 if self.every_token_valid else self.tokens_issued
        valid = {f"Bearer token-{n}" for n in range(first, self.tokens_issued + 1)}
        if self.expire_tokens or given not in valid:
            self.expire_tokens = False
            return _error(401, "TOKEN_EXPIRED", "Access token expired")
        return None

    async def _balance(self, request: Request) -> Response:
        """The account's balance, as Reloadly documents it (a decimal in its currency)."""
        if (refused := self._unauthorised(request)) is not None:
            return refused
        body = {"balance": self.wallet, "currencyCode": "USD", "currencyName": "US Dollar",
                "updatedAt": "2026-12-07 08:45:51"}  # fmt: skip
        return JSONResponse(body)

    async def _detect(self, request: Request) -> Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        if self.gate_detect:
            await self._hold()
        local = request.path_params["phone"].removeprefix("51")
        return JSONResponse(MOVISTAR if local in self.not_claro else CLARO)

    def operators(self, *, bundles: bool) -> list[dict[str, Any]]:
        """Peru's operators as Reloadly lists them; bundle operators only when asked for."""
        return [CLARO, MOVISTAR, *([bundle_operator(self.bundles)] if bundles else [])]

    async def _operators(self, request: Request) -> Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        if request.path_params["iso"] != "PE":
            return _error(404, "COUNTRY_NOT_SUPPORTED")
        bundles = request.query_params.get("includeBundles") == "true"
        return JSONResponse(self.operators(bundles=bundles))

    def _takes(self, operator_id: object, cents: int, local: bool) -> bool:
        """Whether the operator takes this amount, as Reloadly checks a POST /topups."""
        found = {o["id"]: o for o in self.operators(bundles=True)}.get(operator_id)
        if found is None or not local:
            return False
        if found["denominationType"] == "FIXED":
            return cents in {round(a * 100) for a in found["localFixedAmounts"]}
        return found["localMinAmount"] * 100 <= cents <= found["localMaxAmount"] * 100

    async def _topup(self, request: Request) -> Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        body = await request.json()
        identifier, local = body["customIdentifier"], body["recipientPhone"]["number"][2:]
        cents = round(float(body["amount"]) * 100)
        self.posts[identifier] += 1
        self.sent[identifier].append((body["operatorId"], cents))
        outcome = self.script[local].pop(0) if self.script[local] else "ok"
        if outcome in ("503", "429"):
            return Response(status_code=int(outcome))
        if identifier in self._transactions:
            return _error(400, "CUSTOM_IDENTIFIER_ALREADY_USED")
        phone = body["recipientPhone"]
        if phone.get("countryCode") != "PE" or not re.fullmatch(r"\+?519\d{8}", phone["number"]):
            return _error(400, "INVALID_RECIPIENT_PHONE", "Recipient phone number is not valid")
        if not self._takes(body["operatorId"], cents, body.get("useLocalAmount") is True):
            return _error(400, "INVALID_AMOUNT_FOR_OPERATOR")
        if outcome == "failed":
            self._transactions[identifier] = self._transaction(identifier, cents, "FAILED")
            self.statuses[identifier] = "FAILED"
            return _error(400, "TOPUP_TRANSACTION_FAILED", "Topup transaction failed")
        if outcome not in ("ok", "late", "hang"):
            return _error(400, outcome)
        transaction = self._credit(identifier, cents)
        if outcome != "ok":
            await self._hold()
        return JSONResponse(transaction)

    async def _report(self, request: Request) -> Response:
        self.status_queries += 1
        found = self._transactions.get(request.query_params.get("customIdentifier", ""))
        return JSONResponse(
            {"content": [found] if found else [], "totalElements": int(bool(found))}
        )

    async def _status(self, request: Request) -> Response:
        wanted = int(request.path_params["transaction_id"])
        for identifier, transaction in self._transactions.items():
            if transaction["transactionId"] == wanted:
                return JSONResponse(
                    {"status": self.statuses[identifier], "transaction": transaction}
                )
        return _error(404, "TRANSACTION_NOT_FOUND")

    async def _hold(self) -> None:
        self.arrived.set()
        await self.release.wait()

    def _credit(self, identifier: str, cents: int) -> dict[str, Any]:
        self.credited[identifier] = self.credited.get(identifier, 0) + cents
        self.statuses[identifier] = "SUCCESSFUL"
        transaction = self._transaction(identifier, cents, "SUCCESSFUL")
        self._transactions[identifier] = transaction
        return transaction

    def _transaction(self, identifier: str, cents: int, status: str) -> dict[str, Any]:
        return {
            "transactionId": next(self._ids),
            "status": status,
            "customIdentifier": identifier,
            "requestedAmount": cents / 100,
            "requestedAmountCurrencyCode": "PEN",
        }
