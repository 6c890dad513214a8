"""Change a conversation's priority."""

from __future__ import annotations

from max_tui.dialogs.choice import ChoiceDialog

PRIORITIES = (
    ("urgent", "Urgent"),
    ("high", "High"),
    ("normal", "Normal"),
    ("low", "Low"),
)


class PriorityDialog(ChoiceDialog):
    def __init__(self, number: int, current: str) -> None:
        super().__init__(f"Priority of #{number}", PRIORITIES, current=current)
