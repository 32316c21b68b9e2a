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
from enum import StrEnum
from typing import Any

import httpx

from adapters.reloadly_catalogue import COUNTRY, claro_offers
from conversations.errors import FailureKind, TopUpRejected, TopUpUnknown, WalletUnreadable
from conversations.machine import Verdict
from conversations.masking import mask_msisdn
from conversations.model import Order, ProductKind
from conversations.packages import Offer
from conversations.ports import Balance, TopUpState, TopUpStatus

logger = logging.getLogger(__name__)

ACCEPT = "application/com.reloadly.topups-v1+json"
PRODUCTION_API = "https://topups.reloadly.com"
SANDBOX_API = "https://topups-sandbox.reloadly.com"
AUTH_URL = "https://auth.reloadly.com/oauth/token"
TOKEN_MARGIN_SECONDS = 60.0

ALREADY_USED = "CUSTOM_IDENTIFIER_ALREADY_USED"
TOKEN_EXPIRED = "TOKEN_EXPIRED"


class Action(StrEnum):
    COMPLETE = "credited: tell the customer"
    WAIT = "in progress: ask the status again later"
    RENEW_TOKEN = "renew the token and call again"
    ASK_STATUS = "ask the status at once: the POST may have made a transaction"
    RETRY = "send again later with the same identifier"
    HOLD = "hold the paid order and alert the operators"
    REFUND = "refund: it will never succeed"


