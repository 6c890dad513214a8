"""Send an approved WhatsApp template (F8): the way to write to a customer more than 24 hours after
their last message.

Lists the templates approved for the conversation's WhatsApp number in the customer's language as
far as MAX knows it (see ``flows.template``; "All languages" shows every one), asks for each
parameter, shows the final text as it will arrive, and dismisses with what to send
(``TemplateChoice``); the screen sends it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from max_server.schemas import MessagePublic, TemplatePublic

ALL_LANGUAGES = "*"
KEYS_HINT = "↑↓ choose · ⇥ fields · ^S send · esc cancel"
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


@dataclass(frozen=True)
class TemplateChoice:
    name: str
    language: str
    parameters: list[str] | dict[str, str]
    header_parameters: list[str] = field(default_factory=list)
    text: str = ""


def header_text(template: TemplatePublic) -> str:
    for component in template.components:
        if not isinstance(component, Mapping) or str(component.get("type", "")).upper() != "HEADER":
            continue
        if str(component.get("format", "TEXT")).upper() == "TEXT" and isinstance(component.get("text"), str):
            return str(component["text"])
    return ""


def fields_of(text: str, named: bool) -> list[str]:
    """Distinct placeholders in the order WhatsApp fills them (``1, 2, 3`` or by first use)."""
    names = list(dict.fromkeys(_PLACEHOLDER.findall(text)))
    if not named:
        names.sort(key=lambda n: int(n) if n.isdigit() else 0)
    return names


def fill(text: str, values: Mapping[str, str]) -> str:
    """The text as the customer will read it; an empty parameter still shows ``{{n}}``."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1).strip()) or m.group(0), text)


def example_values(template: TemplatePublic) -> list[str]:
    for component in template.components:
        if isinstance(component, Mapping) and str(component.get("type", "")).upper() == "BODY":
            example = component.get("example")
            if isinstance(example, Mapping):
                rows = example.get("body_text")
                if isinstance(rows, list) and rows and isinstance(rows[0], list):
                    return [str(v) for v in rows[0]]
    return []


def languages(templates: Sequence[TemplatePublic]) -> list[str]:
    return sorted({t.language for t in templates})


def template_language(messages: Iterable[MessagePublic]) -> str | None:
    """The language of the latest template among ``messages`` (what the customer was last
    written to in), or None."""
    found = None
    for message in messages:
        sent = message.payload.get("template") if message.type == "template" else None
        if isinstance(sent, Mapping) and isinstance(sent.get("language"), str) and sent["language"]:
            found = str(sent["language"])
    return found


