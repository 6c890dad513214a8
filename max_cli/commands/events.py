"""``max events tail``: the live event stream, one JSON object per line."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from max_cli.output import EXIT_AUTH, Cli, CliError, command

app = typer.Typer(help="The live event stream.", no_args_is_help=True)


def _ws_url(base: str, after: int | None) -> str:
    url = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/api/v1/events"
    return url + (f"?after={after}" if after is not None else "")


@command(app, "tail")
def tail(
    cli: Cli,
    after: Annotated[
        int | None, typer.Option(help="Replay events after this seq first (0: all kept).", min=0)
    ] = None,
    count: Annotated[int | None, typer.Option(help="Stop after this many events.", min=1)] = None,
) -> None:
    """Print events as they happen; reconnects (resuming after the last seq) when dropped.

    A server that cannot be reached at the start is an error (exit 1), not a wait.

    With --json each line is one event envelope {id, seq, type, created_at, data}, flushed as
    it arrives; nothing else is printed on stdout.

    Example: max events tail --after 0 --json | jq .type
    """
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
    from websockets.sync.client import connect

    conn = cli.connection
    if not conn.token:
        cli.client()  # raises the usual "no API token" error
    seen, last, backoff, connected = 0, after, 0.5, False
    while True:
        try:
            with connect(
                _ws_url(conn.url, last),
                additional_headers={"Authorization": f"Bearer {conn.token}"},
                open_timeout=10,
                max_size=2**24,
            ) as socket:
                backoff, connected = 0.5, True
                for raw in socket:
                    frame: dict[str, Any] = json.loads(raw)
                    if "control" in frame:
                        if frame["control"] == "resync":
                            reason, seq = frame.get("reason", ""), frame.get("latest_seq")
                            cli.info(f"resync: {reason}; continuing from seq {seq}")
                        if last is None or frame["control"] == "resync":
                            last = frame.get("latest_seq", last)
                        continue
                    last = frame["seq"]
                    _print(cli, frame)
                    seen += 1
                    if count is not None and seen >= count:
                        return
        except InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise CliError(
                    "the server refused the token", exit_code=EXIT_AUTH, code="invalid_token"
                ) from None
            raise CliError(
                f"the server refused the stream: HTTP {exc.response.status_code}", code="stream_refused"
            ) from None
        except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
            code = getattr(getattr(exc, "rcvd", None), "code", None)
            if code == 4401:
                raise CliError("the token was revoked", exit_code=EXIT_AUTH, code="invalid_token") from None
            if not connected:  # a wrong URL or a server that is down: say so, do not wait forever
                raise CliError(
                    f"cannot reach the MAX server at {conn.url}: {type(exc).__name__}", code="unreachable"
                ) from None
            cli.info(f"connection lost ({type(exc).__name__}); reconnecting after seq {last}")
            time.sleep(backoff)
            backoff = min(backoff * 2, 15.0)
        except KeyboardInterrupt:
            return


def _print(cli: Cli, event: dict[str, Any]) -> None:
    if cli.json:
        sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    data = event.get("data") or {}
    subject = data.get("number") or data.get("conversation_id") or data.get("id") or ""
    cli.line(f"{event['seq']:>8}  {event['created_at']}  {event['type']:<28} {subject}")
