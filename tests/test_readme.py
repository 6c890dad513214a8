"""The README's Quickstart is what a newcomer and CI run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_the_quickstart_has_exactly_two_commands() -> None:
    commands = quickstart_commands()
    assert len(commands) == 2
    assert all("\n" not in c for c in commands)


def test_the_first_runs_the_demo_and_not_the_suite() -> None:
    first = quickstart_commands()[0]
    assert "max demo" in first
    assert "pytest" not in first


def test_the_second_is_the_command_ci_runs() -> None:
    second = quickstart_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert second in ci, f"{second!r} is not a line of .ci/run"
    assert "pytest" in second
