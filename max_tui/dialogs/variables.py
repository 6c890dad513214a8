"""The small form a canned response asks for before it is inserted: one field per variable the
context does not give (``{{order_id}}``). Dismisses with the values, or None (Escape)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from max_server.schemas import CannedResponsePublic
from max_tui.formatting import one_line


def field_label(name: str) -> str:
    """``order_id`` → ``Order id``."""
    return name.replace("_", " ").capitalize()


class VariablesForm(ModalScreen[dict[str, str] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="variables.cancel")]
    AUTO_FOCUS = "Input"

    def __init__(self, response: CannedResponsePublic, missing: Sequence[str]) -> None:
        super().__init__()
        self.response = response
        self.missing = list(missing)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog variables"):
            yield Label(
                f"Fill in {self.response.shortcut} · {self.response.title}",
                classes="dialog-title",
                markup=False,
            )
            yield Static(one_line(self.response.content, 200), classes="dialog-preview", markup=False)
            for name in self.missing:
                yield Label(field_label(name), classes="field-label", markup=False)
                yield Input(placeholder=f"{{{{{name}}}}}", id=f"var-{name}", classes="field", compact=True)
            yield Label("", id="variables-problem", classes="dialog-problem", markup=False)
            yield Label("⏎ next / insert · esc cancel", classes="dialog-hint", markup=False)

    def values(self) -> dict[str, str]:
        return {name: self.query_one(f"#var-{name}", Input).value.strip() for name in self.missing}

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        fields = list(self.query("Input.field").results(Input))
        empty = [field for field in fields if not field.value.strip()]
        position = fields.index(event.input)
        if position + 1 < len(fields) and not fields[position + 1].value.strip():
            fields[position + 1].focus()
            return
        if empty:
            self.query_one("#variables-problem", Label).update("Every field needs a value.")
            empty[0].focus()
            return
        self.dismiss(self.values())

    def action_cancel(self) -> None:
        self.dismiss(None)
