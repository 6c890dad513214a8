"""What the main screen works with: the API, who is signed in, what is known, and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo

from max_tui.api import ConsoleApi
from max_tui.formatting import Now
from max_tui.state import ConversationStore, Viewer
from max_tui.storage import DraftStore


@dataclass
class ConsoleContext:
    api: ConsoleApi
    viewer: Viewer
    store: ConversationStore
    drafts: DraftStore
    drafts_changed: Callable[[], None]
    now: Now
    tz: tzinfo
    server: str
