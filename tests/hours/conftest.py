"""A server with WhatsApp configured (after-hours replies go through it) and the CLI runner."""

from tests.channels.conftest import app, graph_url, settings, whatsapp, worker  # noqa: F401
from tests.cli.conftest import config_file, home, max_cli  # noqa: F401
