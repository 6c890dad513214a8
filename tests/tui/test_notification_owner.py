"""The console counts and toasts only its own user's notifications, whatever the stream carries
(the server sends each person only their own; a console must not trust that blindly)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tui.conftest import Agent
from tests.tui.test_live_console import started

pytestmark = pytest.mark.anyio


def notification(user_id: object, text: str) -> dict[str, Any]:
    return {
        "id": "1",
        "seq": 1,
        "type": "notification.created",
        "created_at": "2026-03-02T15:00:00Z",
        "data": {
            "id": "7",
            "user_id": str(user_id),
            "kind": "conversation.escalated",
            "text": text,
            "data": {},
            "read_at": None,
            "created_at": "2026-03-02T15:00:00Z",
        },
    }


async def test_someone_else_s_notification_is_neither_counted_nor_toasted(console: Any, agent: Agent) -> None:
    app = console()
    async with app.run_test(size=(120, 36)) as pilot:
        main = await started(pilot)
        await main.apply_event(notification(int(agent.user.id) + 1000, "for somebody else"))
        await pilot.pause()
        assert main.notifications.unread == 0
        assert "for somebody else" not in [n.message for n in app._notifications]
        await main.apply_event(notification(agent.user.id, "for Ana"))
        await pilot.pause()
        assert main.notifications.unread == 1
        assert "for Ana" in [n.message for n in app._notifications]
