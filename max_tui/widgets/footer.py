"""The main screen's footer: Textual's, fitted to the terminal's width.

Textual's footer lays the keys out in one line and clips what does not fit at the right edge, so
on an 80-column terminal the last keys (Template, SLA) vanished and "Next/prev" was cut in half.
This one keeps every key that fits, whole: when the keys that apply do not fit, the least
important (``FOOTER_RANK`` lists them most important first) are left out. They still work, and
all of them are in the command palette, whose key (``^p``) always stays.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel, KeyGroup


def _width(widget: Widget) -> int:
    """Cells the widget takes in the footer line, margins included."""
    margin = widget.styles.margin
    if isinstance(widget, FooterKey):
        text = widget.key_display + (" " + widget.description if widget.description else "")
        content = cell_len(text)
    elif isinstance(widget, KeyGroup):
        content = sum(_width(child) for child in widget.children) + widget.styles.padding.width
    elif isinstance(widget, FooterLabel):
        content = cell_len(str(widget.content)) + widget.styles.padding.width
    else:
        content = widget.outer_size.width
    return content + margin.left + margin.right


class FittedFooter(Footer):
    def __init__(self, rank: Sequence[str], **options: bool) -> None:
        """``rank``: actions, most important first (unranked ones go before nothing else)."""
        super().__init__(**options)  # type: ignore[arg-type]
        self.rank = {action: position for position, action in enumerate(rank)}
        self.left_out: list[str] = []  # actions that did not fit (for tests and the curious)

    async def recompose(self) -> None:
        await super().recompose()
        self.fit()

    def on_resize(self) -> None:
        self.fit()

    def _units(self) -> tuple[list[tuple[str, list[Widget]]], int]:
        """The footer's items as (action, widgets shown together), and the width of what always
        stays (the command palette's key, docked at the right)."""
        units: list[tuple[str, list[Widget]]] = []
        fixed = 0
        for child in self.children:
            if isinstance(child, FooterKey) and child.has_class("-command-palette"):
                fixed += _width(child) + child.styles.border.spacing.width
            elif isinstance(child, FooterKey):
                units.append((child.action, [child]))
            elif isinstance(child, KeyGroup):
                keys = list(child.query(FooterKey))
                units.append((keys[0].action if keys else "", [child]))
            elif isinstance(child, FooterLabel) and units:
                units[-1][1].append(child)  # a group's label goes with its keys
        return units, fixed

    def fit(self) -> None:
        width = self.size.width or self.app.size.width
        units, fixed = self._units()
        budget = width - fixed
        kept: set[str] = set()
        for action, widgets in sorted(units, key=lambda unit: self.rank.get(unit[0], len(self.rank))):
            needed = sum(_width(w) for w in widgets)
            if needed <= budget:
                kept.add(action)
                budget -= needed
        self.left_out = [action for action, _ in units if action not in kept]
        for action, widgets in units:
            for widget in widgets:
                widget.display = action in kept
