"""Canned-response variables: ``{{name}}`` and ``{{name|fallback text}}``.

A value that is missing, empty or only whitespace takes the fallback; without a fallback the
variable is *missing*, and strict rendering refuses (so a literal ``{{…}}`` never reaches a
customer). Braces that do not form a variable (``{{``, ``}}`` left over) are a template error,
reported when the template is saved rather than when it is sent.

Values never carry braces to the customer: :func:`render` neutralises what it inserts (a
WhatsApp profile name is the customer's to choose), and values an agent types are checked first
(:func:`check_given`) so a mistake is refused rather than silently changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# The variables MAX fills from the conversation; anything else is given by the agent.
CONTEXT_VARIABLES = (
    "customer_name",
    "customer_first_name",
    "customer_email",
    "customer_phone",
    "agent_name",
    "agent_first_name",
    "team_name",
    "conversation_number",
)

# Runs that hold "{{" or "}}", and a brace at either end (it could pair with the template's own
# brace beside the variable: "a{{{name}}" is "a{" followed by the variable).
_BRACES = re.compile(r"[{}]{2,}|^[{}]|[{}]$")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*(?:\|([^{}]*))?\}\}")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class TemplateError(ValueError):
    """The template has braces that are not a well-formed variable."""


class MissingVariables(ValueError):
    """Strict rendering met variables with no value and no fallback."""

    def __init__(self, names: list[str]) -> None:
        super().__init__("missing variables: " + ", ".join(names))
        self.names = names


class InvalidValues(ValueError):
    """Values given for variables contain ``{{`` or ``}}``."""

    def __init__(self, names: list[str]) -> None:
        super().__init__("values with {{ or }}: " + ", ".join(names))
        self.names = names


@dataclass(frozen=True)
class Placeholder:
    name: str
    fallback: str | None  # None: no fallback; "" : an explicit empty one (``{{name|}}``)
    start: int
    end: int


def placeholders(template: str) -> list[Placeholder]:
    """The variables of ``template`` in order; raises :class:`TemplateError` on stray braces."""
    found: list[Placeholder] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        _check_literal(template, position, match.start())
        fallback = match.group(2)
        found.append(
            Placeholder(
                name=match.group(1),
                fallback=fallback.strip() if fallback is not None else None,
                start=match.start(),
                end=match.end(),
            )
        )
        position = match.end()
    _check_literal(template, position, len(template))
    return found


def _check_literal(template: str, start: int, end: int) -> None:
    chunk = template[start:end]
    for token in ("{{", "}}"):
        index = chunk.find(token)
        if index >= 0:
            raise TemplateError(
                f"malformed variable at character {start + index + 1}: write {{{{name}}}} or "
                "{{name|fallback}} with a lowercase name (letters, digits, _)"
            )


def variables(template: str) -> list[str]:
    """Distinct variable names in order of first appearance."""
    seen: dict[str, None] = {}
    for placeholder in placeholders(template):
        seen.setdefault(placeholder.name, None)
    return list(seen)


def required(template: str) -> list[str]:
    """Names used at least once without a fallback (they must be given a value)."""
    seen: dict[str, None] = {}
    for placeholder in placeholders(template):
        if placeholder.fallback is None:
            seen.setdefault(placeholder.name, None)
    return list(seen)


def is_variable_name(name: str) -> bool:
    return bool(_NAME.match(name))


def neutralise(value: str) -> str:
    """``value`` without the braces that could read as a variable, or form one with the text
    around it ("{{x}}" → "x", "{x" → "x"); a single brace inside stays ("a {b} c")."""
    while True:  # removing one run can leave a brace at an end
        cleaned = _BRACES.sub("", value)
        if cleaned == value:
            return cleaned
        value = cleaned


def check_given(values: Mapping[str, str | None]) -> None:
    """Raises :class:`InvalidValues` naming the values (typed by an agent) that hold ``{{`` or
    ``}}``, in the order given."""
    bad = [name for name, value in values.items() if value is not None and ("{{" in value or "}}" in value)]
    if bad:
        raise InvalidValues(bad)


def _value(values: Mapping[str, str | None], name: str) -> str | None:
    value = values.get(name)
    if value is None:
        return None
    text = neutralise(str(value))
    return text if text.strip() else None


def filled(template: str, values: Mapping[str, str | None]) -> dict[str, str]:
    """What each variable of ``template`` becomes: its neutralised value, or its fallback (or
    empty text when it has neither)."""
    used: dict[str, str] = {}
    for placeholder in placeholders(template):
        value = _value(values, placeholder.name)
        used[placeholder.name] = value if value is not None else (placeholder.fallback or "")
    return used


def missing(template: str, values: Mapping[str, str | None]) -> list[str]:
    """Variables that have neither a value nor a fallback, in order."""
    seen: dict[str, None] = {}
    for placeholder in placeholders(template):
        if placeholder.fallback is None and _value(values, placeholder.name) is None:
            seen.setdefault(placeholder.name, None)
    return list(seen)


def render(template: str, values: Mapping[str, str | None], *, strict: bool = True) -> str:
    """Fills ``template`` with neutralised values. Strict: raises :class:`MissingVariables`
    naming every variable with no value and no fallback. Lenient (automatic messages): those
    become empty text."""
    parts: list[str] = []
    position = 0
    absent: dict[str, None] = {}
    for placeholder in placeholders(template):
        parts.append(template[position : placeholder.start])
        value = _value(values, placeholder.name)
        if value is None:
            if placeholder.fallback is None:
                absent.setdefault(placeholder.name, None)
                value = ""
            else:
                value = placeholder.fallback
        parts.append(value)
        position = placeholder.end
    parts.append(template[position:])
    if strict and absent:
        raise MissingVariables(list(absent))
    return "".join(parts)


def first_name(full_name: str | None) -> str | None:
    """The first word of a name ("Juan López" → "Juan"); None for an empty name."""
    if not full_name or not full_name.strip():
        return None
    return full_name.split()[0]
