"""Close a conversation with a reason (the API's close reasons)."""

from __future__ import annotations

from max_tui.dialogs.choice import ChoiceDialog

REASONS = (
    ("resolved", "Resolved: the customer got what they needed"),
    ("no_response", "No response: the customer went quiet"),
    ("duplicate", "Duplicate: handled in another conversation"),
    ("spam", "Spam"),
    ("other", "Other"),
)


class CloseDialog(ChoiceDialog):
    def __init__(self, number: int) -> None:
        super().__init__(f"Close #{number} because…", REASONS, current="resolved")
