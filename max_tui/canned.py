"""Canned responses in the console: the list, cached with its ``ETag``, and the local search the
composer's dropdown runs on every keystroke (no I/O here).

The order is the server's (Chatwoot's): shortcut prefix first, then shortcut contains, then title
or content contains; within each group, by shortcut. Only the responses ``/shortcut`` actually
inserts for the agent (``effective``) are offered: a personal response hides the team's and the
global one with the same shortcut.

Why it stays under 2 ms a keystroke with 10,000 responses, also for a pasted query or a miss
(``bench/autocomplete.py`` measures both):

* the entries are sorted by shortcut once, so the prefix group is a binary search;
* all shortcuts are joined into one string, searched with ``str.find`` (C speed) from match to
  match (a few hundred KB at worst);
* titles and contents are indexed by word: each distinct word (split at whitespace) knows, as a
  bit set, the entries it appears in. The query (one word: the dropdown's token has no spaces)
  is looked up in the joined distinct words, far smaller than the texts; the bit sets of the
  words containing it give the only candidates to check. A query inside too many words to be
  selective scans the joined texts instead, and then finds its matches early;
* every search stops as soon as the dropdown has what it shows, and the next keystroke, which
  usually extends the query, searches only the previous matches.

The index is immutable and replaced whole (``replace`` may run in a thread while the dropdown
searches the previous one).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from max_server.schemas import CannedResponsePublic

DEFAULT_LIMIT = 50
SELECTIVE_WORDS = 256  # a query word found in more distinct words than this is not selective
# ``/`` at the start of a word, then what the agent typed of the shortcut, up to the cursor.
_TOKEN = re.compile(r"(?:^|(?<=\s))/([A-Za-z0-9_-]*)$")
_SEPARATOR = "\x00"  # never in a query (removed) nor in a response (the server refuses NUL)


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


class _Index:
    """Everything a search reads, built once per list (see the module docstring)."""

    def __init__(self, responses: Iterable[CannedResponsePublic]) -> None:
        usable = sorted((r for r in responses if r.effective), key=lambda r: (r.shortcut, r.id))
        self.responses: list[CannedResponsePublic] = usable
        self.by_id = {r.id: r for r in usable}
        self.keys = [r.shortcut.lstrip("/").lower().replace(_SEPARATOR, " ") for r in usable]
        self.texts = [f"{r.title}\n{r.content}".lower().replace(_SEPARATOR, " ") for r in usable]
        self.key_blob, self.key_starts = _joined(self.keys)
        self.text_blob, self.text_starts = _joined(self.texts)
        entries: dict[str, bytearray] = {}
        size = (len(usable) + 7) // 8
        for index, text in enumerate(self.texts):
            byte, bit = index >> 3, 1 << (index & 7)
            for word in set(text.split()):
                bits = entries.get(word)
                if bits is None:
                    bits = entries[word] = bytearray(size)
                bits[byte] |= bit
        words = list(entries)
        self.word_blob, self.word_starts = _joined(words)
        self.word_entries = [int.from_bytes(entries[w], "little") for w in words]

    def text_candidates(self, q: str) -> str | None:
        """The entries whose text may contain ``q``, as a string of ``0``/``1`` (one a position),
        or None when the index cannot narrow them down (then the texts are scanned): ``q`` has
        whitespace (the dropdown's token never has), or is part of too many words to be
        selective (then matches are many, and the scan finds enough of them early)."""
        if len(q.split()) != 1 or q != q.strip():
            return None
        union = 0
        for count, word in enumerate(_finds(self.word_blob, self.word_starts, q)):
            if count >= SELECTIVE_WORDS:
                return None
            union |= self.word_entries[word]
        return format(union, "b")[::-1] if union else ""

    def text_matches(self, q: str) -> Iterator[int]:
        """Indices of the entries whose title or content contains ``q``, in order."""
        candidates = self.text_candidates(q)
        if candidates is None:
            yield from _finds(self.text_blob, self.text_starts, q)
            return
        texts, index = self.texts, candidates.find("1")
        while index >= 0:
            if q in texts[index]:
                yield index
            index = candidates.find("1", index + 1)


class CannedCatalog:
    """The agent's canned responses and the ``ETag`` they came with."""

    def __init__(
        self, responses: Iterable[CannedResponsePublic] | None = None, etag: str | None = None
    ) -> None:
        self.replace(responses or (), etag)
        self.loaded = responses is not None  # False until the first answer from the server

    def replace(self, responses: Iterable[CannedResponsePublic], etag: str | None) -> None:
        """Installs a new list (safe to call from a thread: the index is swapped whole)."""
        self._index = _Index(responses)
        # The last search, when it found everything: the next keystroke usually extends it, and
        # then only its matches can match. It names its index, so it never outlives it.
        self._last: tuple[_Index, str, list[int]] | None = None
        self.etag = etag
        self.loaded = True

    @property
    def responses(self) -> list[CannedResponsePublic]:
        return self._index.responses

    def __len__(self) -> int:
        return len(self._index.responses)

    def get(self, response_id: str) -> CannedResponsePublic | None:
        return self._index.by_id.get(response_id)

    def search(self, query: str, limit: int = DEFAULT_LIMIT) -> list[CannedResponsePublic]:
        """At most ``limit`` responses matching ``query`` (a leading ``/`` and case are ignored)."""
        index = self._index
        return [index.responses[i] for i in self._search(index, query, limit)]

    def search_indices(self, query: str, limit: int = DEFAULT_LIMIT) -> list[int]:
        """The first ``limit`` matches, in order: the work stops once they are found."""
        return self._search(self._index, query, limit)

    def forget_last(self) -> None:
        """The next search starts from scratch, as after a pasted query (benchmarks, tests)."""
        self._last = None

    def _search(self, index: _Index, query: str, limit: int) -> list[int]:
        q = query.strip().lower().lstrip("/").replace(_SEPARATOR, "")
        if not q:
            return list(range(min(limit, len(index.keys))))
        last = self._last
        if last is not None and last[0] is index and q.startswith(last[1]):
            found = _narrowed(index, q, last[2])
        else:
            found = _scanned(index, q, limit)
        # Complete (fewer than the limit): the next, longer query searches only among these.
        self._last = (index, q, found) if len(found) < limit else None
        return found[:limit]


def _scanned(index: _Index, q: str, limit: int) -> list[int]:
    keys = index.keys
    # 1. The shortcut starts with q. Keys are sorted, so they are one contiguous run.
    low = bisect.bisect_left(keys, q)
    high = bisect.bisect_left(keys, q + "\U0010ffff", low)
    found = list(range(low, min(high, low + limit)))
    if len(found) >= limit:
        return found
    # 2. The shortcut contains q further in (the prefix run is skipped by position).
    in_key = set(found)
    for position in _finds(index.key_blob, index.key_starts, q):
        if not low <= position < high:
            found.append(position)
            in_key.add(position)
            if len(found) >= limit:
                return found
    # 3. The title or content contains q (and the shortcut does not: group 2 was complete).
    for position in index.text_matches(q):
        if position not in in_key and not low <= position < high:
            found.append(position)
            if len(found) >= limit:
                break
    return found


def _narrowed(index: _Index, q: str, candidates: list[int]) -> list[int]:
    keys, texts = index.keys, index.texts
    groups: list[tuple[int, int]] = []
    for position in candidates:
        key = keys[position]
        if key.startswith(q):
            groups.append((0, position))
        elif q in key:
            groups.append((1, position))
        elif q in texts[position]:
            groups.append((2, position))
    return [position for _, position in sorted(groups)]


def _joined(texts: Iterable[str]) -> tuple[str, list[int]]:
    """The texts joined by ``_SEPARATOR`` (they never contain it), and where each starts."""
    starts: list[int] = []
    parts: list[str] = []
    position = 0
    for text in texts:
        starts.append(position)
        parts.append(text)
        position += len(text) + 1
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
