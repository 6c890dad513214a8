"""A customer's tags (Ctrl+G): type a tag and Enter to add it, Delete on a tag to remove it,
Ctrl+S (or "Save") to apply. Dismisses with what to add and remove, or None (Escape)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList
from textual.widgets.option_list import Option

MAX_TAG = 64


@dataclass(frozen=True)
class TagEdit:
    add: list[str]
    remove: list[str]


class TagsDialog(ModalScreen[TagEdit | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="tags.cancel"),
        Binding("ctrl+s", "save", "Save", id="tags.save"),
    ]
    AUTO_FOCUS = "#tag-input"

    def __init__(self, name: str, tags: Sequence[str]) -> None:
        super().__init__()
        self.name_text = name
        self.original = list(tags)
        self.tags = list(tags)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Tags of {self.name_text}", classes="dialog-title", markup=False)
            yield Input(placeholder="New tag, then ⏎", id="tag-input", max_length=MAX_TAG)
            yield OptionList(id="tag-list", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (^S)", id="tags-save", variant="primary")
            yield Label(
                "⏎ add · del remove the highlighted tag · ^S save · esc cancel",
                classes="dialog-hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self._show()

    def _show(self) -> None:
        self.query_one("#tag-list", OptionList).set_options(
            Option(tag, id=f"tag-{i}") for i, tag in enumerate(self.tags)
        )

    @on(Input.Submitted, "#tag-input")
    def _add(self, event: Input.Submitted) -> None:
        event.stop()
        tag = " ".join(event.value.split())
        if tag and tag not in self.tags:
            self.tags.append(tag)
            self._show()
        event.input.value = ""

    def on_key(self, event: events.Key) -> None:
        if event.key not in ("delete", "backspace"):
            return
        options = self.query_one("#tag-list", OptionList)
        if options.has_focus and options.highlighted is not None and self.tags:
            event.stop()
            del self.tags[options.highlighted]
            self._show()

    def action_save(self) -> None:
        add = [t for t in self.tags if t not in self.original]
        remove = [t for t in self.original if t not in self.tags]
        self.dismiss(TagEdit(add, remove))

    @on(Button.Pressed, "#tags-save")
    def _save(self) -> None:
        self.action_save()

    def action_cancel(self) -> None:
        self.dismiss(None)
