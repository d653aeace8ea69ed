"""Page cursors: offset cursors (``next::pos::N``) and keyset cursors (the last record's sort value and id).

A keyset cursor is base64url of ``next::key::[sort, value, id]`` (or ``prev::key::…`` for ``links.prev``),
like Klaviyo's ``next::id::01F3…``: the next page is the records strictly after ``(value, id)`` in the page's
order under the same filter, so a record whose sort value changes during a scan moves rather than shifting
every later record (offset cursors skip one record per such move). Ties on the sort value are broken by the
record's position in its resource (ids decode to it), which is how the sandbox orders ties anyway.
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from .envelope import decode_cursor, encode_cursor
from .query import Query, QueryError


@dataclass(frozen=True)
class Cursor:
    kind: str  # "pos" (offset), "next" or "prev" (keyset)
    offset: int = 0
    sort: str | None = None
    value: Any = None
    rid: str = ""


def encode_key(kind: str, sort: str | None, value: Any, rid: str) -> str:
    raw = f"{kind}::key::".encode() + orjson.dumps([sort, value, rid])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse(text: str) -> Cursor | None:
    """Decode either kind of cursor; None when it is not one the sandbox wrote."""
    offset = decode_cursor(text)
    if offset is not None:
        return Cursor("pos", offset)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        kind, _, rest = raw.partition(b"::key::")
        sort, value, rid = orjson.loads(rest)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return None
    if kind not in (b"next", b"prev") or not isinstance(rid, str) or (sort is not None and not isinstance(sort, str)):
        return None
    return Cursor(kind.decode(), 0, sort, tuple(value) if isinstance(value, list) else value, rid)


def start_position(q: Query, rank: Callable[[Any, int, bool], int], index_of: Callable[[str], int | None]) -> int:
    """Where the requested page starts in the ordered selection; 400 for a cursor that does not fit the query."""
    c: Cursor | None = q.cursor
    if c is None:
        return 0
    if c.kind == "pos":
        return c.offset
    i = index_of(c.rid)
    if i is None or c.sort != q.sort:
        raise QueryError("Invalid page cursor.", "page[cursor]")
    try:
        if c.kind == "next":
            return rank(c.value, i, True)
        return max(0, rank(c.value, i, False) - q.page_size)
    except TypeError:  # a value of the wrong type for this sort
        raise QueryError("Invalid page cursor.", "page[cursor]") from None


def links_cursors(
    q: Query, mode: str, start: int, scanned: int, more: bool, first: tuple | None, last: tuple | None
) -> tuple:
    """(next, prev) cursor texts for a page that starts at ``start`` and covers ``scanned`` positions;
    ``first``/``last`` are the (value, id) of its first and last record."""
    if mode == "offset":
        nxt = encode_cursor(start + scanned) if more else None
        return nxt, (encode_cursor(max(0, start - q.page_size)) if start else None)
    nxt = encode_key("next", q.sort, last[0], last[1]) if more and last else None
    if not start:
        prev = None
    elif first:
        prev = encode_key("prev", q.sort, first[0], first[1])
    else:
        prev = encode_cursor(max(0, start - q.page_size))
    return nxt, prev


def key_at(keys: Any, pos: int) -> Any:
    """The JSON-able sort value at ``pos`` of a selection's aligned keys (None when unsorted)."""
    if keys is None:
        return None
    if isinstance(keys, np.ndarray):
        return int(keys[pos])
    return list(keys[pos])


def rank_entities(idx: np.ndarray, keys: Any, desc: bool, value: Any, i: int, inclusive: bool) -> int:
    """How many selected records come before (value, i) in the page order (and it, when ``inclusive``)."""
    if keys is None:  # unsorted: ascending index
        return int(np.searchsorted(idx, i, side="right" if inclusive else "left"))
    if isinstance(keys, np.ndarray):
        v = int(value)
        if desc:
            tie = idx >= i if inclusive else idx > i
            return int(np.count_nonzero((keys > v) | ((keys == v) & tie)))
        tie = idx <= i if inclusive else idx < i
        return int(np.count_nonzero((keys < v) | ((keys == v) & tie)))
    pairs = list(zip(keys, idx.tolist(), strict=False))
    if desc:
        pairs.reverse()
    probe = (tuple(value), i)
    if desc:
        return len(pairs) - (bisect.bisect_left(pairs, probe) if inclusive else bisect.bisect_right(pairs, probe))
    return bisect.bisect_right(pairs, probe) if inclusive else bisect.bisect_left(pairs, probe)
