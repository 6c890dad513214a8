"""Sends of agents' messages, per channel."""

from max_server.channels import chat_app  # noqa: F401  (registers chat_app.send)
from max_server.channels.whatsapp import send  # noqa: F401  (registers whatsapp.send)
