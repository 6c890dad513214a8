"""What the main screen works with: the API, who is signed in, what is known, and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo

from max_tui.api import ConsoleApi
from max_tui.canned import CannedCatalog
from max_tui.formatting import Now
from max_tui.media import MediaFiles
from max_tui.sla import Target
from max_tui.state import ConversationStore, Viewer
from max_tui.storage import DraftStore, Preferences


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
    files: MediaFiles
    prefs: Preferences
    remember: Callable[[str, object], object]  # saves a preference (off the event loop)
    canned: CannedCatalog = field(default_factory=CannedCatalog)
    # Canned responses inserted into each conversation's draft, counted once the reply is sent.
    canned_pending: dict[str, set[str]] = field(default_factory=dict)
    policies: dict[tuple[str, str], Target] = field(default_factory=dict)
    # (conversation id, metric) the server announced with ``sla.warning``.
    warned: set[tuple[str, str]] = field(default_factory=set)
