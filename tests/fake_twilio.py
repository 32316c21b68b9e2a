"""A local fake of Twilio's Messages API, built from Twilio's own OpenAPI spec, served over HTTP.

The real twilio Client talks to it: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with
HTTP basic auth, the form fields the spec declares, 201 and a Message resource shaped like the
spec's ``api.v2010.account.message``. Refusals carry Twilio's error body (code, message,
more_info, status). It also plays WhatsApp's rules: free-form bodies and unapproved content (list
pickers, in-session buttons) only within 24 hours of the customer's last inbound message (63016),
known Content SIDs only (21655), ContentVariables a JSON object of strings (21656), and recipients
who blocked the sender (21610). Content WhatsApp would not deliver (a value over its field's limit,
or a newline, tab or run of spaces in an approved template's variable) is taken, as Twilio takes
it, but lands in ``failed`` with 63021 instead of ``messages``: Meta refuses it after the API call.
Every request is recorded, accepted or not, so tests count at the fake.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SPEC = json.loads(
    (Path(__file__).parent / "data" / "twilio_api_v2010.json").read_text(encoding="utf-8")
)
MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
_CREATE = SPEC["paths"][MESSAGES]["post"]
_FIELDS = _CREATE["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
_MESSAGE = SPEC["components"]["schemas"]["api.v2010.account.message"]["properties"]
_ACCOUNT_SID = re.compile(_CREATE["parameters"][0]["schema"]["pattern"])
_CONTENT_SID = re.compile(_FIELDS["properties"]["ContentSid"]["pattern"])
WINDOW = timedelta(hours=24)
MAX_BODY = 1600
MAX_VARIABLE = 1024  # no WhatsApp text field (a body) takes more
UNDELIVERABLE = 63021  # Meta refused the content: Twilio reports it after accepting the message
_NOT_IN_A_PARAMETER = re.compile(r"[\n\t]| {5}")  # Meta's rule for template parameters


class Refusal(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        more_info = f"https://www.twilio.com/docs/errors/{self.code}"
        body = {"code": self.code, "message": self.message, "more_info": more_info}
        return JSONResponse({**body, "status": self.status}, status_code=self.status)


@dataclass(frozen=True)
class Content:
    """A content template of the account: its variables' limits and whether WhatsApp approved it."""

    limits: Mapping[str, int] = field(default_factory=dict)  # variable → its field's longest value
    approved: bool = False  # only approved content may go outside the 24-hour window


def variables(message: dict[str, str]) -> dict[str, str]:
    """The ContentVariables a recorded message carried."""
    return json.loads(message.get("ContentVariables", "{}"))


