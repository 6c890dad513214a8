"""``max demo``: MAX working on one machine with nothing configured.

A throwaway SQLite database and media folder (``runner``), seeded through the services
(``seed``), the server and the WhatsApp Graph API sandbox on free ports, a local receiver that
verifies MAX's outbound webhooks (``receiver``), and simulated customers writing on WhatsApp and
the Chat App (``customers``).
"""