class TemplateDialog(ModalScreen[TemplateChoice | None]):
    # On short terminals (80×24) the parameter fields scroll in the space left, so the preview,
    # the Send button and the keys stay in view (app.tcss, ``TemplateDialog.-short``).
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]  # noqa: RUF012 (Textual declares it so)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="template.cancel"),
        Binding("ctrl+s", "send", "Send", id="template.send"),
    ]
    AUTO_FOCUS = "#template-list"

    def __init__(
        self,
        title: str,
        templates: Sequence[TemplatePublic],
        language: str | None,
        why: str = "",
    ) -> None:
        """``language``: the one to list (``why``: where it comes from, shown beside it); the
        agent can pick another or "All languages"."""
        super().__init__()
        self.title_text = title
        self.templates = list(templates)
        known = languages(self.templates)
        if language in known:
            self.language, self.why = str(language), why
        elif len(known) == 1:
            self.language, self.why = known[0], "the only language approved"
        else:
            self.language, self.why = ALL_LANGUAGES, ""
        self.chosen: TemplatePublic | None = None

    def compose(self) -> ComposeResult:
        choices = [("All languages", ALL_LANGUAGES)] + [(code, code) for code in languages(self.templates)]
        with Vertical(classes="dialog template"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            with Horizontal(classes="template-top"):
                yield Label("Language", classes="field-label", markup=False)
                yield Select(
                    choices, value=self.language, allow_blank=False, id="template-language", compact=True
                )
                yield Label(self.why, id="template-language-why", markup=False)
            yield OptionList(id="template-list", markup=False)
            yield VerticalScroll(id="template-fields")
            yield Label("Preview", classes="field-label", markup=False)
            yield Static("", id="template-preview", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Send (^S)", id="template-send", variant="primary", disabled=True, compact=True)
                yield Label(KEYS_HINT, classes="dialog-hint", markup=False)

    def on_mount(self) -> None:
        self._list()

    def shown_templates(self) -> list[TemplatePublic]:
        shown = [t for t in self.templates if self.language in (ALL_LANGUAGES, t.language)]
        return sorted(shown, key=lambda t: (t.name, t.language))

    def _list(self) -> None:
        options = self.query_one("#template-list", OptionList)
        shown = self.shown_templates()
        options.set_options(
            Option(
                Content.assemble((t.name, "bold"), (f" ({t.language}) · {t.category}", "$text-muted")),
                id=t.id,
            )
            for t in shown
        )
        if shown:
            options.highlighted = 0
        else:
            self.query_one("#template-preview", Static).update(
                Content.styled("No approved template in this language.", "$text-muted")
            )

    @on(Select.Changed, "#template-language")
    def _language(self, event: Select.Changed) -> None:
        if str(event.value) != self.language:
            self.language = str(event.value)
            self.query_one("#template-language-why", Label).update("")  # the agent's choice now
        self._list()

    @on(OptionList.OptionHighlighted, "#template-list")
    async def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        template = next((t for t in self.templates if t.id == event.option.id), None)
        if template is None or template is self.chosen:
            return
        self.chosen = template
        box = self.query_one("#template-fields", VerticalScroll)
        await box.remove_children()
        named = template.parameter_format.lower() == "named"
        examples = example_values(template)
        inputs: list[Input | Label] = []
        for index, name in enumerate(fields_of(header_text(template), named=False)):
            inputs.append(Label(f"Header {{{{{name}}}}}", classes="field-label", markup=False))
            inputs.append(Input(id=f"header-{index}", classes="template-field header", compact=True))
        for index, name in enumerate(fields_of(template.body, named)):
            hint = examples[index] if index < len(examples) else ""
            inputs.append(Label(f"{{{{{name}}}}}", classes="field-label", markup=False))
            inputs.append(
                Input(
                    placeholder=f"e.g. {hint}" if hint else "",
                    id=f"body-{index}",
                    classes="template-field body",
                    compact=True,
                )
            )
        await box.mount_all(inputs)
        self._preview()

    @on(OptionList.OptionSelected, "#template-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        first = (
            self.query("#template-fields Input").first(Input)
            if self.query("#template-fields Input")
            else None
        )
        (first or self.query_one("#template-send", Button)).focus()

    @on(Input.Changed, ".template-field")
    def _typed(self) -> None:
        self._preview()

    @on(Input.Submitted, ".template-field")
    def _next_field(self, event: Input.Submitted) -> None:
        event.stop()
        fields = list(self.query(".template-field").results(Input))
        position = fields.index(event.input)
        (
            fields[position + 1] if position + 1 < len(fields) else self.query_one("#template-send", Button)
        ).focus()

    def values(self) -> tuple[dict[str, str], list[str]]:
        """Body values by placeholder name, and the header's values in order."""
        template = self.chosen
        if template is None:
            return {}, []
        named = template.parameter_format.lower() == "named"
        body = {
            name: self.query_one(f"#body-{index}", Input).value.strip()
            for index, name in enumerate(fields_of(template.body, named))
        }
        header = [
            self.query_one(f"#header-{index}", Input).value.strip()
            for index, _ in enumerate(fields_of(header_text(template), named=False))
        ]
        return body, header

    def _preview(self) -> None:
        template = self.chosen
        if template is None:
            return
        body, header = self.values()
        head = fill(
            header_text(template), dict(zip(fields_of(header_text(template), False), header, strict=True))
        )
        text = fill(template.body, body)
        preview = Content.assemble((head + "\n", "bold") if head else "", text)
        self.query_one("#template-preview", Static).update(preview)
        complete = all(body.values()) and all(header)
        self.query_one("#template-send", Button).disabled = not complete

    def action_send(self) -> None:
        template = self.chosen
        if template is None or self.query_one("#template-send", Button).disabled:
            return
        body, header = self.values()
        named = template.parameter_format.lower() == "named"
        parameters: list[str] | dict[str, str] = body if named else list(body.values())
        head = header_text(template)
        text = fill(template.body, body)
        if head:
            text = fill(head, dict(zip(fields_of(head, False), header, strict=True))) + "\n" + text
        self.dismiss(TemplateChoice(template.name, template.language, parameters, header, text))

    @on(Button.Pressed, "#template-send")
    def _send(self) -> None:
        self.action_send()

    def action_cancel(self) -> None:
        self.dismiss(None)
