"""``max doctor``: is this server set up right? One line per check, with the fix for what fails.

It reads the server's config like ``max db upgrade`` (``--config`` or ``MAX_CONFIG``, then the
``MAX_<SECTION>__<KEY>`` environment) and looks at what the server depends on: the config, the
database and its migrations, media storage (a probe object written, read back and deleted), the
WhatsApp credentials (a Graph API call) and Meta's way in (the webhook handshake through
``server.public_url``). Server code is imported inside the checks only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from max_cli import local
from max_cli.output import Cli, CliError, command

if TYPE_CHECKING:
    import httpx

    from max_server.db import Database
    from max_server.settings import Settings

HTTP_TIMEOUT = 10.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    skipped: bool = False


def _passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def _failed(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)


def _skipped(name: str, why: str) -> Check:
    return Check(name, True, f"skipped: {why}", None, skipped=True)


def register(app: typer.Typer) -> None:
    @command(app, "doctor", connects=False)
    def doctor(
        cli: Cli,
        config: Annotated[
            str | None, typer.Option("--config", "-c", envvar="MAX_CONFIG", help="Server config file (TOML).")
        ] = None,
    ) -> None:
        """Check the server's setup, one line per part, with the fix for each failure.

        Config, database, migrations, storage (a probe object written, read and
        deleted), WhatsApp credentials (a Graph API call) and the webhook URL
        (Meta's handshake through server.public_url). Skipped checks say why.
        Exit 0 when every check passes, 1 otherwise.

        Example: max doctor --config /etc/max/config.toml --json
        """
        checks = run_checks(config)
        healthy = all(c.ok for c in checks)
        result = {"checks": [asdict(c) for c in checks], "ok": healthy}
        cli.emit(result, lambda: _show(cli, checks))
        if not healthy:
            raise typer.Exit(1)


def _show(cli: Cli, checks: list[Check]) -> None:
    width = max(len(c.name) for c in checks)
    for check in checks:
        mark = "skip" if check.skipped else ("ok  " if check.ok else "FAIL")
        detail = check.detail.removeprefix("skipped: ") if check.skipped else check.detail
        cli.line(f"{mark}  {check.name.ljust(width)}  {detail}")
        if check.fix:
            cli.line(f"      {' ' * width}  fix: {check.fix}")


def run_checks(config: str | None) -> list[Check]:
    """Every check in order; a check that cannot run because an earlier one failed is skipped."""
    settings, first = _config(config)
    if settings is None:
        later = ("database", "migrations", "storage", "whatsapp", "webhook")
        return [first, *(_skipped(name, "the config is not valid") for name in later)]
    checks = [first]
    db, reachable = _database(settings)
    checks.append(reachable)
    try:
        if db is not None:
            checks.append(_migrations(db, settings))
        elif reachable.ok:
            checks.append(
                _skipped("migrations", "the database does not exist yet; the server migrates it on start")
            )
        else:
            checks.append(_skipped("migrations", "the database is unreachable"))
    finally:
        if db is not None:
            db.dispose()
    checks += [_storage(settings), _whatsapp(settings), _webhook(settings)]
    return checks


# Config, database, migrations ------------------------------------------------------------------
def _config(config: str | None) -> tuple[Settings | None, Check]:
    from max_server.settings import config_path_from_env

    path = config_path_from_env(config)
    where = str(path) if path else "no config file (defaults and MAX_* environment)"
    try:
        settings = local.load(config)
    except CliError as exc:
        return None, _failed(
            "config",
            exc.message,
            "correct the setting named above in the file or its MAX_<SECTION>__<KEY> variable",
        )
    return settings, _passed("config", f"{where}: valid ({settings.server.environment})")


def _database(settings: Settings) -> tuple[Database | None, Check]:
    from max_server.db import redact_url

    shown = redact_url(settings.database_url)
    missing = _missing_sqlite_file(settings)
    if missing is not None:  # opening it would create it: say what the server will do instead
        if os.access(missing.parent, os.W_OK | os.X_OK):
            return None, _passed("database", f"{missing} does not exist yet; the server creates it on start")
        return None, _failed(
            "database",
            f"{missing} does not exist and its directory {missing.parent} is missing or not writable",
            "create the directory for the server's user, or set database.url (MAX_DATABASE__URL)",
        )
    try:
        db = local.open_database(settings)
    except CliError as exc:
        if settings.is_sqlite:
            fix = "check that the database file's directory exists and the server's user may write to it"
        else:
            fix = (
                "check database.url (MAX_DATABASE__URL): host, port, user, password and database name, "
                "and that PostgreSQL accepts connections from this machine"
            )
        return None, _failed("database", exc.message, fix)
    return db, _passed("database", f"{shown} is reachable")


def _missing_sqlite_file(settings: Settings) -> Path | None:
    from sqlalchemy.engine import make_url

    if not settings.is_sqlite:
        return None
    name = make_url(settings.database_url).database
    if not name or name == ":memory:" or Path(name).exists():
        return None
    return Path(name)


def _migrations(db: Database, settings: Settings) -> Check:
    from max_server import migrate

    current, head = migrate.current_revision(db), migrate.head_revision()
    if current == head:
        return _passed("migrations", f"schema is current ({head})")
    if settings.auto_migrate:
        return _passed(
            "migrations",
            f"schema is at {current or 'nothing yet'}; the server applies migrations up to {head} on start "
            "(database.auto_migrate)",
        )
    return _failed(
        "migrations",
        f"schema is at {current or 'nothing (empty database)'}, this version needs {head}",
        "run `max db upgrade` with the same config before starting the server",
    )


# Storage -----------------------------------------------------------------------------------------
def _storage(settings: Settings) -> Check:
    from max_server.storage import StorageError, get_storage

    backend = settings.storage.backend
    where = f"bucket {settings.storage.bucket}" if backend == "s3" else str(settings.storage_path)
    key = f"doctor-probe-{secrets.token_hex(8)}.txt"
    payload = f"max doctor probe {key}".encode()
    step = "open the storage"
    created_root = backend == "local" and not settings.storage_path.exists()
    try:
        storage = get_storage(settings)
        with tempfile.TemporaryDirectory(prefix="max-doctor-") as scratch:
            probe = Path(scratch) / "probe.txt"
            probe.write_bytes(payload)
            step = "write a probe object"
            storage.put_file(key, probe, "text/plain")
        step = "read the probe object back"
        with storage.open(key) as stream:
            if stream.read() != payload:
                raise StorageError("the probe object read back differs from what was written")
        step = "delete the probe object"
        storage.delete(key)
        if storage.exists(key):
            raise StorageError("the probe object is still there after deleting it")
    except StorageError as exc:
        return _failed("storage", f"{backend} ({where}): cannot {step}: {exc}", _storage_fix(settings))
    finally:
        if created_root:  # the probe made the directory: leave the disk as it was
            with contextlib.suppress(OSError):
                settings.storage_path.rmdir()
    return _passed("storage", f"{backend} ({where}): wrote, read and deleted a probe object")


def _storage_fix(settings: Settings) -> str:
    if settings.storage.backend == "s3":
        return (
            "check storage.bucket, endpoint_url, region and the access key (MAX_STORAGE__*): the key "
            "needs s3:PutObject, s3:GetObject and s3:DeleteObject on the bucket"
        )
    return (
        f"make {settings.storage_path} a directory the server's user can write (e.g. chown it to that "
        "user, and mount its filesystem read-write), or set storage.path (MAX_STORAGE__PATH)"
    )


# WhatsApp ----------------------------------------------------------------------------------------
def _whatsapp(settings: Settings) -> Check:
    wa = settings.whatsapp
    if not wa.phone_number_id:
        return _skipped("whatsapp", "WhatsApp is not configured (whatsapp.phone_number_id is empty)")
    if not wa.access_token:
        return _failed(
            "whatsapp",
            "whatsapp.access_token is empty: MAX cannot call the Graph API",
            "set whatsapp.access_token (MAX_WHATSAPP__ACCESS_TOKEN) to a system user's permanent token",
        )
    import httpx  # loaded here: `max --help` stays fast

    url = f"{wa.graph_url.rstrip('/')}/{wa.phone_number_id}"
    try:
        response = httpx.get(
            url,
            params={"fields": "display_phone_number,verified_name,quality_rating"},
            headers={"Authorization": f"Bearer {wa.access_token}"},
            timeout=min(float(wa.timeout), HTTP_TIMEOUT),
        )
    except httpx.HTTPError as exc:
        return _failed(
            "whatsapp",
            f"cannot reach {wa.graph_url}: {type(exc).__name__}",
            "check this machine's network, proxy and firewall, and whatsapp.graph_url",
        )
    body = _json(response)
    if response.status_code == 200 and str(body.get("id")) == wa.phone_number_id:
        quality = body.get("quality_rating") or "unknown"
        name = body.get("verified_name") or "no verified name"
        number = body.get("display_phone_number") or wa.phone_number_id
        return _passed("whatsapp", f"the token reaches number {number} ({name}, quality {quality})")
    found = body.get("error")
    error: dict[str, Any] = found if isinstance(found, dict) else {}
    code, message = error.get("code"), error.get("message") or f"HTTP {response.status_code}"
    detail = f"GET /{wa.phone_number_id} answered {response.status_code}: {message}"
    if code == 190 or response.status_code == 401:
        fix = (
            "the access token is invalid or expired: make a system user's permanent token and set "
            "whatsapp.access_token (MAX_WHATSAPP__ACCESS_TOKEN)"
        )
    elif code in (10, 200) or response.status_code == 403:
        fix = "grant the token whatsapp_business_messaging and whatsapp_business_management on this WABA"
    elif code == 100:
        fix = (
            "check whatsapp.phone_number_id (the App Dashboard's Phone number ID) and that the "
            "token's WABA owns it"
        )
    else:
        fix = "check whatsapp.graph_url and Meta's status page; run `max doctor` again"
    return _failed("whatsapp", detail, fix)


# The webhook endpoint, as Meta reaches it --------------------------------------------------------
def _webhook(settings: Settings) -> Check:
    wa, server = settings.whatsapp, settings.server
    if not wa.phone_number_id:
        return _skipped("webhook", "WhatsApp is not configured, so Meta has nothing to call")
    if not server.public_url:
        return _failed(
            "webhook",
            "server.public_url is empty: Meta cannot reach this server",
            "set server.public_url (MAX_SERVER__PUBLIC_URL) to the https:// address that reaches MAX, then "
            "register <public_url>/webhooks/whatsapp in Meta's App Dashboard",
        )
    if not wa.verify_token:
        return _failed(
            "webhook",
            "whatsapp.verify_token is empty: Meta's subscription handshake will be refused",
            "set whatsapp.verify_token (MAX_WHATSAPP__VERIFY_TOKEN) and enter the same value in "
            "the App Dashboard",
        )
    import httpx

    url = server.public_url.rstrip("/") + "/webhooks/whatsapp"
    challenge = secrets.token_hex(8)
    query = {"hub.mode": "subscribe", "hub.verify_token": wa.verify_token, "hub.challenge": challenge}
    try:
        response = httpx.get(url, params=query, timeout=HTTP_TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as exc:
        return _failed(
            "webhook",
            f"cannot reach {url}: {type(exc).__name__}",
            "start the server (`max server run`) and check that public_url's DNS, TLS certificate and "
            "proxy lead to it",
        )
    if response.status_code == 200 and response.text == challenge:
        if server.environment == "production" and not url.startswith("https://"):
            return _failed(
                "webhook",
                f"{url} echoes the challenge, but over plain http",
                "Meta calls https:// URLs only: put MAX behind TLS and set server.public_url to the "
                "https address",
            )
        return _passed("webhook", f"{url} echoes Meta's handshake challenge")
    return _failed(
        "webhook", f"{url} answered {response.status_code} to the handshake", _webhook_fix(response)
    )


def _webhook_fix(response: httpx.Response) -> str:
    if response.status_code == 403:
        return (
            "the server behind public_url has a different whatsapp.verify_token (or public_url leads to "
            "another server): run it with this config"
        )
    if response.status_code == 404:
        return "public_url does not lead to MAX: route /webhooks/whatsapp to it in your proxy"
    if 300 <= response.status_code < 400:
        return f"public_url redirects (to {response.headers.get('location')}): set it to the final address"
    return "check the server's log and the proxy in front of it"


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
