"""``max routing``, ``max skills``, ``max users set-capacity`` and ``max rate-limits``."""

from __future__ import annotations

import json

from sqlmodel import select

from max_server.db import Database
from max_server.models import RoutingDecision
from max_server.services import routing
from tests.cli.conftest import Max
from tests.conftest import People
from tests.support import factories
from tests.support.live import LiveServer


def test_rules_skills_capacity_and_explain(
    max_cli: Max, live: LiveServer, db: Database, people: People, clock: object
) -> None:
    _, admin = people.user("admin")
    team = people.team("billing")
    ana, _ = people.user("agent", "Ana")
    people.join(team, ana)
    env = {"MAX_URL": live.url, "MAX_TOKEN": admin}
    first = max_cli.json(
        "routing",
        "rules",
        "add",
        "Facturas",
        "--keywords",
        "factura,cobro",
        "--team",
        "billing",
        "--priority",
        "high",
        "--skill",
        "spanish=3",
        env=env,
    )
    second = max_cli.json("routing", "rules", "add", "Pedidos", "--regex", r"pedido\s*#?\d+", env=env)
    assert (first["position"], second["position"]) == (1, 2)
    bad = max_cli("routing", "rules", "add", "Roto", "--regex", "(", "--json", env=env)
    assert bad.exit_code == 2 and json.loads(bad.stderr)["error"]["code"] == "invalid_pattern"
    moved = max_cli.json("routing", "rules", "move", second["id"], "1", env=env)
    assert [r["name"] for r in moved["rules"]] == ["Pedidos", "Facturas"]
    tested = max_cli.json("routing", "rules", "test", "no me llegó la Factura", env=env)
    assert tested["matched"] and tested["sets"] == {
        "team": "billing",
        "priority": "high",
        "required_skills": [{"skill": "spanish", "min": 3}],
    }
    assert "No rule matches" in max_cli("routing", "rules", "test", "hola", env=env).stdout
    max_cli.json("routing", "rules", "rm", second["id"], env=env)
    assert [r["name"] for r in max_cli.json("routing", "rules", "list", env=env)["rules"]] == ["Facturas"]

    skills = max_cli.json("skills", "set", ana.email, "spanish=5", "billing=4", env=env)
    assert {(s["skill"], s["proficiency"]) for s in skills["skills"]} == {("spanish", 5), ("billing", 4)}
    max_cli.json("skills", "rm", ana.email, "billing", env=env)
    assert [s["skill"] for s in max_cli.json("skills", "list", ana.email, env=env)["skills"]] == ["spanish"]
    assert max_cli("skills", "set", ana.email, "spanish=9", "--json", env=env).exit_code == 2
    assert max_cli.json("users", "set-capacity", ana.email, "7", env=env)["capacity"] == 7

    conversation = factories.conversation(db, team=team, required_skills=[{"skill": "spanish", "min": 3}])
    from max_server.services import presence

    with db.session() as session:
        presence.set_presence(session, session.get(type(ana), ana.id), "online", clock.now())  # type: ignore[attr-defined]
        routing.assign_queue(session, team.id, clock.now(), 120)  # type: ignore[attr-defined]
        session.commit()
    explained = max_cli.json("routing", "explain", str(conversation.id), env=env)
    with db.session(write=False) as session:
        stored = session.exec(
            select(RoutingDecision).where(RoutingDecision.conversation_id == conversation.id)
        ).one()
    [decision] = explained["decisions"]
    assert decision["id"] == str(stored.id)
    assert (decision["strategy"], decision["winner_id"], decision["reason"]) == (
        "skills",
        str(ana.id),
        stored.reason,
    )
    assert decision["candidates"] == stored.candidates
    assert "Ana" in max_cli("routing", "explain", str(conversation.id), env=env).stdout


def test_rate_limit_blocks(
    max_cli: Max, live: LiveServer, db: Database, people: People, clock: object
) -> None:
    from datetime import timedelta

    from max_server.models import CustomerBlock

    _, admin = people.user("admin")
    customer = factories.customer(db, "Spammer")
    with db.session() as session:
        session.add(
            CustomerBlock(
                customer_id=customer.id,
                kind="messages",
                reason="more than 20 messages in a minute",  # type: ignore[arg-type]
                until=clock.now() + timedelta(minutes=10),
                held_count=3,
            )
        )  # type: ignore[attr-defined]
        session.commit()
    env = {"MAX_URL": live.url, "MAX_TOKEN": admin}
    [block] = max_cli.json("rate-limits", "blocks", env=env)["blocks"]
    assert (block["customer_name"], block["held_count"]) == ("Spammer", 3)
    assert "Spammer" in max_cli("rate-limits", "blocks", env=env).stdout
    assert max_cli.json("rate-limits", "unblock", str(customer.id), env=env) == {"lifted": 1}
    assert max_cli.json("rate-limits", "blocks", env=env)["blocks"] == []
    assert len(max_cli.json("rate-limits", "blocks", "--all", env=env)["blocks"]) == 1
