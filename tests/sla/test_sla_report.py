"""``max sla``: policies and targets from the CLI, and the report against a count done by hand."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from max_server.clock import FrozenClock
from max_server.db import Database
from max_server.jobs.worker import Worker
from tests.channels.conftest import WhatsApp
from tests.cli.conftest import Max
from tests.conftest import People
from tests.sla.desk import Desk
from tests.support.live import LiveServer

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def desk(
    db: Database, live: LiveServer, whatsapp: WhatsApp, worker: Worker, clock: FrozenClock, people: People
) -> Desk:
    return Desk(db=db, live=live, whatsapp=whatsapp, worker=worker, clock=clock, people=people)


def test_policies_and_targets_from_the_cli(max_cli: Max, desk: Desk) -> None:
    admin = {"MAX_URL": desk.live.url, "MAX_TOKEN": desk.admin_token}
    agent = {"MAX_URL": desk.live.url, "MAX_TOKEN": desk.agent_token}
    made = max_cli.json(
        "sla",
        "set",
        "--team",
        "support",
        "--priority",
        "urgent",
        "--frt",
        "3m",
        "--resolution",
        "15m",
        "--escalate-after",
        "10m",
        env=admin,
    )
    assert (made["frt_target_s"], made["resolution_target_s"], made["escalation_after_s"]) == (180, 900, 600)
    max_cli.json(
        "sla",
        "set",
        "--team",
        "support",
        "--priority",
        "normal",
        "--frt",
        "10m",
        "--resolution",
        "1h",
        "--business-hours",
        env=admin,
    )
    listed = max_cli.json("sla", "list", env=agent)["policies"]
    assert [
        (
            p["team"]["slug"],
            p["priority"],
            p["frt_target_s"],
            p["resolution_target_s"],
            p["escalation_after_s"],
            p["business_hours_only"],
        )
        for p in listed
    ] == [("support", "urgent", 180, 900, 600, False), ("support", "normal", 600, 3600, None, True)]
    assert "1h" in max_cli("sla", "list", env=agent).stdout
    refused = max_cli(
        "sla",
        "set",
        "--team",
        "support",
        "--priority",
        "low",
        "--frt",
        "1m",
        "--resolution",
        "1h",
        "--json",
        env=agent,
    )
    assert refused.exit_code == 4
    bad = max_cli(
        "sla",
        "set",
        "--team",
        "support",
        "--priority",
        "low",
        "--frt",
        "soon",
        "--resolution",
        "1h",
        env=admin,
    )
    assert bad.exit_code == 2
    assert (
        max_cli.json("sla", "rm", "--team", "support", "--priority", "normal", env=admin)["deleted"][
            "priority"
        ]
        == "normal"
    )
    assert [
        p["priority"] for p in max_cli.json("sla", "list", "--team", "support", env=admin)["policies"]
    ] == ["urgent"]
    assert max_cli("sla", "rm", "--team", "support", "--priority", "normal", env=admin).exit_code == 3

    targets = max_cli.json(
        "sla", "targets", "--team", "support", "--frt", "95", "--resolution", "90", env=admin
    )
    assert (targets["frt"], targets["resolution"]) == (95.0, 90.0)
    assert (
        max_cli.json("sla", "targets", "--team", "support", "--frt", "97.5", env=admin)["resolution"] == 90.0
    )
    shown = max_cli.json("sla", "targets", "--team", "support", env=agent)
    assert (shown["frt"], shown["resolution"]) == (97.5, 90.0)
    # Reports are for supervisors and admins.
    assert max_cli("sla", "report", "--team", "support", "--json", env=agent).exit_code == 4


def test_the_report_equals_a_count_by_hand(max_cli: Max, desk: Desk, clock: FrozenClock) -> None:
    desk.policy("normal", frt=600, resolution=3600)
    desk.policy("urgent", frt=180, resolution=900, escalate=240)
    admin = {"MAX_URL": desk.live.url, "MAX_TOKEN": desk.admin_token}
    max_cli.json("sla", "targets", "--team", "support", "--frt", "95", "--resolution", "90", env=admin)
    clock.set(T0)
    c1, c2, c3, c4, c5 = (desk.customer_writes(f"52155000000{n}") for n in range(1, 6))
    for urgent in (c3, c4):
        response = desk.api(
            "PATCH", f"/api/v1/conversations/{urgent.id}", desk.supervisor_token, json={"priority": "urgent"}
        )
        assert response.status_code == 200

    # What happens, minute by minute (the monitor runs at 4 and 61).
    script: list[tuple[int, str, Any]] = [
        (1, "reply", c3), (1, "reply", c5), (2, "reply", c1), (4, "monitor", None), (5, "spam", c4),
        (10, "close", c3), (12, "reply", c2), (20, "close", c1), (61, "monitor", None), (70, "close", c2),
    ]  # fmt: skip
    for minute, action, conversation in script:
        clock.set(T0 + timedelta(minutes=minute))
        if action == "reply":
            desk.reply(conversation)
        elif action == "close":
            desk.close(conversation)
        elif action == "spam":
            desk.close(conversation, "spam")
        else:
            desk.run_monitor()
    clock.set(T0 + timedelta(minutes=80))

    # By hand: (conversation, priority, FRT met?, resolution met? — None: not counted).
    hand = [
        (c1, "normal", True, True),  # answered at 2 of 10 minutes, closed at 20 of 60
        (c2, "normal", False, False),  # answered at 12, closed at 70
        (c3, "urgent", True, True),  # answered at 1 of 3, closed at 10 of 15
        (c4, "urgent", False, None),  # unanswered at 3 (escalated at 4), closed as spam at 5
        (c5, "normal", True, False),  # answered at 1, still open at 60
    ]

    def tally(index: int) -> dict[str, Any]:
        counted = Counter((row[1], row[index]) for row in hand if row[index] is not None)
        met, breached = (
            sum(v for (_, m), v in counted.items() if m),
            sum(v for (_, m), v in counted.items() if not m),
        )
        by_priority = {}
        for priority in ("urgent", "normal"):
            pm, pb = counted[(priority, True)], counted[(priority, False)]
            if pm + pb:
                by_priority[priority] = {
                    "met": pm,
                    "breached": pb,
                    "compliance_pct": round(100 * pm / (pm + pb), 2),
                }
        return {
            "met": met,
            "breached": breached,
            "compliance_pct": round(100 * met / (met + breached), 2),
            "by_priority": by_priority,
        }

    report = max_cli.json("sla", "report", "--team", "support", "--days", "7", env=admin)
    assert (
        report == desk.api("GET", "/api/v1/sla/report", desk.admin_token, params={"team": "support"}).json()
    )
    frt, resolution = report["metrics"]["frt"], report["metrics"]["resolution"]
    assert {k: frt[k] for k in ("met", "breached", "compliance_pct", "by_priority")} == tally(2)
    assert {k: resolution[k] for k in ("met", "breached", "compliance_pct", "by_priority")} == tally(3)
    assert (frt["compliance_pct"], frt["target_pct"], frt["meets_target"]) == (60.0, 95.0, False)
    assert (resolution["compliance_pct"], resolution["target_pct"]) == (50.0, 90.0)
    seen = {
        (v["conversation_number"], v["kind"], v["target_s"], v["actual_s"], v["escalated"])
        for v in report["violations"]
    }
    assert seen == {
        (c2.number, "frt", 600, 720, False),
        (c2.number, "resolution", 3600, 4200, False),
        (c4.number, "frt", 180, 300, True),
        (c5.number, "resolution", 3600, 3660, False),
    }
    assert report["violations_total"] == 4

    human = max_cli("sla", "report", "--team", "support", env=admin).stdout
    assert "FRT: 60% (target: 95%)" in human
    assert f"Conv #{c4.number}: FRT 5m (target: 3m) - ESCALATED" in human
    assert f"Conv #{c2.number}: Resolution 1h10m (target: 1h)" in human
    everyone = max_cli.json("sla", "report", "--days", "7", env=admin)
    assert [r["team"]["slug"] for r in everyone["reports"]] == ["support"]
    # The period is the deadline's: a day later, a one-hour report is empty.
    clock.advance(days=1)
    empty = max_cli.json("sla", "report", "--team", "support", "--days", "1", env=admin)["metrics"]["frt"]
    assert (empty["met"], empty["breached"], empty["compliance_pct"]) == (0, 0, None)

    listed = max_cli.json("sla", "violations", "--team", "support", env=admin)["violations"]
    assert len(listed) == 4
    assert max_cli.json("sla", "violations", "--since", "2026-03-03", env=admin)["violations"] == []
    assert len(max_cli.json("sla", "violations", "--since", "2026-03-01", env=admin)["violations"]) == 4
    assert (
        json.loads(max_cli("sla", "violations", "--since", "whenever", "--json", env=admin).stderr)["error"][
            "code"
        ]
        == "invalid_since"
    )


def test_supervisors_report_on_their_own_teams_only(desk: Desk, people: People, clock: FrozenClock) -> None:
    from max_server.schemas import SlaPolicySet
    from max_server.services import sla_policies
    from tests.sla.desk import ADMIN

    sales = people.team("sales")
    desk.policy("normal", frt=600, resolution=3600)
    with desk.db.session() as session:
        sla_policies.set_policy(
            session,
            ADMIN,
            SlaPolicySet(team="sales", priority="normal", frt_target_s=300, resolution_target_s=900),
        )
    supervisor, token = people.user("supervisor", "Sofía Soporte")
    people.join(desk.team, supervisor)
    clock.set(T0)
    ours = desk.customer_writes("5215500000011")
    theirs = desk.customer_writes("5215500000012")
    moved = desk.api(
        "POST", f"/api/v1/conversations/{theirs.id}/transfer", desk.admin_token, json={"team": "sales"}
    )
    assert moved.status_code == 200, moved.text
    clock.set(T0 + timedelta(minutes=11))
    desk.run_monitor()

    def get(path: str, who: str, **params: str) -> Any:
        return desk.api("GET", path, who, params=params)

    assert get("/api/v1/sla/report", token, team="sales").status_code == 404  # as if it did not exist
    assert get("/api/v1/sla/violations", token, team=str(sales.id)).status_code == 404
    assert get("/api/v1/sla/report", token, team="support").status_code == 200
    mine = get("/api/v1/sla/report", token).json()["reports"]
    assert [r["team"]["slug"] for r in mine] == ["support"]
    listed = get("/api/v1/sla/violations", token).json()["violations"]
    assert {(v["conversation_number"], v["team"]["slug"]) for v in listed} == {(ours.number, "support")}
    # Admins see every team's.
    everyone = get("/api/v1/sla/report", desk.admin_token).json()["reports"]
    assert [r["team"]["slug"] for r in everyone] == ["sales", "support"]
    every_violation = get("/api/v1/sla/violations", desk.admin_token).json()["violations"]
    assert {v["conversation_number"] for v in every_violation} == {ours.number, theirs.number}
    assert get("/api/v1/sla/report", desk.admin_token, team="sales").json()["violations_total"] == 1
