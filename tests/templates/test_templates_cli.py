"""``max templates …`` against a live server and the Graph API sandbox."""

from __future__ import annotations

import json
from typing import Any

from max_server.channels.whatsapp.sandbox import Sandbox
from tests.cli.conftest import Max, home, max_cli  # noqa: F401
from tests.support.live import LiveServer


def test_create_list_show_sync_delete(
    max_cli: Max,  # noqa: F811
    live: LiveServer,
    admin: tuple[Any, str],
    sandbox: Sandbox,
) -> None:
    env = {"MAX_URL": live.url, "MAX_TOKEN": admin[1]}
    created = max_cli.json(
        "templates",
        "create",
        "--name",
        "order_shipped",
        "--language",
        "es",
        "--category",
        "UTILITY",
        "--body",
        "Hola {{1}}, tu pedido {{2}} ha sido enviado",
        "--example",
        "Juan",
        "--example",
        "A-1001",
        "--header",
        "Pedido {{1}}",
        "--header-example",
        "A-1001",
        "--footer",
        "Tienda Max",
        env=env,
    )
    assert (created["status"], created["parameter_count"], created["header_parameter_count"]) == (
        "PENDING",
        2,
        1,
    )
    [submitted] = [r.json for r in sandbox.requests if r.method == "POST"]
    assert isinstance(submitted, dict)
    assert [c["type"] for c in submitted["components"]] == ["HEADER", "BODY", "FOOTER"]
    assert submitted["components"][1]["example"] == {"body_text": [["Juan", "A-1001"]]}

    invalid = max_cli("templates", "create", "--name", "Bad-Name", "--language", "es", "--category",
                      "UTILITY", "--body", "hola", "--json", env=env)  # fmt: skip
    assert invalid.exit_code != 0  # a usage-type failure (the mapping of 422 is output.py's)
    assert json.loads(invalid.stderr)["error"]["code"] == "invalid_template"
    assert len([r for r in sandbox.requests if r.method == "POST"]) == 1

    sandbox.template_status(live.url, "APPROVED", created["whatsapp_template_id"], "order_shipped", "es")
    [listed] = max_cli.json("templates", "list", "--status", "APPROVED", env=env)["templates"]
    assert listed["id"] == created["id"]
    shown = max_cli.json("templates", "show", "order_shipped", "--language", "es", env=env)
    assert (shown["status"], shown["body"]) == ("APPROVED", "Hola {{1}}, tu pedido {{2}} ha sido enviado")
    assert max_cli.json("templates", "show", created["id"], env=env)["name"] == "order_shipped"
    table = max_cli("templates", "list", env=env)
    assert "order_shipped" in table.stdout and "APPROVED" in table.stdout

    synced = max_cli.json("templates", "sync", env=env)
    assert (synced["added"], synced["unchanged"]) == (0, 1)
    deleted = max_cli.json("templates", "delete", "order_shipped", env=env)
    assert [(t["name"], t["language"]) for t in deleted["deleted"]] == [("order_shipped", "es")]
    assert sandbox.templates() == []
    missing = max_cli("templates", "show", "order_shipped", "--json", env=env)
    assert missing.exit_code == 3
