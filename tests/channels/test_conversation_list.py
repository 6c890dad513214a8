"""GET /api/v1/conversations: the team, channel and assignee filters, visibility, and cursor
pagination over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from max_server.db import Database
from tests.conftest import People, bearer
from tests.support import factories
from tests.support.live import LiveServer


@pytest.fixture
def desk(people: People, db: Database) -> dict[str, Any]:
    support, sales = people.team("support"), people.team("sales")
    ana, ana_token = people.user("agent", "Ana")
    beto, beto_token = people.user("agent", "Beto")
    _, admin = people.user("admin")
    people.join(support, ana)
    people.join(sales, beto)
    whatsapp = factories.channel_account(db, "whatsapp", "100200300")
    chat_app = factories.channel_account(db, "chat_app", "default")
    rows = {
        "support_queued": factories.conversation(db, team=support, account=whatsapp),
        "support_ana": factories.conversation(db, team=support, assignee=ana, account=whatsapp),
        "support_chat": factories.conversation(db, team=support, account=chat_app),
        "sales_beto": factories.conversation(db, team=sales, assignee=beto, account=chat_app),
        "sales_closed": factories.conversation(db, team=sales, status="closed", account=whatsapp),
        "no_team": factories.conversation(db, account=whatsapp),
    }
    return {
        "ids": {name: str(row.id) for name, row in rows.items()},
        "ana": ana,
        "ana_token": ana_token,
        "beto": beto,
        "beto_token": beto_token,
        "admin": admin,
    }


def listed(live: LiveServer, token: str, **params: Any) -> list[str]:
    response = httpx.get(live.url + "/api/v1/conversations", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["conversations"]]


def names(desk: dict[str, Any], *keys: str) -> list[str]:
    """Ids of the named conversations, newest first (the list's order)."""
    return sorted((desk["ids"][k] for k in keys), key=int, reverse=True)


def test_filters_by_team_channel_and_assignee(live: LiveServer, desk: dict[str, Any]) -> None:
    admin, ana = desk["admin"], desk["ana_token"]
    assert listed(live, admin) == names(
        desk, "support_queued", "support_ana", "support_chat", "sales_beto", "no_team"
    )
    assert listed(live, admin, team="support") == names(desk, "support_queued", "support_ana", "support_chat")
    assert listed(live, admin, team="sales", status="all") == names(desk, "sales_beto", "sales_closed")
    assert listed(live, admin, channel="chat_app") == names(desk, "support_chat", "sales_beto")
    assert listed(live, admin, channel="whatsapp", team="support") == names(
        desk, "support_queued", "support_ana"
    )
    assert listed(live, admin, assignee=str(desk["beto"].id)) == names(desk, "sales_beto")
    assert listed(live, admin, assignee="none", team="support") == names(
        desk, "support_queued", "support_chat"
    )
    assert listed(live, ana, assignee="me") == names(desk, "support_ana")
    assert listed(live, ana, status="queued") == names(desk, "support_queued", "support_chat")
    # Ana sees only her team: a filter never widens what she may see.
    assert listed(live, ana, team="sales") == []
    assert listed(live, ana, assignee=str(desk["beto"].id)) == []


@pytest.mark.parametrize("value", ["bob", "-1", "1.5", "²"])
def test_an_invalid_assignee_is_refused_not_ignored(
    live: LiveServer, desk: dict[str, Any], value: str
) -> None:
    response = httpx.get(
        live.url + "/api/v1/conversations", params={"assignee": value}, headers=bearer(desk["admin"])
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_assignee"


def test_an_unknown_team_is_not_found(live: LiveServer, desk: dict[str, Any]) -> None:
    response = httpx.get(
        live.url + "/api/v1/conversations", params={"team": "nope"}, headers=bearer(desk["admin"])
    )
    assert response.status_code == 404


def test_cursor_pagination_visits_each_conversation_once(
    live: LiveServer, desk: dict[str, Any], db: Database
) -> None:
    everyone = listed(live, desk["admin"], status="all")
    assert len(everyone) == 6
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"status": "all", "limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(
            live.url + "/api/v1/conversations", params=params, headers=bearer(desk["admin"])
        ).json()
        seen += [c["id"] for c in page["conversations"]]
        cursor = page["next_cursor"]
        if len(seen) == 4:
            assert cursor is not None
            # A conversation opened meanwhile does not shift the pages already promised.
            factories.conversation(db)
        if not cursor:
            break
    assert seen == everyone
    bad = httpx.get(
        live.url + "/api/v1/conversations", params={"cursor": "not-a-cursor"}, headers=bearer(desk["admin"])
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_cursor")
