"""WhatsApp message templates: the checks MAX applies before submitting one to Meta, counting
and filling its parameters (pure functions).

Meta's rules (reference/whatsapp-cloud-api.md §5): a name of lowercase letters, digits and
underscores (at most 512); category MARKETING, UTILITY or AUTHENTICATION; body at most 1024
characters, header text and footer at most 60, button labels at most 25. Positional variables
are ``{{1}}`` … ``{{n}}`` without gaps, and Meta wants an example value for each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NAME_PATTERN = re.compile(r"^[a-z0-9_]{1,512}$")
# Meta's codes: "es", "en_US", "pt_BR", "zh_HK", "fil", "es_419" …
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$")
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS")
HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION")
BODY_LIMIT = 1024
HEADER_LIMIT = 60
FOOTER_LIMIT = 60
BUTTON_LABEL_LIMIT = 25
MAX_BUTTONS = 10
PARAMETER_LIMIT = 1024
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def placeholders(text: str) -> list[str]:
    """The variable names in ``text`` in order of appearance (``"1"``, ``"2"``, or named ones)."""
    return [match.group(1) for match in _PLACEHOLDER.finditer(text)]


def variable_count(text: str) -> int:
    """How many distinct variables ``text`` uses (``{{1}}`` twice counts once)."""
    return len(set(placeholders(text)))


def component(components: Sequence[Any], kind: str) -> dict[str, Any] | None:
    """The first component of type ``kind`` (case-insensitive), if any."""
    for item in components:
        if isinstance(item, Mapping) and str(item.get("type", "")).upper() == kind:
            return dict(item)
    return None


def body_text(components: Sequence[Any]) -> str:
    found = component(components, "BODY")
    text = found.get("text") if found else None
    return text if isinstance(text, str) else ""


def header_text(components: Sequence[Any]) -> str:
    """The header's text when it is a TEXT header, else ``""``."""
    found = component(components, "HEADER")
    if not found or str(found.get("format", "TEXT")).upper() != "TEXT":
        return ""
    text = found.get("text")
    return text if isinstance(text, str) else ""


def normalise(components: Sequence[Any]) -> list[Any]:
    """Component types and header formats upper-cased; a flat ``body_text`` example list is
    wrapped the way Meta wants it (``[["Juan", "123"]]``). Anything else is left as given."""
    out: list[Any] = []
    for item in components:
        if not isinstance(item, Mapping):
            out.append(item)
            continue
        copy = dict(item)
        if isinstance(copy.get("type"), str):
            copy["type"] = copy["type"].upper()
        if copy.get("type") == "HEADER" and isinstance(copy.get("format"), str):
            copy["format"] = copy["format"].upper()
        example = copy.get("example")
        if isinstance(example, Mapping):
            body = example.get("body_text")
            if isinstance(body, list) and body and all(isinstance(v, str) for v in body):
                copy["example"] = {**example, "body_text": [list(body)]}
        out.append(copy)
    return out


def validate(name: Any, language: Any, category: Any, components: Any) -> list[Problem]:
    """Every problem Meta would refuse the template for (that we can see locally)."""
    problems: list[Problem] = []
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(
            Problem("name", "use only lowercase letters, digits and underscores (at most 512 characters)")
        )
    if not isinstance(language, str) or not LANGUAGE_PATTERN.match(language):
        problems.append(Problem("language", "use a WhatsApp language code such as es, en_US or pt_BR"))
    if not isinstance(category, str) or category.upper() not in CATEGORIES:
        problems.append(Problem("category", f"must be one of {', '.join(CATEGORIES)}"))
    if not isinstance(components, list) or not components:
        problems.append(Problem("components", "give at least a BODY component"))
        return problems
    seen: dict[str, int] = {}
    for index, item in enumerate(components):
        where = f"components[{index}]"
        if not isinstance(item, Mapping):
            problems.append(Problem(where, "each component must be an object"))
            continue
        kind = str(item.get("type", "")).upper()
        if kind not in COMPONENT_TYPES:
            problems.append(Problem(f"{where}.type", f"must be one of {', '.join(COMPONENT_TYPES)}"))
            continue
        seen[kind] = seen.get(kind, 0) + 1
        if seen[kind] == 2:
            problems.append(Problem(f"{where}.type", f"only one {kind} component is allowed"))
        check = {"HEADER": _header, "BODY": _body, "FOOTER": _footer, "BUTTONS": _buttons}[kind]
        problems += check(item, where)
    if "BODY" not in seen:
        problems.append(Problem("components", "a BODY component is required"))
    return problems


def _text(item: Mapping[str, Any], where: str, limit: int, label: str) -> tuple[str, list[Problem]]:
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        return "", [Problem(f"{where}.text", f"the {label} needs its text")]
    if len(text) > limit:
        return text, [Problem(f"{where}.text", f"the {label} has {len(text)} characters; at most {limit}")]
    return text, []


