"""``max sandbox run``: a local stand-in for the WhatsApp Graph API, to try MAX without Meta."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from max_cli.output import Cli, CliError, command

if TYPE_CHECKING:
    from max_server.channels.whatsapp.sandbox import RecordedRequest, Sandbox

app = typer.Typer(help="A local WhatsApp Graph API sandbox.", no_args_is_help=True)
DEFAULT_PORT = 8765


@command(app, "run", connects=False)
def run(
    cli: Cli,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).", min=0, max=65535)] = (
        DEFAULT_PORT
    ),
    app_secret: Annotated[
        str,
        typer.Option(
            envvar="MAX_WHATSAPP__APP_SECRET", help="Signs the webhooks sent to MAX (whatsapp.app_secret)."
        ),
    ] = "sandbox-app-secret",  # noqa: S107 - a sandbox default, shown so MAX can be set to match
    access_token: Annotated[
        str,
        typer.Option(
            envvar="MAX_WHATSAPP__ACCESS_TOKEN", help="Bearer token MAX must send (whatsapp.access_token)."
        ),
    ] = "sandbox-token",  # noqa: S107 - a sandbox default
    phone_number_id: Annotated[
        str | None, typer.Option(envvar="MAX_WHATSAPP__PHONE_NUMBER_ID", help="Business phone number id.")
    ] = None,
    waba_id: Annotated[
        str | None, typer.Option(envvar="MAX_WHATSAPP__WABA_ID", help="WhatsApp Business Account id.")
    ] = None,
) -> None:
    """Serve the sandbox in the foreground until Ctrl-C or SIGTERM.

    It prints the whatsapp.* settings that point MAX at it. Play Meta's part with
    POST /_sandbox/customer-message (a customer writes), /_sandbox/status (a sent message is
    delivered, read or failed) and /_sandbox/template-status (a template is approved or
    rejected); GET /_sandbox/sent and /_sandbox/requests list what MAX sent.

    Example: max sandbox run --port 8765 --app-secret s3cret
    """
    from max_server.channels.whatsapp import payloads
    from max_server.channels.whatsapp.sandbox import Sandbox

    sandbox = Sandbox(
        app_secret,
        access_token,
        phone_number_id or payloads.DEFAULT_PHONE_NUMBER_ID,
        waba_id or payloads.DEFAULT_WABA_ID,
        port=port,
    )
    sandbox.on_request = lambda r: _log_request(cli, r)
    try:
        sandbox.start()
    except OSError as exc:
        raise CliError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", code="port_unavailable"
        ) from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _announce(cli, sandbox)
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sandbox.stop()
    cli.info("Sandbox stopped.")


def _announce(cli: Cli, sandbox: Sandbox) -> None:
    settings = {
        "graph_url": sandbox.graph_url,
        "access_token": sandbox.access_token,
        "app_secret": sandbox.app_secret,
        "phone_number_id": sandbox.phone_number_id,
        "waba_id": sandbox.waba_id,
    }
    control = {
        "customer_message": f"{sandbox.url}/_sandbox/customer-message",
        "status": f"{sandbox.url}/_sandbox/status",
        "template_status": f"{sandbox.url}/_sandbox/template-status",
        "sent": f"{sandbox.url}/_sandbox/sent",
        "requests": f"{sandbox.url}/_sandbox/requests",
    }
    if cli.json:
        # One line, flushed: a script reads it and leaves the process running.
        info = {"url": sandbox.url, "whatsapp": settings, "control": control}
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        return
    cli.line(f"WhatsApp sandbox listening on {sandbox.url}")
    cli.line("")
    cli.line("Point MAX at it (config.toml, or the MAX_WHATSAPP__<KEY> environment variables):")
    cli.line("  [whatsapp]")
    for key, value in settings.items():
        cli.line(f"  {key} = {json.dumps(value)}")
    cli.line("")
    example = {"to_url": "http://127.0.0.1:8000", "from": "5215512345678", "name": "Ana", "text": "Hola"}
    cli.line("A customer writes to MAX (to_url is MAX's base URL):")
    cli.line(
        f"  curl -X POST {control['customer_message']} -H 'Content-Type: application/json' "
        f"-d '{json.dumps(example)}'"
    )
    status = {"to_url": example["to_url"], "status": "read"}
    cli.line("The latest message MAX sent is read (or delivered, failed; add wamid for another):")
    cli.line(
        f"  curl -X POST {control['status']} -H 'Content-Type: application/json' -d '{json.dumps(status)}'"
    )
    verdict = {"to_url": example["to_url"], "name": "order_shipped", "language": "es", "event": "APPROVED"}
    cli.line("Meta approves (or REJECTED) a template MAX submitted:")
    cli.line(
        f"  curl -X POST {control['template_status']} -H 'Content-Type: application/json' "
        f"-d '{json.dumps(verdict)}'"
    )
    cli.line(f"What MAX sent:  curl {control['sent']}   (every request: curl {control['requests']})")
    cli.line("")
    cli.line("Press Ctrl-C to stop.")
    sys.stdout.flush()


def _log_request(cli: Cli, request: RecordedRequest) -> None:
    query = "&".join(f"{k}={v}" for k, v in request.query.items() if k != "hash")
    cli.info(f"{request.method} {request.path}{'?' + query if query else ''}")
