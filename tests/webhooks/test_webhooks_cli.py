"""``max webhooks …`` against a live server: the contract's JSON keys, secrets shown once."""

from __future__ import annotations

import json

from max_server.db import Database
from max_server.jobs.worker import Worker
from tests.cli.conftest import Max, home, max_cli  # noqa: F401
from tests.support.live import LiveServer
from tests.webhooks.conftest import Receiver, pump, verify


def test_add_list_test_deliveries_rotate_disable_enable_rm(
    max_cli: Max,  # noqa: F811
    live: LiveServer,
    admin_token: str,
    receiver: Receiver,
    worker: Worker,
    db: Database,
) -> None:
    env = {"MAX_URL": live.url, "MAX_TOKEN": admin_token}
    added = max_cli.json(
        "webhooks",
        "add",
        "--url",
        receiver.url,
        "--events",
        "conversation.closed,conversation.assigned",
        env=env,
    )
    assert set(added) == {"subscription", "secret"}
    assert added["secret"].startswith("whsec_")
    assert added["subscription"]["events"] == ["conversation.closed", "conversation.assigned"]
    subscription_id = added["subscription"]["id"]

    listed = max_cli("webhooks", "list", "--json", env=env)
    assert listed.exit_code == 0 and added["secret"] not in listed.stdout
    assert [s["id"] for s in json.loads(listed.stdout)["subscriptions"]] == [subscription_id]
    human = max_cli("webhooks", "list", env=env)
    assert receiver.url in human.stdout and added["secret"] not in human.stdout

    pinged = max_cli.json("webhooks", "test", subscription_id, "--wait", "0", env=env)
    assert pinged["ping"]["type"] == "ping"
    pump(db, worker)
    body = verify(receiver.wait_for(1)[0], added["secret"])
    assert body["type"] == "ping"
    [delivery] = max_cli.json("webhooks", "deliveries", subscription_id, env=env)["deliveries"]
    assert (delivery["event_type"], delivery["state"]) == ("ping", "succeeded")
    assert max_cli.json("webhooks", "deliveries", subscription_id, "--failed", env=env)["deliveries"] == []
    shown = max_cli.json("webhooks", "delivery", delivery["id"], env=env)
    assert [a["status_code"] for a in shown["attempt_log"]] == [200]
    again = max_cli.json("webhooks", "redeliver", delivery["id"], env=env)
    assert again["state"] == "pending"

    rotated = max_cli.json("webhooks", "rotate-secret", subscription_id, env=env)
    assert rotated["secret"] != added["secret"] and rotated["subscription"]["previous_secret_until"]
    off = max_cli.json("webhooks", "disable", subscription_id, "--reason", "maintenance", env=env)
    assert (off["is_active"], off["disabled_reason"]) == (False, "maintenance")
    assert max_cli.json("webhooks", "enable", subscription_id, env=env)["is_active"] is True
    assert max_cli.json("webhooks", "rm", subscription_id, env=env) == {"deleted": subscription_id}
    missing = max_cli("webhooks", "show", subscription_id, "--json", env=env)
    assert missing.exit_code == 3
    assert json.loads(missing.stderr)["error"]["code"] == "webhook_not_found"


def test_a_refused_url_fails_with_the_reason(
    max_cli: Max,  # noqa: F811
    live: LiveServer,
    admin_token: str,
) -> None:
    env = {"MAX_URL": live.url, "MAX_TOKEN": admin_token}
    refused = max_cli("webhooks", "add", "--url", "ftp://example.com/x", "--events", "*", "--json", env=env)
    assert refused.exit_code != 0
    assert json.loads(refused.stderr)["error"]["code"] == "webhook_url_refused"
