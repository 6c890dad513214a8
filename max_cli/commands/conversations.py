"""``max conversations``: the queue, a thread, and what agents do to conversations."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from max_cli.output import Cli, command

app = typer.Typer(
    help="Conversations: list, show, assign, transfer, prioritise, close, reopen.", no_args_is_help=True
)
ConversationArg = Annotated[str, typer.Argument(help="Conversation id.")]
COLUMNS = [
    ("id", "ID"),
    ("number", "#"),
    ("status", "STATUS"),
    ("priority", "PRIORITY"),
    ("customer", "CUSTOMER"),
    ("channel", "CHANNEL"),
    ("team", "TEAM"),
    ("assignee", "ASSIGNEE"),
    ("last_message_preview", "LAST MESSAGE"),
]


def show_conversation(
    cli: Cli, conversation: dict[str, Any], messages: list[dict[str, Any]] | None = None
) -> None:
    cli.fields(
        [
            (k.replace("_", " "), conversation.get(k))
            for k in (
                "id",
                "number",
                "status",
                "priority",
                "customer",
                "channel",
                "team",
                "assignee",
                "subject",
                "cycle",
                "first_message_at",
                "first_response_at",
                "last_customer_message_at",
                "window_open",
                "close_reason",
            )
        ]
    )
    for message in messages or []:
        who = (message.get("sender") or {}).get("name") or message["sender_type"]
        status = "" if message["direction"] == "inbound" else f"  [{message['delivery_status']}]"
        text = message.get("content_text") or f"[{message['type']}]"
        cli.line(f"{message['created_at'][:19]}  {who}: {text}{status}")


@command(app, "list")
def list_conversations(
    cli: Cli,
    status: Annotated[
        Literal["open", "queued", "assigned", "closed", "all"], typer.Option(help="Which ones.")
    ] = "open",
    team: Annotated[str | None, typer.Option(help="Team slug.")] = None,
    assignee: Annotated[str | None, typer.Option(help="User id, `me`, or `none`.")] = None,
    channel: Annotated[Literal["whatsapp", "chat_app"] | None, typer.Option(help="Channel.")] = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            help="Customer name, email, phone or WhatsApp number, #number, subject, or message text.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1, max=10000)] = 50,
) -> None:
    """List conversations you may see, newest first.

    Example: max conversations list --status all --search "pedido 1234" --json
    """
    items: list[dict[str, Any]] = []
    for item in cli.client().paginate(
        "/api/v1/conversations",
        "conversations",
        limit=min(limit, 500),
        status=status,
        team=team,
        assignee=assignee,
        channel=channel,
        q=search,
    ):
        items.append(item)
        if len(items) >= limit:
            break
    cli.emit(
        {"conversations": items, "next_cursor": None},
        lambda: cli.table(items, COLUMNS, empty="No conversations."),
    )


@command(app, "show")
def show(
    cli: Cli,
    conversation: ConversationArg,
    messages: Annotated[int, typer.Option(help="How many recent messages to print.", min=0, max=500)] = 20,
) -> None:
    """Show a conversation and its latest messages.

    Example: max conversations show 42
    """
    client = cli.client()
    found = client.get(f"/api/v1/conversations/{conversation}")
    thread = (
        list(client.paginate(f"/api/v1/conversations/{conversation}/messages", "messages", limit=500))[
            -messages:
        ]
        if messages
        else []
    )
    cli.emit({**found, "messages": thread}, lambda: show_conversation(cli, found, thread))


def _act(cli: Cli, conversation: str, verb: str, body: dict[str, Any] | None, done: str) -> None:
    result = cli.client().post(f"/api/v1/conversations/{conversation}/{verb}", body)
    cli.emit(result, lambda: cli.line(done.format(**result)))


@command(app, "assign")
def assign(
    cli: Cli,
    conversation: ConversationArg,
    user: Annotated[str, typer.Argument(help="User id, `me`, or `none` to unassign.")] = "me",
) -> None:
    """Assign a conversation (to yourself by default), or unassign it with `none`.

    Example: max conversations assign 42 me
    """
    user_id = None if user == "none" else user
    if user_id and "@" in user_id:
        user_id = str(cli.client().get(f"/api/v1/users/{user_id}")["id"])
    _act(cli, conversation, "assign", {"user_id": user_id}, "#{number} is now {status}.")


@command(app, "transfer")
def transfer(
    cli: Cli, conversation: ConversationArg, team: Annotated[str, typer.Argument(help="Team slug.")]
) -> None:
    """Move a conversation to another team's queue.

    Example: max conversations transfer 42 sales
    """
    _act(cli, conversation, "transfer", {"team": team}, "#{number} moved to the team's queue.")


@command(app, "priority")
def priority(
    cli: Cli,
    conversation: ConversationArg,
    level: Annotated[Literal["low", "normal", "high", "urgent"], typer.Argument(help="New priority.")],
) -> None:
    """Change a conversation's priority.

    Example: max conversations priority 42 urgent
    """
    result = cli.client().patch(f"/api/v1/conversations/{conversation}", {"priority": level})
    cli.emit(result, lambda: cli.line(f"#{result['number']} is now {result['priority']}."))


@command(app, "close")
def close(
    cli: Cli,
    conversation: ConversationArg,
    reason: Annotated[
        Literal["resolved", "spam", "duplicate", "no_response", "other"], typer.Option(help="Why.")
    ] = "resolved",
) -> None:
    """Close a conversation with a reason.

    Example: max conversations close 42 --reason resolved
    """
    _act(cli, conversation, "close", {"reason": reason}, "#{number} closed ({close_reason}).")


@command(app, "reopen")
def reopen(cli: Cli, conversation: ConversationArg) -> None:
    """Reopen a closed conversation (a new cycle for SLAs).

    Example: max conversations reopen 42
    """
    _act(cli, conversation, "reopen", None, "#{number} reopened (cycle {cycle}).")


@command(app, "reply")
def reply(
    cli: Cli, conversation: ConversationArg, text: Annotated[str, typer.Argument(help="The message.")]
) -> None:
    """Send a text reply (inside WhatsApp's 24 h window).

    Example: max conversations reply 42 "Ya quedó, ¡gracias!"
    """
    result = cli.client().post(f"/api/v1/conversations/{conversation}/messages", {"text": text})
    cli.emit(result, lambda: cli.line(f"Queued message {result['id']} ({result['delivery_status']})."))
