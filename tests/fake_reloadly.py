"""FakeReloadly: a local HTTP stand-in for Reloadly's auth and airtime API, with scripted outcomes.

Every ``POST /topups`` is recorded by ``customIdentifier``; ``credited`` holds what reached each
line. Outcomes are scripted per recipient number, one per POST, then "ok":

- ``"ok"``: credit and answer at once;
- ``"late"``: credit, then hold the answer until ``release`` is set (the client times out);
- ``"hang"``: credit, then hold the answer until ``release`` (a crash while the answer is due);
- ``"503"`` / ``"429"``: refuse before accepting, with no error body, crediting nothing;
- any other text: refuse with that ``errorCode`` in Reloadly's JSON error shape.

``gate_detect`` holds operator look-ups the same way, to stop the bot before it posts.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CLARO = {"id": 1001, "operatorId": 1001, "name": "Claro Peru", "denominationType": "RANGE"}
MOVISTAR = {"id": 1002, "operatorId": 1002, "name": "Movistar Peru", "denominationType": "RANGE"}


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
    tokens_issued: int = 0
    status_queries: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    gate_detect: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # a held request is waiting
    expire_tokens: bool = False
    # Every token issued stays valid (one per bot process, as replicas each fetch their own);
    # by default only the latest one is, to test renewal.
    every_token_valid: bool = False
    audience: str = "https://topups-sandbox.reloadly.com"  # the environment the fake stands for
    _transactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5000))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/oauth/token", self._token, methods=["POST"]),
                Route("/operators/auto-detect/phone/{phone}/countries/{iso}", self._detect),
                Route("/topups", self._topup, methods=["POST"]),
                Route("/topups/reports/transactions", self._report),
                Route("/topups/{transaction_id}/status", self._status),
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
        given = request.headers.get("authorization")
        first = 1 if self.every_token_valid else self.tokens_issued
        valid = {f"Bearer token-{n}" for n in range(first, self.tokens_issued + 1)}
        if self.expire_tokens or given not in valid:
            self.expire_tokens = False
            return _error(401, "TOKEN_EXPIRED", "Access token expired")
        return None

    async def _detect(self, request: Request) -> Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        if self.gate_detect:
            await self._hold()
        local = request.path_params["phone"].removeprefix("51")
        return JSONResponse(MOVISTAR if local in self.not_claro else CLARO)

    async def _topup(self, request: Request) -> Response:
        if (refused := self._unauthorised(request)) is not None:
            return refused
        body = await request.json()
        identifier, local = body["customIdentifier"], body["recipientPhone"]["number"][2:]
        self.posts[identifier] += 1
        outcome = self.script[local].pop(0) if self.script[local] else "ok"
        if outcome in ("503", "429"):
            return Response(status_code=int(outcome))
        if identifier in self._transactions:
            return _error(400, "CUSTOM_IDENTIFIER_ALREADY_USED")
        if outcome not in ("ok", "late", "hang"):
            return _error(400, outcome)
        transaction = self._credit(identifier, round(float(body["amount"]) * 100))
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
        transaction = {
            "transactionId": next(self._ids),
            "status": "SUCCESSFUL",
            "customIdentifier": identifier,
            "requestedAmount": cents / 100,
            "requestedAmountCurrencyCode": "PEN",
        }
        self._transactions[identifier] = transaction
        return transaction
