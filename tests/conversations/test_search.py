"""``GET /api/v1/conversations?q=``: the customer (name, email, phone in any written form, a
channel identity), ``#number``, the subject and recent message text, case-insensitive, paginated,
and never a conversation the caller may not see; ``max conversations list --search``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.models import CustomerIdentity
from max_server.services import conversation_search
from tests.cli.conftest import Max, home, max_cli  # noqa: F401  (fixtures)
from tests.conftest import People, bearer
from tests.support import factories
from tests.support.live import LiveServer

LIST = "/api/v1/conversations"


def identity(db: Database, customer: Any, channel: str, external_id: str) -> None:
    with db.session() as session:
        session.add(CustomerIdentity(customer_id=customer.id, channel=channel, external_id=external_id))
        session.commit()


@pytest.fixture
def world(db: Database, people: People, clock: FrozenClock) -> dict[str, Any]:
    support, secret = people.team("support"), people.team("secret")
    ana, ana_token = people.user("agent", "Ana")
    _, admin_token = people.user("admin", "Ada")
    people.join(support, ana)
    juan = factories.customer(db, "Juan Lopez", email="juan@example.com", phone_e164="+5215512345678")
    identity(db, juan, "whatsapp", "5215512345678")
    maria = factories.customer(db, "María Fernández")
    identity(db, maria, "chat_app", "chat_user_42")
    hidden_customer = factories.customer(db, "Juan Oculto", email="oculto@example.com")
    juans = factories.conversation(db, team=support, customer_row=juan, subject="Pedido 123")
    factories.message(db, juans, "¿Dónde está mi PAQUETE?")
    marias = factories.conversation(db, team=support, customer_row=maria)
    factories.message(db, marias, "gracias por todo")
    closed = factories.conversation(
        db, team=support, customer_row=maria, status="closed", subject="Factura vieja"
    )
    hidden = factories.conversation(db, team=secret, customer_row=hidden_customer, subject="Pedido 123")
    factories.message(db, hidden, "mi paquete no llega, Juan")
    return {
        "support": support,
        "agent": bearer(ana_token),
        "admin": bearer(admin_token),
        "juans": juans,
        "marias": marias,
        "closed": closed,
        "hidden": hidden,
    }


def numbers(api: TestClient, headers: dict[str, str], q: str, **params: Any) -> list[int]:
    response = api.get(LIST, params={"q": q, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return [c["number"] for c in response.json()["conversations"]]


def test_search_matches_customer_number_subject_and_message_text(
    api: TestClient, world: dict[str, Any]
) -> None:
    agent = world["agent"]
    juans, marias, closed = world["juans"].number, world["marias"].number, world["closed"].number
    assert numbers(api, agent, "JUAN") == [juans]  # the hidden team's Juan never matches
    assert numbers(api, agent, "juan@EXAMPLE") == [juans]
    for phone in ("55 1234 5678", "+52 1 55 1234 5678", "525512345678", "5215512345678"):
        assert numbers(api, agent, phone) == [juans], phone
    assert numbers(api, agent, "CHAT_USER_42") == [marias]  # a channel identity; `_` is literal
    assert numbers(api, agent, "chat%user") == []  # `%` is literal too
    assert numbers(api, agent, f"#{marias}") == [marias]  # `#n`: the number only
    assert numbers(api, agent, f"# {marias}") == [marias]
    assert numbers(api, agent, "#99999999999999999999") == []
    assert marias in numbers(api, agent, str(marias))  # a bare number may also be in a phone
    assert numbers(api, agent, "pedido 123") == [juans]  # the subject (not the hidden one's)
    assert numbers(api, agent, "paquete") == [juans]  # message text, any case
    assert numbers(api, agent, "  gracias POR  ") == [marias]  # trimmed
    assert numbers(api, agent, "factura vieja") == []  # closed: not in the default (open) list
    assert numbers(api, agent, "factura vieja", status="all") == [closed]
    assert numbers(api, agent, "maría", status="all") == [closed, marias]  # newest first
    assert numbers(api, agent, "nadie dijo esto") == []
    assert numbers(api, agent, "") == [marias, juans]  # no query: the ordinary list
    # Admins see every team: the hidden conversation matches for them.
    hidden = world["hidden"].number
    assert numbers(api, world["admin"], "juan") == [hidden, juans]
    assert numbers(api, world["admin"], "paquete") == [hidden, juans]


def test_search_results_are_paginated(api: TestClient, world: dict[str, Any], db: Database) -> None:
    customer = factories.customer(db, "Cliente Repetido")
    made = [
        factories.conversation(db, team=world["support"], customer_row=customer, status="closed")
        for _ in range(5)
    ]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"q": "repetido", "status": "all", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = api.get(LIST, params=params, headers=world["agent"]).json()
        assert len(page["conversations"]) <= 2
        seen += [c["number"] for c in page["conversations"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted((c.number for c in made), reverse=True)


def test_bad_queries_get_a_clear_error(api: TestClient, world: dict[str, Any]) -> None:
    for q in ("x" * (conversation_search.MAX_QUERY + 1), "a\x00b"):
        response = api.get(LIST, params={"q": q}, headers=world["agent"])
        assert response.status_code == 422, response.text
        assert set(response.json()["error"]) == {"code", "message", "details"}


def test_message_text_is_searched_among_the_newest_messages_only(
    api: TestClient, world: dict[str, Any], db: Database, monkeypatch: pytest.MonkeyPatch, clock: FrozenClock
) -> None:
    """The bound that keeps the search cheap on a large archive: text beyond the newest
    ``MESSAGE_WINDOW`` messages is not searched (the customer and subject still are)."""
    monkeypatch.setattr(conversation_search, "MESSAGE_WINDOW", 2)
    clock.advance(timedelta(minutes=1))
    for text in ("uno", "dos", "tres"):
        factories.message(db, world["marias"], text)
    agent = world["agent"]
    assert numbers(api, agent, "tres") == [world["marias"].number]
    assert numbers(api, agent, "paquete") == []  # Juan's message is older than the window
    assert numbers(api, agent, "juan") == [world["juans"].number]


def test_the_cli_searches(max_cli: Max, live: LiveServer, world: dict[str, Any]) -> None:  # noqa: F811
    token = world["agent"]["Authorization"].removeprefix("Bearer ")
    env = {"MAX_URL": live.url, "MAX_TOKEN": token}
    found = max_cli.json("conversations", "list", "--search", "paquete", env=env)
    assert [c["number"] for c in found["conversations"]] == [world["juans"].number]
    shown = max_cli("conversations", "list", "--search", "#" + str(world["marias"].number), env=env)
    assert shown.exit_code == 0 and "María Fernández" in shown.stdout
    assert max_cli.json("conversations", "list", "--search", "juan oculto", env=env)["conversations"] == []
