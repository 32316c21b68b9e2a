"""ReloadlyTopUps: the core's ``TopUps`` port on Reloadly's airtime API, over an injected
``httpx.AsyncClient``.

- OAuth2 client credentials; the token is cached until shortly before it expires and fetched
  again on a 401 ``TOKEN_EXPIRED``.
- The order id is the single-use ``customIdentifier``. A timeout, a 5xx that may have been
  accepted, or ``CUSTOM_IDENTIFIER_ALREADY_USED`` raise ``TopUpUnknown``: ask the status, never
  resend blindly. Other refusals are sorted by Reloadly's ``errorCode`` (not the HTTP status)
  into the core's transient, precondition and permanent kinds.
- Phone numbers are masked in every log line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from conversations.errors import FailureKind, TopUpRejected, TopUpUnknown
from conversations.machine import Verdict
from conversations.masking import mask_msisdn
from conversations.model import Order
from conversations.ports import TopUpState, TopUpStatus

logger = logging.getLogger(__name__)

ACCEPT = "application/com.reloadly.topups-v1+json"
PRODUCTION_API = "https://topups.reloadly.com"
SANDBOX_API = "https://topups-sandbox.reloadly.com"
AUTH_URL = "https://auth.reloadly.com/oauth/token"
COUNTRY = "PE"
TOKEN_MARGIN_SECONDS = 60.0

ALREADY_USED = "CUSTOM_IDENTIFIER_ALREADY_USED"
TOKEN_EXPIRED = "TOKEN_EXPIRED"
KINDS = {
    "TRANSACTION_CANNOT_BE_PROCESSED_AT_THE_MOMENT": FailureKind.TRANSIENT,
    "OPERATOR_UNAVAILABLE_OR_CURRENTLY_INACTIVE": FailureKind.TRANSIENT,
    "PHONE_RECENTLY_RECHARGED": FailureKind.TRANSIENT,
    "TOO_MANY_REQUESTS": FailureKind.TRANSIENT,
    "SERVICE_UNAVAILABLE": FailureKind.TRANSIENT,
    "INSUFFICIENT_BALANCE": FailureKind.PRECONDITION,
    "INVALID_RECIPIENT_PHONE": FailureKind.PERMANENT,
    "COULD_NOT_AUTO_DETECT_OPERATOR": FailureKind.PERMANENT,
    "INVALID_AMOUNT_FOR_OPERATOR": FailureKind.PERMANENT,
    "IMPOSSIBLE_AMOUNT": FailureKind.PERMANENT,
    "OPERATOR_NOT_IN_SERVICE": FailureKind.PERMANENT,
}
# A code we do not know yet is held for a human, neither retried blindly nor refunded.
UNKNOWN_CODE_KIND = FailureKind.PRECONDITION
RETRY_LATER_STATUSES = frozenset({429, 502, 503})  # refused before being accepted
STATUSES = {
    "SUCCESSFUL": TopUpState.SUCCESSFUL,
    "PROCESSING": TopUpState.PROCESSING,
    "PENDING": TopUpState.PROCESSING,
    "FAILED": TopUpState.FAILED,
    "REFUNDED": TopUpState.FAILED,  # the provider gave the money back to our wallet
}


@dataclass(frozen=True)
class ReloadlyConfig:
    client_id: str
    client_secret: str = field(repr=False)
    api_base_url: str
    auth_url: str = AUTH_URL
    sandbox: bool = True

    @property
    def audience(self) -> str:
        """Reloadly's token audience names its environment, whatever URL the API is reached by."""
        return SANDBOX_API if self.sandbox else PRODUCTION_API


class ReloadlyError(Exception):
    """An error answer of Reloadly, as its ``errorCode``."""

    def __init__(self, status: int, code: str | None) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code


