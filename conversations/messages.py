"""Channel-neutral replies and every Spanish (es-PE) text the customer reads.

A Reply is text, optional options (id + label) and an optional URL button; each messenger renders
them its own way (inline keyboard, numbered list, list picker).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta, timezone

from conversations.catalog import MAX_CUSTOM_SOLES, MIN_CUSTOM_SOLES, display_msisdn, soles
from conversations.limits import Refusal, Rule
from conversations.model import (
    DocType,
    Line,
    Order,
    OrderState,
    PaymentProblem,
    PersonalData,
    Product,
    ProductKind,
    Purchase,
)


@dataclass(frozen=True)
class Option:
    id: str
    label: str


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Reply:
    text: str
    options: tuple[Option, ...] = ()
    link: Link | None = None
    # False for promos and other messages an opted-out customer (BAJA / STOP) must not get.
    essential: bool = True
    # False where the options are figures themselves (amounts): a text channel lists them
    # without positions, so a typed "7" can only mean S/ 7.
    numbered: bool = True
    # Offer to share the customer's own number in one tap, where the channel can (Telegram).
    ask_contact: bool = False


DOC_LABELS = {DocType.DNI: "DNI", DocType.CE: "Carné de Extranjería", DocType.PASSPORT: "Pasaporte"}
_DOC_RULES = {
    DocType.DNI: "8 dígitos (por ejemplo 45678912)",
    DocType.CE: "de 9 a 12 dígitos (por ejemplo 001234567)",
    DocType.PASSPORT: "de 6 a 12 letras y números (por ejemplo AB123456)",
}
_CUSTOM_RANGE = f"{soles(MIN_CUSTOM_SOLES * 100)} a {soles(MAX_CUSTOM_SOLES * 100)}"
_NO_CARD_HERE = "Nunca escribas los datos de tu tarjeta en este chat."

PRIVACY_NOTICE = (
    "Para recargar te pediré el número, el nombre del titular y su documento. Los usamos solo "
    "para tus recargas, los protegemos según la Ley 29733 y puedes pedir que los borremos "
    "cuando quieras. ¿Aceptas?"
)


def welcome_new(options: Sequence[Option]) -> Reply:
    return Reply(
        "¡Hola! Soy RecargaBot 👋 Recargo tu línea Claro prepago en minutos, pagando con "
        f"Visa o Mastercard.\n\n{PRIVACY_NOTICE}",
        tuple(options),
    )


def consent_again(options: Sequence[Option]) -> Reply:
    return Reply("Para continuar necesito tu respuesta al aviso de privacidad.", tuple(options))


def declined() -> Reply:
    return Reply(
        "Entendido, no guardé ningún dato tuyo. Si cambias de opinión, escríbeme cuando quieras."
    )


def welcome_back(options: Sequence[Option]) -> Reply:
    return Reply("¡Hola de nuevo! 👋 ¿Qué recargamos hoy?", tuple(options))


def pick_line(options: Sequence[Option]) -> Reply:
    return Reply("¿Qué número recargamos?", tuple(options))


def ask_number() -> Reply:
    return Reply(
        "¿Qué número Claro quieres recargar? Escribe sus 9 dígitos, por ejemplo 987 654 321.",
        ask_contact=True,
    )


def bad_number() -> Reply:
    return Reply(
        "Ese número no parece un celular peruano. Debe tener 9 dígitos y empezar con 9, "
        "por ejemplo 987 654 321."
    )


def not_a_mobile() -> Reply:
    return Reply(
        "Ese número parece un teléfono fijo o de otro país, y solo recargo celulares Claro del "
        "Perú: 9 dígitos que empiezan con 9, por ejemplo 987 654 321."
    )


def not_claro(msisdn: str) -> Reply:
    return Reply(
        f"La línea {display_msisdn(msisdn)} no pertenece a Claro. Solo recargamos líneas Claro "
        "prepago. Escribe otro número."
    )


def checking_number() -> Reply:
    return Reply("Un momento, estoy verificando el número…")


def ask_name() -> Reply:
    return Reply(
        "¿A nombre de quién está la línea? Escribe los nombres y apellidos del titular, "
        "por ejemplo María Quispe Mamani."
    )


def bad_name() -> Reply:
    return Reply(
        "Necesito los nombres y apellidos del titular, solo con letras (se aceptan tildes, ñ, "
        "apóstrofos y guiones), por ejemplo María Quispe Mamani."
    )


def one_word_name(word: str) -> Reply:
    return Reply(
        f"¿«{word}» es el nombre completo? Escribe nombres y apellidos, por ejemplo "
        f"{word} Quispe. Si su pasaporte lleva un solo nombre, escríbelo otra vez igual."
    )


def ask_doc_type(options: Sequence[Option]) -> Reply:
    return Reply("¿Qué documento de identidad tiene el titular?", tuple(options))


def ask_doc_number(doc_type: DocType) -> Reply:
    return Reply(f"Escribe el número de {DOC_LABELS[doc_type]}: {_DOC_RULES[doc_type]}.")


def bad_doc_number(doc_type: DocType) -> Reply:
    return Reply(
        f"Ese número de {DOC_LABELS[doc_type]} no es válido. Debe tener {_DOC_RULES[doc_type]}."
    )


def ask_kind(msisdn: str, options: Sequence[Option], *, saved: bool = False) -> Reply:
    intro = "Guardé la línea para tus próximas recargas. " if saved else ""
    return Reply(f"{intro}¿Qué quieres comprar para el {display_msisdn(msisdn)}?", tuple(options))


def ask_amount(options: Sequence[Option]) -> Reply:
    return Reply(
        "¿De cuánto es la recarga? Escribe el monto en soles (por ejemplo 10) o elige uno:",
        tuple(options),
        numbered=False,
    )


def ask_custom_amount() -> Reply:
    return Reply(f"Escribe el monto en soles enteros, de {_CUSTOM_RANGE} (por ejemplo 25).")


def bad_amount() -> Reply:
    return Reply(
        f"Recargo montos enteros de {_CUSTOM_RANGE}, sin céntimos. Escribe el monto, "
        "por ejemplo 25."
    )


def ask_package(options: Sequence[Option]) -> Reply:
    return Reply("Elige tu paquete (precios con IGV incluido):", tuple(options))


def package_gone() -> Reply:
    return Reply("Ese paquete ya no está disponible. Elige otro producto, por favor.")


def product_label(product: Product) -> str:
    """How a package reads in a menu: name, price, what it gives and for how long."""
    details = f" · {product.details}" if product.details else ""
    return f"{product.name} {soles(product.price_cents)}{details}{_lasting(product)}"


def _lasting(product: Product) -> str:
    """The validity as ' (30 días)', or nothing when the provider does not say."""
    return f" ({product.validity_days} días)" if product.validity_days else ""


def summary(purchase: Purchase, options: Sequence[Option]) -> Reply:
    line, product = purchase.line, purchase.product
    return Reply(
        "Revisa tu compra:\n"
        f"📱 Número: {display_msisdn(line.msisdn)}\n"
        f"👤 Titular: {line.owner_name} ({DOC_LABELS[line.doc_type]} {line.doc_number})\n"
        f"🎁 Producto: {product.name}{f' ({product.details})' if product.details else ''}\n"
        f"💰 Total: {soles(product.price_cents)} (IGV incluido)\n"
        + (f"📅 Vigencia: {product.validity_days} días\n" if product.validity_days else "")
        + "\n¿Confirmas?",
        tuple(options),
    )


def ask_change(options: Sequence[Option]) -> Reply:
    return Reply("¿Qué quieres cambiar?", tuple(options))


def bad_choice(options: Sequence[Option], *, numbered: bool = True) -> Reply:
    first = options[0].label.split(" S/ ")[0] if options else ""
    how = f"con su número (por ejemplo 1) o su nombre (por ejemplo «{first}»)"
    if not numbered:
        how = f"escribiéndola tal cual, por ejemplo «{first}»"
    return Reply(
        f"No te entendí. Elige una de estas opciones {how}:", tuple(options), numbered=numbered
    )


def bad_document_type(options: Sequence[Option]) -> Reply:
    return Reply(
        "No te entendí. ¿Qué documento tiene el titular? Escribe DNI, Carné de Extranjería o "
        "Pasaporte (puedes poner también el número, por ejemplo «DNI 45678912»):",
        tuple(options),
    )


def chatter(thanks: bool) -> Reply:
    return Reply("¡De nada! 😊" if thanks else "👍")


def resume(prompt: Reply) -> Reply:
    """Answer a greeting mid-purchase without starting over."""
    return Reply(
        f"¡Hola! Sigamos donde nos quedamos. {prompt.text}",
        prompt.options,
        prompt.link,
        numbered=prompt.numbered,
    )


def idle_chatter(thanks: bool) -> Reply:
    lead = "¡De nada! 😊" if thanks else "👍"
    return Reply(f"{lead} Cuando quieras otra recarga, escribe «recargar».")


def at_start() -> Reply:
    return Reply("Ya estamos en el primer paso.")


def payment_link(amount_cents: int, url: str) -> Reply:
    return Reply(
        f"¡Listo! Paga {soles(amount_cents)} con Visa o Mastercard en esta página segura. "
        f"El enlace vence en 30 minutos.\n{_NO_CARD_HERE}",
        link=Link(f"Pagar {soles(amount_cents)}", url),
    )


def payment_pending(amount_cents: int, url: str | None) -> Reply:
    if url is None:
        return Reply("Estoy generando tu enlace de pago, un momento…")
    return Reply(
        f"Tu enlace para pagar {soles(amount_cents)} sigue activo. Si ya pagaste, espera un "
        "momento: te aviso apenas se acredite. Para anular, escribe /cancelar.",
        link=Link(f"Pagar {soles(amount_cents)}", url),
    )


def checkout_failed(options: Sequence[Option]) -> Reply:
    return Reply(
        "No pude generar el enlace de pago en este momento. Inténtalo de nuevo en unos minutos.",
        tuple(options),
    )


def cancelled() -> Reply:
    """Cancel before any payment link existed: no money was ever at stake."""
    return Reply("Listo, cancelé la operación. Escríbeme cuando quieras recargar.")


def cancel_outcome(order: Order | None, *, charged: bool | None) -> Reply:
    """What /cancelar did to the order the chat waited on, as the gateway and storage say."""
    if order is None:
        return cancelled()
    amount = soles(order.amount_cents)
    if order.state in (OrderState.CANCELLED, OrderState.EXPIRED) and charged is False:
        return Reply(
            f"Listo, anulé tu enlace de pago de {amount} y no se realizó ningún cargo. "
            "Escríbeme cuando quieras recargar."
        )
    if order.state in (OrderState.CANCELLED, OrderState.EXPIRED):
        return Reply(
            f"Anulé tu pedido de {amount}. Si alcanzaste a pagar justo ahora, no pierdes nada: "
            "recargaremos tu línea o te devolveremos el dinero, y te aviso por aquí."
        )
    return Reply(
        f"Ese pedido ya está pagado, así que no puedo anularlo. {order_status(order).text}"
    )


def order_status(order: Order) -> Reply:
    """Where a paid order stands, in words that match its state."""
    amount, number = soles(order.amount_cents), display_msisdn(order.purchase.line.msisdn)
    paid = f"Ya recibimos tu pago de {amount}."
    match order.state:
        case OrderState.PAID | OrderState.TOPPING_UP | OrderState.TOPUP_UNKNOWN:
            return Reply(f"{paid} Estamos recargando la línea {number}; te aviso apenas termine.")
        case OrderState.HELD:
            when = (
                f" hasta el {order.refund_after.astimezone(LIMA):%d/%m a las %H:%M}"
                if order.refund_after
                else ""
            )
            return Reply(
                f"{paid} La recarga de la línea {number} está demorando por un problema de nuestro "
                f"proveedor; la reintentamos cada pocos minutos. Si no se completa{when}, te "
                f"devolvemos {amount} a tu tarjeta automáticamente."
            )
        case OrderState.TOPUP_FAILED:
            return Reply(
                f"{paid} No pudimos recargar la línea {number} y estamos devolviendo {amount} a "
                "tu tarjeta; te aviso cuando esté hecho."
            )
        case OrderState.FLAGGED:
            return Reply(f"{paid} Estamos revisando tu pedido; te escribimos pronto.")
        case OrderState.COMPLETED | OrderState.REFUNDED | OrderState.EXPIRED:
            return settled(order)
        case OrderState.CANCELLED:
            return Reply(f"Tu pedido de {amount} fue anulado y no se realizó ningún cargo.")
    return payment_pending(order.amount_cents, order.checkout.url if order.checkout else None)


def handoff(hours: str) -> Reply:
    return Reply(
        "Listo, le pasé tu chat a una persona de nuestro equipo y te escribirá por aquí "
        f"({hours}). Mientras tanto no responderé automáticamente. Para volver conmigo, "
        "escribe «menú»."
    )


def complaint(hours: str, book_url: str | None) -> Reply:
    book = (
        f" También puedes registrarlo en nuestro Libro de Reclamaciones virtual: {book_url}"
        if book_url
        else ""
    )
    return Reply(
        f"Lamento el inconveniente. Una persona de nuestro equipo revisará tu reclamo y te "
        f"escribirá por aquí ({hours}).{book} Para volver conmigo, escribe «menú»."
    )


def back_to_bot() -> Reply:
    return Reply("¡Aquí estoy de nuevo! 🤖")


def help_text() -> Reply:
    return Reply(
        "Te ayudo a recargar tu línea Claro prepago con Visa o Mastercard.\n"
        "• recargar o /recargar: empezar una recarga\n"
        "• cancelar o /cancelar: anular lo que estás haciendo\n"
        "• ayuda o /ayuda: ver esta ayuda\n"
        "• mis recargas o /misrecargas: ver tus últimas recargas\n"
        "• mis datos o /misdatos: ver tus datos; /borrar: borrarlos\n"
        "• atrás: volver a la pregunta anterior; «cambiar titular» o «cambiar documento»: "
        "corregir tus datos\n"
        "• asesor: hablar con una persona; reclamo: dejar un reclamo\n"
        "También puedes escribir todo junto, por ejemplo «recarga 10 al 987654321».\n"
        f"El pago se hace solo en la página segura del enlace. {_NO_CARD_HERE}"
    )


def opted_out() -> Reply:
    return Reply(
        "Listo, ya no te enviaré promociones ni avisos que no sean de tus recargas. "
        "Si me escribes, te sigo atendiendo. Para volver a recibirlos, escribe ALTA."
    )


def opted_in() -> Reply:
    return Reply("¡Listo! Volverás a recibir nuestras novedades. Para dejarlas, escribe BAJA.")


def ask_promos(options: Sequence[Option]) -> Reply:
    """The one-time promo question, asked after the first successful recharge."""
    return Reply(
        "¿Quieres recibir por este chat promociones y recordatorios para que tu línea no se "
        "quede sin saldo? Puedes cambiarlo cuando quieras.",
        tuple(options),
    )


def promos_on() -> Reply:
    return Reply(
        "¡Listo! Te enviaremos promociones de vez en cuando. Para dejarlas, escribe «promos no»."
    )


def promos_off() -> Reply:
    return Reply(
        "Entendido, no te enviaremos promociones. Si cambias de opinión, escribe «promos si»."
    )


def promos_usage() -> Reply:
    return Reply("Escribe «promos si» para recibir promociones o «promos no» para dejarlas.")


# Why a payment that went through the checkout was refunded.
_REFUSED_PAYMENTS = {
    PaymentProblem.CARD_BRAND: "Solo aceptamos tarjetas Visa o Mastercard.",
    PaymentProblem.AMOUNT: "El pago no coincidió con el monto de tu pedido.",
}


def settled(order: Order) -> Reply:
    """Tell the customer how their order ended."""
    number = display_msisdn(order.purchase.line.msisdn)
    product = order.purchase.product
    match order.state.value:
        case "completed":
            what = (
                f"el {product.name} ({soles(product.price_cents)})"
                + (f": {product.details}" if product.details else "")
                + _lasting(product)
                if product.kind is ProductKind.PACKAGE
                else f"una recarga de {soles(product.price_cents)}"
            )
            return Reply(
                f"✅ ¡Recarga exitosa! Tu línea {number} recibió {what}. "
                f"N.º de operación: {order.operation_id}. ¡Gracias por usar RecargaBot!"
            )
        case "refunded" if order.failure in _REFUSED_PAYMENTS:
            why = _REFUSED_PAYMENTS[PaymentProblem(order.failure)]
            return Reply(
                f"{why} No recargamos la línea {number} y ya devolvimos todo tu pago a la "
                "tarjeta; el extorno puede tardar hasta 24 horas en verse."
            )
        case "refunded":
            return Reply(
                f"No pudimos recargar la línea {number}. Ya devolvimos "
                f"{soles(product.price_cents)} a tu tarjeta; el extorno puede tardar hasta "
                "24 horas en verse. Disculpa las molestias."
            )
        case _:
            return Reply(
                f"Tu enlace de pago de {soles(product.price_cents)} venció y no se realizó ningún "
                "cargo. Escribe «recargar» cuando quieras intentarlo de nuevo."
            )


LIMA = timezone(timedelta(hours=-5), "PET")  # Peru keeps UTC-5 all year
_STATE_WORDS = {
    "awaiting_payment": "pendiente de pago",
    "paid": "pagada, en proceso",
    "topping_up": "en proceso",
    "topup_unknown": "en proceso",
    "held": "en proceso",
    "completed": "exitosa",
    "topup_failed": "fallida, en devolución",
    "refunded": "devuelta a tu tarjeta",
    "expired": "enlace vencido, sin cargo",
    "cancelled": "cancelada, sin cargo",
    "flagged": "en revisión",
}


def history(orders: Sequence[Order]) -> Reply:
    """List the customer's latest orders: date (Lima), number, product, amount and status."""
    if not orders:
        return Reply("Aún no tienes recargas. Escribe «recargar» para hacer la primera.")
    lines = [
        f"• {order.created_at.astimezone(LIMA):%d/%m/%Y} · "
        f"{display_msisdn(order.purchase.line.msisdn)} · {order.purchase.product.name} · "
        f"{soles(order.amount_cents)} · {_STATE_WORDS.get(order.state.value, 'en proceso')}"
        for order in orders
    ]
    return Reply("Tus últimas recargas:\n" + "\n".join(lines))


