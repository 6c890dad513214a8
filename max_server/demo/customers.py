"""Simulated customers: realistic conversations on WhatsApp (through the Graph API sandbox's signed
webhooks) and on the Chat App (signed like MAX's own webhooks), at a gentle pace.

The script covers what a newcomer should see: text in Spanish and English, a photo, a voice note,
a PDF, a burst that trips the rate limit, a customer who writes on both channels (a link
suggestion), and an urgent request on a short SLA that breaches if nobody answers within a
minute. Customers react to agents: each WhatsApp reply is marked delivered and read, and the
customer answers with their next line. After the script, a new customer writes now and then.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import httpx

from max_server.channels.chat_app import signed_headers
from max_server.channels.whatsapp.sandbox import Sandbox
from max_server.demo import samples

log = logging.getLogger("max.demo.customers")
BURST = [
    "hola", "???", "hay alguien?", "necesito ayuda", "HOLA", "me pueden contestar",
    "es sobre mi pedido", "???", "llevo rato esperando", "alguien??", "hola???", "😡",
]  # fmt: skip
TRICKLE_EVERY_PACES = 20  # after the script, a new customer about every 20 paces (1 min at 3 s)
TRICKLE_LIMIT = 30


@dataclass
class Customer:
    name: str
    wa_id: str | None = None  # WhatsApp
    app_id: str | None = None  # Chat App
    email: str | None = None
    phone: str | None = None
    replies: list[str] = field(default_factory=list)  # lines for when an agent answers


@dataclass(frozen=True)
class Step:
    """One thing a customer does: ``kind`` is text, image, voice, document, burst or chat_app."""

    who: str
    kind: str
    text: str = ""


CUSTOMERS = {
    "ana": Customer("Ana López", wa_id="5215512340001", replies=["¡Muchas gracias! Quedo al pendiente 🙌"]),
    "john": Customer(
        "John Carter",
        wa_id="14155550103",
        replies=["Great, thanks. How long does the refund take?", "Perfect."],
    ),
    "lucia": Customer("Lucía Herrera", wa_id="5215512340004", replies=["Ya pude entrar, ¡gracias!"]),
    "carlos": Customer("Carlos Méndez", wa_id="5215512340002", replies=["Va, gracias"]),
    "maria": Customer(
        "María González",
        wa_id="5215512340006",
        app_id="app-user-0006",
        email="maria.gonzalez@example.com",
        phone="+52 55 1234 0006",
        replies=["Perfecto, gracias por confirmar."],
    ),
    "pedro": Customer("Pedro Sánchez", wa_id="5215512340005", replies=["ok"]),
    "emily": Customer("Emily Watson", wa_id="447700900123", replies=["Sounds good, send it over!"]),
}

SCRIPT = [
    Step("ana", "text", "Hola, buenas tardes 👋"),
    Step("john", "text", "Hi there, I was charged twice for my March subscription"),
    Step("ana", "text", "Hice un pedido el lunes y todavía no me llega. Es el A-1042"),
    Step("lucia", "text", "URGENTE: no puedo entrar a mi cuenta y hoy vence mi pago"),
    Step("john", "document", "Here's the invoice, both charges are on it"),
    Step("ana", "image", "Esta es la guía que me dieron"),
    Step("carlos", "text", "Hola, les mando un audio porque voy manejando"),
    Step("carlos", "voice"),
    Step("maria", "text", "Hola, quiero cambiar la dirección de envío de mi pedido"),
    Step("pedro", "burst"),
    Step("emily", "text", "Hello! Could I get a quote for 50 licenses of MAX Pro?"),
    Step(
        "maria", "chat_app", "Les escribo también desde la app: la nueva dirección es Av. Reforma 222, CDMX"
    ),
    Step("lucia", "text", "¿Hay alguien? Es muy urgente 🙏"),
    Step("emily", "text", "We're a team of 50 agents in Mexico and Spain."),
    Step("ana", "text", "¿Me pueden decir cuándo llega?"),
]

TRICKLE = [
    ("Valeria Cruz", "¿Tienen envío gratis a Monterrey?"),
    ("Oliver Smith", "Hi, how do I reset my password?"),
    ("Jorge Ramírez", "Buenas, ¿cuál es el precio del plan anual?"),
    ("Sophie Martin", "Hello, my order arrived damaged. What can I do?"),
    ("Fernanda Ruiz", "Hola, ¿puedo cambiar la talla de una playera?"),
    ("Liam Johnson", "Do you offer discounts for nonprofits? We'd need a quote."),
    ("Camila Torres", "Me llegó un cobro que no reconozco"),
    ("Noah Brown", "Is there an API to export my conversations?"),
]


class Customers:
    """Plays :data:`SCRIPT` against the server at ``server_url``, one step every ``pace`` seconds,
    in a daemon thread; :meth:`stop` ends it promptly."""

    def __init__(
        self, sandbox: Sandbox, server_url: str, chat_app_secret: str, pace: float, *, trickle: bool = True
    ) -> None:
        self.sandbox, self.server_url, self.pace = sandbox, server_url.rstrip("/"), pace
        self.chat_app_secret = chat_app_secret
        self.trickle = trickle
        self.customers = {key: Customer(**vars(c)) for key, c in CUSTOMERS.items()}
        for customer in self.customers.values():
            customer.replies = list(customer.replies)
        self.sent = 0
        self.failures = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._answered = 0  # how many of the sandbox's accepted sends have been handled
        self._http = httpx.Client(timeout=30)
        self._thread = threading.Thread(target=self._run, name="demo-customers", daemon=True)

    def start(self) -> Customers:
        start = time.monotonic()
        for index, step in enumerate(SCRIPT):
            self._at(start + index * self.pace, partial(self._play, step))
        if self.trickle:
            after = start + len(SCRIPT) * self.pace
            for index, (name, text) in enumerate(TRICKLE[:TRICKLE_LIMIT]):
                due = after + (index + 1) * TRICKLE_EVERY_PACES * self.pace
                self._at(due, partial(self._newcomer, index, name, text))
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._http.close()

    def on_chat_app_reply(self, customer_id: str | None) -> None:
        """An agent answered on the Chat App: that customer replies with their next line."""
        for customer in self.customers.values():
            if customer.app_id and customer.app_id == customer_id and customer.replies:
                line = customer.replies.pop(0)
                self._at(time.monotonic() + 2 * self.pace, partial(self._chat_app, customer, line))

    # The loop --------------------------------------------------------------------------------
    def _at(self, due: float, action: Callable[[], None]) -> None:
        with self._lock:
            heapq.heappush(self._queue, (due, next(self._order), action))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._follow_agents()
            with self._lock:
                due = self._queue[0][0] if self._queue else None
                action = (
                    heapq.heappop(self._queue)[2] if due is not None and due <= time.monotonic() else None
                )
            if action is None:
                wait = 0.25 if due is None else min(0.25, max(due - time.monotonic(), 0.0))
                self._stop.wait(wait)
                continue
            try:
                action()
            except httpx.HTTPError as exc:  # the server is stopping, or busy: the demo goes on
                self.failures += 1
                log.warning("a simulated customer could not reach MAX: %s", exc)

    def _follow_agents(self) -> None:
        """Statuses and answers for what agents sent on WhatsApp since the last look."""
        accepted = self.sandbox.accepted()
        for wamid, body in accepted[self._answered :]:
            wa_id = re.sub(r"\D", "", str(body.get("to", "")))
            now = time.monotonic()
            for offset, status in ((0.5, "sent"), (1.0, "delivered"), (2.0, "read")):
                self._at(
                    now + offset * max(self.pace, 0.2),
                    partial(self._status, wamid, status, wa_id),
                )
            customer = next((c for c in self.customers.values() if c.wa_id == wa_id), None)
            if customer is not None and customer.replies:
                line = customer.replies.pop(0)
                self._at(now + 3 * max(self.pace, 0.5), partial(self._text, customer, line))
        self._answered = len(accepted)

    # What customers do -------------------------------------------------------------------------
    def _play(self, step: Step) -> None:
        customer = self.customers[step.who]
        if step.kind == "text":
            self._text(customer, step.text)
        elif step.kind == "image":
            self._media(customer, samples.png(), "image/png", caption=step.text)
        elif step.kind == "voice":
            self._media(customer, samples.voice_note(), "audio/ogg; codecs=opus", voice=True)
        elif step.kind == "document":
            lines = [
                "MAX Software S.A. de C.V. - Invoice INV-2026-0315",
                "Customer: John Carter",
                "2026-03-01  MAX Pro monthly subscription   USD 49.00",
                "2026-03-01  MAX Pro monthly subscription   USD 49.00",
                "Total: USD 98.00",
            ]
            pdf = samples.invoice_pdf(lines)
            self._media(
                customer, pdf, "application/pdf", caption=step.text, filename="invoice-INV-2026-0315.pdf"
            )
        elif step.kind == "burst":
            for line in BURST:  # as fast as a thumb types: over the per-minute limit
                if self._stop.is_set():
                    return
                self._text(customer, line)
                self._stop.wait(0.05)
        elif step.kind == "chat_app":
            self._chat_app(customer, step.text)
        else:
            raise ValueError(f"unknown step kind {step.kind!r}")

    def _newcomer(self, index: int, name: str, text: str) -> None:
        key = f"trickle-{index}"
        customer = Customer(name, wa_id=f"52155987{index:05d}", replies=["¡Gracias!"])
        self.customers[key] = customer
        self._text(customer, text)

    def _text(self, customer: Customer, text: str) -> None:
        assert customer.wa_id is not None
        response, _ = self.sandbox.customer_text(self.server_url, customer.wa_id, text, customer.name)
        self._count(response, f"{customer.name}: {text}")

    def _media(
        self,
        customer: Customer,
        data: bytes,
        mime_type: str,
        *,
        caption: str | None = None,
        filename: str | None = None,
        voice: bool | None = None,
    ) -> None:
        assert customer.wa_id is not None
        response, _, _ = self.sandbox.customer_media(
            self.server_url,
            customer.wa_id,
            data,
            mime_type,
            caption=caption or None,
            filename=filename,
            voice=voice,
            name=customer.name,
        )
        self._count(response, f"{customer.name}: [{mime_type}] {caption or filename or ''}")

    def _chat_app(self, customer: Customer, text: str) -> None:
        assert customer.app_id is not None
        message = {
            "id": f"demo-{customer.app_id}-{time.time_ns()}",
            "customer": {
                "id": customer.app_id,
                "name": customer.name,
                "email": customer.email,
                "phone": customer.phone,
            },
            "text": text,
        }
        body = json.dumps(message, ensure_ascii=False).encode()
        response = self._http.post(
            self.server_url + "/channels/chat-app/messages",
            content=body,
            headers=signed_headers(self.chat_app_secret, body, now=time.time()),
        )
        self._count(response, f"{customer.name} (Chat App): {text}")

    def _status(self, wamid: str, status: str, wa_id: str) -> None:
        response = self.sandbox.status_update(self.server_url, wamid, status, wa_id)
        if response.status_code != 200:
            log.warning("status %s for %s answered %s", status, wamid, response.status_code)

    def _count(self, response: httpx.Response, what: str) -> None:
        if response.status_code == 200:
            self.sent += 1
            log.info("customer wrote: %s", what)
        else:
            self.failures += 1
            log.warning("MAX answered %s to %s: %s", response.status_code, what, response.text[:200])
