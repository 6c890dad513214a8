"""Clients stay light: the CLI and the console never load the server's database or web stack."""

import subprocess
import sys

HEAVY = ("sqlalchemy", "sqlmodel", "fastapi", "alembic", "psycopg", "uvicorn", "boto3")


def test_cli_and_console_import_no_server_code() -> None:
    code = (
        "import sys, max_cli.main, max_tui, max_server.client, max_server.schemas; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_help_runs_without_server_code() -> None:
    code = (
        "import sys\nfrom max_cli.main import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print('LOADED=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "LOADED="
