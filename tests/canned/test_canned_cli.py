"""``max canned`` against a live server: add, list, show, edit, render, rm, import, export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.cli.conftest import Max
from tests.conftest import People
from tests.support.live import LiveServer


def test_the_canned_commands(max_cli: Max, live: LiveServer, people: People, tmp_path: Path) -> None:
    team = people.team("support")
    _, admin_token = people.user("admin", "Ada")
    agent, agent_token = people.user("agent", "Ana")
    people.join(team, agent)
    admin = {"MAX_URL": live.url, "MAX_TOKEN": admin_token}
    me = {"MAX_URL": live.url, "MAX_TOKEN": agent_token}

    made = max_cli.json(
        "canned",
        "add",
        "--shortcut",
        "/hola",
        "--title",
        "Saludo",
        "--content",
        "¡Hola {{customer_first_name|}}!",
        env=admin,
    )
    assert (made["scope"], made["shortcut"]) == ("global", "/hola")
    team_one = max_cli.json(
        "canned",
        "add",
        "--shortcut",
        "/hola",
        "--title",
        "Saludo equipo",
        "--content",
        "Hola desde soporte",
        "--team",
        "support",
        "--category",
        "general",
        env=admin,
    )
    assert (team_one["scope"], team_one["team"]["slug"], team_one["category"]) == (
        "team",
        "support",
        "general",
    )
    refused = max_cli("canned", "add", "--shortcut", "/x", "--title", "t", "--content", "c", "--json", env=me)
    assert refused.exit_code == 4  # 403: only admins add global ones
    assert json.loads(refused.stderr)["error"]["code"] == "not_allowed"
    mine = max_cli.json(
        "canned",
        "add",
        "--shortcut",
        "pedido",
        "--title",
        "Pedido",
        "--content",
        "Tu pedido {{order_id}}",
        "--personal",
        env=me,
    )
    assert (mine["scope"], mine["shortcut"]) == ("personal", "/pedido")

    listed = max_cli.json("canned", "list", env=me)["responses"]
    assert [(r["shortcut"], r["scope"], r["effective"]) for r in listed] == [
        ("/hola", "team", True),
        ("/hola", "global", False),
        ("/pedido", "personal", True),
    ]
    assert [r["shortcut"] for r in max_cli.json("canned", "list", "-q", "ped", env=me)["responses"]] == [
        "/pedido"
    ]
    human = max_cli("canned", "list", env=me)
    assert human.exit_code == 0 and "shadowed" in human.stdout

    shown = max_cli.json("canned", "show", "/hola", env=me)
    assert shown["id"] == team_one["id"]  # the team's one applies to a member
    edited = max_cli.json(
        "canned", "edit", "/pedido", "--content", "Tu pedido {{order_id}} está listo", env=me
    )
    assert edited["content"] == "Tu pedido {{order_id}} está listo"
    missing = max_cli("canned", "render", "/pedido", "--json", env=me)
    assert missing.exit_code != 0  # 422: the agent must give order_id
    assert json.loads(missing.stderr)["error"]["details"] == {"missing": ["order_id"]}
    rendered = max_cli.json("canned", "render", "/pedido", "--var", "order_id=ORD-9", env=me)
    assert rendered["text"] == "Tu pedido ORD-9 está listo"

    assert max_cli.json("canned", "rm", "/pedido", env=me) == {"deleted": mine["id"]}
    gone = max_cli("canned", "show", "/pedido", "--json", env=me)
    assert gone.exit_code == 3

    source = tmp_path / "respuestas.csv"
    source.write_text(
        "shortcut,title,content,category,scope,team\n"
        '/envio,Envíos,"Enviamos en 24 h, {{customer_first_name|}}",ventas,,\n'
        "/Malo,Malo,x,,,\n"
        "/hola,Repetido,x,,global,\n"
        "/precios,Precios,Desde $99,ventas,team,support\n"
        "/propio,Propio,Sólo mío,,personal,\n"
        "/raro,Raro,x,,nadie,\n",
        encoding="utf-8",
    )
    result = max_cli("canned", "import", str(source), "--json", env=admin)
    assert result.exit_code == 1  # some rows failed, the others went in
    report = json.loads(result.stdout)
    assert [(c["row"], c["shortcut"]) for c in report["created"]] == [
        (2, "/envio"),
        (5, "/precios"),
        (6, "/propio"),
    ]
    assert [(e["row"], e["code"]) for e in report["errors"]] == [
        (3, "validation_error"),
        (4, "shortcut_exists"),
        (7, "invalid_scope"),
    ]

    exported = max_cli("canned", "export", env=admin)
    assert exported.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert {(r["shortcut"], r["scope"], r["team"]) for r in rows} == {
        ("/hola", "global", ""),
        ("/hola", "team", "support"),
        ("/envio", "global", ""),
        ("/precios", "team", "support"),
        ("/propio", "personal", ""),
    }
    assert (
        next(r for r in rows if r["shortcut"] == "/envio")["content"]
        == "Enviamos en 24 h, {{customer_first_name|}}"
    )
    target = tmp_path / "out.csv"
    assert max_cli("canned", "export", "-o", str(target), env=admin).exit_code == 0
    assert target.read_text(encoding="utf-8") == exported.stdout
