"""``max routing``, ``max skills``, ``max users set-capacity`` and ``max rate-limits``."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

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
    from max_server.models import CustomerBlock

    _, admin = people.user("admin")
    customer = factories.customer(db, "Spammer")
    with db.session() as session:
        session.add(
            CustomerBlock(
                customer_id=customer.id,
                kind="messages",
                reason="more than 20 messages in a minute",  # type: ignore[arg-type]
                starts_at=clock.now(),  # type: ignore[attr-defined]
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


def test_rules_skills_and_blocks_are_paginated_and_the_cli_follows_every_page(
    max_cli: Max, live: LiveServer, db: Database, people: People, clock: object
) -> None:
    """DESIGN §7: ``cursor``/``limit`` (default 50, at most 500) and ``next_cursor``; the CLI
    lists everything, past the 200 it asks for at a time."""
    import httpx

    from max_server.models import AgentSkill, CustomerBlock, RoutingRule
    from tests.conftest import bearer

    admin_user, admin = people.user("admin")
    ana, _ = people.user("agent", "Ana")
    many = 205
    customer = factories.customer(db, "Spammer")
    now = clock.now()  # type: ignore[attr-defined]
    with db.session() as session:
        for n in range(many):
            session.add(RoutingRule(position=n + 1, name=f"rule {n}", pattern=f"palabra{n}"))
            session.add(AgentSkill(user_id=ana.id, skill=f"skill{n:03d}", proficiency=3))
            session.add(
                CustomerBlock(
                    customer_id=customer.id,  # type: ignore[arg-type]
                    kind="messages",
                    starts_at=now,
                    until=now + timedelta(minutes=10 + n),
                )
            )
        session.commit()

    def walk(path: str, key: str, field: str, **params: Any) -> list[Any]:
        found, cursor = [], None
        while True:
            page = httpx.get(
                live.url + path, params={**params, "limit": 60, "cursor": cursor}, headers=bearer(admin)
            ).json()
            assert len(page[key]) <= 60
            found += [item[field] for item in page[key]]
            cursor = page["next_cursor"]
            if cursor is None:
                return found

    assert walk("/api/v1/routing/rules", "rules", "position") == list(range(1, many + 1))
    assert walk("/api/v1/skills", "skills", "skill", user=str(ana.id)) == [
        f"skill{n:03d}" for n in range(many)
    ]
    blocks = walk("/api/v1/rate-limits/blocks", "blocks", "id")
    assert len(blocks) == many == len(set(blocks)) and blocks == sorted(blocks, key=int, reverse=True)
    first = httpx.get(live.url + "/api/v1/skills", headers=bearer(admin)).json()
    assert len(first["skills"]) == 50 and first["next_cursor"]  # the default page
    bad = httpx.get(live.url + "/api/v1/rate-limits/blocks?cursor=nonsense", headers=bearer(admin))
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_cursor")
    from max_server.services.pagination import encode_cursor

    not_a_skill_cursor = httpx.get(
        live.url + "/api/v1/skills", params={"cursor": encode_cursor(id=3)}, headers=bearer(admin)
    )
    assert (not_a_skill_cursor.status_code, not_a_skill_cursor.json()["error"]["code"]) == (
        400,
        "invalid_cursor",
    )
    too_many = httpx.get(live.url + "/api/v1/routing/rules?limit=501", headers=bearer(admin))
    assert too_many.status_code == 422

    env = {"MAX_URL": live.url, "MAX_TOKEN": admin}
    assert len(max_cli.json("routing", "rules", "list", env=env)["rules"]) == many
    assert len(max_cli.json("skills", "list", ana.email, env=env)["skills"]) == many
    listed = max_cli.json("rate-limits", "blocks", env=env)
    assert len(listed["blocks"]) == many and listed["next_cursor"] is None
    _ = admin_user


def test_explain_shows_why_a_conversation_waits(
    max_cli: Max, live: LiveServer, db: Database, people: People, clock: object
) -> None:
    _, admin = people.user("admin")
    team = people.team("support")
    conversation = factories.conversation(db, team=team, required_skills=[{"skill": "vip", "min": 2}])
    with db.session() as session:
        routing.assign_queue(session, team.id, clock.now(), 120)  # type: ignore[attr-defined]
        session.commit()
    env = {"MAX_URL": live.url, "MAX_TOKEN": admin}
    explained = max_cli.json("routing", "explain", str(conversation.id), env=env)
    with db.session(write=False) as session:
        stored = session.exec(
            select(RoutingDecision).where(RoutingDecision.conversation_id == conversation.id)
        ).one()
    [decision] = explained["decisions"]
    assert (decision["id"], decision["strategy"], decision["reason"]) == (
        str(stored.id),
        "waiting_for_skills",
        "no online agent has all the required skills",
    )
    assert (
        "waiting_for_skills: no online agent has all"
        in max_cli("routing", "explain", str(conversation.id), env=env).stdout
    )
