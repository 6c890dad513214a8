"""The console part 2's pure rules: canned-response search and the ``/`` token, SLA countdowns and
their levels, daily compliance and sparklines, template parameters and previews, image decoding
and cell previews, media file names; and the recorded wire data against the schemas."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from max_server.schemas import (
    CannedResponsePublic,
    ConversationPublic,
    CustomerContext,
    CustomerPublic,
    LinkPublic,
    LinkSuggestion,
    MediaLink,
    MessagePublic,
    NotificationList,
    SlaPolicyPublic,
    SlaReport,
    TemplatePublic,
)
from max_tui.canned import CannedCatalog, shortcut_token
from max_tui.dialogs.link import preview_content
from max_tui.dialogs.template import fields_of, fill
from max_tui.formatting import duration_text
from max_tui.imaging import PreviewUnavailable, decode, encode_png, fit, half_blocks
from max_tui.media import safe_filename, unique_path
from max_tui.sla import Level, countdown, daily_compliance, policy_map, sparkline
from tests.tui.recorded import FIXED_NOW, wire, wire2

NOW = FIXED_NOW


def canned(id_: str, shortcut: str, title: str, content: str, effective: bool = True) -> CannedResponsePublic:
    return CannedResponsePublic(
        id=id_,
        scope="global",
        shortcut=shortcut,
        title=title,
        content=content,
        usage_count=0,
        effective=effective,
        created_at=NOW,
        updated_at=NOW,
    )


def conversation(id_: str = "101", **changes: Any) -> ConversationPublic:
    return ConversationPublic.model_validate(wire()["conversations"][id_]).model_copy(update=changes)


def policies() -> dict[tuple[str, str], Any]:
    return policy_map(SlaPolicyPublic.model_validate(p) for p in wire2()["sla_policies"])


# Canned responses ---------------------------------------------------------------------------
def test_catalog_search_orders_prefix_then_contains_then_title_or_content() -> None:
    catalog = CannedCatalog(
        [
            canned("1", "/envio", "Envío", "Enviamos a todo el país"),
            canned("2", "/pedido-envio", "Pedido", "Tu pedido"),
            canned("3", "/gracias", "Gracias", "Te lo enviamos hoy"),
            canned("4", "/envio", "Mi envío", "personal", effective=False),  # shadowed: not offered
            canned("5", "/envase", "Envase", "Caja"),
        ]
    )
    assert [r.id for r in catalog.search("/ENV")] == ["5", "1", "2", "3"]
    assert [r.id for r in catalog.search("envi")] == ["1", "2", "3"]
    assert [r.id for r in catalog.search("")] == ["5", "1", "3", "2"]  # everything, by shortcut
    assert catalog.search("nada de esto") == []
    assert catalog.search("env", limit=2) == catalog.search("env")[:2]
    assert catalog.loaded and CannedCatalog().loaded is False


def test_catalog_search_over_ten_thousand_responses_is_fast() -> None:
    catalog = CannedCatalog(
        canned(str(i), f"/r{i:05d}-{'envio' if i % 7 == 0 else 'pago'}", f"Respuesta {i}", "Texto " * 30)
        for i in range(10_000)
    )
    started = time.perf_counter()
    for query in ("r", "r0", "r01", "envio", "pago", "texto", "zzz"):
        catalog.search(query)
    assert (time.perf_counter() - started) / 7 < 0.02  # generous here; bench/autocomplete.py is exact


def reference_search(responses: list[CannedResponsePublic], query: str, limit: int) -> list[str]:
    """The search's rules, written plainly: prefix, then shortcut contains, then title or content."""
    q = query.strip().lower().lstrip("/")
    usable = sorted((r for r in responses if r.effective), key=lambda r: (r.shortcut, r.id))
    keys = [r.shortcut.lstrip("/").lower() for r in usable]
    texts = [f"{r.title}\n{r.content}".lower() for r in usable]
    groups = (
        [i for i, k in enumerate(keys) if k.startswith(q)],
        [i for i, k in enumerate(keys) if q in k and not k.startswith(q)],
        [i for i, t in enumerate(texts) if q in t and q not in keys[i]],
    )
    return [usable[i].id for group in groups for i in group][:limit]