@dataclass
class FakeTwilio:
    """Twilio's side of WhatsApp, for one account and the test's clock."""

    account_sid: str
    auth_token: str
    clock: Callable[[], datetime]
    templates: frozenset[str] = frozenset()  # approved Content SIDs
    contents: dict[str, Content] = field(default_factory=dict)  # other content, and its limits
    requests: list[dict[str, str]] = field(default_factory=list)  # every create, as posted
    messages: list[dict[str, str]] = field(default_factory=list)  # the accepted ones
    refusals: list[int] = field(default_factory=list)  # error codes answered
    failed: list[dict[str, str]] = field(default_factory=list)  # taken, then refused by WhatsApp
    by_sid: dict[str, dict[str, str]] = field(default_factory=dict)  # taken, by MessageSid
    last_inbound: dict[str, datetime] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)  # addresses that sent STOP to Twilio
    base_url: str = ""  # where it listens, once served
    outages: int = 0  # answer this many next requests with a 500
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)  # on every request

    def inbound(self, address: str) -> None:
        """The customer at ``address`` (whatsapp:+…) wrote to the sender now."""
        self.last_inbound[address] = self.clock()

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10) -> None:
        """Wait until ``predicate`` holds, checked after each request (TimeoutError after)."""
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(predicate), within)

    def to(self, address: str) -> list[dict[str, str]]:
        return [m for m in self.messages if m["To"] == address]

    def bodies(self, address: str) -> list[str]:
        return [m.get("Body", "") for m in self.to(address)]

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route(MESSAGES, self._create, methods=["POST"])])

    async def _create(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).multi_items()}
        async with self.changed:
            self.changed.notify_all()
            self.requests.append(form)
            try:
                self._authenticate(request)
                self._fail_if_down()
                self._check(form)
            except Refusal as refusal:
                self.refusals.append(refusal.code)
                return refusal.response()
            (self.messages if self._deliverable(form) else self.failed).append(form)
            resource = self._resource(form)
            self.by_sid[resource["sid"]] = form
            return JSONResponse(resource, status_code=201)

    def _authenticate(self, request: Request) -> None:
        sid = request.path_params["AccountSid"]
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        given = request.headers.get("authorization", "")
        if (
            not _ACCOUNT_SID.fullmatch(sid)
            or sid != self.account_sid
            or given != f"Basic {expected}"
        ):
            raise Refusal(401, 20003, "Authenticate")

    def _fail_if_down(self) -> None:
        if self.outages:
            self.outages -= 1
            raise Refusal(500, 20500, "Internal Server Error")

    def _check(self, form: dict[str, str]) -> None:
        unknown = set(form) - set(_FIELDS["properties"])
        if unknown:
            raise Refusal(400, 20001, f"Unknown parameters: {sorted(unknown)}")
        for name in _FIELDS["required"]:
            if not form.get(name):
                raise Refusal(400, 21604, f"A '{name}' phone number is required.")
        if not form.get("From"):
            raise Refusal(400, 21603, "A 'From' phone number is required.")
        if not (form["To"].startswith("whatsapp:") and form["From"].startswith("whatsapp:")):
            raise Refusal(400, 21910, "Invalid From and To pair.")
        self._check_content(form)
        if form["To"] in self.blocked:
            raise Refusal(400, 21610, "Attempt to send to unsubscribed recipient")
        content = self._content(form.get("ContentSid", ""))
        session_only = content is None or not content.approved  # a Body, or unapproved content
        if session_only and not self._in_window(form["To"]):
            raise Refusal(400, 63016, "Failed to send freeform message outside the window")

    def _check_content(self, form: dict[str, str]) -> None:
        body, content_sid = form.get("Body"), form.get("ContentSid")
        if not body and not content_sid:
            raise Refusal(400, 21602, "Message body is required.")
        if body and len(body) > MAX_BODY:
            raise Refusal(400, 21617, "The message body exceeds the 1600 character limit.")
        if content_sid and not (_CONTENT_SID.fullmatch(content_sid) and self._content(content_sid)):
            raise Refusal(400, 21655, "The ContentSid is Invalid.")
        if "ContentVariables" in form and not (content_sid and _string_object(form)):
            raise Refusal(400, 21656, "The ContentVariables Parameter is invalid.")

    def _content(self, sid: str) -> Content | None:
        if sid in self.templates:
            return Content(approved=True)
        return self.contents.get(sid)

    def _deliverable(self, form: dict[str, str]) -> bool:
        """False for content WhatsApp refuses: too long for its field, or a bad parameter."""
        content = self._content(form.get("ContentSid", ""))
        if content is None:
            return True
        for key, value in variables(form).items():
            if len(value) > content.limits.get(key, MAX_VARIABLE):
                return False
            if content.approved and _NOT_IN_A_PARAMETER.search(value):
                return False
        return True

    def _in_window(self, address: str) -> bool:
        last = self.last_inbound.get(address)
        return last is not None and self.clock() - last < WINDOW

    def _resource(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(self.clock())
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        resource: dict[str, Any] = dict.fromkeys(_MESSAGE)  # every field the spec declares
        resource.update(
            sid=sid, account_sid=self.account_sid, api_version="2010-04-01",
            body=form.get("Body", ""), to=form["To"], status="queued", direction="outbound-api",
            num_segments="1", num_media="0", date_created=now, date_updated=now,
            uri=f"{uri}.json", subresource_uris={"media": f"{uri}/Media.json"},
        )  # fmt: skip
        resource["from"] = form["From"]
        return resource


def _string_object(form: dict[str, str]) -> bool:
    """True if ContentVariables is a JSON object of string values, as Twilio requires."""
    try:
        parsed = json.loads(form["ContentVariables"])
    except ValueError:
        return False
    return isinstance(parsed, dict) and all(isinstance(v, str) for v in parsed.values())
