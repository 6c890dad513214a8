"""``max webhooks``: outbound webhook subscriptions and their deliveries (admins)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from max_cli.output import Cli, command

app = typer.Typer(
    help="Outbound webhooks: subscribe URLs to events, rotate secrets, inspect and redeliver.",
    no_args_is_help=True,
)
PATH = "/api/v1/webhooks"
SubscriptionArg = Annotated[str, typer.Argument(help="Subscription id.")]
COLUMNS = [
    ("id", "ID"),
    ("url", "URL"),
    ("events", "EVENTS"),
    ("is_active", "ACTIVE"),
    ("failing_since", "FAILING SINCE"),
    ("disabled_reason", "DISABLED BECAUSE"),
]
DELIVERY_COLUMNS = [
    ("id", "ID"),
    ("event_type", "EVENT"),
    ("state", "STATE"),
    ("attempts", "TRIES"),
    ("last_status_code", "LAST STATUS"),
    ("next_attempt_at", "NEXT TRY"),
    ("last_error", "LAST ERROR"),
    ("webhook_id", "WEBHOOK-ID"),
]


def show_subscription(cli: Cli, subscription: dict[str, Any]) -> None:
    keys = [k for k, _ in COLUMNS] + [
        "description",
        "max_attempts",
        "timeout_s",
        "previous_secret_until",
        "created_at",
    ]
    cli.fields([(k.replace("_", " "), subscription.get(k)) for k in keys])


def show_secret(cli: Cli, result: dict[str, Any], note: str) -> None:
    show_subscription(cli, result["subscription"])
    cli.line(f"secret  {result['secret']}")
    cli.info(note)


def show_delivery(cli: Cli, delivery: dict[str, Any]) -> None:
    keys = [k for k, _ in DELIVERY_COLUMNS] + ["subscription_id", "event_id", "created_at", "finished_at"]
    cli.fields([(k.replace("_", " "), delivery.get(k)) for k in keys])
    for attempt in delivery.get("attempt_log") or []:
        outcome = attempt.get("status_code") or attempt.get("error")
        cli.line(
            f"  #{attempt['attempt']}  {attempt['created_at'][:19]}  {outcome}  {attempt['duration_ms']} ms"
        )


@command(app, "add", connects=False)
def add(
    cli: Cli,
    url: Annotated[str, typer.Option("--url", help="Where to POST events (http or https).")],
    events: Annotated[
        str, typer.Option(help="Comma-separated event types, `conversation.*`, or `*` for all.")
    ] = "*",
    description: Annotated[str | None, typer.Option(help="A note for people.")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="Attempts per event (default 8).", min=1)] = None,
    timeout: Annotated[int | None, typer.Option(help="Seconds to wait for an answer.", min=1)] = None,
    server: Annotated[
        str | None, typer.Option("--server", envvar="MAX_URL", help="Server URL (--url is the webhook's).")
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="MAX_TOKEN", help="API token.", show_default=False)
    ] = None,
) -> None:
    """Subscribe a URL to events and print its signing secret (shown once).

    Here --url is the webhook's address; the server comes from --server, MAX_URL or `max login`.

    Example: max webhooks add --url https://crm.example.com/max --events conversation.closed --json
    """
    cli.url, cli.token = server, token
    body = {
        "url": url,
        "events": [e.strip() for e in events.split(",") if e.strip()],
        "description": description,
        "max_attempts": max_attempts,
        "timeout_s": timeout,
    }
    result = cli.client().post(PATH, body)
    cli.emit(result, lambda: show_secret(cli, result, "Keep the secret now: it is not shown again."))


@command(app, "list")
def list_subscriptions(cli: Cli) -> None:
    """List subscriptions (never their secrets).

    Example: max webhooks list --json
    """
    items = list(cli.client().paginate(PATH, "subscriptions"))
    cli.emit(
        {"subscriptions": items, "next_cursor": None},
        lambda: cli.table(items, COLUMNS, empty="No webhook subscriptions."),
    )


@command(app, "show")
def show(cli: Cli, subscription: SubscriptionArg) -> None:
    """Show one subscription.

    Example: max webhooks show 3
    """
    found = cli.client().get(f"{PATH}/{subscription}")
    cli.emit(found, lambda: show_subscription(cli, found))


@command(app, "rm")
def remove(cli: Cli, subscription: SubscriptionArg) -> None:
    """Delete a subscription with its delivery history.

    Example: max webhooks rm 3
    """
    cli.client().delete(f"{PATH}/{subscription}")
    cli.emit({"deleted": subscription}, lambda: cli.line(f"Deleted webhook subscription {subscription}."))


@command(app, "enable")
def enable(cli: Cli, subscription: SubscriptionArg) -> None:
    """Enable a subscription again (its failure record is cleared).

    Example: max webhooks enable 3
    """
    found = cli.client().post(f"{PATH}/{subscription}/enable")
    cli.emit(found, lambda: cli.line(f"Enabled {found['url']}."))


@command(app, "disable")
def disable(
    cli: Cli,
    subscription: SubscriptionArg,
    reason: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
) -> None:
    """Disable a subscription; its pending deliveries are cancelled.

    Example: max webhooks disable 3 --reason "CRM maintenance"
    """
    found = cli.client().post(f"{PATH}/{subscription}/disable", {"reason": reason})
    cli.emit(found, lambda: cli.line(f"Disabled {found['url']}."))


@command(app, "rotate-secret")
def rotate_secret(cli: Cli, subscription: SubscriptionArg) -> None:
    """Make a new signing secret (shown once); the old one also signs for 24 hours.

    Example: max webhooks rotate-secret 3 --json
    """
    result = cli.client().post(f"{PATH}/{subscription}/rotate-secret")
    until = result["subscription"].get("previous_secret_until")
    cli.emit(
        result,
        lambda: show_secret(
            cli, result, f"Keep the new secret now. The previous one also signs until {until}."
        ),
    )


@command(app, "test")
def ping_subscription(
    cli: Cli,
    subscription: SubscriptionArg,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the first attempt (0: don't wait).")] = 30,
) -> None:
    """Send a `ping` event to this subscription and show how its first attempt went.

    Example: max webhooks test 3
    """
    client = cli.client()
    ping = client.post(f"{PATH}/{subscription}/test")
    deadline = time.monotonic() + wait
    delivery: dict[str, Any] | None = None
    while wait > 0:
        found = client.get(f"{PATH}/{subscription}/deliveries", event_id=ping["event_id"])["deliveries"]
        delivery = found[0] if found else None
        if delivery and (delivery["attempts"] > 0 or delivery["state"] != "pending"):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    result = {"ping": ping, "delivery": delivery}

    def human() -> None:
        if delivery is None:
            cli.line(
                f"Ping event {ping['event_id']} written; no delivery yet (is the server's worker running?)."
            )
            return
        show_delivery(cli, delivery)

    cli.emit(result, human)


@command(app, "deliveries")
def deliveries(
    cli: Cli,
    subscription: SubscriptionArg,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed deliveries.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1, max=10000)] = 50,
) -> None:
    """List a subscription's deliveries, newest first.

    Example: max webhooks deliveries 3 --failed
    """
    items: list[dict[str, Any]] = []
    path = f"{PATH}/{subscription}/deliveries"
    for item in cli.client().paginate(
        path, "deliveries", limit=min(limit, 500), state="failed" if failed else None
    ):
        items.append(item)
        if len(items) >= limit:
            break
    cli.emit(
        {"deliveries": items, "next_cursor": None},
        lambda: cli.table(items, DELIVERY_COLUMNS, empty="No deliveries."),
    )


@command(app, "delivery")
def delivery(cli: Cli, delivery_id: Annotated[str, typer.Argument(help="Delivery id.")]) -> None:
    """Show one delivery with every attempt.

    Example: max webhooks delivery 812
    """
    found = cli.client().get(f"/api/v1/webhook-deliveries/{delivery_id}")
    cli.emit(found, lambda: show_delivery(cli, found))


@command(app, "redeliver")
def redeliver(cli: Cli, delivery_id: Annotated[str, typer.Argument(help="Delivery id.")]) -> None:
    """Send a delivery again now (same bytes, same webhook-id, a fresh retry schedule).

    Example: max webhooks redeliver 812
    """
    found = cli.client().post(f"/api/v1/webhook-deliveries/{delivery_id}/redeliver")
    cli.emit(found, lambda: cli.line(f"Delivery {found['id']} queued again."))
