"""WhatsApp Cloud API: webhook parsing, the Graph API client, and a local sandbox of it."""
