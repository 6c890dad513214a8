"""``max demo --headless``: a real child process, checked only through the API it announces."""

from __future__ import annotations

import json
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.demo.process import ConsoleDemo, DemoProcess, eventually
from tests.support.processes import clean_env, max_command

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CTRL_Q = b"\x11"
# Ctrl+Q to exit: under 1 s, also with both cores busy (measured); the bound
# leaves room for a loaded CI machine and still catches a shutdown that waits on something.
QUIT_WITHIN_S = 3.0
URGENT_FRT_S = 3  # the urgent request's first-response target: it breaches within the test
# The SLA monitor runs once a minute (on the minute): the breach is seen within that and a bit.
MONITOR_TICK_S = 60


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoProcess]:
    running = DemoProcess(tmp_path, "--pace", "0.2", "--urgent-frt", f"{URGENT_FRT_S}s").start()
    yield running
    running.kill()


@pytest.fixture
def connect() -> Iterator[Callable[[str, str], Api]]:
    made: list[Api] = []

    def make(url: str, token: str) -> Api:
        made.append(Api(url, token))
        return made[-1]

    yield make
    for api in made:
        api.http.close()


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def conversations(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/conversations", status="all", limit=500)["conversations"])

    def messages(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for conversation in self.conversations():
            found += self.get(f"/api/v1/conversations/{conversation['id']}/messages", limit=500)["messages"]
        return found


def test_headless_demo_runs_customers_media_limits_and_verified_webhooks(
    demo: DemoProcess, connect: Callable[[str, str], Api]
) -> None:
    # The contract scripts rely on: the first two lines, then the agent, the sandbox, the config.
    assert demo.lines[0].startswith("MAX_URL=http://127.0.0.1:")
    assert demo.lines[1].startswith("MAX_TOKEN=max_")
    for key in ("MAX_AGENT_TOKEN", "MAX_SANDBOX_URL", "MAX_CONFIG"):
        assert demo.values.get(key), demo.lines
    data_dir = Path(demo.values["MAX_CONFIG"]).parent
    assert data_dir.is_relative_to(demo.tmp)  # a throwaway directory by default

    api = connect(demo.values["MAX_URL"], demo.values["MAX_TOKEN"])
    assert api.get("/api/v1/me")["role"] == "admin"
    agent = connect(demo.values["MAX_URL"], demo.values["MAX_AGENT_TOKEN"]).get("/api/v1/me")
    assert agent["role"] == "agent"

    seeded_configuration_is_there(api)

    # Conversations on both channels, routed to the seeded teams, one on the short urgent SLA.
    def all_conversations() -> list[dict[str, Any]] | None:
        found = api.conversations()
        channels = {c["channel"] for c in found}
        return found if len(found) >= 7 and channels == {"whatsapp", "chat_app"} else None

    conversations = eventually(all_conversations, what="conversations on WhatsApp and the Chat App")
    assert {c["team"]["slug"] for c in conversations if c["team"]} == {"support", "sales"}
    urgent = [c for c in conversations if c["priority"] == "urgent"]
    assert urgent and urgent[0]["frt_due_at"], conversations

    # Messages of every kind, and the media stored (a real PNG behind a freshly signed link).
    def stored_media() -> dict[str, dict[str, Any]] | None:
        kinds = {m["type"]: m for m in api.messages() if m["media"] and m["media"][0]["status"] == "stored"}
        return kinds if {"image", "audio", "document"} <= set(kinds) else None

    media = eventually(stored_media, what="an image, a voice note and a document stored")
    link = api.get(f"/api/v1/media/{media['image']['media'][0]['id']}")
    image = httpx.get(link["url"], timeout=10)
    assert image.status_code == 200 and image.content.startswith(PNG_SIGNATURE)
    assert media["audio"]["media"][0]["mime_type"].startswith("audio/ogg")
    assert media["document"]["media"][0]["filename"] == "invoice-INV-2026-0315.pdf"

    # The burst tripped the rate limit: a block, and held messages flagged.
    blocks = eventually(lambda: api.get("/api/v1/rate-limits/blocks")["blocks"], what="a rate-limit block")
    assert blocks[0]["customer_name"] == "Pedro Sánchez" and blocks[0]["held_count"] >= 1
    assert any("rate_limited" in m["flags"] for m in api.messages())

    # The templates were approved by Meta's (the sandbox's) signed status webhook.
    statuses = {
        (t["name"], t["language"]): t["status"] for t in api.get("/api/v1/whatsapp-templates")["templates"]
    }
    assert len(statuses) == 4 and set(statuses.values()) == {"APPROVED"}, statuses

    # Webhook deliveries that the receiver verified (it answers "verified" only then).
    subscription = api.get("/api/v1/webhooks")["subscriptions"][0]

    def verified_deliveries() -> list[dict[str, Any]] | None:
        rows = api.get(f"/api/v1/webhooks/{subscription['id']}/deliveries", limit=500)["deliveries"]
        done = [d for d in rows if d["state"] == "succeeded"]
        types = {d["event_type"] for d in done}
        return done if {"message.created", "media.stored", "customer.rate_limited"} <= types else None

    delivered = eventually(verified_deliveries, what="verified webhook deliveries")
    attempt = api.get(f"/api/v1/webhook-deliveries/{delivered[0]['id']}")["attempt_log"][-1]
    assert attempt["status_code"] == 200 and attempt["response_body"] == "verified"
    journal = [json.loads(line) for line in (data_dir / "webhooks.jsonl").read_text().splitlines()]
    assert journal and not [j for j in journal if j["outcome"] == "refused"]

    # The customer on both channels is suggested for linking.
    maria = [c for c in conversations if c["customer"]["name"] == "María González"]
    assert {c["channel"] for c in maria} == {"whatsapp", "chat_app"}
    chat_app_customer = next(c for c in maria if c["channel"] == "chat_app")["customer"]["id"]
    suggestions = api.get(f"/api/v1/customers/{chat_app_customer}/link-suggestions")["suggestions"]
    assert [s["customer"]["name"] for s in suggestions] == ["María González"], suggestions
    assert suggestions[0]["reasons"][0]["kind"] == "phone"

    # Nobody answered the urgent request: the monitor records the breach of its short target.
    def breached() -> list[dict[str, Any]]:
        found = api.get("/api/v1/sla/violations")["violations"]
        return [v for v in found if v["kind"] == "frt" and v["priority"] == "urgent"]

    [violation] = eventually(breached, timeout=MONITOR_TICK_S + 30, what="the urgent SLA breached")
    assert violation["target_s"] == URGENT_FRT_S and violation["actual_s"] >= URGENT_FRT_S, violation

    # Ctrl-C: a clean stop, exit 0, and the throwaway directory is gone.
    assert demo.interrupt() == 0, demo.stderr()
    assert "Traceback" not in demo.stderr()
    assert not data_dir.exists()


def seeded_configuration_is_there(api: Api) -> None:
    """What the demo seeds, read back through the API as an administrator would."""
    canned = {r["shortcut"]: r for r in api.get("/api/v1/canned-responses")["responses"]}
    spanish, english = {"/hola", "/gracias", "/pedido", "/reembolso"}, {"/hello", "/thanks", "/order"}
    assert spanish | english | {"/cotizacion"} <= set(canned), sorted(canned)
    assert canned["/pedido"]["variables"] == ["order_id", "days"] and canned["/pedido"]["scope"] == "team"
    assert "{{customer_first_name|there}}" in canned["/hello"]["content"]

    users = {u["id"]: u["email"] for u in api.get("/api/v1/users", limit=500)["users"]}
    skills = {
        (users[s["user_id"]], s["skill"]): s["proficiency"] for s in api.get("/api/v1/skills")["skills"]
    }
    assert skills[("sofia@demo.example.com", "billing")] == 3
    assert skills[("tom@demo.example.com", "english")] == 5

    support, sales = (api.get(f"/api/v1/hours/{team}") for team in ("support", "sales"))
    assert [(i["day"], i["opens"], i["closes"]) for i in support["intervals"]] == [
        (day, "00:00", "00:00") for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    ]
    assert [(i["day"], i["opens"], i["closes"]) for i in sales["intervals"]] == [
        *((day, "09:00", "18:00") for day in ("mon", "tue", "wed", "thu", "fri")),
        ("sat", "10:00", "14:00"),
    ]
    assert sales["timezone"] == "America/Mexico_City" and "Ventas" in sales["after_hours_message"]

    targets = {
        t["team"]["slug"]: (t["frt"], t["resolution"]) for t in api.get("/api/v1/sla/targets")["targets"]
    }
    assert targets == {"support": (95.0, 90.0), "sales": (90.0, 85.0)}
    policies = {(p["team"]["slug"], p["priority"]): p for p in api.get("/api/v1/sla/policies")["policies"]}
    assert policies[("support", "urgent")]["frt_target_s"] == URGENT_FRT_S
    assert policies[("sales", "normal")]["business_hours_only"] is True


def test_a_data_directory_is_kept_and_reused(tmp_path: Path, connect: Callable[[str, str], Api]) -> None:
    data = tmp_path / "data"
    first = DemoProcess(tmp_path / "first", "--data", str(data), "--pace", "0.2").start()
    try:
        api = connect(first.values["MAX_URL"], first.values["MAX_TOKEN"])
        eventually(lambda: len(api.conversations()) >= 3, what="the first run's conversations")
        subscription = api.get("/api/v1/webhooks")["subscriptions"][0]["id"]
        before = len(api.get(f"/api/v1/webhooks/{subscription}/deliveries", limit=500)["deliveries"])
        assert first.interrupt() == 0, first.stderr()
    finally:
        first.kill()
    assert (data / "max.db").exists()

    second = DemoProcess(tmp_path / "second", "--data", str(data), "--pace", "0.2").start()
    try:
        assert second.values["MAX_TOKEN"] != first.values["MAX_TOKEN"]  # tokens are shown once: new ones
        api = connect(second.values["MAX_URL"], second.values["MAX_TOKEN"])
        assert sorted(t["slug"] for t in api.get("/api/v1/teams")["teams"]) == ["sales", "support"]
        templates = api.get("/api/v1/whatsapp-templates")["templates"]
        assert len(templates) == 4 and {t["status"] for t in templates} == {"APPROVED"}, templates
        assert api.get("/api/v1/webhooks")["subscriptions"][0]["id"] == subscription

        def new_deliveries_verified() -> bool:
            rows = api.get(f"/api/v1/webhooks/{subscription}/deliveries", limit=500)["deliveries"]
            fresh = rows[: len(rows) - before]  # newest first
            return len(fresh) >= 5 and all(d["state"] == "succeeded" for d in fresh[-5:])

        eventually(new_deliveries_verified, what="deliveries to this run's receiver")
        assert second.interrupt() == 0, second.stderr()
    finally:
        second.kill()


def test_a_directory_the_demo_did_not_make_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    config = data / "config.toml"
    config.write_text('[database]\nurl = "postgresql://prod.example.com/max"\n')
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        max_command("demo", "--headless", "--data", str(data)),
        env=clean_env(home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "was not written by max demo" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert config.read_text().startswith("[database]")  # untouched
    assert sorted(p.name for p in data.iterdir()) == ["config.toml"]


def test_the_console_opens_as_the_agent_and_ctrl_q_stops_everything(tmp_path: Path) -> None:
    console = ConsoleDemo(tmp_path, "--pace", "0.2").start()
    try:
        data_dir = eventually(console.data_dir, what="the demo's temporary directory")
        config = eventually(lambda: _config(data_dir), what="the demo's config")
        urls = [
            config["server"]["public_url"],
            config["whatsapp"]["graph_url"].rsplit("/", 1)[0],  # the sandbox
            config["chat_app"]["callback_url"].rsplit("/", 2)[0],  # the webhook receiver
        ]
        # The console is connected as Sofía and shows the customers' conversations.
        eventually(
            lambda: all(name in console.text() for name in ("Sofía", "Ana López", "John Carter")),
            what="the console showing the queue",
        )
        assert httpx.get(urls[0] + "/healthz", timeout=5).status_code == 200
        console.press(CTRL_Q)
        asked = time.monotonic()
        code = console.wait(30)
        took = time.monotonic() - asked
        screen = console.text()
    finally:
        console.kill()
    assert code == 0, screen[-3000:]
    assert "Demo stopped." in screen and "Traceback" not in screen, screen[-3000:]
    assert took < QUIT_WITHIN_S, f"Ctrl+Q took {took:.1f} s"
    assert not data_dir.exists()  # the throwaway directory is gone
    for url in urls:  # and nothing listens any more
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/healthz", timeout=2)


def _config(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / "config.toml"
    if not path.exists():
        return None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError:  # written atomically, but read while it is replaced
        return None
