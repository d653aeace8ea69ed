"""dlt's saved pipeline state as stored in a destination: decode it, find one resource's part, and find the tables
loaded from one source table (their saved identity)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def decode_state(text: str) -> dict[str, Any]:
    """zlib-compressed JSON in base64, or plain JSON; ``ValueError`` when it is neither."""
    import base64
    import binascii
    import zlib

    import orjson

    try:
        return orjson.loads(zlib.decompress(base64.b64decode(text, validate=True)))
    except (binascii.Error, zlib.error):
        pass
    try:
        state = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("not a dlt state") from None
    if not isinstance(state, dict):
        raise ValueError("not a dlt state")
    return state


def resource_state(state: dict[str, Any], table: str) -> dict[str, Any]:
    """The resource state of ``table`` inside a dlt pipeline state."""
    for source in (state.get("sources") or {}).values():
        found = (source.get("resources") or {}).get(table)
        if found:
            return dict(found)
    return {}


def pipeline_name(schema: str, table: str, scope: tuple[tuple[str, str], ...] = ()) -> str:
    """The dlt pipeline of one destination table: its loads and its reconciles share the name, so the state. A
    scoped table (``TableInfo.scope``: one account's rows) has one per scope: each account its own cursor."""
    return f"omniload__{schema}__{table}" + "".join(f"__{_label(value)}" for _, value in scope)


def _label(value: str) -> str:
    """A scope's value as part of a pipeline name: as it is when it is short and plain, else a digest."""
    import hashlib
    import re

    return value if re.fullmatch(r"[A-Za-z0-9_-]{1,40}", value) else hashlib.sha256(value.encode()).hexdigest()[:16]


def loaded_from(states: Iterable[tuple[str, Any]], schema: str, origin: str) -> list[str]:
    """The tables of ``schema`` whose newest saved state says they were loaded from ``origin`` (a source table's
    identity), out of ``states``: (pipeline name, its newest state, encoded or decoded) of the schema's pipelines.
    A table's own pipelines are those named after it (one per scope); others are not trusted."""
    found = []
    for name, state in states:
        try:
            state = decode_state(state) if isinstance(state, str) else state
        except ValueError:
            continue
        for source in (state.get("sources") or {}).values():
            for table, saved in (source.get("resources") or {}).items():
                own = pipeline_name(schema, table)
                mine = name == own or name.startswith(own + "__")  # its own, or one account's (scoped)
                if saved.get("origin") == origin and mine and table not in found:
                    found.append(table)
    return sorted(found)
