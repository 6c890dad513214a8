"""The checks made before a template reaches Meta, and filling its parameters (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from max_server.domain import template_rules as rules


def body(text: str, examples: list[str] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "BODY", "text": text}
    if examples is not None:
        item["example"] = {"body_text": [examples]}
    return item


def fields(problems: list[rules.Problem]) -> list[str]:
    return [p.field for p in problems]


def test_a_good_template_has_no_problems() -> None:
    components = [
        {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}", "example": {"header_text": ["A-1"]}},
        body("Hola {{1}}, tu pedido {{2}} va en camino", ["Juan", "A-1"]),
        {"type": "FOOTER", "text": "Tienda Max"},
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop"}]},
    ]
    assert rules.validate("order_shipped", "es", "UTILITY", components) == []
    assert rules.validate("order_2", "pt_BR", "marketing", [body("Sin variables")]) == []


@pytest.mark.parametrize("name", ["Order", "order-shipped", "order shipped", "pedido_envíado", "", "a" * 513])
def test_names_are_lowercase_letters_digits_and_underscores(name: str) -> None:
    assert fields(rules.validate(name, "es", "UTILITY", [body("hola")])) == ["name"]


def test_category_and_language_are_checked() -> None:
    problems = rules.validate("ok", "Spanish", "PROMO", [body("hola")])
    assert fields(problems) == ["language", "category"]


def test_lengths_body_1024_header_and_footer_60() -> None:
    assert rules.validate("ok", "es", "UTILITY", [body("x" * 1024)]) == []
    assert fields(rules.validate("ok", "es", "UTILITY", [body("x" * 1025)])) == ["components[0].text"]
    long_header = {"type": "HEADER", "format": "TEXT", "text": "h" * 61}
    long_footer = {"type": "FOOTER", "text": "f" * 61}
    problems = rules.validate("ok", "es", "UTILITY", [long_header, body("hola"), long_footer])
    assert fields(problems) == ["components[0].text", "components[2].text"]
    assert "61 characters" in problems[0].message


@pytest.mark.parametrize(
    ("text", "examples"),
    [
        ("Hola {{1}} y {{3}}", ["a", "b"]),  # a gap
        ("Hola {{2}}", ["a"]),  # does not start at 1
        ("Hola {{nombre}}", ["a"]),  # named in a positional template
    ],
)
def test_variables_are_numbered_from_one_without_gaps(text: str, examples: list[str]) -> None:
    [problem] = rules.validate("ok", "es", "UTILITY", [body(text, examples)])
    assert problem.field == "components[0].text"


def test_every_variable_needs_an_example() -> None:
    [missing] = rules.validate("ok", "es", "UTILITY", [body("Hola {{1}} {{2}}")])
    assert missing.field == "components[0].example.body_text"
    [short] = rules.validate("ok", "es", "UTILITY", [body("Hola {{1}} {{2}}", ["Juan"])])
    assert "2 example values" in short.message
    header = {"type": "HEADER", "format": "TEXT", "text": "Hola {{1}}"}
    assert fields(rules.validate("ok", "es", "UTILITY", [header, body("x")])) == [
        "components[0].example.header_text"
    ]
    # A flat list of examples is accepted and wrapped the way Meta wants it.
    flat = {"type": "body", "text": "Hola {{1}}", "example": {"body_text": ["Juan"]}}
    assert rules.validate("ok", "es", "UTILITY", [flat]) == []
    assert rules.normalise([flat]) == [
        {"type": "BODY", "text": "Hola {{1}}", "example": {"body_text": [["Juan"]]}}
    ]


def test_structure_body_required_once_footer_without_variables() -> None:
    assert fields(rules.validate("ok", "es", "UTILITY", [])) == ["components"]
    footer_only = [{"type": "FOOTER", "text": "pie"}]
    assert fields(rules.validate("ok", "es", "UTILITY", footer_only)) == ["components"]
    twice = [body("a"), body("b")]
    assert fields(rules.validate("ok", "es", "UTILITY", twice)) == ["components[1].type"]
    footer_var = [body("a"), {"type": "FOOTER", "text": "{{1}}"}]
    assert fields(rules.validate("ok", "es", "UTILITY", footer_var)) == ["components[1].text"]
    button = [body("a"), {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "x" * 26}]}]
    assert fields(rules.validate("ok", "es", "UTILITY", button)) == ["components[1].buttons[0].text"]


def test_parameters_are_counted_checked_and_rendered() -> None:
    text = "Hola {{1}}, tu pedido {{2}} ({{1}})"
    assert rules.variable_count(text) == 2
    assert rules.check_parameters(text, ["Juan", "A-1"], "parameters") == []
    [count] = rules.check_parameters(text, ["Juan"], "parameters")
    assert "expects 2 parameter(s), 1 given" in count.message
    [newline] = rules.check_parameters(text, ["Juan", "A\n1"], "parameters")
    assert newline.field == "parameters[1]"
    assert rules.render(text, ["Juan", "A-1"]) == "Hola Juan, tu pedido A-1 (Juan)"
    assert rules.render("Hola {{name}}", {"name": "Ana"}) == "Hola Ana"
    assert rules.check_parameters("Hola {{name}}", {"nombre": "Ana"}, "parameters") != []
