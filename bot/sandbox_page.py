"""The sandbox hosted payment page: GET shows a checkout session, POST pays it with a test card.

It plays the part of Stripe's hosted page when the bot runs with no keys. Everything shown is
escaped; card fields are never echoed back (after an error only the name is kept).
"""

from __future__ import annotations

from html import escape

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from adapters.sandbox_payments import CheckoutPage, PageState, PayOutcome, SandboxPayments
from conversations.catalog import soles

PATH = "/sandbox/checkout/{session_id}"
_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer"}

_STYLE = """body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;padding:1rem}
main{max-width:26rem;margin:1rem auto;background:#fff;border-radius:12px;padding:1.25rem}
h1{font-size:1.3rem;margin-top:0}.total{font-size:1.2rem;font-weight:600}
label{display:block;margin:.75rem 0 .25rem}
input{box-sizing:border-box;width:100%;font-size:1rem;padding:.6rem;border:1px solid #bbb;
border-radius:8px}.row{display:flex;gap:.75rem}.row>div{flex:1}
button{width:100%;margin-top:1.25rem;padding:.8rem;font-size:1.05rem;border:0;border-radius:8px;
background:#635bff;color:#fff}.error{background:#fdecea;color:#8a1c10;padding:.6rem;
border-radius:8px}.note{color:#666;font-size:.9rem;margin-top:1rem}"""

_LAYOUT = """<!doctype html>
<html lang="es"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title><style>{style}</style></head>
<body><main>{body}</main></body></html>"""

_FORM = """<h1>Pago de prueba</h1>
<p>{product}</p><p class="total">Total: {total}</p>{error}
<form method="post">
<label for="number">Número de tarjeta</label>
<input id="number" name="number" inputmode="numeric" autocomplete="cc-number"
 placeholder="1234 1234 1234 1234" required>
<div class="row"><div><label for="expiry">Vencimiento (MM/AA)</label>
<input id="expiry" name="expiry" inputmode="numeric" autocomplete="cc-exp" placeholder="MM/AA"
 required></div>
<div><label for="cvc">CVC</label>
<input id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" placeholder="123" required>
</div></div>
<label for="name">Nombre en la tarjeta</label>
<input id="name" name="name" autocomplete="cc-name" value="{name}" required>
<button type="submit">Pagar {total}</button>
</form>
<p class="note">Página de pruebas: usa 4242 4242 4242 4242, cualquier fecha futura y
cualquier CVC. No se cobra nada de verdad.</p>"""

PROBLEMS = {
    PayOutcome.DECLINED: "Tu tarjeta fue rechazada. No se realizó ningún cargo. Prueba con otra.",
    PayOutcome.NOT_ALLOWED: "Solo aceptamos Visa o Mastercard.",
    PayOutcome.INVALID_NUMBER: "El número de tarjeta no es válido. Revísalo e inténtalo otra vez.",
    PayOutcome.INVALID_EXPIRY: "La fecha de vencimiento no es válida o ya pasó (usa MM/AA).",
    PayOutcome.INVALID_CVC: "El código de seguridad (CVC) debe tener 3 dígitos.",
    PayOutcome.MISSING_NAME: "Escribe el nombre tal como aparece en la tarjeta.",
}


def sandbox_routes(gateway: SandboxPayments) -> list[Route]:
    """Build the routes of the sandbox payment page over ``gateway``."""

    async def show(request: Request) -> Response:
        """Show the payment form, or what became of the session."""
        page = await gateway.page(request.path_params["session_id"])
        return _not_found() if page is None else _state_page(page)

    async def submit(request: Request) -> Response:
        """Pay with the card typed in the form and show the outcome."""
        session_id = request.path_params["session_id"]
        page = await gateway.page(session_id)
        if page is None:
            return _not_found()
        form = await request.form()
        fields = {key: _text(form, key) for key in ("number", "expiry", "cvc", "name")}
        outcome = await gateway.pay(session_id, **fields)
        if outcome is PayOutcome.APPROVED:
            return _approved()
        if outcome in PROBLEMS:
            return _form(page, problem=PROBLEMS[outcome], name=fields["name"])
        return _state_page(await gateway.page(session_id) or page)

    return [
        Route(PATH, show, methods=["GET"]),
        Route(PATH, submit, methods=["POST"]),
    ]


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value if isinstance(value, str) else ""


def _html(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    """Wrap an already escaped body in the page layout."""
    content = _LAYOUT.format(title=escape(title), style=_STYLE, body=body)
    return HTMLResponse(content, status_code, headers=_HEADERS)


def _message(title: str, text: str, status_code: int = 200) -> HTMLResponse:
    return _html(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>", status_code)


def _form(page: CheckoutPage, *, problem: str = "", name: str = "") -> HTMLResponse:
    error = f'<p class="error" role="alert">{escape(problem)}</p>' if problem else ""
    body = _FORM.format(
        product=escape(page.product_name),
        total=escape(soles(page.amount_cents)),
        error=error,
        name=escape(name),
    )
    return _html("Pago de prueba", body, 422 if problem else 200)


def _state_page(page: CheckoutPage) -> HTMLResponse:
    if page.state is PageState.PAID:
        return _message(
            "Pago recibido", "Este pago ya se realizó. Vuelve al chat para ver tu recarga."
        )
    if page.state is PageState.EXPIRED:
        return _message(
            "Enlace vencido", "Este enlace de pago venció. No se realizó ningún cargo.", 410
        )
    return _form(page)


def _approved() -> HTMLResponse:
    return _message(
        "¡Pago aprobado!", "Vuelve al chat: te confirmaremos la recarga en unos segundos."
    )


def _not_found() -> HTMLResponse:
    return _message("Enlace no encontrado", "Este enlace de pago no existe.", 404)
