"""Routing tests use the WhatsApp-configured server of the channel tests."""

from tests.channels.conftest import app, graph_url, settings, whatsapp, worker  # noqa: F401