class ReloadlyTopUps:
    """Reloadly airtime top-ups in Peru (implements ``TopUps``)."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        config: ReloadlyConfig,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._config = config
        self._monotonic = monotonic
        self._token: tuple[str, float] | None = None  # (token, valid until)

    async def operator_of(self, msisdn: str) -> Verdict:
        """Ask Reloadly which operator serves the number: Claro, another one, or unknown."""
        try:
            operator = await self._detect(msisdn)
        except ReloadlyError as error:
            known = error.code in ("COULD_NOT_AUTO_DETECT_OPERATOR", "INVALID_RECIPIENT_PHONE")
            return Verdict.OTHER if known else Verdict.UNKNOWN
        return Verdict.CLARO if "claro" in str(operator.get("name", "")).lower() else Verdict.OTHER

    async def send(self, order: Order) -> str:
        """POST the top-up once with the order id as ``customIdentifier``; return its id."""
        msisdn = order.purchase.line.msisdn
        try:
            operator = await self._detect(msisdn)
        except (ReloadlyError, httpx.TransportError) as error:
            raise _rejected(error) from error  # nothing was sent yet
        logger.info("reloadly top-up of order=%s to %s", order.id, mask_msisdn(msisdn))
        try:
            body = await self._call("POST", "/topups", json=_topup_body(order, operator["id"]))
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise TopUpRejected("CONNECT_FAILED", FailureKind.TRANSIENT) from error
        except httpx.TransportError as error:  # sent, answer lost: it may have been credited
            raise TopUpUnknown(f"no answer for order {order.id}") from error
        except ReloadlyError as error:
            raise _translated(error) from error
        if STATUSES.get(str(body.get("status", "SUCCESSFUL"))) is not TopUpState.SUCCESSFUL:
            raise TopUpUnknown(f"top-up of order {order.id} is {body.get('status')}")
        return str(body["transactionId"])

    async def status(self, order_id: str) -> TopUpStatus:
        """Find the top-up sent with this order id and report its current status."""
        try:
            found = await self._call(
                "GET", "/topups/reports/transactions", params={"customIdentifier": order_id}
            )
            content = found.get("content") or []
            if not content:
                return TopUpStatus(TopUpState.NOT_FOUND)
            transaction_id = str(content[0]["transactionId"])
            answer = await self._call("GET", f"/topups/{transaction_id}/status")
        except (ReloadlyError, httpx.TransportError) as error:
            raise TopUpUnknown(f"status of order {order_id} unavailable") from error
        state = STATUSES.get(str(answer.get("status")), TopUpState.PROCESSING)
        return TopUpStatus(state, transaction_id)

    async def _detect(self, msisdn: str) -> dict[str, Any]:
        path = f"/operators/auto-detect/phone/51{msisdn}/countries/{COUNTRY}"
        return await self._call("GET", path, params={"suggestedAmountsMap": "false"})

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One API call with a valid token; a token Reloadly calls expired is renewed once."""
        response = await self._request(method, path, **kwargs)
        if response.status_code == 401 and _error_code(response) == TOKEN_EXPIRED:
            self._token = None
            response = await self._request(method, path, **kwargs)
        if response.is_error:
            raise ReloadlyError(response.status_code, _error_code(response))
        return dict(response.json())

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Accept": ACCEPT, "Authorization": f"Bearer {await self._bearer()}"}
        url = self._config.api_base_url.rstrip("/") + path
        return await self._http.request(method, url, headers=headers, **kwargs)

    async def _bearer(self) -> str:
        now = self._monotonic()
        if self._token is None or self._token[1] <= now:
            self._token = await self._fetch_token(now)
        return self._token[0]

    async def _fetch_token(self, now: float) -> tuple[str, float]:
        response = await self._http.post(
            self._config.auth_url,
            json={
                "client_id": self._config.client_id,
                "client_secret": self._config.client_secret,
                "grant_type": "client_credentials",
                "audience": self._config.audience,
            },
        )
        if response.is_error:
            raise ReloadlyError(response.status_code, _error_code(response))
        body = response.json()
        return body["access_token"], now + float(body["expires_in"]) - TOKEN_MARGIN_SECONDS


def _topup_body(order: Order, operator_id: Any) -> dict[str, Any]:
    return {
        "operatorId": operator_id,
        "amount": f"{order.amount_cents / 100:.2f}",
        "useLocalAmount": True,
        "customIdentifier": order.id,
        "recipientPhone": {"countryCode": COUNTRY, "number": f"51{order.purchase.line.msisdn}"},
    }


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("errorCode") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _translated(error: ReloadlyError) -> TopUpRejected | TopUpUnknown:
    """Sort a refused POST /topups by errorCode; a bare status says only if it was accepted."""
    if error.code == ALREADY_USED:
        return TopUpUnknown("identifier already used: ask the status")
    if error.code is None and error.status >= 500 and error.status not in RETRY_LATER_STATUSES:
        return TopUpUnknown(f"provider answered {error.status}")
    return _rejected(error)


def _rejected(error: ReloadlyError | httpx.TransportError) -> TopUpRejected:
    if isinstance(error, httpx.TransportError):
        return TopUpRejected("CONNECT_FAILED", FailureKind.TRANSIENT)
    if error.code is None:
        kind = FailureKind.TRANSIENT if error.status in RETRY_LATER_STATUSES else UNKNOWN_CODE_KIND
        return TopUpRejected(f"HTTP_{error.status}", kind)
    return TopUpRejected(error.code, KINDS.get(error.code, UNKNOWN_CODE_KIND))
