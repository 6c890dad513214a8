"""Meta's side of the load: a plan of signed WhatsApp webhooks (many customers, some media,
redelivered duplicates, some out of order) and a sender that spreads them over the processes
and resends whatever was not answered 200, as Meta does."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from max_server.channels.whatsapp import payloads
from max_server.channels.whatsapp.sandbox import Sandbox

SPACING_S = 5  # between one customer's messages: 12 a minute, under the default limit of 20
# uvicorn closes a connection idle for 5 s; a client reusing it at that moment gets a reset that
# is no failure of the server's. Meta's side forgets idle connections sooner.
KEEPALIVE_S = 2.0


def env_int(name: str, default: int) -> int:
    """A size of the suite, configurable from the environment (``MAX_RELIABILITY_*``)."""
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


@dataclass(frozen=True)
class Planned:
    """One unique customer message and the exact bytes Meta signs for it."""

    wamid: str
    wa_id: str
    ts: int
    text: str
    body: bytes
    media_id: str | None = None
    media_sha256: str | None = None  # hex, of the bytes the sandbox serves


@dataclass
class Plan:
    messages: list[Planned]
    schedule: list[Planned]  # the order of sending, duplicates included
    out_of_order: int = 0
    duplicates: int = 0

    @property
    def customers(self) -> set[str]:
        return {m.wa_id for m in self.messages}


def blob(size: int, seed: str) -> bytes:
    """Deterministic, incompressible bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def wa_id_for(prefix: str, n: int) -> str:
    return f"521{prefix}{n:07d}"


def text_for(n_customer: int, k: int, tag: str) -> str:
    """Even customers write about sales (a routing rule sends them to "ventas"), odd ones do not."""
    topic = "ventas: quiero comprar" if n_customer % 2 == 0 else "ayuda con mi pedido"
    return f"{topic} #{k} [{tag}]"


