"""Benchmark: the canned-response dropdown of the console's composer.

    python bench/autocomplete.py [--quick] [--json] [--responses 10000]

Three figures:

* **filtering per keystroke**: ``CannedCatalog.search`` over 10,000 responses (realistic
  shortcuts and titles; contents of 40–400 characters over a vocabulary of some 20,000 words,
  as a real list has), for every prefix of a set of typed queries (``/e``, ``/en``, ``/env``…,
  words found only in contents, and misses), each keystroke after the one before it (the
  search narrows the previous matches). Target: p95 ≤ 2 ms.
* **cold filtering**: the same queries each searched from scratch, as after pasting ``/xq`` or
  a backspace after a miss: no previous matches to narrow, the worst case. Target: p95 ≤ 2 ms.
* **keystroke to rendered dropdown**: the real console (``MaxApp`` in Textual's headless pilot,
  fed the same 10,000 responses as recorded wire JSON through an ``httpx.MockTransport``) gets
  key events as from a terminal; each figure is the time from the key event to the first frame
  the compositor produces after the dropdown was rebuilt for that key (the headless driver does
  not write it to a terminal: that last step is not counted). Target: p95 ≤ 50 ms.

Prints a table, or with ``--json`` a list of ``{"figure", "target", "measured", "unit", "pass"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Figure, median, percentile, report
from max_server.schemas import CannedResponsePublic
from max_tui.canned import CannedCatalog

FILTER_TARGET_MS = 2.0
RENDER_TARGET_MS = 50.0
WORDS = (
    "envio",
    "pedido",
    "pago",
    "factura",
    "garantia",
    "devolucion",
    "cambio",
    "horario",
    "saludo",
    "gracias",
    "tracking",
    "paquete",
    "tarjeta",
    "reembolso",
    "direccion",
    "cuenta",
    "acceso",
    "cupon",
    "descuento",
    "promocion",
    "mayoreo",
    "sucursal",
    "entrega",
    "retraso",
    "cancelacion",
    "soporte",
    "tecnico",
    "instalacion",
)
QUERIES = ("envio", "pedido-", "gar", "saludo", "xq", "reembolso", "tracking", "zzz", "tracaso")
SYLLABLES = (
    "ma",
    "pe",
    "ri",
    "to",
    "lo",
    "su",
    "ca",
    "de",
    "ne",
    "bra",
    "tri",
    "gon",
    "ul",
    "sa",
    "vi",
    "ar",
)
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
KEY_NAMES = {"/": "slash", "-": "minus"}


def responses(count: int, seed: int = 11) -> list[dict[str, Any]]:
    """``count`` responses as the API lists them (shortcuts unique, like the server enforces)."""
    rng = random.Random(seed)
    vocabulary = sorted({"".join(rng.choices(SYLLABLES, k=rng.randint(2, 5))) for _ in range(30_000)})
    made: list[dict[str, Any]] = []
    for number in range(count):
        words = rng.sample(WORDS, 2)
        content = " ".join(
            rng.choice(WORDS) if rng.random() < 0.5 else rng.choice(vocabulary)
            for _ in range(rng.randint(6, 60))
        )
        made.append(
            {
                "id": str(number + 1),
                "scope": "global",
                "shortcut": f"/{words[0]}-{words[1]}-{number}",
                "title": f"{words[0].capitalize()} {words[1]}",
                "content": f"Hola {{{{customer_first_name|}}}}, {content}.",
                "usage_count": 0,
                "variables": ["customer_first_name"],
                "effective": True,
                "created_at": NOW.isoformat(),
                "updated_at": NOW.isoformat(),
            }
        )
    return made


def keystrokes() -> list[str]:
    """Every prefix of every query, as the agent types it (``/``, ``/e``, ``/en``…)."""
    typed = ["/"]
    for query in QUERIES:
        typed += ["/" + query[:end] for end in range(1, len(query) + 1)]
    return typed


def bench_filtering(count: int, rounds: int) -> list[float]:
    catalog = CannedCatalog([CannedResponsePublic.model_validate(r) for r in responses(count)])
    timings: list[float] = []
    for _ in range(rounds):
        for typed in keystrokes():
            started = time.perf_counter()
            catalog.search(typed, limit=30)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def bench_cold(count: int, rounds: int) -> list[float]:
    """Each query searched on its own, without the keystroke before it (a pasted ``/xq``, a
    backspace after a miss): nothing to narrow, the worst case."""
    catalog = CannedCatalog([CannedResponsePublic.model_validate(r) for r in responses(count)])
    timings: list[float] = []
    for _ in range(rounds):
        for typed in keystrokes():
            catalog.forget_last()
            started = time.perf_counter()
            catalog.search(typed, limit=30)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


async def bench_rendering(count: int, rounds: int) -> list[float]:
    import httpx
    from textual import events

    from max_tui.screens.main import MainScreen
    from tests.tui.recorded import RecordedApi, recorded_app

    listed = {"responses": responses(count), "next_cursor": None}
    timings: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        app = recorded_app(Path(tmp))
        api = RecordedApi()
        api.part2["canned"] = listed
        app.client._http._transport = httpx.MockTransport(api)  # the big list, same recorded server
        frames: list[float] = []
        display = app._display

        def timed_display(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if renderable is not None:
                frames.append(time.perf_counter())

        app._display = timed_display  # type: ignore[method-assign]
        async with app.run_test(size=(120, 36)) as pilot:
            while not (isinstance(app.screen, MainScreen) and app.screen.loads):
                await pilot.pause(0.02)
            main: MainScreen = app.screen
            while len(main.ctx.canned) < count:
                await pilot.pause(0.02)
            await main.open_conversation("101", focus_composer=True)
            await pilot.pause(0.2)
            dropdown = main.dropdown
            for _ in range(rounds):
                for query in QUERIES:
                    main.composer.clear()
                    await pilot.pause()
                    for key in "/" + query:
                        # The key goes to the driver as a terminal's would: pilot.press waits for
                        # the whole process to go idle, which is not what the agent waits for.
                        before = dropdown.updated_at
                        started = time.perf_counter()
                        assert app._driver is not None
                        app._driver.send_message(events.Key(KEY_NAMES.get(key, key), key))
                        while dropdown.updated_at == before:
                            await asyncio.sleep(0)
                        rebuilt = dropdown.updated_at
                        while not frames or frames[-1] < rebuilt:
                            await asyncio.sleep(0.0005)
                        timings.append((next(f for f in frames if f >= rebuilt) - started) * 1000)
                        assert main.composer.text.endswith(key)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON figures")
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--responses", type=int, default=10_000)
    args = parser.parse_args()
    rounds = 3 if args.quick else 20
    filtering = bench_filtering(args.responses, rounds)
    cold = bench_cold(args.responses, rounds)
    rendering = asyncio.run(bench_rendering(args.responses, 1 if args.quick else 3))
    n = f"{args.responses:,}"
    figures = [
        Figure(
            f"canned filter per keystroke p95 ({n} responses)",
            f"<= {FILTER_TARGET_MS} ms",
            percentile(filtering, 95),
            "ms",
            percentile(filtering, 95) <= FILTER_TARGET_MS,
        ),
        Figure(f"canned filter per keystroke median ({n})", "info", median(filtering), "ms", True),
        Figure(
            f"canned filter, cold (pasted or after a miss) p95 ({n})",
            f"<= {FILTER_TARGET_MS} ms",
            percentile(cold, 95),
            "ms",
            percentile(cold, 95) <= FILTER_TARGET_MS,
        ),
        Figure(f"canned filter, cold, worst ({n})", "info", max(cold), "ms", True),
        Figure(
            f"keystroke to rendered dropdown p95 ({n}, pilot)",
            f"<= {RENDER_TARGET_MS:g} ms",
            percentile(rendering, 95),
            "ms",
            percentile(rendering, 95) <= RENDER_TARGET_MS,
        ),
        Figure(f"keystroke to rendered dropdown median ({n}, pilot)", "info", median(rendering), "ms", True),
    ]
    report(figures, args.json)


if __name__ == "__main__":
    main()
