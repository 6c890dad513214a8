"""The CLI's runner for canned-response commands."""

from tests.cli.conftest import config_file, home, max_cli  # noqa: F401
