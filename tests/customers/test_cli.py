"""``max customers …`` against a live server: JSON contracts, human output, imports, erasure."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import Session, col, select

from max_server.db import Database
from max_server.models import Transaction
from tests.cli.conftest import Max
from tests.cli.conftest import home as home
from tests.cli.conftest import max_cli as max_cli
from tests.conftest import People
from tests.support import factories
from tests.support.live import LiveServer


def test_search_show_link_unlink_and_context(
    max_cli: Max, live: LiveServer, db: Database, people: People
) -> None:
    _, admin = people.user("admin")
    env = {"MAX_URL": live.url, "MAX_TOKEN": admin}
    wa = factories.customer(db, "Juan López", phone_e164="+5215512345678")
    app_user = factories.customer(db, "Juan L", phone_e164="+525512345678", email="juan@example.com")
    factories.conversation(db, customer_row=wa, subject="Pedido 123")
    found = max_cli.json("customers", "search", "+52 55 1234 5678", env=env)["customers"]
    assert {c["id"] for c in found} == {str(wa.id), str(app_user.id)}
    assert "Juan López" in max_cli("customers", "search", "juan", env=env).stdout
    assert max_cli.json("customers", "show", str(wa.id), env=env)["name"] == "Juan López"
    assert max_cli("customers", "show", "999999", "--json", env=env).exit_code == 3
    suggest = max_cli.json("customers", "suggest", str(wa.id), env=env)
    assert suggest["next_cursor"] is None
    [suggested] = suggest["suggestions"]
    assert suggested["customer"]["id"] == str(app_user.id)

    linked = max_cli.json("customers", "link", str(wa.id), str(app_user.id), env=env)
    assert {"link_id", "primary_customer_id", "secondary_customer_id"} <= set(linked)
    assert (linked["primary_customer_id"], linked["secondary_customer_id"]) == (str(wa.id), str(app_user.id))
    refused = max_cli("customers", "link", str(app_user.id), str(wa.id), "--json", env=env)
    assert refused.exit_code == 1
    assert json.loads(refused.stderr)["error"]["code"] == "link_cycle"

    assert max_cli.json("customers", "tag", str(wa.id), "VIP", "Prefers English", env=env)["tags"] == [
        "Prefers English",
        "VIP",
    ]
    assert max_cli.json("customers", "untag", str(wa.id), "VIP", env=env)["tags"] == ["Prefers English"]
    context = max_cli.json("customers", "context", str(wa.id), env=env)
    assert context["customer"]["email"] == "juan@example.com"
    human = max_cli("customers", "context", str(wa.id), env=env).stdout
    assert "Customer: Juan López" in human
    assert "Previous conversations (1)" in human
    assert "Pedido 123" in human

    [listed] = max_cli.json("customers", "links", str(wa.id), env=env)["links"]
    assert listed["link_id"] == linked["link_id"]
    undone = max_cli.json("customers", "unlink", linked["link_id"], env=env)
    assert undone["unlinked_at"] is not None
    twice = max_cli("customers", "unlink", linked["link_id"], env=env)
    assert (twice.exit_code, "already undone" in twice.stderr) == (1, True)


def test_imports_report_bad_rows_and_keep_going(
    max_cli: Max, live: LiveServer, db: Database, people: People, tmp_path: Path
) -> None:
    _, admin = people.user("admin")
    env = {"MAX_URL": live.url, "MAX_TOKEN": admin}
    juan = factories.customer(db, "Juan")
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(
        "transaction_id,customer_id,amount,currency,status,occurred_at,description\n"
        f"TXN-1,{juan.id},500.00,USD,completed,2026-01-03T12:00:00Z,Laptop\n"
        f"TXN-2,{juan.id},10.005,USD,completed,2026-01-03T12:00:00Z,too precise\n"
        "TXN-3,999999,1,USD,completed,2026-01-03T12:00:00Z,nobody\n"
        f",{juan.id},1,USD,completed,2026-01-03T12:00:00Z,no id\n"
        f"TXN-4,{juan.id},250,USD,refunded,2026-01-04T12:00:00Z,\n"
    )
    result = max_cli("customers", "import-transactions", str(csv_file), "--json", env=env)
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["created"], summary["updated"], summary["unchanged"]) == (5, 2, 0, 0)
    assert summary["failed"] == 3
    assert [(e["line"], e["code"]) for e in summary["errors"]] == [
        (3, "invalid_amount"),
        (4, "customer_not_found"),
        (5, "invalid_row"),
    ]
    again = max_cli("customers", "import-transactions", str(csv_file), env=env)
    assert "5 rows: 0 created, 0 updated, 2 unchanged, 3 failed." in again.stdout
    assert "line 3 (TXN-2)" in again.stderr
    csv_file.write_text(csv_file.read_text().replace(f"TXN-4,{juan.id},250,", f"TXN-4,{juan.id},275,"))
    changed = json.loads(max_cli("customers", "import-transactions", str(csv_file), "--json", env=env).stdout)
    assert (changed["created"], changed["updated"], changed["unchanged"], changed["failed"]) == (0, 1, 1, 3)
    with Session(db.engine) as session:
        rows = session.exec(select(Transaction).order_by(col(Transaction.external_id))).all()
    assert [(t.external_id, t.amount_minor) for t in rows] == [("TXN-1", 50000), ("TXN-4", 27500)]

    tickets = tmp_path / "tickets.csv"
    tickets.write_text(f"ticket_id,customer_id,subject,status,url\nT-1,{juan.id},Login issue,open,\n")
    done = max_cli.json("customers", "import-tickets", str(tickets), env=env)
    assert (done["created"], done["failed"]) == (1, 0)
    assert max_cli("customers", "import-tickets", str(tmp_path / "missing.csv"), env=env).exit_code == 2


def test_an_import_shows_a_progress_bar_on_a_terminal(
    max_cli: Max, live: LiveServer, db: Database, people: People, tmp_path: Path
) -> None:
    _, admin = people.user("admin")
    juan = factories.customer(db, "Juan")
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(
        "transaction_id,customer_id,amount,currency,status,occurred_at\n"
        + "".join(f"TXN-{n},{juan.id},{n},USD,paid,2026-01-03T12:00:00Z\n" for n in range(1, 8))
    )
    # rich draws live displays only on a terminal; TTY_COMPATIBLE/TTY_INTERACTIVE make stderr one.
    terminal = {"MAX_URL": live.url, "MAX_TOKEN": admin, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}
    shown = max_cli("customers", "import-transactions", str(csv_file), env=terminal)
    assert shown.exit_code == 0, shown.stderr
    assert "Importing transactions" in shown.stderr
    assert "7/7" in shown.stderr  # the bar's count reached the last row
    assert "━" in shown.stderr  # the bar itself
    assert "7 rows: 7 created" in shown.stdout
    quiet = max_cli("customers", "import-transactions", str(csv_file), "--json", env=terminal)
    assert "Importing" not in quiet.stderr  # JSON runs stay machine-readable
    assert json.loads(quiet.stdout)["unchanged"] == 7


def test_erase_asks_and_is_admin_only(max_cli: Max, live: LiveServer, db: Database, people: People) -> None:
    _, admin = people.user("admin")
    _, agent = people.user("agent")
    juan = factories.customer(db, "Juan", email="juan@example.com")
    env = {"MAX_URL": live.url, "MAX_TOKEN": admin}
    assert max_cli("customers", "erase", str(juan.id), "--json", env=env).exit_code == 2
    assert (
        max_cli("customers", "erase", str(juan.id), "--yes", env={**env, "MAX_TOKEN": agent}).exit_code == 4
    )
    result = max_cli.json("customers", "erase", str(juan.id), "--yes", env=env)
    assert result["customers"] == [str(juan.id)]
    assert max_cli.json("customers", "show", str(juan.id), env=env)["email"] is None
