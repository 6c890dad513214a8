"""Routing rules and the choice of an agent (pure).

Triage: the first rule (by position) whose keywords or regular expression match the first
customer message sets team, priority and required skills.

Assignment (DESIGN §6, seed §8 done right):
* capacity-based: among online agents with room, the lowest load ratio (open assigned ÷
  capacity) wins; ties go to the one idle longest; nobody goes over capacity;
* skills-based: only agents holding ALL required skills at their minimum proficiency are
  eligible, ranked by summed proficiency, then load, then idleness; when none has room for
  ``skills_relax_after``, fall back to capacity-based within the team.
"""

from __future__ import annotations

import heapq
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MAX_PATTERN = 1000


def fold(text: str) -> str:
    """Lowercase without accents: "Facturación" matches "facturacion"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def keywords_of(pattern: str) -> list[str]:
    return [fold(k.strip()) for k in pattern.split(",") if k.strip()]


def check_pattern(match_type: str, pattern: str) -> str | None:
    """The problem with a rule's pattern, or None."""
    if not pattern.strip():
        return "the pattern is empty"
    if len(pattern) > MAX_PATTERN:
        return f"the pattern is longer than {MAX_PATTERN} characters"
    if match_type == "regex":
        try:
            re.compile(pattern)
        except re.error as exc:
            return f"not a valid regular expression: {exc}"
    elif match_type == "keywords" and not keywords_of(pattern):
        return "no keywords (separate them with commas)"
    return None


def matches(match_type: str, pattern: str, text: str | None) -> bool:
    if not text:
        return False
    if match_type == "regex":
        return re.search(pattern, text, re.IGNORECASE) is not None
    folded = fold(text)
    for keyword in keywords_of(pattern):
        # Whole words or phrases, so "pago" does not match "apagón".
        if re.search(r"(?<!\w)" + re.escape(keyword) + r"(?!\w)", folded):
            return True
    return False


@dataclass(slots=True)  # hundreds per assignment pass
class Candidate:
    user_id: int
    name: str
    capacity: int
    load: int
    skills: dict[str, int] = field(default_factory=dict)
    idle_since: datetime | None = None  # last assignment (None: never assigned)

    @property
    def has_room(self) -> bool:
        return self.load < self.capacity

    @property
    def load_ratio(self) -> float:
        return self.load / self.capacity if self.capacity else float("inf")


@dataclass
class Choice:
    winner: Candidate | None
    strategy: str  # capacity | skills | skills_relaxed | waiting_for_skills | no_agent_available
    reason: str
    scored: list[dict[str, Any]]


def _idle_key(candidate: Candidate) -> float:
    # Never assigned counts as idle the longest.
    return candidate.idle_since.timestamp() if candidate.idle_since else float("-inf")


def qualifies(candidate: Candidate, required: list[dict[str, Any]]) -> bool:
    return all(candidate.skills.get(str(r["skill"]), 0) >= int(r.get("min", 1)) for r in required)


def skill_score(candidate: Candidate, required: list[dict[str, Any]]) -> int:
    return sum(candidate.skills.get(str(r["skill"]), 0) for r in required)


SHOWN = 10  # candidates kept in a decision record: the best ones, then a count of the rest


def choose(candidates: list[Candidate], required: list[dict[str, Any]], *, may_relax: bool) -> Choice:
    """Picks the agent for one conversation (candidates: the team's online agents)."""
    needs = [(str(r["skill"]), int(r.get("min", 1))) for r in required]
    # Each candidate's rank, best first: has room, qualifies, skill score, load ratio, idle
    # longest, then the pool's order. One pass, plain tuples: a pass runs this for hundreds of
    # agents per conversation.
    keys = []
    eligible = with_room = 0
    for index, c in enumerate(candidates):
        room = c.load < c.capacity
        fits, score = True, 0
        for skill, least in needs:
            level = c.skills.get(skill, 0)
            score += level
            fits = fits and level >= least
        with_room += room
        eligible += room and fits
        keys.append((not room, not fits, -score, c.load_ratio, _idle_key(c), index))
    ranked = heapq.nsmallest(SHOWN, keys)
    scored = [_shown(candidates[key[-1]], not key[1], -key[2] if required else None) for key in ranked]
    if len(candidates) > SHOWN:
        scored.append({"more": len(candidates) - SHOWN})
    if required and eligible:  # the best ranked has room and every skill, the highest score first
        best = candidates[ranked[0][-1]]
        return Choice(best, "skills", _why_skills(best, required, eligible), scored)
    if (required and not may_relax) or not with_room:
        return Choice(None, *waiting_reason(candidates, required, may_relax=may_relax), scored)
    # The lowest load ratio among those with room, then idle longest (relaxed: skills no longer count).
    best = candidates[min((k[3], k[4], k[5]) for k in keys if not k[0])[-1]]
    strategy = "skills_relaxed" if required else "capacity"
    prefix = "no agent with all the skills had room in time; " if required else ""
    return Choice(best, strategy, prefix + _why_capacity(best, with_room), scored)


def _shown(c: Candidate, fits: bool, score: int | None) -> dict[str, Any]:
    """A candidate as a decision record keeps it."""
    return {
        "user_id": str(c.user_id),
        "name": c.name,
        "load": c.load,
        "capacity": c.capacity,
        "load_ratio": round(c.load_ratio, 3) if c.capacity else None,
        "has_room": c.has_room,
        "qualifies": fits,
        "skill_score": score,
        "idle_since": c.idle_since.isoformat() if c.idle_since else None,
    }


def waiting_reason(
    candidates: list[Candidate], required: list[dict[str, Any]], *, may_relax: bool
) -> tuple[str, str]:
    """Why a conversation waits (strategy, reason) when :func:`choose` finds nobody; cheap (no
    scoring), so a pass can tell whether the reason changed before recording it."""
    with_room = [c for c in candidates if c.has_room]
    if required and not may_relax and not any(qualifies(c, required) for c in with_room):
        if any(qualifies(c, required) for c in candidates):
            return "waiting_for_skills", "every agent with the required skills is at capacity"
        return "waiting_for_skills", "no online agent has all the required skills"
    if not candidates:
        return "no_agent_available", "no online agent in the team"
    return "no_agent_available", "no online agent with room"


def _why_skills(best: Candidate, required: list[dict[str, Any]], eligible: int) -> str:
    skills = ", ".join(f"{r['skill']}≥{r.get('min', 1)}" for r in required)
    return (
        f"{best.name} has all of {skills} (score {skill_score(best, required)}), the highest among "
        f"{eligible} eligible agent(s) with room; load {best.load}/{best.capacity}"
    )


def _why_capacity(best: Candidate, with_room: int) -> str:
    load = f"{best.load}/{best.capacity}"
    return f"{best.name} has the lowest load ({load}) of {with_room} online agent(s) with room"
