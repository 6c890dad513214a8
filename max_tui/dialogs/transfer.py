"""Transfer a conversation to another team's queue (it arrives there unassigned)."""

from __future__ import annotations

from collections.abc import Sequence

from max_server.schemas import TeamPublic
from max_tui.dialogs.choice import ChoiceDialog


class TransferDialog(ChoiceDialog):
    def __init__(self, number: int, teams: Sequence[TeamPublic], current_team_id: str | None) -> None:
        choices = [
            (team.slug, f"{team.name} ({team.slug}){' · current' if team.id == current_team_id else ''}")
            for team in teams
        ]
        current = next((t.slug for t in teams if t.id == current_team_id), None)
        super().__init__(f"Transfer #{number} to…", choices, current=current)
