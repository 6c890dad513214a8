"""Canned-response variables: values, fallbacks, missing names, malformed braces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from max_server.domain.templating import (
    CONTEXT_VARIABLES,
    InvalidValues,
    MissingVariables,
    TemplateError,
    check_given,
    filled,
    first_name,
    missing,
    neutralise,
    placeholders,
    render,
    required,
    variables,
)


def test_the_seeds_example() -> None:
    text = "Hola {{customer_name}}, tu pedido {{order_id}} está listo."
    assert render(text, {"customer_name": "Juan", "order_id": "ORD-123"}) == (
        "Hola Juan, tu pedido ORD-123 está listo."
    )


def test_missing_variables_are_named_in_order_once() -> None:
    text = "{{order_id}} {{customer_name}} {{order_id}} {{agent_name|el equipo}}"
    with pytest.raises(MissingVariables) as caught:
        render(text, {})
    assert caught.value.names == ["order_id", "customer_name"]
    assert missing(text, {"order_id": "1"}) == ["customer_name"]


def test_fallbacks_fill_missing_empty_and_blank_values() -> None:
    text = "Hola {{customer_first_name|amigo}}!"
    assert render(text, {}) == "Hola amigo!"
    assert render(text, {"customer_first_name": ""}) == "Hola amigo!"
    assert render(text, {"customer_first_name": "   "}) == "Hola amigo!"
    assert render(text, {"customer_first_name": None}) == "Hola amigo!"
    assert render(text, {"customer_first_name": "Juan"}) == "Hola Juan!"
    # Spaces around names and fallbacks are not part of them; an explicit empty fallback is allowed.
    assert render("[{{ customer_name | tú }}]", {}) == "[tú]"
    assert render("[{{nickname|}}]", {}) == "[]"


def test_lenient_rendering_leaves_nothing_literal() -> None:
    assert render("Hola {{customer_name}}, {{x}}.", {}, strict=False) == "Hola , ."


def test_variables_and_required() -> None:
    text = "{{a}} {{b|x}} {{a}} {{c}} {{b}}"
    assert variables(text) == ["a", "b", "c"]
    assert required(text) == ["a", "c", "b"]
    assert [p.fallback for p in placeholders(text)] == [None, "x", None, None, None]


@pytest.mark.parametrize(
    "text",
    [
        "Hola {{customer_name",
        "Hola customer_name}}",
        "{{Customer}}",
        "{{}}",
        "{{ 1abc }}",
        "{{name|{fallback}}}",
        "{{a b}}",
    ],
)
def test_malformed_braces_are_refused(text: str) -> None:
    with pytest.raises(TemplateError):
        placeholders(text)


def test_single_braces_are_just_text() -> None:
    assert render("{x} {{a}} }", {"a": "1"}) == "{x} 1 }"


def test_first_name() -> None:
    assert first_name("Juan López") == "Juan"
    assert first_name("  María  José ") == "María"
    assert first_name("") is None
    assert first_name(None) is None


def test_context_variables_are_the_documented_ones() -> None:
    assert set(CONTEXT_VARIABLES) == {
        "customer_name",
        "customer_first_name",
        "customer_email",
        "customer_phone",
        "agent_name",
        "agent_first_name",
        "team_name",
        "conversation_number",
    }


_TEXT = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20)


@given(
    st.lists(st.tuples(_TEXT, st.sampled_from(["a", "b", "c"]), st.none() | _TEXT), max_size=6),
    _TEXT,
    st.dictionaries(st.sampled_from(["a", "b", "c"]), _TEXT),
)
def test_rendering_never_leaves_braces(
    pieces: list[tuple[str, str, str | None]], tail: str, values: dict[str, str]
) -> None:
    template = "".join(
        literal + ("{{" + name + ("|" + fallback if fallback is not None else "") + "}}")
        for literal, name, fallback in pieces
    )
    template += tail
    lenient = render(template, values, strict=False)
    assert "{{" not in lenient
    assert "}}" not in lenient
    if missing(template, values):
        with pytest.raises(MissingVariables):
            render(template, values)
    else:
        assert render(template, values) == lenient


def test_inserted_values_never_carry_braces() -> None:
    # A WhatsApp profile name is the customer's to choose: it cannot smuggle a variable in.
    values = {"customer_name": "{{agent_name}}", "team_name": "}}}{{{Soporte}}"}
    assert render("Hola {{customer_name}} de {{team_name}}", values) == "Hola agent_name de Soporte"
    assert render("[{{customer_name|amigo}}]", {"customer_name": "{{}}"}) == "[amigo]"  # nothing left
    assert render("{{a}}", {"a": "a {x} b"}) == "a {x} b"  # single braces inside are just text
    assert render("a{{{v}}}b", {"v": "{x}"}) == "a{x}b"  # no brace pairs with the template's own
    assert filled("{{a}} {{b|fb}} {{c}}", {"a": "{{x}}", "b": "{{ }}"}) == {"a": "x", "b": "fb", "c": ""}


def test_agent_given_values_with_braces_are_named() -> None:
    check_given({"order_id": "A-1", "note": "{single}", "empty": None})  # fine
    with pytest.raises(InvalidValues) as caught:
        check_given({"order_id": "{{customer_email}}", "ok": "1", "note": "abc}}"})
    assert caught.value.names == ["order_id", "note"]


@given(st.text(alphabet="{}ab ", max_size=30), st.sampled_from(["{{v}}", "x{{{v}}}y", "{ {{v}}{{v}} }"]))
def test_no_value_puts_double_braces_in_the_text(value: str, template: str) -> None:
    for text in (neutralise(value), render(template, {"v": value}, strict=False)):
        assert "{{" not in text and "}}" not in text
    assert neutralise(neutralise(value)) == neutralise(value)
