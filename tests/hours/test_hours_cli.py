"""``max hours`` against a live server: set (replace or add), show, check (DESIGN §7's JSON),
holidays (add, list, rm, import), the after-hours message, clear, and who may change them."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import holidays as public_holidays
import httpx
from sqlmodel import select

from max_server.db import Database
from max_server.models import Job
from tests.cli.conftest import Max
from tests.conftest import People, bearer
from tests.support.live import LiveServer


def env(live: LiveServer, token: str) -> dict[str, str]:
    return {"MAX_URL": live.url, "MAX_TOKEN": token}


def days_of(hours: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(i["day"], i["opens"], i["closes"]) for i in hours["intervals"]]


def test_setting_and_checking_hours(max_cli: Max, live: LiveServer, people: People, db: Database) -> None:
    people.team("support")
    _, admin_token = people.user("admin")
    _, agent_token = people.user("agent")
    admin, agent = env(live, admin_token), env(live, agent_token)

    week = max_cli.json(
        "hours",
        "set",
        "--team",
        "support",
        "--days",
        "mon-fri",
        "--open",
        "09:00",
        "--close",
        "18:00",
        "--timezone",
        "America/Mexico_City",
        env=admin,
    )
    assert week["timezone"] == "America/Mexico_City"
    assert days_of(week) == [(d, "09:00", "18:00") for d in ("mon", "tue", "wed", "thu", "fri")]
    # Monday with a lunch break: replace Monday, then add its afternoon.
    max_cli.json(
        "hours", "set", "--team", "support", "--days", "mon", "--open", "9:00", "--close", "13:00", env=admin
    )
    split = max_cli.json(
        "hours",
        "set",
        "--team",
        "support",
        "--days",
        "mon",
        "--open",
        "14:00",
        "--close",
        "18:00",
        "--add",
        env=admin,
    )
    assert days_of(split)[:2] == [("mon", "09:00", "13:00"), ("mon", "14:00", "18:00")]
    night = max_cli.json(
        "hours", "set", "--team", "support", "--days", "sat", "--open", "22:00", "--close", "02:00", env=admin
    )
    assert night["intervals"][-1] == {
        "weekday": 5,
        "day": "sat",
        "opens": "22:00",
        "closes": "02:00",
        "overnight": True,
    }

    lunch = max_cli.json(
        "hours", "check", "--team", "support", "--at", "2026-03-02T13:30:00-06:00", env=agent
    )
    assert lunch == {
        "team": "support",
        "at": "2026-03-02T19:30:00Z",
        "is_open": False,
        "next_open": "2026-03-02T20:00:00Z",
        "next_close": "2026-03-03T00:00:00Z",
    }
    friday_night = max_cli.json(
        "hours", "check", "--team", "support", "--at", "2026-03-06T19:00:00-06:00", env=agent
    )
    assert (friday_night["is_open"], friday_night["next_open"], friday_night["next_close"]) == (
        False,
        "2026-03-08T04:00:00Z",  # Saturday 22:00 in Mexico City
        "2026-03-08T08:00:00Z",  # Sunday 02:00
    )
    open_now = max_cli.json(
        "hours", "check", "--team", "support", "--at", "2026-03-03T10:00:00-06:00", env=agent
    )
    assert (open_now["is_open"], open_now["next_close"], open_now["next_open"]) == (
        True,
        "2026-03-04T00:00:00Z",  # Tuesday 18:00
        "2026-03-04T15:00:00Z",  # Wednesday 09:00
    )

    # Benito Juárez's birthday (Monday 16 March 2026) closes the whole day.
    added = max_cli.json(
        "hours",
        "holidays",
        "add",
        "--team",
        "support",
        "--date",
        "2026-03-16",
        "--name",
        "Natalicio",
        env=admin,
    )
    assert added == {"date": "2026-03-16", "name": "Natalicio"}
    sunday = max_cli.json(
        "hours", "check", "--team", "support", "--at", "2026-03-15T12:00:00-06:00", env=agent
    )
    assert sunday["next_open"] == "2026-03-17T15:00:00Z"  # Tuesday 09:00
    imported = max_cli.json(
        "hours", "holidays", "import", "--team", "support", "--country", "MX", "--year", "2027", env=admin
    )
    expected = public_holidays.country_holidays("MX", years=2027)
    assert imported["added"] == len(expected)
    assert [h["date"] for h in imported["holidays"]] == [d.isoformat() for d in sorted(expected)]
    again = max_cli.json(
        "hours", "holidays", "import", "--team", "support", "--country", "MX", "--year", "2027", env=admin
    )
    assert (again["added"], again["existing"]) == (0, len(expected))
    listed = max_cli.json("hours", "holidays", "list", "--team", "support", "--year", "2027", env=agent)
    assert [date.fromisoformat(h["date"]) for h in listed["holidays"]] == sorted(expected)
    assert max_cli.json("hours", "holidays", "rm", "--team", "support", "--date", "2026-03-16", env=admin)
    assert (
        max_cli.json("hours", "check", "--team", "support", "--at", "2026-03-15T12:00:00-06:00", env=agent)[
            "next_open"
        ]
        == "2026-03-16T15:00:00Z"
    )
    unknown = max_cli(
        "hours",
        "holidays",
        "import",
        "--team",
        "support",
        "--country",
        "XX",
        "--year",
        "2027",
        "--json",
        env=admin,
    )
    assert unknown.exit_code != 0
    assert json.loads(unknown.stderr)["error"]["code"] == "unknown_calendar"

    bad = max_cli("hours", "message", "--team", "support", "Tu pedido {{order_id}}", "--json", env=admin)
    assert bad.exit_code != 0
    assert json.loads(bad.stderr)["error"]["details"] == {"variables": ["order_id"]}
    text = "Hola {{customer_first_name|}}, abrimos a las 9:00. Caso #{{conversation_number}} {{order_id|}}"
    assert (
        max_cli.json("hours", "message", "--team", "support", text, env=admin)["after_hours_message"] == text
    )

    # Agents read; only admins change.
    refused = max_cli(
        "hours",
        "set",
        "--team",
        "support",
        "--days",
        "sun",
        "--open",
        "09:00",
        "--close",
        "10:00",
        "--json",
        env=agent,
    )
    assert refused.exit_code == 4
    assert (
        max_cli(
            "hours",
            "set",
            "--team",
            "support",
            "--days",
            "funday",
            "--open",
            "09:00",
            "--close",
            "10:00",
            env=admin,
        ).exit_code
        == 2
    )
    shown = max_cli.json("hours", "show", "--team", "support", env=agent)
    assert shown["configured"] is True
    assert shown["after_hours_message"] == text
    assert [h["date"] for h in shown["holidays"]][:1] == ["2027-01-01"]

    cleared = max_cli.json("hours", "clear", "--team", "support", "--days", "sat", env=admin)
    assert [d for d, _, _ in days_of(cleared)] == ["mon", "mon", "tue", "wed", "thu", "fri"]
    assert max_cli.json("hours", "clear", "--team", "support", env=admin)["configured"] is False
    always = max_cli.json(
        "hours", "check", "--team", "support", "--at", "2026-03-08T03:00:00-06:00", env=agent
    )
    # No weekly hours: open around the clock, except on its holidays (the first imported one).
    assert (always["is_open"], always["next_close"]) == (True, "2027-01-01T06:00:00Z")
    with db.session(write=False) as session:  # every change asks for the team's SLA deadlines again
        assert len(session.exec(select(Job).where(Job.kind == "sla.recompute")).all()) >= 10


def test_hours_over_the_api(live: LiveServer, people: People) -> None:
    people.team("support")
    _, admin = people.user("admin")
    url = live.url + "/api/v1/hours/support"
    week = httpx.put(
        url,
        json={
            "timezone": "Asia/Kolkata",
            "intervals": [
                {"weekday": 0, "opens": "09:30", "closes": "17:30"},
                {"weekday": 6, "opens": "20:00", "closes": "24:00"},
            ],
        },
        headers=bearer(admin),
    )
    assert week.status_code == 200, week.text
    assert days_of(week.json()) == [("mon", "09:30", "17:30"), ("sun", "20:00", "00:00")]
    zone = httpx.put(url, json={"timezone": "Mars/Base", "intervals": []}, headers=bearer(admin))
    assert (zone.status_code, zone.json()["error"]["code"]) == (422, "invalid_timezone")
    naive = httpx.get(url + "/check", params={"at": "2026-03-02T10:00:00"}, headers=bearer(admin))
    assert (naive.status_code, naive.json()["error"]["code"]) == (422, "naive_time")
    assert httpx.get(live.url + "/api/v1/hours/nope", headers=bearer(admin)).status_code == 404


def test_holidays_of_a_subdivision(max_cli: Max, live: LiveServer, people: People) -> None:
    people.team("west", timezone="America/Los_Angeles")
    _, admin_token = people.user("admin")
    admin = env(live, admin_token)
    imported = max_cli.json(
        "hours", "holidays", "import", "--team", "west", "--country", "US", "--subdivision", "CA",
        "--year", "2027", env=admin,
    )  # fmt: skip
    expected = public_holidays.country_holidays("US", subdiv="CA", years=2027)
    national = public_holidays.country_holidays("US", years=2027)
    assert set(expected) != set(national)  # California's own days make the difference
    assert [(h["date"], h["name"]) for h in imported["holidays"]] == [
        (day.isoformat(), name) for day, name in sorted(expected.items())
    ]
    listed = max_cli.json("hours", "holidays", "list", "--team", "west", "--year", "2027", env=admin)
    assert [date.fromisoformat(h["date"]) for h in listed["holidays"]] == sorted(expected)


def test_show_and_list_without_a_team_cover_every_page_of_teams(
    max_cli: Max, live: LiveServer, people: People, db: Database
) -> None:
    from max_server.models import Team

    with db.session() as session:  # more teams than one page of the client's listing (200)
        session.add_all(Team(slug=f"team-{n:03}", name=f"Team {n}", timezone="UTC") for n in range(205))
        session.commit()
    _, token = people.user("agent")
    shown = max_cli.json("hours", "show", env=env(live, token))
    assert [h["team"]["slug"] for h in shown["hours"]] == [f"team-{n:03}" for n in range(205)]
    first = httpx.get(live.url + "/api/v1/teams", params={"limit": 200}, headers=bearer(token)).json()
    assert len(first["teams"]) == 200 and first["next_cursor"]
    rest = httpx.get(
        live.url + "/api/v1/teams",
        params={"limit": 200, "cursor": first["next_cursor"]},
        headers=bearer(token),
    ).json()
    assert ([t["slug"] for t in rest["teams"]], rest["next_cursor"]) == (
        [f"team-{n}" for n in range(200, 205)],
        None,
    )
    assert len(max_cli.json("teams", "list", env=env(live, token))["teams"]) == 205
