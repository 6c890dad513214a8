"""Canned responses in the console: the list, cached with its ``ETag``, and the local search the
composer's dropdown runs on every keystroke (no I/O here).

The order is the server's (Chatwoot's): shortcut prefix first, then shortcut contains, then title
or content contains; within each group, by shortcut. Only the responses ``/shortcut`` actually
inserts for the agent (``effective``) are offered: a personal response hides the team's and the
global one with the same shortcut.

Why it is fast enough for 10,000 responses in well under 2 ms a keystroke: the entries are sorted
by shortcut once, so the prefix group is a binary search; for the two "contains" groups all
shortcuts (and all titles and contents) are joined into one string, searched with ``str.find``
(C speed) from match to match, and the search stops as soon as the dropdown has what it shows.
``bench/autocomplete.py`` measures it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from max_server.schemas import CannedResponsePublic

DEFAULT_LIMIT = 50
# ``/`` at the start of a word, then what the agent typed of the shortcut, up to the cursor.
_TOKEN = re.compile(r"(?:^|(?<=\s))/([A-Za-z0-9_-]*)$")


@dataclass(frozen=True)
class ShortcutToken:
    """The ``/que`` being typed: where it starts on its line, and the query (``que``)."""

    column: int
    query: str


def shortcut_token(line_before_cursor: str) -> ShortcutToken | None:
    """The token that opens the dropdown: ``/`` at the start of a word, up to the cursor."""
    match = _TOKEN.search(line_before_cursor)
    if match is None:
        return None
    return ShortcutToken(column=match.start(), query=match.group(1))


class CannedCatalog:
    """The agent's canned responses and the ``ETag`` they came with."""

    def __init__(
        self, responses: Iterable[CannedResponsePublic] | None = None, etag: str | None = None
    ) -> None:
        self.replace(responses or (), etag)
        self.loaded = responses is not None  # False until the first answer from the server

    def replace(self, responses: Iterable[CannedResponsePublic], etag: str | None) -> None:
        usable = sorted((r for r in responses if r.effective), key=lambda r: (r.shortcut, r.id))
        self.responses: list[CannedResponsePublic] = usable
        self._keys = [r.shortcut.lstrip("/").lower() for r in usable]
        self._by_id = {r.id: r for r in usable}
        # Every key, and every title + content, joined into one text each (in shortcut order),
        # with where each entry starts: a search is then str.find over one string (C speed).
        self._texts = [f"{r.title}\n{r.content}".lower() for r in usable]
        self._key_blob, self._key_starts = _joined(self._keys)
        self._text_blob, self._text_starts = _joined(self._texts)
        # The last search, when it found everything: the next keystroke usually extends it, and
        # then only its matches can match (the slow case is a miss: one scan, then nothing).
        self._last: tuple[str, list[int]] | None = None
        self.etag = etag
        self.loaded = True

    def __len__(self) -> int:
        return len(self.responses)

    def get(self, response_id: str) -> CannedResponsePublic | None:
        return self._by_id.get(response_id)

    def search(self, query: str, limit: int = DEFAULT_LIMIT) -> list[CannedResponsePublic]:
        """At most ``limit`` responses matching ``query`` (a leading ``/`` and case are ignored)."""
        return [self.responses[i] for i in self.search_indices(query, limit)]

    def search_indices(self, query: str, limit: int = DEFAULT_LIMIT) -> list[int]:
        """The first ``limit`` matches, in order: the work stops once they are found."""
        q = query.strip().lower().lstrip("/").replace(_SEPARATOR, "")
        if not q:
            return list(range(min(limit, len(self._keys))))
        if self._last is not None and q.startswith(self._last[0]):
            found = self._narrowed(q, self._last[1])
        else:
            found = self._scanned(q, limit)
        # Complete (fewer than the limit): the next, longer query searches only among these.
        self._last = (q, found) if len(found) < limit else None
        return found[:limit]

    def _scanned(self, q: str, limit: int) -> list[int]:
        keys = self._keys
        # 1. The shortcut starts with q. Keys are sorted, so they are one contiguous run.
        low = bisect.bisect_left(keys, q)
        high = bisect.bisect_left(keys, q + "\U0010ffff", low)
        found = list(range(low, min(high, low + limit)))
        if len(found) >= limit:
            return found
        # 2. The shortcut contains q further in (the prefix run is skipped by position).
        in_key = set(found)
        for index in _finds(self._key_blob, self._key_starts, q):
            if not low <= index < high:
                found.append(index)
                in_key.add(index)
                if len(found) >= limit:
                    return found
        # 3. The title or content contains q (and the shortcut does not: group 2 was complete).
        for index in _finds(self._text_blob, self._text_starts, q):
            if index not in in_key and not low <= index < high:
                found.append(index)
                if len(found) >= limit:
                    break
        return found

    def _narrowed(self, q: str, candidates: list[int]) -> list[int]:
        keys, texts = self._keys, self._texts
        groups: list[tuple[int, int]] = []
        for index in candidates:
            key = keys[index]
            if key.startswith(q):
                groups.append((0, index))
            elif q in key:
                groups.append((1, index))
            elif q in texts[index]:
                groups.append((2, index))
        return [index for _, index in sorted(groups)]


_SEPARATOR = "\x00"  # never in a query (removed) nor in a response (the server refuses NUL)


def _joined(texts: Iterable[str]) -> tuple[str, list[int]]:
    starts: list[int] = []
    parts: list[str] = []
    position = 0
    for text in texts:
        starts.append(position)
        clean = text.replace(_SEPARATOR, " ")
        parts.append(clean)
        position += len(clean) + 1
    return _SEPARATOR.join(parts), starts


def _finds(blob: str, starts: list[int], q: str) -> Iterator[int]:
    """Indices of the entries containing ``q``, each once, in order."""
    position = blob.find(q)
    while position >= 0:
        index = bisect.bisect_right(starts, position) - 1
        yield index
        following = index + 1
        if following >= len(starts):
            return
        position = blob.find(q, starts[following])


def fill_hint(response: CannedResponsePublic) -> str:
    """What the dropdown shows beside a shortcut: the title and the start of the content."""
    flat = " ".join(response.content.split())
    return f"{response.title} · {flat}"


def needs_render(response: CannedResponsePublic) -> bool:
    """Whether the server must fill variables (context or the agent's) before inserting."""
    return bool(response.variables)


def missing_from(details: object) -> Sequence[str]:
    """The variable names of a 422 ``missing_variables`` error's details."""
    if isinstance(details, dict):
        names = details.get("missing")
        if isinstance(names, list):
            return [str(n) for n in names]
    return []