def _numbering(text: str, where: str, label: str) -> tuple[int, list[Problem]]:
    """The number of variables, or the problems with their numbering."""
    names = placeholders(text)
    if not names:
        return 0, []
    if any(not n.isdecimal() for n in names):  # isdigit() lets "¹" through to int()
        return 0, [
            Problem(f"{where}.text", f"the {label} must use numbered variables: {{{{1}}}}, {{{{2}}}} …")
        ]
    numbers = sorted({int(n) for n in names})
    expected = list(range(1, len(numbers) + 1))
    if numbers != expected:
        # Bounded: a {{1000000000000}} must not make a set of a trillion numbers.
        missing = sorted(set(range(1, min(max(numbers), len(numbers) + 20) + 1)) - set(numbers))
        gap = f"; missing {', '.join(f'{{{{{n}}}}}' for n in missing)}" if missing else ""
        return 0, [
            Problem(f"{where}.text", f"the {label}'s variables must be numbered {{{{1}}}} to {{{{n}}}}{gap}")
        ]
    return len(numbers), []


def _examples(item: Mapping[str, Any], key: str) -> list[Any] | None:
    example = item.get("example")
    if not isinstance(example, Mapping):
        return None
    values = example.get(key)
    return values if isinstance(values, list) else None


def _body(item: Mapping[str, Any], where: str) -> list[Problem]:
    text, problems = _text(item, where, BODY_LIMIT, "body")
    if problems:
        return problems
    count, problems = _numbering(text, where, "body")
    if problems or count == 0:
        return problems
    examples = _examples(item, "body_text")
    row = examples[0] if examples and isinstance(examples[0], list) else examples
    if not row or len(row) != count or not all(isinstance(v, str) and v.strip() for v in row):
        return [
            Problem(
                f"{where}.example.body_text",
                f"give {count} example value{'s' if count > 1 else ''}, one per variable",
            )
        ]
    return []


def _header(item: Mapping[str, Any], where: str) -> list[Problem]:
    fmt = str(item.get("format", "TEXT")).upper()
    if fmt not in HEADER_FORMATS:
        return [Problem(f"{where}.format", f"must be one of {', '.join(HEADER_FORMATS)}")]
    if fmt != "TEXT":
        return []
    text, problems = _text(item, where, HEADER_LIMIT, "header")
    if problems:
        return problems
    count, problems = _numbering(text, where, "header")
    if problems:
        return problems
    if count > 1:
        return [Problem(f"{where}.text", "a header may have at most one variable, {{1}}")]
    if count == 1:
        examples = _examples(item, "header_text")
        if not examples or not isinstance(examples[0], str) or not examples[0].strip():
            return [Problem(f"{where}.example.header_text", "give an example value for {{1}}")]
    return []


def _footer(item: Mapping[str, Any], where: str) -> list[Problem]:
    text, problems = _text(item, where, FOOTER_LIMIT, "footer")
    if problems:
        return problems
    if placeholders(text):
        return [Problem(f"{where}.text", "a footer cannot have variables")]
    return []


def _buttons(item: Mapping[str, Any], where: str) -> list[Problem]:
    buttons = item.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        return [Problem(f"{where}.buttons", "give at least one button")]
    if len(buttons) > MAX_BUTTONS:
        return [Problem(f"{where}.buttons", f"at most {MAX_BUTTONS} buttons")]
    problems: list[Problem] = []
    for index, button in enumerate(buttons):
        label = button.get("text") if isinstance(button, Mapping) else None
        if not isinstance(label, str) or not label.strip():
            problems.append(Problem(f"{where}.buttons[{index}].text", "each button needs a label"))
        elif len(label) > BUTTON_LABEL_LIMIT:
            problems.append(
                Problem(f"{where}.buttons[{index}].text", f"a button label has at most {BUTTON_LABEL_LIMIT}")
            )
    return problems


# Sending ---------------------------------------------------------------------------------------
def parameter_problem(value: str) -> str | None:
    """Meta refuses parameter text with new lines, tabs or more than four spaces in a row."""
    if not value.strip():
        return "a parameter cannot be empty"
    if "\n" in value or "\t" in value:
        return "a parameter cannot contain new lines or tabs"
    if "     " in value:
        return "a parameter cannot contain more than four spaces in a row"
    if len(value) > PARAMETER_LIMIT:
        return f"a parameter has at most {PARAMETER_LIMIT} characters"
    return None


def check_parameters(text: str, given: Sequence[str] | Mapping[str, str], label: str) -> list[Problem]:
    """The parameters fit ``text``: as many as its variables (positional), or the same names."""
    names = placeholders(text)
    distinct = sorted(set(names), key=names.index)
    if isinstance(given, Mapping):
        if set(given) != set(distinct):
            expected = ", ".join(distinct) or "none"
            return [Problem(label, f"the template expects the parameters {expected}")]
        values = list(given.values())
    else:
        if len(given) != len(distinct):
            return [Problem(label, f"the template expects {len(distinct)} parameter(s), {len(given)} given")]
        values = list(given)
    return [
        Problem(f"{label}[{index}]", problem)
        for index, value in enumerate(values)
        if (problem := parameter_problem(value)) is not None
    ]


def render(text: str, values: Sequence[str] | Mapping[str, str]) -> str:
    """``text`` with each ``{{k}}`` replaced by its value (positional from 1, or by name)."""

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if isinstance(values, Mapping):
            return str(values.get(key, match.group(0)))
        if key.isdecimal() and 1 <= int(key) <= len(values):
            return str(values[int(key) - 1])
        return match.group(0)

    return _PLACEHOLDER.sub(fill, text)
