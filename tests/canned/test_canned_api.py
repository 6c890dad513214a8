"""Canned responses over the API: scopes and who may change them, the shortcut rule, which one
wins, search order, the ETag, rendering, and counting uses."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlmodel import select

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.models import CannedResponse, Message
from tests.conftest import People, bearer
from tests.support import factories
from tests.support.live import LiveServer

PATH = "/api/v1/canned-responses"


class Desk:
    """A support team with an admin, a supervisor and two agents (one outside the team)."""

    def __init__(self, api: TestClient, people: People) -> None:
        self.api = api
        self.team = people.team("support", name="Soporte")
        self.other_team = people.team("sales")
        _, self.admin = people.user("admin", "Ada Admin")
        supervisor, self.supervisor = people.user("agent", "Sara Supervisora")
        agent, self.agent = people.user("agent", "Ana García")
        self.agent_id = agent.id
        _, self.outsider = people.user("agent", "Otto")
        people.join(self.team, supervisor, "supervisor")
        people.join(self.team, agent)

    def add(self, token: str, **body: Any) -> httpx.Response:
        body.setdefault("title", "T")
        body.setdefault("content", "C")
        return self.api.post(PATH, json=body, headers=bearer(token))  # type: ignore[return-value]

    def listed(self, token: str, **params: str) -> list[dict[str, Any]]:
        response = self.api.get(PATH, params=params, headers=bearer(token))
        assert response.status_code == 200, response.text
        return response.json()["responses"]


def test_scopes_decide_who_adds_and_who_sees(api: TestClient, people: People) -> None:
    desk = Desk(api, people)
    assert desk.add(desk.admin, shortcut="/hola").status_code == 201
    refused = desk.add(desk.agent, shortcut="/global-try")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "not_allowed")
    assert desk.add(desk.agent, shortcut="/team-try", team_id=str(desk.team.id)).status_code == 403
    made = desk.add(desk.supervisor, shortcut="/precios", team_id="support", category="ventas")
    assert made.status_code == 201
    assert (made.json()["scope"], made.json()["team"]["slug"]) == ("team", "support")
    assert desk.add(desk.supervisor, shortcut="/otro", team_id="sales").status_code == 403  # not theirs
    assert desk.add(desk.admin, shortcut="/ventas", team_id="sales").status_code == 201
    mine = desk.add(desk.agent, shortcut="/mio", personal=True)
    assert (mine.status_code, mine.json()["scope"], mine.json()["owner_id"]) == (
        201,
        "personal",
        str(desk.agent_id),
    )

    assert {r["shortcut"] for r in desk.listed(desk.agent)} == {"/hola", "/precios", "/mio"}
    assert {r["shortcut"] for r in desk.listed(desk.outsider)} == {"/hola"}
    # Admins see every team's responses, but nobody else's personal ones.
    assert {r["shortcut"] for r in desk.listed(desk.admin)} == {"/hola", "/precios", "/ventas"}

    personal_id = mine.json()["id"]
    assert api.get(f"{PATH}/{personal_id}", headers=bearer(desk.outsider)).status_code == 404
    assert (
        api.patch(f"{PATH}/{personal_id}", json={"title": "x"}, headers=bearer(desk.admin)).status_code == 404
    )
    team_id = made.json()["id"]
    assert api.patch(f"{PATH}/{team_id}", json={"title": "x"}, headers=bearer(desk.agent)).status_code == 403
    edited = api.patch(f"{PATH}/{team_id}", json={"title": "Precios 2027"}, headers=bearer(desk.supervisor))
    assert (edited.status_code, edited.json()["title"]) == (200, "Precios 2027")
    assert api.delete(f"{PATH}/{team_id}", headers=bearer(desk.agent)).status_code == 403
    assert api.delete(f"{PATH}/{team_id}", headers=bearer(desk.supervisor)).status_code == 204
    assert api.get(f"{PATH}/{team_id}", headers=bearer(desk.supervisor)).status_code == 404


def test_the_shortcut_rule_and_uniqueness_within_a_scope(api: TestClient, people: People) -> None:
    desk = Desk(api, people)
    for bad in ("/Hola", "/con espacio", "/", "/ñandú", "/a.b", "/" + "x" * 64):
        response = desk.add(desk.admin, shortcut=bad)
        assert response.status_code == 422, bad
    assert desk.add(desk.admin, shortcut="gracias").json()["shortcut"] == "/gracias"  # the / is added
    assert desk.add(desk.admin, shortcut="/a_b-9").status_code == 201
    again = desk.add(desk.admin, shortcut="/gracias")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "shortcut_exists")
    # The same shortcut may exist once per scope: a team's, and each person's own.
    assert desk.add(desk.supervisor, shortcut="/gracias", team_id="support").status_code == 201
    assert desk.add(desk.admin, shortcut="/gracias", team_id="sales").status_code == 201
    assert desk.add(desk.agent, shortcut="/gracias", personal=True).status_code == 201
    assert desk.add(desk.outsider, shortcut="/gracias", personal=True).status_code == 201
    assert desk.add(desk.agent, shortcut="/gracias", personal=True).status_code == 409
    # Renaming into a taken shortcut is refused the same way.
    other = desk.add(desk.admin, shortcut="/adios").json()
    renamed = api.patch(f"{PATH}/{other['id']}", json={"shortcut": "/gracias"}, headers=bearer(desk.admin))
    assert (renamed.status_code, renamed.json()["error"]["code"]) == (409, "shortcut_exists")
    bad_template = desk.add(desk.admin, shortcut="/roto", content="Hola {{customer_name")
    assert (bad_template.status_code, bad_template.json()["error"]["code"]) == (422, "invalid_template")


def test_personal_beats_team_beats_global(api: TestClient, people: People) -> None:
    desk = Desk(api, people)
    desk.add(desk.admin, shortcut="/hola", content="global")
    desk.add(desk.supervisor, shortcut="/hola", content="team", team_id="support")
    desk.add(desk.admin, shortcut="/solo-global", content="g")
    desk.add(desk.supervisor, shortcut="/equipo", content="t1", team_id="support")
    desk.add(desk.admin, shortcut="/equipo", content="g1")

    def winners(token: str) -> dict[str, str]:
        return {r["shortcut"]: r["content"] for r in desk.listed(token) if r["effective"]}

    assert winners(desk.agent) == {"/hola": "team", "/solo-global": "g", "/equipo": "t1"}
    desk.add(desk.agent, shortcut="/hola", content="mine", personal=True)
    assert winners(desk.agent)["/hola"] == "mine"
    listed = [r for r in desk.listed(desk.agent) if r["shortcut"] == "/hola"]
    assert [(r["scope"], r["effective"]) for r in listed] == [
        ("personal", True),
        ("team", False),
        ("global", False),
    ]
    assert winners(desk.outsider) == {"/hola": "global", "/solo-global": "g", "/equipo": "g1"}


def test_search_order_is_prefix_then_contains_then_title_or_content(api: TestClient, people: People) -> None:
    desk = Desk(api, people)
    desk.add(desk.admin, shortcut="/envio-gratis", title="Envíos", content="Gratis desde $500")
    desk.add(desk.admin, shortcut="/pedido", title="Estado", content="Tu pedido {{order_id}} va en camino")
    desk.add(desk.admin, shortcut="/mi-pedido", title="Mi pedido", content="…")
    desk.add(desk.admin, shortcut="/precios", title="Precios", content="Planes desde $99")
    found = [r["shortcut"] for r in desk.listed(desk.agent, q="pedido")]
    assert found == ["/pedido", "/mi-pedido"]
    found = [r["shortcut"] for r in desk.listed(desk.agent, q="/p")]
    assert found == ["/pedido", "/precios", "/mi-pedido"]  # prefix, then contains
    found = [r["shortcut"] for r in desk.listed(desk.agent, q="e")]
    assert found == ["/envio-gratis", "/mi-pedido", "/pedido", "/precios"]
    found = [r["shortcut"] for r in desk.listed(desk.agent, q="estado")]
    assert found == ["/pedido"]  # title only
    found = [r["shortcut"] for r in desk.listed(desk.agent, q="camino")]
    assert found == ["/pedido"]  # content only
    assert [r["shortcut"] for r in desk.listed(desk.agent, q="GRATIS")] == ["/envio-gratis"]
    pedido = next(r for r in desk.listed(desk.agent) if r["shortcut"] == "/pedido")
    assert pedido["variables"] == ["order_id"]


def test_the_list_has_an_etag_and_answers_304_until_something_changes(
    api: TestClient, people: People
) -> None:
    desk = Desk(api, people)
    made = desk.add(desk.admin, shortcut="/hola").json()
    first = api.get(PATH, headers=bearer(desk.agent))
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    same = api.get(PATH, headers={**bearer(desk.agent), "If-None-Match": etag})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
    # Someone who sees more gets another list, so another tag.
    desk.add(desk.supervisor, shortcut="/equipo", team_id="support")
    assert api.get(PATH, headers=bearer(desk.outsider)).headers["etag"] == etag
    assert api.get(PATH, headers=bearer(desk.agent)).headers["etag"] != etag
    etag = api.get(PATH, headers=bearer(desk.agent)).headers["etag"]
    api.post(f"{PATH}/{made['id']}/used", headers=bearer(desk.agent))
    changed = api.get(PATH, headers={**bearer(desk.agent), "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    [hola] = [r for r in changed.json()["responses"] if r["shortcut"] == "/hola"]
    assert hola["usage_count"] == 1


def test_render_fills_context_and_names_missing_variables(
    api: TestClient, db: Database, people: People
) -> None:
    desk = Desk(api, people)
    customer = factories.customer(db, "Juan López", email="juan@example.com", phone_e164="+5215512345678")
    conversation = factories.conversation(db, team=desk.team, customer_row=customer)
    content = (
        "Hola {{customer_first_name}}, soy {{agent_first_name}} de {{team_name}}. "
        "Tu pedido {{order_id}} ({{tracking|sin guía}}) — caso #{{conversation_number}}, {{customer_email}}."
    )
    made = desk.add(desk.admin, shortcut="/pedido", content=content).json()
    url = f"{PATH}/{made['id']}/render"

    missing = api.post(url, json={"conversation_id": str(conversation.id)}, headers=bearer(desk.agent))
    assert missing.status_code == 422
    error = missing.json()["error"]
    assert error["code"] == "missing_variables"
    assert error["details"] == {"missing": ["order_id"]}
    assert "order_id" in error["message"]

    body = {"conversation_id": str(conversation.id), "variables": {"order_id": "ORD-123"}}
    rendered = api.post(url, json=body, headers=bearer(desk.agent))
    assert rendered.status_code == 200, rendered.text
    assert rendered.json()["text"] == (
        f"Hola Juan, soy Ana de Soporte. Tu pedido ORD-123 (sin guía) — caso #{conversation.number}, "
        "juan@example.com."
    )
    assert rendered.json()["variables"]["tracking"] == "sin guía"
    # Without a conversation the customer's variables are missing too, all named.
    alone = api.post(url, json={"variables": {"order_id": "1"}}, headers=bearer(desk.agent)).json()
    assert alone["error"]["details"]["missing"] == [
        "customer_first_name",
        "team_name",
        "conversation_number",
        "customer_email",
    ]
    # A conversation the agent may not see is not a way to read customers.
    hidden = factories.conversation(db, team=desk.other_team, customer_row=factories.customer(db, "Eva"))
    denied = api.post(url, json={"conversation_id": str(hidden.id)}, headers=bearer(desk.agent))
    assert denied.status_code == 404


def test_values_never_carry_braces_to_the_customer(api: TestClient, db: Database, people: People) -> None:
    desk = Desk(api, people)
    # The customer chose this profile name on WhatsApp: it is inserted without its braces.
    customer = factories.customer(db, "{{order_id}} }}{{agent_name}}")
    conversation = factories.conversation(db, team=desk.team, customer_row=customer)
    made = desk.add(
        desk.admin, shortcut="/hola", content="Hola {{customer_name}}, pedido {{order_id}}."
    ).json()
    url = f"{PATH}/{made['id']}/render"
    body: dict[str, Any] = {"conversation_id": str(conversation.id), "variables": {"order_id": "A-1"}}
    rendered = api.post(url, json=body, headers=bearer(desk.agent))
    assert rendered.status_code == 200, rendered.text
    assert rendered.json()["text"] == "Hola order_id agent_name, pedido A-1."
    assert rendered.json()["variables"]["customer_name"] == "order_id agent_name"

    # What the agent types is refused, not silently changed, on render and on send alike.
    body["variables"] = {"order_id": "{{customer_email}}", "customer_name": "Juan}}"}
    for action in ("render", "send"):
        refused = api.post(f"{PATH}/{made['id']}/{action}", json=body, headers=bearer(desk.agent))
        assert refused.status_code == 422, action
        error = refused.json()["error"]
        assert (error["code"], error["details"]) == (
            "invalid_variable_value",
            {"variables": ["order_id", "customer_name"]},
        )
    with db.session(write=False) as session:
        assert session.get(CannedResponse, int(made["id"])).usage_count == 0  # type: ignore[union-attr]
        sent = session.exec(select(Message).where(Message.direction == "outbound")).all()
        assert sent == []


def test_uses_are_counted_atomically_under_concurrency(live: LiveServer, people: People) -> None:
    team = people.team("support")
    _, admin = people.user("admin")
    agent, token = people.user("agent")
    people.join(team, agent)
    made = httpx.post(
        live.url + PATH, json={"shortcut": "/hola", "title": "t", "content": "c"}, headers=bearer(admin)
    ).json()
    barrier = threading.Barrier(12)
    codes: list[int] = []

    def use() -> None:
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            codes.append(
                client.post(f"{live.url}{PATH}/{made['id']}/used", headers=bearer(token)).status_code
            )

    threads = [threading.Thread(target=use) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert codes == [200] * 12
    shown = httpx.get(f"{live.url}{PATH}/{made['id']}", headers=bearer(token)).json()
    assert shown["usage_count"] == 12


def test_sending_renders_replies_and_counts_in_one_transaction(
    api: TestClient, db: Database, people: People, clock: FrozenClock
) -> None:
    desk = Desk(api, people)
    conversation = factories.conversation(db, team=desk.team)
    made = desk.add(
        desk.admin,
        shortcut="/listo",
        content="{{customer_first_name|Hola}}, tu pedido {{order_id}} está listo.",
    )
    response_id = made.json()["id"]
    url = f"{PATH}/{response_id}/send"
    missing = api.post(url, json={"conversation_id": str(conversation.id)}, headers=bearer(desk.agent))
    assert missing.status_code == 422
    body = {"conversation_id": str(conversation.id), "variables": {"order_id": "ORD-7"}}
    sent = api.post(url, json=body, headers=bearer(desk.agent))
    assert sent.status_code == 201, sent.text
    assert (sent.json()["content_text"], sent.json()["sender_type"]) == (
        "Juan, tu pedido ORD-7 está listo.",
        "agent",
    )
    with db.session(write=False) as session:
        assert session.get(CannedResponse, int(response_id)).usage_count == 1  # type: ignore[union-attr]
        stored = session.exec(select(Message).where(Message.conversation_id == conversation.id)).all()
        assert [m.content_text for m in stored if m.direction == "outbound"] == [
            "Juan, tu pedido ORD-7 está listo."
        ]
    # WhatsApp's window closes: the send is refused and nothing is counted.
    clock.advance(timedelta(hours=25))
    refused = api.post(url, json=body, headers=bearer(desk.agent))
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "whatsapp_window_closed")
    with db.session(write=False) as session:
        assert session.get(CannedResponse, int(response_id)).usage_count == 1  # type: ignore[union-attr]