def build_plan(
    sandbox: Sandbox,
    app_secret: str,
    *,
    webhooks: int,
    customers: int,
    media_every: int,
    tag: str,
    seed: int = 13,
    prefix: str = "55",
    duplicate_ratio: float = 0.2,
    out_of_order_ratio: float = 0.1,
) -> Plan:
    """``webhooks`` deliveries in all: ``duplicate_ratio`` of them are redeliveries of earlier ones."""
    rng = random.Random(seed)
    unique = max(1, round(webhooks * (1 - duplicate_ratio)))
    per_customer = -(-unique // customers)
    start = int(time.time()) - SPACING_S * per_customer - 30
    messages: list[Planned] = []
    for n in range(unique):
        customer, k = n % customers, n // customers
        wa_id, wamid = wa_id_for(prefix, customer), f"wamid.{tag}.{n:06d}"
        ts, text = start + SPACING_S * k, text_for(customer, k, tag)
        media_id = sha = None
        if media_every and n % media_every == media_every - 1:
            data = blob(2048 + rng.randrange(30_000), f"{tag}:{n}")
            media_id = sandbox.add_media(data, "image/jpeg")
            sha = hashlib.sha256(data).hexdigest()
            message = payloads.image(
                wa_id, wamid, media_id, "image/jpeg", payloads.sha256_b64(data), ts, text
            )
        else:
            message = payloads.text(wa_id, wamid, text, ts)
        change = payloads.messages_change(
            payloads.DEFAULT_PHONE_NUMBER_ID, [message], [payloads.contact(wa_id, f"Cliente {customer}")]
        )
        body = payloads.encode(payloads.envelope(payloads.DEFAULT_PHONE_NUMBER_ID, [change]))
        messages.append(Planned(wamid, wa_id, ts, text, body, media_id, sha))
    order = sorted(messages, key=lambda m: (m.ts, m.wa_id))
    plan = Plan(messages=messages, schedule=order)
    _shuffle_some(plan, rng, out_of_order_ratio)
    _add_duplicates(plan, rng, webhooks - unique)
    return plan


def _shuffle_some(plan: Plan, rng: random.Random, ratio: float) -> None:
    """A message arrives after its customer's next one (Meta does not promise order)."""
    order = plan.schedule
    position = {m.wamid: i for i, m in enumerate(order)}
    following: dict[str, Planned] = {}
    previous: dict[str, Planned] = {}
    for message in order:
        if message.wa_id in previous:
            following[previous[message.wa_id].wamid] = message
        previous[message.wa_id] = message
    for message in rng.sample(order, int(len(order) * ratio)):
        later = following.get(message.wamid)
        if later is None:
            continue
        i, j = position[message.wamid], position[later.wamid]
        if i < j:
            order[i], order[j] = order[j], order[i]
            position[message.wamid], position[later.wamid] = j, i
            plan.out_of_order += 1


def _add_duplicates(plan: Plan, rng: random.Random, count: int) -> None:
    """Redeliveries: a quarter right after the original (concurrent, to another process), the
    rest a while later."""
    order = plan.schedule
    for original in rng.choices(plan.messages, k=count):
        at = order.index(original)
        gap = 1 if rng.random() < 0.25 else rng.randrange(1, 300)
        order.insert(min(len(order), at + gap), original)
    plan.duplicates = count


# Sending ----------------------------------------------------------------------------------------
Picker = Callable[[int], str]


@dataclass
class Outcome:
    status: int | None  # None: no answer (connection refused, reset, timeout)
    error: str = ""
    code: str = ""  # the error envelope's code


@dataclass
class Sender:
    """Posts planned webhooks with a pool of threads; ``pick(n)`` chooses the process's base URL."""

    app_secret: str
    threads: int = 8
    timeout: float = 30.0
    acked: set[str] = field(default_factory=set)  # wamids answered 200
    outcomes: list[tuple[float, str, Outcome]] = field(default_factory=list)
    sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self) -> httpx.Client:
        return httpx.Client(timeout=self.timeout, limits=httpx.Limits(keepalive_expiry=KEEPALIVE_S))

    def post(self, base_url: str, planned: Planned, client: httpx.Client) -> Outcome:
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": payloads.sign(planned.body, self.app_secret),
        }
        try:
            response = client.post(base_url + "/webhooks/whatsapp", content=planned.body, headers=headers)
        except httpx.HTTPError as exc:
            outcome = Outcome(None, type(exc).__name__)
        else:
            code = ""
            if response.status_code != 200:
                try:
                    code = str(response.json()["error"]["code"])
                except (ValueError, KeyError, TypeError):
                    code = "not_an_error_envelope"
            outcome = Outcome(response.status_code, code=code)
        with self._lock:
            self.sent += 1
            self.outcomes.append((time.monotonic(), base_url, outcome))
            if outcome.status == 200:
                self.acked.add(planned.wamid)
        return outcome

    def send_all(self, schedule: Sequence[Planned], pick: Picker, pace: float = 0.0) -> None:
        """Sends in schedule order (``threads`` at a time); returns when every answer is in."""
        local = threading.local()

        def client() -> httpx.Client:
            if not hasattr(local, "client"):
                local.client = self.client()
            made: httpx.Client = local.client
            return made

        clients: list[httpx.Client] = []

        def one(n: int, planned: Planned) -> None:
            made = client()
            if made not in clients:
                clients.append(made)
            self.post(pick(n), planned, made)

        with ThreadPoolExecutor(self.threads, thread_name_prefix="meta") as pool:
            gate = threading.Semaphore(self.threads * 2)  # so progress tracks what was answered
            for n, planned in enumerate(schedule):
                gate.acquire()
                pool.submit(one, n, planned).add_done_callback(lambda _: gate.release())
                if pace:
                    time.sleep(pace)
        for made in clients:
            made.close()

    def unacked(self, plan_messages: Sequence[Planned]) -> list[Planned]:
        with self._lock:
            return [m for m in plan_messages if m.wamid not in self.acked]

    def resend_unacked(self, plan_messages: Sequence[Planned], pick: Picker, rounds: int = 10) -> int:
        """Meta's retries: whatever was not answered 200 is sent again until it is."""
        resent = 0
        for _ in range(rounds):
            missing = self.unacked(plan_messages)
            if not missing:
                return resent
            resent += len(missing)
            self.send_all(missing, pick)
        missing = self.unacked(plan_messages)
        assert not missing, f"{len(missing)} webhooks still refused after {rounds} rounds of resending"
        return resent

    def statuses(self) -> Counter[str]:
        with self._lock:
            return Counter(
                str(o.status) if o.status is not None else f"no answer ({o.error})"
                for _, _, o in self.outcomes
            )


class Flood:
    """New messages posted to one process only, ``threads`` at a time (``pace`` seconds apart
    each), until :meth:`stop`: a process killed meanwhile is killed with some of them in flight."""

    def __init__(
        self, sender: Sender, schedule: Sequence[Planned], base_url: str, threads: int = 4, pace: float = 0.05
    ) -> None:
        self.sender, self.base_url, self.pace = sender, base_url, pace
        self.posted: list[Planned] = []  # answered or not, in the order they went out
        self._items = iter(schedule)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> Flood:
        for thread in self._threads:
            thread.start()
        return self

    def _run(self) -> None:
        with self.sender.client() as client:
            while not self._stop.is_set():
                with self._lock:
                    planned = next(self._items, None)
                    if planned is None:
                        return
                    self.posted.append(planned)
                self.sender.post(self.base_url, planned, client)
                self._stop.wait(self.pace)

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def stop(self) -> list[Planned]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        with self._lock:
            return list(self.posted)