def test_catalog_search_cold_or_narrowed_finds_exactly_what_the_rules_say() -> None:
    """The word index and the narrowing of the previous matches are only shortcuts: typed key by
    key, pasted whole, or after a miss, the results are the plain rules' results."""
    rng = random.Random(7)
    vocabulary = ["envío", "pedido", "pago", "tarjeta", "re-embolso", "gracias!", "hola,"]
    vocabulary += ["".join(rng.choices("aeioubcdlmnprst", k=rng.randint(2, 7))) for _ in range(400)]
    responses = [
        canned(
            str(i),
            f"/{rng.choice(vocabulary).strip(',!')}-{i}",
            " ".join(rng.choices(vocabulary, k=2)),
            " ".join(rng.choices(vocabulary, k=rng.randint(1, 30))),
            effective=rng.random() > 0.05,
        )
        for i in range(600)
    ]
    catalog = CannedCatalog(responses)
    queries = ["/pe", "ago", "re-e", "s!", "xyz", "lo", "a", "ío", "o,", "tarjetas", "pedido ", "go pe"]
    queries += [rng.choice(vocabulary)[1:4] for _ in range(60)]
    for query in queries:
        for limit in (5, 50, 1000):
            expected = reference_search(responses, query, limit)
            catalog.forget_last()
            assert [r.id for r in catalog.search(query, limit)] == expected, (query, limit)
            catalog.forget_last()
            for typed in (query[:n] for n in range(1, len(query) + 1)):  # key by key
                found = [r.id for r in catalog.search(typed, limit)]
            assert found == expected, ("typed", query, limit)


@pytest.mark.parametrize(
    ("before_cursor", "expected"),
    [
        ("/", (0, "")),
        ("hola /gre", (5, "gre")),
        ("hola\t/envio-gratis", (5, "envio-gratis")),
        ("a/b", None),
        ("hola /gre ", None),
        ("http://x", None),
        ("/pedido_2", (0, "pedido_2")),
    ],
)
def test_the_slash_opens_only_at_the_start_of_a_word(before_cursor: str, expected: Any) -> None:
    token = shortcut_token(before_cursor)
    assert (None if token is None else (token.column, token.query)) == expected


# SLA ------------------------------------------------------------------------------------------
def test_the_countdown_turns_amber_at_80_percent_and_red_on_breach() -> None:
    # Queued, urgent, no reply yet: FRT due 14:50; the urgent policy gives 5 minutes (14:45 start).
    waiting = conversation("103")
    rules = policies()
    early = countdown(waiting, datetime(2026, 3, 2, 14, 47, tzinfo=UTC), rules)
    assert early is not None and early.level is Level.OK and early.short == "FRT 3m"
    late_enough = countdown(waiting, datetime(2026, 3, 2, 14, 49, tzinfo=UTC), rules)
    assert late_enough is not None and late_enough.level is Level.WARNING  # 4 of 5 minutes
    breached = countdown(waiting, NOW, rules)
    assert breached is not None and breached.level is Level.BREACHED
    assert (breached.short, breached.long) == ("FRT late 10m", "First reply 10m late")
    # The server's sla.warning turns it amber even when the start is unknown.
    unknown = waiting.model_copy(update={"cycle": 2})
    at = datetime(2026, 3, 2, 14, 47, tzinfo=UTC)
    assert countdown(unknown, at, {}).level is Level.OK  # type: ignore[union-attr]
    assert countdown(unknown, at, {}, {("103", "frt")}).level is Level.WARNING  # type: ignore[union-attr]
    # Answered: resolution is next; closed: nothing is due.
    answered = conversation("101")
    assert countdown(answered, NOW, rules).metric == "resolution"  # type: ignore[union-attr]
    assert countdown(answered.model_copy(update={"status": "closed"}), NOW, rules) is None


def test_daily_compliance_and_sparklines() -> None:
    history = [[SlaReport.model_validate(r) for r in wire2()["sla_reports"][str(k)]] for k in range(1, 8)]
    days = daily_compliance(history, "2", "frt")
    assert days == [80.0, 100.0, None, 100.0, 83.33, None, 100.0]
    assert sparkline(days) == "▇█·█▇·█"
    assert sparkline([0, 49.9, 50, 100, None]) == "▁▄▅█·"
    assert [duration_text(s) for s in (59, 600, 4200, 93600)] == ["59s", "10m", "1h10m", "1d2h"]


