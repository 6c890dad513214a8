"""Global roles are ordered: agent < supervisor < admin."""

from __future__ import annotations

from typing import Literal

Role = Literal["agent", "supervisor", "admin"]
ROLE_RANK: dict[str, int] = {"agent": 1, "supervisor": 2, "admin": 3}


def role_at_least(role: str, minimum: str) -> bool:
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[minimum]
