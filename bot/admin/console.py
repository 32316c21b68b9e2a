"""The operators' web console under /admin: sign-in, dashboard, orders, promos, the handoff
inbox and the catalogue.

Every page goes through ``Console.page``: the console is off (404) while no operator account
exists; a visitor without a session is sent to the login page; every POST must carry the
session's CSRF token; and every action is written to the audit log. Changes go through the use
cases the bot itself runs (``Fulfilment``, the campaign code of ``recargabot promo``, the chat
service, the catalogue of ``recargabot catalogue``): no page edits a row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bot.admin import views
from bot.admin.security import (
    COOKIE,
    DUMMY_HASH,
    Cookies,
    SecurityHeaders,
    Session,
    Throttle,
    hash_password,
    needs_rehash,
    password_matches,
    same_token,
)
from bot.promos import UsageError, audience_of, configured, promo_of, run_campaign
from bot.settings import Settings
from conversations.broadcast import Promo
from conversations.catalog import parse_msisdn
from conversations.errors import (
    DeliveryFailed,
    NotDeliverableNow,
    PaymentProviderError,
    WalletUnreadable,
)
from conversations.fulfilment import Fulfilment
from conversations.ports import Balance, Contacts, Wallet
from conversations.service import ChatService
from storage import console as queries
from storage.campaigns import Audience, SqlCampaigns
from storage.catalogue import SqlCatalogue, UnknownPackage
from storage.handoffs import SqlHandoffNotes
from storage.operators import Operator, Role, SqlOperators
from storage.privacy import SqlAudit

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
WALLET_READ_SECONDS = 3  # the dashboard does not wait longer for the provider
templates = Jinja2Templates(directory=HERE / "templates")
views.install(templates.env)

Handler = Callable[["Ctx"], Awaitable[Response]]


@dataclass(frozen=True)
class Ctx:
    """One signed-in request: who, their session (for the CSRF token) and the posted form."""

    request: Request
    operator: Operator
    session: Session
    form: FormData | None

    def field(self, name: str) -> str:
        value = self.form.get(name) if self.form else None
        return value.strip() if isinstance(value, str) else ""


@dataclass
class Console:
    settings: Settings
    engine: AsyncEngine
    operators: SqlOperators
    audit: SqlAudit
    fulfilment: Fulfilment
    campaigns: SqlCampaigns
    contacts: Contacts
    cookies: Cookies
    clock: Callable[[], datetime]
    chat: ChatService
    inbox: SqlHandoffNotes
    catalogue: SqlCatalogue
    wallet: Wallet | None = None  # the top-up provider's balance, where it tells it
    per_account: Throttle = field(default_factory=lambda: Throttle(limit=5, window=900))
    per_address: Throttle = field(default_factory=lambda: Throttle(limit=20, window=900))
    sending: dict[int, asyncio.Task[None]] = field(default_factory=dict)

    # ------------------------------------------------------------ plumbing

    def mount(self) -> Mount:
        """The console as one mounted app, with the security headers on every answer."""
        routes = [
            Route("/", self.page(self.dashboard)),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.page(self.logout), methods=["POST"]),
            Route("/orders", self.page(self.orders)),
            Route("/orders/{order_id}", self.page(self.order)),
            Route("/orders/{order_id}/{action}", self.page(self.order_action), methods=["POST"]),
            Route("/promos", self.page(self.promos), methods=["GET", "POST"]),
            Route("/promos/{campaign_id:int}", self.page(self.promo)),
            Route("/promos/{campaign_id:int}/progress", self.page(self.progress)),
            Route("/promos/{campaign_id:int}/{action}", self.page(self.promo_action),
                  methods=["POST"]),
            Route("/handoffs", self.page(self.handoffs)),
            Route("/handoffs/{customer_id:int}", self.page(self.handoff_action), methods=["POST"]),
            Route("/catalogue", self.page(self.packages)),
            Route("/catalogue/{code}/{action}", self.page(self.package_action), methods=["POST"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]  # fmt: skip
        return Mount(
            "/admin", app=Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
        )

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler: console on, signed in, CSRF checked on POST."""

        async def endpoint(request: Request) -> Response:
            session = self.cookies.read(request.cookies.get(COOKIE))
            operator = await self._signed_in(session)
            if session is None or operator is None:
                # Only then ask whether anyone may sign in: a signed-in page saves the query.
                if not await self.operators.any_enabled():
                    return Response("Not Found", 404)
                return RedirectResponse("/admin/login", 303)
            form = None
            if request.method == "POST":
                form = await request.form()
                if not same_token(_text(form.get("csrf")), session.csrf):
                    await self._record(operator, "csrf_refused", False, request.url.path)
                    return self.render(request, "error.html", session, operator,
                                       message="Formulario vencido o ajeno: vuelve a intentarlo.",
                                       status=403)  # fmt: skip
            return await handler(Ctx(request, operator, session, form))

        return endpoint

    async def _signed_in(self, session: Session | None) -> Operator | None:
        if session is None or session.operator_id is None:
            return None
        operator = await self.operators.get(session.operator_id)
        return None if operator is None or operator.disabled else operator

    def render(
        self, request: Request, name: str, session: Session, operator: Operator | None = None,
        *, status: int = 200, **context: Any,
    ) -> Response:  # fmt: skip
        context |= {"csrf": session.csrf, "operator": operator, "now": self.clock()}
        response = templates.TemplateResponse(request, name, context, status_code=status)
        if self.cookies.read(request.cookies.get(COOKIE)) != session:
            # Only a new session gets a cookie: re-signing on every page would let an active
            # session outlive its 8 hours.
            self._set_cookie(request, response, session)
        return response

    def _set_cookie(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE, self.cookies.write(session), max_age=self.cookies.max_age, path="/admin",
            httponly=True, samesite="strict", secure=self._secure(request),
        )  # fmt: skip

    def _secure(self, request: Request) -> bool:
        """Secure cookies over https, and on the public host (a proxy ends TLS before us)."""
        public = urlsplit(self.settings.public_base_url or "")
        return request.url.scheme == "https" or (
            public.scheme == "https" and request.url.hostname == public.hostname
        )

    async def _record(self, operator: Operator | None, action: str, allowed: bool,
                      target: str | None = None) -> None:  # fmt: skip
        actor = f"console:{operator.email}" if operator else "console:anonymous"
        await self.audit.record(
            actor=actor, action=action, allowed=allowed, at=self.clock(), target=target
        )

    # ------------------------------------------------------------ sign in and out

    async def login(self, request: Request) -> Response:
        """Show the sign-in form; check a posted one (throttled per account and per address)."""
        if not await self.operators.any_enabled():
            return Response("Not Found", 404)
        session = self.cookies.read(request.cookies.get(COOKIE)) or Cookies.fresh()
        if request.method == "GET":
            return self.render(request, "login.html", session)
        form = await request.form()
        email, password = _text(form.get("email")).lower(), _text(form.get("password"))
        if not same_token(_text(form.get("csrf")), session.csrf):
            return self.render(request, "login.html", session, status=403,
                               error="Formulario vencido: vuelve a intentarlo.")  # fmt: skip
        address = request.client.host if request.client else "?"
        if self.per_account.blocked(email) or self.per_address.blocked(address):
            await self._record(None, "login_throttled", False, None)
            return self.render(request, "login.html", session, status=429,
                               error="Demasiados intentos. Espera unos minutos.")  # fmt: skip
        operator = await self._check(email, password)
        if operator is None:
            self.per_account.failed(email)
            self.per_address.failed(address)
            await self._record(None, "login_failed", False, None)
            return self.render(request, "login.html", session, status=401,
                               error="Correo o contraseña incorrectos.")  # fmt: skip
        self.per_account.forget(email)
        await self._record(operator, "login", True)
        response = RedirectResponse("/admin/", 303)
        self._set_cookie(request, response, Cookies.fresh(operator.id))  # a new CSRF token
        return response

    async def _check(self, email: str, password: str) -> Operator | None:
        operator = await self.operators.find(email) if email else None
        if operator is None or operator.disabled:
            password_matches(DUMMY_HASH, password)  # as slow as a real check
            return None
        if not password_matches(operator.password_hash, password):
            return None
        if needs_rehash(operator.password_hash):
            await self.operators.set_password(operator.email, hash_password(password))
        return operator

    async def logout(self, ctx: Ctx) -> Response:
        await self._record(ctx.operator, "logout", True)
        response = RedirectResponse("/admin/login", 303)
        response.delete_cookie(COOKIE, path="/admin")
        return response

    # ------------------------------------------------------------ dashboard and orders

    async def dashboard(self, ctx: Ctx) -> Response:
        board = await queries.dashboard(self.engine, now=self.clock())
        return self.render(ctx.request, "dashboard.html", ctx.session, ctx.operator,
                           board=board, charts=views.charts(board), wallet=await self._wallet(),
                           low=self.settings.wallet_low_balance)  # fmt: skip

    async def _wallet(self) -> Balance | None:
        """The provider's balance now; None (the page says so) when it cannot be read quickly."""
        if self.wallet is None:
            return None
        try:
            return await asyncio.wait_for(self.wallet.balance(), WALLET_READ_SECONDS)
        except (WalletUnreadable, TimeoutError) as error:
            logger.warning("provider balance not read: %s", error)
            return None

    async def orders(self, ctx: Ctx) -> Response:
        """Search orders by id, by number (through its keyed hash) or by Lima day."""
        params = ctx.request.query_params
        given = {name: params.get(name, "").strip() for name in ("id", "phone", "day")}
        msisdn = parse_msisdn(given["phone"]) if given["phone"] else None
        day = _day(given["day"])
        query = queries.OrderQuery(given["id"] or None, msisdn, day)
        found = await queries.search(self.engine, query)
        if msisdn:  # looking a person up by their number is itself worth a trace
            await self._record(ctx.operator, "search_phone", True, f"found:{len(found)}")
        error = None
        if given["phone"] and msisdn is None:
            error = "Número no válido: 9 dígitos que empiezan con 9."
        elif given["day"] and day is None:
            error = "Fecha no válida."
        return self.render(ctx.request, "orders.html", ctx.session, ctx.operator,
                           given=given, found=found, error=error)  # fmt: skip

    async def order(self, ctx: Ctx, *, revealed: bool = False, notice: str | None = None,
                    status: int = 200) -> Response:  # fmt: skip
        order_id = ctx.request.path_params["order_id"]
        order = await self.fulfilment.orders.get(order_id)
        if order is None:
            return self.render(ctx.request, "error.html", ctx.session, ctx.operator,
                               message="No existe ese pedido.", status=404)  # fmt: skip
        events = await queries.timeline(self.engine, order_id)
        return self.render(ctx.request, "order.html", ctx.session, ctx.operator, order=order,
                           events=events, revealed=revealed, notice=notice,
                           status=status)  # fmt: skip

    async def order_action(self, ctx: Ctx) -> Response:
        """Reveal, retry a held top-up, refund (admins, with a reason) or resend the notice."""
        order_id, action = ctx.request.path_params["order_id"], ctx.request.path_params["action"]
        if action not in ORDER_ACTIONS:
            return Response("Not Found", 404)
        if action in ADMIN_ONLY and ctx.operator.role is not Role.ADMIN:
            await self._record(ctx.operator, action, False, order_id)
            return await self.order(ctx, notice="Solo un administrador puede hacerlo.", status=403)
        if action == "refund" and (not ctx.field("reason") or ctx.field("confirm") != "yes"):
            return await self.order(ctx, notice="Escribe el motivo y confirma la devolución.",
                                    status=400)  # fmt: skip
        await self._record(ctx.operator, action, True, order_id)
        if action == "reveal":
            return await self.order(ctx, revealed=True)
        return await self.order(ctx, notice=await self._act(action, order_id, ctx.field("reason")))

    async def _act(self, action: str, order_id: str, reason: str) -> str:
        try:
            if action == "retry":
                await self.fulfilment.retry_held(order_id)
                return "Reintento enviado."
            if action == "refund":
                refunded = await self.fulfilment.refund_now(order_id, reason=f"operador: {reason}")
                return "Devolución hecha." if refunded else "Este pedido no se puede devolver."
            sent = await self.fulfilment.resend_notice(order_id)
            return "Aviso reenviado." if sent else "El pedido aún no terminó: no hay aviso."
        except (PaymentProviderError, NotDeliverableNow, DeliveryFailed) as error:
            logger.warning("console %s of order=%s failed: %s", action, order_id, type(error))
            return "No se pudo ahora; inténtalo más tarde."

    # ------------------------------------------------------------ promos

    async def promos(self, ctx: Ctx) -> Response:
        """List campaigns; compose one, preview its audience per channel, and send it."""
        context: dict[str, Any] = {"draft": {}, "channels": [c.value for c in configured(
            self.settings)], "latest": await self.campaigns.latest()}  # fmt: skip
        if ctx.form is not None:
            draft = {name: ctx.field(name) for name in PROMO_FIELDS}
            context["draft"] = draft
            try:
                promo, audience = self._promo(draft)
                send_at = _lima_time(draft["send_at"])
            except (UsageError, ValueError) as error:
                return self.render(ctx.request, "promos.html", ctx.session, ctx.operator,
                                   error=str(error), status=400, **context)  # fmt: skip
            if ctx.field("intent") == "send":
                return await self._send(ctx, promo, audience, send_at)
            context |= {"preview": promo, "sizes": await self.campaigns.audience_size(audience)}
        return self.render(ctx.request, "promos.html", ctx.session, ctx.operator, **context)

    def _promo(self, draft: dict[str, str]) -> tuple[Promo, Audience]:
        promo = promo_of(draft["text"], draft["image_url"] or None,
                         draft["template"] or None, draft["template_vars"] or None)  # fmt: skip
        days = int(draft["inactive_days"]) if draft["inactive_days"] else None
        audience = audience_of(
            self.settings, draft["channel"] or "all", days, recharged=draft["recharged"] == "yes"
        )
        return promo, audience

    async def _send(
        self, ctx: Ctx, promo: Promo, audience: Audience, send_at: datetime | None
    ) -> Response:
        """Send now, or store the campaign for the worker to start at ``send_at``."""
        if ctx.operator.role is not Role.ADMIN:
            await self._record(ctx.operator, "promo_send", False)
            message = "Solo un administrador puede enviar promociones."
            return self.render(ctx.request, "error.html", ctx.session, ctx.operator,
                               message=message, status=403)  # fmt: skip
        later = send_at is not None and send_at > self.clock()
        campaign_id = await self.campaigns.create(
            promo, audience, created_by=f"console:{ctx.operator.id}",
            send_at=send_at if later else None,
        )  # fmt: skip
        action = "promo_schedule" if later else "promo_send"
        await self._record(ctx.operator, action, True, f"campaign:{campaign_id}")
        if not later and await self.campaigns.start(campaign_id):
            self._run(campaign_id)
        return RedirectResponse(f"/admin/promos/{campaign_id}", 303)

    async def start_due(self) -> None:
        """Start the scheduled campaigns whose time has come (each pass of the worker); the
        conditional start lets only one replica send each."""
        for campaign_id in await self.campaigns.due():
            if await self.campaigns.start(campaign_id):
                self._run(campaign_id)

    def _run(self, campaign_id: int) -> None:
        task = asyncio.get_running_loop().create_task(run_campaign(
            self.settings, self.campaigns, self.contacts, self.clock, campaign_id))  # fmt: skip
        self.sending[campaign_id] = task
        task.add_done_callback(lambda _: self.sending.pop(campaign_id, None))

    async def promo(self, ctx: Ctx) -> Response:
        campaign = await self.campaigns.get(ctx.request.path_params["campaign_id"])
        if campaign is None:
            return self.render(ctx.request, "error.html", ctx.session, ctx.operator,
                               message="No existe esa campaña.", status=404)  # fmt: skip
        return self.render(ctx.request, "promo.html", ctx.session, ctx.operator, campaign=campaign,
                           running=campaign.id in self.sending,
                           progress=await self._progress(campaign.id))  # fmt: skip

    async def progress(self, ctx: Ctx) -> Response:
        """The live counts the progress bar polls."""
        campaign_id = ctx.request.path_params["campaign_id"]
        return JSONResponse(await self._progress(campaign_id))

    async def _progress(self, campaign_id: int) -> dict[str, Any]:
        campaign = await self.campaigns.get(campaign_id)
        tally = await self.campaigns.tally(campaign_id)
        return views.progress(tally, state=campaign.state if campaign else "?",
                              running=campaign_id in self.sending)  # fmt: skip

    async def promo_action(self, ctx: Ctx) -> Response:
        """Pause (stop this run: rows left stay pending) or resume a campaign being sent; cancel
        one scheduled for later."""
        campaign_id, action = (
            ctx.request.path_params["campaign_id"],
            ctx.request.path_params["action"],
        )
        if action not in ("pause", "resume", "cancel"):
            return Response("Not Found", 404)
        allowed = ctx.operator.role is Role.ADMIN
        await self._record(ctx.operator, f"promo_{action}", allowed, f"campaign:{campaign_id}")
        task = self.sending.get(campaign_id)
        if allowed and action == "cancel":
            await self.campaigns.cancel(campaign_id)
        if allowed and action == "pause" and task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        campaign = await self.campaigns.get(campaign_id)
        if (
            allowed
            and action == "resume"
            and task is None
            and campaign
            and campaign.state == "sending"
        ):
            self._run(campaign_id)
        return RedirectResponse(f"/admin/promos/{campaign_id}", 303)

    # ------------------------------------------------------------ handoff inbox

    async def handoffs(self, ctx: Ctx, *, notice: str | None = None, status: int = 200) -> Response:
        """The chats waiting for a person, the longest waiting first, with what they wrote."""
        return self.render(ctx.request, "handoffs.html", ctx.session, ctx.operator,
                           waiting=await self.inbox.waiting(), notice=notice,
                           status=status)  # fmt: skip

    async def handoff_action(self, ctx: Ctx) -> Response:
        """Answer a waiting chat through the bot's channel, and/or give it back to the bot."""
        customer_id, intent, text = (
            ctx.request.path_params["customer_id"], ctx.field("intent"), ctx.field("text")
        )  # fmt: skip
        if intent not in HANDOFF_INTENTS or (intent != "back" and not text):
            return await self.handoffs(ctx, notice="Escribe la respuesta.", status=400)
        waiting = {chat.customer_id: chat.key for chat in await self.inbox.waiting()}
        key = waiting.get(customer_id)
        if key is None:
            return await self.handoffs(ctx, notice="Ese chat ya volvió con el bot.", status=409)
        await self._record(ctx.operator, f"handoff_{intent}", True, f"customer:{customer_id}")
        try:
            if intent != "back":
                await self.chat.answer_as_person(key, text)
            if intent != "answer":
                await self.chat.hand_back(key)
        except (NotDeliverableNow, DeliveryFailed) as error:
            logger.warning("console answer to customer=%s failed: %s", customer_id, type(error))
            return await self.handoffs(ctx, notice="No se pudo enviar; inténtalo más tarde.",
                                       status=502)  # fmt: skip
        return RedirectResponse("/admin/handoffs", 303)

    # ------------------------------------------------------------ catalogue

    async def packages(self, ctx: Ctx, *, notice: str | None = None, status: int = 200) -> Response:
        """Every package in menu order: shown or hidden, its name and description."""
        return self.render(ctx.request, "catalogue.html", ctx.session, ctx.operator,
                           packages=await self.catalogue.listing(), notice=notice,
                           status=status)  # fmt: skip

    async def package_action(self, ctx: Ctx) -> Response:
        """Hide, show, rename or move a package (admins), as ``recargabot catalogue`` does."""
        code, action = ctx.request.path_params["code"], ctx.request.path_params["action"]
        if action not in PACKAGE_ACTIONS:
            return Response("Not Found", 404)
        allowed = ctx.operator.role is Role.ADMIN
        await self._record(ctx.operator, f"package_{action}", allowed, f"package:{code}")
        if not allowed:
            return await self.packages(ctx, notice="Solo un administrador puede cambiar el "
                                       "catálogo.", status=403)  # fmt: skip
        now = self.clock()
        try:
            match action:
                case "hide" | "show":
                    await self.catalogue.hide(code, hidden=action == "hide", at=now)
                case "rename":
                    await self.catalogue.rename(code, name=ctx.field("name"),
                                                details=ctx.field("details"), at=now)  # fmt: skip
                case "move":
                    await self.catalogue.move(code, position=int(ctx.field("position")), at=now)
        except UnknownPackage:
            return await self.packages(ctx, notice="No existe ese paquete.", status=404)
        except ValueError:
            return await self.packages(ctx, notice="Posición no válida.", status=400)
        return RedirectResponse("/admin/catalogue", 303)


HANDOFF_INTENTS = frozenset({"answer", "answer_back", "back"})
PACKAGE_ACTIONS = frozenset({"hide", "show", "rename", "move"})
ORDER_ACTIONS = frozenset({"reveal", "retry", "refund", "resend"})
ADMIN_ONLY = frozenset({"reveal", "refund"})
PROMO_FIELDS = ("text", "image_url", "template", "template_vars", "channel", "inactive_days",
                "recharged", "send_at")  # fmt: skip


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _lima_time(text: str) -> datetime | None:
    """A datetime-local field's value, read as Lima time; ValueError if malformed."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=queries.LIMA)
    except ValueError:
        raise ValueError("Fecha y hora de envío no válidas.") from None


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None
