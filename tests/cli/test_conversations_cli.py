"""``max conversations`` and ``max channels`` against a live server."""

from __future__ import annotations

import json

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
    error = json.loads(again.stderr)["error"]
    assert error["code"] == "channel_exists" and "max channels update 106540352242922" in error["message"]
    listed = max_cli.json("channels", "list", env=env)
    assert [c["external_id"] for c in listed["channels"]] == ["106540352242922"]
    cleared = max_cli.json("channels", "set-default-team", "106540352242922", "none", env=env)
    assert cleared["default_team"] is None
    assert max_cli.json("channels", "show", added["id"], env=env)["display_number"] == "+1 555 078 3881"


def test_a_number_added_from_a_webhook_is_completed_with_update(
    max_cli: Max, live: LiveServer, people: People, db: Database
) -> None:
    from max_server.services import channels

    _, admin = people.user("admin")
    env = {"MAX_URL": live.url, "MAX_TOKEN": admin}
    with db.session() as session:  # what the first webhook for an unconfigured number does
        channels.upsert(session, "whatsapp", "106540352242922", name="15550783881")
        session.commit()
    updated = max_cli.json(
        "channels", "update", "106540352242922", "--waba-id", "1234567890", "--name", "Ventas", env=env
    )
    assert (updated["waba_id"], updated["name"], updated["display_number"]) == ("1234567890", "Ventas", None)
    human = max_cli("channels", "list", env=env)
    assert human.exit_code == 0 and "Ventas" in human.stdout
    missing = max_cli("channels", "update", "999", "--name", "x", "--json", env=env)
    assert missing.exit_code == 3


def test_an_invalid_assignee_filter_is_an_error(max_cli: Max, live: LiveServer, people: People) -> None:
    _, admin = people.user("admin")
    result = max_cli(
        "conversations", "list", "--assignee", "bob", "--json", env={"MAX_URL": live.url, "MAX_TOKEN": admin}
    )
    assert result.exit_code == 2  # a usage error: the server refused the value with 422
    assert json.loads(result.stderr)["error"]["code"] == "invalid_assignee"
