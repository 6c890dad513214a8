"""The main screen's keys. Each binding has an id (``main.<action>``) so Textual keymaps can
change it, a short description for the footer, and a tooltip that is also its name in the
command palette."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding

NEXT_PREVIOUS = Binding.Group("Next/prev", compact=True)


def _action(
    key: str, action: str, description: str, tooltip: str, *, show: bool = True, **kw: Any
) -> Binding:
    # Priority: these work wherever the focus is (the composer included), as the footer says.
    return Binding(
        key, action, description, show=show, priority=True, tooltip=tooltip, id=f"main.{action}", **kw
    )


MAIN_BINDINGS: tuple[Binding, ...] = (
    _action("f2", "take", "Take", "Assign the open conversation to me"),
    _action("f3", "unassign", "Unassign", "Put the open conversation back in its team's queue"),
    _action("f4", "transfer", "Transfer", "Transfer the open conversation to another team"),
    _action("f5", "priority", "Priority", "Change the open conversation's priority"),
    _action("f6", "close", "Close", "Close the open conversation with a reason"),
    _action("f7", "reopen", "Reopen", "Reopen the open conversation"),
    _action("ctrl+f", "search", "Search", "Search conversations"),
    _action(
        "ctrl+down,alt+down",
        "next",
        "Next",
        "Open the next conversation",
        key_display="^↓",
        group=NEXT_PREVIOUS,
    ),
    _action(
        "ctrl+up,alt+up",
        "previous",
        "Prev",
        "Open the previous conversation",
        key_display="^↑",
        group=NEXT_PREVIOUS,
    ),
    _action("f8", "template", "Template", "Send an approved WhatsApp template (outside the 24 h window)"),
    _action(
        "ctrl+r", "resend", "Resend", "Resend the focused (or latest) failed or unknown message, as a new one"
    ),
    _action(
        "f9", "media", "Media", "Open an attachment of this conversation (save, open, preview)", show=False
    ),
    _action("f10", "sla", "SLA", "SLA dashboard: compliance, violations, escalations (supervisors)"),
    _action("ctrl+n", "notifications", "Alerts", "Notifications: list and mark read", show=False),
    _action("ctrl+l", "link", "Link", "Link another customer record into this customer", show=False),
    _action("ctrl+g", "tags", "Tags", "Add or remove the customer's tags", show=False),
    _action("ctrl+b", "focus_context", "Sidebar", "Move the focus to the customer sidebar", show=False),
    _action("ctrl+t", "cycle_tab", "Tab", "Switch the queue tab (Mine, Team queue, All open)", show=False),
    _action("ctrl+o", "toggle_context", "Context", "Show or hide the context pane", show=False),
    # No tooltip: moving the focus is not a command for the palette.
    Binding("escape", "focus_queue", "Queue", show=False, id="main.focus_queue"),
)

# What the footer keeps when a narrow terminal cannot show every key that applies (most important
# first); the others still work and are all in the command palette (Ctrl+P).
FOOTER_RANK = (
    "close",
    "reopen",
    "take",
    "resend",
    "template",
    "sla",
    "next",
    "search",
    "unassign",
    "transfer",
    "priority",
)
