"""Pure routing: rule matching and the choice of an agent."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from max_server.domain.routing import Candidate, check_pattern, choose, matches, waiting_reason

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("factura,pago", "Hola, no me llegó la FACTURA", True),
        ("facturación", "problema con la facturacion", True),  # accents ignored both ways
        ("pago", "hubo un apagón", False),  # whole words only
        ("tarjeta de crédito", "mi tarjeta de credito no pasa", True),
        ("refund", "", False),
    ],
)
def test_keywords(pattern: str, text: str, expected: bool) -> None:
    assert matches("keywords", pattern, text) is expected


def test_regex_and_validation() -> None:
    assert matches("regex", r"pedido\s*#?\d{4,}", "mi Pedido #12345 no llega")
    assert not matches("regex", r"^urgente", "no es urgente")
    assert check_pattern("regex", "(") is not None
    assert check_pattern("keywords", " , ,") is not None
    assert check_pattern("keywords", "a" * 1001) is not None
    assert check_pattern("regex", r"\d+") is None


def agent(
    uid: int, load: int = 0, capacity: int = 5, idle_minutes: int | None = None, **skills: int
) -> Candidate:
    idle = T0 - timedelta(minutes=idle_minutes) if idle_minutes is not None else None
    return Candidate(
        user_id=uid, name=f"A{uid}", capacity=capacity, load=load, skills=skills, idle_since=idle
    )


def test_capacity_picks_the_lowest_load_ratio_then_the_one_idle_longest() -> None:
    pool = [
        agent(1, load=2, capacity=4),
        agent(2, load=1, capacity=4, idle_minutes=1),
        agent(3, load=3, capacity=8, idle_minutes=30),
    ]
    assert choose(pool, [], may_relax=False).winner.user_id == 2  # type: ignore[union-attr]
    tied = [agent(1, load=1, capacity=2, idle_minutes=5), agent(2, load=1, capacity=2, idle_minutes=50)]
    assert choose(tied, [], may_relax=False).winner.user_id == 2  # type: ignore[union-attr]
    never = [agent(1, load=0, idle_minutes=500), agent(2, load=0)]
    assert choose(never, [], may_relax=False).winner.user_id == 2  # type: ignore[union-attr]


def test_nobody_goes_over_capacity() -> None:
    full = [agent(1, load=3, capacity=3), agent(2, load=0, capacity=0)]
    choice = choose(full, [], may_relax=True)
    assert (choice.winner, choice.strategy) == (None, "no_agent_available")


def test_skills_need_all_of_them_not_any() -> None:
    need = [{"skill": "english", "min": 3}, {"skill": "billing", "min": 3}]
    only_english = agent(1, english=5)
    both_weak = agent(2, english=5, billing=2)
    both = agent(3, load=4, english=3, billing=3)
    better = agent(4, load=4, english=5, billing=4)
    choice = choose([only_english, both_weak, both, better], need, may_relax=False)
    assert (choice.winner.user_id, choice.strategy) == (4, "skills")  # type: ignore[union-attr]
    assert "english≥3" in choice.reason
    flags = {c["user_id"]: c["qualifies"] for c in choice.scored}
    assert flags == {"1": False, "2": False, "3": True, "4": True}


def test_skills_wait_then_relax_to_capacity() -> None:
    need = [{"skill": "french", "min": 2}]
    pool = [agent(1, load=1), agent(2, load=0, capacity=2, french=4)]
    pool[1].load = 2  # the only French speaker is full
    waiting = choose(pool, need, may_relax=False)
    assert (waiting.winner, waiting.strategy) == (None, "waiting_for_skills")
    assert "capacity" in waiting.reason
    relaxed = choose(pool, need, may_relax=True)
    assert (relaxed.winner.user_id, relaxed.strategy) == (1, "skills_relaxed")  # type: ignore[union-attr]


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=12))
def test_the_winner_always_has_room_and_the_lowest_ratio(loads: list[tuple[int, int]]) -> None:
    pool = [agent(i, load=load, capacity=cap) for i, (load, cap) in enumerate(loads)]
    choice = choose(pool, [], may_relax=False)
    with_room = [c for c in pool if c.load < c.capacity]
    if not with_room:
        assert choice.winner is None
        return
    assert choice.winner is not None and choice.winner.load < choice.winner.capacity
    assert choice.winner.load_ratio == min(c.load_ratio for c in with_room)


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 5), st.integers(0, 5)), max_size=6
    ),
    st.booleans(),
    st.booleans(),
)
def test_the_cheap_waiting_reason_is_the_one_choose_gives(
    agents: list[tuple[int, int, int, int]], needs_skills: bool, may_relax: bool
) -> None:
    """A pass compares the cheap reason with the last recorded one: they must never disagree."""
    pool = [
        agent(i, load=load, capacity=cap, english=english, billing=billing)
        for i, (load, cap, english, billing) in enumerate(agents)
    ]
    need = [{"skill": "english", "min": 3}, {"skill": "billing", "min": 2}] if needs_skills else []
    choice = choose(pool, need, may_relax=may_relax)
    if choice.winner is None:
        assert (choice.strategy, choice.reason) == waiting_reason(pool, need, may_relax=may_relax)
        assert choice.strategy in ("waiting_for_skills", "no_agent_available")
