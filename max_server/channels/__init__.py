"""Channels: WhatsApp (Meta's Cloud API) and the company's own Chat App."""