# Every error code and transaction status Reloadly documents, and what the bot does with it.
# Codes: the "Error Codes" table of Reloadly's API reference (developers.reloadly.com; source
# Reloadly/reloadly-api-documentation). Statuses: GET /topups/{transactionId}/status. A code
# missing here is asked about too, and held for a human if the status says nothing.
ACTIONS = {
    # transaction statuses
    "SUCCESSFUL": Action.COMPLETE,
    "PROCESSING": Action.WAIT,
    "PENDING": Action.WAIT,
    "FAILED": Action.REFUND,  # nothing debited
    "REFUNDED": Action.REFUND,  # the provider gave the money back to our wallet
    # error codes
    TOKEN_EXPIRED: Action.RENEW_TOKEN,
    ALREADY_USED: Action.ASK_STATUS,  # mostly a top-up that was in fact made
    "TOPUP_TRANSACTION_FAILED": Action.ASK_STATUS,  # "may fail for various reasons"
    "TRANSACTION_CANNOT_BE_PROCESSED_AT_THE_MOMENT": Action.RETRY,
    "OPERATOR_UNAVAILABLE_OR_CURRENTLY_INACTIVE": Action.RETRY,
    "PHONE_RECENTLY_RECHARGED": Action.RETRY,  # 2 minutes between top-ups of one number
    "TOO_MANY_REQUESTS": Action.RETRY,  # with HTTP 429
    "SERVICE_UNAVAILABLE": Action.RETRY,  # with HTTP 503
    "INSUFFICIENT_BALANCE": Action.HOLD,  # our wallet is empty
    "INACTIVE_ACCOUNT": Action.HOLD,
    "ACCOUNT_NOT_FOUND": Action.HOLD,
    "MAX_DAILY_TRANSACTION_COUNT_REACHED": Action.HOLD,
    "MAX_DAILY_TRANSACTION_AMOUNT_REACHED": Action.HOLD,
    "COUNTRY_NOT_SUPPORTED": Action.HOLD,
    "INVALID_SENDER_PHONE": Action.HOLD,  # our request is wrong, not the customer's line
    "INVALID_AMOUNT": Action.HOLD,
    "INVALID_RECIPIENT_PHONE": Action.REFUND,
    "INVALID_PHONE_NUMBER": Action.REFUND,
    "COULD_NOT_AUTO_DETECT_OPERATOR": Action.REFUND,
    "INVALID_AMOUNT_FOR_OPERATOR": Action.REFUND,
    "IMPOSSIBLE_AMOUNT": Action.REFUND,
    "OPERATOR_NOT_IN_SERVICE": Action.REFUND,
}
KIND_OF = {
    Action.RETRY: FailureKind.TRANSIENT,
    Action.HOLD: FailureKind.PRECONDITION,
    Action.REFUND: FailureKind.PERMANENT,
}
STATE_OF = {
    Action.COMPLETE: TopUpState.SUCCESSFUL,
    Action.WAIT: TopUpState.PROCESSING,
    Action.REFUND: TopUpState.FAILED,
}
RETRY_LATER_STATUSES = frozenset({429, 502, 503})  # refused before being accepted


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
        operator_id, amount_cents = await self._destination(order)
        msisdn = order.purchase.line.msisdn
        logger.info("reloadly top-up of order=%s to %s", order.id, mask_msisdn(msisdn))
        body = _topup_body(order, operator_id, amount_cents)
        try:
            answer = await self._call("POST", "/topups", json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise TopUpRejected("CONNECT_FAILED", FailureKind.TRANSIENT) from error
        except httpx.TransportError as error:  # sent, answer lost: it may have been credited
            raise TopUpUnknown(f"no answer for order {order.id}") from error
        except ReloadlyError as error:
            return await self._refused(order, error)
        if ACTIONS.get(str(answer.get("status", "SUCCESSFUL"))) is not Action.COMPLETE:
            raise TopUpUnknown(f"top-up of order {order.id} is {answer.get('status')}")
        return str(answer["transactionId"])

    async def _destination(self, order: Order) -> tuple[Any, int]:
        """The operator and local amount to send: a package's own bundle operator and fixed
        amount, or for credit the line's airtime operator. Never credit in place of a package."""
        product = order.purchase.product
        if product.kind is ProductKind.PACKAGE:
            if product.operator_id is None or product.face_cents is None:
                raise TopUpRejected("PACKAGE_NOT_AT_PROVIDER", FailureKind.PERMANENT)
            return product.operator_id, product.face_cents
        try:
            operator = await self._detect(order.purchase.line.msisdn)
        except (ReloadlyError, httpx.TransportError) as error:
            raise _rejected(error) from error  # nothing was sent yet
        return operator["id"], order.amount_cents

    async def _refused(self, order: Order, error: ReloadlyError) -> str:
        """Act on a refused POST by the table; an outcome it does not settle is asked about."""
        action = _action(error)
        if action is None:  # a bare 5xx: it may still be processing, ask later
            raise TopUpUnknown(f"provider answered {error.status}")
        if action is not Action.ASK_STATUS:
            raise _rejected(error)
        found = await self.status(order.id)
        code = error.code or f"HTTP_{error.status}"
        if found.state is TopUpState.SUCCESSFUL and found.operation_id:
            return found.operation_id
        if found.state is TopUpState.FAILED:
            raise TopUpRejected(code, FailureKind.PERMANENT)
        if found.state is TopUpState.NOT_FOUND and code != ALREADY_USED:
            # Refused and no transaction made: a documented failure is final, anything else
            # waits for a human.
            kind = FailureKind.PERMANENT if code in ACTIONS else FailureKind.PRECONDITION
            raise TopUpRejected(code, kind)
        raise TopUpUnknown(f"top-up of order {order.id} refused with {code}, status {found.state}")

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
        state = STATE_OF.get(
            ACTIONS.get(str(answer.get("status")), Action.WAIT), TopUpState.PROCESSING
        )
        return TopUpStatus(state, transaction_id)

    async def offers(self) -> list[Offer]:
        """Claro Peru's bundle and data packages as Reloadly lists them now."""
        params = {"includeBundles": "true", "includeData": "true", "includePin": "false",
                  "suggestedAmountsMap": "false"}  # fmt: skip
        operators = await self._call("GET", f"/operators/countries/{COUNTRY}", params=params)
        return claro_offers(operators)

    async def balance(self) -> Balance:
        """The account's balance (GET /accounts/balance), in its currency's minor units."""
        try:
            found = await self._call("GET", "/accounts/balance")
        except ReloadlyError as error:
            raise WalletUnreadable(f"Reloadly answered {error.status} {error.code}") from error
        except httpx.HTTPError as error:
            raise WalletUnreadable(f"Reloadly not reached: {type(error).__name__}") from error
        return Balance(round(float(found["balance"]) * 100), str(found["currencyCode"]))

    async def _detect(self, msisdn: str) -> dict[str, Any]:
        path = f"/operators/auto-detect/phone/51{msisdn}/countries/{COUNTRY}"
        detected: dict[str, Any] = await self._call(
            "GET", path, params={"suggestedAmountsMap": "false"}
        )
        return detected

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call with a valid token; a token Reloadly calls expired is renewed once."""
        response = await self._request(method, path, **kwargs)
        if response.status_code == 401 and _error_code(response) == TOKEN_EXPIRED:
            self._token = None
            response = await self._request(method, path, **kwargs)
        if response.is_error:
            raise ReloadlyError(response.status_code, _error_code(response))
        return response.json()

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


def _topup_body(order: Order, operator_id: Any, amount_cents: int) -> dict[str, Any]:
    return {
        "operatorId": operator_id,
        "amount": f"{amount_cents / 100:.2f}",
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


def _action(error: ReloadlyError) -> Action | None:
    """What a refused POST calls for; None when only a later status query can tell."""
    if error.code is not None:
        return ACTIONS.get(error.code, Action.ASK_STATUS)
    if error.status in RETRY_LATER_STATUSES:
        return Action.RETRY
    return None if error.status >= 500 else Action.HOLD


def _rejected(error: ReloadlyError | httpx.TransportError) -> TopUpRejected:
    """A refusal that made no transaction, sorted into the core's kinds by the table."""
    if isinstance(error, httpx.TransportError):
        return TopUpRejected("CONNECT_FAILED", FailureKind.TRANSIENT)
    action = _action(error) or Action.HOLD
    return TopUpRejected(
        error.code or f"HTTP_{error.status}", KIND_OF.get(action, FailureKind.PRECONDITION)
    )