# Templates ------------------------------------------------------------------------------------
def test_template_fields_and_preview() -> None:
    body = "Hola {{1}}, tu pedido {{2}} ha sido enviado. Tracking: {{3}} ({{1}})"
    assert fields_of(body, named=False) == ["1", "2", "3"]
    assert fields_of("{{10}} {{2}}", named=False) == ["2", "10"]
    assert fields_of("{{name}} y {{order}}", named=True) == ["name", "order"]
    assert fill(body, {"1": "Juan", "2": "A-1"}) == (
        "Hola Juan, tu pedido A-1 ha sido enviado. Tracking: {{3}} (Juan)"
    )


def test_the_link_preview_says_what_moves() -> None:
    data = wire2()
    primary = CustomerPublic.model_validate(data["customers"]["11"]).model_copy(update={"email": None})
    secondary = CustomerPublic.model_validate(data["customers"]["16"])
    text = preview_content(primary, secondary, CustomerContext.model_validate(data["contexts"]["16"])).plain
    assert "Juan Lopez Ruiz will be linked into Juan López" in text
    assert "Chat App customer_zz981" in text
    assert "1 conversation(s), 1 transaction(s)" in text
    assert "Adds tags: Mayoreo" in text
    assert "Fills: email juan.lopez@correo.mx" in text


# Media ----------------------------------------------------------------------------------------
def test_image_decoding_and_cell_previews() -> None:
    red, blue = (255, 0, 0), (0, 0, 255)
    image = encode_png(4, 2, [red, red, blue, blue, blue, blue, red, red])
    pixels = decode(image)
    assert (pixels.width, pixels.height) == (4, 2)
    assert pixels.at(0, 0) == red and pixels.at(3, 0) == blue and pixels.at(0, 1) == blue
    preview = half_blocks(pixels, 4, 1)
    assert preview.plain == "▀▀▀▀"
    styles = [str(span.style) for span in preview.spans]
    assert styles[0] == "#ff0000 on #0000ff" and styles[-1] == "#0000ff on #ff0000"
    assert fit(1000, 500, 40, 10) == (40, 10)
    assert fit(100, 1000, 40, 10) == (2, 10)
    with pytest.raises(PreviewUnavailable):
        decode(b"GIF89a")  # a truncated GIF


def test_saved_files_get_safe_and_free_names(tmp_path: Path) -> None:
    link = MediaLink.model_validate(wire2()["media"]["501"])
    assert safe_filename(link.model_copy(update={"filename": "../../etc/pass wd.png"})) == "pass wd.png"
    assert safe_filename(link.model_copy(update={"filename": None})) == "image-501.png"
    (tmp_path / "paquete.png").write_bytes(b"x")
    assert unique_path(tmp_path, "paquete.png").name == "paquete (2).png"


# Recorded data --------------------------------------------------------------------------------
def test_recorded_part2_wire_matches_the_schemas() -> None:
    data = wire2()
    for item in data["canned"]["responses"]:
        CannedResponsePublic.model_validate(item)
    for item in data["customers"].values():
        CustomerPublic.model_validate(item)
    for item in data["contexts"].values():
        CustomerContext.model_validate(item)
    for links in data["links"].values():
        [LinkPublic.model_validate(link) for link in links]
    for suggestions in data["suggestions"].values():
        [LinkSuggestion.model_validate(s) for s in suggestions]
    for item in data["templates"]:
        TemplatePublic.model_validate(item)
    for item in data["sla_policies"]:
        SlaPolicyPublic.model_validate(item)
    for reports in data["sla_reports"].values():
        [SlaReport.model_validate(r) for r in reports]
    NotificationList.model_validate(data["notifications"])
    for messages in data["messages"].values():
        [MessagePublic.model_validate(m) for m in messages]
    for item in data["media"].values():
        MediaLink.model_validate(item)
    assert NOW - timedelta(days=7) < datetime.fromisoformat(
        data["notifications"]["notifications"][0]["created_at"]
    )