def saved_line_label(line: Line) -> str:
    return f"Recargar {display_msisdn(line.msisdn)}"


def repeat_label(purchase: Purchase) -> str:
    amount, number = soles(purchase.product.price_cents), display_msisdn(purchase.line.msisdn)
    return f"Repetir última recarga ({amount} al {number})"


# ---------------------------------------------------------------- privacy and limits


def my_data(data: PersonalData) -> Reply:
    """Show the customer what the bot keeps about them (documents masked)."""
    if data.consent_version is None and not data.lines and not data.orders:
        return Reply("No guardo ningún dato personal tuyo.")
    when = f" el {data.consented_at.astimezone(LIMA):%d/%m/%Y}" if data.consented_at else ""
    consent = f"Aceptaste el aviso de privacidad (versión {data.consent_version}){when}."
    rows = [
        f"• {display_msisdn(ln.msisdn)} · {ln.owner_name} · {DOC_LABELS[ln.doc_type]} "
        f"****{ln.doc_number[-4:]}"
        for ln in data.lines
    ]
    saved = "Líneas guardadas:\n" + "\n".join(rows) if rows else "No tienes líneas guardadas."
    return Reply(
        f"Tus datos:\n{consent if data.consent_version else 'Sin consentimiento registrado.'}\n"
        f"{saved}\nPedidos con tus datos: {data.orders}.\n"
        "Para borrarlos escribe /borrar."
    )


