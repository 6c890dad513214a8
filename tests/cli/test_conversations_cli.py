"""``max conversations`` and ``max channels`` against a live server."""

from __future__ import annotations

from max_server.db import Database
from tests.cli.conftest import Max
from tests.conftest import People
from tests.support import factories
from tests.support.live import LiveServer


def test_conversation_commands(max_cli: Max, live: LiveServer, db: Database, people: People) -> None:
    team = people.team("support")
    people.team("sales")
    ana, token = people.user("agent", "Ana")
    _, admin = people.user("admin")
    people.join(team, ana)
    conversation = factories.conversation(db, team=team, subject="Pedido 123")
    factories.message(db, conversation, "¿dónde está mi pedido?")
    env = {"MAX_URL": live.url, "MAX_TOKEN": token}
    listed = max_cli.json("conversations", "list", env=env)
    assert [c["number"] for c in listed["conversations"]] == [conversation.number]
    shown = max_cli.json("conversations", "show", str(conversation.id), env=env)
    assert [m["content_text"] for m in shown["messages"]] == ["¿dónde está mi pedido?"]
    human = max_cli("conversations", "show", str(conversation.id), env=env)
    assert "¿dónde está mi pedido?" in human.stdout
    assert (
        max_cli.json("conversations", "assign", str(conversation.id), "me", env=env)["assignee"]["name"]
        == "Ana"
    )
    assert (
        max_cli.json("conversations", "priority", str(conversation.id), "high", env=env)["priority"] == "high"
    )
    closed = max_cli.json("conversations", "close", str(conversation.id), "--reason", "resolved", env=env)
    assert (closed["status"], closed["close_reason"]) == ("closed", "resolved")
    assert max_cli.json("conversations", "list", env=env)["conversations"] == []
    assert max_cli.json("conversations", "reopen", str(conversation.id), env=env)["cycle"] == 2
    moved = max_cli.json("conversations", "transfer", str(conversation.id), "sales", env=env)
    assert moved["team"]["slug"] == "sales"
    hidden = max_cli("conversations", "show", str(conversation.id), "--json", env=env)
    assert hidden.exit_code == 3  # Ana is not in sales
    assert (
        max_cli.json("conversations", "show", str(conversation.id), env={**env, "MAX_TOKEN": admin})["team"][
            "slug"
        ]
        == "sales"
    )


def test_channel_commands(max_cli: Max, live: LiveServer, people: People) -> None:
    _, admin = people.user("admin")
    people.team("sales")
    env = {"MAX_URL": live.url, "MAX_TOKEN": admin}
    added = max_cli.json(
        "channels",
        "add-whatsapp",
        "--phone-number-id",
        "106540352242922",
        "--display-number",
        "+1 555 078 3881",
        "--default-team",
        "sales",
        env=env,
    )
    assert (added["kind"], added["default_team"]["slug"]) == ("whatsapp", "sales")
    again = max_cli("channels", "add-whatsapp", "--phone-number-id", "106540352242922", "--json", env=env)
    assert again.exit_code == 1
    listed = max_cli.json("channels", "list", env=env)
    assert [c["external_id"] for c in listed["channels"]] == ["106540352242922"]
    cleared = max_cli.json("channels", "set-default-team", "106540352242922", "none", env=env)
    assert cleared["default_team"] is None
    assert max_cli.json("channels", "show", added["id"], env=env)["display_number"] == "+1 555 078 3881"
