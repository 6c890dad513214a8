"""Every event type a service emits can be subscribed to by name: the emitted types are read from
the source (every ``emit`` call and the wrappers that pass their type through), so a new event
that is not added to ``webhooks.EVENT_TYPES`` fails here rather than in a customer's receiver."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import max_server
from max_server.services import webhook_delivery, webhooks
from tests.webhooks.conftest import Admin, Receiver

ROOT = Path(max_server.__file__).parent
# function name -> position of the event type argument (``event_row`` for ``events.emit_rows``)
EMITTERS = {"emit": 1, "_emit": 1, "event_row": 0}


class Unresolved(AssertionError):
    pass


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            yield node


def _name_of(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _module_constants(tree: ast.Module) -> dict[str, str]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def emitted_types() -> set[str]:
    """Walks every module until no new wrapper (a function passing a parameter on as the event
    type) turns up; returns the literal types found at every call site."""
    modules = {path: ast.parse(path.read_text(), str(path)) for path in sorted(ROOT.rglob("*.py"))}
    constants: dict[str, str] = {}
    for tree in modules.values():
        constants.update(_module_constants(tree))
    emitters = dict(EMITTERS)
    while True:
        found: set[str] = set()
        wrappers: dict[str, int] = {}
        for path, tree in modules.items():
            for function in _functions(tree):
                params = [a.arg for a in function.args.args]
                for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
                    name = _name_of(call)
                    if name not in emitters or len(call.args) <= emitters[name]:
                        continue
                    arg = call.args[emitters[name]]
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        found.add(arg.value)
                    elif isinstance(arg, ast.Name) and arg.id in params:
                        wrappers[function.name] = params.index(arg.id)
                    elif isinstance(arg, ast.Name) and arg.id in constants:
                        found.add(constants[arg.id])
                    elif isinstance(arg, ast.Name):
                        assigned = [
                            n.value
                            for n in ast.walk(function)
                            if isinstance(n, ast.Assign)
                            and any(isinstance(t, ast.Name) and t.id == arg.id for t in n.targets)
                        ]
                        if not assigned or not all(_strings(v) for v in assigned):
                            raise Unresolved(f"{path}:{call.lineno}: cannot tell which event {arg.id} is")
                        for value in assigned:
                            found |= _strings(value)
                    else:
                        raise Unresolved(f"{path}:{call.lineno}: cannot tell which event this emits")
        if all(emitters.get(name) == position for name, position in wrappers.items()):
            return found
        emitters.update(wrappers)


def test_every_emitted_type_is_subscribable_by_name() -> None:
    found = emitted_types()
    # The walk sees the events it must: direct emits, constants, wrappers and conditional kinds.
    assert {
        "message.created",  # events.emit(session, "message.created", …)
        "template.status_updated",  # a module constant
        "conversation.reopened",  # through conversation_actions._finish and inbound's `kind`
        "media.stored",  # through media._emit
        "customer.erased",
        "customer.tagged",
        webhook_delivery.PING,
    } <= found
    assert found - {webhook_delivery.PING} <= set(webhooks.EVENT_TYPES), sorted(
        found - set(webhooks.EVENT_TYPES)
    )
    # And the list names nothing that is never emitted.
    assert set(webhooks.EVENT_TYPES) <= found


@pytest.mark.parametrize("event_type", ["customer.erased", "customer.tagged", "customer.*"])
def test_the_extension_types_are_accepted_by_name(admin: Admin, receiver: Receiver, event_type: str) -> None:
    made = admin.subscribe(receiver.url, [event_type])
    assert made["subscription"]["events"] == [event_type]
    refused = admin.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["ping"]})
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "unknown_event_type")