def confirm_erase(options: Sequence[Option]) -> Reply:
    return Reply(
        "¿Borro tus datos personales (líneas guardadas, nombres, documentos y tu aceptación del "
        "aviso)? Tus pedidos quedan solo como registro contable, sin datos personales.",
        tuple(options),
    )


def erased() -> Reply:
    return Reply("Listo, borré tus datos personales. Si vuelves a escribirme, empezamos de cero.")


def erase_kept() -> Reply:
    return Reply("De acuerdo, no borré nada.")


def card_in_chat(pending_url: str | None) -> Reply:
    """Warn a customer who typed a card number; it was neither stored nor read."""
    text = (
        "⚠️ Parece que escribiste un número de tarjeta. No lo guardé. Por tu seguridad, "
        "nunca escribas los datos de tu tarjeta en el chat: paga solo en la página segura "
        "del enlace de pago."
    )
    return Reply(text, link=Link("Ir a la página de pago", pending_url) if pending_url else None)


def too_many_messages() -> Reply:
    return Reply("Estás enviando muchos mensajes seguidos. Espera un minuto y vuelve a escribirme.")


def limit_reached(refusal: Refusal) -> Reply:
    """Refuse a new payment link, naming the rule and its figures; nothing was charged."""
    match refusal.rule:
        case Rule.RECIPIENT_AMOUNT:
            room = soles(refusal.left)
            then = (
                "Puedes elegir un monto menor"
                if refusal.left >= MIN_CUSTOM_SOLES * 100
                else "Inténtalo mañana"
            )
            why = (
                f"un número puede recibir hasta {soles(refusal.ceiling)} al día; "
                f"hoy le quedan {room}. {then}"
            )
        case Rule.RECIPIENT_TOPUPS:
            why = (
                f"un número puede recibir hasta {refusal.ceiling} recargas al día, y este ya las "
                "tiene. Inténtalo mañana"
            )
        case Rule.CHAT_OPEN:
            why = (
                f"un chat puede tener hasta {refusal.ceiling} enlaces de pago abiertos a la vez. "
                "Usa uno de los que ya tienes o espera a que venzan (30 minutos)"
            )
        case Rule.CHAT_HOURLY:
            why = (
                f"un chat puede pedir hasta {refusal.ceiling} enlaces de pago por hora. "
                "Inténtalo en un rato"
            )
    return Reply(f"Por seguridad, {why}. No se hizo ningún cargo.")
